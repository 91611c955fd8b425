"""Incident lifecycle: every change and its timeline event in one transaction.

All functions take the caller's session (the caller owns the transaction) and
an explicit ``now`` from the injected clock. None of them talks to Slack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db.engine import SessionMaker
from bot.incidents import lifecycle
from bot.incidents.models import (
    TEXT_MAX,
    TITLE_MAX,
    Counter,
    EventKind,
    Incident,
    IncidentState,
    Role,
    TimelineEvent,
)
from bot.jobs import service as jobs
from bot.playbooks.models import Severity
from bot.text import clean, is_blank

ACTIVE_STATES = (IncidentState.OPEN, IncidentState.ACKNOWLEDGED, IncidentState.MITIGATED)
SYSTEM_ACTOR = "firebreak"
# A repeated `open` with the same title by the same person while the first
# one's Slack set-up has not finished (or was given up) completes that one instead.
RESUME_WINDOW = timedelta(hours=1)


class IncidentError(Exception):
    """A refusal worded for the person who asked."""


class IncidentNotFound(IncidentError):
    pass


class InvalidTransition(IncidentError):
    pass


@dataclass(frozen=True)
class OpenResult:
    incident: Incident
    created: bool  # False: this request was already handled, or resumed an unfinished open


def _clean(text: str, *, limit: int, what: str) -> str:
    """Typed text as stored: see :mod:`bot.text`; text that shows nothing is no text."""
    text = clean(text).strip()
    if len(text) > limit:
        raise IncidentError(f"The {what} is {len(text):,} characters long; the limit is {limit:,}.")
    return "" if is_blank(text) else text


async def record_event(
    *,
    session: AsyncSession,
    incident: Incident,
    kind: str,
    now: datetime,
    actor: str | None = None,
    text: str = "",
    data: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    source_key: str | None = None,
) -> TimelineEvent | None:
    """Append a timeline event and notify subscribers, in the caller's transaction.

    With ``source_key`` the event is recorded at most once (None if it already was).
    """
    if source_key is not None:
        exists = await session.execute(
            select(TimelineEvent.id).where(TimelineEvent.source_key == source_key)
        )
        if exists.first() is not None:
            return None
    event = TimelineEvent(
        incident_id=incident.id, kind=str(kind), actor=actor, text=text[: TEXT_MAX * 2],
        occurred_at=occurred_at or now, recorded_at=now, data=data or {}, source_key=source_key,
    )
    session.add(event)
    await session.flush()
    await lifecycle.publish(session, incident, event, now)
    return event


async def _next_number(session: AsyncSession) -> int:
    bumped = await session.execute(
        update(Counter).where(Counter.name == "incident").values(value=Counter.value + 1)
        .returning(Counter.value)
    )
    value = bumped.scalar_one_or_none()
    if value is not None:
        return value
    # The migration seeds the counter; if it was lost, start after the highest number
    # in use (ON CONFLICT: a concurrent transaction may be doing the same).
    highest = (await session.execute(select(func.max(Incident.number)))).scalar() or 0
    await jobs.insert_ignore(session, Counter, name="incident", value=highest)
    return await _next_number(session)


async def open_incident(
    *,
    session: AsyncSession,
    severity: Severity,
    title: str,
    reporter_id: str,
    now: datetime,
    service: str | None = None,
    delivery_key: str | None = None,
) -> OpenResult:
    title = _clean(title, limit=TITLE_MAX, what="title")
    if not title:
        raise IncidentError("An incident needs a title.")
    if delivery_key is not None and not await jobs.claim_delivery(
            session=session, key=delivery_key, kind="open", now=now):
        earlier = await jobs.delivery_result(session=session, key=delivery_key)
        if earlier and earlier.startswith("INC-"):
            return OpenResult(await get_incident(session=session, number=int(earlier[4:])), False)
        raise IncidentError("This request was already handled.")
    unfinished = (
        await session.execute(
            select(Incident).where(
                Incident.reporter_id == reporter_id, Incident.title == title,
                Incident.severity == severity.value, Incident.opened_at >= now - RESUME_WINDOW,
                Incident.state != IncidentState.RESOLVED.value,
            ).order_by(Incident.number.desc()).limit(1)
        )
    ).scalar_one_or_none()
    if unfinished is not None and not unfinished.is_provisioned:
        result = OpenResult(unfinished, False)
    else:
        number = await _next_number(session)
        incident = Incident(
            number=number, title=title, severity=severity, service=service,
            reporter_id=reporter_id, opened_at=now, updated_at=now, state=IncidentState.OPEN,
        )
        session.add(incident)
        await session.flush()
        await record_event(
            session=session, incident=incident, kind=EventKind.OPENED, now=now, actor=reporter_id,
            text=f"{incident.key} opened as {severity.value}: {title}",
            data={"severity": severity.value, "service": service, "title": title},
        )
        result = OpenResult(incident, True)
    if delivery_key is not None:
        await jobs.set_delivery_result(session=session, key=delivery_key, result=result.incident.key)
    return result


async def get_incident(
    *, session: AsyncSession, number: int, for_update: bool = False
) -> Incident:
    query = select(Incident).where(Incident.number == number)
    if for_update and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    incident = (await session.execute(query)).scalar_one_or_none()
    if incident is None:
        raise IncidentNotFound(f"There is no incident INC-{number}.")
    return incident


async def wait_for_channel(*, sessions: SessionMaker, number: int, timeout: float,
                           poll: float = 0.05) -> Incident:
    """The incident once its channel exists or its set-up failed, or as it is after ``timeout``
    seconds (another worker may be setting it up)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with sessions() as session:
            incident = await get_incident(session=session, number=number)
        if incident.channel_id or incident.setup_error or asyncio.get_running_loop().time() > deadline:
            return incident
        await asyncio.sleep(poll)


