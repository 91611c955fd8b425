"""The Slack Web API emulator, exercised through the real slack_sdk clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import jsonschema
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.clock import ManualClock
from bot.emulator import EMULATOR_KEY, SlackEmulator, StateChange
from tests.support.slack_openapi import NON_SPEC_METHODS, describe_allowances, slack_openapi_validator

AVA, BEN, CHEN = "U024BE7LH", "U0G9QF9C6", "U1H2J3K4L"


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(text: str = "Go", value: str = "v", action_id: str = "go") -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, "value": value, "action_id": action_id}


def modal(title: str = "Open incident", blocks: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": title}, "blocks": blocks or [], **extra}


async def slack_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)


async def new_channel(client: AsyncWebClient, name: str = "inc-1-checkout") -> str:
    return (await client.conversations_create(name=name))["channel"]["id"]


# -- lifecycle, auth, dispatch ---------------------------------------------------------------


async def test_start_stop_and_urls() -> None:
    emu = SlackEmulator()
    await emu.start(host="127.0.0.1", port=0)
    try:
        assert emu.base_url.startswith("http://127.0.0.1:")
        assert emu.api_url == emu.base_url + "/api/"
        assert emu.app[EMULATOR_KEY] is emu
    finally:
        await emu.stop()


async def test_auth_test_describes_the_bot(emu: SlackEmulator, client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert answer["user_id"] == "U0FIREBOT"
    assert answer["bot_id"] == "B0FIREBOT"
    assert answer["team_id"] == "T0FIREBRK"
    assert answer["team"] == "Firebreak Demo"
    assert answer["url"].startswith("https://")


async def test_missing_or_wrong_token_is_refused(emu: SlackEmulator) -> None:
    no_token = await slack_error(AsyncWebClient(base_url=emu.api_url).auth_test())
    assert no_token.response["error"] == "not_authed"
    wrong = await slack_error(AsyncWebClient(token="xoxb-wrong", base_url=emu.api_url).auth_test())
    assert wrong.response["error"] == "invalid_auth"


async def test_form_encoded_token_is_accepted(emu: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as session, \
            session.post(emu.api_url + "auth.test", data={"token": emu.bot_token}) as response:
        assert response.status == 200
        assert (await response.json())["ok"] is True


async def test_unknown_method(client: AsyncWebClient) -> None:
    error = await slack_error(client.api_call("incidents.summon"))
    assert error.response.status_code == 200
    assert error.response["error"] == "unknown_method"


# -- conversations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("a" * 81, "invalid_name_maxlength"),
        ("Inc-1-checkout", "invalid_name_specials"),
        ("inc 1", "invalid_name_specials"),
        ("inc.1", "invalid_name_specials"),
        ("#inc-1", "invalid_name_specials"),
        ("---", "invalid_name_punctuation"),
    ],
)
async def test_channel_name_rules(client: AsyncWebClient, name: str, error: str) -> None:
    assert (await slack_error(client.conversations_create(name=name))).response["error"] == error


async def test_channel_names_at_the_limit_and_clashes(emu: SlackEmulator, client: AsyncWebClient) -> None:
    longest = "inc-" + "a" * 76
    created = await client.conversations_create(name=longest)
    assert created["channel"]["name"] == longest
    assert created["channel"]["is_member"] is True
    assert emu.channel_by_name(longest) is not None
    assert (await slack_error(client.conversations_create(name=longest))).response["error"] == "name_taken"
    assert (await slack_error(client.conversations_create(name="general"))).response["error"] == "name_taken"


async def test_private_channel_is_hidden_from_others(emu: SlackEmulator, client: AsyncWebClient) -> None:
    channel = (await client.conversations_create(name="sec-incident", is_private=True))["channel"]
    assert channel["is_private"] is True
    emu.add_channel("hr-private", is_private=True, bot_member=False, members=[AVA])
    hidden = emu.channel_by_name("hr-private")
    assert hidden is not None
    assert (await slack_error(client.conversations_info(channel=hidden.id))).response["error"] == "channel_not_found"


async def test_invite_rules(emu: SlackEmulator, client: AsyncWebClient) -> None:
    channel = await new_channel(client)
    await client.conversations_invite(channel=channel, users=[AVA, BEN])
    assert {AVA, BEN} <= set(emu.channel(channel).members)

    already = await slack_error(client.conversations_invite(channel=channel, users=AVA))
    assert already.response["error"] == "already_in_channel"
    mixed = await slack_error(client.conversations_invite(channel=channel, users=[AVA, CHEN]))
    assert mixed.response["error"] == "already_in_channel"
    assert mixed.response["errors"] == [{"user": AVA, "ok": False, "error": "already_in_channel"}]
    assert CHEN not in emu.channel(channel).members

    forced = await client.conversations_invite(channel=channel, users=[AVA, CHEN], force=True)
    assert forced["errors"][0]["user"] == AVA
    assert CHEN in emu.channel(channel).members

    for users, error in [("U0NOBODY1", "user_not_found"), ("U0FIREBOT", "cant_invite_self"), ("", "no_user")]:
        assert (await slack_error(client.conversations_invite(channel=channel, users=users))).response["error"] == error
    outside = await slack_error(client.conversations_invite(channel="C0RANDOM", users=AVA))
    assert outside.response["error"] == "not_in_channel"
    missing = await slack_error(client.conversations_invite(channel="C0NOWHERE", users=AVA))
    assert missing.response["error"] == "channel_not_found"


async def test_topic_info_list_join_and_open(emu: SlackEmulator, client: AsyncWebClient) -> None:
    channel = await new_channel(client)
    await client.conversations_setTopic(channel=channel, topic="P1 · checkout is failing")
    info = await client.conversations_info(channel=channel, include_num_members=True)
    assert info["channel"]["topic"]["value"] == "P1 · checkout is failing"
    assert info["channel"]["num_members"] == 1
    too_long = await slack_error(client.conversations_setTopic(channel=channel, topic="x" * 251))
    assert too_long.response["error"] == "too_long"

    first = await client.conversations_list(limit=2)
    second = await client.conversations_list(limit=2, cursor=first["response_metadata"]["next_cursor"])
    third = await client.conversations_list(limit=2, cursor=second["response_metadata"]["next_cursor"])
    names = [c["name"] for page in (first, second, third) for c in page["channels"]]
    assert names == ["general", "incidents", "triage", "random", "inc-1-checkout"]
    assert third["response_metadata"]["next_cursor"] == ""

    outside = await slack_error(client.conversations_setTopic(channel="C0RANDOM", topic="x"))
    assert outside.response["error"] == "not_in_channel"
    await client.conversations_join(channel="C0RANDOM")
    again = await client.conversations_join(channel="C0RANDOM")
    assert again["warning"] == "already_in_channel"

    dm = await client.conversations_open(users=AVA)
    assert dm["channel"]["id"].startswith("D")
    reopened = await client.conversations_open(users=AVA)
    assert reopened["channel"]["id"] == dm["channel"]["id"] and reopened["already_open"] is True
    group_dm = await client.conversations_open(users=[AVA, BEN])
    assert group_dm["channel"]["id"].startswith("G")


# -- chat ------------------------------------------------------------------------------------


async def test_post_thread_history_replies_permalink(emu: SlackEmulator, client: AsyncWebClient) -> None:
    channel = await new_channel(client)
    card = await client.chat_postMessage(channel=channel, text="INC-1", blocks=[section("*INC-1*")])
    assert card["message"]["bot_id"] == "B0FIREBOT"
    await client.chat_postMessage(channel=channel, text="first update", thread_ts=card["ts"])
    await client.chat_postMessage(channel=channel, text="second update", thread_ts=card["ts"])

    history = await client.conversations_history(channel=channel)
    assert [m["text"] for m in history["messages"] if "subtype" not in m] == ["INC-1"]
    assert history["messages"][0]["reply_count"] == 2
    replies = await client.conversations_replies(channel=channel, ts=card["ts"])
    assert [m["text"] for m in replies["messages"]] == ["INC-1", "first update", "second update"]
    assert [m.text for m in emu.messages(channel, top_level=True)] == ["INC-1"]
    assert len(emu.messages(channel, thread_ts=card["ts"])) == 3

    link = await client.chat_getPermalink(channel=channel, message_ts=card["ts"])
    assert link["permalink"].endswith(f"/archives/{channel}/p{card['ts'].replace('.', '')}")
    missing = await slack_error(client.chat_getPermalink(channel=channel, message_ts="1.000001"))
    assert missing.response["error"] == "message_not_found"


async def test_history_pagination_and_window(client: AsyncWebClient) -> None:
    channel = await new_channel(client)
    stamps = [(await client.chat_postMessage(channel=channel, text=f"m{i}"))["ts"] for i in range(5)]
    page = await client.conversations_history(channel=channel, limit=2)
    assert [m["text"] for m in page["messages"]] == ["m4", "m3"]
    assert page["has_more"] is True
    window = await client.conversations_history(channel=channel, oldest=stamps[1], latest=stamps[3], inclusive=True)
    assert [m["text"] for m in window["messages"]] == ["m3", "m2", "m1"]


# These two send a message without text on purpose: slack_sdk warns about it.
MISSING_TEXT_WARNING = pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")


@MISSING_TEXT_WARNING
async def test_post_message_errors(client: AsyncWebClient) -> None:
    channel = await new_channel(client)
    cases = [
        (client.chat_postMessage(channel="C0NOWHERE", text="x"), "channel_not_found"),
        (client.chat_postMessage(channel="C0RANDOM", text="x"), "not_in_channel"),
        (client.chat_postMessage(channel=channel), "no_text"),
        (client.chat_postMessage(channel=channel, text="x" * 40_001), "msg_too_long"),
    ]
    for call, error in cases:
        assert (await slack_error(call)).response["error"] == error
    assert (await client.chat_postMessage(channel=channel, text="x" * 40_000))["ok"]


async def test_post_to_user_id_lands_in_dm(emu: SlackEmulator, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=AVA, text="You are paged for INC-1", blocks=[section("Page")])
    assert posted["channel"].startswith("D")
    assert [m.text for m in emu.dms(AVA)] == ["You are paged for INC-1"]
    assert emu.dms(BEN) == []


@MISSING_TEXT_WARNING
async def test_update_keeps_blocks_unless_replaced(emu: SlackEmulator, client: AsyncWebClient) -> None:
    channel = await new_channel(client)
    posted = await client.chat_postMessage(channel=channel, text="open", blocks=[section("open")])
    await client.chat_update(channel=channel, ts=posted["ts"], text="acknowledged")
    message = emu.message(channel, posted["ts"])
    assert message.text == "acknowledged" and message.blocks == [section("open")]
    assert message.edited_ts is not None
    await client.chat_update(channel=channel, ts=posted["ts"], blocks=[section("resolved")])
    assert emu.message(channel, posted["ts"]).blocks == [section("resolved")]
    await client.chat_update(channel=channel, ts=posted["ts"], text="plain", blocks=[])
    assert emu.message(channel, posted["ts"]).blocks is None

    human = await emu.user_post_message(AVA, channel, "hello")
    refused = await slack_error(client.chat_update(channel=channel, ts=human.ts, text="edited"))
    assert refused.response["error"] == "cant_update_message"
    gone = await slack_error(client.chat_update(channel=channel, ts="1.000001", text="x"))
    assert gone.response["error"] == "message_not_found"


async def test_ephemeral_messages(emu: SlackEmulator, client: AsyncWebClient) -> None:
    answer = await client.chat_postEphemeral(channel="C0GENERAL", user=AVA, text="Only you", blocks=[section("hi")])
    assert answer["message_ts"]
    [ephemeral] = emu.ephemerals(user_id=AVA)
    assert ephemeral.text == "Only you" and ephemeral.channel_id == "C0GENERAL"
    assert emu.messages("C0GENERAL") == []
    channel = await new_channel(client)
    outsider = await slack_error(client.chat_postEphemeral(channel=channel, user=AVA, text="x"))
    assert outsider.response["error"] == "user_not_in_channel"


# -- Block Kit -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section("x")] * 51, "/blocks"),
        ([section("x" * 3001)], "/blocks/0/text/text"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text/text"),
        ([{"type": "actions", "elements": [button(text="b" * 76)]}], "/blocks/0/elements/0/text/text"),
        ([{"type": "actions", "elements": [button(value="v" * 2001)]}], "/blocks/0/elements/0/value"),
        ([{"type": "actions", "elements": [button(action_id="a" * 256)]}], "/blocks/0/elements/0/action_id"),
        ([section("x", block_id="b" * 256)], "/blocks/0/block_id"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}], "/blocks/0/text/type"),
        ([{"type": "carousel"}], "/blocks/0/type"),
    ],
)
async def test_block_kit_limits(client: AsyncWebClient, blocks: list[dict[str, Any]], pointer: str) -> None:
    error = await slack_error(client.chat_postMessage(channel="C0GENERAL", text="fallback", blocks=blocks))
    assert error.response["error"] == "invalid_blocks"
    messages = error.response["response_metadata"]["messages"]
    assert any(f"[json-pointer:{pointer}]" in m for m in messages), messages


async def test_block_kit_values_at_the_limits_pass(client: AsyncWebClient) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}, "block_id": "b" * 255},
        section("x" * 3000),
        {"type": "actions", "elements": [button(text="b" * 75, value="v" * 2000, action_id="a" * 255)]},
    ]
    blocks += [{"type": "divider"}] * (50 - len(blocks))
    assert (await client.chat_postMessage(channel="C0GENERAL", text="fallback", blocks=blocks))["ok"]


async def test_blocks_must_be_an_array(emu: SlackEmulator) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {emu.bot_token}"}) as session:
        form = {"channel": "C0GENERAL", "text": "x", "blocks": "{not json"}
        async with session.post(emu.api_url + "chat.postMessage", data=form) as response:
            assert (await response.json())["error"] == "invalid_blocks_format"


# -- views -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("view", "pointer"),
    [
        (modal(title="t" * 25), "/view/title/text"),
        (modal(blocks=[section("x")] * 101), "/view/blocks"),
        (modal(private_metadata="m" * 3001), "/view/private_metadata"),
        (modal(callback_id="c" * 256), "/view/callback_id"),
    ],
)
async def test_modal_limits(emu: SlackEmulator, client: AsyncWebClient, view: dict[str, Any], pointer: str) -> None:
    error = await slack_error(client.views_open(trigger_id=emu.new_trigger_id(AVA), view=view))
    assert error.response["error"] == "invalid_arguments"
    assert any(pointer in m for m in error.response["response_metadata"]["messages"])


async def test_views_open_and_update(emu: SlackEmulator, client: AsyncWebClient) -> None:
    view = modal(
        title="t" * 24, blocks=[section("x")] * 100, private_metadata="m" * 3000, callback_id="open_incident_modal"
    )
    opened = await client.views_open(trigger_id=emu.new_trigger_id(AVA), view=view)
    [recorded] = emu.views
    assert recorded.id == opened["view"]["id"] and recorded.user_id == AVA
    assert recorded.callback_id == "open_incident_modal"
    assert emu.last_call("views.open").params["view"]["title"]["text"] == "t" * 24

    updated = await client.views_update(view_id=recorded.id, view=modal(title="Done"), hash=opened["view"]["hash"])
    assert updated["view"]["title"]["text"] == "Done" and emu.views[0].title == "Done"
    conflict = await slack_error(client.views_update(view_id=recorded.id, view=modal(), hash=opened["view"]["hash"]))
    assert conflict.response["error"] == "hash_conflict"
    missing = await slack_error(client.views_update(view_id="V0NOPE", view=modal()))
    assert missing.response["error"] == "not_found"


async def test_trigger_ids_expire_and_work_once() -> None:
    clock = ManualClock()
    async with SlackEmulator(clock=clock, strict_trigger_ids=True) as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        trigger = emu.new_trigger_id(AVA)
        await client.views_open(trigger_id=trigger, view=modal())
        reused = await slack_error(client.views_open(trigger_id=trigger, view=modal()))
        assert reused.response["error"] == "exchanged_trigger_id"
        late = emu.new_trigger_id(AVA)
        clock.advance(timedelta(seconds=3.5))
        expired = await slack_error(client.views_open(trigger_id=late, view=modal()))
        assert expired.response["error"] == "expired_trigger_id"
        bogus = await slack_error(client.views_open(trigger_id="1.2.3", view=modal()))
        assert bogus.response["error"] == "invalid_trigger_id"


# -- pins, bookmarks, reactions, users, groups -----------------------------------------------


async def test_pins_bookmarks_reactions(emu: SlackEmulator, client: AsyncWebClient) -> None:
    channel = await new_channel(client)
    card = await client.chat_postMessage(channel=channel, text="card")
    await client.pins_add(channel=channel, timestamp=card["ts"])
    twice = await slack_error(client.pins_add(channel=channel, timestamp=card["ts"]))
    assert twice.response["error"] == "already_pinned"
    missing = await slack_error(client.pins_add(channel=channel, timestamp="1.000001"))
    assert missing.response["error"] == "message_not_found"
    listed = await client.pins_list(channel=channel)
    assert [item["message"]["text"] for item in listed["items"]] == ["card"]
    assert [m.text for m in emu.pins(channel)] == ["card"]

    await client.bookmarks_add(channel_id=channel, title="Runbook", type="link", link="https://wiki.example.com/api")
    assert [b.title for b in emu.bookmarks(channel)] == ["Runbook"]
    assert (await client.bookmarks_list(channel_id=channel))["bookmarks"][0]["link"] == "https://wiki.example.com/api"

    await client.reactions_add(channel=channel, timestamp=card["ts"], name="eyes")
    again = await slack_error(client.reactions_add(channel=channel, timestamp=card["ts"], name="eyes"))
    assert again.response["error"] == "already_reacted"
    assert emu.message(channel, card["ts"]).reaction("eyes") is not None


async def test_users_and_usergroups(emu: SlackEmulator, client: AsyncWebClient) -> None:
    ava = (await client.users_info(user=AVA))["user"]
    assert ava["real_name"] == "Ava Patel" and ava["tz"] == "America/New_York"
    assert (await slack_error(client.users_info(user="U0NOBODY1"))).response["error"] == "user_not_found"
    members = {m["id"] for m in (await client.users_list())["members"]}
    assert {AVA, BEN, CHEN, "U0FIREBOT"} <= members

    groups = {g["id"]: g for g in (await client.usergroups_list(include_users=True))["usergroups"]}
    assert {"S0PLATFORM", "S0LEADS", "S0MANAGERS", "S0EXEC"} <= groups.keys()
    assert (await client.usergroups_users_list(usergroup="S0PLATFORM"))["users"] == [AVA, BEN, CHEN]
    error = await slack_error(client.usergroups_users_list(usergroup="S0NOPE"))
    assert error.response["error"] == "no_such_subteam"

    dana = emu.add_user("dana2", real_name="Dana Two", tz="Asia/Tokyo")
    emu.add_usergroup("sre", [dana.id], group_id="S0SRE")
    assert (await client.usergroups_users_list(usergroup="S0SRE"))["users"] == [dana.id]


# -- fault injection -------------------------------------------------------------------------


async def test_rate_limit_carries_retry_after_and_is_retried(emu: SlackEmulator) -> None:
    emu.rate_limit_next("chat.postMessage", retry_after=0)
    plain = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    limited = await slack_error(plain.chat_postMessage(channel="C0GENERAL", text="x"))
    assert limited.response.status_code == 429
    assert limited.response.headers["Retry-After"] == "0"
    assert limited.response["error"] == "ratelimited"

    emu.rate_limit_next("chat.postMessage", retry_after=0)
    retrying = AsyncWebClient(
        token=emu.bot_token,
        base_url=emu.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    assert (await retrying.chat_postMessage(channel="C0GENERAL", text="after a 429"))["ok"]
    assert [c.status for c in emu.calls_to("chat.postMessage")] == [429, 429, 200]
    assert [m.text for m in emu.messages("C0GENERAL")] == ["after a 429"]


async def test_injected_errors(emu: SlackEmulator, client: AsyncWebClient) -> None:
    emu.fail_next("conversations.create", "restricted_action", times=2)
    for _ in range(2):
        assert (await slack_error(client.conversations_create(name="inc-2"))).response["error"] == "restricted_action"
    assert (await client.conversations_create(name="inc-2"))["ok"]

    emu.fail_next("auth.test", status=503)
    unavailable = await slack_error(client.auth_test())
    assert unavailable.response.status_code == 503

    emu.fail_next("*", "fatal_error")
    assert (await slack_error(client.users_info(user=AVA))).response["error"] == "fatal_error"
    assert (await client.users_info(user=AVA))["ok"]


async def test_server_errors_are_retried_by_the_client(emu: SlackEmulator) -> None:
    emu.fail_next("chat.postMessage", status=500)
    retrying = AsyncWebClient(
        token=emu.bot_token,
        base_url=emu.api_url,
        retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1)],
    )
    assert (await retrying.chat_postMessage(channel="C0GENERAL", text="x"))["ok"]
    assert [c.status for c in emu.calls_to("chat.postMessage")] == [500, 200]


async def test_rate_limit_fraction_is_reproducible(emu: SlackEmulator) -> None:
    async def run(seed: int) -> list[int]:
        emu.rate_limit_fraction("auth.test", 0.3, retry_after=0, seed=seed)
        statuses = []
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {emu.bot_token}"}) as session:
            for _ in range(60):
                async with session.post(emu.api_url + "auth.test") as response:
                    statuses.append(response.status)
                    if response.status == 429:
                        assert response.headers["Retry-After"] == "0"
        return statuses

    first, second = await run(7), await run(7)
    assert first == second
    assert 5 <= first.count(429) <= 35
    emu.rate_limit_fraction("auth.test", 0)
    assert (await AsyncWebClient(token=emu.bot_token, base_url=emu.api_url).auth_test())["ok"]


async def test_delay(emu: SlackEmulator, client: AsyncWebClient) -> None:
    waits: list[tuple[float, int]] = []  # (seconds, calls answered when the wait began)

    async def recorded(seconds: float) -> None:
        waits.append((seconds, len(emu.calls_to("auth.test"))))

    emu.sleep = recorded
    emu.delay("auth.test", 0.2)
    await client.auth_test()
    assert waits == [(0.2, 0)]  # waited before the call was answered
    await client.users_list()
    assert waits == [(0.2, 0)]  # other methods are not delayed
    emu.delay("auth.test", 0)
    await client.auth_test()
    assert waits == [(0.2, 0)] and len(emu.calls_to("auth.test")) == 2


# -- files -----------------------------------------------------------------------------------


async def test_files_upload_v2_round_trip(emu: SlackEmulator, client: AsyncWebClient) -> None:
    channel = await new_channel(client)
    markdown = "# INC-1 post-mortem\n\nCheckout failed for 12 minutes.\n"
    answer = await client.files_upload_v2(
        channel=channel, content=markdown, filename="INC-1.md", title="INC-1 post-mortem", initial_comment="Export"
    )
    [stored] = emu.files
    assert answer["file"]["id"] == stored.id
    assert stored.text == markdown and stored.title == "INC-1 post-mortem" and stored.channels == [channel]
    [shared] = emu.messages(channel)
    assert shared.text == "Export" and shared.files == [stored.id]
    assert emu.last_call("files.completeUploadExternal").params["files"][0]["id"] == stored.id

    async with aiohttp.ClientSession() as session:
        url = answer["file"]["url_private"]
        async with session.get(url, headers={"Authorization": f"Bearer {emu.bot_token}"}) as response:
            assert await response.text() == markdown
        async with session.get(url) as response:
            assert response.status == 403

    error = await slack_error(client.files_completeUploadExternal(files=[{"id": "F0NEVER", "title": "x"}]))
    assert error.response["error"] == "file_not_found"


# -- response_url ----------------------------------------------------------------------------


async def test_response_url_answers(emu: SlackEmulator, client: AsyncWebClient) -> None:
    command = emu.slash_command(AVA, "C0GENERAL", "/incident", "list")
    assert command["response_url"].startswith(emu.base_url + "/response/")
    hook = AsyncWebhookClient(command["response_url"])

    assert (await hook.send(text="Usage: /incident open P0..P3 <title>")).status_code == 200
    [usage] = emu.ephemerals(user_id=AVA)
    assert usage.source == "response_url" and usage.text.startswith("Usage")

    await hook.send(text="No open incidents", replace_original=True)
    assert [e.text for e in emu.ephemerals(user_id=AVA)] == ["No open incidents"]

    await hook.send(text="INC-1 opened", response_type="in_channel")
    assert [m.text for m in emu.messages("C0GENERAL")] == ["INC-1 opened"]
    assert [p.outcome for p in emu.response_url_posts] == ["ephemeral", "replaced", "in_channel"]

    too_many = await hook.send(blocks=[section("x")] * 51)
    assert too_many.status_code == 400 and emu.response_url_posts[-1].outcome == "invalid_blocks"
    await hook.send(text="fifth")
    assert (await hook.send(text="sixth")).status_code == 404
    assert emu.response_url_posts[-1].outcome == "used_url"


async def test_response_url_replaces_the_clicked_message(emu: SlackEmulator, client: AsyncWebClient) -> None:
    preview = await client.chat_postMessage(
        channel="C0GENERAL",
        text="Roll back api?",
        blocks=[
            section("Roll back api?"),
            {"type": "actions", "elements": [button("Confirm", "api", "rollback_confirm")]},
        ],
    )
    payload = emu.block_action(AVA, "C0GENERAL", preview["ts"], "rollback_confirm")
    assert payload["actions"][0]["value"] == "api" and payload["message"]["ts"] == preview["ts"]
    await AsyncWebhookClient(payload["response_url"]).send(text="Rolling back api…", replace_original=True)
    assert emu.message("C0GENERAL", preview["ts"]).text == "Rolling back api…"
    await AsyncWebhookClient(payload["response_url"]).send(delete_original=True)
    assert emu.messages("C0GENERAL") == []


# -- user-side actions and events ------------------------------------------------------------


async def test_user_actions_emit_events_and_changes() -> None:
    envelopes: list[dict[str, Any]] = []
    changes: list[StateChange] = []

    async def on_event(envelope: dict[str, Any]) -> None:
        envelopes.append(envelope)

    async with SlackEmulator(on_event=on_event) as emu:
        emu.subscribe(changes.append)
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        channel = await new_channel(client)
        await client.conversations_invite(channel=channel, users=AVA)

        said = await emu.user_post_message(AVA, channel, "DB failover done")
        await emu.user_add_reaction(BEN, channel, said.ts, "pushpin")
        await emu.user_pin(AVA, channel, said.ts)
        await emu.user_post_message(AVA, "C0RANDOM", "bot is not here")  # no event: the bot is not a member

    assert [e["event"]["type"] for e in envelopes] == ["message", "reaction_added", "pin_added"]
    for envelope in envelopes:
        assert envelope["type"] == "event_callback" and envelope["event_id"].startswith("Ev")
        assert envelope["team_id"] == "T0FIREBRK" and envelope["api_app_id"] == "A0FIREBRK"
    message, reaction, pin = (e["event"] for e in envelopes)
    assert message == message | {"channel": channel, "user": AVA, "text": "DB failover done", "ts": said.ts}
    assert reaction["item"] == {"type": "message", "channel": channel, "ts": said.ts}
    assert reaction["reaction"] == "pushpin"
    assert pin["channel_id"] == channel and pin["item"]["message"]["ts"] == said.ts and pin["user"] == AVA
    kinds = [c.kind for c in changes]
    assert {"channel_created", "message_posted", "reaction_added", "pin_added"} <= set(kinds)
    assert emu.pins(channel)[0].ts == said.ts


# -- recording and validation ----------------------------------------------------------------


async def test_calls_are_recorded_with_decoded_params(emu: SlackEmulator, client: AsyncWebClient) -> None:
    await client.chat_postEphemeral(channel="C0GENERAL", user=AVA, text="x", blocks=[section("hi")])
    form = {"channel": "C0GENERAL", "text": "x", "blocks": '[{"type": "divider"}]'}
    await client.api_call("chat.postMessage", data=form)
    ephemeral, form_post = emu.calls_to("chat.postEphemeral")[0], emu.calls_to("chat.postMessage")[0]
    assert ephemeral.params["blocks"] == [section("hi")] and ephemeral.ok and ephemeral.timestamp > 0
    assert form_post.params["blocks"] == [{"type": "divider"}]
    assert form_post.response["ts"] == emu.messages("C0GENERAL")[0].ts
    assert "token" not in form_post.params


async def test_openapi_validator_catches_bad_requests() -> None:
    print(describe_allowances())
    async with SlackEmulator(validator=slack_openapi_validator()) as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        unknown = await slack_error(client.chat_postMessage(channel="C0GENERAL", text="x", colour="red"))
        assert unknown.response["error"] == "invalid_arguments"
        missing = await slack_error(client.api_call("chat.getPermalink", params={"channel": "C0GENERAL"}))
        assert missing.response["error"] == "invalid_arguments"
        newer = await slack_error(client.api_call("assistant.threads.setStatus", params={"status": "x"}))
        assert newer.response["error"] == "invalid_arguments"
        metadata = {"event_type": "incident_opened", "event_payload": {"id": "INC-1"}}
        assert (await client.chat_postMessage(channel="C0GENERAL", text="fine", metadata=metadata))["ok"]

    methods = [v.method for v in emu.violations]
    assert methods == ["chat.postMessage", "chat.getPermalink", "assistant.threads.setStatus"]
    assert "colour" in emu.violations[0].message
    assert "message_ts" in emu.violations[1].message
    assert "not in Slack's OpenAPI spec" in emu.violations[2].message
    assert emu.messages("C0GENERAL")[0].text == "fine"


# Methods whose answers the 2021 spec describes correctly; for chat.postMessage, chat.update,
# conversations.history and .replies it is out of date (no app_id, edited, response_metadata; blocks
# typed as an object), so their answers are not checked against it.
SCHEMA_CHECKED = {
    "auth.test", "conversations.create", "conversations.invite", "conversations.setTopic", "conversations.info",
    "conversations.list", "conversations.join", "conversations.open", "chat.postEphemeral", "chat.getPermalink",
    "pins.add", "pins.list", "reactions.add", "views.open", "views.update", "usergroups.list",
    "usergroups.users.list", "users.info", "users.list",
}  # fmt: skip


async def test_sdk_calls_of_every_method_pass_the_spec() -> None:
    validator = slack_openapi_validator()
    async with SlackEmulator(validator=validator, app_token="xapp-1-socket-mode") as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        await client.auth_test()
        await AsyncWebClient(base_url=emu.api_url).apps_connections_open(app_token="xapp-1-socket-mode")
        channel = await new_channel(client)
        await client.conversations_invite(channel=channel, users=[AVA, BEN])
        await client.conversations_setTopic(channel=channel, topic="P1")
        card = await client.chat_postMessage(channel=channel, text="card", blocks=[section("card")])
        await client.chat_postMessage(channel=channel, text="reply", thread_ts=card["ts"])
        await client.chat_update(channel=channel, ts=card["ts"], text="card 2", blocks=[section("card 2")])
        await client.chat_postEphemeral(channel=channel, user=AVA, text="psst")
        await client.chat_getPermalink(channel=channel, message_ts=card["ts"])
        await client.pins_add(channel=channel, timestamp=card["ts"])
        await client.pins_list(channel=channel)
        await client.reactions_add(channel=channel, timestamp=card["ts"], name="eyes")
        await client.bookmarks_add(channel_id=channel, title="Runbook", type="link", link="https://wiki.example.com")
        await client.bookmarks_list(channel_id=channel)
        await client.conversations_info(channel=channel)
        await client.conversations_list(types="public_channel,private_channel")
        await client.conversations_history(channel=channel, limit=10)
        await client.conversations_replies(channel=channel, ts=card["ts"])
        await client.conversations_join(channel="C0RANDOM")
        await client.conversations_open(users=AVA)
        opened = await client.views_open(trigger_id=emu.new_trigger_id(AVA), view=modal())
        await client.views_update(view_id=opened["view"]["id"], view=modal(title="Updated"))
        await client.usergroups_list(include_users=True)
        await client.usergroups_users_list(usergroup="S0LEADS")
        await client.users_info(user=AVA)
        await client.users_list(limit=100)
        await client.files_upload_v2(channel=channel, content="report", filename="INC-1.md", title="INC-1")

    assert emu.violations == []
    used_non_spec = set(NON_SPEC_METHODS) - {"bookmarks.edit", "bookmarks.remove"}
    assert {c.method for c in emu.calls} >= SCHEMA_CHECKED | used_non_spec
    for call in emu.calls:
        if call.method in SCHEMA_CHECKED:
            schema = validator.response_schema(call.method)
            assert schema is not None, call.method
            errors = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(call.response)]
            assert errors == [], (call.method, errors)
