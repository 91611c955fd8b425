"""A corpus of bad requests against the real ``/slack/events``: each is answered 401, 413,
400 or 404 (or, for a forged click or an interaction Firebreak does not handle, 200 and a
refusal) and leaves no trace: no Slack Web
API call beyond ``auth.test``, no row in incidents, timeline, jobs, deliveries, rollbacks,
pages or follow-ups, nothing at the provider fakes.

(This generalises ``test_unsigned_or_stale_requests_get_401_and_do_nothing``, formerly in
tests/test_incident_e2e.py, from ``/incident`` to every kind of request; the forged Confirm
extends tests/rollback/test_safety.py with a complete no-side-effect check.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.web.app import MAX_BODY
from tests.hostile.support import watching_logs
from tests.rollback.conftest import AVA, ELI, start_world, stop_world
from tests.support.bed import GENERAL, REPORTER, SIGNING_SECRET
from tests.support.signing import event_body

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
FORM = "application/x-www-form-urlencoded"
TABLES = ("incidents", "timeline_events", "jobs", "slack_deliveries", "rollbacks", "rollback_steps",
          "escalation_plans", "escalation_pages", "followups")


async def rows(rt) -> dict[str, int]:
    async with rt.sessions() as session:
        return {table: (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
                for table in TABLES}


def requests(bed) -> dict[str, tuple[str, str]]:
    """One realistic request of each kind: (body, content type)."""
    emu = bed.emu
    command = urlencode(emu.slash_command(REPORTER, GENERAL, "/incident", "open P1 forged outage"))
    rollback = urlencode(emu.slash_command(REPORTER, GENERAL, "/rollback", "api"))
    click = {"type": "block_actions", "user": {"id": REPORTER}, "trigger_id": emu.new_trigger_id(REPORTER),
             "container": {"type": "message", "channel_id": GENERAL, "message_ts": "1700000000.000100"},
             "channel": {"id": GENERAL}, "team": {"id": "T0FIREBRK"},
             "response_url": emu.new_response_url(GENERAL, REPORTER),
             "actions": [{"action_id": ActionId.INCIDENT_ACK.value, "block_id": "incident-1", "value": "1"}]}
    form = {"type": "view_submission", "user": {"id": REPORTER}, "team": {"id": "T0FIREBRK"},
            "view": {"id": "V1", "type": "modal", "callback_id": CallbackId.OPEN_INCIDENT_MODAL.value,
                     "private_metadata": GENERAL, "state": {"values": {
                         BlockId.MODAL_TITLE.value: {"title": {"value": "forged"}},
                         BlockId.MODAL_SEVERITY.value: {"severity": {"selected_option": {"value": "P0"}}}}}}}
    pin = event_body({"type": "pin_added", "user": REPORTER, "channel_id": GENERAL,
                      "item": {"type": "message", "channel": GENERAL,
                               "message": {"type": "message", "text": "x", "ts": "1700000000.000100"}}},
                     event_id="EvCORPUS1")
    return {"slash command": (command, FORM), "rollback command": (rollback, FORM),
            "button click": (urlencode({"payload": json.dumps(click)}), FORM),
            "form submission": (urlencode({"payload": json.dumps(form)}), FORM),
            "event": (pin, "application/json")}


async def assert_nothing_happened(bed, what: str) -> None:
    await bed.settle()
    made = [c.method for c in bed.emu.calls if c.method != "auth.test"]
    assert made == [], (what, made)
    assert bed.emu.response_url_posts == [], (what, bed.emu.response_url_posts)
    assert set((await rows(bed.rt)).values()) == {0}, (what, await rows(bed.rt))


def signed_headers(body: str | bytes, *, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict:
    raw = body.encode() if isinstance(body, str) else body
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


async def post_raw(bed, body: bytes, headers: dict[str, str]) -> int:
    async with bed.http.post(bed.url, data=body, headers=headers) as resp:
        await resp.read()
        return resp.status


# --------------------------------------------------------------------------- signatures

BAD_SIGNATURES = {
    "no signature": lambda body: {},
    "no timestamp": lambda body: {"X-Slack-Signature": signed_headers(body)["X-Slack-Signature"]},
    "wrong signature": lambda body: {**signed_headers(body), "X-Slack-Signature": "v0=" + "0" * 64},
    "another app's secret": lambda body: signed_headers(body, secret="someone-elses-signing-secret"),
    "replayed after 5 minutes": lambda body: signed_headers(body, timestamp=int(time.time()) - 301),
    "a year-old replay": lambda body: signed_headers(body, timestamp=1_000_000_000),
    "from the future": lambda body: signed_headers(body, timestamp=int(time.time()) + 600),
    "timestamp not a number": lambda body: {**signed_headers(body), "X-Slack-Request-Timestamp": "12e9"},
    "timestamp huge": lambda body: {**signed_headers(body), "X-Slack-Request-Timestamp": "9" * 400},
    "signature of another body": lambda body: signed_headers(body + " "),
    "signature without v0=": lambda body: {**signed_headers(body),
                                           "X-Slack-Signature": signed_headers(body)["X-Slack-Signature"][3:]},
    "signature not ASCII": lambda body: {**signed_headers(body), "X-Slack-Signature": "v0=ü"},
}


@sqlite_only
async def test_every_request_with_a_bad_signature_gets_401_and_does_nothing(bed):
    with watching_logs() as records:
        for kind, (body, content_type) in requests(bed).items():
            for name, make in BAD_SIGNATURES.items():
                headers = {"Content-Type": content_type, **make(body)}
                status = await post_raw(bed, body.encode(), headers)
                assert status == 401, (kind, name, status)
        for name, (body, content_type, _) in BAD_BODIES.items():  # read nothing before the signature
            status = await post_raw(bed, body, {"Content-Type": content_type})
            assert status == 401, ("unsigned", name, status)
        await assert_nothing_happened(bed, "bad signatures")
        assert not records.problems(), records.problems()
    # the same kinds of request, correctly signed, go through: the corpus is refused for its signature
    for kind, (body, content_type) in requests(bed).items():
        status = await post_raw(bed, body.encode(), {"Content-Type": content_type, **signed_headers(body)})
        assert status == 200, (kind, status)


# --------------------------------------------------------------------------- bodies

def _payload(text: str) -> bytes:
    return urlencode({"payload": text}).encode()


BAD_BODIES = {  # (body, content type) -> expected status, all correctly signed
    "payload is not JSON": (_payload("{not json"), FORM, 400),
    "payload is truncated JSON": (_payload('{"type": "block_actions", "actions": [{'), FORM, 400),
    "payload is a JSON list": (_payload("[1, 2, 3]"), FORM, 400),
    "payload is a JSON string": (_payload('"block_actions"'), FORM, 400),
    "payload is JSON null": (_payload("null"), FORM, 400),
    "payload is a number": (_payload("12"), FORM, 400),
    "payload nested 100,000 deep": (_payload("[" * 100_000 + "]" * 100_000), FORM, 400),
    "JSON body that is a list": (b"[]", "application/json", 400),
    "JSON body that is not JSON": (b"{'event': 1}", "application/json", 400),
    "body that is not UTF-8": (b"command=/incident&text=\xff\xfe\xfa", FORM, 400),
    "payload with a non-object event": (_payload('{"type": "event_callback", "event": [1]}'), FORM, 400),
    "actions that are not objects": (_payload(json.dumps({"type": "block_actions", "actions": ["x"],
                                                           "user": {"id": REPORTER}})), FORM, 400),
    "no actions at all": (_payload(json.dumps({"type": "block_actions", "actions": [],
                                               "user": {"id": REPORTER}})), FORM, 400),
    "a view that is null": (_payload(json.dumps({"type": "view_submission", "view": None})), FORM, 400),
    "a workspace id that is not an id": (_payload(json.dumps({  # it would go into every Web API call
        "type": "view_submission", "team": "T" * 20_000, "user": {"id": REPORTER},
        "view": {"id": "V1", "type": "modal", "callback_id": CallbackId.OPEN_INCIDENT_MODAL.value}})), FORM, 400),
    "an organization id that is not an id": (event_body({"type": "pin_added"}, event_id="EvORG").replace(
        '{"team_id"', '{"enterprise_id": "E0<script>", "team_id"', 1).encode(), "application/json", 400),
    "empty body": (b"", FORM, 404),
    "unknown action id": (_payload(json.dumps({
        "type": "block_actions", "user": {"id": REPORTER}, "team": {"id": "T0FIREBRK"},
        "response_url": "http://127.0.0.1:9/r", "trigger_id": "t",
        "actions": [{"action_id": "launch_missiles", "block_id": "b", "value": "1"}]})), FORM, 200),
    "unknown callback id": (_payload(json.dumps({
        "type": "view_submission", "user": {"id": REPORTER}, "team": {"id": "T0FIREBRK"},
        "view": {"id": "V1", "type": "modal", "callback_id": "delete_everything", "state": {"values": {}}}})),
        FORM, 200),
    "unknown command": (urlencode({"command": "/deploy", "text": "prod", "user_id": REPORTER,
                                   "channel_id": GENERAL, "team_id": "T0FIREBRK",
                                   "response_url": "http://127.0.0.1:9/r", "trigger_id": "t"}).encode(),
                        FORM, 200),
    "unknown payload type": (_payload(json.dumps({"type": "message_action", "callback_id": "x",
                                                  "user": {"id": REPORTER}, "team": {"id": "T0FIREBRK"}})),
                             FORM, 200),
    "unknown event type": (event_body({"type": "channel_deleted", "channel": GENERAL},
                                      event_id="EvUNKNOWN").encode(), "application/json", 404),
}


@sqlite_only
async def test_signed_bodies_that_are_not_slacks_are_refused_and_do_nothing(bed):
    with watching_logs() as records:
        for name, (body, content_type, expected) in BAD_BODIES.items():
            status = await post_raw(bed, body, {"Content-Type": content_type, **signed_headers(body)})
            assert status == expected, (name, status)
        await assert_nothing_happened(bed, "bad bodies")
        # refusals are warnings at most: nothing at ERROR, no traceback
        assert not records.problems(), records.problems()


@sqlite_only
async def test_a_body_over_one_megabyte_gets_413_signed_or_not(bed):
    text_field = "x" * (MAX_BODY + 1)
    body = urlencode({"command": "/incident", "text": f"note {text_field}", "user_id": REPORTER,
                      "channel_id": GENERAL, "response_url": bed.emu.new_response_url(GENERAL, REPORTER)})
    for headers in ({}, signed_headers(body)):
        status = await post_raw(bed, body.encode(), {"Content-Type": FORM, **headers})
        assert status == 413
    await assert_nothing_happened(bed, "oversized body")


@sqlite_only
async def test_incomplete_signed_slash_commands_are_refused_in_the_ack(bed):
    """Signed (so from Slack, or from whoever holds the secret) but unusable: told so, nothing done."""
    base = bed.emu.slash_command(REPORTER, GENERAL, "/incident", "open P1 half a request")
    for drop in ("user_id", "response_url"):
        fields = {k: v for k, v in base.items() if k != drop}
        sent = await bed.post(urlencode(fields), content_type=FORM)
        assert sent.status == 200 and f"no `{drop}`" in sent.json["text"], sent
    sent = await bed.post(urlencode({**base, "user_id": "U0<script>"}), content_type=FORM)
    assert "not a Slack id" in sent.json["text"], sent
    sent = await bed.post(json.dumps({**base, "text": ["open", "P1"]}), content_type="application/json")
    assert sent.status == 200 and "`text` is not text" in sent.json["text"], sent
    await assert_nothing_happened(bed, "incomplete commands")


# --------------------------------------------------------------------------- a forged Confirm

@pytest.fixture
async def open_world(database_url, tmp_path):
    zero = {"P0": 0, "P1": 0, "P2": 0, "P3": 0}
    world = await start_world(database_url, tmp_path, approvals=zero)
    try:
        yield world
    finally:
        await stop_world(world)


@sqlite_only
async def test_a_non_owner_forging_confirm_changes_nothing_anywhere(open_world):
    """ELI is not an owner of `api`. His Confirm is correctly signed (Slack sent it, or he
    crafted it with the app's secret) and claims an owner's name: refused, and nothing moves
    at all: no provider request (not even a read), no job, no step, no timeline event, no
    Slack message besides the ephemeral refusal."""
    w = open_world
    await w.command("api", user=AVA)  # an owner asks for the preview
    rollback = await w.rollback()
    before = {"rows": await rows(w.rt), "calls": len(w.emu.calls), "replies": len(w.emu.response_url_posts),
              "provider": {f.provider: len(f.requests) for f in w.fakes.all}}
    with watching_logs() as records:
        for action in (ActionId.ROLLBACK_CONFIRM, ActionId.ROLLBACK_CANCEL, ActionId.ROLLBACK_CONFIRM):
            payload = w.emu.block_action(ELI, "C0GENERAL", rollback.message_ts, action.value)
            payload["user"].update(username="ava", name="ava")  # the name is not who clicked
            sent = await w.bed.interact(payload)
            assert sent.status == 200
            await w.bed.wait_for(lambda: len(w.emu.response_url_posts) > before["replies"])
            reply = w.emu.response_url_posts[-1]
            assert reply.user_id == ELI and "Only the owners of `api`" in reply.payload["text"], reply.payload
            before["replies"] = len(w.emu.response_url_posts)
        await w.bed.settle()
        assert not records.problems(), records.problems()
    after_rollback = await w.rollback(rollback.id)
    assert (after_rollback.state, after_rollback.confirmed_by) == (rollback.state, None)
    assert await rows(w.rt) == before["rows"]  # the refusal rolled its transaction back, delivery too
    assert {f.provider: len(f.requests) for f in w.fakes.all} == before["provider"]
    # Slack: only reads (owners are read from the user group at each click; the clicker is
    # checked to be a person), no writes
    new_calls = {c.method for c in w.emu.calls[before["calls"]:]}
    assert new_calls <= {"usergroups.users.list", "auth.test", "users.info"}, new_calls
