"""Slack pagers through the real slack_sdk AsyncWebClient, against the Slack emulator (every
call checked against Slack's OpenAPI spec): the clients are the ones production pages with."""

from __future__ import annotations

import json

import aiohttp
import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.emulator import SlackEmulator
from bot.pagers import build_pagers, pager_for
from bot.pagers.base import PagerError
from bot.pagers.opsgenie import OpsgeniePager
from bot.pagers.pagerduty import PagerDutyPager
from bot.pagers.slack import SlackChannelPager, SlackGroupPager, SlackUserPager, pager_error
from bot.slack.ids import ActionId
from tests.pagers.conftest import make_request

AVA, BEN, CHEN = "U024BE7LH", "U0G9QF9C6", "U1H2J3K4L"  # people of the emulator's sample team
NOBODY = "U0NOBODY1"  # not in the workspace: conversations.open answers user_not_found
TRIAGE = "C0TRIAGE"


def calls(emu: SlackEmulator) -> list[str]:
    return [c.method for c in emu.calls if c.method != "auth.test"]


async def test_user_page_is_a_dm_with_an_acknowledge_button(emu: SlackEmulator, sender: AsyncWebClient) -> None:
    result = await SlackUserPager(sender).page(f"user:{AVA}", make_request())
    assert result.delivered
    (dm,) = emu.dms(AVA)
    assert result.provider_ids == {"channel": dm.channel_id, "ts": dm.ts}
    assert calls(emu) == ["conversations.open", "chat.postMessage"]
    assert "INC-12" in dm.text
    buttons = [e for b in dm.blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons[0]["action_id"] == ActionId.PAGE_ACK
    assert json.loads(buttons[0]["value"])["incident"] == 12
    assert any("<#C0INC12>" in b.get("text", {}).get("text", "") for b in dm.blocks)


async def test_group_page_fans_out_and_survives_one_failure(
    emu: SlackEmulator, sender: AsyncWebClient, slack: AsyncWebClient
) -> None:
    group = emu.add_usergroup("oncall-leads", [AVA, NOBODY, CHEN, NOBODY]).id
    result = await SlackGroupPager(sender, members_client=slack).page(f"group:{group}", make_request(level=1))
    assert result.delivered and result.detail == "2 of 3 members paged"
    outcome = {d.user_id: d for d in result.deliveries}
    assert list(outcome) == [AVA, NOBODY, CHEN]
    assert outcome[AVA].delivered and outcome[AVA].channel_id == emu.dms(AVA)[0].channel_id
    assert outcome[AVA].ts == emu.dms(AVA)[0].ts
    assert not outcome[NOBODY].delivered and not outcome[NOBODY].transient
    assert "user_not_found" in outcome[NOBODY].detail
    assert outcome[CHEN].delivered and len(emu.dms(CHEN)) == 1


async def test_group_page_with_nobody_reached_raises(
    emu: SlackEmulator, sender: AsyncWebClient, slack: AsyncWebClient
) -> None:
    group = emu.add_usergroup("nobody-home", [NOBODY, BEN]).id
    emu.fail_next("chat.postMessage", "internal_error")  # BEN's DM (NOBODY has none)
    with pytest.raises(PagerError) as caught:
        await SlackGroupPager(sender, members_client=slack).page(f"group:{group}", make_request())
    assert caught.value.transient  # one member's failure may pass
    assert emu.dms(BEN) == []


async def test_empty_or_unknown_group(emu: SlackEmulator, sender: AsyncWebClient, slack: AsyncWebClient) -> None:
    empty = emu.add_usergroup("empty").id
    with pytest.raises(PagerError, match="no members") as caught:
        await SlackGroupPager(sender, members_client=slack).page(f"group:{empty}", make_request())
    assert not caught.value.transient
    with pytest.raises(PagerError, match="no_such_subteam"):
        await SlackGroupPager(sender, members_client=slack).page("group:S0GONE", make_request())


async def test_channel_page_posts_in_the_channel(emu: SlackEmulator, sender: AsyncWebClient) -> None:
    result = await SlackChannelPager(sender).page(f"channel:{TRIAGE}", make_request(severity="P3"))
    (posted,) = emu.messages(TRIAGE)
    assert result.provider_ids == {"channel": TRIAGE, "ts": posted.ts}
    assert calls(emu) == ["chat.postMessage"]


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
async def test_channel_errors_are_classified(
    emu: SlackEmulator, sender: AsyncWebClient, status: int, code: str, transient: bool
) -> None:
    if code == "ratelimited":
        emu.rate_limit_next("chat.postMessage", retry_after=30)
    else:
        emu.fail_next("chat.postMessage", code, status=status)
    with pytest.raises(PagerError) as caught:
        await SlackChannelPager(sender).page(f"channel:{TRIAGE}", make_request())
    assert caught.value.transient is transient
    assert code in str(caught.value) and caught.value.target == f"channel:{TRIAGE}"
    assert emu.messages(TRIAGE) == []


async def test_slack_itself_refuses_a_missing_or_archived_channel(emu: SlackEmulator, sender: AsyncWebClient) -> None:
    with pytest.raises(PagerError, match="channel_not_found") as caught:
        await SlackChannelPager(sender).page("channel:C0NOSUCH1", make_request())
    assert not caught.value.transient
    archived = emu.add_channel("old-triage")
    archived.is_archived = True
    with pytest.raises(PagerError, match="is_archived") as caught:
        await SlackChannelPager(sender).page(f"channel:{archived.id}", make_request())
    assert not caught.value.transient


async def test_connection_failure_is_transient() -> None:
    client = AsyncWebClient(token="xoxb-test", base_url="http://127.0.0.1:1/api/", retry_handlers=[])
    with pytest.raises(PagerError) as caught:
        await SlackUserPager(client).page("user:U1", make_request())
    assert caught.value.transient


def test_unexpected_exception_is_final() -> None:
    assert pager_error(RuntimeError("boom"), "user:U1", "x").transient is False


async def test_ack_and_resolve_are_no_ops(emu: SlackEmulator, sender: AsyncWebClient) -> None:
    await SlackUserPager(sender).acknowledge(f"user:{AVA}", make_request())
    await SlackUserPager(sender).resolve(f"user:{AVA}", make_request())
    assert calls(emu) == []


async def test_build_pagers_registry(slack: AsyncWebClient) -> None:
    settings = Settings(_env_file=None, opsgenie_api_key=SecretStr("k"))  # type: ignore[call-arg]
    async with aiohttp.ClientSession() as session:
        pagers = build_pagers(settings, session, slack)
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
