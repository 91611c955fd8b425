"""``/incident``: parse, call the incident service, reply."""

from __future__ import annotations

from typing import Any

from bot.db.engine import transaction
from bot.export.web import incident_url
from bot.incidents import service as incidents
from bot.incidents.commands import USAGE, Command, UsageError, help_text
from bot.runtime import Runtime
from bot.slack import blocks
from bot.slack.effects import SETUP_RETRY_MINUTES, provision_key
from bot.text import shown
from handlers.common import Reply, ephemeral, guarded, once, require_person

CHANNEL_WAIT_SECONDS = 5.0
TIMELINE_REPLY_EVENTS = 1000  # read for the reply; as many of the newest as fit are shown

# Subcommands that other parts of Firebreak add (escalation, export, …) register here.
EXTRA_SUBCOMMANDS: dict[str, Any] = {}


async def run_incident_command(rt: Runtime, command: Command, body: dict[str, Any]) -> Reply:
    user = body["user_id"]
    channel = body.get("channel_id")
    delivery = f"trigger:{body['trigger_id']}" if body.get("trigger_id") else None
    now = rt.clock.now()

    if command.name == "open":
        return await open_from_command(rt, command, user=user, delivery=delivery)
    if command.name == "help":
        return ephemeral(help_text())
    if command.name == "list":
        async with rt.sessions() as session:
            found = await incidents.list_incidents(session=session,
                                                   include_resolved=command.include_all)
        return ephemeral(blocks.incident_list_text(found, include_resolved=command.include_all))
    if command.name == "timeline":
        async with rt.sessions() as session:
            incident = await incidents.resolve_target(session=session, number=command.incident,
                                                      channel_id=channel)
            events, total = await incidents.latest_events(session=session, incident=incident,
                                                          limit=TIMELINE_REPLY_EVENTS)
        return ephemeral(f"Timeline of {incident.key} ({total:,} events)", blocks=blocks.timeline_blocks(
            incident, events, rt.settings.display_zone, total=total,
            web_url=incident_url(rt.settings, incident.key)))
    await require_person(rt, user)
    if command.user:  # assign, follow-up owner
        await require_person(rt, command.user, as_whom=f"the {command.role.value} of an incident"
                             if command.role else "the owner of a follow-up")
    if command.target and command.target.startswith("user:"):
        await require_person(rt, command.target.removeprefix("user:"), as_whom="paged")
    if command.name in EXTRA_SUBCOMMANDS:
        return await EXTRA_SUBCOMMANDS[command.name](rt, command, body)

    async with transaction(rt.sessions) as session:
        await once(session, rt, delivery, command.name)
        incident = await incidents.resolve_target(session=session, number=command.incident,
                                                  channel_id=channel, for_update=True)
        if command.name == "ack":
            await incidents.acknowledge(session=session, incident=incident, actor=user, now=now)
            reply = f"You acknowledged {incident.key}; escalation stops."
        elif command.name == "sev":
            await incidents.change_severity(session=session, incident=incident,
                                            severity=command.severity, actor=user, now=now)
            reply = f"{incident.key} is now {command.severity.value}."
        elif command.name == "assign":
            await incidents.assign_role(session=session, incident=incident, role=command.role,
                                        user_id=command.user, actor=user, now=now)
            reply = f"<@{command.user}> is now {command.role.value} of {incident.key}."
        elif command.name == "note":
            await incidents.add_note(session=session, incident=incident, text=command.text,
                                     actor=user, now=now)
            reply = f"Noted on the timeline of {incident.key}."
        elif command.name == "status":
            await incidents.post_status(session=session, incident=incident, text=command.text,
                                        actor=user, now=now)
            reply = f"Status update posted for {incident.key}."
        elif command.name == "mitigated":
            await incidents.mitigate(session=session, incident=incident, actor=user, now=now,
                                     text=command.text)
            reply = f"{incident.key} marked mitigated."
        elif command.name == "resolve":
            await incidents.resolve(session=session, incident=incident, actor=user, now=now,
                                    summary=command.text)
            reply = f"{incident.key} resolved. Export the post-mortem with `/incident export`."
        elif command.name == "reopen":
            await incidents.reopen(session=session, incident=incident, actor=user, now=now)
            reply = f"{incident.key} reopened."
        else:
            raise UsageError(f"`{command.name}` is not available in this installation.",
                             "/incident help")
    rt.worker.wake()
    return ephemeral(reply)


async def open_from_command(rt: Runtime, command: Command, *, user: str,
                            delivery: str | None) -> Reply:
    await require_person(rt, user)
    if command.service and command.service not in rt.playbooks.services:
        known = ", ".join(sorted(rt.playbooks.services)) or "none configured"
        raise UsageError(f"There is no service `{command.service}` (known: {known}).",
                         "/incident open P0|P1|P2|P3 <title> [service:<name>]")
    async with transaction(rt.sessions) as session:
        result = await incidents.open_incident(
            session=session, severity=command.severity, title=command.text, reporter_id=user,
            service=command.service, now=rt.clock.now(), delivery_key=delivery)
    incident = result.incident
    set_up_elsewhere = False
    if not incident.is_provisioned and not result.created:
        await rt.effects.resume_setup(incident.id)  # it may have given up: the command asks again
    if not incident.is_provisioned:
        # Set the channel up now rather than on the worker's next poll; if another
        # worker already holds the job this returns at once and it finishes there.
        set_up_elsewhere = not await rt.worker.run_job_by_key(provision_key(incident.id))
    rt.worker.wake()
    # The reply links the channel, also when another worker is creating it.
    incident = await incidents.wait_for_channel(
        sessions=rt.sessions, number=incident.number,
        timeout=CHANNEL_WAIT_SECONDS if set_up_elsewhere else 0)
    return ephemeral(open_reply(incident, created=result.created))


def open_reply(incident: Any, *, created: bool) -> str:
    where = f" in <#{incident.channel_id}>" if incident.channel_id else ""
    verb = "opened" if created else "is open"
    text = f":rotating_light: {incident.key} {verb}{where}: {shown(incident.title)} ({incident.severity.value})"
    if incident.setup_error:
        text += (f"\n:warning: {incident.setup_error}. The incident is recorded and paging; Firebreak "
                 f"retries the Slack set-up for about {SETUP_RETRY_MINUTES} minutes and tells you and the "
                 "announcement channel if it still cannot (run the same `/incident open` again to retry now).")
    return text


async def handle_incident(rt: Runtime, command: Command, body: dict[str, Any]) -> Reply:
    async def run() -> Reply:
        try:
            return await run_incident_command(rt, command, body)
        except incidents.IncidentNotFound as exc:
            raise UsageError(f"{exc} (`/incident list` shows the open ones)",
                             USAGE.get(command.name, USAGE["help"])) from None

    return await guarded(run)
