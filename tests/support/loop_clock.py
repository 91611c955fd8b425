"""The running event loop's clock, moved forward on demand (a pytest plugin: the ``loop_clock``
fixture, registered in tests/conftest.py).

A request timeout is an asyncio timer (aiohttp's ``ClientTimeout`` is ``loop.call_at``), so a
test of "the provider hangs, the request times out" need not wait for the production timeout
(4 s for a page, 20 s for a provider call) nor shrink it to a fraction of a second that a busy
machine may also hit: it waits until the fake holds the request (a fact the fake recorded),
then moves the loop's clock past the timeout. Every asyncio timer of the test's loop sees the
same clock, the fakes' own delays included; nothing else (the database, the injected
``ManualClock``) is affected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest


class LoopClock:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.offset = 0.0
        self._real = loop.time
        loop.time = self._time  # type: ignore[method-assign]  # the instance's, shadowing the method

    def _time(self) -> float:
        return self._real() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the loop's clock forward: timers due by then run at the loop's next turn."""
        self.offset += seconds

    async def when(self, condition: Callable[[], Any], *, timeout: float = 20) -> Any:
        """Wait (in real time, at most ``timeout`` s) until ``condition()`` is truthy."""
        deadline = time.monotonic() + timeout
        while not (value := condition()):
            assert time.monotonic() < deadline, "condition not met in time"
            await asyncio.sleep(0.005)
        return value

    def close(self) -> None:
        del self.loop.time  # type: ignore[attr-defined]


@pytest.fixture
async def loop_clock() -> AsyncIterator[LoopClock]:
    clock = LoopClock(asyncio.get_running_loop())
    try:
        yield clock
    finally:
        clock.close()
