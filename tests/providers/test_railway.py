"""Railway provider against the local Railway fake; every GraphQL document is
validated against Railway's official introspection (``tests/specs/railway/schema.json``)."""

from __future__ import annotations

import json
from functools import cache

import pytest
from graphql import (
    GraphQLSchema,
    OperationDefinitionNode,
    build_client_schema,
    get_named_type,
    parse,
    validate,
    validate_schema,
)
from graphql.execution.values import get_variable_values

from bot.emulator.providers import Fault, RailwayFake, RecordedRequest
from bot.emulator.providers.railway import FAKE_SCHEMA
from bot.playbooks.models import RailwayConfig
from bot.providers.base import AmbiguousTriggerError, InvalidTarget, ProviderRejected, RollbackState
from bot.providers.railway import QUERY_DOCUMENTS, RailwayProvider
from tests.support.specs import spec_path


def _undeprecate_interface_implementations(introspection: dict) -> None:
    """The official introspection has one quirk graphql-core refuses: ``Team.id`` is
    deprecated while the interface field ``Node.id`` it implements is not. Such a
    field is un-deprecated here; nothing else is changed."""
    types = {t["name"]: t for t in introspection["__schema"]["types"]}
    for t in types.values():
        for interface in t.get("interfaces") or []:
            interface_fields = {f["name"]: f for f in types[interface["name"]].get("fields") or []}
            for f in t.get("fields") or []:
                base = interface_fields.get(f["name"])
                if f.get("isDeprecated") and base is not None and not base.get("isDeprecated"):
                    f["isDeprecated"], f["deprecationReason"] = False, None


@cache
def railway_schema() -> GraphQLSchema:
    introspection = json.loads(spec_path("railway", "schema.json").read_text())
    introspection = introspection.get("data", introspection)
    _undeprecate_interface_implementations(introspection)
    schema = build_client_schema(introspection)
    assert validate_schema(schema) == []
    return schema


def document_errors(document: str, variables: dict | None = None) -> list[str]:
    schema = railway_schema()
    ast = parse(document)
    errors = [e.message for e in validate(schema, ast)]
    if not errors and variables is not None:
        for definition in ast.definitions:
            if isinstance(definition, OperationDefinitionNode):
                coerced = get_variable_values(schema, definition.variable_definitions or [], variables)
                if isinstance(coerced, list):
                    errors += [e.message for e in coerced]
    return errors


def official_schema_validator(request: RecordedRequest) -> list[str]:
    body = request.json or {}
    return document_errors(body.get("query", ""), body.get("variables") or {})


@pytest.mark.parametrize("name", sorted(QUERY_DOCUMENTS))
def test_every_query_document_validates_against_railways_schema(name):
    assert document_errors(QUERY_DOCUMENTS[name]) == []


def test_the_public_docs_rollback_example_would_not_validate():
    bad = 'mutation { deploymentRollback(id: "x") { id status } }'
    assert document_errors(bad)  # Boolean! has no selection set


def test_fake_schema_is_a_faithful_subset_of_railways():
    real = railway_schema()
    for name, fake_type in FAKE_SCHEMA.type_map.items():
        if name.startswith("__") or name in ("String", "Boolean", "Int", "ID", "Float"):
            continue
        real_type = real.type_map.get(name)
        assert real_type is not None, name
        assert type(real_type) is type(fake_type), name
        fake_fields = getattr(fake_type, "fields", None) or {}
        for field_name, field in fake_fields.items():
            real_field = real_type.fields.get(field_name)
            assert real_field is not None, f"{name}.{field_name}"
            assert str(real_field.type) == str(field.type), f"{name}.{field_name}"
            for arg_name, arg in (getattr(field, "args", None) or {}).items():
                assert str(real_field.args[arg_name].type) == str(arg.type), f"{name}.{field_name}({arg_name})"
        values = getattr(fake_type, "values", None)
        if values:
            assert set(values) == set(real_type.values), name
        assert get_named_type(real_type)


@pytest.fixture
async def railway(clock):
    async with RailwayFake(clock=clock, validator=official_schema_validator) as fake:
        yield fake


@pytest.fixture
def seeded(railway):
    return next(iter(railway.seeded.values()))


@pytest.fixture
def config(railway, seeded) -> RailwayConfig:
    service = railway.services[seeded.key]
    return RailwayConfig(
        type="railway", project_id=service.project_id, environment_id=service.environment_id, service_id=service.service_id
    )


@pytest.fixture
def provider(railway, http, clock, retry) -> RailwayProvider:
    return RailwayProvider(http, api_url=railway.api_url, token=railway.token, clock=clock, retry=retry)


