"""Render provider against the local Render fake."""

from __future__ import annotations

import asyncio

import pytest

from bot.emulator.providers import Fault, RenderFake
from bot.playbooks.models import RenderConfig
from bot.providers.base import (
    AmbiguousTriggerError,
    InvalidTarget,
    ProviderRejected,
    ProviderUnavailable,
    RollbackHandle,
    RollbackState,
)
from bot.providers.render import RenderProvider


@pytest.fixture
async def render(clock):
    async with RenderFake(clock=clock) as fake:
        yield fake


@pytest.fixture
def provider(render, http, clock, retry) -> RenderProvider:
    return RenderProvider(http, api_url=render.api_url, api_key=render.token, clock=clock, retry=retry)


@pytest.fixture
def config(render) -> RenderConfig:
    return RenderConfig(type="render", service_id=render.seeded["srv-d0fakeapi0001"].key)


@pytest.fixture
def seeded(render):
    return render.seeded["srv-d0fakeapi0001"]


async def test_list_marks_live_and_targets(provider, config, seeded):
    deploys = await provider.list_deploys(config)
    assert [d.id for d in deploys] == [seeded.live_id, seeded.failed_id, seeded.target_id, seeded.oldest_id]
    assert [d.is_live for d in deploys] == [True, False, False, False]
    assert [d.can_be_target for d in deploys] == [False, False, True, True]
    assert deploys[0].commit_message == "Refactor payment client"
    assert deploys[0].created_at.tzinfo is not None
    assert deploys[1].status == "build_failed"


async def test_plan_skips_failed_build(provider, config, seeded):
    plan = await provider.plan(config)
    assert plan.current.id == seeded.live_id
    assert plan.target.id == seeded.target_id
    assert any("autodeploy" in n.replace("auto-deploy", "autodeploy") for n in plan.notes)


async def test_plan_to_explicit_and_invalid_targets(provider, config, seeded):
    assert (await provider.plan(config, to=seeded.oldest_id)).target.id == seeded.oldest_id
    with pytest.raises(InvalidTarget, match="build_failed"):
        await provider.plan(config, to=seeded.failed_id)
    with pytest.raises(InvalidTarget, match="already live"):
        await provider.plan(config, to=seeded.live_id)
    with pytest.raises(InvalidTarget, match="not one of the last"):
        await provider.plan(config, to="dep-nope")


async def test_rollback_goes_live_and_health_recovers(provider, config, render, seeded, http):
    async with http.get(render.health_url("api")) as r:
        assert r.status == 500
    plan = await provider.plan(config)
    handle = await provider.trigger(config, plan, idempotency_key="rb-1")
    posts = render.api_requests("POST")
    assert len(posts) == 1 and posts[0].path == f"/v1/services/{config.service_id}/rollback"
    assert posts[0].json == {"deployId": seeded.target_id}
    assert posts[0].headers["Authorization"] == "<redacted>"

    restored = RollbackHandle.from_dict(handle.to_dict())  # survives a restart
    states = []
    for _ in range(10):
        progress = await provider.poll(config, restored)
        states.append(progress.state)
        if progress.terminal:
            break
    assert states == [RollbackState.IN_PROGRESS, RollbackState.IN_PROGRESS, RollbackState.LIVE]
    assert progress.provider_ids["deploy_id"] == handle.ids["deploy_id"]

    deploys = await provider.list_deploys(config)
    assert deploys[0].id == handle.ids["deploy_id"] and deploys[0].is_live
    assert deploys[0].commit_sha == plan.target.commit_sha
    assert next(d for d in deploys if d.id == seeded.live_id).status == "deactivated"
    async with http.get(render.health_url(config.service_id)) as r:
        assert r.status == 200


async def test_failed_rollback_reported(provider, config, render):
    render.fail_next_rollback("update_failed")
    handle = await provider.trigger(config, await provider.plan(config), idempotency_key="k")
    for _ in range(5):
        progress = await provider.poll(config, handle)
        if progress.terminal:
            break
    assert progress.state is RollbackState.FAILED and "update_failed" in progress.detail


