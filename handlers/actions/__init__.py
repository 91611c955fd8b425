"""Button and select listeners of the incident card."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.db.engine import transaction
from bot.incidents import service as incidents
from bot.playbooks.models import Severity
from bot.runtime import Runtime
from bot.slack.ids import ActionId
from handlers.common import Reply, ack_then_reply, clicked, ephemeral, number_from, once, require_person, text_field
from handlers.discovery import register_submodules


async def _card_action(rt: Runtime, body: dict[str, Any], kind: ActionId) -> Reply:
    action, user = clicked(body)
    await require_person(rt, user)
    number = number_from(text_field(action, "value")
                         or (text_field(action, "block_id") or "").rpartition("-")[2])
    if number is None:
        return ephemeral("This button is not one of Firebreak's incident cards; nothing was done.")
    severity = None
    if kind == ActionId.INCIDENT_CHANGE_SEVERITY:
        try:
            severity = Severity(text_field(action.get("selected_option"), "value") or "")
        except ValueError:
            return ephemeral("Choose a severity from P0 to P3; nothing was changed.")
    now = rt.clock.now()
    async with transaction(rt.sessions) as session:
        await once(session, rt, f"action:{body.get('trigger_id')}" if body.get("trigger_id") else None,
                   kind.value)
        incident = await incidents.get_incident(session=session, number=number, for_update=True)
        if kind == ActionId.INCIDENT_ACK:
            await incidents.acknowledge(session=session, incident=incident, actor=user, now=now,
                                        via="card")
            text = f"You acknowledged {incident.key}."
        elif kind == ActionId.INCIDENT_RESOLVE:
            await incidents.resolve(session=session, incident=incident, actor=user, now=now)
            text = f"You resolved {incident.key}."
        else:
            await incidents.change_severity(session=session, incident=incident, severity=severity,
                                            actor=user, now=now)
            text = f"{incident.key} is now {severity.value}."
    rt.worker.wake()
    return ephemeral(text)


def register(app: AsyncApp, rt: Runtime) -> None:
    register_submodules(__name__, __path__, app, rt)
    for action_id in (ActionId.INCIDENT_ACK, ActionId.INCIDENT_RESOLVE,
                      ActionId.INCIDENT_CHANGE_SEVERITY):
        def make(kind: ActionId):
            async def listener(ack: AsyncAck, body: dict, respond) -> None:
                await ack_then_reply(ack, rt, respond, lambda: _card_action(rt, body, kind),
                                     name=kind.value)
            return listener

        app.action(action_id.value)(make(action_id))
