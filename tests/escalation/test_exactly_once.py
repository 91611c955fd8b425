"""Exactly one page per recipient and step, whatever fails: a process dying mid-send, rate limits.

A crash is simulated in-process and deterministically: a pager wrapper raises
:class:`ProcessDied` (a BaseException, like a task being torn down, that nothing
in the worker catches) right before or right after the real pager delivered the
page to the fake. The open transaction is rolled back, the job stays *running*
under the dead worker's lease, and a fresh "process" (its own engine, pool,
clients and worker id) on the same database takes the job over once the lease
has run out, as after ``kill -9`` and a restart.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from bot.db.engine import transaction
from bot.escalation import service as escalation
from bot.escalation.engine import MAX_DEFERRALS
from bot.escalation.models import PageOutcome
from bot.incidents import service as incidents
from bot.incidents.models import EventKind
from bot.jobs.models import JobState
from bot.pagers.base import Pager, PageRequest, PageResult
from bot.playbooks.targets import Target
from tests.escalation.conftest import AVA, BEN, CHEN, DANA, SQLITE_ONLY, START, Harness, make_harness
from tests.support.crash import ProcessDied
from tests.support.locks import LockLog

LEASE = timedelta(minutes=2)


class CrashingPager:
    """Delegates to ``inner``; the first page to ``target`` dies before or after it was delivered."""

    def __init__(self, inner: Pager, *, target: str, when: str) -> None:
        self.inner, self.target, self.when = inner, target, when
        self.armed = True

    async def page(self, target: str, request: PageRequest) -> PageResult:
        crash = self.armed and target == self.target
        if crash and self.when == "before":
            self.armed = False
            raise ProcessDied(f"died before sending to {target}")
        result = await self.inner.page(target, request)
        if crash:
            self.armed = False
            raise ProcessDied(f"died after {target} got the page, before the commit")
        return result

    async def acknowledge(self, target: str, request: PageRequest) -> None:
        await self.inner.acknowledge(target, request)

    async def resolve(self, target: str, request: PageRequest) -> None:
        await self.inner.resolve(target, request)


async def _process(database_url, clock, playbooks, emu, pd, og, http, retry, name: str) -> Harness:
    return await make_harness(database_url, clock=clock, playbooks=playbooks, emu=emu, pd=pd, og=og,
                              http=http, retry=retry, worker_id=name, lease=LEASE, slack_effects=False)


async def _crash_level_one(first: Harness, kind: str, when: str) -> int:
    """Open a P0 (level 1: chen's DM, then PagerDuty) and let the process die on ``kind``."""
    target = f"user:{CHEN}" if kind == "user" else "pagerduty:default"
    first.pagers[kind] = CrashingPager(first.pagers[kind], target=target, when=when)
    incident = await first.open("P0")
    with pytest.raises(ProcessDied):
        await first.run()
    await first.close()
    return incident.number


@pytest.mark.parametrize(
    ("kind", "when"),
    [("user", "after"), ("user", "before"), ("pagerduty", "after"), ("pagerduty", "before")],
    ids=["dm-delivered-then-crash", "crash-before-dm", "pagerduty-accepted-then-crash",
         "crash-before-pagerduty"],
)
async def test_a_crash_at_any_point_of_a_level_pages_everyone_once(
    database_url, clock, playbooks, emu, pd, og, http, retry, kind, when
) -> None:
    first = await _process(database_url, clock, playbooks, emu, pd, og, http, retry, "before-crash")
    number = await _crash_level_one(first, kind, when)
    dms_before = len(first.page_dms(CHEN, number))
    assert dms_before == (0 if (kind, when) == ("user", "before") else 1)

    restarted = await _process(database_url, clock, playbooks, emu, pd, og, http, retry, "after-restart")
    try:
        await restarted.run()
        assert len(restarted.page_dms(CHEN, number)) == dms_before  # the job is still leased to the dead worker
        clock.advance(LEASE + timedelta(seconds=1))
        await restarted.run()
        await restarted.run()

        assert len(restarted.page_dms(CHEN, number)) == 1, "the on-call got the DM once"
        key = f"firebreak-INC-{number}"
        assert len(pd.incidents_for(key)) == 1, "one PagerDuty alert"
        pages = await restarted.pages(number)
        assert Counter(p.recipient for p in pages) == {f"user:{CHEN}": 1, "pagerduty:default": 1}
        assert {p.recipient: p.outcome for p in pages} == {
            f"user:{CHEN}": PageOutcome.DELIVERED, "pagerduty:default": PageOutcome.SENT}
        dm = restarted.page_dms(CHEN, number)[0]
        chen = next(p for p in pages if p.recipient == f"user:{CHEN}")
        assert chen.provider_ids["ts"] == dm.ts  # the row points at the one DM (found or sent)
        delivered = await restarted.events(number, EventKind.PAGE_DELIVERED, EventKind.PAGE_SENT)
        assert Counter(e.data["recipient"] for e in delivered) == {f"user:{CHEN}": 1, "pagerduty:default": 1}
        [job] = [j for j in await restarted.jobs(escalation.LEVEL) if j.payload["level"] == 0]
        assert job.state == JobState.DONE

        await restarted.at(5)  # and the escalation goes on from there: level 2, once each
        assert len(restarted.page_dms(AVA, number)) == 1 and len(restarted.page_dms(DANA, number)) == 1
        assert len(restarted.page_dms(CHEN, number)) == 1
    finally:
        await restarted.close()


async def test_an_ack_between_the_crash_and_the_restart_reaches_pagerduty(
    database_url, clock, playbooks, emu, pd, og, http, retry
) -> None:
    """PagerDuty accepted the trigger, the process died before recording it, then someone
    acknowledged: the alert open at PagerDuty is acknowledged too, and nothing more is paged."""
    first = await _process(database_url, clock, playbooks, emu, pd, og, http, retry, "before-crash")
    number = await _crash_level_one(first, "pagerduty", "after")
    restarted = await _process(database_url, clock, playbooks, emu, pd, og, http, retry, "after-restart")
    try:
        await restarted.ack(number, CHEN)
        await restarted.run()
        alert = pd.incidents[f"firebreak-INC-{number}"]
        assert alert.status == "acknowledged" and alert.actions == ["trigger", "acknowledge"]
        clock.advance(LEASE + timedelta(seconds=1))
        await restarted.run()
        for minute in (5, 15, 60):
            await restarted.at(minute)
        assert len(restarted.page_dms(CHEN, number)) == 1 and restarted.page_dms(AVA, number) == []
        assert alert.actions == ["trigger", "acknowledge"]
    finally:
        await restarted.close()


async def test_a_rate_limited_dm_is_put_off_until_retry_after_and_the_level_goes_on(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")
    number = incident.number
    await h.run()  # level 1, the channel set up
    h.clock.set(START + timedelta(minutes=5))  # level 2: ava (secondary), then dana (S0LEADS)
    h.emu.rate_limit_next("chat.postMessage", retry_after=30)  # the first post now: ava's DM
    posts_before = len(h.emu.calls_to("chat.postMessage"))
    await h.run()
    # The 429 was not waited out and retried in place: ava's DM was tried once in this run.
    ava_dm = h.emu.workspace.im_with(AVA).id
    tries = [c for c in h.emu.calls_to("chat.postMessage")[posts_before:] if c.params["channel"] == ava_dm]
    assert [c.status for c in tries] == [429]
    assert h.page_dms(AVA, number) == []
    assert len(h.page_dms(DANA, number)) == 1  # the level's other target went out meanwhile
    [job] = [j for j in await h.jobs(escalation.LEVEL) if j.payload["level"] == 1]
    assert job.state == JobState.PENDING and job.due_at == START + timedelta(minutes=5, seconds=30)
    assert "ratelimited" in (job.last_error or "")

    h.clock.advance(29)
    await h.run()
    assert h.page_dms(AVA, number) == []
    h.clock.advance(1)
    await h.run()
    assert len(h.page_dms(AVA, number)) == 1 and len(h.page_dms(DANA, number)) == 1
    pages = {p.recipient: p for p in await h.pages(number) if p.level == 1}
    assert pages[f"user:{AVA}"].outcome == PageOutcome.DELIVERED
    assert pages[f"user:{AVA}"].sent_at - pages[f"user:{AVA}"].due_at == timedelta(seconds=30)
    await h.run()  # the channel hears about the whole level once, when it is complete
    channel = (await h.incident(number)).channel_id
    lines = [t for t in h.channel_texts(channel) if t.startswith(f":pager: INC-{number} escalation level 2")]
    assert lines == [f":pager: INC-{number} escalation level 2: paged <@{AVA}>, <@{DANA}>"]


async def test_a_put_off_page_is_not_sent_after_an_ack(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")
    await h.run()
    h.clock.set(START + timedelta(minutes=5))
    h.emu.rate_limit_next("chat.postMessage", retry_after=30)  # ava's level-2 DM
    await h.run()
    assert h.page_dms(AVA, incident.number) == []
    await h.ack(incident.number, BEN)
    [job] = [j for j in await h.jobs(escalation.LEVEL) if j.payload["level"] == 1]
    assert job.state == JobState.CANCELLED
    for seconds in (330, 360, 3600):
        h.clock.set(START + timedelta(seconds=seconds))
        await h.run()
    assert h.page_dms(AVA) == []


@SQLITE_ONLY
async def test_a_page_rate_limited_too_often_is_reported_as_failed(
    database_url, clock, playbooks, emu, pd, og, http, retry
) -> None:
    h = await _process(database_url, clock, playbooks, emu, pd, og, http, retry, "only")
    try:
        h.emu.rate_limit_next("chat.postMessage", retry_after=5, times=MAX_DEFERRALS + 1)
        incident = await h.open("P1")  # level 1: chen, PagerDuty
        await h.run()
        for _ in range(MAX_DEFERRALS):
            h.clock.advance(5)
            await h.run()
        [page] = [p for p in await h.pages(incident.number) if p.recipient == f"user:{CHEN}"]
        assert page.outcome == PageOutcome.FAILED
        assert "ratelimited" in page.detail and f"gave up after {MAX_DEFERRALS + 1} tries" in page.detail
        assert h.page_dms(CHEN) == []
        # Each retry looked for an earlier try's DM first (never blindly posted again).
        assert len(h.emu.calls_to("conversations.history")) == MAX_DEFERRALS
        events = await h.events(incident.number, EventKind.PAGE_FAILED)
        assert [e.data["recipient"] for e in events] == [f"user:{CHEN}"]
    finally:
        await h.close()


async def _manual_page(h: Harness, number: int, target: str, message: str, actor: str) -> None:
    async with transaction(h.sessions) as session:
        incident = await incidents.get_incident(session=session, number=number, for_update=True)
        request = await escalation.request_manual_page(session=session, incident=incident,
                                                       target=Target.parse(target), message=message,
                                                       actor=actor, now=h.clock.now())
    await h.worker.run_job(request.job_id)


@SQLITE_ONLY
async def test_a_manual_page_dm_says_it_is_a_manual_page_and_who_sent_it(harness: Harness) -> None:
    h = harness
    incident = await h.open("P2")
    await h.run()
    await _manual_page(h, incident.number, f"user:{DANA}", "can you look at the index?", BEN)
    [dm] = h.page_dms(DANA, incident.number)
    assert dm.text.startswith(f"Page: INC-{incident.number} P2 (manual page from <@{BEN}>): ")
    assert f"manual page from <@{BEN}>" in str(dm.blocks) and "escalation level" not in str(dm.blocks)
    assert dm.metadata["event_payload"]["manual"] is True
    [page] = [p for p in await h.pages(incident.number) if p.recipient == f"user:{DANA}"]
    assert page.paged_by == BEN and page.level is None
    await h.ack(incident.number, DANA)
    await h.run()  # the mirror replaces the button, and still says what the page was
    updated = h.emu.message(dm.channel_id, dm.ts)
    assert f"manual page from <@{BEN}>" in str(updated.blocks) and "escalation level" not in str(updated.blocks)
    assert f"Acknowledged by <@{DANA}>" in str(updated.blocks)


async def test_two_processes_racing_a_level_with_a_crash_in_between_page_once(
    database_url, clock, playbooks, emu, pd, og, http, retry
) -> None:
    """A worker whose lease ran out is still running the level when another takes it over,
    and dies after its DM went out: the other worker finds the DM instead of sending it again."""
    first = await _process(database_url, clock, playbooks, emu, pd, og, http, retry, "a")
    second = await _process(database_url, clock, playbooks, emu, pd, og, http, retry, "b")
    try:
        gate, release = asyncio.Event(), asyncio.Event()
        inner = first.pagers["user"]

        class SlowThenDead(CrashingPager):
            async def page(self, target: str, request: PageRequest) -> PageResult:
                await inner.page(target, request)
                gate.set()
                await release.wait()
                raise ProcessDied("died after the DM, before the commit")

        first.pagers["user"] = SlowThenDead(inner, target=f"user:{CHEN}", when="after")
        incident = await first.open("P1")  # level 1: chen, PagerDuty
        locks = LockLog(first.db, second.db)
        running = asyncio.create_task(first.run())  # the plan, then level 1
        await asyncio.wait_for(gate.wait(), 10)
        clock.advance(LEASE + timedelta(seconds=1))  # a's lease runs out while it holds the lock
        mark = locks.mark()
        taking_over = asyncio.create_task(second.run())
        asked = await locks.asked(after=mark)  # b is at the incident's lock, which a holds
        release.set()
        with pytest.raises(ProcessDied):
            await running
        await asyncio.wait_for(taking_over, 10)
        locks.waited(asked)  # b got the lock only once a's transaction was rolled back
        assert len(second.page_dms(CHEN, incident.number)) == 1
        [page] = [p for p in await second.pages(incident.number) if p.recipient == f"user:{CHEN}"]
        assert "earlier try" in page.detail and page.provider_ids["ts"] == second.page_dms(CHEN, incident.number)[0].ts
    finally:
        await first.close()
        await second.close()
