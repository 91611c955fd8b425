"""Shared fixtures for the pager tests: the production retry policy with recorded sleeps, fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.emulator import SlackEmulator
from bot.emulator.opsgenie import OpsgenieFake
from bot.emulator.pagerduty import PagerDutyFake
from bot.escalation.engine import ESCALATION_RETRY
from bot.pagers.base import PageRequest
from bot.pagers.http import RetryPolicy
from bot.pagers.slack import page_client
from bot.slack.client import make_slack_client
from tests.support.slack_openapi import slack_openapi_validator

SLACK_TOKEN = "xoxb-pager-0123456789"
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
async def emu() -> AsyncIterator[SlackEmulator]:
    """The Slack emulator, every call checked against Slack's OpenAPI spec."""
    emulator = SlackEmulator(bot_token=SLACK_TOKEN, validator=slack_openapi_validator())
    await emulator.start()
    yield emulator
    await emulator.stop()
    assert not emulator.violations, emulator.violations


def slack_settings(emu: SlackEmulator) -> Settings:
    return Settings(_env_file=None, slack_bot_token=SLACK_TOKEN, slack_api_url=emu.api_url)  # type: ignore[call-arg]


@pytest.fixture
def sender(emu: SlackEmulator) -> AsyncWebClient:
    """The client pages are sent with in production (no retries: it runs under a lock)."""
    return page_client(make_slack_client(slack_settings(emu)))


@pytest.fixture
def slack(emu: SlackEmulator) -> AsyncWebClient:
    """The runtime's shared client (retries 429s and 5xx): group members are read with it."""
    return make_slack_client(slack_settings(emu))


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
