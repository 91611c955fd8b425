"""Properties of the Slack payload handling, through the real endpoint with correctly signed
requests: slash command bodies, ``block_actions`` for every ActionId, ``view_submission``
and Events API callbacks, with generated field values (missing keys, wrong types, huge
strings, unicode, nulls). Whatever arrives, Slack gets an answer below 500 and nothing
escapes our code (see tests/hostile/support.py for what is checked after each request).

One bed per test (SQLite; hypothesis runs its examples on it), seeded with an incident
whose card carries real buttons, so that well-formed values reach the services.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack.ids import ActionId, BlockId, CallbackId
from tests.hostile.support import KNOWN_CHANNELS, KNOWN_USERS, Handled, post_form, post_payload, watching_logs
from tests.hostile.test_parsers import command_text, rollback_text
from tests.support.bed import GENERAL, REPORTER

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
MISSING = object()

huge = st.sampled_from(["x" * 20_000, "é" * 5_000, "🔥" * 3_000, "\x00" * 100, "<@U1>" * 2_000])
junk = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20), huge, st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
form_junk = st.text(max_size=30) | huge | st.just("")


def field(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a valid value; sometimes junk of any type, sometimes missing."""
    return st.one_of(valid, valid, valid, junk, st.just(MISSING))


def shaped(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not MISSING}


def mutate(data, document: dict[str, Any], paths: list[tuple], *, values=junk) -> dict[str, Any]:
    """A copy of a well-formed ``document`` with zero to three of ``paths`` broken: the key
    removed or its value replaced (by ``values``). Most requests are thus valid but for one
    or two fields, so that the generated requests reach the services, not just the door."""
    document = json.loads(json.dumps(document))
    for path in data.draw(st.lists(st.sampled_from(paths), max_size=3, unique=True), label="broken"):
        parent = document
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else (
                parent[key] if isinstance(parent, list) and isinstance(key, int) and key < len(parent) else None)
        if not isinstance(parent, (dict, list)):
            continue
        last = path[-1]
        if isinstance(parent, list) and not (isinstance(last, int) and last < len(parent)):
            continue
        if data.draw(st.booleans(), label=f"drop {path}") and isinstance(parent, dict):
            parent.pop(last, None)
        else:
            parent[last] = data.draw(values, label=f"{path}")
    return document


@pytest.fixture
async def seeded(bed):
    reply = await bed.run_command("open P2 checkout is slow service:api")
    assert "INC-1" in reply, reply
    return bed


# --------------------------------------------------------------------------- slash commands

COMMAND_PATHS = [("user_id",), ("channel_id",), ("command",), ("text",), ("response_url",),
                 ("trigger_id",), ("team_id",)]


@sqlite_only
@FUZZ
@given(data=st.data())
async def test_any_slash_command_body_is_answered(seeded, data):
    bed = seeded
    incident_channel = bed.incident_channel(1).id
    with watching_logs() as records:
        handled = Handled(bed, records)
        command = data.draw(st.sampled_from(["/incident", "/rollback"]), label="command")
        user = data.draw(st.sampled_from(KNOWN_USERS), label="user")
        channel = data.draw(st.sampled_from(KNOWN_CHANNELS + [incident_channel]), label="channel")
        fields = {
            "token": "x", "team_id": "T0FIREBRK", "channel_id": channel, "user_id": user,
            "command": command, "api_app_id": "A0FIREBRK",
            "text": data.draw(command_text if command == "/incident" else rollback_text, label="text"),
            "response_url": bed.emu.new_response_url(channel, user),
            "trigger_id": bed.emu.new_trigger_id(user),
        }
        if data.draw(st.integers(0, 4), label="as JSON") == 0:  # Bolt routes JSON bodies too
            fields = mutate(data, fields, COMMAND_PATHS)
            sent = await bed.post(json.dumps(fields), content_type="application/json")
        else:
            fields = mutate(data, fields, COMMAND_PATHS, values=form_junk)
            sent = await post_form(bed, fields)
        await handled.check(sent, fields)


# --------------------------------------------------------------------------- block_actions

ACTION_PATHS = [
    ("type",), ("user",), ("user", "id"), ("actions",), ("actions", 0), ("actions", 0, "value"),
    ("actions", 0, "block_id"), ("actions", 0, "selected_option"), ("actions", 0, "selected_option", "value"),
    ("container",), ("container", "message_ts"), ("container", "channel_id"), ("channel",),
    ("channel", "id"), ("trigger_id",), ("response_url",), ("message",), ("team",),
]
VALUES = st.sampled_from([
    "1", "0", "-1", "2147483648", "99999999999999999999", "1.5", " 1 ", "١", "INC-1", "P9", "",
    '{"incident":1,"level":0,"repeat":0}', '{"incident":1,"level":99999999999,"repeat":0}',
    '{"incident":99999999999}', '{"incident":"1"}', "[1]", "null",
]) | st.text(max_size=40)


