"""Slack pagers: ``user:`` (a DM with an Acknowledge button), ``group:`` (a DM to
each member of a user group) and ``channel:`` (a post in that channel).

They use slack_sdk's ``AsyncWebClient``; its retry handlers (rate limits,
server errors, connection errors) are configured where the client is built.
What still fails arrives here as ``SlackApiError`` and becomes a
:class:`PagerError`, transient or final by Slack's error code.

Slack has no notion of acknowledging or resolving a message: ``acknowledge``
and ``resolve`` are no-ops. The listener that handles the Acknowledge button
updates the message it came from (see ``slack_blocks.build_page_acknowledged_blocks``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.pagers.base import PagerError, PageRequest, PageResult, PersonDelivery, split_target
from bot.pagers.slack_blocks import build_page_blocks, page_fallback_text

log = logging.getLogger(__name__)

TRANSIENT_SLACK_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)

_HINTS = {
    "channel_not_found": "the channel does not exist or the bot cannot see it",
    "not_in_channel": "invite the bot to the channel",
    "is_archived": "the channel is archived",
    "user_not_found": "no such Slack user",
    "user_disabled": "the Slack user is deactivated",
    "cannot_dm_bot": "the target is a bot",
    "no_such_subteam": "no such user group",
    "subteam_not_found": "no such user group",
    "missing_scope": "the bot token lacks a required OAuth scope",
    "invalid_auth": "the bot token is invalid",
    "not_authed": "no bot token was sent",
}


def slack_error(exc: Exception, target: str, doing: str) -> PagerError:
    """Turn a Slack client failure into a PagerError, transient or final."""
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        status = int(getattr(exc.response, "status_code", 200) or 200)
        code = str(data.get("error") or "") if isinstance(data, dict) else ""
        code = code or f"unexpected answer (HTTP {status})"
        transient = code in TRANSIENT_SLACK_ERRORS or status == 429 or status >= 500
        hint = _HINTS.get(code)
        detail = f"{code} ({hint})" if hint else code
        return PagerError(f"Slack {doing} failed for {target!r}: {detail}", transient=transient, target=target)
    transient = isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError))
    return PagerError(f"Slack {doing} failed for {target!r}: {type(exc).__name__}", transient=transient, target=target)


class _SlackPoster:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def _post(self, channel: str, request: PageRequest, *, with_button: bool) -> tuple[str, str]:
        response = await self._client.chat_postMessage(
            channel=channel,
            text=page_fallback_text(request),
            blocks=build_page_blocks(request, with_button=with_button),
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["channel"]), str(response["ts"])

    async def _dm(self, user_id: str, request: PageRequest, target: str) -> tuple[str, str]:
        """Open a DM with ``user_id`` and post the page there; return (channel, ts)."""
        try:
            opened = await self._client.conversations_open(users=user_id)
            channel = str(opened["channel"]["id"])
            return await self._post(channel, request, with_button=True)
        except (SlackApiError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise slack_error(exc, target, "direct message") from None

    async def acknowledge(self, target: str, request: PageRequest) -> None:
        """Slack messages cannot be acknowledged: nothing to mirror."""

    async def resolve(self, target: str, request: PageRequest) -> None:
        """Slack messages cannot be resolved: nothing to mirror."""


def _expect(target: str, kind: str) -> str:
    found, value = split_target(target)
    if found != kind:
        raise PagerError(f"{target!r} is not a {kind}: target", transient=False, target=target)
    return value


class SlackUserPager(_SlackPoster):
    """``user:U123`` → a DM with the page and an Acknowledge button."""

    async def page(self, target: str, request: PageRequest) -> PageResult:
        user_id = _expect(target, "user")
        channel, ts = await self._dm(user_id, request, target)
        return PageResult(target, True, f"direct message to <@{user_id}>", {"channel": channel, "ts": ts})


class SlackGroupPager(_SlackPoster):
    """``group:S123`` → a DM to each member; one member's failure does not stop the others.

    The result is delivered when at least one member was reached, with each
    member's outcome in ``deliveries``. When nobody could be reached it raises
    ``PagerError`` (transient if any member's failure was), so that a retry
    cannot DM someone twice.
    """

    def __init__(self, client: AsyncWebClient, *, concurrency: int = 4) -> None:
        super().__init__(client)
        self._concurrency = max(1, concurrency)

    async def members(self, group_id: str, target: str) -> list[str]:
        try:
            response = await self._client.usergroups_users_list(usergroup=group_id)
        except (SlackApiError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise slack_error(exc, target, "usergroups.users.list") from None
        users: list[Any] = list(response.get("users") or [])
        return list(dict.fromkeys(str(u) for u in users))  # unique, in Slack's order

    async def page(self, target: str, request: PageRequest) -> PageResult:
        group_id = _expect(target, "group")
        members = await self.members(group_id, target)
        if not members:
            raise PagerError(f"user group {target!r} has no members to page", transient=False, target=target)
        limit = asyncio.Semaphore(self._concurrency)

        async def deliver(user_id: str) -> PersonDelivery:
            async with limit:
                try:
                    channel, ts = await self._dm(user_id, request, f"user:{user_id}")
                except PagerError as exc:
                    log.warning("page %s: member %s not reached: %s", target, user_id, exc)
                    return PersonDelivery(user_id, False, str(exc), transient=exc.transient)
                return PersonDelivery(user_id, True, "direct message", channel_id=channel, ts=ts)

        deliveries = tuple(await asyncio.gather(*(deliver(u) for u in members)))
        reached = sum(d.delivered for d in deliveries)
        if not reached:
            raise PagerError(
                f"no member of {target!r} could be paged: " + "; ".join(d.detail for d in deliveries),
                transient=any(d.transient for d in deliveries),
                target=target,
            )
        return PageResult(
            target=target,
            delivered=True,
            detail=f"{reached} of {len(deliveries)} members paged",
            deliveries=deliveries,
        )


class SlackChannelPager(_SlackPoster):
    """``channel:C123`` → the page posted in that channel (with the Acknowledge button)."""

    def __init__(self, client: AsyncWebClient, *, with_button: bool = True) -> None:
        super().__init__(client)
        self._with_button = with_button

    async def page(self, target: str, request: PageRequest) -> PageResult:
        channel_id = _expect(target, "channel")
        try:
            channel, ts = await self._post(channel_id, request, with_button=self._with_button)
        except (SlackApiError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise slack_error(exc, target, "chat.postMessage") from None
        return PageResult(target, True, f"posted in <#{channel_id}>", {"channel": channel, "ts": ts})
