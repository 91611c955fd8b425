"""The job worker when the database fails under it: jobs are never lost, the log stays readable."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from sqlalchemy import event, text

from bot.clock import ManualClock
from bot.db.engine import create_engine, create_sessionmaker, transaction
from bot.db.migrate import upgrade_async
from bot.jobs import service as jobs
from bot.jobs.models import Job, JobState
from bot.jobs.worker import Worker


async def test_an_outcome_that_cannot_be_recorded_is_logged_and_the_job_comes_back(database_url,
                                                                                     caplog):
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    clock = ManualClock()
    runs = []

    async def lose_the_database(job: Job) -> None:
        runs.append(job.id)
        if len(runs) == 1:  # the database refuses every write from here on
            async with engine.begin() as conn:
                await conn.execute(text("ALTER TABLE jobs RENAME TO jobs_away"))

    worker = Worker(sessions=sessions, clock=clock, handlers={"flaky": lose_the_database},
                    lease=timedelta(seconds=30))
    try:
        async with transaction(sessions) as session:
            job_id = await jobs.enqueue(session=session, kind="flaky", due_at=clock.now(),
                                        now=clock.now())
        with caplog.at_level(logging.WARNING, logger="bot.jobs.worker"):
            assert await worker.run_job(job_id)  # no exception escapes the worker
        assert f"could not record the outcome of job {job_id} (flaky)" in caplog.text

        async with engine.begin() as conn:  # the database is back
            await conn.execute(text("ALTER TABLE jobs_away RENAME TO jobs"))
        assert await worker.run_due() == 0  # still leased to the run whose outcome was lost
        clock.advance(timedelta(seconds=31))
        assert await worker.run_due() == 1 and runs == [job_id, job_id]
        async with sessions() as session:
            assert (await session.get(Job, job_id)).state == JobState.DONE.value
    finally:
        await engine.dispose()


async def test_an_unreachable_database_is_reported_once_per_outage(tmp_path, caplog):
    url = f"sqlite+aiosqlite:///{tmp_path / 'not-yet' / 'firebreak.db'}"  # folder missing: down
    engine = create_engine(url)
    polls = {"connect": 0, "claim": 0}  # the worker's tries to connect, and its claims that ran

    @event.listens_for(engine.sync_engine, "do_connect")
    def connecting(*_args) -> None:
        polls["connect"] += 1

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def claimed(_conn, _cursor, statement, *_args) -> None:
        if "FROM jobs" in statement:
            polls["claim"] += 1

    async def until(what: str, count: int) -> None:  # counted, not timed: slow machines poll less
        deadline = time.monotonic() + 20
        while polls[what] < count:
            assert time.monotonic() < deadline, (what, polls)
            await asyncio.sleep(0.01)

    worker = Worker(sessions=create_sessionmaker(engine), clock=ManualClock(), handlers={},
                    poll_seconds=0.01)
    try:
        with caplog.at_level(logging.INFO, logger="bot.jobs.worker"):
            worker.start()
            await until("connect", 10)  # ten polls failed
            (tmp_path / "not-yet").mkdir()
            await upgrade_async(url)
            await until("claim", 10)  # ten polls reached it again
            await worker.stop()
        messages = [r.getMessage() for r in caplog.records if r.name == "bot.jobs.worker"]
        assert sum("cannot reach the database" in m for m in messages) == 1, messages
        assert messages.count("worker reached the database again") == 1
    finally:
        await engine.dispose()
