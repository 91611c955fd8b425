"""check_health: continuous answers for ``settle``, with an injected clock (no real waits)."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import pytest
from aiohttp import web

from bot.clock import ManualClock
from bot.emulator.providers import FakeProviderServer, Fault, RenderFake
from bot.playbooks.models import RenderConfig
from bot.providers.health import check_health
from bot.providers.render import RenderProvider


class SteppingClock(ManualClock):
    """``sleep`` advances the clock instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


class ScriptedService(FakeProviderServer):
    """``GET /status`` answers the scripted statuses in turn, then the last one."""

    def __init__(self, *statuses: int) -> None:
        super().__init__()
        self.script = list(statuses)
        self.calls = 0
        self.app.router.add_get("/status", self._status)

    def authorized(self, request: web.Request) -> bool:
        return True

    async def _status(self, request: web.Request) -> web.Response:
        answer = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return web.Response(status=answer, text="ok")


@pytest.fixture
def stepping() -> SteppingClock:
    return SteppingClock()


async def test_healthy_for_the_whole_settle(http, stepping):
    async with ScriptedService(200) as service:
        result = await check_health(http, url=f"{service.url}/status", settle=60, interval=10, clock=stepping, timeout=1)
    assert result.healthy and result.first_failure is None
    assert len(result.samples) == 7  # t=0, 10, ..., 60
    assert [s.at for s in result.samples][-1] - result.samples[0].at == timedelta(seconds=60)
    assert stepping.slept == [10] * 6
    assert "answered 200 to 7 checks over 60s" in result.detail


async def test_first_failure_ends_the_check(http, stepping):
    async with ScriptedService(200, 200, 502, 200) as service:
        result = await check_health(http, url=f"{service.url}/status", settle=timedelta(minutes=2), interval=timedelta(seconds=5), clock=stepping)
    assert not result.healthy
    assert len(result.samples) == 3 and result.first_failure is result.samples[2]
    assert result.first_failure.status == 502
    assert "HTTP 502" in result.detail


async def test_grace_lets_the_service_warm_up(http, stepping):
    async with ScriptedService(503, 503, 200) as service:
        result = await check_health(http, url=f"{service.url}/status", settle=20, interval=10, grace=20, clock=stepping)
    assert result.healthy
    assert [s.status for s in result.samples] == [503, 503, 200, 200, 200]
    assert result.first_failure is not None and result.first_failure.status == 503


async def test_grace_is_bounded(http, stepping):
    async with ScriptedService(503) as service:
        result = await check_health(http, url=f"{service.url}/status", settle=20, interval=10, grace=20, clock=stepping)
    assert not result.healthy and len(result.samples) == 3


async def test_expected_status_other_than_200(http, stepping):
    async with ScriptedService(204) as service:
        assert (await check_health(http, url=f"{service.url}/status", expect_status=204, settle=0, clock=stepping)).healthy
        assert not (await check_health(http, url=f"{service.url}/status", expect_status=200, settle=0, clock=stepping)).healthy


async def test_timeout_and_refused_connection(http, stepping):
    async with ScriptedService(200) as service:
        service.faults.add(Fault.HANG)
        result = await check_health(http, url=f"{service.url}/status", settle=10, interval=5, timeout=0.1, clock=stepping)
    assert not result.healthy and result.first_failure.status is None
    assert "timed out" in result.first_failure.error
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await check_health(http, url=f"http://127.0.0.1:{port}/", settle=10, interval=5, clock=stepping)
    assert not result.healthy and "no answer" in result.detail


async def test_recovery_after_a_render_rollback(http, stepping, retry):
    async with RenderFake(clock=stepping) as render:
        url = render.health_url("api")
        assert not (await check_health(http, url=url, settle=30, interval=10, clock=stepping)).healthy
        provider = RenderProvider(http, api_url=render.api_url, api_key=render.token, clock=stepping, retry=retry)
        config = RenderConfig(type="render", service_id="srv-d0fakeapi0001")
        handle = await provider.trigger(config, await provider.plan(config), idempotency_key="k")
        while not (await provider.poll(config, handle)).terminal:
            pass
        result = await check_health(http, url=url, settle=30, interval=10, clock=stepping)
        assert result.healthy and len(result.samples) == 4
