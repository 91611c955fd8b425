"""/incident end to end: signed HTTP requests in, the fake Slack out, SQLite and PostgreSQL."""

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.incidents.models import Incident, TimelineEvent
from bot.jobs.models import Job, JobState
from bot.slack.effects import provision_key
from bot.slack.ids import ActionId
from tests.support.bed import ANNOUNCE, REPORTER

OTHER = "U0G9QF9C6"


async def _open(bed, text="open P1 checkout is failing service:api", **kw):
    reply = await bed.run_command(text, **kw)
    assert "INC-" in reply, reply
    number = int(reply.split("INC-")[1].split()[0])
    return number, reply


async def _count(bed, model, **where):
    async with bed.rt.sessions() as s:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return (await s.execute(query)).scalar()


async def _timeline(bed, number):
    async with bed.rt.sessions() as s:
        incident = (await s.execute(select(Incident).where(Incident.number == number))).scalar_one()
        events = (await s.execute(select(TimelineEvent).where(TimelineEvent.incident_id == incident.id)
                                  .order_by(TimelineEvent.occurred_at, TimelineEvent.id))).scalars().all()
        return incident, [e.kind for e in events]


async def test_open_sets_up_channel_card_bookmark_and_announcement(bed):
    sent = await bed.command("open P1 Checkout is failing service:api")
    assert sent.status == 200 and sent.body == ""  # acked at once, work after
    reply = await bed.reply(sent)
    assert reply["response_type"] == "ephemeral" and "INC-1 opened in <#" in reply["text"]
    channel = bed.incident_channel(1)
    assert channel.name == "inc-1-checkout-is-failing"
    assert REPORTER in channel.members
    assert channel.topic == "INC-1 P1 open: Checkout is failing"
    card = bed.card(channel.id)
    actions = [e["action_id"] for b in card.blocks if b["type"] == "actions" for e in b["elements"]]
    assert actions == [ActionId.INCIDENT_ACK, ActionId.INCIDENT_RESOLVE, ActionId.INCIDENT_CHANGE_SEVERITY]
    assert [b.link for b in bed.emu.bookmarks(channel.id)] == [
        bed.rt.playbooks.services["api"].runbook_url]
    announced = bed.emu.messages(ANNOUNCE)
    assert len(announced) == 1 and "INC-1" in announced[0].text
    setup_calls = [c.method for c in bed.emu.calls if c.method not in ("auth.test", "users.info")][:7]
    assert setup_calls == ["conversations.create", "conversations.invite", "chat.postMessage",
                           "pins.add", "conversations.setTopic", "bookmarks.add", "chat.postMessage"]
    _, kinds = await _timeline(bed, 1)
    assert kinds == ["opened", "channel_created"]


async def test_every_subcommand_updates_card_and_timeline(bed):
    number, _ = await _open(bed)
    channel = bed.incident_channel(number).id
    script = [
        ("ack", "You acknowledged INC-1"),
        ("sev P0", "INC-1 is now P0"),
        (f"assign commander <@{OTHER}|ben>", f"<@{OTHER}> is now commander"),
        ("assign INC-1 scribe <@U1H2J3K4L>", "scribe"),
        ("note the db pool is exhausted", "Noted"),
        ("status rolling back api", "Status update posted"),
        ("mitigated error rate back to normal", "mitigated"),
        ("resolve pool size raised", "resolved"),
        ("reopen", "reopened"),
    ]
    for text, expected in script:
        reply = await bed.run_command(text, channel=channel)
        assert expected in reply, (text, reply)
        await bed.run_jobs()
    incident, kinds = await _timeline(bed, number)
    assert kinds == ["opened", "channel_created", "acknowledged", "severity_changed", "role_assigned",
                     "role_assigned", "note", "status_update", "mitigated", "resolved", "reopened"]
    assert incident.commander_id == OTHER and incident.scribe_id == "U1H2J3K4L"
    card = bed.card(channel)
    assert "P0" in json.dumps(card.blocks) and f"<@{OTHER}>" in json.dumps(card.blocks)
    assert bed.emu.calls_to("chat.update"), "the card is updated in place"
    status_lines = [m.text for m in bed.emu.messages(ANNOUNCE) if "Status update" in (m.text or "")]
    assert status_lines and "rolling back api" in status_lines[0]
    listing = await bed.run_command("list all")
    assert "INC-1" in listing
    timeline = json.dumps((await bed.reply(await bed.command("timeline", channel=channel)))["blocks"])
    assert "Severity changed" in timeline and "UTC" in timeline and "EST" in timeline


