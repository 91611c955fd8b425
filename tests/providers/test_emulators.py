"""All five fakes together: every provider rolls its seeded broken service back,
and each service's health endpoint proves the recovery."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from bot.config import load_settings
from bot.emulator.providers import Fault, ProviderFakes
from bot.playbooks.models import ProviderConfig
from bot.providers import build_provider
from bot.providers.base import RollbackState
from bot.providers.github_actions import GithubActionsProvider
from bot.providers.health import check_health

CONFIG = TypeAdapter(ProviderConfig)


@pytest.fixture
async def fakes(clock):
    async with ProviderFakes(clock=clock) as suite:
        yield suite


async def test_every_provider_recovers_its_service(fakes, http, clock, retry):
    settings = load_settings(**fakes.settings_overrides())
    for service in fakes.services():
        config = CONFIG.validate_python(service["provider"])
        if config.type == "github-actions":
            provider = GithubActionsProvider(api_url=fakes.github.api_url, token=fakes.token, clock=clock, retry=retry,
                                             seconds_between_writes=None)
        else:
            provider = build_provider(config.type, settings, http, clock, retry=retry)
        before = await check_health(http, url=service["health_url"], settle=0, clock=clock)
        assert not before.healthy, service["name"]

        plan = await provider.plan(config)
        assert (plan.current.id, plan.target.id) == (service["seeded"].live_id, service["seeded"].target_id), service["name"]
        handle = await provider.trigger(config, plan, idempotency_key=f"e2e-{service['name']}")
        for _ in range(10):
            progress = await provider.poll(config, handle)
            if progress.terminal:
                break
        assert progress.state is RollbackState.LIVE, (service["name"], progress)

        after = await check_health(http, url=service["health_url"], settle=20, interval=10, clock=clock)
        assert after.healthy, (service["name"], after.detail)


async def test_environment_and_faults(fakes):
    env = fakes.environment()
    assert env["RENDER_API_URL"].endswith("/v1") and env["RAILWAY_API_URL"].endswith("/graphql/v2")
    assert env["GITHUB_TOKEN"] == fakes.token
    fakes.render.faults.add(Fault.SERVER_ERROR)
    assert len(fakes.render.faults) == 1
