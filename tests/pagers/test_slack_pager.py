"""Slack pagers through the real slack_sdk AsyncWebClient.

The shared Slack emulator (``bot/emulator/slack_api.py``) was not available
when these tests were written, so they use a tiny Web API stub below that
answers conversations.open, chat.postMessage and usergroups.users.list.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.pagers import build_pagers, pager_for
from bot.pagers.base import PagerError
from bot.pagers.opsgenie import OpsgeniePager
from bot.pagers.pagerduty import PagerDutyPager
from bot.pagers.slack import SlackChannelPager, SlackGroupPager, SlackUserPager, pager_error
from bot.slack.ids import ActionId
from tests.pagers.conftest import make_request


class SlackStub:
    """Just enough of the Slack Web API; ``errors[(method, key)]`` makes a call fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.groups: dict[str, list[str]] = {}
        self.errors: dict[tuple[str, str], tuple[int, str]] = {}
        self.app = web.Application()
        self.app.router.add_route("*", "/api/{method}", self._handle)
        self.runner = web.AppRunner(self.app)
        self._ts = 0

    async def start(self) -> str:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/api/"

    def posts(self) -> list[dict[str, Any]]:
        return [args for method, args in self.calls if method == "chat.postMessage"]

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)  # slack_sdk sends some arguments as query params
        if request.method == "GET":
            pass
        elif request.content_type == "application/json":
            args.update(await request.json())
        else:
            args.update(await request.post())
        if isinstance(args.get("blocks"), str):
            args["blocks"] = json.loads(args["blocks"])
        self.calls.append((method, args))
        key = {"conversations.open": "users", "chat.postMessage": "channel", "usergroups.users.list": "usergroup"}[method]
        failure = self.errors.get((method, str(args.get(key))))
        if failure:
            status, code = failure
            return web.json_response({"ok": False, "error": code}, status=status)
        if method == "conversations.open":
            return web.json_response({"ok": True, "channel": {"id": "D" + str(args["users"])}})
        if method == "usergroups.users.list":
            return web.json_response({"ok": True, "users": self.groups.get(str(args["usergroup"]), [])})
        self._ts += 1
        return web.json_response({"ok": True, "channel": args["channel"], "ts": f"1700000000.{self._ts:06d}"})


@pytest.fixture
async def slack() -> AsyncIterator[tuple[SlackStub, AsyncWebClient]]:
    stub = SlackStub()
    url = await stub.start()
    yield stub, AsyncWebClient(token="xoxb-test", base_url=url)
    await stub.runner.cleanup()


