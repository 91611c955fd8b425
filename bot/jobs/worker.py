"""Runs due jobs: a background loop, plus ``run_due``/``run_job`` for tests and fast paths."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from bot.clock import Clock
from bot.db.engine import SessionMaker
from bot.jobs import service
from bot.jobs.models import Job

T = TypeVar("T")
log = logging.getLogger(__name__)

JobHandler = Callable[[Job], Awaitable[None]]
GiveUpHandler = Callable[[Job, str], Awaitable[None]]


class RetryLater(Exception):
    """Raised by a handler to run the job again after ``delay`` (not counted as a failure)."""

    def __init__(self, delay: timedelta, reason: str = "") -> None:
        super().__init__(reason or f"retry in {delay}")
        self.delay = delay
        self.reason = reason


def backoff(attempt: int, *, base: float = 2.0, cap: float = 300.0) -> timedelta:
    return timedelta(seconds=min(cap, base ** max(0, attempt - 1)))


class Worker:
    def __init__(
        self,
        *,
        sessions: SessionMaker,
        clock: Clock,
        handlers: dict[str, JobHandler] | None = None,
        poll_seconds: float = 1.0,
        concurrency: int = 16,
        lease: timedelta = timedelta(minutes=2),
        on_give_up: GiveUpHandler | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.handlers: dict[str, JobHandler] = dict(handlers or {})
        self.poll_seconds = poll_seconds
        self.lease = lease
        self.on_give_up = on_give_up
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._stopping = False
        self._claims_failing = False

    def register(self, kind: str, handler: JobHandler) -> None:
        self.handlers[kind] = handler

    def wake(self) -> None:
        self._wake.set()

    async def run_job(self, job_id: int) -> bool:
        """Claim and run one job now; False if another worker has it or it is settled."""
        job = await service.claim_job(
            sessions=self.sessions, job_id=job_id, now=self.clock.now(),
            worker_id=self.worker_id, lease=self.lease,
        )
        if job is None:
            return False
        await self._execute(job)
        return True

    async def run_job_by_key(self, dedup_key: str) -> bool:
        job_id = await service.job_id_for_key(sessions=self.sessions, dedup_key=dedup_key)
        return job_id is not None and await self.run_job(job_id)

    async def run_due(self, *, max_rounds: int = 100) -> int:
        """Run everything due at the clock's current time (jobs enqueued meanwhile too)."""
        total = 0
        for _ in range(max_rounds):
            jobs = await service.claim_due(
                sessions=self.sessions, now=self.clock.now(), worker_id=self.worker_id,
                lease=self.lease, kinds=self.handlers.keys(),
            )
            if not jobs:
                break
            await asyncio.gather(*(self._execute(job) for job in jobs))
            total += len(jobs)
        return total

    async def _execute(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        async with self._slots:
            try:
                if handler is None:
                    raise RuntimeError(f"no handler for job kind {job.kind!r}")
                await handler(job)
            except RetryLater as retry:
                await self._settle(job, service.reschedule(
                    sessions=self.sessions, job=job, worker_id=self.worker_id,
                    due_at=self.clock.now() + retry.delay, error=retry.reason,
                ))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a job failure must not kill the worker
                error = f"{type(exc).__name__}: {exc}"
                if job.attempts >= job.max_attempts:
                    log.error("job %s (%s) gave up after %s attempts: %s",
                              job.id, job.kind, job.attempts, error)
                    settled = await self._settle(job, service.mark_failed(
                        sessions=self.sessions, job=job, worker_id=self.worker_id,
                        now=self.clock.now(), error=error,
                    ))
                    if settled and self.on_give_up is not None:
                        await self.on_give_up(job, error)
                else:
                    log.warning("job %s (%s) attempt %s failed: %s",
                                job.id, job.kind, job.attempts, error)
                    await self._settle(job, service.reschedule(
                        sessions=self.sessions, job=job, worker_id=self.worker_id,
                        due_at=self.clock.now() + backoff(job.attempts), error=error,
                    ))
                return
            await self._settle(job, service.mark_done(
                sessions=self.sessions, job=job, worker_id=self.worker_id, now=self.clock.now()
            ))

    async def _settle(self, job: Job, outcome: Awaitable[T]) -> T | None:
        """Record a job's outcome; if the database is gone, the lease brings the job back."""
        try:
            return await outcome
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the job is safe: it runs again after its lease
            log.warning("could not record the outcome of job %s (%s): %s; it runs again when its "
                        "lease runs out", job.id, job.kind, type(exc).__name__)
            return None

    async def _loop(self) -> None:
        while not self._stopping:
            free = self.concurrency - len(self._running)
            if free <= 0:
                # Claim no more than we can start now: a claimed job's lease runs
                # from the claim, and a job left waiting could outlive it.
                await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
                continue
            # Cleared before claiming, so a wake that arrives during the claim is not lost.
            self._wake.clear()
            try:
                jobs = await service.claim_due(
                    sessions=self.sessions, now=self.clock.now(), worker_id=self.worker_id,
                    lease=self.lease, kinds=self.handlers.keys(), limit=free,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database down (or worse): keep trying, say so once per outage
                if not self._claims_failing:
                    log.warning("worker cannot reach the database (%s); retrying every %gs",
                                type(exc).__name__, self.poll_seconds)
                self._claims_failing = True
                jobs = []
            else:
                if self._claims_failing:
                    log.info("worker reached the database again")
                self._claims_failing = False
            for job in jobs:
                task = asyncio.create_task(self._execute(job))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
                # A job often enqueues the next one (a page after the plan): look at once.
                task.add_done_callback(lambda _: self.wake())
            if jobs:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="firebreak-worker")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
