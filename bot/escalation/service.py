"""Escalation in the database: plans, level jobs, page records. No Slack or pager I/O here.

Every function takes the caller's session (the caller owns the transaction) and
an explicit ``now``. The I/O (sending pages, posting in channels, mirroring
acknowledgements at PagerDuty/Opsgenie) happens in the job handlers of
:mod:`bot.escalation.engine`.

How an incident's escalation runs, as jobs (``bot.jobs``):

``escalation.plan``
    enqueued by the lifecycle subscriber below, in the transaction that opens
    the incident or changes its severity; its handler calls :func:`plan_escalation`,
    which enqueues one ``escalation.level`` job per level and repeat, due at
    ``origin + after (+ n × interval)``, plus the response-deadline check and
    the status-update reminder.
``escalation.level``
    pages the level's targets (see the engine); each recipient is paged in its
    own transaction holding the incident's row lock, after :func:`page_gate` said
    the level is still live and this recipient was not paged for it yet, and
    after :func:`claim_page_attempt` committed that the page is about to go out.
Acknowledging
    cancels the pending level jobs and marks the plan stopped, in the
    acknowledging transaction itself; a level job already running is stopped by
    the state check under the row lock. Resolving cancels everything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.durations import format_duration
from bot.escalation.models import EscalationPlan, Page, PageAttempt, PageOutcome
from bot.incidents import lifecycle
from bot.incidents import service as incidents
from bot.incidents.models import EventKind, Incident, IncidentState, TimelineEvent
from bot.jobs import service as jobs
from bot.jobs.models import Job, JobState
from bot.playbooks.models import EscalationMatrix, Severity
from bot.playbooks.targets import Target, TargetKind

PLAN = "escalation.plan"
LEVEL = "escalation.level"
MANUAL_PAGE = "escalation.manual_page"
RESPONSE_CHECK = "escalation.response_check"
STATUS_REMINDER = "escalation.status_reminder"
MIRROR = "escalation.mirror"
CHANNEL_POST = "escalation.channel_post"
JOB_KINDS = (PLAN, LEVEL, MANUAL_PAGE, RESPONSE_CHECK, STATUS_REMINDER, MIRROR, CHANNEL_POST)

SYSTEM_ACTOR = incidents.SYSTEM_ACTOR
# Recipients paged by a Slack message, sent again only by a level's own repeats; PagerDuty and
# Opsgenie de-duplicate by their key (a new send carries the new severity).
SLACK_RECIPIENTS = ("user", "channel", "group")


# --- lifecycle: react to incident changes inside their transaction ----------------------


@lifecycle.subscribe
async def escalate_on_incident_events(
    session: AsyncSession, incident: Incident, event: TimelineEvent, now: datetime
) -> None:
    kind = event.kind
    if kind == EventKind.OPENED:
        await _enqueue_plan(session, incident, event, now, reason="opened",
                            severity=event.data.get("severity") or incident.severity.value)
    elif kind == EventKind.SEVERITY_CHANGED:
        await _enqueue_plan(session, incident, event, now, reason="severity_changed",
                            severity=event.data.get("to") or incident.severity.value,
                            upgrade=bool(event.data.get("upgrade")))
    elif kind == EventKind.ACKNOWLEDGED:
        who = f"<@{event.actor}>" if event.actor else "someone"
        await stop_escalation(session=session, incident=incident, now=now,
                              reason=f"acknowledged by {who}", kinds=(LEVEL, RESPONSE_CHECK))
        await jobs.enqueue(session=session, kind=MIRROR, due_at=now, now=now, incident_id=incident.id,
                           payload={"action": "acknowledge", "actor": event.actor},
                           dedup_key=f"{MIRROR}:{event.id}")
    elif kind == EventKind.RESOLVED:
        await stop_escalation(session=session, incident=incident, now=now, reason="resolved",
                              kinds=(PLAN, LEVEL, MANUAL_PAGE, RESPONSE_CHECK, STATUS_REMINDER))
        await jobs.enqueue(session=session, kind=MIRROR, due_at=now, now=now, incident_id=incident.id,
                           payload={"action": "resolve", "actor": event.actor},
                           dedup_key=f"{MIRROR}:{event.id}")
    elif kind == EventKind.REOPENED:
        # Back to "acknowledged": paging does not restart, status reminders do.
        await jobs.enqueue(session=session, kind=STATUS_REMINDER, due_at=now, now=now,
                           incident_id=incident.id, payload={"since": now.isoformat()},
                           dedup_key=f"{STATUS_REMINDER}:{incident.id}:reopened:{event.id}")


async def _enqueue_plan(
    session: AsyncSession, incident: Incident, event: TimelineEvent, now: datetime, *,
    reason: str, severity: str, upgrade: bool = False,
) -> None:
    await jobs.enqueue(
        session=session, kind=PLAN, due_at=now, now=now, incident_id=incident.id,
        payload={"event_id": event.id, "reason": reason, "severity": severity, "upgrade": upgrade},
        dedup_key=f"{PLAN}:{event.id}",
    )


# --- reading and locking ------------------------------------------------------------


async def lock_incident(*, session: AsyncSession, incident_id: int) -> Incident:
    """The incident, row-locked until the end of the transaction (PostgreSQL ``FOR UPDATE``).

    ``bot.incidents.service.acknowledge`` changes the same row, so an
    acknowledgement cannot commit while a page holds this lock, and a page that
    takes the lock after the acknowledgement committed reads the new state. On
    SQLite the transaction's ``BEGIN IMMEDIATE`` gives the same exclusion.
    """
    query = select(Incident).where(Incident.id == incident_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    incident = (await session.execute(query)).scalar_one_or_none()
    if incident is None:
        raise incidents.IncidentNotFound(f"incident id {incident_id} does not exist")
    return incident


async def get_plan(*, session: AsyncSession, incident_id: int) -> EscalationPlan | None:
    return (
        await session.execute(
            select(EscalationPlan).where(EscalationPlan.incident_id == incident_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def plan_row(*, session: AsyncSession, incident: Incident, now: datetime) -> EscalationPlan:
    """The incident's plan row, created (as generation 0, paging nothing) if it has none yet."""
    plan = await get_plan(session=session, incident_id=incident.id)
    if plan is None:
        plan = EscalationPlan(incident_id=incident.id, generation=0, severity=incident.severity,
                              origin_at=incident.opened_at, planned_at=now, stopped_at=now,
                              stop_reason="no escalation planned")
        session.add(plan)
        await session.flush()
    return plan


