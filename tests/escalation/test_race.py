"""Races: a page against the ack, and two Firebreak processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.db.engine import transaction
from bot.emulator.pagerduty import PagerDutyFake
from bot.escalation.models import Page, PageOutcome
from bot.incidents import service as incidents
from bot.incidents.models import EventKind
from tests.escalation.conftest import (
    AVA,
    CHEN,
    ESCALATION_YAML,
    START,
    Harness,
    make_harness,
    write_playbooks,
)
from tests.pagers.conftest import PD_KEY
from tests.pagers.test_pagerduty import validate_against_spec
from tests.support.locks import LockLog

# P1 pages PagerDuty first, then the on-call primary; the secondary at +15m.
PAGERDUTY_FIRST = ESCALATION_YAML.replace(
    '  P1:\n    - {after: 0m, notify: ["oncall:backend", "pagerduty:default"]}',
    '  P1:\n    - {after: 0m, notify: ["pagerduty:default", "oncall:backend"]}')


class GatedPagerDuty(PagerDutyFake):
    """Holds each request until ``release`` is set, so a test can act while a page is in flight."""

    def __init__(self) -> None:
        super().__init__(routing_keys={PD_KEY}, validator=validate_against_spec)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def _enqueue(self, request):
        self.entered.set()
        await self.release.wait()
        return await super()._enqueue(request)


@pytest.fixture
async def gated_pd():
    async with GatedPagerDuty() as fake:
        yield fake


@pytest.fixture
async def gated(database_url, clock, tmp_path, emu, gated_pd, og, http, retry):
    playbooks = write_playbooks(tmp_path / "pb", PAGERDUTY_FIRST)
    made = await make_harness(database_url, clock=clock, playbooks=playbooks, emu=emu, pd=gated_pd,
                              og=og, http=http, retry=retry)
    yield made
    gated_pd.release.set()
    await made.close()


async def test_a_page_in_flight_goes_out_before_the_ack_commits_and_stops_the_rest(
    gated: Harness, gated_pd: GatedPagerDuty
) -> None:
    h = gated
    incident = await h.open("P1")
    locks = LockLog(h.db)
    running = asyncio.create_task(h.run())
    await asyncio.wait_for(gated_pd.entered.wait(), 10)  # PagerDuty has the trigger, unanswered
    mark = locks.mark()
    acking = asyncio.create_task(h.ack(incident.number, AVA))
    asked = await locks.asked(after=mark)  # the ack is at the incident's lock, held by the page in flight
    gated_pd.release.set()
    await asyncio.wait_for(acking, 10)
    await asyncio.wait_for(running, 10)
    locks.waited(asked)  # and got it only once the page's transaction had ended
    await h.run()
    await h.at(30)
    events = await h.events(incident.number)
    acked = next(e for e in events if e.kind == EventKind.ACKNOWLEDGED)
    pages = [e for e in events if e.kind in (EventKind.PAGE_SENT, EventKind.PAGE_DELIVERED)]
    assert pages[0].data["recipient"] == "pagerduty:default"
    # Every page was recorded (and committed, with the send) before the acknowledgement;
    # the level's next target (chen) went out before it too or not at all.
    assert all(page.id < acked.id for page in pages) and len(pages) in (1, 2)
    assert len(h.page_dms(CHEN)) == len(pages) - 1 and h.page_dms(AVA) == []
    assert [r.json["event_action"] for r in gated_pd.requests] == ["trigger", "acknowledge"]


async def test_a_page_that_waits_for_a_committing_ack_is_not_sent(
    gated: Harness, gated_pd: GatedPagerDuty
) -> None:
    h = gated
    gated_pd.release.set()
    incident = await h.open("P1")
    locks = LockLog(h.db)
    # The ack takes the row lock first and commits only after the worker is waiting for it.
    async with transaction(h.sessions) as session:
        locked = await incidents.get_incident(session=session, number=incident.number, for_update=True)
        await incidents.acknowledge(session=session, incident=locked, actor=AVA, now=h.clock.now())
        mark = locks.mark()
        running = asyncio.create_task(h.run())
        asked = await locks.asked(after=mark)  # the worker is at the lock the ack holds
    await asyncio.wait_for(running, 10)
    locks.waited(asked)
    await h.at(30)
    assert await h.run() == 0  # nothing left to run: the absence of pages below is final
    assert gated_pd.requests == [] and h.page_dms(CHEN) == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize(("lease", "count"), [(timedelta(minutes=2), 200), (timedelta(seconds=-1), 40)],
                         ids=["leases-held", "leases-expired-at-once"])
async def test_two_processes_page_every_incident_exactly_once(
    database_url, clock, tmp_path, emu, pd, og, http, retry, lease, count
) -> None:
    """Two engines (own pools, sessions, workers) race over 200 P1 incidents.

    With ``leases-expired-at-once`` every claimed job is immediately claimable by
    the other process too, so both run the same levels at the same time: only the
    incident lock and the page rows keep each page single.
    """
    playbooks = write_playbooks(tmp_path / "pb")
    processes = [
        await make_harness(database_url, clock=clock, playbooks=playbooks, emu=emu, pd=pd, og=og,
                           http=http, retry=retry, worker_id=name, lease=lease, slack_effects=False)
        for name in ("a", "b")
    ]
    try:
        for number in range(count):
            await processes[number % 2].open("P1", title=f"incident {number}")
        for minute in (0, 15, 16):
            clock.set(START + timedelta(minutes=minute))
            while sum(await asyncio.gather(*(p.run() for p in processes))):
                pass
        triggers = Counter(r.json["dedup_key"] for r in pd.requests if r.json["event_action"] == "trigger")
        assert len(triggers) == count and set(triggers.values()) == {1}
        for user in (CHEN, AVA):  # level 1 primary, level 2 secondary
            received = Counter(m.text.split()[1] for m in processes[0].page_dms(user))
            assert len(received) == count and set(received.values()) == {1}, user
        async with processes[0].sessions() as session:
            pages = list((await session.execute(select(Page))).scalars())
        assert {p.outcome for p in pages} == {PageOutcome.DELIVERED, PageOutcome.SENT}
        assert Counter(p.recipient for p in pages) == {
            "pagerduty:default": count, f"user:{CHEN}": count, f"user:{AVA}": count}
    finally:
        for process in processes:
            await process.close()
