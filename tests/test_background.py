"""The after-ack runner: bounded, tracked, drained; and what Slack sees when it is saturated."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlmodel import select

from bot.background import BackgroundWork
from bot.incidents.models import Incident, TimelineEvent
from handlers.common import OVERLOADED
from tests.support.bed import REPORTER, start_bed, stop_bed


async def test_no_more_than_concurrency_pieces_run_at_once():
    runner = BackgroundWork(concurrency=3, queue_limit=100)
    running, peak = 0, 0

    async def work():
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    for i in range(20):
        runner.spawn(work, name=f"w{i}")
    assert runner.pending == 20
    await runner.drain()
    assert (peak, runner.completed, runner.pending) == (3, 20, 0)


async def test_a_failing_piece_is_logged_and_counted_and_others_go_on(caplog):
    runner = BackgroundWork(concurrency=2)

    async def boom():
        raise RuntimeError("provider exploded")

    async def fine():
        return None

    with caplog.at_level(logging.ERROR, logger="firebreak.background"):
        runner.spawn(boom, name="boom")
        runner.spawn(fine, name="fine")
        await runner.drain()
    assert (runner.failed, runner.completed) == (1, 1)
    assert "background work boom failed" in caplog.text


async def test_saturation_and_drain_timeout_cancels_what_is_left():
    runner = BackgroundWork(concurrency=1, queue_limit=2)
    release = asyncio.Event()
    runner.spawn(release.wait, name="stuck")
    assert not runner.saturated
    runner.spawn(release.wait, name="waiting")
    assert runner.saturated
    await runner.drain(timeout=0.05)
    assert runner.pending == 0 and runner.saturated  # closed: takes no more work


@pytest.fixture
async def narrow_bed(database_url):
    bed = await start_bed(database_url, settings_overrides={"work_concurrency": 1,
                                                            "work_queue_limit": 1})
    try:
        yield bed
    finally:
        await stop_bed(bed)


def hold_slack(bed, method: str) -> asyncio.Event:
    """Calls to ``method`` get no answer until the returned event is set."""
    release = asyncio.Event()

    async def held(_seconds: float) -> None:
        await release.wait()

    bed.emu.sleep = held
    bed.emu.delay(method, 1.0)  # waited with ``held``: until released
    return release


async def test_saturated_bot_refuses_in_the_ack_and_changes_nothing(narrow_bed):
    bed = narrow_bed
    release = hold_slack(bed, "conversations.create")
    try:
        first = await bed.command("open P2 slow slack")
        assert first.status == 200 and not first.body  # accepted; its work holds the only slot
        refused = await bed.command("open P1 while saturated")
        assert refused.status == 200
        assert refused.json == {"response_type": "ephemeral", "text": OVERLOADED}
    finally:
        release.set()
    await bed.reply(first)
    await bed.settle()
    async with bed.rt.sessions() as session:
        titles = [i.title for i in (await session.exec(select(Incident))).all()]
    assert titles == ["slow slack"]
    again = await bed.run_command("open P1 after the burst")
    assert "INC-2 opened" in again


async def test_a_saturated_bot_answers_events_503_and_takes_the_redelivery(narrow_bed):
    """Slack delivers an event again when the answer is not 2xx: a busy Firebreak says 503
    rather than accepting an event it would drop, and handles it when it comes again."""
    bed = narrow_bed
    await bed.run_command("open P2 checkout is slow")
    await bed.settle()
    channel = bed.incident_channel(1).id
    await bed.emu.user_post_message(REPORTER, channel, "p99 is 4 s since 10:02")
    message = bed.emu.messages(channel)[-1]
    pin = bed.pin_added(channel, message, by=REPORTER)

    release = hold_slack(bed, "conversations.create")
    try:
        busy = await bed.command("open P3 search is slow")  # its work holds the only slot
        assert busy.status == 200 and not busy.body
        deferred = await bed.event(pin, event_id="EvBUSY1")
        assert deferred.status == 503
    finally:
        release.set()
    await bed.settle()
    assert await _pinned(bed) == []  # the refused delivery did nothing
    redelivered = await bed.event(pin, event_id="EvBUSY1", retry_num=1)
    assert redelivered.status == 200
    await bed.settle()
    assert await _pinned(bed) == ["p99 is 4 s since 10:02"]


async def _pinned(bed) -> list[str]:
    async with bed.rt.sessions() as session:
        events = (await session.exec(select(TimelineEvent).where(TimelineEvent.kind == "pinned_message"))).all()
    return [e.text for e in events]


async def test_drain_drops_the_unstarted_first_and_lets_the_running_finish_within_grace(caplog):
    runner = BackgroundWork(concurrency=1)
    finished = []

    async def slow():
        await asyncio.sleep(0.2)
        finished.append("slow")

    async def never_started():
        finished.append("queued")

    runner.spawn(slow, name="slow one")
    runner.spawn(never_started, name="/incident note")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="firebreak.background"):
        await runner.drain(timeout=0.05, grace=1.0)
    assert finished == ["slow"]  # the running piece was not cut off mid-way
    assert "/incident note was acknowledged to Slack but never worked on" in caplog.text
    assert runner.pending == 0
