"""Fixtures of the provider tests: one aiohttp session, a manual clock, and the retry
policy the rollback flow runs the providers with, its waits recorded instead of slept."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.clock import ManualClock
from bot.providers.http import RetryPolicy


class RecordedSleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


@pytest.fixture
def retry(sleeps: RecordedSleeps) -> RetryPolicy:
    """The production policy (``RollbackFlow.retry``: the defaults, the clock's sleep); a hang
    is timed out by moving the loop's clock (the ``loop_clock`` fixture), not by waiting."""
    return RetryPolicy(sleep=sleeps)
