"""The worker's loop picks up follow-up work at once, not on its next poll."""

from __future__ import annotations

import asyncio
import time

from bot.clock import SystemClock
from bot.db.engine import create_engine, create_sessionmaker, transaction
from bot.jobs import service as jobs
from bot.jobs.models import Job
from bot.jobs.worker import Worker


async def test_a_job_enqueued_by_a_job_runs_without_waiting_for_the_poll(database_url):
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    clock = SystemClock()
    ran: dict[str, float] = {}

    async def first(job: Job) -> None:
        ran["first"] = time.monotonic()
        async with transaction(sessions) as session:  # e.g. the plan enqueues the first page
            await jobs.enqueue(session=session, kind="second", due_at=clock.now(), now=clock.now())

    async def second(job: Job) -> None:
        ran["second"] = time.monotonic()

    worker = Worker(sessions=sessions, clock=clock, handlers={"first": first, "second": second},
                    poll_seconds=30)
    try:
        worker.start()
        await asyncio.sleep(0.1)  # the loop is idle now, waiting up to 30 s
        async with transaction(sessions) as session:
            await jobs.enqueue(session=session, kind="first", due_at=clock.now(), now=clock.now())
        worker.wake()
        deadline = time.monotonic() + 5
        while "second" not in ran and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert "second" in ran and ran["second"] - ran["first"] < 1.0
    finally:
        await worker.stop()
        await engine.dispose()
