"""Opsgenie Alert API pager against the local fake."""

from __future__ import annotations

import aiohttp
import pytest
from pydantic import SecretStr

from bot.emulator.opsgenie import OpsgenieFake
from bot.emulator.pagerduty import Fault
from bot.pagers.base import PagerError
from bot.pagers.http import RetryPolicy
from bot.pagers.opsgenie import PRIORITY_MAP, OpsgeniePager, build_action_body, build_alert
from tests.pagers.conftest import OG_KEY, RecordedSleep, make_request

TARGET = "opsgenie:platform"


def pager(session: aiohttp.ClientSession, fake: OpsgenieFake, retry: RetryPolicy, key: str | None = OG_KEY) -> OpsgeniePager:
    return OpsgeniePager(session, fake.url + "/", SecretStr(key) if key else None, retry=retry)


@pytest.mark.parametrize(("severity", "priority"), [("P0", "P1"), ("P1", "P2"), ("P2", "P3"), ("P3", "P4")])
def test_priority_mapping(severity: str, priority: str) -> None:
    assert PRIORITY_MAP[severity] == priority
    assert build_alert("platform", make_request(severity=severity))["priority"] == priority


def test_alert_body_follows_opsgenie_rules() -> None:
    body = build_alert("platform", make_request(incident_title="t" * 500, message="m" * 20_000))
    assert len(body["message"]) == 130 and body["message"].endswith("…")
    assert body["alias"] == "firebreak-INC-12-platform"
    assert len(body["description"]) <= 15_000
    assert body["responders"] == [{"name": "platform", "type": "team"}]
    assert body["source"] == "Firebreak"
    assert all(len(tag) <= 50 for tag in body["tags"]) and len(body["tags"]) <= 20
    assert all(isinstance(v, str) for v in body["details"].values())


def test_action_body() -> None:
    assert build_action_body("acknowledge", make_request(actor="U024BE7LH")) == {
        "source": "Firebreak",
        "note": "Acknowledged by U024BE7LH in Firebreak (INC-12)",
        "user": "U024BE7LH",
    }
    assert "user" not in build_action_body("close", make_request())


async def test_page_creates_one_alert_per_alias(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy) -> None:
    p = pager(http, og, retry)
    first = await p.page(TARGET, make_request())
    await p.page(TARGET, make_request(level=1))
    assert first.delivered
    assert first.provider_ids["alias"] == "firebreak-INC-12-platform"
    assert first.provider_ids["request_id"] in og.request_statuses
    assert len(og.alerts_for("firebreak-INC-12-platform")) == 1
    alert = og.alerts["firebreak-INC-12-platform"]
    assert alert.count == 2 and alert.priority == "P2"
    assert alert.responders == [{"name": "platform", "type": "team"}]
    assert og.requests[0].headers["Authorization"] == f"GenieKey {OG_KEY}"


async def test_acknowledge_and_close_by_alias(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy) -> None:
    p, request = pager(http, og, retry), make_request(actor="alice")
    await p.page(TARGET, request)
    await p.acknowledge(TARGET, request)
    alert = og.alerts["firebreak-INC-12-platform"]
    assert alert.acknowledged and alert.status == "open"
    await p.resolve(TARGET, request)
    assert alert.status == "closed"
    ack, close = og.requests[1], og.requests[2]
    assert ack.path == "/v2/alerts/firebreak-INC-12-platform/acknowledge" and ack.query == {"identifierType": "alias"}
    assert close.path == "/v2/alerts/firebreak-INC-12-platform/close"
    assert ack.json == {"source": "Firebreak", "user": "alice", "note": "Acknowledged by alice in Firebreak (INC-12)"}


async def test_new_alert_after_close(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy) -> None:
    p, request = pager(http, og, retry), make_request()
    await p.page(TARGET, request)
    await p.resolve(TARGET, request)
    await p.page(TARGET, request)
    assert [a.status for a in og.alerts_for("firebreak-INC-12-platform")] == ["closed", "open"]


async def test_unknown_key_is_final(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy, sleeps: RecordedSleep) -> None:
    with pytest.raises(PagerError) as caught:
        await pager(http, og, retry, key="00000000-0000-0000-0000-000000000000").page(TARGET, make_request())
    assert not caught.value.transient and "401" in str(caught.value) and "Could not authenticate" in str(caught.value)
    assert sleeps.waits == []


async def test_malformed_key_is_422(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy) -> None:
    with pytest.raises(PagerError, match="Key format is not valid"):
        await pager(http, og, retry, key="not-a-uuid").page(TARGET, make_request())


async def test_missing_key_names_the_variable(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy) -> None:
    with pytest.raises(PagerError, match="OPSGENIE_API_KEY") as caught:
        await pager(http, og, retry, key=None).page(TARGET, make_request())
    assert not caught.value.transient and og.requests == []


