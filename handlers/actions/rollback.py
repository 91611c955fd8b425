"""Confirm / Approve / Cancel on a rollback preview.

Who clicked is checked against the service's owners (user groups through
``usergroups.users.list``) before anything changes; the state change itself is
one transaction holding the rollback's row, so of two Confirm clicks only one
moves the preview on and enqueues the (single) trigger job.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.db.engine import transaction
from bot.rollback import service as rollbacks
from bot.rollback.owners import OwnersUnavailable, owner_ids
from bot.runtime import Runtime
from bot.slack.ids import ActionId
from handlers.common import (
    Reply,
    ack_then_reply,
    clicked,
    dig,
    ephemeral,
    guarded,
    number_from,
    once,
    require_person,
    text_field,
)

ACTIONS = {
    ActionId.ROLLBACK_CONFIRM: rollbacks.confirm,
    ActionId.ROLLBACK_APPROVE: rollbacks.approve,
    ActionId.ROLLBACK_CANCEL: rollbacks.cancel,
}


async def rollback_action(rt: Runtime, body: dict[str, Any], kind: ActionId, run_next: list[str]) -> Reply:
    action, user = clicked(body)
    await require_person(rt, user)
    rollback_id = number_from(text_field(action, "value"))
    if rollback_id is None:
        return ephemeral("This button is not one of Firebreak's rollback previews.")
    async with rt.sessions() as session:
        rollback = await rollbacks.get_rollback(session=session, rollback_id=rollback_id)
    container = body.get("container")
    clicked_on = (text_field(container, "channel_id") or dig(body, "channel", "id"),
                  text_field(container, "message_ts"))
    if clicked_on != (rollback.channel_id, rollback.message_ts) or rollback.message_ts is None:
        return ephemeral(f":no_entry: This button does not belong to the preview of {rollback.key}; nothing was done.")
    playbook = rt.playbooks.services.get(rollback.service)
    if playbook is None:
        return ephemeral(f":no_entry: `{rollback.service}` is no longer in the playbooks; nothing was done.")
    try:
        owners = await owner_ids(rt.slack, playbook)
    except OwnersUnavailable as exc:
        return ephemeral(f":warning: {exc}, so Firebreak cannot tell whether you are an owner of "
                         f"`{rollback.service}`. Nothing was done; try again.")
    trigger = body.get("trigger_id")
    async with transaction(rt.sessions) as session:
        await once(session, rt, f"action:{trigger}" if trigger else None, kind.value)
        rollback = await rollbacks.get_rollback(session=session, rollback_id=rollback_id, for_update=True)
        result = await ACTIONS[kind](session=session, rollback=rollback, playbook=playbook, actor=user,
                                     is_owner=user in owners, now=rt.clock.now())
    if result.starts:
        run_next.append(rollbacks.trigger_job_key(rollback_id))
    if result.slack_job:
        run_next.append(result.slack_job)
    rt.worker.wake()
    return ephemeral(result.message if result.accepted else f":no_entry: {result.message}")


def register(app: AsyncApp, rt: Runtime) -> None:
    for action_id in ACTIONS:
        def make(kind: ActionId):
            async def listener(ack: AsyncAck, body: dict, respond) -> None:
                async def act() -> Reply:
                    run_next: list[str] = []
                    answer = await guarded(lambda: rollback_action(rt, body, kind, run_next))
                    # Fast path: trigger now and update the preview, rather than on the worker's
                    # next poll (if another worker holds a job already, this returns at once).
                    await asyncio.gather(*(rt.worker.run_job_by_key(key) for key in run_next))
                    return answer

                await ack_then_reply(ack, rt, respond, act, name=kind.value)
            return listener

        app.action(action_id.value)(make(action_id))