async def find_by_channel(*, session: AsyncSession, channel_id: str) -> Incident | None:
    return (
        await session.execute(select(Incident).where(Incident.channel_id == channel_id))
    ).scalar_one_or_none()


async def resolve_target(
    *, session: AsyncSession, number: int | None, channel_id: str | None, for_update: bool = False
) -> Incident:
    """The incident named by ``INC-n``, or else the one whose channel this is."""
    if number is not None:
        return await get_incident(session=session, number=number, for_update=for_update)
    incident = await find_by_channel(session=session, channel_id=channel_id) if channel_id else None
    if incident is None:
        raise IncidentNotFound(await _not_an_incident_channel(session))
    if for_update:
        return await get_incident(session=session, number=incident.number, for_update=True)
    return incident


async def _not_an_incident_channel(session: AsyncSession) -> str:
    """The refusal for a command typed outside an incident channel, naming an incident that
    exists: the newest open one, else the newest."""
    found = (await list_incidents(session=session, limit=1)
             or await list_incidents(session=session, include_resolved=True, limit=1))
    if not found:
        return ("This channel is not an incident channel, and there are no incidents yet: "
                "open one with `/incident open P1 <title>`.")
    latest = found[0]
    which = "open" if latest.is_active else latest.state.value
    return (f"This channel is not an incident channel: name the incident, e.g. `{latest.key}` "
            f"(the most recent {which} one: “{latest.title}”).")


def _touch(incident: Incident, now: datetime) -> None:
    incident.updated_at = now


async def acknowledge(
    *, session: AsyncSession, incident: Incident, actor: str, now: datetime, via: str = "command"
) -> TimelineEvent:
    if incident.state != IncidentState.OPEN:
        who = f" by <@{incident.acknowledged_by}>" if incident.acknowledged_by else ""
        raise InvalidTransition(f"{incident.key} is already {incident.state.value}{who}.")
    incident.state = IncidentState.ACKNOWLEDGED
    incident.acknowledged_at = now
    incident.acknowledged_by = actor
    _touch(incident, now)
    session.add(incident)
    return await record_event(
        session=session, incident=incident, kind=EventKind.ACKNOWLEDGED, now=now, actor=actor,
        text=f"Acknowledged by <@{actor}>", data={"via": via},
    )


