"""Enqueue, claim and settle durable jobs; claim de-duplicated Slack deliveries.

Claiming is safe across several processes on PostgreSQL (``FOR UPDATE SKIP
LOCKED``) and across tasks of one process on SQLite (``BEGIN IMMEDIATE``
serialises writers).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db.engine import SessionMaker, transaction
from bot.jobs.models import Job, JobState, SlackDelivery


def _insert(session: AsyncSession, model: type):
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(model)


async def insert_ignore(session: AsyncSession, model: type, **values: Any) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on the primary key; True if a row was added."""
    result = await session.execute(_insert(session, model).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)


async def enqueue(
    *,
    session: AsyncSession,
    kind: str,
    due_at: datetime,
    now: datetime,
    payload: dict[str, Any] | None = None,
    incident_id: int | None = None,
    dedup_key: str | None = None,
    max_attempts: int = 8,
) -> int | None:
    """Add a job in the caller's transaction; with ``dedup_key``, at most once ever.

    Returns the new job id, or None when a job with that key already exists.
    """
    values = {
        "kind": kind, "due_at": due_at, "created_at": now, "payload": payload or {},
        "incident_id": incident_id, "dedup_key": dedup_key, "max_attempts": max_attempts,
        "state": JobState.PENDING.value, "attempts": 0,
    }
    stmt = _insert(session, Job).values(**values)
    if dedup_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedup_key"])
    result = await session.execute(stmt.returning(Job.id))
    return result.scalar_one_or_none()


async def cancel_jobs(
    *, session: AsyncSession, incident_id: int, kinds: Iterable[str], now: datetime
) -> int:
    """Cancel pending jobs of these kinds for an incident (in the caller's transaction)."""
    result = await session.execute(
        update(Job)
        .where(Job.incident_id == incident_id, Job.kind.in_(list(kinds)),
               Job.state == JobState.PENDING.value)
        .values(state=JobState.CANCELLED.value, finished_at=now)
    )
    return result.rowcount or 0


async def rearm(*, session: AsyncSession, dedup_key: str, now: datetime) -> bool:
    """Make a job that gave up (failed) due again, with its tries counted afresh."""
    result = await session.execute(
        update(Job).where(Job.dedup_key == dedup_key, Job.state == JobState.FAILED.value)
        .values(state=JobState.PENDING.value, attempts=0, due_at=now, finished_at=None,
                locked_by=None, locked_until=None))
    return bool(result.rowcount)


def _claimable(now: datetime):
    return or_(
        and_(Job.state == JobState.PENDING.value, Job.due_at <= now),
        and_(Job.state == JobState.RUNNING.value, Job.locked_until < now),
    )


async def claim_due(
    *,
    sessions: SessionMaker,
    now: datetime,
    worker_id: str,
    lease: timedelta,
    limit: int = 20,
    kinds: Iterable[str] | None = None,
) -> list[Job]:
    """Take up to ``limit`` due jobs (or jobs whose holder's lease ran out)."""
    async with transaction(sessions) as session:
        query = select(Job).where(_claimable(now)).order_by(Job.due_at, Job.id).limit(limit)
        if kinds is not None:
            query = query.where(Job.kind.in_(list(kinds)))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        jobs = list((await session.execute(query)).scalars())
        for job in jobs:
            job.state = JobState.RUNNING
            job.locked_by = worker_id
            job.locked_until = now + lease
            job.attempts += 1
        await session.flush()
        return jobs


async def claim_job(
    *, sessions: SessionMaker, job_id: int, now: datetime, worker_id: str, lease: timedelta
) -> Job | None:
    """Take one job now if it is due or waiting for a retry (the fast path after a request)."""
    async with transaction(sessions) as session:
        query = select(Job).where(
            Job.id == job_id,
            or_(Job.state == JobState.PENDING.value,
                and_(Job.state == JobState.RUNNING.value, Job.locked_until < now)),
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job = (await session.execute(query)).scalar_one_or_none()
        if job is None:
            return None
        job.state = JobState.RUNNING
        job.locked_by = worker_id
        job.locked_until = now + lease
        job.attempts += 1
        return job


async def job_id_for_key(*, sessions: SessionMaker, dedup_key: str) -> int | None:
    async with sessions() as session:
        result = await session.execute(select(Job.id).where(Job.dedup_key == dedup_key))
        return result.scalar_one_or_none()


async def _settle(sessions: SessionMaker, job: Job, worker_id: str, **values: Any) -> bool:
    async with transaction(sessions) as session:
        result = await session.execute(
            update(Job)
            .where(Job.id == job.id, Job.state == JobState.RUNNING.value, Job.locked_by == worker_id)
            .values(**values)
        )
        return bool(result.rowcount)


async def mark_done(*, sessions: SessionMaker, job: Job, worker_id: str, now: datetime) -> bool:
    return await _settle(
        sessions, job, worker_id, state=JobState.DONE.value, finished_at=now, locked_until=None
    )


async def mark_done_in(*, session: AsyncSession, job: Job, now: datetime) -> None:
    """Settle a job inside the handler's own transaction (for exactly-once effects)."""
    await session.execute(
        update(Job).where(Job.id == job.id)
        .values(state=JobState.DONE.value, finished_at=now, locked_until=None)
    )


async def reschedule(
    *, sessions: SessionMaker, job: Job, worker_id: str, due_at: datetime, error: str | None
) -> bool:
    return await _settle(
        sessions, job, worker_id, state=JobState.PENDING.value, due_at=due_at,
        locked_until=None, locked_by=None, last_error=(error or None) and error[:1000],
    )


async def mark_failed(
    *, sessions: SessionMaker, job: Job, worker_id: str, now: datetime, error: str
) -> bool:
    return await _settle(
        sessions, job, worker_id, state=JobState.FAILED.value, finished_at=now,
        locked_until=None, last_error=error[:1000],
    )


async def claim_delivery(
    *, session: AsyncSession, key: str, kind: str, now: datetime
) -> bool:
    """Record a Slack delivery in the caller's transaction; False if it was seen before."""
    return await insert_ignore(session, SlackDelivery, key=key[:200], kind=kind, received_at=now)


async def delivery_result(*, session: AsyncSession, key: str) -> str | None:
    delivery = await session.get(SlackDelivery, key[:200])
    return delivery.result if delivery else None


async def set_delivery_result(*, session: AsyncSession, key: str, result: str) -> None:
    await session.execute(
        update(SlackDelivery).where(SlackDelivery.key == key[:200]).values(result=result)
    )
