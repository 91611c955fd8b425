"""The incident service and job queue on SQLite and PostgreSQL (no Slack involved)."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.engine import create_engine, create_sessionmaker, transaction
from bot.incidents import service
from bot.incidents.models import EventKind, IncidentState, Role, TimelineEvent
from bot.jobs import service as jobs
from bot.jobs.models import Job, JobState
from bot.jobs.worker import RetryLater, Worker
from bot.playbooks.models import Severity


@pytest.fixture
async def sessions(database_url):
    engine = create_engine(database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def _open(sessions, clock, title="db down", **kw):
    async with transaction(sessions) as s:
        return await service.open_incident(session=s, severity=Severity.P1, title=title,
                                           reporter_id="U1", now=clock.now(), **kw)


async def _events(sessions, incident):
    async with sessions() as s:
        return [e.kind for e in await service.timeline(session=s, incident=incident)]


async def test_lifecycle_records_every_change_on_the_timeline(sessions):
    clock = ManualClock()
    incident = (await _open(sessions, clock, service="api")).incident
    steps = [
        lambda s, i: service.acknowledge(session=s, incident=i, actor="U2", now=clock.now()),
        lambda s, i: service.change_severity(session=s, incident=i, severity=Severity.P0, actor="U2", now=clock.now()),
        lambda s, i: service.assign_role(session=s, incident=i, role=Role.COMMANDER, user_id="U3", actor="U2", now=clock.now()),
        lambda s, i: service.add_note(session=s, incident=i, text="restarted db", actor="U3", now=clock.now()),
        lambda s, i: service.post_status(session=s, incident=i, text="investigating", actor="U3", now=clock.now()),
        lambda s, i: service.mitigate(session=s, incident=i, actor="U3", now=clock.now()),
        lambda s, i: service.resolve(session=s, incident=i, actor="U3", now=clock.now(), summary="fixed"),
        lambda s, i: service.reopen(session=s, incident=i, actor="U3", now=clock.now()),
    ]
    for step in steps:
        clock.advance(60)
        async with transaction(sessions) as s:
            current = await service.get_incident(session=s, number=incident.number, for_update=True)
            await step(s, current)
    assert await _events(sessions, incident) == [
        "opened", "acknowledged", "severity_changed", "role_assigned", "note", "status_update",
        "mitigated", "resolved", "reopened"]
    async with sessions() as s:
        final = await service.get_incident(session=s, number=incident.number)
    assert final.state == IncidentState.ACKNOWLEDGED and final.commander_id == "U3"
    assert final.severity == Severity.P0 and final.resolved_at is None


async def test_refused_transition_changes_nothing(sessions):
    clock = ManualClock()
    incident = (await _open(sessions, clock)).incident
    async with transaction(sessions) as s:
        i = await service.get_incident(session=s, number=incident.number)
        await service.acknowledge(session=s, incident=i, actor="U2", now=clock.now())
    with pytest.raises(service.InvalidTransition, match="already acknowledged by <@U2>"):
        async with transaction(sessions) as s:
            i = await service.get_incident(session=s, number=incident.number)
            await service.acknowledge(session=s, incident=i, actor="U3", now=clock.now())
    with pytest.raises(service.IncidentError, match="limit is 3,000"):
        async with transaction(sessions) as s:
            i = await service.get_incident(session=s, number=incident.number)
            await service.add_note(session=s, incident=i, text="x" * 4000, actor="U3", now=clock.now())
    assert await _events(sessions, incident) == ["opened", "acknowledged"]


async def test_concurrent_opens_get_distinct_gap_free_numbers(sessions):
    clock = ManualClock()
    results = await asyncio.gather(*(_open(sessions, clock, title=f"t{i}") for i in range(25)))
    numbers = sorted(r.incident.number for r in results)
    assert numbers == list(range(1, 26))


async def test_same_delivery_opens_once(sessions):
    clock = ManualClock()
    first = await _open(sessions, clock, delivery_key="trigger:abc")
    again = await _open(sessions, clock, delivery_key="trigger:abc")
    assert first.created and not again.created
    assert again.incident.number == first.incident.number
    async with sessions() as s:
        assert len((await s.execute(select(TimelineEvent))).scalars().all()) == 1


async def test_reopening_an_unfinished_open_resumes_it(sessions):
    clock = ManualClock()
    first = await _open(sessions, clock)
    again = await _open(sessions, clock)  # channel never got created
    assert not again.created and again.incident.number == first.incident.number


async def test_pins_are_recorded_once_with_their_original_time(sessions):
    clock = ManualClock()
    incident = (await _open(sessions, clock)).incident
    for via in ("pin", "pushpin"):
        async with transaction(sessions) as s:
            await service.record_pinned_message(
                session=s, incident=incident, channel_id="C1", message_ts="1772460000.000100",
                author="U9", text="error rate 40%", pinned_by="U2", now=clock.now(), via=via)
    async with sessions() as s:
        events = await service.timeline(session=s, incident=incident)
    pinned = [e for e in events if e.kind == EventKind.PINNED_MESSAGE]
    assert len(pinned) == 1
    assert pinned[0].occurred_at.timestamp() == pytest.approx(1772460000.0001)


async def test_worker_runs_due_jobs_once_and_retries_failures(sessions):
    clock = ManualClock()
    seen: list[int] = []

    async def flaky(job):
        seen.append(job.id)
        if len(seen) == 1:
            raise RuntimeError("boom")

    async def later(job):
        raise RetryLater(timedelta(minutes=5))

    worker = Worker(sessions=sessions, clock=clock, handlers={"flaky": flaky, "later": later})
    async with transaction(sessions) as s:
        await jobs.enqueue(session=s, kind="flaky", due_at=clock.now(), now=clock.now(), dedup_key="k1")
        assert await jobs.enqueue(session=s, kind="flaky", due_at=clock.now(), now=clock.now(), dedup_key="k1") is None
        await jobs.enqueue(session=s, kind="later", due_at=clock.now() + timedelta(minutes=1), now=clock.now())
    assert await worker.run_due() == 1 and len(seen) == 1
    assert await worker.run_due() == 0  # the retry waits for its backoff
    clock.advance(timedelta(minutes=1))
    await worker.run_due()
    assert len(seen) == 2
    async with sessions() as s:
        states = {j.kind: j.state for j in (await s.execute(select(Job))).scalars()}
    assert states == {"flaky": JobState.DONE, "later": JobState.PENDING}


async def test_two_workers_never_run_the_same_job(sessions):
    clock = ManualClock()
    ran: list[int] = []

    async def record(job):
        ran.append(job.id)
        await asyncio.sleep(0)

    async with transaction(sessions) as s:
        for _ in range(60):
            await jobs.enqueue(session=s, kind="x", due_at=clock.now(), now=clock.now())
    workers = [Worker(sessions=sessions, clock=clock, handlers={"x": record}) for _ in range(3)]
    await asyncio.gather(*(w.run_due() for w in workers))
    assert sorted(ran) == sorted(set(ran)) and len(ran) == 60