async def _implicit_ack(session: AsyncSession, incident: Incident, actor: str, now: datetime) -> None:
    if incident.acknowledged_at is None:
        await acknowledge(session=session, incident=incident, actor=actor, now=now, via="implicit")


async def change_severity(
    *, session: AsyncSession, incident: Incident, severity: Severity, actor: str, now: datetime
) -> TimelineEvent:
    if not incident.is_active:
        raise InvalidTransition(f"{incident.key} is resolved; reopen it before changing severity.")
    previous = incident.severity
    if previous == severity:
        raise InvalidTransition(f"{incident.key} is already {severity.value}.")
    incident.severity = severity
    _touch(incident, now)
    session.add(incident)
    upgrade = int(severity.value[1]) < int(previous.value[1])  # P0 is the most severe
    return await record_event(
        session=session, incident=incident, kind=EventKind.SEVERITY_CHANGED, now=now, actor=actor,
        text=f"Severity {previous.value} → {severity.value}",
        data={"from": previous.value, "to": severity.value, "upgrade": upgrade},
    )


async def assign_role(
    *, session: AsyncSession, incident: Incident, role: Role, user_id: str, actor: str, now: datetime
) -> TimelineEvent:
    previous = incident.role_holder(role)
    if previous == user_id:
        raise InvalidTransition(f"<@{user_id}> is already the {role.value} of {incident.key}.")
    setattr(incident, f"{role.value}_id", user_id)
    _touch(incident, now)
    session.add(incident)
    return await record_event(
        session=session, incident=incident, kind=EventKind.ROLE_ASSIGNED, now=now, actor=actor,
        text=f"<@{user_id}> is now {role.value}",
        data={"role": role.value, "user": user_id, "previous": previous},
    )


async def add_note(
    *, session: AsyncSession, incident: Incident, text: str, actor: str, now: datetime
) -> TimelineEvent:
    text = _clean(text, limit=TEXT_MAX, what="note")
    if not text:
        raise IncidentError("A note needs some text.")
    return await record_event(
        session=session, incident=incident, kind=EventKind.NOTE, now=now, actor=actor, text=text
    )


async def post_status(
    *, session: AsyncSession, incident: Incident, text: str, actor: str, now: datetime
) -> TimelineEvent:
    text = _clean(text, limit=TEXT_MAX, what="status update")
    if not text:
        raise IncidentError("A status update needs some text.")
    if not incident.is_active:
        raise InvalidTransition(f"{incident.key} is resolved; add a note instead.")
    incident.last_status_at = now
    _touch(incident, now)
    session.add(incident)
    return await record_event(
        session=session, incident=incident, kind=EventKind.STATUS_UPDATE, now=now, actor=actor,
        text=text,
    )


async def mitigate(
    *, session: AsyncSession, incident: Incident, actor: str, now: datetime, text: str = ""
) -> TimelineEvent:
    text = _clean(text, limit=TEXT_MAX, what="text")
    if incident.state not in (IncidentState.OPEN, IncidentState.ACKNOWLEDGED):
        raise InvalidTransition(f"{incident.key} is {incident.state.value}; it cannot be mitigated now.")
    await _implicit_ack(session, incident, actor, now)
    incident.state = IncidentState.MITIGATED
    incident.mitigated_at = now
    _touch(incident, now)
    session.add(incident)
    return await record_event(
        session=session, incident=incident, kind=EventKind.MITIGATED, now=now, actor=actor,
        text=text or f"Mitigated by <@{actor}>",
    )


