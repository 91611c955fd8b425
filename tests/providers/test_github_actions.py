"""GitHub Actions provider (through PyGithub) against the local GitHub fake, whose
requests and answers are compared with PyGithub's recordings of the real API
(``tests/specs/github/*.txt``)."""

from __future__ import annotations

import ast
import asyncio
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from bot.emulator.providers import Fault, GitHubFake
from bot.playbooks.models import GithubActionsConfig
from bot.providers.base import AmbiguousTriggerError, InvalidTarget, ProviderRejected, RollbackState
from bot.providers.github_actions import WORKFLOW_INPUTS, GithubActionsProvider
from tests.support.specs import SPECS_DIR, spec_path

REPO = "acme/shop"


# --------------------------------------------------------------------------- the recordings


@dataclass(frozen=True)
class Recorded:
    file: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    response: Any

    @property
    def template(self) -> str:
        return _template(self.path)


def _template(path: str) -> str:
    """/repos/o/r/deployments/263877258/statuses → /repos/{o}/{r}/deployments/{id}/statuses"""
    path = path.split("?", 1)[0]
    path = re.sub(r"^/repos/[^/]+/[^/]+", "/repos/{o}/{r}", path)
    path = re.sub(r"/\d+(?=/|$)", "/{id}", path)
    return re.sub(r"/workflows/[^/]+\.ya?ml(?=/|$)", "/workflows/{id}", path)


@cache
def recordings() -> tuple[Recorded, ...]:
    """PyGithub's ReplayData format: 10 lines per call (protocol, method, host, port,
    path, request headers, request body, status, response headers, response body)."""
    calls = []
    spec_path("github")
    for file in sorted((SPECS_DIR / "github").glob("*.txt")):
        lines = file.read_text().split("\n")
        i = 0
        while i + 10 <= len(lines):
            if not lines[i].strip():
                i += 1
                continue
            _, method, _, _, path, headers, body, status, _, response = lines[i : i + 10]
            i += 10
            calls.append(
                Recorded(
                    file.name, method, path, ast.literal_eval(headers),
                    None if body == "None" else json.loads(body),
                    int(status), json.loads(response) if response else None,
                )
            )
    return tuple(calls)


def recorded(method: str, template: str) -> list[Recorded]:
    return [c for c in recordings() if c.method == method and c.template == template]


# Endpoints PyGithub was not recorded calling, used by the provider (GitHub REST docs:
# "Get a workflow run", "List workflow runs for a workflow").
NOT_RECORDED = {("GET", "/repos/{o}/{r}/actions/runs/{id}"), ("GET", "/repos/{o}/{r}/actions/workflows/{id}/runs")}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
async def github(clock):
    async with GitHubFake(clock=clock) as fake:
        yield fake


def make_provider(fake, clock, retry, token=None) -> GithubActionsProvider:
    return GithubActionsProvider(
        api_url=fake.api_url, token=token or fake.token, clock=clock, retry=retry, timeout=2, seconds_between_writes=None
    )


@pytest.fixture
def provider(github, clock, retry) -> GithubActionsProvider:
    return make_provider(github, clock, retry)


@pytest.fixture
def config() -> GithubActionsConfig:
    return GithubActionsConfig(type="github-actions", repo=REPO, workflow="rollback.yml", ref="main", inputs={})


@pytest.fixture
def seeded(github):
    return github.seeded[REPO]


async def run_to_end(provider, config, handle, polls: int = 8):
    states = []
    for _ in range(polls):
        progress = await provider.poll(config, handle)
        states.append(progress.state)
        if progress.terminal:
            return progress, states
    raise AssertionError(f"not terminal after {polls} polls: {states}")


# --------------------------------------------------------------------------- tests


def test_recordings_are_parsed():
    kinds = {(c.method, c.template) for c in recordings()}
    assert ("POST", "/repos/{o}/{r}/actions/workflows/{id}/dispatches") in kinds
    assert ("POST", "/repos/{o}/{r}/deployments") in kinds
    assert ("POST", "/repos/{o}/{r}/deployments/{id}/statuses") in kinds


