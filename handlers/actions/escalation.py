"""The Acknowledge button of a page (a DM, or a post in a ``channel:`` target)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from bot.db.engine import transaction
from bot.escalation import service as escalation
from bot.escalation.engine import build_request_for
from bot.incidents import service as incidents
from bot.pagers.slack_blocks import (
    build_page_acknowledged_blocks,
    page_fallback_text,
    parse_page_ack_value,
)
from bot.runtime import Runtime
from bot.slack.ids import ActionId
from handlers.common import (
    MAX_NUMBER,
    Reply,
    ack_then_reply,
    clicked,
    dig,
    ephemeral,
    once,
    require_person,
    slack_error,
    slack_ts,
    text_field,
)

log = logging.getLogger("firebreak.handlers")


async def acknowledge_from_page(rt: Runtime, body: dict[str, Any], client: Any) -> Reply:
    """Acknowledge the incident of the page, then turn the page's button into "Acknowledged by"."""
    action, user = clicked(body)
    await require_person(rt, user)
    try:
        value = parse_page_ack_value(text_field(action, "value") or "")
    except ValueError:
        value = None
    if value is None or max(value.incident_number, value.level, value.repeat) > MAX_NUMBER:
        return ephemeral("This button is not one of Firebreak's pages.")
    channel = text_field(body.get("container"), "channel_id") or text_field(body.get("channel"), "id")
    ts = slack_ts(dig(body, "container", "message_ts"))  # else not a message: nothing to update
    trigger = body.get("trigger_id")
    async with transaction(rt.sessions) as session:
        await once(session, rt, f"action:{trigger}" if trigger else None, ActionId.PAGE_ACK.value)
        incident = await incidents.get_incident(session=session, number=value.incident_number,
                                                for_update=True)
        acknowledged = await escalation.acknowledge_from_page(
            session=session, incident=incident, actor=user, level=value.level, attempt=value.repeat,
            now=rt.clock.now())
        pages = await escalation.pages_of(session=session, incident_id=incident.id)
    rt.worker.wake()
    page = next((p for p in pages if ts and p.provider_ids.get("ts") == ts), None)
    if channel and ts:
        sent = page.sent_at if page else datetime.fromtimestamp(float(ts), tz=UTC)
        request = build_request_for(incident, level=value.level, attempt=value.repeat, now=sent,
                                    message=page.message if page else None, page=page)
        by = incident.acknowledged_by or user
        try:
            await client.chat_update(channel=channel, ts=ts, text=page_fallback_text(request),
                                     blocks=build_page_acknowledged_blocks(request, by))
        except SlackApiError as exc:  # the acknowledgement stands; only the page's look is stale
            log.warning("could not update the page %s in %s: %s", ts, channel,
                        slack_error(exc))
            page = None
        if page is not None:
            async with transaction(rt.sessions) as session:
                await escalation.mark_slack_page_closed(session=session, page_id=page.id,
                                                        now=rt.clock.now())
    if acknowledged:
        return ephemeral(f"You acknowledged {incident.key}; escalation stops.")
    if incident.acknowledged_by:
        return ephemeral(f"{incident.key} was already acknowledged by <@{incident.acknowledged_by}>.")
    return ephemeral(f"{incident.key} is {incident.state.value}.")


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.action(ActionId.PAGE_ACK.value)
    async def page_acknowledge(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack_then_reply(ack, rt, respond, lambda: acknowledge_from_page(rt, body, client),
                             name=ActionId.PAGE_ACK.value)