async def test_get_retries_429_with_retry_after_and_500(provider, config, render, sleeps):
    render.faults.add(Fault.RATE_LIMIT, retry_after=3, method="GET")
    render.faults.add(Fault.SERVER_ERROR, method="GET")
    deploys = await provider.list_deploys(config)
    assert len(deploys) == 4
    assert len(render.api_requests("GET")) == 3
    assert sleeps[0] == 3  # Retry-After honoured
    assert len(sleeps) == 2


async def test_get_gives_up_as_unavailable(provider, config, render):
    render.faults.add(Fault.SERVER_ERROR, times=4, method="GET", status=503)
    with pytest.raises(ProviderUnavailable, match="HTTP 503"):
        await provider.list_deploys(config)


async def test_lost_response_is_ambiguous_and_found_afterwards(provider, config, render, clock):
    plan = await provider.plan(config)
    render.faults.add(Fault.LOST_RESPONSE, method="POST", path="/rollback$")
    since = clock.now()
    with pytest.raises(AmbiguousTriggerError):
        await provider.trigger(config, plan, idempotency_key="rb-2")
    found = await provider.find_triggered(config, plan, since=since)
    assert found is not None and found.target_id == plan.target.id
    assert len(render.api_requests("POST")) == 1  # nothing triggered twice
    assert render.services[config.service_id].deploys[0].id == found.ids["deploy_id"]


async def test_reset_before_processing_is_ambiguous_and_not_found(provider, config, render, clock):
    plan = await provider.plan(config)
    render.faults.add(Fault.RESET, method="POST")
    with pytest.raises(AmbiguousTriggerError):
        await provider.trigger(config, plan, idempotency_key="rb-3")
    assert await provider.find_triggered(config, plan, since=clock.now()) is None


async def test_hanging_trigger_times_out_as_ambiguous(provider, config, render, retry, loop_clock):
    plan = await provider.plan(config)
    render.faults.add(Fault.HANG, method="POST")
    triggering = asyncio.create_task(provider.trigger(config, plan, idempotency_key="rb-4"))
    await loop_clock.when(lambda: render.api_requests("POST"))
    loop_clock.advance(retry.timeout)
    with pytest.raises(AmbiguousTriggerError, match="did not answer"):
        await asyncio.wait_for(triggering, 20)


async def test_trigger_5xx_is_ambiguous_not_retried(provider, config, render):
    plan = await provider.plan(config)
    render.faults.add(Fault.SERVER_ERROR, method="POST", status=502)
    with pytest.raises(AmbiguousTriggerError, match="502"):
        await provider.trigger(config, plan, idempotency_key="rb-5")
    assert len(render.api_requests("POST")) == 1


async def test_bad_token_rejected_without_leaking_it(render, http, clock, retry, config, caplog):
    provider = RenderProvider(http, api_url=render.api_url, api_key="rnd_secret_wrong_key", clock=clock, retry=retry)
    with pytest.raises(ProviderRejected) as info:
        await provider.list_deploys(config)
    assert info.value.status == 401
    assert "unauthorized" in str(info.value) and "RENDER_API_KEY" in str(info.value)
    assert "rnd_secret_wrong_key" not in str(info.value) + caplog.text


async def test_unknown_service_and_conflict_rejected(provider, render, config):
    with pytest.raises(ProviderRejected) as info:
        await provider.list_deploys(RenderConfig(type="render", service_id="srv-missing"))
    assert info.value.status == 404 and info.value.provider_message == "service not found"

    plan = await provider.plan(config)
    render.faults.add(Fault.REJECT, method="POST", status=409, message="a deploy is already in progress")
    with pytest.raises(ProviderRejected) as info:
        await provider.trigger(config, plan, idempotency_key="k")
    assert info.value.status == 409
    assert "a deploy is already in progress" in str(info.value)


async def test_unknown_deploy_rejected_by_render(provider, config, render):
    plan = await provider.plan(config)
    render.services[config.service_id].deploys.remove(
        next(d for d in render.services[config.service_id].deploys if d.id == plan.target.id)
    )
    with pytest.raises(ProviderRejected) as info:
        await provider.trigger(config, plan, idempotency_key="k")
    assert info.value.status == 404 and "deploy not found" in str(info.value)