@sqlite_only
@FUZZ
@given(data=st.data())
async def test_any_block_action_is_answered(seeded, data):
    bed = seeded
    incident_channel = bed.incident_channel(1).id
    card = bed.card(incident_channel)
    with watching_logs() as records:
        handled = Handled(bed, records)
        action_id = data.draw(st.sampled_from(list(ActionId)), label="action_id")
        user = data.draw(st.sampled_from(KNOWN_USERS), label="user")
        action = {"action_id": action_id.value, "block_id": "incident-1", "type": "button",
                  "action_ts": "1700000000.000001", "text": {"type": "plain_text", "text": "x"}}
        payload = {
            "type": "block_actions", "user": {"id": user, "username": "x", "team_id": "T0FIREBRK"},
            "api_app_id": "A0FIREBRK", "token": "x", "trigger_id": bed.emu.new_trigger_id(user),
            "container": {"type": "message", "message_ts": card.ts, "channel_id": incident_channel,
                          "is_ephemeral": False},
            "team": {"id": "T0FIREBRK", "domain": "x"}, "enterprise": None, "is_enterprise_install": False,
            "channel": {"id": incident_channel, "name": "x"}, "state": {"values": {}},
            "response_url": bed.emu.new_response_url(incident_channel, user, card.ts),
            "actions": [action], "message": {"type": "message", "ts": card.ts, "text": "card"},
        }
        action["value"] = data.draw(st.sampled_from(
            ['{"incident":1,"level":0,"repeat":0}', "1"] if action_id == ActionId.PAGE_ACK else ["1", "2"])
            | VALUES, label="value")
        if action_id == ActionId.INCIDENT_CHANGE_SEVERITY:
            action["selected_option"] = {"text": {"type": "plain_text", "text": "x"},
                                         "value": data.draw(st.sampled_from(["P0", "P1", "P2", "P3", "P9"]))}
        payload = mutate(data, payload, ACTION_PATHS)
        sent = await post_payload(bed, payload)
        await handled.check(sent, payload)


# --------------------------------------------------------------------------- view_submission

T, S, V = BlockId.MODAL_TITLE.value, BlockId.MODAL_SEVERITY.value, BlockId.MODAL_SERVICE.value
VIEW_PATHS = [
    ("user",), ("user", "id"), ("view",), ("view", "id"), ("view", "private_metadata"), ("view", "state"),
    ("view", "state", "values"), ("view", "state", "values", T), ("view", "state", "values", T, "title"),
    ("view", "state", "values", T, "title", "value"), ("view", "state", "values", S, "severity"),
    ("view", "state", "values", S, "severity", "selected_option"),
    ("view", "state", "values", S, "severity", "selected_option", "value"),
    ("view", "state", "values", V, "service", "selected_option"),
    ("view", "state", "values", V, "service", "selected_option", "value"), ("view", "callback_id"),
    ("trigger_id",), ("team",),
]


