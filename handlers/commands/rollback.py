"""``/rollback``: parse, ack at once with usage errors, then preview / status / list."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.db.engine import transaction
from bot.incidents.commands import UsageError
from bot.providers.base import (
    InvalidTarget,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    service_label,
)
from bot.rollback import blocks
from bot.rollback import service as rollbacks
from bot.rollback.commands import RollbackCommand, help_text, parse_rollback_command
from bot.rollback.install import flow_of
from bot.runtime import Runtime
from handlers.common import Reply, ack_then, command_problem, ephemeral, guarded, once, require_person, slack_error

LIST_TIMEOUT = 8.0  # seconds for one provider's answer in /rollback list


async def run_rollback_command(rt: Runtime, command: RollbackCommand, body: dict[str, Any]) -> Reply:
    if command.name == "status":
        async with rt.sessions() as session:
            found = await rollbacks.list_rollbacks(session=session, service=command.service, limit=10)
        return ephemeral(blocks.status_text(found, service=command.service, now=rt.clock.now(),
                                            zone=rt.settings.display_zone))
    if command.name == "list":
        return ephemeral(blocks.list_text(await _service_rows(rt), now=rt.clock.now()))
    if command.name == "help":
        return ephemeral(help_text())
    return await start_rollback(rt, command, body)


async def start_rollback(rt: Runtime, command: RollbackCommand, body: dict[str, Any]) -> Reply:
    flow = flow_of(rt)
    playbook = rt.playbooks.services[command.service]
    user, channel = body["user_id"], body.get("channel_id")
    await require_person(rt, user)
    delivery = f"trigger:{body['trigger_id']}" if body.get("trigger_id") else None

    # One at a time: a request while one is in flight is answered without asking the provider.
    async with transaction(rt.sessions) as session:
        now = rt.clock.now()
        await rollbacks.expire_stale(session=session, service=playbook.name, now=now)
        existing = await rollbacks.active_rollback(session=session, service=playbook.name)
        if existing is not None:
            raise rollbacks.RollbackBusy(existing, now=now)
        skip = await rollbacks.deploys_to_skip(session=session, service=playbook.name, now=now)

    try:
        provider = flow.provider_for(playbook)
        plan = await provider.plan(playbook.provider, to=command.target, skip=skip)
    except InvalidTarget as exc:
        return ephemeral(f":no_entry: {exc.message}")
    except ProviderRejected as exc:
        return ephemeral(f":no_entry: Could not prepare the rollback of `{playbook.name}`: {exc.message}")
    except ProviderUnavailable as exc:
        return ephemeral(f":warning: {exc.message} Nothing was started; try again in a minute.")

    async with transaction(rt.sessions) as session:
        await once(session, rt, delivery, "rollback")
        incident = await rollbacks.incident_for(session=session, service=playbook.name, channel_id=channel)
        rollback = await rollbacks.request_rollback(
            session=session, playbook=playbook, plan=plan, requested_by=user, now=rt.clock.now(),
            reason=command.reason, requested_target=command.target, command_channel_id=channel,
            incident=incident)
        target_channel = incident.channel_id if incident is not None and incident.channel_id else channel

    payload = await flow.preview_payload(rollback.id)
    try:
        posted = await _post(rt, target_channel, payload)
    except SlackApiError as exc:
        error = slack_error(exc)
        async with transaction(rt.sessions) as session:
            stored = await rollbacks.get_rollback(session=session, rollback_id=rollback.id, for_update=True)
            await rollbacks.preview_failed(session=session, rollback=stored, now=rt.clock.now(), error=str(error))
        return ephemeral(f":warning: Firebreak could not post the rollback preview in <#{target_channel}> "
                         f"(`{error}`), so nothing was started. Invite Firebreak to the channel, or type the "
                         "command in a channel it is in.")
    async with transaction(rt.sessions) as session:
        stored = await rollbacks.get_rollback(session=session, rollback_id=rollback.id, for_update=True)
        await rollbacks.set_preview_message(session=session, rollback=stored, channel_id=target_channel,
                                            message_ts=posted["ts"], now=rt.clock.now())
    rt.worker.wake()
    where = "here" if target_channel == channel else f"in <#{target_channel}>"
    approvals = (f" It needs {rollback.approvals_needed} approval{'s' if rollback.approvals_needed != 1 else ''} "
                 "from owners other than the one who confirms (in either order)." if rollback.approvals_needed else "")
    return ephemeral(f"Rollback preview {rollback.key} of `{playbook.name}` posted {where}: "
                     f"`{rollback.current_id}` → `{rollback.target_id}`. An owner confirms it there "
                     f"within 15 minutes.{approvals}")


async def _post(rt: Runtime, channel: str, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        return (await rt.slack.chat_postMessage(channel=channel, **payload)).data
    except SlackApiError as exc:
        if slack_error(exc) != "not_in_channel":
            raise
        await rt.slack.conversations_join(channel=channel)
        return (await rt.slack.chat_postMessage(channel=channel, **payload)).data


async def _service_rows(rt: Runtime) -> list[blocks.ServiceRow]:
    flow = flow_of(rt)
    async with rt.sessions() as session:
        active = {r.service: r for r in await rollbacks.list_rollbacks(session=session, active_only=True, limit=100)}

    async def row(name: str) -> blocks.ServiceRow:
        playbook = rt.playbooks.services[name]
        config = playbook.provider
        live, error = None, None
        try:
            provider = flow.provider_for(playbook)
            deploys = await asyncio.wait_for(provider.list_deploys(config, limit=10), LIST_TIMEOUT)
            found = next((d for d in deploys if d.is_live), None)
            live = found.to_dict() if found else None
        except ProviderError as exc:
            error = exc.message
        except TimeoutError:
            error = f"{blocks.provider_label(config.type)} did not answer within {LIST_TIMEOUT:g}s"
        in_flight = active.get(name)
        return blocks.ServiceRow(
            name=name, provider=config.type, where=service_label(config), live=live, error=error,
            in_flight=(f"{in_flight.key} {in_flight.state.label}" if in_flight else None))

    return list(await asyncio.gather(*(row(name) for name in rt.playbooks.services)))


def register(app: AsyncApp, rt: Runtime) -> None:
    @app.command("/rollback")
    async def rollback_command(ack: AsyncAck, body: dict, respond: AsyncRespond) -> None:
        if problem := command_problem(body):
            await ack(response_type="ephemeral", text=problem)
            return
        try:
            command = parse_rollback_command(body.get("text", ""), rt.playbooks.services)
        except UsageError as exc:
            await ack(response_type="ephemeral", text=str(exc))
            return
        if command.name == "help":
            await ack(response_type="ephemeral", text=help_text())
            return

        async def work() -> None:
            await respond(**await guarded(lambda: run_rollback_command(rt, command, body)))

        await ack_then(ack, rt, work, name=f"/rollback {command.name}")