async def resolve(
    *, session: AsyncSession, incident: Incident, actor: str, now: datetime, summary: str = ""
) -> TimelineEvent:
    summary = _clean(summary, limit=TEXT_MAX, what="summary")
    if incident.state == IncidentState.RESOLVED:
        raise InvalidTransition(f"{incident.key} is already resolved.")
    await _implicit_ack(session, incident, actor, now)
    incident.state = IncidentState.RESOLVED
    incident.resolved_at = now
    if incident.mitigated_at is None:
        incident.mitigated_at = now
    incident.summary = summary or incident.summary
    _touch(incident, now)
    session.add(incident)
    return await record_event(
        session=session, incident=incident, kind=EventKind.RESOLVED, now=now, actor=actor,
        text=summary or f"Resolved by <@{actor}>",
    )


async def reopen(
    *, session: AsyncSession, incident: Incident, actor: str, now: datetime
) -> TimelineEvent:
    if incident.state != IncidentState.RESOLVED:
        raise InvalidTransition(f"{incident.key} is {incident.state.value}, not resolved.")
    # People already worked on it: it goes back to acknowledged, not to paging.
    incident.state = IncidentState.ACKNOWLEDGED
    incident.resolved_at = None
    incident.mitigated_at = None
    _touch(incident, now)
    session.add(incident)
    return await record_event(
        session=session, incident=incident, kind=EventKind.REOPENED, now=now, actor=actor,
        text=f"Reopened by <@{actor}>",
    )


async def record_pinned_message(
    *,
    session: AsyncSession,
    incident: Incident,
    channel_id: str,
    message_ts: str,
    author: str | None,
    text: str,
    pinned_by: str | None,
    now: datetime,
    via: str,
) -> TimelineEvent | None:
    """Add a pinned (or :pushpin:-ed) message with its original time, once per message."""
    occurred = datetime.fromtimestamp(float(message_ts), tz=UTC)  # a Slack ts is Unix time
    return await record_event(
        session=session, incident=incident, kind=EventKind.PINNED_MESSAGE, now=now,
        actor=author, text=text[:TEXT_MAX] or "(message without text)", occurred_at=occurred,
        data={"channel": channel_id, "ts": message_ts, "pinned_by": pinned_by, "via": via},
        source_key=f"pin:{channel_id}:{message_ts}",
    )


async def list_incidents(
    *, session: AsyncSession, include_resolved: bool = False, limit: int = 50,
    states: Sequence[IncidentState] | None = None, severity: Severity | None = None,
    service: str | None = None,
) -> list[Incident]:
    query = select(Incident).order_by(Incident.number.desc()).limit(limit)
    if states:
        query = query.where(Incident.state.in_([s.value for s in states]))
    elif not include_resolved:
        query = query.where(Incident.state.in_([s.value for s in ACTIVE_STATES]))
    if severity is not None:
        query = query.where(Incident.severity == severity.value)
    if service:
        query = query.where(Incident.service == service)
    return list((await session.execute(query)).scalars())


async def timeline(
    *, session: AsyncSession, incident: Incident, limit: int | None = None, offset: int = 0
) -> list[TimelineEvent]:
    query = (
        select(TimelineEvent).where(TimelineEvent.incident_id == incident.id)
        .order_by(TimelineEvent.occurred_at, TimelineEvent.id).offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return list((await session.execute(query)).scalars())


async def latest_events(
    *, session: AsyncSession, incident: Incident, limit: int
) -> tuple[list[TimelineEvent], int]:
    """The newest ``limit`` events in time order, and how many events the timeline has."""
    where = TimelineEvent.incident_id == incident.id
    total = (await session.execute(select(func.count(TimelineEvent.id)).where(where))).scalar_one()
    newest = (await session.execute(
        select(TimelineEvent).where(where)
        .order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc()).limit(limit))).scalars()
    return list(reversed(list(newest))), int(total)
