"""Vercel provider against the local Vercel fake."""

from __future__ import annotations

import pytest

from bot.emulator.providers import Fault, VercelFake
from bot.playbooks.models import VercelConfig
from bot.providers.base import AmbiguousTriggerError, InvalidTarget, ProviderRejected, RollbackState
from bot.providers.vercel import VercelProvider

PROJECT = "prj_fakeweb0001"


@pytest.fixture
async def vercel(clock):
    async with VercelFake(clock=clock) as fake:
        yield fake


@pytest.fixture
def provider(vercel, http, clock, retry) -> VercelProvider:
    return VercelProvider(http, api_url=vercel.api_url, token=vercel.token, clock=clock, retry=retry)


@pytest.fixture
def config() -> VercelConfig:
    return VercelConfig(type="vercel", project_id=PROJECT)


@pytest.fixture
def seeded(vercel):
    return vercel.seeded[PROJECT]


async def test_candidates_query_and_live_marked(provider, config, vercel, seeded):
    deploys = await provider.list_deploys(config, limit=10)
    listing = vercel.api_requests("GET", r"^/v6/deployments$")[0]
    assert listing.query == {"projectId": PROJECT, "target": "production", "state": "READY", "limit": "10"}
    # the failed build and the preview deployment are filtered out by Vercel
    assert [d.id for d in deploys] == [seeded.live_id, seeded.target_id, seeded.oldest_id]
    assert deploys[0].is_live and not deploys[0].can_be_target
    assert deploys[1].commit_message == "Add checkout retries" and deploys[1].deployed_by == "octocat"
    assert deploys[1].url.startswith("https://web-")


async def test_plan_and_invalid_target(provider, config, seeded):
    plan = await provider.plan(config)
    assert (plan.current.id, plan.target.id) == (seeded.live_id, seeded.target_id)
    assert any("Hobby" in note for note in plan.notes)
    with pytest.raises(InvalidTarget):
        await provider.plan(config, to=seeded.failed_id)  # never READY: not even listed
    with pytest.raises(InvalidTarget, match="already live"):
        await provider.plan(config, to=seeded.live_id)


async def test_rollback_polled_through_last_alias_request(provider, config, vercel, http, seeded):
    async with http.get(vercel.health_url("web")) as r:
        assert r.status == 500
    plan = await provider.plan(config)
    handle = await provider.trigger(config, plan, idempotency_key="rb-1")
    (post,) = vercel.api_requests("POST")
    assert post.path == f"/v9/projects/{PROJECT}/rollback/{seeded.target_id}"
    assert post.json == {}
    states = []
    for _ in range(6):
        progress = await provider.poll(config, handle)
        states.append((progress.state, progress.raw_status))
        if progress.terminal:
            break
    assert states == [
        (RollbackState.IN_PROGRESS, "in-progress"),
        (RollbackState.IN_PROGRESS, "in-progress"),
        (RollbackState.LIVE, "succeeded"),
    ]
    assert (await provider.list_deploys(config))[1].is_live  # the target is production again
    async with http.get(vercel.health_url(PROJECT)) as r:
        assert r.status == 200


async def test_team_projects_send_team_id(http, clock, retry):
    async with VercelFake(clock=clock, team_id="team_acme") as fake:
        provider = VercelProvider(http, api_url=fake.api_url, token=fake.token, clock=clock, retry=retry)
        with pytest.raises(ProviderRejected) as info:  # without teamId the project is not visible
            await provider.list_deploys(VercelConfig(type="vercel", project_id=PROJECT))
        assert info.value.status == 404 and "Project not found" in str(info.value)
        config = VercelConfig(type="vercel", project_id=PROJECT, team_id="team_acme")
        plan = await provider.plan(config)
        await provider.trigger(config, plan, idempotency_key="k")
        assert all(r.query.get("teamId") == "team_acme" for r in fake.api_requests()[1:])


async def test_lost_response_found_via_last_alias_request(provider, config, vercel, clock):
    plan = await provider.plan(config)
    vercel.faults.add(Fault.LOST_RESPONSE, method="POST")
    with pytest.raises(AmbiguousTriggerError):
        await provider.trigger(config, plan, idempotency_key="rb-2")
    found = await provider.find_triggered(config, plan, since=clock.now())
    assert found is not None and found.ids["deployment_id"] == plan.target.id
    assert len(vercel.api_requests("POST")) == 1


async def test_ambiguous_but_not_started(provider, config, vercel, clock):
    plan = await provider.plan(config)
    vercel.faults.add(Fault.SERVER_ERROR, method="POST", status=500)
    with pytest.raises(AmbiguousTriggerError):
        await provider.trigger(config, plan, idempotency_key="rb-3")
    assert await provider.find_triggered(config, plan, since=clock.now()) is None


async def test_hobby_limit_and_bad_token(http, clock, retry):
    async with VercelFake(clock=clock, seed=False) as fake:
        seeded = fake.seed_project(PROJECT, hobby=True)
        config = VercelConfig(type="vercel", project_id=PROJECT)
        provider = VercelProvider(http, api_url=fake.api_url, token=fake.token, clock=clock, retry=retry)
        plan = await provider.plan(config, to=seeded.oldest_id)
        with pytest.raises(ProviderRejected) as info:
            await provider.trigger(config, plan, idempotency_key="k")
        assert info.value.status == 403 and "Hobby plans" in str(info.value)

        bad = VercelProvider(http, api_url=fake.api_url, token="vercel-wrong-token", clock=clock, retry=retry)
        with pytest.raises(ProviderRejected) as info:
            await bad.list_deploys(config)
        assert info.value.status == 403 and "Not authorized" in str(info.value)
        assert "vercel-wrong-token" not in str(info.value)


async def test_failed_job(provider, config, vercel):
    vercel.fail_next_rollback()
    handle = await provider.trigger(config, await provider.plan(config), idempotency_key="k")
    for _ in range(6):
        progress = await provider.poll(config, handle)
        if progress.terminal:
            break
    assert progress.state is RollbackState.FAILED


async def test_reads_retry_429(provider, config, vercel, sleeps):
    vercel.faults.add(Fault.RATE_LIMIT, retry_after=2, path="^/v6/deployments$")
    assert len(await provider.list_deploys(config)) == 3
    assert sleeps == [2]
