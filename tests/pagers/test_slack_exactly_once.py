"""Slack pages sent once: message metadata, the look-up before a repeat, no retries under the lock.

Against the Slack emulator (every call checked against Slack's OpenAPI spec and
the documented metadata shape), through the client the escalation engine sends
pages with (:func:`bot.pagers.slack.page_client`).
"""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulator import SlackEmulator
from bot.pagers.base import PagerError
from bot.pagers.slack import PAGE_EVENT_TYPE, SlackChannelPager, SlackUserPager, page_client
from bot.slack.client import make_slack_client
from tests.pagers.conftest import SLACK_TOKEN, make_request, slack_settings
from tests.support.slack_openapi import slack_openapi_validator

CHEN = "U1H2J3K4L"


def page_dms(emu: SlackEmulator, user: str) -> list:
    return [m for m in emu.dms(user) if (m.text or "").startswith("Page: ")]


def test_the_page_client_never_retries_by_itself(emu: SlackEmulator) -> None:
    shared = make_slack_client(slack_settings(emu))
    assert shared.retry_handlers  # the runtime's client waits out 429s...
    client = page_client(shared)
    assert client.retry_handlers == []  # ...the page client does not (it runs under the incident's lock)
    assert client.base_url == shared.base_url and client.token == shared.token and client.timeout == 5


async def test_a_dm_carries_its_page_key_in_metadata(emu: SlackEmulator, sender: AsyncWebClient) -> None:
    result = await SlackUserPager(sender).page(f"user:{CHEN}", make_request(page_key="k1"))
    (dm,) = page_dms(emu, CHEN)
    assert dm.ts == result.provider_ids["ts"]
    assert dm.metadata == {"event_type": PAGE_EVENT_TYPE,
                           "event_payload": {"page_key": "k1", "incident": "INC-12", "level": 1, "repeat": 0}}


async def test_a_page_that_may_have_been_sent_is_looked_for_first(emu: SlackEmulator, sender: AsyncWebClient) -> None:
    pager = SlackUserPager(sender)
    first = await pager.page(f"user:{CHEN}", make_request(page_key="k1"))
    other = await pager.page(f"user:{CHEN}", make_request(page_key="k2", level=1))  # a later page
    again = await pager.page(f"user:{CHEN}", make_request(page_key="k1", maybe_sent=True))
    assert again.provider_ids == first.provider_ids and "earlier try" in again.detail
    assert len(page_dms(emu, CHEN)) == 2 and other.provider_ids["ts"] != first.provider_ids["ts"]
    history = emu.calls_to("conversations.history")
    assert history and all(c.params.get("include_all_metadata") in ("1", "true", True) for c in history)
    # Not sent before (the crash came before the post): it is posted now, once.
    fresh = await SlackUserPager(sender).page(f"user:{CHEN}", make_request(page_key="k3", maybe_sent=True))
    assert len(page_dms(emu, CHEN)) == 3 and fresh.provider_ids["ts"] == page_dms(emu, CHEN)[-1].ts


async def test_the_look_up_reaches_past_the_first_page_of_history(emu: SlackEmulator, sender: AsyncWebClient) -> None:
    pager = SlackUserPager(sender)
    await pager.page(f"user:{CHEN}", make_request(page_key="old"))
    channel = emu.workspace.im_with(CHEN).id
    for n in range(250):  # other messages since (more than one history page of 200)
        await sender.chat_postMessage(channel=channel, text=f"note {n}")
    await pager.page(f"user:{CHEN}", make_request(page_key="old", maybe_sent=True))
    assert len(page_dms(emu, CHEN)) == 1
    assert len(emu.calls_to("conversations.history")) == 2


async def test_a_channel_page_is_looked_for_after_joining() -> None:
    async with SlackEmulator(bot_token=SLACK_TOKEN, validator=slack_openapi_validator(), chat_write_public=True) as emu:
        # A public channel the bot is not in: it posts there through chat:write.public,
        # and must join to read the history.
        channel = emu.add_channel("pager-test", bot_member=False).id
        pager = SlackChannelPager(page_client(AsyncWebClient(token=SLACK_TOKEN, base_url=emu.api_url)))
        first = await pager.page(f"channel:{channel}", make_request(page_key="c1"))
        again = await pager.page(f"channel:{channel}", make_request(page_key="c1", maybe_sent=True))
        assert again.provider_ids == first.provider_ids
        assert len([m for m in emu.messages(channel) if (m.text or "").startswith("Page: ")]) == 1
        assert [c.method for c in emu.calls_to("conversations.join")] == ["conversations.join"]
        assert not emu.violations, emu.violations


async def test_a_rate_limited_dm_is_handed_back_with_retry_after(emu: SlackEmulator, sender: AsyncWebClient) -> None:
    emu.rate_limit_next("chat.postMessage", retry_after=30)
    with pytest.raises(PagerError) as caught:
        await SlackUserPager(sender).page(f"user:{CHEN}", make_request(page_key="k1"))
    assert caught.value.defer and caught.value.transient and caught.value.retry_after == 30
    assert page_dms(emu, CHEN) == [] and len(emu.calls_to("chat.postMessage")) == 1


async def test_a_server_error_is_handed_back_not_repeated(emu: SlackEmulator, sender: AsyncWebClient) -> None:
    emu.fail_next("chat.postMessage", error="internal_error", status=500)
    with pytest.raises(PagerError) as caught:
        await SlackUserPager(sender).page(f"user:{CHEN}", make_request(page_key="k1"))
    assert caught.value.defer and caught.value.retry_after is None
    assert len(emu.calls_to("chat.postMessage")) == 1  # the page client did not post it again


async def test_a_final_error_is_not_deferred(emu: SlackEmulator, sender: AsyncWebClient) -> None:
    emu.fail_next("conversations.open", error="user_disabled")
    with pytest.raises(PagerError) as caught:
        await SlackUserPager(sender).page(f"user:{CHEN}", make_request(page_key="k1"))
    assert not caught.value.defer and not caught.value.transient


async def test_the_emulator_checks_metadata_like_slack(emu: SlackEmulator) -> None:
    client = AsyncWebClient(token=SLACK_TOKEN, base_url=emu.api_url)
    channel = (await client.conversations_open(users=CHEN))["channel"]["id"]
    for bad in ({"event_type": "x"}, {"event_payload": {}}, {"event_type": "", "event_payload": {}},
                {"event_type": "x", "event_payload": "y"}):
        with pytest.raises(SlackApiError) as caught:
            await client.chat_postMessage(channel=channel, text="t", metadata=bad)
        assert caught.value.response["error"] == "invalid_metadata_format", bad
    good = {"event_type": "x", "event_payload": {"a": 1}}
    await client.chat_postMessage(channel=channel, text="t", metadata=good)
    # Like Slack, history returns the payload only when asked for all metadata.
    plain = (await client.conversations_history(channel=channel))["messages"][0]
    assert plain["metadata"] == {"event_type": "x"}
    full = (await client.conversations_history(channel=channel, include_all_metadata=True))["messages"][0]
    assert full["metadata"] == good
