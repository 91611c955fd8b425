"""Rollback domain functions: every state change and its step in one transaction.

All functions are keyword-only, take the caller's session (the caller owns the
transaction) and an explicit ``now`` from the injected clock. None of them talks
to Slack or to a provider: the flow (:mod:`bot.rollback.flow`) and the listeners
do that and pass the results in (e.g. ``is_owner``, a provider's progress).

A step (:func:`add_step`) is written as a :class:`RollbackStep`, as an incident
timeline event of kind ``rollback`` when the rollback belongs to an incident,
and as a durable Slack job that posts it in the preview's thread — all in the
caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.durations import format_duration
from bot.incidents import service as incidents
from bot.incidents.models import EventKind, Incident
from bot.incidents.service import IncidentError
from bot.jobs import service as jobs
from bot.playbooks.models import ServicePlaybook, Severity
from bot.providers import redeploy_of
from bot.providers.base import RollbackHandle, RollbackPlan, RollbackProgress
from bot.rollback.blocks import provider_label, waiting_text
from bot.rollback.models import (
    ACTIVE_STATES,
    Rollback,
    RollbackApproval,
    RollbackStatus,
    RollbackStep,
)
from bot.slack.effects import SYNC_CARD
from bot.text import clean

PREVIEW_TTL = timedelta(minutes=15)
TRIGGER_JOB = "rollback.trigger"
FOLLOW_JOB = "rollback.follow"
EXPIRE_JOB = "rollback.expire"
SLACK_JOB = "rollback.slack"
SYSTEM_ACTOR = incidents.SYSTEM_ACTOR
MANY_ATTEMPTS = 1_000_000  # follow jobs are rescheduled, not failed: see flow.py

# Steps that change what the incident card shows.
CARD_STEPS = {"requested", "confirmed", "triggered", "live", "succeeded", "failed", "canceled", "expired"}


class RollbackError(IncidentError):
    """A refusal worded for the person who asked (rendered ":no_entry: ..." by handlers)."""


class RollbackRefused(RollbackError):
    pass


class RollbackBusy(RollbackError):
    """Another rollback of the same service is in flight."""

    def __init__(self, existing: Rollback, *, now: datetime) -> None:
        self.existing = existing
        super().__init__(busy_text(existing, now=now))


def busy_text(existing: Rollback, *, now: datetime) -> str:
    age = format_duration(now - existing.requested_at)
    state = RollbackStatus(existing.state)
    text = (f"A rollback of `{existing.service}` is already in flight: {existing.key}, started by "
            f"<@{existing.requested_by}> {age} ago, now *{state.label}*")
    if existing.confirmed_by:
        text += f" (confirmed by <@{existing.confirmed_by}>" + (
            ", waiting for approvals)" if state == RollbackStatus.PREVIEW else ")")
    if existing.channel_id:
        text += f", in <#{existing.channel_id}>"
    return text + f". One rollback per service at a time: see `/rollback status {existing.service}`."


@dataclass(frozen=True)
class ActionResult:
    rollback: Rollback
    accepted: bool
    message: str  # for the person who clicked (ephemeral)
    slack_job: str | None = None  # dedup key of the Slack job to run at once
    starts: bool = False  # the click started the rollback: its trigger job may run at once


def slack_job_key(rollback_id: int, seq: int) -> str:
    return f"rollback:{rollback_id}:slack:{seq}"


def trigger_job_key(rollback_id: int) -> str:
    return f"rollback:{rollback_id}:trigger"


def follow_job_key(rollback_id: int) -> str:
    return f"rollback:{rollback_id}:follow"


# --------------------------------------------------------------------------- reading


async def get_rollback(*, session: AsyncSession, rollback_id: int, for_update: bool = False) -> Rollback:
    query = select(Rollback).where(Rollback.id == rollback_id).execution_options(populate_existing=True)
    if for_update and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise RollbackRefused(f"There is no rollback RB-{rollback_id}.")
    return found


async def active_rollback(*, session: AsyncSession, service: str) -> Rollback | None:
    query = select(Rollback).where(
        Rollback.service == service, Rollback.state.in_([s.value for s in ACTIVE_STATES]))
    return (await session.execute(query)).scalar_one_or_none()


async def list_rollbacks(
    *, session: AsyncSession, service: str | None = None, active_only: bool = False, limit: int = 10,
) -> list[Rollback]:
    query = select(Rollback).order_by(Rollback.requested_at.desc(), Rollback.id.desc()).limit(limit)
    if service:
        query = query.where(Rollback.service == service)
    if active_only:
        query = query.where(Rollback.state.in_([s.value for s in ACTIVE_STATES]))
    return list((await session.execute(query)).scalars())


async def rollbacks_of_incident(*, session: AsyncSession, incident_id: int) -> list[Rollback]:
    query = select(Rollback).where(Rollback.incident_id == incident_id).order_by(Rollback.id)
    return list((await session.execute(query)).scalars())


async def steps_of(*, session: AsyncSession, rollback_id: int, after: int = 0) -> list[RollbackStep]:
    query = (select(RollbackStep).where(RollbackStep.rollback_id == rollback_id, RollbackStep.seq > after)
             .order_by(RollbackStep.seq))
    return list((await session.execute(query)).scalars())


async def approvers_of(*, session: AsyncSession, rollback_id: int) -> list[str]:
    query = (select(RollbackApproval.user_id).where(RollbackApproval.rollback_id == rollback_id)
             .order_by(RollbackApproval.approved_at, RollbackApproval.user_id))
    return list((await session.execute(query)).scalars())


async def incident_for(*, session: AsyncSession, service: str, channel_id: str | None) -> Incident | None:
    """The incident a rollback belongs to: the active incident of the channel the
    command was typed in, else the newest active incident of the service."""
    if channel_id:
        incident = await incidents.find_by_channel(session=session, channel_id=channel_id)
        if incident is not None and incident.is_active:
            return incident
    found = await incidents.list_incidents(session=session, service=service, limit=1)
    return found[0] if found else None


# --------------------------------------------------------------------------- steps


def step_data(rollback: Rollback, step: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "rollback_id": rollback.id, "service": rollback.service, "provider": rollback.provider,
        "from": rollback.current_id, "to": rollback.target_id,
        "state": RollbackStatus(rollback.state).value, "step": step, **(extra or {}),
    }


async def _timeline(session: AsyncSession, rollback: Rollback, step: RollbackStep, now: datetime) -> int | None:
    incident = await session.get(Incident, rollback.incident_id)
    if incident is None:
        return None
    event = await incidents.record_event(
        session=session, incident=incident, kind=EventKind.ROLLBACK, now=now,
        actor=step.actor or SYSTEM_ACTOR, text=step.text, data=step.data, occurred_at=step.at,
        source_key=f"rollback-step:{rollback.id}:{step.seq}")
    return event.id if event is not None else None


async def add_step(
    *,
    session: AsyncSession,
    rollback: Rollback,
    now: datetime,
    step: str,
    text: str,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
) -> RollbackStep:
    """Record one step: its row, its timeline event (inside an incident), its Slack job."""
    rollback.step_count += 1
    rollback.updated_at = now
    session.add(rollback)
    row = RollbackStep(
        rollback_id=rollback.id, seq=rollback.step_count, at=now, actor=actor, step=step,
        state=RollbackStatus(rollback.state).value, text=text[:3000],
        data=step_data(rollback, step, data))
    session.add(row)
    await session.flush()
    if rollback.incident_id is not None:
        row.timeline_event_id = await _timeline(session, rollback, row, now)
        session.add(row)
        if step in CARD_STEPS:
            await jobs.enqueue(session=session, kind=SYNC_CARD, due_at=now, now=now,
                               incident_id=rollback.incident_id)
    await jobs.enqueue(session=session, kind=SLACK_JOB, due_at=now, now=now,
                       payload={"rollback_id": rollback.id}, incident_id=rollback.incident_id,
                       dedup_key=slack_job_key(rollback.id, row.seq), max_attempts=MANY_ATTEMPTS)
    return row


async def _link_incident(session: AsyncSession, rollback: Rollback, incident: Incident, now: datetime) -> None:
    """Attach the rollback to an incident and put its earlier steps on the timeline."""
    rollback.incident_id = incident.id
    session.add(rollback)
    await session.flush()
    for step in await steps_of(session=session, rollback_id=rollback.id):
        if step.timeline_event_id is None:
            step.timeline_event_id = await _timeline(session, rollback, step, now)
            session.add(step)


# --------------------------------------------------------------------------- describing


def deploy_label(deploy: dict[str, Any]) -> str:
    """``dep-2`` (b2c3d4e “Add checkout retries”) from a stored Deploy dict."""
    text = f"`{deploy.get('id')}`"
    sha = (deploy.get("commit_sha") or "")[:7]
    message = (deploy.get("commit_message") or "").strip().splitlines()
    detail = " ".join(p for p in (sha, f"“{message[0][:80]}”" if message else "") if p)
    return f"{text} ({detail})" if detail else text


def _route(rollback: Rollback) -> str:
    return f"{deploy_label(rollback.plan.get('current', {}))} → {deploy_label(rollback.plan.get('target', {}))}"


def provider_name(rollback: Rollback) -> str:
    return provider_label(rollback.provider)


def live_text(rollback: Rollback) -> str:
    """What went live, in mrkdwn: `dep-2`, or `dep-5`, Render's redeploy of `dep-2`,"""
    redeploy = redeploy_of(rollback.provider, rollback.provider_ids or {}, rollback.target_id)
    if redeploy:
        return f"`{redeploy}`, {provider_name(rollback)}'s redeploy of `{rollback.target_id}`,"
    return f"`{rollback.target_id}`"


