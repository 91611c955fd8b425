"""Modal submissions."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from bot.incidents.commands import Command
from bot.incidents.models import TITLE_MAX
from bot.playbooks.models import Severity
from bot.runtime import Runtime
from bot.slack.ids import BlockId, CallbackId
from bot.text import clean, is_blank
from handlers.commands.incident import open_from_command
from handlers.common import dig, guarded, slack_error, slack_id, text_field
from handlers.discovery import register_submodules

log = logging.getLogger("firebreak.handlers")
SEVERITIES = {severity.value for severity in Severity}


OVERLOADED_FORM = "Firebreak is overloaded right now; nothing was done. Submit again in a few seconds."


def register(app: AsyncApp, rt: Runtime) -> None:
    register_submodules(__name__, __path__, app, rt)
    @app.view(CallbackId.OPEN_INCIDENT_MODAL.value)
    async def open_incident_submitted(ack: AsyncAck, body: dict, view: dict, client) -> None:
        values = dig(view, "state", "values")
        user = slack_id(dig(body, "user", "id"))
        if not isinstance(values, dict) or not user:
            await ack(response_action="errors",
                      errors={BlockId.MODAL_TITLE.value: "Firebreak could not read this form; nothing was done."})
            return
        title = " ".join(clean(
            text_field(dig(values, BlockId.MODAL_TITLE.value, "title"), "value")).split())
        severity = text_field(dig(values, BlockId.MODAL_SEVERITY.value, "severity", "selected_option"), "value")
        service = text_field(dig(values, BlockId.MODAL_SERVICE.value, "service", "selected_option"), "value")
        errors = {}
        if is_blank(title):
            errors[BlockId.MODAL_TITLE.value] = "An incident needs a title (one that shows)."
        elif len(title) > TITLE_MAX:
            errors[BlockId.MODAL_TITLE.value] = f"At most {TITLE_MAX} characters."
        if severity not in SEVERITIES:
            errors[BlockId.MODAL_SEVERITY.value] = "Choose a severity."
        if service and service not in rt.playbooks.services:
            errors[BlockId.MODAL_SERVICE.value] = "Choose one of the services."
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        if rt.background.saturated:
            await ack(response_action="errors", errors={BlockId.MODAL_TITLE.value: OVERLOADED_FORM})
            return
        await ack()
        command = Command("open", severity=Severity(severity), text=title, service=service or None)
        view_id = text_field(view, "id")
        delivery = f"view:{view_id}" if view_id else None
        origin = text_field(view, "private_metadata") or None

        async def work() -> None:
            reply = await guarded(lambda: open_from_command(rt, command, user=user,
                                                            delivery=delivery))
            await tell(client, user, reply["text"], origin=origin)

        rt.background.spawn(work, name="open incident (modal)")


async def tell(client, user: str, text: str, *, origin: str | None) -> None:
    """Tell the person who submitted the form: in the channel they opened it from, else (or
    when Slack refuses that, e.g. a channel Firebreak is not in) in a DM."""
    if origin:
        try:
            await client.chat_postEphemeral(channel=origin, user=user, text=text)
            return
        except SlackApiError as exc:
            log.info("no ephemeral reply in %s (%s); sending a DM", origin, slack_error(exc))
    try:
        opened = await client.conversations_open(users=user)
        await client.chat_postMessage(channel=opened["channel"]["id"], text=text)
    except SlackApiError as exc:
        log.warning("could not tell %s about their form: %s", user, slack_error(exc))
