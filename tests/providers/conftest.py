"""Fixtures of the provider tests: one aiohttp session, a manual clock, retry
policies that never really sleep (their waits are recorded instead)."""

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
    """Up to 4 attempts, waits recorded not slept, 2 s per request."""
    # Long enough that a busy CI machine (the fakes validate every request against the
    # official schemas, synchronously) is not mistaken for a hang; hang tests cost one timeout.
    return RetryPolicy.for_tests(sleep=sleeps, timeout=2.0)
