"""Heroku provider against the local Heroku fake, checked against the official
JSON hyper-schema (``tests/specs/heroku/schema.json``)."""

from __future__ import annotations

import json
import re
from functools import cache

import pytest
from jsonschema import Draft4Validator, FormatChecker

from bot.emulator.providers import Fault, HerokuFake, RecordedRequest
from bot.playbooks.models import HerokuConfig
from bot.providers.base import AmbiguousTriggerError, InvalidTarget, ProviderRejected, RollbackState
from bot.providers.heroku import ACCEPT, HerokuProvider
from tests.support.specs import spec_path

APP = "firebreak-demo-api"


@cache
def hyper_schema() -> dict:
    return json.loads(spec_path("heroku", "schema.json").read_text())


def schema_errors(pointer: str, instance: object) -> list[str]:
    """Errors of ``instance`` against the schema at ``pointer`` inside the hyper-schema."""
    schema = {"$ref": pointer, "definitions": hyper_schema()["definitions"]}
    validator = Draft4Validator(schema, format_checker=FormatChecker())
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(instance)]


def release_link(method: str, path: str) -> tuple[int, dict] | None:
    """The hyper-schema link of the release resource that ``method path`` calls."""
    for index, link in enumerate(hyper_schema()["definitions"]["release"]["links"]):
        pattern = "^" + re.sub(r"\{\([^}]*\)\}", "[^/]+", link["href"]) + "$"
        if link["method"] == method and re.match(pattern, path):
            if method == "POST" and link["title"] != "Rollback":
                continue  # the same href also creates releases from a slug; we only roll back
            return index, link
    return None


def hyper_schema_validator(request: RecordedRequest) -> list[str]:
    """Injected into the fake: every request must be a documented release link,
    with Heroku's Accept header and a body valid against the link's schema."""
    problems = []
    if request.headers.get("Accept") != ACCEPT:
        problems.append(f"Accept header is {request.headers.get('Accept')!r}")
    found = release_link(request.method, request.path)
    if found is None:
        return [*problems, f"{request.method} {request.path} is not a release link of the schema"]
    index, link = found
    if "schema" in link:
        problems += schema_errors(f"#/definitions/release/links/{index}/schema", request.json)
    return problems


@pytest.fixture
async def heroku(clock):
    async with HerokuFake(clock=clock, validator=hyper_schema_validator) as fake:
        yield fake


@pytest.fixture
def provider(heroku, http, clock, retry) -> HerokuProvider:
    return HerokuProvider(http, api_url=heroku.api_url, api_key=heroku.token, clock=clock, retry=retry)


@pytest.fixture
def config() -> HerokuConfig:
    return HerokuConfig(type="heroku", app=APP)


@pytest.fixture
def seeded(heroku):
    return heroku.seeded[APP]


async def test_list_releases_with_range_and_live_marked(provider, config, heroku, seeded):
    deploys = await provider.list_deploys(config)
    assert [d.raw["version"] for d in deploys] == [5, 4, 3, 2, 1]
    assert deploys[0].id == seeded.live_id and deploys[0].is_live
    assert deploys[1].status == "failed" and not deploys[1].can_be_target
    assert deploys[0].commit_sha == "d4e5f6a7" and deploys[0].deployed_by == "deployer@example.com"
    first = heroku.api_requests("GET")[0]
    assert first.headers["Range"] == "version ..; max=10, order=desc"
    assert heroku.validation_errors == []


async def test_fake_releases_match_the_release_schema(provider, config, heroku):
    deploys = await provider.list_deploys(config)
    for deploy in deploys:
        assert schema_errors("#/definitions/release", dict(deploy.raw)) == []


async def test_pages_through_next_range(http, clock, retry, config):
    async with HerokuFake(clock=clock, seed=False, validator=hyper_schema_validator) as fake:
        fake.seed_app(APP, extra_releases=12)  # 17 releases: two pages of 10
        provider = HerokuProvider(http, api_url=fake.api_url, api_key=fake.token, clock=clock, retry=retry)
        deploys = await provider.list_deploys(config, limit=15)
        assert len(deploys) == 15
        assert [d.raw["version"] for d in deploys] == list(range(17, 2, -1))
        ranges = [r.headers.get("Range") for r in fake.api_requests("GET")]
        assert ranges == ["version ..; max=10, order=desc", "version ]8..; max=10, order=desc"]
        assert fake.validation_errors == []