async def pages_of(
    *, session: AsyncSession, incident_id: int, step_key: str | None = None
) -> list[Page]:
    query = select(Page).where(Page.incident_id == incident_id).order_by(Page.id)
    if step_key is not None:
        query = query.where(Page.step_key == step_key)
    return list((await session.execute(query)).scalars())


# --- planning -------------------------------------------------------------------------


def level_step_key(generation: int, level: int, attempt: int) -> str:
    return f"g{generation}:l{level}:a{attempt}"


def manual_step_key(event_id: int) -> str:
    return f"manual:{event_id}"


@dataclass(frozen=True)
class PlanResult:
    planned_levels: int  # level jobs enqueued (repeats included); 0 when paging was not (re)planned
    cancelled_levels: int
    event: TimelineEvent | None


async def plan_escalation(
    *,
    session: AsyncSession,
    incident: Incident,
    matrix: EscalationMatrix,
    generation: int,
    origin_at: datetime,
    reason: str,
    severity: Severity,
    upgrade: bool,
    now: datetime,
) -> PlanResult:
    """Plan (or re-plan) the incident's escalation from ``matrix``; call with the incident locked.

    ``generation`` is the id of the event this plan comes from. Paging is planned
    when the incident opens, and again on a severity upgrade while nobody has
    acknowledged; a stale request (an older event, or a severity the incident no
    longer has) changes nothing. The response-deadline check and the status
    reminders follow the current severity in every case.
    """
    if incident.severity != severity:
        return PlanResult(0, 0, None)  # a later severity change plans instead
    plan = await get_plan(session=session, incident_id=incident.id)
    if plan is not None and plan.generation >= generation:
        return PlanResult(0, 0, None)
    if incident.state == IncidentState.RESOLVED:
        return PlanResult(0, 0, None)
    # Paging starts when the incident opens; a severity change re-plans it only when it
    # raises the severity, or when the opening's plan never ran (it saw another severity).
    never_planned = plan is None or plan.generation == 0
    pages = incident.state == IncidentState.OPEN and (reason == "opened" or upgrade or never_planned)
    if never_planned:
        origin_at = incident.opened_at  # levels count from the opening
    levels = matrix.levels(severity)
    steps = [PlannedStep(origin_at + step.offset, step.level, step.attempt, tuple(str(t) for t in step.notify))
             for step in matrix.steps(severity)]
    cancelled = 0
    brought_forward: list[PlannedStep] = []
    if pages:
        if not never_planned:  # an upgrade: no page the old plan had due sooner is put off
            steps, brought_forward = keep_earlier_pages(
                steps, await pending_level_steps(session=session, incident_id=incident.id))
        cancelled = await jobs.cancel_jobs(session=session, incident_id=incident.id, kinds=[LEVEL],
                                           now=now)
        if plan is None:
            plan = EscalationPlan(incident_id=incident.id, generation=generation, severity=severity,
                                  origin_at=origin_at, planned_at=now, levels=len(levels))
        else:
            plan.generation, plan.severity, plan.origin_at = generation, severity, origin_at
            plan.planned_at, plan.levels = now, len(levels)
            plan.stopped_at = plan.stop_reason = None
        session.add(plan)
    elif plan is None:
        plan = EscalationPlan(incident_id=incident.id, generation=generation, severity=severity,
                              origin_at=origin_at, planned_at=now, stopped_at=now,
                              stop_reason=f"not paged: {incident.key} was already {incident.state.value}")
        session.add(plan)
    await session.flush()
    await arm_response_check(session=session, incident=incident, matrix=matrix, key=str(generation),
                             now=now)
    await arm_status_reminder(session=session, incident=incident, matrix=matrix, now=now)
    if not pages:
        return PlanResult(0, 0, None)

    for step in steps:
        await jobs.enqueue(
            session=session, kind=LEVEL, due_at=step.due_at, now=now,
            incident_id=incident.id,
            payload={
                "generation": generation, "level": step.level, "attempt": step.attempt,
                "repeats": levels[step.level].repeat if step.level < len(levels) else 0,
                "severity": severity.value,
                "offset_seconds": int((step.due_at - origin_at).total_seconds()),
                "due_at": step.due_at.isoformat(),  # kept when the job is put off
                "targets": list(step.targets),
            },
            dedup_key=f"{LEVEL}:{incident.id}:{level_step_key(generation, step.level, step.attempt)}",
        )
    schedule = ", ".join(
        f"level {index + 1} at +{_offset(level.after)} ({', '.join(str(t) for t in level.notify)})"
        + (f" ×{level.repeat + 1}" if level.repeat else "")
        for index, level in enumerate(levels)
    )
    if reason == "opened" or never_planned:
        text = f"Escalation planned for {severity.value}: {schedule}"
    else:
        text = (f"Severity raised to {severity.value}: escalation re-planned from the "
                f"{severity.value} matrix, counting from the upgrade: {schedule}")
        if brought_forward:
            text += "; kept at the old plan's earlier times: " + ", ".join(
                f"level {step.level + 1} at {_clock_offset(step.due_at - incident.opened_at)} after opening "
                f"({', '.join(step.targets)})" for step in brought_forward)
    event = await incidents.record_event(
        session=session, incident=incident, kind=EventKind.ESCALATION, now=now, actor=SYSTEM_ACTOR,
        text=text,
        data={"action": "planned", "reason": reason, "severity": severity.value,
              "generation": generation, "levels": len(levels), "steps": len(steps),
              "cancelled": cancelled, "origin_at": origin_at.isoformat(),
              "brought_forward": [{"level": step.level + 1, "attempt": step.attempt,
                                   "due_at": step.due_at.isoformat()} for step in brought_forward]},
    )
    return PlanResult(len(steps), cancelled, event)


