"""Slack ids as names, for exports and web pages (mrkdwn itself: :mod:`bot.export.mrkdwn`).

Renderers stay pure: they read names from a :class:`Names` (a plain lookup that
falls back to the id). Before rendering a batch, the pipeline asks the
directory to ``resolve`` the ids that batch mentions; :class:`SlackNames` looks
them up once through ``users.info`` / ``conversations.info`` and caches them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")
_MENTION = re.compile(r"<([@#!])([^>|]*)(?:\|([^>]*))?>")
_TARGET = re.compile(r"^(user|group|channel):([A-Z0-9]+)$")
SYSTEM_ACTORS = {"firebreak": "Firebreak"}


def is_user_id(value: object) -> bool:
    return isinstance(value, str) and bool(USER_ID.match(value))


def is_channel_id(value: object) -> bool:
    return isinstance(value, str) and bool(CHANNEL_ID.match(value))


class Names:
    """A lookup of names already known; an unknown id is shown as itself."""

    def __init__(self, users: dict[str, str] | None = None,
                 channels: dict[str, str] | None = None) -> None:
        self._users: dict[str, str] = dict(users or {})
        self._channels: dict[str, str] = dict(channels or {})

    def user(self, user_id: str | None) -> str:
        if not user_id:
            return ""
        if user_id in SYSTEM_ACTORS:
            return SYSTEM_ACTORS[user_id]
        return self._users.get(user_id, user_id)

    def channel(self, channel_id: str | None) -> str:
        if not channel_id:
            return ""
        return self._channels.get(channel_id, channel_id)

    def known_user(self, user_id: str) -> bool:
        return user_id in self._users

    def known_channel(self, channel_id: str) -> bool:
        return channel_id in self._channels

    async def resolve(self, *, users: Iterable[str] = (), channels: Iterable[str] = ()) -> None:
        """Look up whatever is not known yet (nothing to look up here)."""


class SlackNames(Names):
    """Names from Slack (``users.info``, ``conversations.info``), cached for ``ttl`` seconds.

    A failed lookup (unknown id, missing scope, Slack down) is remembered for a
    minute as the id itself, so a large export does not ask again for every event.
    """

    def __init__(self, client: AsyncWebClient, *, ttl: float = 3600.0, max_entries: int = 10_000,
                 concurrency: int = 4) -> None:
        super().__init__()
        self.client = client
        self.ttl = ttl
        self.max_entries = max_entries
        self._expiry: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._slots = asyncio.Semaphore(concurrency)

    @property
    def enabled(self) -> bool:
        return bool(getattr(self.client, "token", None))

    def _fresh(self, kind: str, key: str) -> bool:
        expires = self._expiry.get((kind, key))
        return expires is not None and expires > time.monotonic()

    def _store(self, kind: str, key: str, name: str, ttl: float) -> None:
        (self._users if kind == "user" else self._channels)[key] = name
        self._expiry[(kind, key)] = time.monotonic() + ttl
        self._expiry.move_to_end((kind, key))
        while len(self._expiry) > self.max_entries:
            (old_kind, old_key), _ = self._expiry.popitem(last=False)
            (self._users if old_kind == "user" else self._channels).pop(old_key, None)

    async def resolve(self, *, users: Iterable[str] = (), channels: Iterable[str] = ()) -> None:
        if not self.enabled:
            return
        wanted = [("user", u) for u in dict.fromkeys(users) if is_user_id(u) and not self._fresh("user", u)]
        wanted += [("channel", c) for c in dict.fromkeys(channels)
                   if is_channel_id(c) and not self._fresh("channel", c)]
        if wanted:
            await asyncio.gather(*(self._lookup(kind, key) for kind, key in wanted))

    async def _lookup(self, kind: str, key: str) -> None:
        async with self._slots:
            try:
                if kind == "user":
                    answer = await self.client.users_info(user=key)
                    name = user_display_name(answer.get("user") or {})
                else:
                    answer = await self.client.conversations_info(channel=key)
                    name = channel_display_name(answer.get("channel") or {})
            except Exception as exc:  # noqa: BLE001 - a name is a nicety; the id will do
                log.info("could not look up %s %s: %s", kind, key, type(exc).__name__)
                self._store(kind, key, key, ttl=60.0)
                return
            self._store(kind, key, name or key, ttl=self.ttl)


def user_display_name(user: dict[str, Any]) -> str:
    profile = user.get("profile") or {}
    return (profile.get("display_name") or profile.get("real_name") or user.get("real_name")
            or user.get("name") or user.get("id") or "")


def channel_display_name(channel: dict[str, Any]) -> str:
    if channel.get("is_im"):
        return "direct message"
    name = channel.get("name")
    return f"#{name}" if name else channel.get("id", "")


# --- ids mentioned by text and data --------------------------------------------------------


def mentioned_ids(text: str | None) -> tuple[set[str], set[str]]:
    """(user ids, channel ids) written as ``<@U…>`` / ``<#C…>`` in mrkdwn."""
    users: set[str] = set()
    channels: set[str] = set()
    for sigil, ref, _label in _MENTION.findall(text or ""):
        if sigil == "@" and is_user_id(ref):
            users.add(ref)
        elif sigil == "#" and is_channel_id(ref):
            channels.add(ref)
    return users, channels


def target_user(target: object) -> str | None:
    """``user:U123`` → ``U123``."""
    if isinstance(target, str):
        match = _TARGET.match(target)
        if match and match.group(1) == "user":
            return match.group(2)
    return None


def ids_in_data(data: dict[str, Any] | None) -> tuple[set[str], set[str]]:
    users: set[str] = set()
    channels: set[str] = set()
    for key, value in (data or {}).items():
        if not isinstance(value, str):
            continue
        if key in ("user", "owner", "previous", "pinned_by", "by", "requested_by", "acknowledged_by") \
                and is_user_id(value):
            users.add(value)
        elif key in ("target", "recipient"):
            user = target_user(value)
            if user:
                users.add(user)
            elif value.startswith("channel:") and is_channel_id(value[8:]):
                channels.add(value[8:])
        elif key == "channel" and is_channel_id(value):
            channels.add(value)
    return users, channels


def _hash(name: str) -> str:
    return name if name.startswith("#") else "#" + name


def target_label(target: object, names: Names) -> str:
    """A page target for people: ``user:U1`` → ``Alice``, ``channel:C1`` → ``#triage``."""
    if not isinstance(target, str):
        return ""
    match = _TARGET.match(target)
    if match:
        kind, ref = match.groups()
        if kind == "user":
            return names.user(ref)
        if kind == "channel":
            return _hash(names.channel(ref))
        return f"group {ref}"
    return target
