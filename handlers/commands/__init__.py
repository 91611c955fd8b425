"""Slash command listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.incidents.commands import UsageError, help_text, parse_incident_command
from bot.runtime import Runtime
from handlers.discovery import register_submodules
from bot.slack import blocks
from handlers.commands.incident import handle_incident
from handlers.common import ack_then


def register(app: AsyncApp, rt: Runtime) -> None:
    register_submodules(__name__, __path__, app, rt)
    @app.command("/incident")
    async def incident_command(ack: AsyncAck, body: dict, respond: AsyncRespond, client) -> None:
        # Cheap checks answer in the ack itself; everything else runs after it.
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
                await client.views_open(
                    trigger_id=body["trigger_id"],
                    view=blocks.open_incident_modal(sorted(rt.playbooks.services),
                                                    channel_id=body.get("channel_id")))
                return
            await respond(**await handle_incident(rt, command, body))

        await ack_then(ack, rt, work, name=f"/incident {command.name}")