async def test_list_deployments_of_the_environment(provider, config, seeded, github):
    deploys = await provider.list_deploys(config)
    assert [d.id for d in deploys] == [seeded.live_id, seeded.failed_id, seeded.target_id, seeded.oldest_id]
    assert [d.status for d in deploys] == ["success", "failure", "success", "success"]
    assert [d.is_live for d in deploys] == [True, False, False, False]
    assert [d.can_be_target for d in deploys] == [False, False, True, True]
    assert deploys[0].deployed_by == "octocat" and deploys[0].commit_sha.startswith("d4e5f6a")
    listing = github.api_requests("GET", r"/deployments$")[0]
    assert listing.query["environment"] == "production"  # the staging deployment is not ours


async def test_plan_and_targets(provider, config, seeded):
    plan = await provider.plan(config)
    assert (plan.current.id, plan.target.id) == (seeded.live_id, seeded.target_id)
    assert (await provider.plan(config, to="a1b2c3d")).target.id == seeded.oldest_id  # by sha prefix
    with pytest.raises(InvalidTarget, match="failure"):
        await provider.plan(config, to=seeded.failed_id)
    with pytest.raises(InvalidTarget, match="not one of"):
        await provider.plan(config, to="999")


async def test_rollback_dispatches_records_and_mirrors(provider, config, github, seeded, http):
    async with http.get(github.health_url("shop")) as r:
        assert r.status == 500
    plan = await provider.plan(config)
    github.requests.clear()
    handle = await provider.trigger(config, plan, idempotency_key="fb-rb-1", reason="checkout 500s")

    dispatch = github.api_requests("POST", "/dispatches$")[0]
    assert set(dispatch.json) == {"ref", "inputs", "return_run_details"}
    assert dispatch.json["ref"] == "main" and dispatch.json["return_run_details"] is True
    assert dispatch.json["inputs"] == {
        "sha": plan.target.commit_sha, "deploy_id": plan.target.id, "reason": "checkout 500s", "firebreak_key": "fb-rb-1",
    }
    assert set(dispatch.json["inputs"]) == set(WORKFLOW_INPUTS)
    assert handle.ids["run_id"] and handle.ids["deployment_id"]
    created = github.repos[REPO].deployments[0]
    assert created.sha == plan.target.commit_sha and created.statuses[0].state == "in_progress"
    assert created.payload["firebreak"]["idempotency_key"] == "fb-rb-1"

    _, states = await run_to_end(provider, config, handle)
    assert states == [RollbackState.IN_PROGRESS, RollbackState.IN_PROGRESS, RollbackState.LIVE]
    assert created.statuses[0].state == "success"  # mirrored once
    await provider.poll(config, handle)
    assert [s.state for s in created.statuses].count("success") == 1

    deploys = await provider.list_deploys(config)
    assert deploys[0].id == handle.ids["deployment_id"] and deploys[0].is_live
    async with http.get(github.health_url(REPO)) as r:
        assert r.status == 200


async def test_requests_match_the_recordings(provider, config, github):
    handle = await provider.trigger(config, await provider.plan(config), idempotency_key="k")
    await run_to_end(provider, config, handle)
    for request in github.api_requests():
        kind = (request.method, _template(request.path))
        if kind in NOT_RECORDED:
            continue
        matches = recorded(*kind)
        assert matches, f"{kind} is not a call PyGithub was recorded making"
        reference = matches[0]
        if "Accept" in reference.headers:
            assert request.headers.get("Accept") == reference.headers["Accept"], kind
        if reference.body is not None:
            assert request.json is not None and set(request.json) <= set(reference.body) | {"return_run_details"}, kind
        assert request.headers["Authorization"] == "<redacted>"
    # the dispatch goes to the numeric workflow id, as recorded, after a GET by file name
    paths = [r.path for r in github.api_requests()]
    workflow_id = github.repos[REPO].workflow("rollback.yml").id
    assert f"/repos/{REPO}/actions/workflows/rollback.yml" in paths
    assert f"/repos/{REPO}/actions/workflows/{workflow_id}/dispatches" in paths