async def test_fake_enforces_body_rules(http: aiohttp.ClientSession, og: OpsgenieFake) -> None:
    headers = {"Authorization": f"GenieKey {OG_KEY}"}
    bad = {
        "message": "x" * 131,
        "alias": "a" * 513,
        "priority": "P0",
        "responders": [{"type": "team"}, {"name": "x", "type": "squad"}],
    }
    async with http.post(og.url + "/v2/alerts", json=bad, headers=headers) as response:
        assert response.status == 422
        answer = await response.json()
    assert set(answer["errors"]) == {"message", "alias", "priority", "responders[0]", "responders[1]"}
    assert "requestId" in answer and "took" in answer
    async with http.post(og.url + "/v2/alerts", json={"message": "  "}, headers=headers) as response:
        assert (await response.json())["errors"] == {"message": "Message can not be empty."}
    assert og.alerts == {}


async def test_final_422_is_not_retried(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy, sleeps: RecordedSleep) -> None:
    def refuse_everything(body: dict[str, object]) -> None:
        raise ValueError("nope")

    og.validator = refuse_everything
    with pytest.raises(PagerError, match="422") as caught:
        await pager(http, og, retry).page(TARGET, make_request())
    assert not caught.value.transient and len(og.requests) == 1 and sleeps.waits == []


@pytest.mark.parametrize(("fault", "waits"), [(Fault.RATE_LIMIT, [1.0]), (Fault.SERVER_ERROR, [0.5])])
async def test_rate_limit_and_server_errors_are_retried(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy, sleeps: RecordedSleep, fault: Fault, waits: list[float]) -> None:
    og.faults.add(fault, **({"retry_after": 1} if fault is Fault.RATE_LIMIT else {"status": 503}))
    assert (await pager(http, og, retry).page(TARGET, make_request())).delivered
    assert sleeps.waits == waits
    assert len(og.alerts_for("firebreak-INC-12-platform")) == 1


async def test_gives_up_transiently(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy) -> None:
    og.faults.add(Fault.SERVER_ERROR, times=2)
    with pytest.raises(PagerError) as caught:
        await pager(http, og, retry).acknowledge(TARGET, make_request())
    assert caught.value.transient and len(og.requests) == 2


async def test_reset_then_success(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy) -> None:
    og.faults.add(Fault.RESET)
    assert (await pager(http, og, retry).page(TARGET, make_request())).delivered
    assert len(og.alerts_for("firebreak-INC-12-platform")) == 1


async def test_ack_of_unknown_alert_is_accepted_but_fails_asynchronously(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy) -> None:
    await pager(http, og, retry).acknowledge(TARGET, make_request())
    (status,) = og.request_statuses.values()
    assert status["isSuccess"] is False and status["status"] == "Alert does not exist"


async def test_fake_get_alert_by_alias(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy) -> None:
    headers = {"Authorization": f"GenieKey {OG_KEY}"}
    await pager(http, og, retry).page(TARGET, make_request())
    async with http.get(og.url + "/v2/alerts/firebreak-INC-12-platform", params={"identifierType": "alias"}, headers=headers) as response:
        assert response.status == 200
        assert (await response.json())["data"]["status"] == "open"
    async with http.get(og.url + "/v2/alerts/nope", params={"identifierType": "alias"}, headers=headers) as response:
        assert response.status == 404


async def test_each_team_gets_its_own_alert(http: aiohttp.ClientSession, og: OpsgenieFake, retry: RetryPolicy) -> None:
    """Opsgenie de-duplicates by alias and a de-duplicated request adds no responder: a second
    team paged about the same incident must not share the first team's alias."""
    p = pager(http, og, retry)
    await p.page(TARGET, make_request())
    await p.page("opsgenie:database", make_request(level=1))
    await p.page("opsgenie:database", make_request(level=1))  # sent again (a retry): de-duplicated
    assert {a.alias: (a.responders, a.count) for a in og.alert_history} == {
        "firebreak-INC-12-platform": ([{"name": "platform", "type": "team"}], 1),
        "firebreak-INC-12-database": ([{"name": "database", "type": "team"}], 2),
    }
    await p.acknowledge("opsgenie:database", make_request())
    assert og.alerts["firebreak-INC-12-database"].acknowledged
    assert not og.alerts["firebreak-INC-12-platform"].acknowledged


async def test_the_fake_adds_no_responder_on_deduplication(http: aiohttp.ClientSession, og: OpsgenieFake) -> None:
    headers = {"Authorization": f"GenieKey {OG_KEY}"}
    for team in ("platform", "database"):
        body = {"message": "m", "alias": "same", "responders": [{"name": team, "type": "team"}]}
        async with http.post(og.url + "/v2/alerts", json=body, headers=headers) as response:
            assert response.status == 202
    (alert,) = og.alert_history
    assert alert.count == 2 and alert.responders == [{"name": "platform", "type": "team"}]


def test_a_manual_page_says_so() -> None:
    body = build_alert("platform", make_request(manual=True, paged_by="U024BE7LH"))
    assert "Manual page by U024BE7LH" in body["description"] and "Escalation level" not in body["description"]
    assert body["details"]["page"] == "manual" and "escalation_level" not in body["details"]
