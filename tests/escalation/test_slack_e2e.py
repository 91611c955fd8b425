"""Escalation end to end: signed Slack requests into the bot, the fake Slack and PagerDuty out.

The bed runs the sample playbooks (``playbooks/``) at Monday 2026-03-02 09:00 New York
time: backend week 8 has chen as primary and ava as secondary.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.emulator.pagerduty import PagerDutyFake
from bot.incidents.models import EventKind, IncidentState
from bot.slack.ids import ActionId
from tests.escalation.conftest import AVA, CHEN, DANA
from tests.pagers.conftest import PD_KEY
from tests.pagers.test_pagerduty import validate_against_spec
from tests.support.bed import start_bed, stop_bed


@pytest.fixture
async def pd():
    async with PagerDutyFake(routing_keys={PD_KEY}, validator=validate_against_spec) as fake:
        yield fake
    assert fake.validation_errors == []


@pytest.fixture
async def bed(database_url, pd, monkeypatch):
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY_DEFAULT", PD_KEY)
    test_bed = await start_bed(database_url, settings_overrides={"pagerduty_events_url": pd.url})
    try:
        yield test_bed
    finally:
        await stop_bed(test_bed)
    assert not test_bed.emu.violations, test_bed.emu.violations


def page_dms(bed, user: str) -> list:
    return [m for m in bed.emu.dms(user) if (m.text or "").startswith("Page: ")]


def replies_to(bed, user: str) -> list[str]:
    return [p.payload["text"] for p in bed.emu.response_url_posts if p.user_id == user]


async def _timeline(bed, number: int):
    from bot.incidents import service as incidents

    async with bed.rt.sessions() as session:
        incident = await incidents.get_incident(session=session, number=number)
        return incident, await incidents.timeline(session=session, incident=incident)


async def _open(bed, text: str) -> int:
    reply = await bed.run_command(text)
    assert "INC-" in reply, reply
    await bed.run_jobs()
    return int(reply.split("INC-")[1].split()[0])


async def test_the_dm_acknowledge_button_acknowledges_and_stops_escalation(bed) -> None:
    number = await _open(bed, "open P1 checkout is failing")
    [dm] = page_dms(bed, CHEN)  # P1 level 1: oncall:backend
    stale_click = bed.emu.block_action(CHEN, dm.channel_id, dm.ts, ActionId.PAGE_ACK)  # sent later
    sent = await bed.click(user=CHEN, channel=dm.channel_id, message_ts=dm.ts, action_id=ActionId.PAGE_ACK)
    assert sent.status == 200
    await bed.wait_for(lambda: replies_to(bed, CHEN))
    assert replies_to(bed, CHEN) == [f"You acknowledged INC-{number}; escalation stops."]
    updated = bed.emu.message(dm.channel_id, dm.ts)
    assert not [b for b in updated.blocks if b["type"] == "actions"]
    assert f"Acknowledged by <@{CHEN}>" in str(updated.blocks)
    incident, events = await _timeline(bed, number)
    assert incident.state == IncidentState.ACKNOWLEDGED and incident.acknowledged_by == CHEN
    page_ack = [e for e in events if e.kind == EventKind.PAGE_ACKNOWLEDGED]
    assert page_ack[0].data["via"] == "page" and page_ack[0].data["level"] == 1
    for minutes in (5, 15, 30, 60):  # the P1 repeat, then levels 2-4: none is sent
        bed.clock.advance(timedelta(minutes=minutes))
        await bed.run_jobs()
    assert len(page_dms(bed, CHEN)) == 1 and page_dms(bed, AVA) == [] and page_dms(bed, DANA) == []
    # A click that arrives late (a second tab still showing the button) says who acknowledged.
    await bed.interact(stale_click)
    await bed.wait_for(lambda: len(replies_to(bed, CHEN)) == 2)
    assert replies_to(bed, CHEN)[1] == f"INC-{number} was already acknowledged by <@{CHEN}>."


async def test_the_card_button_stops_escalation_and_closes_the_pages(bed, pd) -> None:
    number = await _open(bed, "open P0 checkout is down")
    assert pd.incidents[f"firebreak-INC-{number}"].status == "triggered"
    channel = bed.incident_channel(number).id
    before = len(replies_to(bed, AVA))  # ava opened it: her command's reply is there already
    await bed.click(user=AVA, channel=channel, message_ts=bed.card(channel).ts,
                    action_id=ActionId.INCIDENT_ACK)
    await bed.wait_for(lambda: len(replies_to(bed, AVA)) > before)
    await bed.run_jobs()
    assert pd.incidents[f"firebreak-INC-{number}"].status == "acknowledged"
    [dm] = page_dms(bed, CHEN)
    assert f"Acknowledged by <@{AVA}>" in str(bed.emu.message(dm.channel_id, dm.ts).blocks)
    bed.clock.advance(timedelta(minutes=30))
    await bed.run_jobs()
    assert page_dms(bed, AVA) == [] and len(page_dms(bed, CHEN)) == 1
    texts = [m.text for m in bed.emu.messages(channel)]
    assert any(t.startswith(f":pager: INC-{number} escalation level 1: paged <@{CHEN}>") for t in texts)


async def test_commands_ack_and_resolve_are_mirrored_at_pagerduty(bed, pd) -> None:
    number = await _open(bed, "open P0 api is down")
    channel = bed.incident_channel(number).id
    assert "acknowledged" in await bed.run_command("ack", channel=channel, user=CHEN)
    await bed.run_jobs()
    assert "resolved" in await bed.run_command("resolve rolled back", channel=channel, user=CHEN)
    await bed.run_jobs()
    fake = pd.incidents[f"firebreak-INC-{number}"]
    assert fake.actions == ["trigger", "acknowledge", "resolve"] and fake.status == "resolved"


async def test_manual_page_and_oncall_commands(bed) -> None:
    number = await _open(bed, "open P2 search is slow")
    channel = bed.incident_channel(number).id
    reply = await bed.run_command(f"page <@{DANA}|dana> can you look at the index?", channel=channel)
    assert reply == f":pager: Paged <@{DANA}> for INC-{number}."
    [dm] = page_dms(bed, DANA)
    assert "can you look at the index?" in str(dm.blocks)
    reply = await bed.run_command(f"page INC-{number} oncall:backend:secondary", channel="C0GENERAL")
    assert reply == f":pager: Paged <@{AVA}> for INC-{number}."
    reply = await bed.run_command("page oncall:frontend", channel=channel)
    assert "There is no rotation `frontend`" in reply and "Usage:" in reply
    reply = await bed.run_command("page <!subteam^S0NOSUCH|@nobody>", channel=channel)
    assert "Could not page" in reply and "S0NOSUCH" in reply
    oncall = await bed.run_command("oncall")
    assert f"now: primary <@{CHEN}>, secondary <@{AVA}>" in oncall and "*managers*" in oncall
    assert "from <!date^1773061200^{date_short_pretty} at {time} your time|Mon 2026-03-09 09:00 EDT>" in oncall
    assert "There is no rotation `web`" in await bed.run_command("oncall web")
    await bed.run_jobs()
    texts = [m.text for m in bed.emu.messages(channel)]
    assert f":pager: INC-{number}: <@{AVA}> paged <@{DANA}>" in texts
    _, events = await _timeline(bed, number)
    manual = [e for e in events if e.kind == EventKind.PAGE_DELIVERED and e.data["manual"]]
    assert [e.data["recipient"] for e in manual] == [f"user:{DANA}", f"user:{AVA}"]
    failed = [e for e in events if e.kind == EventKind.PAGE_FAILED]
    assert failed and failed[0].data["target"] == "group:S0NOSUCH"
    # Its own Acknowledge button closes it as the manual page it is, not as "escalation level 1".
    await bed.click(user=DANA, channel=dm.channel_id, message_ts=dm.ts, action_id=ActionId.PAGE_ACK)
    await bed.wait_for(lambda: replies_to(bed, DANA))
    closed = str(bed.emu.message(dm.channel_id, dm.ts).blocks)
    assert f"Acknowledged by <@{DANA}>" in closed
    assert "manual page" in closed and "escalation level" not in closed


async def test_a_rate_limited_page_does_not_hold_up_an_ack(bed) -> None:
    """Slack answers the P1 repeat's DM with 429 Retry-After: 30. The runtime's shared Slack
    client waits such answers out; a page must not (it is sent under the incident's row lock,
    which ``/incident ack`` needs): the ack answers at once and the page is never sent."""
    number = await _open(bed, "open P1 checkout is failing")
    channel = bed.incident_channel(number).id
    assert len(page_dms(bed, CHEN)) == 1
    bed.clock.advance(timedelta(minutes=5))  # the repeat of level 1 (oncall:backend) is due
    bed.emu.rate_limit_next("chat.postMessage", retry_after=30)
    posts_before = len(bed.emu.calls_to("chat.postMessage"))
    paging = asyncio.create_task(bed.run_jobs())
    await bed.wait_for(lambda: any(c.status == 429 for c in bed.emu.calls_to("chat.postMessage")))
    reply = await bed.run_command("ack", channel=channel, user=CHEN)
    assert reply == f"You acknowledged INC-{number}; escalation stops."
    await asyncio.wait_for(paging, 10)
    # The 429 was not waited out under the lock and retried: one try, then the job was put off.
    dm = bed.emu.workspace.im_with(CHEN).id
    tries = [c.status for c in bed.emu.calls_to("chat.postMessage")[posts_before:] if c.params["channel"] == dm]
    assert tries == [429]
    for minutes in (0.5, 1, 60):  # past the Retry-After, and far beyond
        bed.clock.advance(timedelta(minutes=minutes))
        await bed.run_jobs()
    assert len(page_dms(bed, CHEN)) == 1  # the repeat was put off, then cancelled by the ack
    _, events = await _timeline(bed, number)
    delivered = [e for e in events if e.kind == EventKind.PAGE_DELIVERED]
    assert [(e.data["recipient"], e.data["attempt"]) for e in delivered] == [(f"user:{CHEN}", 0)]
