"""``/incident page <target> [message]`` and ``/incident oncall [rotation]``."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.db.engine import transaction
from bot.escalation import service as escalation
from bot.escalation.models import PageOutcome
from bot.escalation.oncall_view import oncall_text
from bot.incidents import service as incidents
from bot.incidents.commands import USAGE, Command, UsageError
from bot.playbooks.targets import Target, TargetKind
from bot.runtime import Runtime
from handlers.commands.incident import EXTRA_SUBCOMMANDS
from handlers.common import Reply, ephemeral, once


async def run_page(rt: Runtime, command: Command, body: dict[str, Any]) -> Reply:
    user = body["user_id"]
    delivery = f"trigger:{body['trigger_id']}" if body.get("trigger_id") else None
    try:
        target = Target.parse(command.target or "")
    except ValueError as exc:
        raise UsageError(str(exc), USAGE["page"]) from None
    if target.kind is TargetKind.ONCALL and target.value not in rt.playbooks.rotations:
        known = ", ".join(f"`{name}`" for name in rt.playbooks.rotations) or "none"
        raise UsageError(f"There is no rotation `{target.value}` (known: {known}).", USAGE["page"])
    async with transaction(rt.sessions) as session:
        await once(session, rt, delivery, "page")
        incident = await incidents.resolve_target(session=session, number=command.incident,
                                                  channel_id=body.get("channel_id"), for_update=True)
        request = await escalation.request_manual_page(
            session=session, incident=incident, target=target, message=command.text, actor=user,
            now=rt.clock.now())
    # Send it now, so the reply can say how it went; another worker may have taken it.
    if not await rt.worker.run_job(request.job_id):
        rt.worker.wake()
        return ephemeral(f"Paging `{target}` for {incident.key}…")
    async with rt.sessions() as session:
        pages = await escalation.pages_of(session=session, incident_id=incident.id,
                                          step_key=request.step_key)
    if not pages:
        return ephemeral(f"Paging `{target}` for {incident.key}…")
    lines = []
    for page in pages:
        who = escalation.describe_recipient(page.recipient)
        if page.outcome == PageOutcome.FAILED:
            lines.append(f":warning: Could not page {who}: {page.detail}")
        else:
            lines.append(f":pager: Paged {who} for {incident.key}.")
    return ephemeral("\n".join(lines))


async def run_oncall(rt: Runtime, command: Command, body: dict[str, Any]) -> Reply:
    return ephemeral(oncall_text(rt.playbooks, now=rt.clock.now(), rotation=command.target))


def register(app: AsyncApp, rt: Runtime) -> None:
    EXTRA_SUBCOMMANDS["page"] = run_page
    EXTRA_SUBCOMMANDS["oncall"] = run_oncall
