"""Shared fixtures for the pager tests: the production retry policy with recorded sleeps, fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bot.emulator.opsgenie import OpsgenieFake
from bot.emulator.pagerduty import PagerDutyFake
from bot.escalation.engine import ESCALATION_RETRY
from bot.pagers.base import PageRequest
from bot.pagers.http import RetryPolicy

PD_KEY = "0123456789abcdef0123456789abcdef"
OG_KEY = "5f0a7c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"


class RecordedSleep:
    """An injected ``sleep`` that only remembers how long it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
def retry(sleeps: RecordedSleep) -> RetryPolicy:
    """The policy the pagers run with in production (:data:`ESCALATION_RETRY`), its waits recorded."""
    return replace(ESCALATION_RETRY, sleep=sleeps)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def pd() -> AsyncIterator[PagerDutyFake]:
    async with PagerDutyFake(routing_keys={PD_KEY}) as fake:
        yield fake


@pytest.fixture
async def og() -> AsyncIterator[OpsgenieFake]:
    async with OpsgenieFake(api_keys={OG_KEY}) as fake:
        yield fake


def make_request(**overrides: Any) -> PageRequest:
    values: dict[str, Any] = {
        "incident_number": 12,
        "incident_title": "Checkout is failing",
        "severity": "P1",
        "timestamp": datetime(2026, 3, 2, 14, 0, tzinfo=UTC),
        "level": 0,
        "channel_id": "C0INC12",
    }
    values.update(overrides)
    return PageRequest(**values)
