"""The HTTP edge: retries for reads, exactly-once writes, errors without secrets."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web

from bot.emulator.providers import FakeProviderServer, Fault
from bot.providers.base import AmbiguousTriggerError, ProviderRejected, ProviderUnavailable
from bot.providers.http import ProviderHttp, parse_retry_after, provider_error_message

SECRET = "sk_live_TOP_SECRET_123456"


class EchoFake(FakeProviderServer):
    """GET /thing → {"ok": true}; POST /thing → 201 and counts applied writes."""

    provider = "echo"

    def __init__(self) -> None:
        super().__init__(token=SECRET)
        self.applied = 0
        self.app.router.add_get("/thing", self._get)
        self.app.router.add_post("/thing", self._post)

    async def _get(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _post(self, request: web.Request) -> web.Response:
        self.applied += 1
        return web.json_response({"id": self.applied}, status=201)


@pytest.fixture
async def echo():
    async with EchoFake() as fake:
        yield fake


@pytest.fixture
def client(echo, http, retry) -> ProviderHttp:
    return ProviderHttp(
        http, provider="echo", display_name="Echo", base_url=echo.url,
        headers={"Authorization": f"Bearer {SECRET}"}, policy=retry, token_env="ECHO_TOKEN", secrets=[SECRET],
    )


async def test_get_ok(client, echo):
    response = await client.get("/thing")
    assert response.status == 200 and response.data == {"ok": True}


async def test_429_retry_after_honoured(client, echo, sleeps):
    echo.faults.add(Fault.RATE_LIMIT, retry_after=7)
    echo.faults.add(Fault.RATE_LIMIT, retry_after=2)
    assert (await client.get("/thing")).status == 200
    assert sleeps == [7, 2]


async def test_429_http_date_retry_after(client, echo, sleeps):
    when = datetime.now(UTC) + timedelta(seconds=10)
    echo.faults.add(Fault.RATE_LIMIT, retry_after=format_datetime(when, usegmt=True))
    assert (await client.get("/thing")).status == 200
    assert 8 <= sleeps[0] <= 10


async def test_too_long_retry_after_gives_up_at_once(client, echo, sleeps):
    echo.faults.add(Fault.RATE_LIMIT, retry_after=3600)
    with pytest.raises(ProviderUnavailable, match="rate limiting") as info:
        await client.get("/thing")
    assert info.value.retry_after == 3600
    assert sleeps == [] and len(echo.api_requests()) == 1


async def test_5xx_reset_and_timeout_are_retried(client, echo, sleeps, retry, loop_clock):
    echo.faults.add(Fault.SERVER_ERROR, status=503)
    echo.faults.add(Fault.RESET)
    echo.faults.add(Fault.HANG)
    reading = asyncio.create_task(client.get("/thing"))
    await loop_clock.when(lambda: any(r.fault is Fault.HANG for r in echo.api_requests()))
    loop_clock.advance(retry.timeout)  # the hanging attempt times out
    assert (await asyncio.wait_for(reading, 20)).data == {"ok": True}
    assert len(echo.api_requests()) == 4
    # aiohttp itself re-sends an idempotent request once when a kept-alive
    # connection is reset, so the reset may cost no retry of ours
    assert 2 <= len(sleeps) <= 3


async def test_reads_give_up_after_max_attempts(client, echo):
    echo.faults.add(Fault.SERVER_ERROR, times=10)
    with pytest.raises(ProviderUnavailable, match="after 4 attempts"):
        await client.get("/thing")
    assert len(echo.api_requests()) == 4


async def test_backoff_is_exponential_capped_and_jittered(retry):
    steady = replace(retry, jitter=0.0)
    assert [steady.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert all(base <= retry.backoff(n) <= base * (1 + retry.jitter)
               for n, base in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0], start=1))


async def test_4xx_on_read_is_not_retried(client, echo):
    echo.faults.add(Fault.REJECT, status=404, message="thing not found")
    with pytest.raises(ProviderRejected) as info:
        await client.get("/thing")
    assert info.value.status == 404 and info.value.provider_message == "thing not found"
    assert len(echo.api_requests()) == 1


@pytest.mark.parametrize(
    "fault, kwargs",
    [
        (Fault.SERVER_ERROR, {"status": 500}),
        (Fault.SERVER_ERROR, {"status": 503}),
        (Fault.RESET, {}),
        (Fault.HANG, {}),
        (Fault.LOST_RESPONSE, {}),
    ],
)
async def test_writes_are_never_retried_and_ambiguous(client, echo, retry, loop_clock, fault, kwargs):
    echo.faults.add(fault, method="POST", **kwargs)
    writing = asyncio.create_task(client.write("POST", "/thing", json_body={}))
    if fault is Fault.HANG:
        await loop_clock.when(lambda: echo.api_requests("POST"))
        loop_clock.advance(retry.timeout)
    with pytest.raises(AmbiguousTriggerError, match="may have been applied"):
        await asyncio.wait_for(writing, 20)
    assert len(echo.api_requests("POST")) == 1
    assert echo.applied == (1 if fault is Fault.LOST_RESPONSE else 0)


async def test_write_429_is_unavailable_not_ambiguous(client, echo):
    echo.faults.add(Fault.RATE_LIMIT, method="POST", retry_after=12)
    with pytest.raises(ProviderUnavailable, match="nothing was changed") as info:
        await client.write("POST", "/thing", json_body={})
    assert info.value.retry_after == 12 and echo.applied == 0


async def test_write_to_a_closed_port_surely_never_arrived(http, retry):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ProviderHttp(http, provider="echo", display_name="Echo", base_url=f"http://127.0.0.1:{port}", headers={}, policy=retry)
    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        await client.write("POST", "/thing", json_body={})


async def test_write_rejections_keep_the_providers_words(client, echo):
    echo.faults.add(Fault.REJECT, method="POST", status=409, message="deploy in progress")
    with pytest.raises(ProviderRejected) as info:
        await client.write("POST", "/thing", json_body={})
    assert str(info.value) == "Echo refused the request (HTTP 409, conflict with the current state): “deploy in progress”"


async def test_secrets_never_in_errors_or_logs(client, echo, caplog, http, retry):
    caplog.set_level(logging.DEBUG)
    echo.faults.add(Fault.SERVER_ERROR, times=4, message=f"bad token {SECRET}")
    with pytest.raises(ProviderUnavailable) as unavailable:
        await client.get("/thing")
    echo.faults.add(Fault.REJECT, status=403, message=f"token {SECRET} may not do this")
    with pytest.raises(ProviderRejected) as rejected:
        await client.get("/thing")
    assert "***" in str(rejected.value) and "ECHO_TOKEN" in str(rejected.value)
    echo.faults.add(Fault.RESET, method="POST")
    with pytest.raises(AmbiguousTriggerError) as ambiguous:
        await client.write("POST", "/thing")
    wrong = ProviderHttp(http, provider="echo", display_name="Echo", base_url=echo.url,
                         headers={"Authorization": "Bearer wrong-secret-value"}, policy=retry, secrets=["wrong-secret-value"])
    with pytest.raises(ProviderRejected) as unauthorized:
        await wrong.get("/thing")
    assert unauthorized.value.status == 401
    everything = " ".join(str(e.value) for e in (unavailable, rejected, ambiguous, unauthorized)) + caplog.text
    assert SECRET not in everything and "wrong-secret-value" not in everything


def test_parse_retry_after():
    now = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("Mon, 02 Mar 2026 14:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"id": "x1", "code": "not_found", "message": "deploy not found"}, ("deploy not found", "not_found")),  # Render
        ({"id": "not_found", "message": "Couldn't find that app."}, ("Couldn't find that app.", "not_found")),  # Heroku
        ({"error": {"code": "forbidden", "message": "Not authorized"}}, ("Not authorized", "forbidden")),  # Vercel
        ({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, ("Bad credentials", None)),
        ({"errors": [{"message": "Not Authorized", "extensions": {"code": "UNAUTHORIZED"}}]}, ("Not Authorized", "UNAUTHORIZED")),
    ],
)
def test_provider_error_shapes(body, expected):
    assert provider_error_message(body) == expected


async def test_slow_answers_within_the_timeout_are_fine(client, echo, sleeps, retry, loop_clock):
    echo.faults.add(Fault.SLOW, delay=retry.timeout - 1)  # answers a second before the timeout
    reading = asyncio.create_task(client.get("/thing"))
    await loop_clock.when(lambda: echo.api_requests())
    loop_clock.advance(retry.timeout - 1)
    assert (await asyncio.wait_for(reading, 20)).status == 200 and sleeps == []
    echo.faults.add(Fault.SLOW, delay=retry.timeout + 1, method="POST")  # a second after it
    writing = asyncio.create_task(client.write("POST", "/thing", json_body={}))
    await loop_clock.when(lambda: echo.api_requests("POST"))
    loop_clock.advance(retry.timeout)
    with pytest.raises(AmbiguousTriggerError):
        await asyncio.wait_for(writing, 20)


async def test_requests_are_recorded_with_credentials_redacted(client, echo):
    await client.get("/thing")
    (request,) = echo.api_requests()
    assert request.headers["Authorization"] == "<redacted>" and request.authorized
