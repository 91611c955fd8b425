"""The worker's loop picks up follow-up work at once, not on its next poll."""

from __future__ import annotations

import asyncio

from bot.clock import SystemClock
from bot.db.engine import create_engine, create_sessionmaker, transaction
from bot.jobs import service as jobs
from bot.jobs.models import Job
from bot.jobs.worker import Worker


async def test_a_job_enqueued_by_a_job_runs_without_waiting_for_the_poll(database_url):
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    clock = SystemClock()
    second_ran = asyncio.Event()

    async def first(job: Job) -> None:
        async with transaction(sessions) as session:  # e.g. the plan enqueues the first page
            await jobs.enqueue(session=session, kind="second", due_at=clock.now(), now=clock.now())

    async def second(job: Job) -> None:
        second_ran.set()

    # The loop polls once an hour: only its being woken can run the second job within the test.
    worker = Worker(sessions=sessions, clock=clock, handlers={"first": first, "second": second},
                    poll_seconds=3600)
    try:
        worker.start()
        async with transaction(sessions) as session:
            await jobs.enqueue(session=session, kind="first", due_at=clock.now(), now=clock.now())
        worker.wake()
        await asyncio.wait_for(second_ran.wait(), 30)
    finally:
        await worker.stop()
        await engine.dispose()