async def test_list_and_plan(provider, config, seeded, railway):
    deploys = await provider.list_deploys(config)
    assert [d.id for d in deploys] == [seeded.live_id, seeded.failed_id, seeded.target_id, seeded.oldest_id]
    assert [d.status for d in deploys] == ["SUCCESS", "FAILED", "REMOVED", "REMOVED"]
    assert deploys[0].is_live and deploys[0].commit_message == "Refactor payment client"
    plan = await provider.plan(config)
    assert (plan.current.id, plan.target.id) == (seeded.live_id, seeded.target_id)
    request = railway.api_requests("POST")[0]
    assert request.json["variables"]["input"] == {
        "projectId": config.project_id, "environmentId": config.environment_id, "serviceId": config.service_id,
    }
    assert railway.validation_errors == []


async def test_invalid_targets(provider, config, seeded):
    with pytest.raises(InvalidTarget, match="FAILED"):
        await provider.plan(config, to=seeded.failed_id)
    with pytest.raises(InvalidTarget, match="no deployment"):
        await provider.plan(config, to="00000000-0000-0000-0000-000000000000")


async def test_rollback_followed_to_live(provider, config, railway, seeded, http):
    async with http.get(railway.health_url("api")) as r:
        assert r.status == 500
    plan = await provider.plan(config)
    handle = await provider.trigger(config, plan, idempotency_key="rb-1")
    mutation = railway.api_requests("POST")[-1].json
    assert mutation["variables"] == {"id": seeded.target_id}
    assert "deploymentRollback(id: $id)" in mutation["query"]
    states = []
    for _ in range(6):
        progress = await provider.poll(config, handle)
        states.append(progress.state)
        if progress.terminal:
            break
    assert states == [RollbackState.IN_PROGRESS, RollbackState.IN_PROGRESS, RollbackState.LIVE]
    new_id = progress.provider_ids["deployment_id"]
    deploys = await provider.list_deploys(config)
    assert deploys[0].id == new_id and deploys[0].is_live
    assert deploys[0].commit_sha == plan.target.commit_sha
    assert next(d for d in deploys if d.id == seeded.live_id).status == "REMOVED"
    async with http.get(railway.health_url(config.service_id)) as r:
        assert r.status == 200
    assert railway.validation_errors == []


async def test_errors_with_http_200_are_rejections(provider, config, railway, http, clock, retry):
    bad = RailwayProvider(http, api_url=railway.api_url, token="railway-wrong-token", clock=clock, retry=retry)
    with pytest.raises(ProviderRejected) as info:
        await bad.list_deploys(config)
    assert info.value.status == 401 and "Not Authorized" in str(info.value)
    assert "railway-wrong-token" not in str(info.value)

    plan = await provider.plan(config)
    railway.services[config.service_id].deployments.pop(2)  # the target disappears
    with pytest.raises(ProviderRejected) as info:
        await provider.trigger(config, plan, idempotency_key="k")
    assert info.value.status == 404 and "Deployment not found" in str(info.value)


async def test_project_access_token_header(railway, http, clock, retry, config):
    provider = RailwayProvider(http, api_url=railway.api_url, token=railway.token, clock=clock, retry=retry, token_kind="project")
    assert len(await provider.list_deploys(config)) == 4


async def test_lost_response_then_found(provider, config, railway, clock):
    plan = await provider.plan(config)
    railway.faults.add(Fault.LOST_RESPONSE, method="POST")
    with pytest.raises(AmbiguousTriggerError):
        await provider.trigger(config, plan, idempotency_key="rb-2")
    found = await provider.find_triggered(config, plan, since=clock.now())
    assert found is not None and found.ids["deployment_id"]
    assert railway.rollback_calls == 1
    progress = await provider.poll(config, found)
    assert progress.provider_ids["deployment_id"] == found.ids["deployment_id"]


async def test_not_started_finds_nothing(provider, config, railway, clock):
    plan = await provider.plan(config)
    railway.faults.add(Fault.RESET, method="POST")
    with pytest.raises(AmbiguousTriggerError):
        await provider.trigger(config, plan, idempotency_key="rb-3")
    assert await provider.find_triggered(config, plan, since=clock.now()) is None
    assert railway.rollback_calls == 0


async def test_queries_retried_on_500_and_failed_rollback(provider, config, railway, sleeps):
    railway.faults.add(Fault.SERVER_ERROR, times=2)
    assert len(await provider.list_deploys(config)) == 4
    assert len(sleeps) == 2
    railway.fail_next_rollback()
    handle = await provider.trigger(config, await provider.plan(config), idempotency_key="k")
    for _ in range(6):
        progress = await provider.poll(config, handle)
        if progress.terminal:
            break
    assert progress.state is RollbackState.FAILED