# --------------------------------------------------------------------------- requesting


async def expire_stale(*, session: AsyncSession, service: str, now: datetime) -> Rollback | None:
    """Expire the service's preview if it outlived its time (so it no longer blocks)."""
    existing = await active_rollback(session=session, service=service)
    if existing is not None and existing.state == RollbackStatus.PREVIEW and existing.expires_at <= now:
        await expire(session=session, rollback=existing, now=now)
        return existing
    return None


async def request_rollback(
    *,
    session: AsyncSession,
    playbook: ServicePlaybook,
    plan: RollbackPlan,
    requested_by: str,
    now: datetime,
    reason: str = "",
    requested_target: str | None = None,
    command_channel_id: str | None = None,
    incident: Incident | None = None,
    ttl: timedelta = PREVIEW_TTL,
) -> Rollback:
    """A new rollback in ``preview``; raises :class:`RollbackBusy` if one is in flight.

    The unique partial index on ``rollbacks.service`` is the real guard: of two
    requests racing (two replicas), the second insert fails and is told about the first.
    """
    await expire_stale(session=session, service=playbook.name, now=now)
    existing = await active_rollback(session=session, service=playbook.name)
    if existing is not None:
        raise RollbackBusy(existing, now=now)
    severity = incident.severity.value if incident is not None else None
    brings_back = await rolled_back_from(session=session, service=playbook.name, deploy_id=plan.target.id)
    needed = playbook.rollback.approvals_needed(Severity(severity) if severity else None)
    rollback = Rollback(
        service=playbook.name, provider=playbook.provider.type, state=RollbackStatus.PREVIEW,
        incident_id=incident.id if incident is not None else None,
        requested_by=requested_by, requested_at=now, reason=clean(reason).strip(),
        requested_target=requested_target, command_channel_id=command_channel_id,
        expires_at=now + ttl, current_id=plan.current.id, target_id=plan.target.id,
        plan=plan.to_dict(), severity=severity,
        approvals_needed=max(needed, 1) if brings_back is not None else needed,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(rollback)
            await session.flush()
    except IntegrityError:
        existing = await active_rollback(session=session, service=playbook.name)
        if existing is None:
            raise
        raise RollbackBusy(existing, now=now) from None
    where = f" in {incident.key}" if incident is not None else ""
    text = (f"<@{requested_by}> asked to roll back *{rollback.service}* ({provider_name(rollback)}){where}: "
            f"{_route(rollback)}")
    if rollback.reason:
        text += f". Reason: {rollback.reason}"
    if brings_back is not None:
        text += f". :warning: {brings_back_text(rollback, brings_back)}"
    await add_step(session=session, rollback=rollback, now=now, step="requested", text=text,
                   actor=requested_by, data={"reason": rollback.reason,
                                             "approvals_needed": rollback.approvals_needed,
                                             "brings_back": brings_back.key if brings_back else None})
    await jobs.enqueue(session=session, kind=EXPIRE_JOB, due_at=rollback.expires_at, now=now,
                       payload={"rollback_id": rollback.id}, dedup_key=f"rollback:{rollback.id}:expire")
    return rollback


# --------------------------------------------------------------------------- deploys rolled back from


async def rolled_back_from(*, session: AsyncSession, service: str, deploy_id: str,
                           before: int | None = None) -> Rollback | None:
    """The latest rollback of ``service`` that moved it away from ``deploy_id`` (it went live),
    or None; ``before``: only rollbacks older than that rollback id."""
    query = select(Rollback).where(Rollback.service == service, Rollback.current_id == deploy_id,
                                   Rollback.live_at.is_not(None))
    if before is not None:
        query = query.where(Rollback.id < before)
    return (await session.execute(query.order_by(Rollback.live_at.desc()).limit(1))).scalar_one_or_none()


async def deploys_to_skip(*, session: AsyncSession, service: str, now: datetime) -> dict[str, str]:
    """Deploys Firebreak rolled ``service`` back FROM, with why: never a default target
    (``/rollback <service>`` skips them like failed builds and says so)."""
    query = select(Rollback).where(Rollback.service == service, Rollback.live_at.is_not(None)) \
        .order_by(Rollback.live_at)
    skip: dict[str, str] = {}
    for earlier in (await session.execute(query)).scalars():
        skip[earlier.current_id] = (f"{earlier.key} rolled back from it "
                                    f"{format_duration(now - (earlier.live_at or now))} ago")
    return skip


def brings_back_text(rollback: Rollback, earlier: Rollback) -> str:
    return (f"`{rollback.target_id}` is the deploy {earlier.key} rolled back FROM: this brings it back, "
            "so another owner must press *Approve* first, whatever the severity")


async def set_preview_message(
    *, session: AsyncSession, rollback: Rollback, channel_id: str, message_ts: str, now: datetime
) -> None:
    """The preview is posted: its message is the thread of every later step."""
    rollback.channel_id = channel_id
    rollback.message_ts = message_ts
    # The preview itself shows the "requested" step(s) recorded before it was posted.
    rollback.slack_posted = max(rollback.slack_posted, 1)
    rollback.updated_at = now
    session.add(rollback)


async def preview_failed(*, session: AsyncSession, rollback: Rollback, now: datetime, error: str) -> None:
    """The preview could not be posted: the rollback ends so that it blocks nothing."""
    await finish(session=session, rollback=rollback, state=RollbackStatus.CANCELED, now=now,
                 reason="preview_failed",
                 text=f"The preview could not be posted in Slack ({error}); nothing was rolled back.")


# --------------------------------------------------------------------------- clicks


def _require_preview(rollback: Rollback) -> None:
    state = RollbackStatus(rollback.state)
    if state == RollbackStatus.PREVIEW:
        return
    if state in (RollbackStatus.TRIGGERING, RollbackStatus.ROLLING_BACK, RollbackStatus.CHECKING):
        raise RollbackRefused(f"{rollback.key} was already confirmed by <@{rollback.confirmed_by}> "
                              f"and is {state.label}.")
    if state == RollbackStatus.EXPIRED:
        raise RollbackRefused(f"This preview expired; nothing was rolled back. Run "
                              f"`/rollback {rollback.service}` again for a fresh one.")
    by = f" by <@{rollback.finished_by}>" if rollback.finished_by else ""
    raise RollbackRefused(f"{rollback.key} is already {state.label}{by}.")


async def _expired(session: AsyncSession, rollback: Rollback, now: datetime) -> ActionResult | None:
    if rollback.expires_at > now:
        return None
    await expire(session=session, rollback=rollback, now=now)
    return ActionResult(rollback, False,
                        f"This preview expired {format_duration(now - rollback.expires_at)} ago; nothing "
                        f"was rolled back. Run `/rollback {rollback.service}` again for a fresh one.",
                        slack_job_key(rollback.id, rollback.step_count))


def owners_text(playbook: ServicePlaybook) -> str:
    people = [f"<@{u}>" for u in playbook.owner_user_ids]
    groups = [f"<!subteam^{g}>" for g in playbook.owner_group_ids]
    return ", ".join(people + groups) or "nobody"


async def approve(
    *, session: AsyncSession, rollback: Rollback, playbook: ServicePlaybook, actor: str,
    is_owner: bool, now: datetime,
) -> ActionResult:
    """An owner's approval; the one that completes a confirmed preview's approvals starts it."""
    _require_preview(rollback)
    if not is_owner:
        raise RollbackRefused(f"Only the owners of `{rollback.service}` ({owners_text(playbook)}) may "
                              "approve its rollback.")
    if expired := await _expired(session, rollback, now):
        return expired
    if actor == rollback.confirmed_by:
        raise RollbackRefused(f"You confirmed {rollback.key}, so your approval would not count: another "
                              "owner must press *Approve*.")
    approvers = await approvers_of(session=session, rollback_id=rollback.id)
    if actor in approvers:
        raise RollbackRefused("You approved this rollback already.")
    needed = await approvals_needed(session=session, rollback=rollback, playbook=playbook)
    if needed == 0:
        raise RollbackRefused("This rollback needs no approval: an owner can press Confirm.")
    rollback.approvals_needed = needed  # the incident's severity may have changed since the preview
    session.add(RollbackApproval(rollback_id=rollback.id, user_id=actor, approved_at=now))
    await session.flush()
    counted = [u for u in [*approvers, actor] if u != rollback.confirmed_by]
    remaining = max(0, needed - len(counted))
    if remaining:
        more = f"{remaining} more approval{'s' if remaining != 1 else ''} needed"
    elif rollback.confirmed_by:
        more = f"<@{rollback.confirmed_by}> confirmed it, so it starts now"
    else:
        more = "an owner other than the approvers may now Confirm"
    await add_step(session=session, rollback=rollback, now=now, step="approved", actor=actor,
                   text=f"<@{actor}> approved the rollback of *{rollback.service}* ({len(counted)} of {needed}; "
                        f"{more}).",
                   data={"approvals": len(counted), "approvals_needed": needed})
    if rollback.confirmed_by and not remaining:
        started = await _start(session=session, rollback=rollback, approvers=counted, now=now)
        return ActionResult(rollback, True, f"You approved {rollback.key}, the last approval it needed. "
                                            f"<@{rollback.confirmed_by}> had confirmed it: " + started,
                            slack_job_key(rollback.id, rollback.step_count), starts=True)
    return ActionResult(rollback, True, f"You approved {rollback.key}: {more}.",
                        slack_job_key(rollback.id, rollback.step_count))


async def approvals_needed(*, session: AsyncSession, rollback: Rollback, playbook: ServicePlaybook) -> int:
    """Approvals at the severity of the rollback's incident now (P2 outside one), and at
    least one when the target is a deploy an earlier rollback moved away from."""
    incident = await _incident_now(session, rollback)
    needed = playbook.rollback.approvals_needed(incident.severity if incident is not None else None)
    if needed == 0 and await rolled_back_from(session=session, service=rollback.service,
                                              deploy_id=rollback.target_id, before=rollback.id):
        return 1
    return needed


async def _incident_now(session: AsyncSession, rollback: Rollback) -> Incident | None:
    if rollback.incident_id is not None:
        incident = await session.get(Incident, rollback.incident_id)
        if incident is not None and incident.is_active:
            return incident
    return await incident_for(session=session, service=rollback.service, channel_id=None)


async def incident_note(*, session: AsyncSession, rollback: Rollback) -> str | None:
    """Why a preview's incident no longer applies, or None: the incident it was previewed in
    was resolved, so confirming opens a new P2 incident and P2's approvals apply."""
    if rollback.incident_id is None or await _incident_now(session, rollback) is not None:
        return None
    previous = await session.get(Incident, rollback.incident_id)
    if previous is None or previous.is_active:
        return None
    return (f"{previous.key} is resolved: outside an open incident P2 approvals apply, and the rollback "
            "would open a new P2 incident")


async def confirm(
    *, session: AsyncSession, rollback: Rollback, playbook: ServicePlaybook, actor: str,
    is_owner: bool, now: datetime,
) -> ActionResult:
    """Confirm a preview. With every approval it needs in (the confirmer's own never counts),
    the rollback starts; else it starts with the approval that completes them, without a
    second click. Guarded by the row lock and the state."""
    _require_preview(rollback)
    if not is_owner:
        raise RollbackRefused(f"Only the owners of `{rollback.service}` ({owners_text(playbook)}) may "
                              "confirm its rollback. Nothing was done.")
    if expired := await _expired(session, rollback, now):
        return expired
    if rollback.confirmed_by and rollback.confirmed_by != actor:
        missing = await _missing_approvals(session, rollback, playbook)
        raise RollbackRefused(f"{rollback.key} is already confirmed by <@{rollback.confirmed_by}> and waits for "
                              f"{missing} approval{'s' if missing != 1 else ''}: press *Approve* to give yours.")
    first = rollback.confirmed_by is None
    rollback.confirmed_by = actor
    session.add(rollback)
    needed = await approvals_needed(session=session, rollback=rollback, playbook=playbook)
    rollback.approvals_needed = needed
    approvers = [u for u in await approvers_of(session=session, rollback_id=rollback.id) if u != actor]
    if len(approvers) >= needed:
        started = await _start(session=session, rollback=rollback, approvers=approvers, now=now)
        return ActionResult(rollback, True, f"You confirmed {rollback.key}: " + started,
                            slack_job_key(rollback.id, rollback.step_count), starts=True)
    missing = needed - len(approvers)
    why = await incident_note(session=session, rollback=rollback)
    reason = f" ({why})" if why else ""
    if first:
        await add_step(session=session, rollback=rollback, now=now, step="confirm_waiting", actor=actor,
                       text=f"<@{actor}> confirmed the rollback of *{rollback.service}*; it starts as soon as "
                            f"{missing} more owner{'s' if missing != 1 else ''} approve{reason}.",
                       data={"approvals": len(approvers), "approvals_needed": needed})
    return ActionResult(
        rollback, True,
        f"{waiting_text(rollback, missing)}{reason}. {rollback.key} starts as soon as "
        f"{'another owner presses' if missing == 1 else f'{missing} other owners press'} *Approve*; "
        "nobody needs to press Confirm again.",
        slack_job_key(rollback.id, rollback.step_count) if first else None)


async def _missing_approvals(session: AsyncSession, rollback: Rollback, playbook: ServicePlaybook) -> int:
    needed = await approvals_needed(session=session, rollback=rollback, playbook=playbook)
    approvers = [u for u in await approvers_of(session=session, rollback_id=rollback.id)
                 if u != rollback.confirmed_by]
    return max(0, needed - len(approvers))


async def _start(*, session: AsyncSession, rollback: Rollback, approvers: list[str], now: datetime) -> str:
    """Confirmed and approved: the only way to TRIGGERING (the trigger job re-checks what is live).
    Returns what happens, for the person whose click started it."""
    actor = rollback.confirmed_by
    assert actor is not None
    incident = await _incident_now(session, rollback)
    opened = False
    if incident is None:
        title = f"Rollback of {rollback.service}" + (f": {rollback.reason}" if rollback.reason else "")
        result = await incidents.open_incident(
            session=session, severity=Severity.P2, title=title[:150], reporter_id=actor, now=now,
            service=rollback.service)
        incident, opened = result.incident, True
    if rollback.incident_id != incident.id:
        await _link_incident(session, rollback, incident, now)
    rollback.state = RollbackStatus.TRIGGERING
    rollback.confirmed_at = now  # the rollback starts now; the trigger's deadline counts from here
    rollback.severity = incident.severity.value
    session.add(rollback)
    text = (f"<@{actor}> confirmed the rollback of *{rollback.service}* ({provider_name(rollback)}): "
            f"{_route(rollback)}")
    if approvers:
        text += f"; approved by {', '.join(f'<@{a}>' for a in approvers)}"
    if opened:
        text += f". {incident.key} ({incident.severity.value}) was opened for it"
    else:
        text += f", in {incident.key}"
    await add_step(session=session, rollback=rollback, now=now, step="confirmed", actor=actor,
                   text=text + ".", data={"approvers": approvers, "incident": incident.key,
                                          "incident_opened": opened})
    await jobs.enqueue(session=session, kind=TRIGGER_JOB, due_at=now, now=now,
                       payload={"rollback_id": rollback.id}, incident_id=incident.id,
                       dedup_key=trigger_job_key(rollback.id), max_attempts=MANY_ATTEMPTS)
    return (f"asking {provider_name(rollback)} to roll *{rollback.service}* back "
            f"(in {incident.key}).")


async def cancel(
    *, session: AsyncSession, rollback: Rollback, playbook: ServicePlaybook, actor: str,
    is_owner: bool, now: datetime,
) -> ActionResult:
    state = RollbackStatus(rollback.state)
    if state in (RollbackStatus.TRIGGERING, RollbackStatus.ROLLING_BACK, RollbackStatus.CHECKING):
        raise RollbackRefused(
            f"{rollback.key} was confirmed by <@{rollback.confirmed_by}> and is {state.label}: the "
            "provider's rollback cannot be stopped half-way. Firebreak keeps following it.")
    _require_preview(rollback)
    if not (is_owner or actor == rollback.requested_by):
        raise RollbackRefused(f"Only the owners of `{rollback.service}` or <@{rollback.requested_by}>, "
                              "who asked for it, may cancel this rollback.")
    await finish(session=session, rollback=rollback, state=RollbackStatus.CANCELED, now=now, actor=actor,
                 reason="canceled", text=f"<@{actor}> canceled the rollback of *{rollback.service}*; "
                                         "nothing was rolled back.")
    return ActionResult(rollback, True, f"You canceled {rollback.key}.",
                        slack_job_key(rollback.id, rollback.step_count))


async def expire(*, session: AsyncSession, rollback: Rollback, now: datetime) -> bool:
    if rollback.state != RollbackStatus.PREVIEW or rollback.expires_at > now:
        return False
    ttl = format_duration(rollback.expires_at - rollback.requested_at)
    await finish(session=session, rollback=rollback, state=RollbackStatus.EXPIRED, now=now,
                 reason="expired",
                 text=f"The preview of the rollback of *{rollback.service}* expired after {ttl} without "
                      f"confirmation; nothing was rolled back. Run `/rollback {rollback.service}` again.")
    return True


# --------------------------------------------------------------------------- the flow's steps


async def finish(
    *,
    session: AsyncSession,
    rollback: Rollback,
    state: RollbackStatus,
    now: datetime,
    text: str,
    reason: str | None = None,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
) -> RollbackStep:
    """End a rollback (succeeded, failed, canceled, expired): the one final step."""
    rollback.state = state
    rollback.finished_at = now
    rollback.finished_by = actor
    rollback.failure_reason = reason if state != RollbackStatus.SUCCEEDED else None
    rollback.outcome = text[:2000]
    step = {RollbackStatus.SUCCEEDED: "succeeded", RollbackStatus.FAILED: "failed",
            RollbackStatus.CANCELED: "canceled", RollbackStatus.EXPIRED: "expired"}[state]
    return await add_step(session=session, rollback=rollback, now=now, step=step, text=text, actor=actor,
                          data={"reason": reason, **(data or {})})


async def claim_trigger_attempt(
    *, session: AsyncSession, rollback: Rollback, plan: RollbackPlan, now: datetime
) -> bool:
    """Record, before the provider is asked, that it is about to be (compare-and-set).

    Commit this before the request: whoever finds ``trigger_attempted_at`` set later
    (a retry, another replica, a restarted process) reads the provider's state
    instead of asking again. False if another worker got there first.
    """
    result = await session.execute(
        update(Rollback)
        .where(Rollback.id == rollback.id, Rollback.state == RollbackStatus.TRIGGERING.value,
               Rollback.trigger_attempts == rollback.trigger_attempts, Rollback.triggered_at.is_(None))
        .values(trigger_attempted_at=now, trigger_attempts=rollback.trigger_attempts + 1,
                trigger_outcome=None, plan=plan.to_dict(), updated_at=now))
    return bool(result.rowcount)


async def record_trigger_problem(
    *, session: AsyncSession, rollback: Rollback, outcome: str, text: str, now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    """An ambiguous or failed trigger (``outcome``: ambiguous | unavailable)."""
    rollback.trigger_outcome = outcome
    await add_step(session=session, rollback=rollback, now=now, step=f"trigger_{outcome}", text=text,
                   data={"attempt": rollback.trigger_attempts, **(data or {})})


async def record_triggered(
    *, session: AsyncSession, rollback: Rollback, handle: RollbackHandle, now: datetime,
    found: bool = False, first_poll_in: timedelta = timedelta(seconds=3),
) -> None:
    """The provider started the rollback: follow it with a durable job holding the handle."""
    rollback.handle = handle.to_dict()
    rollback.provider_ids = {**(rollback.provider_ids or {}), **dict(handle.ids)}
    rollback.trigger_outcome = "sent"
    rollback.triggered_at = now
    rollback.state = RollbackStatus.ROLLING_BACK
    redeploy = redeploy_of(rollback.provider, handle.ids, rollback.target_id)
    ids = ", ".join(f"{k} `{v}`" for k, v in handle.ids.items()
                    if v and not k.endswith("_at") and v != redeploy) or ("" if redeploy else "no id yet")
    how = ("found in its history after the lost answer (it was NOT sent again)" if found
           else "accepted the request")
    await add_step(session=session, rollback=rollback, now=now, step="triggered",
                   text=f"{provider_name(rollback)} {how}: rolling *{rollback.service}* back to "
                        f"`{rollback.target_id}`"
                        + (f" as `{redeploy}`, its redeploy of `{rollback.target_id}`" if redeploy else "")
                        + (f" ({ids})." if ids else "."),
                   data={"provider_ids": dict(handle.ids), "found_after_ambiguity": found})
    await jobs.enqueue(session=session, kind=FOLLOW_JOB, due_at=now + first_poll_in, now=now,
                       payload={"rollback_id": rollback.id, "handle": handle.to_dict()},
                       incident_id=rollback.incident_id, dedup_key=follow_job_key(rollback.id),
                       max_attempts=MANY_ATTEMPTS)


async def record_progress(
    *, session: AsyncSession, rollback: Rollback, progress: RollbackProgress, now: datetime
) -> bool:
    """A poll's answer; a step only when the provider's state changed. True if it did."""
    rollback.follow_errors = 0
    rollback.provider_ids = {**(rollback.provider_ids or {}), **dict(progress.provider_ids)}
    changed = (progress.raw_status or progress.state.value) != rollback.provider_status
    rollback.provider_status = (progress.raw_status or progress.state.value)[:60]
    rollback.provider_detail = progress.detail[:500]
    rollback.updated_at = now
    session.add(rollback)
    if changed and not progress.terminal:
        await add_step(session=session, rollback=rollback, now=now, step="provider_state",
                       text=progress.detail,
                       data={"provider_state": progress.state.value, "provider_status": progress.raw_status,
                             "provider_ids": dict(progress.provider_ids)})
    return changed


async def record_follow_error(
    *, session: AsyncSession, rollback: Rollback, error: str, now: datetime
) -> None:
    """A poll that failed after the provider layer's retries; said once per streak."""
    rollback.follow_errors += 1
    rollback.updated_at = now
    session.add(rollback)
    if rollback.follow_errors == 1:
        await add_step(session=session, rollback=rollback, now=now, step="provider_unreachable",
                       text=f"{error} Firebreak keeps following the rollback.", data={"error": error[:300]})


async def record_live(
    *, session: AsyncSession, rollback: Rollback, progress: RollbackProgress, playbook: ServicePlaybook,
    now: datetime,
) -> None:
    rollback.live_at = now
    rollback.provider_ids = {**(rollback.provider_ids or {}), **dict(progress.provider_ids)}
    rollback.provider_status = (progress.raw_status or progress.state.value)[:60]
    rollback.provider_detail = progress.detail[:500]
    took = format_duration(now - (rollback.triggered_at or now))
    check = playbook.health_check
    live = {"provider_ids": dict(progress.provider_ids),
            "redeploy_id": redeploy_of(rollback.provider, rollback.provider_ids, rollback.target_id)}
    if check is None:
        rollback.state = RollbackStatus.CHECKING  # momentarily: finish() moves it on
        await add_step(session=session, rollback=rollback, now=now, step="live",
                       text=f"{progress.detail.rstrip('.')} (after {took}).", data=live)
        await finish(session=session, rollback=rollback, state=RollbackStatus.SUCCEEDED, now=now,
                     text=f":white_check_mark: Rollback of *{rollback.service}* succeeded: {live_text(rollback)} "
                          f"is live. No health check is configured for {rollback.service}, so none was run.",
                     data={"health": "not_configured"})
        return
    rollback.state = RollbackStatus.CHECKING
    rollback.health_started_at = now
    await add_step(session=session, rollback=rollback, now=now, step="live",
                   text=f"{progress.detail.rstrip('.')} (after {took}). Health check: `{check.url}` must answer "
                        f"{check.expect_status} for {format_duration(check.settle)}.",
                   data={**live, "health_url": check.url})


async def record_health_sample(
    *, session: AsyncSession, rollback: Rollback, playbook: ServicePlaybook, ok: bool, detail: str,
    now: datetime, grace: timedelta,
) -> str:
    """One health sample: ``"passed"``, ``"failed"`` (the rollback ends) or ``"waiting"``."""
    check = playbook.health_check
    assert check is not None
    previous_detail = rollback.health_detail
    rollback.health_samples += 1
    rollback.health_detail = detail[:500]
    rollback.updated_at = now
    session.add(rollback)
    started = rollback.health_started_at or now
    if ok:
        if rollback.health_ok_since is None:
            rollback.health_ok_since = now
        if now - rollback.health_ok_since >= check.settle:
            span = format_duration(now - rollback.health_ok_since)
            verdict = (f"{check.url} answered {check.expect_status} to every check for {span} "
                       f"({rollback.health_samples} checks)")
            await finish(session=session, rollback=rollback, state=RollbackStatus.SUCCEEDED, now=now,
                         text=f":white_check_mark: Rollback of *{rollback.service}* succeeded: {live_text(rollback)} "
                              f"is live and `{check.url}` answered {check.expect_status} to every check for "
                              f"{span} ({rollback.health_samples} checks)."
                              " When the service is stable, mark the incident mitigated (`/incident mitigated`).",
                         data={"health_samples": rollback.health_samples, "health_url": check.url,
                               "health": "passed", "health_detail": verdict})
            return "passed"
        return "waiting"
    rollback.health_ok_since = None
    if now - started < grace:
        if previous_detail != rollback.health_detail:  # said once per kind of failure
            await add_step(session=session, rollback=rollback, now=now, step="health_waiting",
                           text=f"Not healthy yet: `{check.url}` {detail} (expected {check.expect_status}); "
                                f"waiting up to {format_duration(grace)} for it to warm up.",
                           data={"health_url": check.url})
        return "waiting"
    await finish(session=session, rollback=rollback, state=RollbackStatus.FAILED, now=now, reason="unhealthy",
                 text=f":x: Rollback of *{rollback.service}* FAILED its health check: {live_text(rollback)} is live "
                      f"but `{check.url}` {detail} (expected {check.expect_status}) "
                      f"{format_duration(now - started)} after going live. The service is still unhealthy: "
                      "look at the provider's logs, or roll back further with "
                      f"`/rollback {rollback.service} to <deploy-id>`.",
                 data={"health_samples": rollback.health_samples, "health_url": check.url, "health": "failed",
                       "health_detail": f"{check.url} {detail} (expected {check.expect_status}) "
                                        f"{format_duration(now - started)} after going live"})
    return "failed"
