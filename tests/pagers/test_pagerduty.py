"""PagerDuty Events v2 pager against the local fake, bodies checked against the official spec."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from pydantic import SecretStr
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bot.emulator.pagerduty import Fault, PagerDutyFake
from bot.pagers.base import PagerError
from bot.pagers.http import RetryPolicy
from bot.pagers.pagerduty import SEVERITY_MAP, PagerDutyPager, build_event
from tests.pagers.conftest import PD_KEY, RecordedSleep, make_request
from tests.support.loop_clock import LoopClock
from tests.support.specs import spec_path

SPEC_URI = "urn:pagerduty:events-v2"
ENQUEUE_SCHEMA_POINTER = "/paths/~1enqueue/post/requestBody/content/application~1json/schema"


def enqueue_validator() -> Draft202012Validator:
    """A validator for the ``/enqueue`` request body, its ``$ref``s resolved within the spec."""
    spec = json.loads(spec_path("pagerduty", "events-v2.openapi.json").read_text())
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{SPEC_URI}#{ENQUEUE_SCHEMA_POINTER}"}, registry=registry)


def validate_against_spec(body: dict[str, Any]) -> None:
    errors = sorted(enqueue_validator().iter_errors(body), key=lambda e: list(e.path))
    if errors:
        raise ValueError("; ".join(f"{list(e.path)}: {e.message}" for e in errors))


@pytest.fixture
async def spec_pd() -> AsyncIterator[PagerDutyFake]:
    async with PagerDutyFake(routing_keys={PD_KEY}, validator=validate_against_spec) as fake:
        yield fake


def pager(session: aiohttp.ClientSession, fake: PagerDutyFake, retry: RetryPolicy) -> PagerDutyPager:
    return PagerDutyPager(session, fake.url, {"default": SecretStr(PD_KEY)}, retry=retry)


def test_spec_validator_rejects_a_bad_body() -> None:
    with pytest.raises(ValueError, match="severity"):
        validate_against_spec(
            {"routing_key": "k", "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "P1"}}
        )


@pytest.mark.parametrize("severity", ["P0", "P1", "P2", "P3"])
def test_every_event_body_matches_the_official_schema(severity: str) -> None:
    request = make_request(severity=severity, message="db primary down", channel_link="https://acme.slack.com/archives/C0INC12")
    for action in ("trigger", "acknowledge", "resolve"):
        validate_against_spec(build_event(PD_KEY, action, request))  # type: ignore[arg-type]
    assert build_event(PD_KEY, "trigger", request)["payload"]["severity"] == SEVERITY_MAP[severity]


def test_trigger_body_content() -> None:
    body = build_event(PD_KEY, "trigger", make_request(level=2))
    assert body["dedup_key"] == "firebreak-INC-12"
    assert body["payload"]["source"] == "firebreak"
    assert body["payload"]["severity"] == "error"
    assert body["payload"]["summary"] == "[INC-12][P1] Checkout is failing"
    assert body["payload"]["custom_details"]["escalation_level"] == 3
    assert body["payload"]["custom_details"]["incident_channel"] == "https://slack.com/app_redirect?channel=C0INC12"
    assert body["links"] == [{"href": "https://slack.com/app_redirect?channel=C0INC12", "text": "INC-12 incident channel"}]


def test_summary_is_truncated_to_1024() -> None:
    body = build_event(PD_KEY, "trigger", make_request(incident_title="x" * 5000))
    assert len(body["payload"]["summary"]) == 1024
    assert body["payload"]["summary"].endswith("…")


def test_no_links_without_a_channel() -> None:
    body = build_event(PD_KEY, "trigger", make_request(channel_id=None))
    assert "links" not in body and "incident_channel" not in body["payload"]["custom_details"]


async def test_repeated_pages_open_one_incident(http: aiohttp.ClientSession, spec_pd: PagerDutyFake, retry: RetryPolicy) -> None:
    p = pager(http, spec_pd, retry)
    first = await p.page("pagerduty:default", make_request(level=0))
    second = await p.page("pagerduty:default", make_request(level=1, repeat=1))
    assert first.delivered and second.delivered
    assert first.provider_ids == {"dedup_key": "firebreak-INC-12"}
    assert len(spec_pd.incidents_for("firebreak-INC-12")) == 1
    assert spec_pd.incidents["firebreak-INC-12"].trigger_count == 2
    assert spec_pd.validation_errors == []


async def test_acknowledge_and_resolve_are_mirrored(http: aiohttp.ClientSession, spec_pd: PagerDutyFake, retry: RetryPolicy) -> None:
    p = pager(http, spec_pd, retry)
    request = make_request()
    await p.page("pagerduty:default", request)
    await p.acknowledge("pagerduty:default", request)
    assert spec_pd.incidents["firebreak-INC-12"].status == "acknowledged"
    await p.resolve("pagerduty:default", request)
    assert spec_pd.incidents["firebreak-INC-12"].status == "resolved"
    assert [r.json["event_action"] for r in spec_pd.requests] == ["trigger", "acknowledge", "resolve"]
    assert spec_pd.validation_errors == []


async def test_server_error_then_success(http: aiohttp.ClientSession, pd: PagerDutyFake, retry: RetryPolicy, sleeps: RecordedSleep) -> None:
    pd.faults.add(Fault.SERVER_ERROR)
    result = await pager(http, pd, retry).page("pagerduty:default", make_request())
    assert result.delivered
    assert len(pd.requests) == 2
    assert sleeps.waits == [0.5]
    assert len(pd.incidents_for("firebreak-INC-12")) == 1


async def test_server_errors_past_the_retries_are_a_transient_error(http: aiohttp.ClientSession, pd: PagerDutyFake, retry: RetryPolicy, sleeps: RecordedSleep) -> None:
    pd.faults.add(Fault.SERVER_ERROR, times=2)
    with pytest.raises(PagerError) as caught:
        await pager(http, pd, retry).page("pagerduty:default", make_request())
    assert caught.value.transient and not caught.value.defer and caught.value.target == "pagerduty:default"
    assert "2 attempt" in str(caught.value) and "HTTP 500" in str(caught.value)
    assert len(pd.requests) == 2 and sleeps.waits == [0.5]


async def test_a_short_retry_after_is_waited_out(http: aiohttp.ClientSession, pd: PagerDutyFake, retry: RetryPolicy, sleeps: RecordedSleep) -> None:
    pd.faults.add(Fault.RATE_LIMIT, retry_after=1)
    await pager(http, pd, retry).page("pagerduty:default", make_request())
    assert sleeps.waits == [1.0]
    assert len(pd.requests) == 2


async def test_a_long_retry_after_is_handed_back_not_slept(http: aiohttp.ClientSession, pd: PagerDutyFake, retry: RetryPolicy, sleeps: RecordedSleep) -> None:
    """The escalation engine pages under the incident's row lock: a Retry-After over 1 s is handed back."""
    pd.faults.add(Fault.RATE_LIMIT, retry_after=30)
    with pytest.raises(PagerError) as caught:
        await pager(http, pd, retry).page("pagerduty:default", make_request())
    assert caught.value.defer and caught.value.transient and caught.value.retry_after == 30
    assert sleeps.waits == [] and len(pd.requests) == 1 and pd.incident_history == []