@pytest.mark.parametrize(
    "method, template, request_path",
    [
        ("GET", "/repos/{o}/{r}", "/repos/acme/shop"),
        ("GET", "/repos/{o}/{r}/actions/workflows/{id}", "/repos/acme/shop/actions/workflows/rollback.yml"),
        ("GET", "/repos/{o}/{r}/deployments", "/repos/acme/shop/deployments"),
        ("GET", "/repos/{o}/{r}/deployments/{id}", None),
        ("GET", "/repos/{o}/{r}/deployments/{id}/statuses", None),
        ("GET", "/repos/{o}/{r}/actions/runs", "/repos/acme/shop/actions/runs"),
        ("GET", "/user", "/user"),
    ],
)
async def test_fake_answers_have_the_recorded_shapes(github, http, seeded, method, template, request_path):
    if request_path is None:
        request_path = template.replace("{o}/{r}", REPO).replace("{id}", seeded.live_id)
    if template.endswith("/actions/runs"):
        await _dispatch(github, http)
    async with http.get(github.url + request_path, headers={"Authorization": f"token {github.token}"}) as r:
        assert r.status == 200
        ours = await r.json()
    _assert_same_keys(common_shape(method, template), ours, template)


async def test_dispatch_and_create_answers_have_the_recorded_shapes(github, http, seeded):
    auth = {"Authorization": f"token {github.token}"}
    run = await _dispatch(github, http)
    with_details = [c for c in recorded("POST", "/repos/{o}/{r}/actions/workflows/{id}/dispatches") if c.status == 200]
    _assert_same_keys(with_details[0].response, run, "dispatch")
    body = recorded("POST", "/repos/{o}/{r}/deployments")[0].body | {"ref": "main"}
    async with http.post(f"{github.url}/repos/{REPO}/deployments", json=body, headers=auth) as r:
        assert r.status == 201
        deployment = await r.json()
    _assert_same_keys(common_shape("POST", "/repos/{o}/{r}/deployments"), deployment, "deployment")
    body = recorded("POST", "/repos/{o}/{r}/deployments/{id}/statuses")[0].body
    async with http.post(f"{github.url}/repos/{REPO}/deployments/{deployment['id']}/statuses", json=body, headers=auth) as r:
        assert r.status == 201
        status = await r.json()
    _assert_same_keys(common_shape("POST", "/repos/{o}/{r}/deployments/{id}/statuses"), status, "status")
    async with http.post(f"{github.url}/repos/{REPO}/actions/workflows/rollback.yml/dispatches", json={"ref": "main", "inputs": {}}, headers=auth) as r:
        assert r.status == 422  # like Workflow.testCreateDispatchException
        refused = [c for c in recorded("POST", "/repos/{o}/{r}/actions/workflows/{id}/dispatches") if c.status == 422]
        assert set(await r.json()) >= set(refused[0].response)


async def _dispatch(github, http) -> dict:
    async with http.post(
        f"{github.url}/repos/{REPO}/actions/workflows/rollback.yml/dispatches",
        json={"ref": "main", "inputs": {"sha": "b" * 40}, "return_run_details": True},
        headers={"Authorization": f"token {github.token}"},
    ) as r:
        assert r.status == 200
        return await r.json()


def common_shape(method: str, template: str) -> Any:
    """The recorded answers of an endpoint, reduced to the keys they all share
    (one recorded repository is a fork, with ``parent``/``source``)."""
    answers = [c.response for c in recorded(method, template)]
    items = [a[0] if isinstance(a, list) else a for a in answers]
    shared = set.intersection(*(set(i) for i in items))
    shape = {k: v for k, v in items[0].items() if k in shared}
    return [shape] if isinstance(answers[0], list) else shape


def _assert_same_keys(reference: Any, ours: Any, where: str) -> None:
    if isinstance(reference, list):
        assert isinstance(ours, list) and ours, where
        _assert_same_keys(reference[0], ours[0], where)
    elif isinstance(reference, dict):
        assert isinstance(ours, dict), where
        missing = set(reference) - set(ours)
        assert not missing, f"{where}: missing {sorted(missing)}"
        for key in ("owner", "creator", "workflow_runs"):
            if key in reference and reference[key] and ours.get(key):
                _assert_same_keys(reference[key], ours[key], f"{where}.{key}")


