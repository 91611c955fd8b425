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
        async with self._slots:
            try:
                await work()
            except asyncio.CancelledError:
                log.warning("background work %s cancelled at shutdown", name)
                raise
            except Exception:
                self.failed += 1
                log.exception("background work %s failed", name)
            else:
                self.completed += 1

    async def drain(self, timeout: float = 10.0) -> None:
        """Stop taking work, let what is running finish, cancel what is left after ``timeout``."""
        self._closing = True
        if not self._tasks:
            return
        done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