async def test_hang_once_then_success(http: aiohttp.ClientSession, pd: PagerDutyFake, retry: RetryPolicy,
                                      sleeps: RecordedSleep, loop_clock: LoopClock) -> None:
    pd.faults.add(Fault.HANG)
    paging = asyncio.create_task(pager(http, pd, retry).page("pagerduty:default", make_request()))
    await loop_clock.when(lambda: pd.requests)  # PagerDuty holds the event, unanswered
    loop_clock.advance(retry.request_timeout)  # the try is abandoned, and the event sent again
    assert (await asyncio.wait_for(paging, 20)).delivered
    assert len(pd.incidents_for("firebreak-INC-12")) == 1
    assert [r.fault for r in pd.requests] == [Fault.HANG, None] and sleeps.waits == [0.5]


async def test_connection_reset_is_retried(http: aiohttp.ClientSession, pd: PagerDutyFake, retry: RetryPolicy) -> None:
    pd.faults.add(Fault.RESET)
    assert (await pager(http, pd, retry).page("pagerduty:default", make_request())).delivered
    assert [r.fault for r in pd.requests] == [Fault.RESET, None]


async def test_unknown_routing_key_is_a_final_error(http: aiohttp.ClientSession, pd: PagerDutyFake, retry: RetryPolicy, sleeps: RecordedSleep) -> None:
    wrong = "ffffffffffffffffffffffffffffffff"
    p = PagerDutyPager(http, pd.url, {"default": SecretStr(wrong)}, retry=retry)
    with pytest.raises(PagerError) as caught:
        await p.page("pagerduty:default", make_request())
    assert not caught.value.transient
    assert "Invalid routing key" in str(caught.value)
    assert wrong not in str(caught.value)
    assert len(pd.requests) == 1 and sleeps.waits == []


