"""Slack times are Unix times: a server whose zone is not UTC must not shift them.

The suite runs with ``TZ=America/Los_Angeles`` (tests/conftest.py). Each test here goes
through the signed HTTP endpoint and fails if a naive ``datetime.fromtimestamp(ts)`` (local
wall time, then labelled UTC) is put back where Slack's ``ts`` becomes a time.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from sqlalchemy import select, update

from bot.escalation.models import Page
from bot.incidents.models import EventKind, TimelineEvent
from bot.slack.ids import ActionId

OTHER = "U0G9QF9C6"
DANA = "U2D4N5A6K"


def test_the_suite_runs_in_a_zone_that_is_not_utc() -> None:
    assert time.localtime(1772460000).tm_gmtoff == -8 * 3600  # PST on 2026-03-02
    assert datetime.fromtimestamp(1772460000).hour != datetime.fromtimestamp(1772460000, tz=UTC).hour


async def _open(bed) -> tuple[int, str]:
    reply = await bed.run_command("open P3 search is slow")
    assert "INC-" in reply, reply
    number = int(reply.split("INC-")[1].split()[0])
    await bed.run_jobs()
    return number, bed.incident_channel(number).id


async def test_a_pinned_message_keeps_its_original_utc_time(bed) -> None:
    _, channel = await _open(bed)
    await bed.emu.user_post_message(OTHER, channel, "p99 is 4 s since the deploy")
    message = bed.emu.messages(channel)[-1]
    sent = []
    bed.emu.on_event = lambda envelope: _deliver(bed, envelope, sent)  # signed, to /slack/events
    await bed.emu.user_pin(OTHER, channel, message.ts)
    assert [s.status for s in sent] == [200]

    async def pinned() -> list[TimelineEvent]:
        async with bed.rt.sessions() as session:
            return list((await session.execute(select(TimelineEvent).where(
                TimelineEvent.kind == EventKind.PINNED_MESSAGE))).scalars())

    found: list[TimelineEvent] = []
    for _ in range(500):  # the listener runs after the ack
        if found := await pinned():
            break
        await asyncio.sleep(0.01)
    [event_row] = found
    assert event_row.occurred_at == datetime.fromtimestamp(float(message.ts), tz=UTC)


async def _deliver(bed, envelope: dict, sent: list) -> None:
    sent.append(await bed.event(envelope["event"], event_id=envelope["event_id"]))


async def test_a_page_acknowledged_from_its_dm_shows_when_it_was_sent_in_utc(bed) -> None:
    """When the page's record does not name its message, the time comes from the DM's ts."""
    _, channel = await _open(bed)
    assert "Paged" in await bed.run_command(f"page <@{DANA}> look at the index", channel=channel)
    [dm] = [m for m in bed.emu.dms(DANA) if (m.text or "").startswith("Page: ")]
    async with bed.rt.sessions() as session:
        await session.execute(update(Page).values(provider_ids={}))
        await session.commit()
    await bed.click(user=DANA, channel=dm.channel_id, message_ts=dm.ts, action_id=ActionId.PAGE_ACK)
    await bed.wait_for(lambda: "Acknowledged by" in str(bed.emu.message(dm.channel_id, dm.ts).blocks))
    shown = str(bed.emu.message(dm.channel_id, dm.ts).blocks)
    sent = datetime.fromtimestamp(float(dm.ts), tz=UTC)
    assert f"<!date^{int(sent.timestamp())}^" in shown
    assert sent.strftime("|%Y-%m-%d %H:%M UTC>") in shown, shown