async def test_lost_dispatch_response_found_by_key(provider, config, github, clock):
    plan = await provider.plan(config)
    github.faults.add(Fault.LOST_RESPONSE, method="POST", path="/dispatches$")
    with pytest.raises(AmbiguousTriggerError):
        await provider.trigger(config, plan, idempotency_key="fb-rb-2")
    found = await provider.find_triggered(config, plan, since=clock.now(), idempotency_key="fb-rb-2")
    assert found is not None
    assert found.ids["run_id"] == str(github.repos[REPO].runs[0].id)
    assert found.ids["deployment_id"]  # recorded now, once
    assert github.dispatch_calls == 1
    progress, _ = await run_to_end(provider, config, found)
    assert progress.state is RollbackState.LIVE


async def test_reset_dispatch_not_started(provider, config, github, clock):
    plan = await provider.plan(config)
    github.faults.add(Fault.RESET, method="POST", path="/dispatches$")
    with pytest.raises(AmbiguousTriggerError):
        await provider.trigger(config, plan, idempotency_key="fb-rb-3")
    assert await provider.find_triggered(config, plan, since=clock.now(), idempotency_key="fb-rb-3") is None
    assert github.dispatch_calls == 0


async def test_dispatch_5xx_is_ambiguous_and_never_repeated(provider, config, github):
    plan = await provider.plan(config)
    github.faults.add(Fault.SERVER_ERROR, method="POST", path="/dispatches$", status=502)
    with pytest.raises(AmbiguousTriggerError, match="502"):
        await provider.trigger(config, plan, idempotency_key="k")
    assert len(github.api_requests("POST", "/dispatches$")) == 1


async def test_rejections(provider, config, github, clock, retry):
    bad = make_provider(github, clock, retry, token="ghp_wrongwrongwrong")
    with pytest.raises(ProviderRejected) as info:
        await bad.list_deploys(config)
    assert info.value.status == 401 and "Bad credentials" in str(info.value)
    assert "ghp_wrongwrongwrong" not in str(info.value)

    plan = await provider.plan(config)
    missing = config.model_copy(update={"workflow": "nope.yml"})
    with pytest.raises(ProviderRejected) as info:
        await provider.trigger(missing, plan, idempotency_key="k")
    assert info.value.status == 404 and not github.api_requests("POST")

    extra = config.model_copy(update={"inputs": {"region": "eu"}})
    with pytest.raises(ProviderRejected) as info:
        await provider.trigger(extra, plan, idempotency_key="k")
    assert info.value.status == 422 and "Unexpected inputs provided" in str(info.value)

    github.faults.add(Fault.REJECT, method="POST", path="/dispatches$", status=409, message="Conflict: run already queued")
    with pytest.raises(ProviderRejected) as info:
        await provider.trigger(config, plan, idempotency_key="k")
    assert info.value.status == 409 and "run already queued" in str(info.value)


async def test_reads_retried(provider, config, github, sleeps):
    github.faults.add(Fault.RATE_LIMIT, retry_after=4, method="GET")
    github.faults.add(Fault.SERVER_ERROR, method="GET")
    assert len(await provider.list_deploys(config)) == 4
    assert sleeps[0] == 4 and len(sleeps) == 2


async def test_failed_run_mirrored_as_failure(provider, config, github):
    github.fail_next_run("failure")
    handle = await provider.trigger(config, await provider.plan(config), idempotency_key="k")
    progress, _ = await run_to_end(provider, config, handle)
    assert progress.state is RollbackState.FAILED
    assert github.repos[REPO].deployments[0].statuses[0].state == "failure"


async def test_unreachable_github_is_unavailable_not_ambiguous(config, clock, retry):
    import socket

    import requests

    from bot.providers.base import ProviderUnavailable
    from bot.providers.github_actions import _never_sent

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        await asyncio.to_thread(requests.post, f"http://127.0.0.1:{port}/x", timeout=1)
    except requests.exceptions.ConnectionError as exc:
        assert _never_sent(exc)
    provider = GithubActionsProvider(api_url=f"http://127.0.0.1:{port}", token="t", clock=clock, retry=retry, timeout=1)
    with pytest.raises(ProviderUnavailable, match="after 4 attempts"):
        await provider.list_deploys(config)