async def test_user_page_is_a_dm_with_an_acknowledge_button(slack: tuple[SlackStub, AsyncWebClient]) -> None:
    stub, client = slack
    result = await SlackUserPager(client).page("user:U024BE7LH", make_request())
    assert result.delivered
    assert result.provider_ids == {"channel": "DU024BE7LH", "ts": "1700000000.000001"}
    assert [m for m, _ in stub.calls] == ["conversations.open", "chat.postMessage"]
    (post,) = stub.posts()
    assert post["channel"] == "DU024BE7LH"
    assert "INC-12" in post["text"]
    buttons = [e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons[0]["action_id"] == ActionId.PAGE_ACK
    assert json.loads(buttons[0]["value"])["incident"] == 12
    assert any("<#C0INC12>" in b.get("text", {}).get("text", "") for b in post["blocks"])


async def test_group_page_fans_out_and_survives_one_failure(slack: tuple[SlackStub, AsyncWebClient]) -> None:
    stub, client = slack
    stub.groups["S0LEADS"] = ["U1", "U2", "U3", "U2"]
    stub.errors[("conversations.open", "U2")] = (200, "user_not_found")
    result = await SlackGroupPager(client).page("group:S0LEADS", make_request(level=1))
    assert result.delivered and result.detail == "2 of 3 members paged"
    outcome = {d.user_id: d for d in result.deliveries}
    assert list(outcome) == ["U1", "U2", "U3"]
    assert outcome["U1"].delivered and outcome["U1"].channel_id == "DU1" and outcome["U1"].ts
    assert not outcome["U2"].delivered and not outcome["U2"].transient and "user_not_found" in outcome["U2"].detail
    assert outcome["U3"].delivered
    assert sorted(p["channel"] for p in stub.posts()) == ["DU1", "DU3"]


async def test_group_page_with_nobody_reached_raises(slack: tuple[SlackStub, AsyncWebClient]) -> None:
    stub, client = slack
    stub.groups["S0X"] = ["U1", "U2"]
    stub.errors[("conversations.open", "U1")] = (200, "user_not_found")
    stub.errors[("chat.postMessage", "DU2")] = (200, "internal_error")
    with pytest.raises(PagerError) as caught:
        await SlackGroupPager(client).page("group:S0X", make_request())
    assert caught.value.transient  # one member's failure may pass


async def test_empty_or_unknown_group(slack: tuple[SlackStub, AsyncWebClient]) -> None:
    stub, client = slack
    with pytest.raises(PagerError, match="no members") as caught:
        await SlackGroupPager(client).page("group:S0EMPTY", make_request())
    assert not caught.value.transient
    stub.errors[("usergroups.users.list", "S0GONE")] = (200, "no_such_subteam")
    with pytest.raises(PagerError, match="no_such_subteam"):
        await SlackGroupPager(client).page("group:S0GONE", make_request())


async def test_channel_page_posts_in_the_channel(slack: tuple[SlackStub, AsyncWebClient]) -> None:
    stub, client = slack
    result = await SlackChannelPager(client).page("channel:C0TRIAGE", make_request(severity="P3"))
    assert result.provider_ids["channel"] == "C0TRIAGE"
    assert [m for m, _ in stub.calls] == ["chat.postMessage"]


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (429, "ratelimited", True),
        (200, "internal_error", True),
        (200, "fatal_error", True),
        (503, "service_unavailable", True),
        (200, "channel_not_found", False),
        (200, "not_in_channel", False),
        (200, "is_archived", False),
    ],
)
async def test_channel_errors_are_classified(slack: tuple[SlackStub, AsyncWebClient], status: int, code: str, transient: bool) -> None:
    stub, client = slack
    stub.errors[("chat.postMessage", "C0TRIAGE")] = (status, code)
    with pytest.raises(PagerError) as caught:
        await SlackChannelPager(client).page("channel:C0TRIAGE", make_request())
    assert caught.value.transient is transient
    assert code in str(caught.value) and caught.value.target == "channel:C0TRIAGE"


async def test_connection_failure_is_transient() -> None:
    client = AsyncWebClient(token="xoxb-test", base_url="http://127.0.0.1:1/api/", retry_handlers=[])
    with pytest.raises(PagerError) as caught:
        await SlackUserPager(client).page("user:U1", make_request())
    assert caught.value.transient


def test_unexpected_exception_is_final() -> None:
    assert pager_error(RuntimeError("boom"), "user:U1", "x").transient is False


async def test_ack_and_resolve_are_no_ops(slack: tuple[SlackStub, AsyncWebClient]) -> None:
    stub, client = slack
    await SlackUserPager(client).acknowledge("user:U1", make_request())
    await SlackUserPager(client).resolve("user:U1", make_request())
    assert stub.calls == []


async def test_build_pagers_registry(slack: tuple[SlackStub, AsyncWebClient]) -> None:
    _, client = slack
    settings = Settings(_env_file=None, opsgenie_api_key=SecretStr("k"))  # type: ignore[call-arg]
    async with aiohttp.ClientSession() as session:
        pagers = build_pagers(settings, session, client)
    assert set(pagers) == {"user", "group", "channel", "pagerduty", "opsgenie"}
    assert isinstance(pager_for(pagers, "pagerduty:default"), PagerDutyPager)
    assert isinstance(pager_for(pagers, "opsgenie:ops"), OpsgeniePager)
    assert isinstance(pager_for(pagers, "user:U1"), SlackUserPager)
    with pytest.raises(PagerError, match="resolved") as caught:
        pager_for(pagers, "oncall:backend")
    assert not caught.value.transient
    with pytest.raises(PagerError, match="unknown page target kind"):
        pager_for(pagers, "email:a@b.c")
    with pytest.raises(PagerError, match="malformed"):
        pager_for(pagers, "user:")
