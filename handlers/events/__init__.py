"""Events API listeners: pinned and :pushpin:-ed messages join the timeline."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.db.engine import transaction
from bot.incidents import service as incidents
from bot.runtime import Runtime
from bot.text import clean
from handlers.common import dig, slack_error, slack_id, slack_ts, text_field, work_on_event
from handlers.discovery import register_submodules

log = logging.getLogger(__name__)


async def _fetch_message(client, channel: str, ts: str) -> dict[str, Any] | None:
    history = await client.conversations_history(channel=channel, latest=ts, inclusive=True, limit=1)
    for message in history.get("messages", []):
        if message.get("ts") == ts:
            return message
    replies = await client.conversations_replies(channel=channel, ts=ts, limit=1)
    for message in replies.get("messages", []):
        if message.get("ts") == ts:
            return message
    return None


async def add_pinned(rt: Runtime, *, channel: str, message: dict[str, Any], pinned_by: str | None,
                     via: str, bot_user_id: str | None) -> None:
    ts = slack_ts(message.get("ts"))
    author = slack_id(message.get("user"))
    if ts is None or message.get("bot_id") or (bot_user_id and author == bot_user_id):
        return  # not a message; or the bot's own card and notices, already on the timeline
    async with transaction(rt.sessions) as session:
        incident = await incidents.find_by_channel(session=session, channel_id=channel)
        if incident is None:
            return
        await incidents.record_pinned_message(
            session=session, incident=incident, channel_id=channel, message_ts=ts,
            author=author, text=clean(text_field(message, "text")), pinned_by=pinned_by,
            now=rt.clock.now(), via=via)


async def on_pin_added(rt: Runtime, event: dict[str, Any], context) -> None:
    channel = slack_id(event.get("channel_id")) or slack_id(dig(event, "item", "channel"))
    message = dig(event, "item", "message")
    if channel and isinstance(message, dict):
        await add_pinned(rt, channel=channel, message=message, pinned_by=slack_id(event.get("user")),
                         via="pin", bot_user_id=context.get("bot_user_id"))


async def on_pushpin(rt: Runtime, event: dict[str, Any], client, context) -> None:
    item = event.get("item")
    channel, ts = slack_id(dig(item, "channel")), slack_ts(dig(item, "ts"))
    if text_field(item, "type") != "message" or not channel or not ts:
        return
    try:
        message = await _fetch_message(client, channel, ts)
    except SlackApiError as exc:  # a channel Firebreak cannot read: nothing to add
        log.info("could not read the :pushpin:-ed message %s in %s: %s", ts, channel, slack_error(exc))
        return
    if message:
        await add_pinned(rt, channel=channel, message=message,
                         pinned_by=slack_id(event.get("user")), via="pushpin",
                         bot_user_id=context.get("bot_user_id"))


def register(app: AsyncApp, rt: Runtime) -> None:
    register_submodules(__name__, __path__, app, rt)
    @app.event("pin_added")
    async def pin_added(event: dict, context):
        return work_on_event(rt, lambda: on_pin_added(rt, event, context), name="pin_added")

    @app.event("reaction_added")
    async def reaction_added(event: dict, client, context):
        if event.get("reaction") != "pushpin":
            return None
        return work_on_event(rt, lambda: on_pushpin(rt, event, client, context),
                             name="reaction_added")

    @app.event("pin_removed")
    async def ignore_unpins() -> None:  # an unpin does not erase history
        return

    @app.event("reaction_removed")
    async def ignore_reaction_removed() -> None:
        return

    @app.event("message")
    async def ignore_messages() -> None:
        return
