"""Slack pagers: ``user:`` (a DM with an Acknowledge button), ``group:`` (a DM to
each member of a user group) and ``channel:`` (a post in that channel).

Exactly once: a Slack message has no idempotency key, so every page carries its
:attr:`~bot.pagers.base.PageRequest.page_key` in the message's metadata
(``event_type`` ``firebreak_page``). When the caller says an earlier try may
have gone out (``request.maybe_sent``: a crash between the send and the record
of it, an answer lost to a timeout), the pager first reads the conversation's
latest messages (``conversations.history`` with ``include_all_metadata``) and
returns the page it finds instead of posting it again.

Pages are sent while the escalation engine holds the incident's row lock, so
the client they use (:func:`page_client`) has a short timeout and no automatic
retries: slack_sdk's rate-limit handler would sleep ``Retry-After`` under the
lock, and its connection/server-error handlers would repeat a post that may
have arrived. Such failures become a ``PagerError`` with ``defer`` set (and the
Retry-After), and the engine tries again later, looking for the page first.

Slack has no notion of acknowledging or resolving a message: ``acknowledge``
and ``resolve`` are no-ops. The listener that handles the Acknowledge button
updates the message it came from (see ``slack_blocks.build_page_acknowledged_blocks``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.pagers.base import PageRequest, PagerError, PageResult, PersonDelivery, split_target
from bot.pagers.slack_blocks import build_page_blocks, page_fallback_text
from bot.slack.client import slack_error, slack_retry_after

log = logging.getLogger(__name__)

PAGE_EVENT_TYPE = "firebreak_page"
"""The ``metadata.event_type`` of every page Firebreak posts in Slack."""
PAGE_CLIENT_TIMEOUT = 5
"""Seconds for one Slack call of a page (the incident's row lock is held meanwhile)."""
LOOKUP_PAGE_SIZE = 200
LOOKUP_MAX_MESSAGES = 1000
"""How far back a page that may have been sent is looked for (newest first)."""

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


def page_client(slack: AsyncWebClient, *, timeout: int = PAGE_CLIENT_TIMEOUT) -> AsyncWebClient:
    """A client for sending pages: ``slack``'s workspace and URL, a short timeout, no retries."""
    return AsyncWebClient(
        token=slack.token, base_url=slack.base_url, timeout=timeout, ssl=slack.ssl, proxy=slack.proxy,
        session=slack.session, trust_env_in_session=slack.trust_env_in_session,
        headers=dict(slack.headers or {}), team_id=slack.default_params.get("team_id"),
        logger=slack.logger, retry_handlers=[],
    )


def page_metadata(request: PageRequest) -> dict[str, Any] | None:
    """The message metadata that identifies this page (None when it has no key)."""
    if not request.page_key:
        return None
    payload: dict[str, Any] = {"page_key": request.page_key, "incident": request.incident_ref}
    if request.manual:
        payload["manual"] = True
    else:
        payload.update(level=request.level + 1, repeat=request.repeat)
    return {"event_type": PAGE_EVENT_TYPE, "event_payload": payload}


def pager_error(exc: Exception, target: str, doing: str) -> PagerError:
    """Turn a Slack client failure into a PagerError, transient (to be tried later) or final."""
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        status = int(getattr(exc.response, "status_code", 200) or 200)
        code = str(data.get("error") or "") if isinstance(data, dict) else ""
        code = code or f"unexpected answer (HTTP {status})"
        transient = code in TRANSIENT_SLACK_ERRORS or status == 429 or status >= 500
        hint = _HINTS.get(code)
        detail = f"{code} ({hint})" if hint else code
        retry_after = slack_retry_after(exc) if status == 429 or code in ("ratelimited", "rate_limited") else None
        if retry_after is not None:
            detail += f", retry after {retry_after:g}s"
        return PagerError(f"Slack {doing} failed for {target!r}: {detail}", transient=transient, target=target,
                          retry_after=retry_after, defer=transient)
    transient = isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError))
    return PagerError(f"Slack {doing} failed for {target!r}: {type(exc).__name__}", transient=transient,
                      target=target, defer=transient)


_CLIENT_ERRORS = (SlackApiError, aiohttp.ClientError, asyncio.TimeoutError)


