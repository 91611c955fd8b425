"""Who may act on an incident or a rollback: people in the workspace, never the bot itself.

A signed request names its actor by id, and a command names people by mention; neither
proves that the id is a person. :class:`People` asks Slack (``users.info``) and caches the
answer: known people for an hour, ids that are not people (unknown, deactivated, bots,
Firebreak's own user) for five minutes. When Slack cannot answer (rate limit, outage) the
id is let through: a hiccup at Slack must not stop an acknowledgement.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.pagers.slack import page_client
from bot.slack.client import slack_error

log = logging.getLogger(__name__)

NOT_FOUND = ("user_not_found", "users_not_found", "invalid_user", "account_inactive")
SLACKBOT = "USLACKBOT"
QUICK_TIMEOUT = 3  # seconds


class People:
    def __init__(self, client: AsyncWebClient, *, bot_user_id: Callable[[], str | None],
                 ttl: float = 3600.0, refused_ttl: float = 300.0, max_entries: int = 10_000) -> None:
        self.client = client
        self.bot_user_id = bot_user_id
        self.ttl = ttl
        self.refused_ttl = refused_ttl
        self.max_entries = max_entries
        self._known: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    async def problem(self, user_id: str) -> str | None:
        """Why ``user_id`` is not a person who may act here, or None when they are."""
        cached = self._known.get(user_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            problem = await self._ask(user_id)
        except _Unsure as exc:
            log.warning("could not check whether %s is a person (%s); letting it act", user_id, exc)
            return None
        self._known[user_id] = (time.monotonic() + (self.ttl if problem is None else self.refused_ttl), problem)
        self._known.move_to_end(user_id)
        while len(self._known) > self.max_entries:
            self._known.popitem(last=False)
        return problem

    async def _ask(self, user_id: str) -> str | None:
        if user_id == SLACKBOT or user_id == self.bot_user_id():
            return "is a bot, not a person"
        try:
            # Asked on the request's path: one quick try, no retries, so that a Slack outage
            # (when the id is let through) delays nothing.
            quick = page_client(self.client, timeout=QUICK_TIMEOUT)
            user = (await quick.users_info(user=user_id)).get("user") or {}
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in NOT_FOUND:
                return "is not a member of this workspace"
            raise _Unsure(error) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _Unsure(type(exc).__name__) from exc
        if user.get("is_bot") or user.get("is_app_user"):
            return "is a bot, not a person"
        if user.get("deleted"):
            return "is deactivated"
        return None


class _Unsure(Exception):
    """Slack could not say (rate limit, outage): not cached, and the request goes ahead."""