def _offset(delta: timedelta) -> str:
    return format_duration(delta).replace(" ", "") if delta else "0m"


def _clock_offset(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    return f"+{_offset(delta)}" if seconds >= 60 else f"+{seconds}s"


@dataclass(frozen=True)
class PlannedStep:
    """One notification of a plan: its time, 0-based level and repeat, and targets as written."""

    due_at: datetime
    level: int
    attempt: int
    targets: tuple[str, ...]


async def pending_level_steps(*, session: AsyncSession, incident_id: int) -> list[PlannedStep]:
    """The level steps the current plan still has to send, at the times that plan gave them."""
    rows = await session.execute(
        select(Job).where(Job.incident_id == incident_id, Job.kind == LEVEL,
                          Job.state == JobState.PENDING.value))
    found = []
    for job in rows.scalars():
        payload = job.payload or {}
        due = datetime.fromisoformat(payload["due_at"]) if payload.get("due_at") else job.due_at
        found.append(PlannedStep(utc(due), int(payload.get("level", 0)), int(payload.get("attempt", 0)),
                                 tuple(payload.get("targets") or ())))
    return found


def keep_earlier_pages(new: Sequence[PlannedStep], pending: Iterable[PlannedStep]
                       ) -> tuple[list[PlannedStep], list[PlannedStep]]:
    """The new plan of a severity upgrade, with no target paged later than the old plan had it due.

    For each target of a pending old step, the new plan's first step that notifies it is
    brought forward to the old time if it comes later; a target the new plan never
    notifies keeps its old step (in the new plan's step of the same level and repeat).
    Returns the plan in time order and the steps that were brought forward.
    """
    steps = {(step.level, step.attempt): step for step in new}
    moved: set[tuple[int, int]] = set()
    for old in sorted(pending, key=lambda step: step.due_at):
        for target in old.targets:
            first = min((s for s in steps.values() if target in s.targets),
                        key=lambda s: (s.due_at, s.level, s.attempt), default=None)
            if first is None:
                key = (old.level, old.attempt)
                same = steps.get(key)
                steps[key] = (PlannedStep(old.due_at, old.level, old.attempt, (target,)) if same is None else
                              replace(same, due_at=min(same.due_at, old.due_at), targets=(*same.targets, target)))
                moved.add(key)
            elif first.due_at > old.due_at:
                steps[(first.level, first.attempt)] = replace(first, due_at=old.due_at)
                moved.add((first.level, first.attempt))
    ordered = sorted(steps.values(), key=lambda step: (step.due_at, step.level, step.attempt))
    return ordered, [step for step in ordered if (step.level, step.attempt) in moved]


async def stop_escalation(
    *, session: AsyncSession, incident: Incident, now: datetime, reason: str, kinds: Sequence[str]
) -> int:
    """Cancel the incident's pending jobs of ``kinds`` and mark its plan stopped."""
    cancelled = await jobs.cancel_jobs(session=session, incident_id=incident.id, kinds=kinds, now=now)
    await session.execute(
        update(EscalationPlan)
        .where(EscalationPlan.incident_id == incident.id, EscalationPlan.stopped_at.is_(None))
        .values(stopped_at=now, stop_reason=reason[:200])
    )
    return cancelled


async def page_gate(
    *, session: AsyncSession, incident: Incident, step_key: str, recipient: str, generation: int | None,
    level: int | None = None, attempt: int = 0,
) -> tuple[str | None, Page | None]:
    """May this recipient of this step be paged now? Call with the incident locked.

    Returns ``(stop_reason, existing_page)``: a reason when the step must not page
    any more (acknowledged, resolved, re-planned; a manual page, ``generation``
    None, only stops once the incident is resolved), else the page row when this
    recipient was paged for this step already — or, for a person or channel reached
    in Slack, at the same ``level`` and repeat of an earlier plan (before a severity
    upgrade): nobody gets that DM twice. One query in the common case.
    """
    if generation is None:
        if incident.state == IncidentState.RESOLVED:
            return f"{incident.key} is resolved", None
    elif incident.state != IncidentState.OPEN:
        return f"{incident.key} is {incident.state.value}", None
    paged = (
        select(Page.id).where(Page.incident_id == incident.id, Page.step_key == step_key,
                              Page.recipient == recipient)
        .limit(1).scalar_subquery()
    )
    if generation is None:
        page_id = await session.scalar(select(paged))
    else:
        row = (await session.execute(
            select(EscalationPlan.generation, EscalationPlan.stopped_at, EscalationPlan.stop_reason, paged)
            .where(EscalationPlan.incident_id == incident.id)
        )).first()
        if row is None or row[0] != generation:
            return "the escalation was re-planned", None
        if row[1] is not None:
            return f"the escalation stopped ({row[2]})", None
        page_id = row[3]
        if page_id is None and level is not None and recipient.partition(":")[0] in SLACK_RECIPIENTS:
            page_id = await session.scalar(
                select(Page.id).where(Page.incident_id == incident.id, Page.recipient == recipient,
                                      Page.level == level, Page.attempt == attempt,
                                      Page.generation < generation,
                                      Page.outcome != PageOutcome.FAILED.value).limit(1))
    return None, (await session.get(Page, page_id) if page_id is not None else None)


# --- page attempts -----------------------------------------------------------------------


async def claim_page_attempt(
    *, session: AsyncSession, incident: Incident, step_key: str, recipient: str, now: datetime
) -> PageAttempt:
    """Say that this recipient of this step is about to be paged; call with the incident locked.

    The caller commits before sending: a crash after the send then leaves this
    row behind, and the next try (``sends`` above one) looks for the page first.
    """
    attempt = (await session.execute(
        select(PageAttempt).where(PageAttempt.incident_id == incident.id, PageAttempt.step_key == step_key,
                                  PageAttempt.recipient == recipient)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()
    if attempt is None:
        attempt = PageAttempt(incident_id=incident.id, step_key=step_key, recipient=recipient,
                              key=uuid.uuid4().hex, created_at=now, updated_at=now)
    attempt.sends += 1
    attempt.updated_at = now
    session.add(attempt)
    await session.flush()
    return attempt


async def get_page_attempt(*, session: AsyncSession, attempt_id: int) -> PageAttempt:
    return (await session.execute(
        select(PageAttempt).where(PageAttempt.id == attempt_id).execution_options(populate_existing=True)
    )).scalar_one()


async def defer_page_attempt(*, session: AsyncSession, attempt: PageAttempt, detail: str, now: datetime) -> int:
    """Count one more put-off send of this page; returns how many there were."""
    attempt.deferrals += 1
    attempt.detail = detail[:500]
    attempt.updated_at = now
    session.add(attempt)
    return attempt.deferrals


async def unrecorded_provider_attempts(*, session: AsyncSession, incident_id: int) -> list[str]:
    """PagerDuty/Opsgenie recipients a send was started for but never recorded.

    A crash between the provider's answer and the commit leaves such an attempt;
    when the incident is acknowledged or resolved before the step is tried again,
    that alert may be open at the provider, so it is acknowledged/resolved too.
    """
    recorded = select(Page.id).where(Page.incident_id == PageAttempt.incident_id,
                                     Page.step_key == PageAttempt.step_key,
                                     Page.recipient == PageAttempt.recipient).exists()
    rows = await session.execute(
        select(PageAttempt.recipient).where(PageAttempt.incident_id == incident_id, ~recorded).distinct()
    )
    return sorted(r for r in rows.scalars() if r.partition(":")[0] in PROVIDER_KINDS)


# --- pages -----------------------------------------------------------------------------


def describe_recipient(recipient: str) -> str:
    """How a recipient reads in Slack text: a mention, a channel, or the provider."""
    kind, _, value = recipient.partition(":")
    if kind == "user":
        return f"<@{value}>"
    if kind == "channel":
        return f"<#{value}>"
    if kind == "group":
        return f"<!subteam^{value}>"
    if kind == "pagerduty":
        return f"PagerDuty `{value}`"
    if kind == "opsgenie":
        return f"Opsgenie team `{value}`"
    return f"`{recipient}`"


def _via(target: str, recipient: str, level_label: str) -> str:
    return f"{target}, {level_label}" if target != recipient else level_label


async def record_page(
    *,
    session: AsyncSession,
    incident: Incident,
    step_key: str,
    generation: int | None,
    level: int | None,
    attempt: int,
    target: str,
    recipient: str,
    outcome: PageOutcome,
    detail: str,
    due_at: datetime,
    sent_at: datetime,
    now: datetime,
    provider_ids: dict[str, Any] | None = None,
    message: str | None = None,
    actor: str | None = None,
) -> Page:
    """Store a page's outcome and put it on the timeline (sent, delivered or failed)."""
    page = Page(
        incident_id=incident.id, step_key=step_key, generation=generation, level=level,
        attempt=attempt, target=target, recipient=recipient, outcome=outcome,
        detail=detail[:1000], provider_ids=dict(provider_ids or {}), message=message,
        paged_by=actor if level is None else None,
        due_at=due_at, sent_at=sent_at, finished_at=now,
    )
    session.add(page)
    await session.flush()
    who = describe_recipient(recipient)
    via = _via(target, recipient, page.level_label)
    if actor and level is None:
        via += f" by <@{actor}>"
    if outcome == PageOutcome.FAILED:
        kind, text = EventKind.PAGE_FAILED, f"Page to {who} ({via}) failed: {detail}"
    elif outcome == PageOutcome.DELIVERED:
        kind, text = EventKind.PAGE_DELIVERED, f"Paged {who} ({via})"
    else:
        kind, text = EventKind.PAGE_SENT, f"Page sent to {who} ({via})"
    await incidents.record_event(
        session=session, incident=incident, kind=kind, now=now, actor=actor or SYSTEM_ACTOR, text=text,
        data={"page_id": page.id, "target": target, "recipient": recipient,
              "level": None if level is None else level + 1, "attempt": attempt,
              "step": step_key, "manual": level is None, "outcome": outcome.value,
              "detail": detail[:500], "provider_ids": dict(provider_ids or {}),
              "due_at": due_at.isoformat(), "delay_seconds": round((sent_at - due_at).total_seconds(), 3)},
    )
    return page


@dataclass(frozen=True)
class ManualPageRequest:
    job_id: int
    step_key: str


async def request_manual_page(
    *, session: AsyncSession, incident: Incident, target: Target, message: str, actor: str, now: datetime
) -> ManualPageRequest:
    """Record a manual page request on the timeline and enqueue the job that sends it."""
    if incident.state == IncidentState.RESOLVED:
        raise incidents.InvalidTransition(f"{incident.key} is resolved; reopen it before paging.")
    message = (message or "").strip()
    if len(message) > 3000:
        raise incidents.IncidentError(f"The message is {len(message):,} characters long; the limit is 3,000.")
    note = f": {message}" if message else ""
    event = await incidents.record_event(
        session=session, incident=incident, kind=EventKind.ESCALATION, now=now, actor=actor,
        text=f"<@{actor}> paged {describe_recipient(str(target)) if target.kind is not TargetKind.ONCALL else str(target)}{note}",
        data={"action": "manual_page", "target": str(target), "message": message or None},
    )
    job_id = await jobs.enqueue(
        session=session, kind=MANUAL_PAGE, due_at=now, now=now, incident_id=incident.id,
        payload={"event_id": event.id, "target": str(target), "message": message or None, "actor": actor},
        dedup_key=f"{MANUAL_PAGE}:{event.id}",
    )
    assert job_id is not None  # the event is new, so its key is too
    return ManualPageRequest(job_id, manual_step_key(event.id))


async def acknowledge_from_page(
    *, session: AsyncSession, incident: Incident, actor: str, level: int, attempt: int, now: datetime
) -> bool:
    """The Acknowledge button of a page: acknowledge the incident (call with it locked).

    Returns True when this click acknowledged the incident, False when it was
    acknowledged already (the caller shows by whom).
    """
    if incident.state != IncidentState.OPEN:
        return False
    await incidents.acknowledge(session=session, incident=incident, actor=actor, now=now, via="page")
    pages = [
        page for page in await pages_of(session=session, incident_id=incident.id)
        if page.recipient == f"user:{actor}" and page.outcome != PageOutcome.FAILED
    ]
    clicked = next((p for p in reversed(pages) if p.level == level and p.attempt == attempt), None)
    clicked = clicked or (pages[-1] if pages else None)
    for page in pages:
        page.acknowledged_at, page.acknowledged_by = now, actor
        session.add(page)
    label = clicked.level_label if clicked else (f"level {level + 1}" + (f", repeat {attempt}" if attempt else ""))
    await incidents.record_event(
        session=session, incident=incident, kind=EventKind.PAGE_ACKNOWLEDGED, now=now, actor=actor,
        text=f"<@{actor}> acknowledged the page ({label})",
        data={"page_id": clicked.id if clicked else None, "recipient": f"user:{actor}",
              "target": clicked.target if clicked else None, "via": "page",
              "level": (clicked.level + 1) if clicked and clicked.level is not None else level + 1,
              "attempt": clicked.attempt if clicked else attempt},
    )
    return True


# --- mirroring acknowledgements and resolutions ------------------------------------------

PROVIDER_KINDS = ("pagerduty", "opsgenie")


async def provider_recipients_to_mirror(
    *, session: AsyncSession, incident_id: int, action: str
) -> list[str]:
    """PagerDuty/Opsgenie recipients paged for the incident whose ``action`` is not mirrored yet."""
    column = Page.ack_mirrored_at if action == "acknowledge" else Page.resolve_mirrored_at
    rows = await session.execute(
        select(Page.recipient).where(
            Page.incident_id == incident_id, Page.outcome == PageOutcome.SENT.value, column.is_(None)
        ).distinct()
    )
    return sorted(r for r in rows.scalars() if r.partition(":")[0] in PROVIDER_KINDS)


async def record_mirrored(
    *, session: AsyncSession, incident: Incident, recipient: str, action: str, now: datetime,
    error: str | None = None,
) -> None:
    """Mark ``action`` mirrored at a provider (or record why it could not be) and say so on the timeline."""
    column = "ack_mirrored_at" if action == "acknowledge" else "resolve_mirrored_at"
    await session.execute(
        update(Page).where(Page.incident_id == incident.id, Page.recipient == recipient,
                           Page.outcome == PageOutcome.SENT.value)
        .values({column: now})
    )
    who = describe_recipient(recipient)
    verb = "acknowledged" if action == "acknowledge" else "resolved"
    if error:
        await incidents.record_event(
            session=session, incident=incident, kind=EventKind.PAGE_FAILED, now=now, actor=SYSTEM_ACTOR,
            text=f"Could not mark the page {verb} at {who}: {error}",
            data={"recipient": recipient, "action": action, "detail": error[:500]},
        )
        return
    kind = EventKind.PAGE_ACKNOWLEDGED if action == "acknowledge" else EventKind.ESCALATION
    await incidents.record_event(
        session=session, incident=incident, kind=kind, now=now, actor=SYSTEM_ACTOR,
        text=f"Page {verb} at {who}", data={"recipient": recipient, "action": action, "via": "mirror"},
    )


async def slack_pages_to_close(*, session: AsyncSession, incident_id: int) -> list[Page]:
    """Delivered Slack pages (DMs, channel posts) whose Acknowledge button is still showing."""
    rows = await session.execute(
        select(Page).where(Page.incident_id == incident_id, Page.outcome == PageOutcome.DELIVERED.value,
                           Page.ack_mirrored_at.is_(None)).order_by(Page.id)
    )
    return [page for page in rows.scalars() if page.provider_ids.get("ts")]


async def mark_slack_page_closed(*, session: AsyncSession, page_id: int, now: datetime) -> None:
    await session.execute(update(Page).where(Page.id == page_id).values(ack_mirrored_at=now))


# --- response deadline and status reminders -------------------------------------------------


def response_deadline(*, incident: Incident, matrix: EscalationMatrix) -> datetime:
    return incident.opened_at + matrix.severities[incident.severity].respond_within


async def arm_response_check(
    *, session: AsyncSession, incident: Incident, matrix: EscalationMatrix, key: str, now: datetime
) -> None:
    if incident.acknowledged_at is not None:
        return
    await jobs.enqueue(
        session=session, kind=RESPONSE_CHECK, due_at=response_deadline(incident=incident, matrix=matrix),
        now=now, incident_id=incident.id, dedup_key=f"{RESPONSE_CHECK}:{incident.id}:{key}",
    )


async def check_response_deadline(
    *, session: AsyncSession, incident: Incident, matrix: EscalationMatrix, now: datetime
) -> str | None:
    """Warn once when the severity's ``respond_within`` passed with no acknowledgement.

    Returns the text to post in the channel (None: nothing to say). Call with
    the incident locked.
    """
    if incident.state != IncidentState.OPEN or incident.acknowledged_at is not None:
        return None
    deadline = response_deadline(incident=incident, matrix=matrix)
    if now < deadline:  # the severity changed to a slower one: check again then
        await jobs.enqueue(session=session, kind=RESPONSE_CHECK, due_at=deadline, now=now,
                           incident_id=incident.id,
                           dedup_key=f"{RESPONSE_CHECK}:{incident.id}:at:{int(deadline.timestamp())}")
        return None
    plan = await plan_row(session=session, incident=incident, now=now)
    if plan.respond_warned_at is not None:
        return None
    plan.respond_warned_at = now
    session.add(plan)
    within = format_duration(matrix.severities[incident.severity].respond_within)
    late = format_duration(now - incident.opened_at)
    text = (f":warning: <!here> {incident.key} ({incident.severity.value}) has not been acknowledged "
            f"{late} after it opened; {incident.severity.value} asks for a response within {within}. "
            "Escalation goes on until someone runs `/incident ack`.")
    await incidents.record_event(
        session=session, incident=incident, kind=EventKind.ESCALATION, now=now, actor=SYSTEM_ACTOR,
        text=f"No acknowledgement within {within} ({incident.severity.value} response target)",
        data={"action": "response_overdue", "respond_within_seconds":
              int(matrix.severities[incident.severity].respond_within.total_seconds()),
              "deadline": deadline.isoformat()},
    )
    return text


def status_reminder_due(
    *, incident: Incident, every: timedelta, since: datetime | None = None,
    reminded_at: datetime | None = None,
) -> datetime:
    """When the next status update is expected: ``every`` after the latest of the opening,
    the last update, ``since`` (a reopening) and the last reminder."""
    candidates = (incident.opened_at, incident.last_status_at, since, reminded_at)
    return max(t for t in candidates if t is not None) + every


async def arm_status_reminder(
    *, session: AsyncSession, incident: Incident, matrix: EscalationMatrix, now: datetime,
    since: datetime | None = None,
) -> None:
    """Make sure the next status-update reminder is pending, at the time it is due."""
    every = matrix.severities[incident.severity].status_update_every
    if every is None or incident.state == IncidentState.RESOLVED:
        return
    plan = await plan_row(session=session, incident=incident, now=now)
    due = status_reminder_due(incident=incident, every=every, since=since,
                              reminded_at=plan.status_reminded_at)
    await _enqueue_status_reminder(session, incident, due=max(due, now), now=now, since=since)


async def _enqueue_status_reminder(
    session: AsyncSession, incident: Incident, *, due: datetime, now: datetime, since: datetime | None
) -> None:
    # Keyed by due time: several checks that work out the same time are one job.
    await jobs.enqueue(session=session, kind=STATUS_REMINDER, due_at=due, now=now, incident_id=incident.id,
                       payload={"since": since.isoformat()} if since else {},
                       dedup_key=f"{STATUS_REMINDER}:{incident.id}:{int(due.timestamp())}")


async def status_reminder_step(
    *, session: AsyncSession, incident: Incident, matrix: EscalationMatrix, now: datetime,
    since: datetime | None,
) -> str | None:
    """Run one reminder check: schedule the next one and return the reminder text if one is due.

    Reminder jobs are keyed by their due time, so several pending checks (after
    a severity change, a reopen) converge on one chain instead of repeating.
    """
    if incident.state == IncidentState.RESOLVED:
        return None
    every = matrix.severities[incident.severity].status_update_every
    if every is None:
        return None
    plan = await plan_row(session=session, incident=incident, now=now)
    due = status_reminder_due(incident=incident, every=every, since=since,
                              reminded_at=plan.status_reminded_at)
    text = None
    if now >= due:
        last = incident.last_status_at
        when = f"the last one was {format_duration(now - last)} ago" if last else "there has been none yet"
        text = (f":memo: {incident.key}: time for a status update (`/incident status <text>`): "
                f"{incident.severity.value} asks for one every {format_duration(every)}, and {when}.")
        plan.status_reminded_at = now
        session.add(plan)
        due = now + every
    await _enqueue_status_reminder(session, incident, due=due, now=now, since=since)
    return text


async def enqueue_channel_post(
    *, session: AsyncSession, incident: Incident, text: str, key: str, now: datetime
) -> int | None:
    """Post ``text`` in the incident's channel, as a job (at most once per ``key``)."""
    return await jobs.enqueue(session=session, kind=CHANNEL_POST, due_at=now, now=now,
                              incident_id=incident.id, payload={"text": text},
                              dedup_key=f"{CHANNEL_POST}:{incident.id}:{key}")


def level_summary(*, incident: Incident, pages: Iterable[Page], level: int | None, attempt: int,
                  actor: str | None = None, generation: int | None = None) -> str | None:
    """One channel line for a step: who was paged, and which targets failed (a page of an
    earlier plan, not sent again, says so)."""
    pages = list(pages)

    def earlier(page: Page) -> bool:
        return generation is not None and page.generation is not None and page.generation < generation

    if not pages:
        return None
    reached = [describe_recipient(p.recipient) + (" (paged at this level already)" if earlier(p) else "")
               for p in pages if p.outcome != PageOutcome.FAILED]
    failed = [p for p in pages if p.outcome == PageOutcome.FAILED]
    if level is None:
        head = f":pager: {incident.key}: " + (f"<@{actor}> paged " if actor else "paged ")
    else:
        label = f"level {level + 1}" + (f" (repeat {attempt})" if attempt else "")
        head = f":pager: {incident.key} escalation {label}: paged "
    lines = [head + (", ".join(reached) if reached else "nobody")]
    for page in failed:
        lines.append(f":warning: could not page {describe_recipient(page.recipient)}"
                     f"{'' if page.target == page.recipient else f' ({page.target})'}: {page.detail}"
                     + (" — the other targets were still paged." if level is not None else ""))
    return "\n".join(lines)
