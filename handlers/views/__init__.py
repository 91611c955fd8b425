"""Modal submissions."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.incidents.commands import Command
from bot.incidents.models import TITLE_MAX
from bot.playbooks.models import Severity
from bot.runtime import Runtime
from handlers.discovery import register_submodules
from bot.slack.ids import BlockId, CallbackId
from handlers.commands.incident import open_from_command
from handlers.common import guarded


OVERLOADED_FORM = "Firebreak is overloaded right now; nothing was done. Submit again in a few seconds."


def register(app: AsyncApp, rt: Runtime) -> None:
    register_submodules(__name__, __path__, app, rt)
    @app.view(CallbackId.OPEN_INCIDENT_MODAL.value)
    async def open_incident_submitted(ack: AsyncAck, body: dict, view: dict, client) -> None:
        values = view["state"]["values"]
        title = " ".join((values[BlockId.MODAL_TITLE.value]["title"].get("value") or "").split())
        severity_option = values[BlockId.MODAL_SEVERITY.value]["severity"].get("selected_option")
        service_option = (values.get(BlockId.MODAL_SERVICE.value, {}).get("service") or {}).get(
            "selected_option")
        errors = {}
        if not title:
            errors[BlockId.MODAL_TITLE.value] = "An incident needs a title."
        elif len(title) > TITLE_MAX:
            errors[BlockId.MODAL_TITLE.value] = f"At most {TITLE_MAX} characters."
        if severity_option is None:
            errors[BlockId.MODAL_SEVERITY.value] = "Choose a severity."
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        if rt.background.saturated:
            await ack(response_action="errors", errors={BlockId.MODAL_TITLE.value: OVERLOADED_FORM})
            return
        await ack()
        user = body["user"]["id"]
        command = Command("open", severity=Severity(severity_option["value"]), text=title,
                          service=service_option["value"] if service_option else None)
        delivery = f"view:{view['id']}" if view.get("id") else None

        async def work() -> None:
            reply = await guarded(lambda: open_from_command(rt, command, user=user,
                                                            delivery=delivery))
            origin = view.get("private_metadata") or None
            if origin:
                await client.chat_postEphemeral(channel=origin, user=user, text=reply["text"])
            else:
                opened = await client.conversations_open(users=user)
                await client.chat_postMessage(channel=opened["channel"]["id"], text=reply["text"])

        rt.background.spawn(work, name="open incident (modal)")