async def test_card_buttons_acknowledge_change_severity_and_resolve(bed):
    number, _ = await _open(bed)
    channel = bed.incident_channel(number).id
    card = bed.card(channel)
    sent = await bed.click(user=OTHER, channel=channel, message_ts=card.ts,
                           action_id=ActionId.INCIDENT_ACK)
    assert sent.status == 200
    replies = lambda: [p.payload["text"] for p in bed.emu.response_url_posts if p.user_id == OTHER]
    await bed.wait_for(lambda: len(replies()) == 1)
    await bed.click(user=OTHER, channel=channel, message_ts=card.ts,
                    action_id=ActionId.INCIDENT_CHANGE_SEVERITY, selected="P0")
    await bed.wait_for(lambda: len(replies()) == 2)
    await bed.click(user=OTHER, channel=channel, message_ts=card.ts, action_id=ActionId.INCIDENT_RESOLVE)
    await bed.wait_for(lambda: len(replies()) == 3)
    assert replies() == ["You acknowledged INC-1.", "INC-1 is now P0.", "You resolved INC-1."]
    incident, kinds = await _timeline(bed, number)
    assert kinds[-3:] == ["acknowledged", "severity_changed", "resolved"]
    assert incident.acknowledged_by == OTHER
    await bed.run_jobs()
    final = bed.card(channel)
    assert not [b for b in final.blocks if b["type"] == "actions"]


async def test_open_alone_opens_the_modal_and_submission_opens_incident(bed):
    sent = await bed.command("open")
    assert sent.status == 200
    await bed.wait_for(lambda: bed.emu.views)
    view = bed.emu.views[0]
    payload = bed.emu.view_submission(REPORTER, view.id, {
        "modal_severity": {"severity": {"type": "static_select", "selected_option": {"value": "P2"}}},
        "modal_title": {"title": {"type": "plain_text_input", "value": "Search is slow"}},
        "modal_service": {"service": {"type": "static_select", "selected_option": {"value": "web"}}},
    })
    result = await bed.interact(payload)
    assert result.status == 200
    await bed.wait_for(lambda: bed.incident_channel(1))
    incident, _ = await _timeline(bed, 1)
    assert (incident.title, incident.severity.value, incident.service) == ("Search is slow", "P2", "web")


async def test_modal_with_empty_title_is_refused_inline(bed):
    await bed.command("open")
    await bed.wait_for(lambda: bed.emu.views)
    view = bed.emu.views[0]
    payload = bed.emu.view_submission(REPORTER, view.id, {
        "modal_severity": {"severity": {"type": "static_select", "selected_option": {"value": "P2"}}},
        "modal_title": {"title": {"type": "plain_text_input", "value": "   "}},
    })
    result = await bed.interact(payload)
    assert result.json["response_action"] == "errors"
    assert await _count(bed, Incident) == 0


@pytest.mark.parametrize("text, problem", [
    ("frobnicate", "not an /incident command"),
    ("open P7 checkout", "not a severity"),
    ("open P1", "needs a title"),
    ("open P1 " + "x" * 4000, "characters long"),
    ("open P1 checkout service:nope", "no service `nope`"),
    ("ack INC-99", "no incident INC-99"),
    ("note hello", "not an incident channel"),
])
async def test_bad_input_gets_usage_and_creates_nothing(bed, text, problem):
    reply = await bed.run_command(text)
    assert problem in reply
    assert "/incident" in reply  # the right usage is shown
    assert await _count(bed, Incident) == 0
    assert not bed.emu.calls_to("conversations.create")


async def test_same_trigger_id_twice_opens_once(bed):
    first = await bed.command("open P2 duplicate me", trigger_id="T-REPEATED")
    second = await bed.command("open P2 duplicate me", trigger_id="T-REPEATED")
    await bed.reply(first)
    await bed.reply(second)
    assert await _count(bed, Incident) == 1
    assert len(bed.emu.calls_to("conversations.create")) == 1


async def test_a_retry_while_the_channel_is_being_created_elsewhere_still_links_it(bed):
    bed.emu.delay("conversations.create", 0.5)  # the first delivery is busy creating it
    first = await bed.command("open P2 slow channel", trigger_id="T-SLOW")
    await bed.wait_for(lambda: bed.emu.calls_to("conversations.create") or None)
    second = await bed.command("open P2 slow channel", trigger_id="T-SLOW")
    channel = None
    for sent in (first, second):
        text = (await bed.reply(sent))["text"]
        assert "INC-1" in text and " in <#C" in text, text
        channel = channel or text.split("<#")[1].split(">")[0]
        assert f"<#{channel}>" in text
    assert len(bed.emu.calls_to("conversations.create")) == 1


async def test_concurrent_opens_get_distinct_numbers_and_channels(bed):
    sent = await asyncio.gather(*(bed.command(f"open P3 thing {i} broke") for i in range(10)))
    replies = await asyncio.gather(*(bed.reply(s) for s in sent))
    numbers = sorted(int(r["text"].split("INC-")[1].split()[0]) for r in replies)
    assert numbers == list(range(1, 11))
    names = [c.params["name"] for c in bed.emu.calls_to("conversations.create") if c.ok]
    assert len(set(names)) == 10


async def test_name_taken_gets_a_suffix(bed):
    bed.emu.add_channel("inc-1-checkout-is-failing")
    number, _ = await _open(bed)
    incident, _ = await _timeline(bed, number)
    assert incident.channel_name == "inc-1-checkout-is-failing-2"
    assert bed.emu.channel(incident.channel_id).name == "inc-1-checkout-is-failing-2"