class _SlackPoster:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._dm_channels: dict[str, str] = {}  # user id -> the bot's DM channel with them

    async def _post(self, channel: str, request: PageRequest, *, with_button: bool) -> tuple[str, str]:
        arguments: dict[str, Any] = {
            "channel": channel,
            "text": page_fallback_text(request),
            "blocks": build_page_blocks(request, with_button=with_button),
            "unfurl_links": False,
            "unfurl_media": False,
        }
        metadata = page_metadata(request)
        if metadata is not None:
            arguments["metadata"] = metadata
        response = await self._client.chat_postMessage(**arguments)
        return str(response["channel"]), str(response["ts"])

    async def _history(self, channel: str, cursor: str | None) -> Any:
        return await self._client.conversations_history(
            channel=channel, limit=LOOKUP_PAGE_SIZE, include_all_metadata=True, cursor=cursor or None)

    async def find_page(self, channel: str, page_key: str, *, join: bool = False) -> str | None:
        """The ts of the message in ``channel`` carrying ``page_key``, if one of the latest has it.

        Raises the Slack client's errors. With ``join``, a public channel the bot is
        not in (it may post there through ``chat:write.public``) is joined to read it.
        """
        cursor: str | None = None
        seen = 0
        while seen < LOOKUP_MAX_MESSAGES:
            try:
                response = await self._history(channel, cursor)
            except SlackApiError as exc:
                if not join or slack_error(exc) != "not_in_channel":
                    raise
                join = False
                try:
                    await self._client.conversations_join(channel=channel)
                except SlackApiError:
                    return None  # a channel the bot cannot join is one it could not post in
                continue
            messages = list(response.get("messages") or [])
            for message in messages:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if (metadata.get("event_type") == PAGE_EVENT_TYPE and payload.get("page_key") == page_key
                        and message.get("bot_id")):  # posted by an app, not typed by someone
                    return str(message["ts"])
            seen += len(messages)
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not response.get("has_more") or not messages:
                return None
        return None

    async def _deliver(self, channel: str, request: PageRequest, target: str, *,
                       with_button: bool, join: bool = False) -> tuple[str, str, bool]:
        """Post the page in ``channel`` unless an earlier try already did: (channel, ts, found)."""
        if request.maybe_sent and request.page_key:
            try:
                ts = await self.find_page(channel, request.page_key, join=join)
            except _CLIENT_ERRORS as exc:
                error = pager_error(exc, target, "conversations.history")
                if error.transient:
                    raise error from None
                # We cannot tell (e.g. a missing history scope): a page sent twice beats no page.
                log.warning("page %s: could not look for an earlier try, sending: %s", target, error)
                ts = None
            if ts is not None:
                log.info("page %s: found in %s (sent by an earlier try), not sent again", target, channel)
                return channel, ts, True
        posted_channel, ts = await self._post(channel, request, with_button=with_button)
        return posted_channel, ts, False

    async def _dm(self, user_id: str, request: PageRequest, target: str) -> tuple[str, str, bool]:
        """Open a DM with ``user_id`` and deliver the page there once; return (channel, ts, found)."""
        try:
            channel = self._dm_channels.get(user_id)
            if channel is None:
                opened = await self._client.conversations_open(users=user_id)
                channel = self._dm_channels.setdefault(user_id, str(opened["channel"]["id"]))
            return await self._deliver(channel, request, target, with_button=True)
        except _CLIENT_ERRORS as exc:
            raise pager_error(exc, target, "direct message") from None

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
        channel, ts, found = await self._dm(user_id, request, target)
        detail = f"direct message to <@{user_id}>" + (" (sent by an earlier try)" if found else "")
        return PageResult(target, True, detail, {"channel": channel, "ts": ts})


class SlackGroupPager(_SlackPoster):
    """``group:S123`` → a DM to each member; one member's failure does not stop the others.

    The result is delivered when at least one member was reached, with each
    member's outcome in ``deliveries``. When nobody could be reached it raises
    ``PagerError`` (transient if any member's failure was), so that a retry
    cannot DM someone twice.
    """

    def __init__(self, client: AsyncWebClient, *, concurrency: int = 4,
                 members_client: AsyncWebClient | None = None) -> None:
        super().__init__(client)
        self._concurrency = max(1, concurrency)
        # Reading a group's members happens before any lock is taken: that client may
        # wait out a rate limit (the shared client does).
        self._members_client = members_client or client

    async def members(self, group_id: str, target: str) -> list[str]:
        try:
            response = await self._members_client.usergroups_users_list(usergroup=group_id)
        except (TimeoutError, SlackApiError, aiohttp.ClientError) as exc:
            raise pager_error(exc, target, "usergroups.users.list") from None
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
                member = request
                if request.page_key:  # one key per member
                    member = replace(request, page_key=f"{request.page_key}:{user_id}")
                try:
                    channel, ts, _ = await self._dm(user_id, member, f"user:{user_id}")
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
            channel, ts, found = await self._deliver(channel_id, request, target, with_button=self._with_button,
                                                     join=True)
        except _CLIENT_ERRORS as exc:
            raise pager_error(exc, target, "chat.postMessage") from None
        detail = f"posted in <#{channel_id}>" + (" (by an earlier try)" if found else "")
        return PageResult(target, True, detail, {"channel": channel, "ts": ts})