@sqlite_only
@FUZZ
@given(data=st.data())
async def test_any_view_submission_is_answered(seeded, data):
    bed = seeded
    incident_channel = bed.incident_channel(1).id

    def option(value: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": value}, "value": value}

    with watching_logs() as records:
        handled = Handled(bed, records)
        user = data.draw(st.sampled_from(KNOWN_USERS), label="user")
        values = {
            T: {"title": {"type": "plain_text_input",
                          "value": data.draw(st.text(max_size=160) | huge, label="title")}},
            S: {"severity": {"type": "static_select",
                             "selected_option": option(data.draw(st.sampled_from(["P0", "P1", "P2", "P3"])))}},
            V: {"service": {"type": "static_select",
                            "selected_option": option(data.draw(st.sampled_from(["api", "web", "nope"])))}},
        }
        payload = {
            "type": "view_submission", "team": {"id": "T0FIREBRK", "domain": "x"}, "api_app_id": "A0FIREBRK",
            "token": "x", "trigger_id": bed.emu.new_trigger_id(user),
            "user": {"id": user, "username": "x", "team_id": "T0FIREBRK"},
            "view": {"id": data.draw(st.text(min_size=1, max_size=12), label="view id"), "type": "modal",
                     "callback_id": CallbackId.OPEN_INCIDENT_MODAL.value,
                     "private_metadata": data.draw(st.sampled_from([GENERAL, incident_channel, "", "C0NOPE",
                                                                    "D0NOTADM"])),
                     "state": {"values": values}},
        }
        payload = mutate(data, payload, VIEW_PATHS)
        sent = await post_payload(bed, payload)
        await handled.check(sent, payload)


# --------------------------------------------------------------------------- events

EVENT_PATHS = [
    ("type",), ("event",), ("event", "type"), ("event", "user"), ("event", "channel_id"), ("event", "item"),
    ("event", "item", "type"), ("event", "item", "channel"), ("event", "item", "ts"), ("event", "item", "message"),
    ("event", "item", "message", "ts"), ("event", "item", "message", "text"), ("event", "item", "message", "user"),
    ("event", "reaction"), ("event_id",), ("authorizations",), ("team_id",),
]


@sqlite_only
@FUZZ
@given(data=st.data())
async def test_any_event_callback_is_answered(seeded, data):
    bed = seeded
    incident_channel = bed.incident_channel(1).id
    card = bed.card(incident_channel)
    with watching_logs() as records:
        handled = Handled(bed, records)
        kind = data.draw(st.sampled_from(["pin_added", "reaction_added", "message", "pin_removed",
                                          "reaction_removed", "app_mention"]), label="type")
        channel = data.draw(st.sampled_from([incident_channel, GENERAL, "C0NOPE"]), label="channel")
        ts = data.draw(st.sampled_from([card.ts, "1700000000.000100", "1.000001", "abc", "1e400", "nan"]),
                       label="ts")
        user = data.draw(st.sampled_from(KNOWN_USERS), label="user")
        text = data.draw(st.text(max_size=80) | huge, label="text")
        event = {"type": kind, "user": user, "channel_id": channel, "event_ts": "1.1",
                 "reaction": data.draw(st.sampled_from(["pushpin", "eyes"]), label="reaction"),
                 "item": {"type": "message", "channel": channel, "ts": ts,
                          "message": {"type": "message", "text": text, "user": user, "ts": ts}}}
        body = {"token": "x", "team_id": "T0FIREBRK", "api_app_id": "A0FIREBRK", "type": "event_callback",
                "event": event, "event_id": f"Ev{data.draw(st.integers(0, 10**6), label='event id')}",
                "event_time": 1, "authorizations": [{"team_id": "T0FIREBRK", "user_id": "U0FIREBOT",
                                                      "is_bot": True}]}
        body = mutate(data, body, EVENT_PATHS)
        sent = await bed.post(json.dumps(body), content_type="application/json")
        await handled.check(sent, body)


# --------------------------------------------------------------------------- what PostgreSQL refuses

DATABASE_CASES = [
    "note with NUL", "rollback reason with NUL", "NUL in the user id", "NUL in the trigger id",
    "card value past int32", "page level past int32", "form title with NUL", "pinned text with NUL",
]


async def test_values_the_database_cannot_store_are_refused_or_cleaned(seeded):
    """NUL characters (PostgreSQL text cannot hold them) and numbers past the integer columns:
    each gets a clear answer, never "database unavailable" or an error. (One bed per
    database for all the cases: setting up PostgreSQL is the slow part.)"""
    bed = seeded
    with watching_logs() as records:
        handled = Handled(bed, records)
        for what in DATABASE_CASES:
            sent = await _send_case(bed, what)
            await handled.check(sent, what)
            answers = [sent.body] + [json.dumps(p.payload) for p in bed.emu.response_url_posts[-2:]]
            assert not any("cannot reach its database" in a for a in answers), (what, answers)


async def _send_case(bed, what: str):
    channel = bed.incident_channel(1).id
    card = bed.card(channel)
    fields = bed.emu.slash_command(REPORTER, channel, "/incident", "note it is \x00 slow")
    if what == "rollback reason with NUL":
        fields.update(command="/rollback", text="api db\x00 is slow")
    elif what == "NUL in the user id":
        fields["user_id"] = "U024\x00BE7LH"
    elif what == "NUL in the trigger id":
        fields["trigger_id"] = "1.2\x00.3"
    if what in ("card value past int32", "page level past int32"):
        payload = bed.emu.block_action(REPORTER, channel, card.ts, ActionId.INCIDENT_RESOLVE.value)
        if what == "card value past int32":
            payload["actions"][0]["value"] = str(2**31)
        else:
            payload["actions"][0].update(action_id=ActionId.PAGE_ACK.value,
                                         value='{"incident":1,"level":2147483648,"repeat":0}')
        return await post_payload(bed, payload)
    if what == "form title with NUL":
        return await post_payload(bed, {
            "type": "view_submission", "team": {"id": "T0FIREBRK"}, "user": {"id": REPORTER},
            "trigger_id": "1.2.3", "view": {"id": "V0NUL", "type": "modal",
                                            "callback_id": CallbackId.OPEN_INCIDENT_MODAL.value,
                                            "private_metadata": GENERAL, "state": {"values": {
                BlockId.MODAL_TITLE.value: {"title": {"value": "db \x00 down"}},
                BlockId.MODAL_SEVERITY.value: {"severity": {"selected_option": {"value": "P3"}}}}}}})
    if what == "pinned text with NUL":
        return await bed.event({"type": "pin_added", "user": REPORTER, "channel_id": channel,
                                "item": {"type": "message", "channel": channel, "message": {
                                    "type": "message", "user": REPORTER, "text": "root \x00 cause",
                                    "ts": "1700000000.000200"}}})
    return await post_form(bed, fields)