async def test_slack_failing_half_way_is_visible_and_retry_completes_without_duplicates(bed):
    bed.emu.fail_next("chat.postMessage", error="fatal_error", times=10)
    reply = await bed.run_command("open P1 checkout is failing")
    assert "INC-1 opened" in reply and "Slack failed while posting the incident card" in reply
    incident, kinds = await _timeline(bed, 1)
    assert incident.channel_id and not incident.card_ts and "slack_error" in kinds
    bed.emu.clear_faults()
    # The user runs the same command again: it completes INC-1 instead of opening INC-2.
    again = await bed.run_command("open P1 checkout is failing")
    assert "INC-1 is open" in again and "failed" not in again
    assert await _count(bed, Incident) == 1
    assert len([c for c in bed.emu.calls_to("conversations.create") if c.ok]) == 1
    assert len(bed.emu.pins(incident.channel_id)) == 1


async def test_worker_retry_completes_setup_after_slack_recovers(bed):
    bed.emu.fail_next("pins.add", error="internal_error", times=1)
    await bed.run_command("open P1 checkout is failing")
    incident, _ = await _timeline(bed, 1)
    assert incident.card_ts and not incident.card_pinned
    bed.clock.advance(600)
    await bed.run_jobs()
    incident, kinds = await _timeline(bed, 1)
    assert incident.card_pinned and incident.announced and incident.setup_error is None
    assert kinds.count("slack_error") == 1
    cards = [c for c in bed.emu.calls_to("chat.postMessage")
             if c.params["channel"] == incident.channel_id and "INC-1 [P1" in c.params.get("text", "")]
    announcements = [c for c in bed.emu.calls_to("chat.postMessage") if c.params["channel"] == ANNOUNCE]
    assert (len(cards), len(announcements)) == (1, 1)


async def test_rate_limited_slack_is_retried_by_the_client(bed):
    bed.emu.rate_limit_next("conversations.create", retry_after=0, times=2)
    number, reply = await _open(bed)
    assert "opened in" in reply and "failed" not in reply
    assert bed.incident_channel(number)


@pytest.mark.parametrize("method", ["conversations.create", "pins.add"])
async def test_the_set_up_job_honours_a_long_retry_after_without_waiting_in_place(bed, method):
    """Slack answers a set-up step 429 with Retry-After: 30. The incident is recorded and the
    user told which step is waiting; the job runs again 30 s later (the injected clock), not
    before, and nothing sleeps 30 s meanwhile: the step was sent once before the reschedule."""
    bed.emu.rate_limit_next(method, retry_after=30)
    reply = await bed.run_command("open P1 checkout is failing service:api")
    step = {"conversations.create": "creating the channel", "pins.add": "pinning the card"}[method]
    assert "INC-1 opened" in reply and f"Slack failed while {step}: ratelimited" in reply, reply
    assert [c.status for c in bed.emu.calls_to(method)] == [429]  # not waited out and resent
    async with bed.rt.sessions() as s:
        job = (await s.execute(select(Job).where(Job.dedup_key == provision_key(1)))).scalar_one()
    assert job.state == JobState.PENDING and job.due_at == bed.clock.now() + timedelta(seconds=30)
    bed.clock.advance(timedelta(seconds=29))
    await bed.settle()
    assert [c.status for c in bed.emu.calls_to(method)] == [429]
    bed.clock.advance(timedelta(seconds=1))
    await bed.settle()
    assert [c.status for c in bed.emu.calls_to(method)] == [429, 200]
    incident, kinds = await _timeline(bed, 1)
    assert incident.is_provisioned and incident.setup_error is None
    assert kinds.count("slack_error") == 1 and kinds.count("channel_created") == 1


async def test_pins_and_pushpin_reactions_join_the_timeline_once(bed):
    number, _ = await _open(bed)
    channel = bed.incident_channel(number).id
    await bed.emu.user_post_message(OTHER, channel, "error rate is 40% on api")
    message = bed.emu.messages(channel)[-1]
    pin_event = bed.pin_added(channel, message, by=REPORTER)
    reaction = {"type": "reaction_added", "user": REPORTER, "reaction": "pushpin",
                "item": {"type": "message", "channel": channel, "ts": message.ts}, "event_ts": message.ts}
    assert (await bed.event(pin_event, event_id="EvPIN1")).status == 200
    assert (await bed.event(pin_event, event_id="EvPIN1", retry_num=1)).status == 200  # Slack's retry
    assert (await bed.event(reaction, event_id="EvREACT1")).status == 200
    await bed.settle()  # the three deliveries were worked on (listeners run after the ack)
    async with bed.rt.sessions() as s:
        events = (await s.execute(select(TimelineEvent).where(
            TimelineEvent.kind == "pinned_message"))).scalars().all()
    assert len(events) == 1
    assert abs(events[0].occurred_at.timestamp() - float(message.ts)) < 0.001
    assert events[0].actor == OTHER and "40%" in events[0].text


async def test_health_and_readiness(bed):
    async with bed.http.get(bed.server.make_url("/healthz")) as resp:
        assert resp.status == 200
    async with bed.http.get(bed.server.make_url("/readyz")) as resp:
        assert resp.status == 200 and (await resp.json())["database"] == "ok"
