"""Slash command listeners."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.incidents.commands import UsageError, help_text, parse_incident_command
from bot.runtime import Runtime
from bot.slack import blocks
from handlers.commands.incident import handle_incident
from handlers.common import ack_then, command_problem, ephemeral, slack_error
from handlers.discovery import register_submodules

log = logging.getLogger("firebreak.handlers")


NO_FORM = ("Slack did not let Firebreak open the form{why}. Type the incident instead: "
           "`/incident open P0|P1|P2|P3 <title> [service:<name>]`")


async def open_form(rt: Runtime, client, respond: AsyncRespond, body: dict) -> None:
    """``/incident open`` alone: the form, or (when Slack refuses it, e.g. a trigger id that
    expired after 3 s) a reply saying how to type the command instead."""
    trigger = body.get("trigger_id")
    if not trigger:
        await respond(**ephemeral(NO_FORM.format(why="")))
        return
    try:
        await client.views_open(
            trigger_id=trigger,
            view=blocks.open_incident_modal(sorted(rt.playbooks.services),
                                            channel_id=body.get("channel_id")))
    except SlackApiError as exc:
        error = slack_error(exc)
        log.warning("views.open refused: %s", error)
        await respond(**ephemeral(NO_FORM.format(why=f" (`{error}`)")))


def register(app: AsyncApp, rt: Runtime) -> None:
    register_submodules(__name__, __path__, app, rt)
    @app.command("/incident")
    async def incident_command(ack: AsyncAck, body: dict, respond: AsyncRespond, client) -> None:
        # Cheap checks answer in the ack itself; everything else runs after it.
        if problem := command_problem(body):
            await ack(response_type="ephemeral", text=problem)
            return
        try:
            command = parse_incident_command(body.get("text", ""))
        except UsageError as exc:
            await ack(response_type="ephemeral", text=str(exc))
            return
        if command.name == "help":
            await ack(response_type="ephemeral", text=help_text())
            return

        async def work() -> None:
            if command.name == "open" and command.severity is None:
                await open_form(rt, client, respond, body)
                return
            await respond(**await handle_incident(rt, command, body))

        await ack_then(ack, rt, work, name=f"/incident {command.name}")