async def test_plan_previous_succeeded_release(provider, config, seeded):
    plan = await provider.plan(config)
    assert plan.current.id == seeded.live_id
    assert plan.target.id == seeded.target_id  # v3: the second succeeded release, v4 failed skipped
    assert (await provider.plan(config, to="v2")).target.id == seeded.oldest_id
    with pytest.raises(InvalidTarget, match="failed"):
        await provider.plan(config, to="v4")
    with pytest.raises(InvalidTarget, match="already live"):
        await provider.plan(config, to=seeded.live_id)


async def test_rollback_to_live_and_health(provider, config, heroku, http):
    async with http.get(heroku.health_url("api")) as r:
        assert r.status == 500
    plan = await provider.plan(config)
    handle = await provider.trigger(config, plan, idempotency_key="rb-1")
    (post,) = heroku.api_requests("POST")
    assert post.json == {"release": plan.target.id}
    assert schema_errors("#/definitions/release/links/3/schema", post.json) == []
    assert handle.ids["version"] == "6"
    states = []
    for _ in range(5):
        progress = await provider.poll(config, handle)
        states.append(progress.state)
        if progress.terminal:
            break
    assert states == [RollbackState.IN_PROGRESS, RollbackState.LIVE]
    deploys = await provider.list_deploys(config)
    assert deploys[0].is_live and deploys[0].raw["description"] == "Rollback to v3"
    async with http.get(heroku.health_url(APP)) as r:
        assert r.status == 200
    assert heroku.validation_errors == []


async def test_validator_catches_a_bad_body(heroku, http):
    async with http.post(
        f"{heroku.api_url}/apps/{APP}/releases",
        json={"slug_id": "nope"},
        headers={"Authorization": f"Bearer {heroku.token}", "Accept": ACCEPT},
    ) as r:
        assert r.status == 422
        assert "release" in (await r.json())["message"]


async def test_lost_response_found_by_rereading_releases(provider, config, heroku, clock):
    plan = await provider.plan(config)
    heroku.faults.add(Fault.LOST_RESPONSE, method="POST")
    with pytest.raises(AmbiguousTriggerError):
        await provider.trigger(config, plan, idempotency_key="rb-2")
    found = await provider.find_triggered(config, plan, since=clock.now())
    assert found is not None and found.ids["version"] == "6"
    assert len(heroku.api_requests("POST")) == 1


async def test_timeout_not_started_finds_nothing(provider, config, heroku, clock):
    plan = await provider.plan(config)
    heroku.faults.add(Fault.RESET, method="POST")
    with pytest.raises(AmbiguousTriggerError):
        await provider.trigger(config, plan, idempotency_key="rb-3")
    assert await provider.find_triggered(config, plan, since=clock.now()) is None


async def test_rejections_keep_herokus_message(provider, config, heroku, http, clock, retry):
    with pytest.raises(ProviderRejected) as info:
        await provider.list_deploys(HerokuConfig(type="heroku", app="no-such-app"))
    assert info.value.status == 404 and "Couldn't find that app." in str(info.value)

    bad = HerokuProvider(http, api_url=heroku.api_url, api_key="hrku-wrong-secret", clock=clock, retry=retry)
    with pytest.raises(ProviderRejected) as info:
        await bad.list_deploys(config)
    assert info.value.status == 401 and "Invalid credentials provided." in str(info.value)
    assert "hrku-wrong-secret" not in str(info.value)

    plan = await provider.plan(config)
    heroku.faults.add(Fault.REJECT, method="POST", status=409, message="A release is already in progress.")
    with pytest.raises(ProviderRejected) as info:
        await provider.trigger(config, plan, idempotency_key="k")
    assert info.value.status == 409 and info.value.code == "conflict"


async def test_failed_release(provider, config, heroku):
    heroku.fail_next_rollback()
    handle = await provider.trigger(config, await provider.plan(config), idempotency_key="k")
    states = [(await provider.poll(config, handle)).state for _ in range(2)]
    assert states == [RollbackState.IN_PROGRESS, RollbackState.FAILED]