async def test_missing_routing_key_names_the_variable(http: aiohttp.ClientSession, pd: PagerDutyFake, retry: RetryPolicy) -> None:
    with pytest.raises(PagerError) as caught:
        await pager(http, pd, retry).page("pagerduty:payments-team", make_request())
    assert not caught.value.transient
    assert "PAGERDUTY_ROUTING_KEY_PAYMENTS_TEAM" in str(caught.value)
    assert PD_KEY not in str(caught.value)
    assert pd.requests == []


async def test_routing_key_names_are_case_insensitive(http: aiohttp.ClientSession, pd: PagerDutyFake, retry: RetryPolicy) -> None:
    p = PagerDutyPager(http, pd.url, {"DEFAULT": SecretStr(PD_KEY)}, retry=retry)
    assert (await p.page("pagerduty:Default", make_request())).delivered


async def test_retriggering_after_resolve_opens_a_new_incident_like_pagerduty(http: aiohttp.ClientSession, pd: PagerDutyFake, retry: RetryPolicy) -> None:
    p, request = pager(http, pd, retry), make_request()
    await p.page("pagerduty:default", request)
    await p.resolve("pagerduty:default", request)
    await p.page("pagerduty:default", request)
    assert [i.status for i in pd.incidents_for(request.dedup_key)] == ["resolved", "triggered"]


async def test_the_fake_deduplicates_per_routing_key_like_pagerduty(http: aiohttp.ClientSession, retry: RetryPolicy) -> None:
    """PagerDuty de-duplicates within a service: one dedup_key on two services is two alerts."""
    other = "fedcba9876543210fedcba9876543210"
    async with PagerDutyFake(routing_keys={PD_KEY, other}) as fake:
        p = PagerDutyPager(http, fake.url, {"default": SecretStr(PD_KEY), "db": SecretStr(other)}, retry=retry)
        for _ in range(2):  # a repeat on each service is de-duplicated
            await p.page("pagerduty:default", make_request())
            await p.page("pagerduty:db", make_request())
        incidents = fake.incidents_for("firebreak-INC-12")
        assert sorted(i.routing_key for i in incidents) == sorted([PD_KEY, other])
        assert [i.trigger_count for i in incidents] == [2, 2]
        await p.acknowledge("pagerduty:db", make_request())
        assert {i.routing_key: i.status for i in incidents} == {PD_KEY: "triggered", other: "acknowledged"}
        await p.page("pagerduty:db", make_request())  # a trigger on an acknowledged alert changes nothing
        assert {i.routing_key: i.status for i in incidents} == {PD_KEY: "triggered", other: "acknowledged"}
        assert len(fake.incidents_for("firebreak-INC-12")) == 2


def test_a_manual_page_event_says_so_and_matches_the_schema() -> None:
    event = build_event(PD_KEY, "trigger", make_request(manual=True, paged_by="U024BE7LH"))
    details = event["payload"]["custom_details"]
    assert details["page"] == "manual" and details["paged_by"] == "U024BE7LH"
    assert "escalation_level" not in details
    validate_against_spec(event)
