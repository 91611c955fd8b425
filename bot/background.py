"""Work that runs after Slack has its answer: bounded, tracked, drained on shutdown.

Slack wants an HTTP answer within 3 s; the listeners answer (``ack``) first and hand
the rest here. The runner keeps the ack path fast under load in two ways: at most
``concurrency`` pieces of work run at once (the others wait without using the
event loop), so a burst of heavy work cannot starve the acks of later requests;
and past ``queue_limit`` waiting pieces it reports itself saturated, so the
listeners can refuse new work with a clear message instead of growing without
bound. Nothing here is durable: work that must survive a crash enqueues a job
(``bot.jobs``) inside its first transaction, as every state change does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("firebreak.background")

Work = Callable[[], Awaitable[object]]


class BackgroundWork:
    def __init__(self, *, concurrency: int = 16, queue_limit: int = 5000) -> None:
        self.concurrency = concurrency
        self.queue_limit = queue_limit
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task] = set()
        self._started: set[asyncio.Task] = set()
        self._closing = False
        self.completed = 0
        self.failed = 0

    @property
    def pending(self) -> int:
        """Pieces of work started or waiting for a slot."""
        return len(self._tasks)

    @property
    def saturated(self) -> bool:
        return self._closing or len(self._tasks) >= self.queue_limit

    def spawn(self, work: Work, *, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(self._run(work, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, work: Work, name: str) -> None:
        try:
            await self._slots.acquire()
        except asyncio.CancelledError:
            log.warning("shutting down: %s was acknowledged to Slack but never worked on", name)
            raise
        task = asyncio.current_task()
        self._started.add(task)
        try:
            await work()
        except asyncio.CancelledError:
            log.warning("shutting down: %s was cancelled half-way", name)
            raise
        except Exception:
            self.failed += 1
            log.exception("background work %s failed", name)
        else:
            self.completed += 1
        finally:
            self._started.discard(task)
            self._slots.release()

    async def drain(self, timeout: float = 10.0, *, grace: float = 2.0) -> None:
        """Stop taking work and let what was accepted finish. After ``timeout``, drop what
        has not started, give what is running ``grace`` more seconds, then cancel it."""
        self._closing = True
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        waiting = [task for task in pending if task not in self._started]
        for task in waiting:
            task.cancel()
        running = pending - set(waiting)
        if running:
            _, running = await asyncio.wait(running, timeout=grace)
        for task in running:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
