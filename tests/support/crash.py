"""A process dying at a chosen point, in-process: ``kill -9`` without the subprocess.

``ProcessDied`` is a BaseException: no ``except Exception`` in the code under test handles
it, no transaction still open commits, and the job it interrupts stays claimed under the
dead worker's lease, as after ``kill -9``. The tests raise it from the edge (a pager, the
Slack client, the HTTP session), never from inside Firebreak's own code.

When the death happens in a task the test does not await (the work after a Slack ack),
:meth:`Deaths.bury` waits for that task and takes its exception, so that asyncio does not
report it as never retrieved.
"""

from __future__ import annotations

import asyncio
from typing import NoReturn


class ProcessDied(BaseException):
    """Stands for ``kill -9``: nothing after it runs and nothing uncommitted is kept."""


class Deaths:
    def __init__(self) -> None:
        self.where: list[str] = []
        self._tasks: list[asyncio.Task] = []

    def __bool__(self) -> bool:
        return bool(self.where)

    def die(self, where: str) -> NoReturn:
        self.where.append(where)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.append(task)
        raise ProcessDied(where)

    async def bury(self, timeout: float = 10) -> None:
        current = asyncio.current_task()
        for task in self._tasks:
            if task is current:
                continue
            await asyncio.wait({task}, timeout=timeout)
            assert task.done(), f"the task that died ({task.get_name()}) is still running"
            if not task.cancelled():
                assert isinstance(task.exception(), ProcessDied), task.exception()
