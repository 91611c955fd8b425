"""Storage side of exports: follow-ups, the remembered GitHub issue, and reading
timelines in pages so that no export holds a whole timeline in memory.

Every function takes the caller's session and keyword arguments only; none of
them talks to Slack or GitHub.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db.engine import SessionMaker
from bot.export.models import FollowUp, PostmortemIssue
from bot.incidents import service as incidents
from bot.incidents.models import TEXT_MAX, EventKind, Incident, IncidentState, TimelineEvent
from bot.jobs import service as jobs
from bot.playbooks.models import Severity

PAGE_KINDS = (EventKind.PAGE_SENT, EventKind.PAGE_DELIVERED, EventKind.PAGE_FAILED,
              EventKind.PAGE_ACKNOWLEDGED)
DEFAULT_PAGE_SIZE = 1000
EVENT_COLUMNS = (TimelineEvent.id, TimelineEvent.kind, TimelineEvent.actor, TimelineEvent.text,
                 TimelineEvent.occurred_at, TimelineEvent.recorded_at, TimelineEvent.data)
# The lists in the post-mortem header (pages, rollbacks) stop at this many; the
# timeline table below always has every event.
HEADER_LIST_LIMIT = 500

# Rollback states that mean "the service now runs the older deploy".
ROLLBACK_DONE_STATES = frozenset({"completed", "succeeded", "success", "healthy", "done", "verified"})
AUTO_FOLLOWUP_TEXT = "Revert or fix the change in git"

_SECTION_TAGS = {
    "impact": re.compile(r"^\s*impact\s*[:\-–—]\s*", re.IGNORECASE),
    "root_cause": re.compile(r"^\s*root[\s_-]?cause\s*[:\-–—]\s*", re.IGNORECASE),
    "lessons": re.compile(r"^\s*lessons?(?:\s+learn(?:ed|t))?\s*[:\-–—]\s*", re.IGNORECASE),
}


# --- follow-ups ---------------------------------------------------------------------------


async def add_followup(
    *,
    session: AsyncSession,
    incident: Incident,
    text: str,
    actor: str | None,
    now: datetime,
    owner_id: str | None = None,
    automatic: bool = False,
    source_key: str | None = None,
) -> FollowUp | None:
    """Record an action item and its timeline event in the caller's transaction.

    With ``source_key`` the follow-up is added at most once (None when it exists).
    """
    text = (text or "").strip()
    if not text:
        raise incidents.IncidentError("A follow-up needs some text.")
    if len(text) > TEXT_MAX:
        raise incidents.IncidentError(
            f"The follow-up is {len(text):,} characters long; the limit is {TEXT_MAX:,}.")
    if source_key is not None:
        added = await jobs.insert_ignore(
            session, FollowUp, incident_id=incident.id, text=text, owner_id=owner_id,
            created_by=actor, created_at=now, done=False, automatic=automatic,
            source_key=source_key)
        if not added:
            return None
        followup = (await session.execute(
            select(FollowUp).where(FollowUp.source_key == source_key))).scalar_one()
    else:
        followup = FollowUp(incident_id=incident.id, text=text, owner_id=owner_id, created_by=actor,
                            created_at=now, automatic=automatic)
        session.add(followup)
        await session.flush()
    owner = f" (owner <@{owner_id}>)" if owner_id else ""
    await incidents.record_event(
        session=session, incident=incident, kind=EventKind.FOLLOWUP, now=now, actor=actor,
        text=f"Follow-up: {text}{owner}",
        data={"followup_id": followup.id, "owner": owner_id, "automatic": automatic},
    )
    return followup


async def list_followups(*, session: AsyncSession, incident: Incident) -> list[FollowUp]:
    query = select(FollowUp).where(FollowUp.incident_id == incident.id).order_by(FollowUp.id)
    return list((await session.execute(query)).scalars())


def rollback_completed(event: TimelineEvent) -> bool:
    data = event.data or {}
    return event.kind == EventKind.ROLLBACK and str(data.get("state", "")).lower() in ROLLBACK_DONE_STATES


async def followup_after_rollback(
    session: AsyncSession, incident: Incident, event: TimelineEvent, now: datetime
) -> None:
    """Lifecycle subscriber: a completed rollback leaves the bad change in git; say so."""
    if not rollback_completed(event):
        return
    data = event.data or {}
    service = data.get("service") or incident.service or "the service"
    rollback = data.get("rollback_id") or data.get("id") or f"{service}:{data.get('to')}"
    detail = f"{service} was rolled back"
    if data.get("from") and data.get("to"):
        detail += f" from {data['from']} to {data['to']}"
    owner = event.actor if event.actor and event.actor[:1] in ("U", "W") else None
    await add_followup(
        session=session, incident=incident, text=f"{AUTO_FOLLOWUP_TEXT} ({detail})",
        actor=incidents.SYSTEM_ACTOR, owner_id=owner, now=now, automatic=True,
        source_key=f"rollback:{incident.id}:{rollback}"[:200],
    )


# --- the GitHub issue of an incident --------------------------------------------------------


async def issue_for(*, session: AsyncSession, incident: Incident) -> PostmortemIssue | None:
    return await session.get(PostmortemIssue, incident.id)


async def remember_issue(
    *, session: AsyncSession, incident: Incident, repo: str, number: int, url: str, now: datetime
) -> None:
    stored = await session.get(PostmortemIssue, incident.id)
    if stored is None:
        session.add(PostmortemIssue(incident_id=incident.id, repo=repo, number=number, url=url,
                                    updated_at=now))
    else:
        stored.repo, stored.number, stored.url, stored.updated_at = repo, number, url, now
        session.add(stored)
    await session.flush()


# --- incidents for the web list -------------------------------------------------------------


@dataclass(frozen=True)
class IncidentPage:
    incidents: list[Incident]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


async def search_incidents(
    *,
    session: AsyncSession,
    states: Sequence[IncidentState] = (),
    severities: Sequence[Severity] = (),
    service: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> IncidentPage:
    conditions = []
    if states:
        conditions.append(Incident.state.in_([s.value for s in states]))
    if severities:
        conditions.append(Incident.severity.in_([s.value for s in severities]))
    if service:
        conditions.append(Incident.service == service)
    total = (await session.execute(
        select(func.count()).select_from(Incident).where(*conditions))).scalar_one()
    page = max(1, page)
    query = (select(Incident).where(*conditions).order_by(Incident.number.desc())
             .offset((page - 1) * per_page).limit(per_page))
    found = list((await session.execute(query)).scalars())
    return IncidentPage(found, total, page, per_page)


async def known_services(*, session: AsyncSession) -> list[str]:
    query = select(Incident.service).where(Incident.service.is_not(None)).distinct()
    return sorted(s for s in (await session.execute(query)).scalars() if s)


# --- reading a timeline ---------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineSnapshot:
    """The timeline as it is when an export starts: the export covers exactly these
    events (``id <= max_id``), however many arrive while it is written."""

    count: int
    max_id: int
    first_at: datetime | None
    last_at: datetime | None


async def snapshot(*, session: AsyncSession, incident: Incident) -> TimelineSnapshot:
    row = (await session.execute(
        select(func.count(TimelineEvent.id), func.max(TimelineEvent.id))
        .where(TimelineEvent.incident_id == incident.id))).one()
    count, max_id = int(row[0] or 0), int(row[1] or 0)
    first_at = last_at = None
    if count:
        # Two index lookups rather than MIN/MAX over a column the driver returns naive.
        ordered = select(TimelineEvent.occurred_at).where(TimelineEvent.incident_id == incident.id,
                                                          TimelineEvent.id <= max_id)
        first_at = (await session.execute(
            ordered.order_by(TimelineEvent.occurred_at, TimelineEvent.id).limit(1))).scalar_one()
        last_at = (await session.execute(
            ordered.order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc())
            .limit(1))).scalar_one()
    return TimelineSnapshot(count, max_id, first_at, last_at)


async def iter_timeline(
    *,
    sessions: SessionMaker,
    incident_id: int,
    max_id: int | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    kinds: Sequence[str] | None = None,
    columns: Sequence[Any] = EVENT_COLUMNS,
) -> AsyncIterator[list[Any]]:
    """The timeline in time order, one page (list) at a time.

    Keyset pagination on ``(occurred_at, id)`` (the timeline index): each page is
    one short query in its own session, so memory stays bounded and no
    transaction stays open for the whole export.
    """
    after: tuple[datetime, int] | None = None
    while True:
        # Plain rows (attribute access like the model), not ORM instances: no identity
        # map to fill, several times faster for large timelines.
        query = select(*columns).where(TimelineEvent.incident_id == incident_id)
        if max_id is not None:
            query = query.where(TimelineEvent.id <= max_id)
        if kinds:
            query = query.where(TimelineEvent.kind.in_([str(k) for k in kinds]))
        if after is not None:
            when, last_id = after
            # ``occurred_at >= when`` lets the database seek in the timeline index
            # instead of scanning from the start for every page.
            query = query.where(TimelineEvent.occurred_at >= when,
                                or_(TimelineEvent.occurred_at > when, TimelineEvent.id > last_id))
        query = query.order_by(TimelineEvent.occurred_at, TimelineEvent.id).limit(page_size)
        async with sessions() as session:
            page = list((await session.execute(query)).all())
        if not page:
            return
        yield page
        if len(page) < page_size:
            return
        after = (page[-1].occurred_at, page[-1].id)


async def timeline_page(
    *, session: AsyncSession, incident: Incident, page: int, per_page: int
) -> list[TimelineEvent]:
    return await incidents.timeline(session=session, incident=incident, limit=per_page,
                                    offset=(max(1, page) - 1) * per_page)


async def events_of_kinds(
    *, session: AsyncSession, incident: Incident, kinds: Sequence[str], max_id: int | None = None,
    limit: int = HEADER_LIST_LIMIT,
) -> tuple[list[TimelineEvent], int]:
    """The first ``limit`` events of these kinds in time order, and how many there are."""
    conditions = [TimelineEvent.incident_id == incident.id,
                  TimelineEvent.kind.in_([str(k) for k in kinds])]
    if max_id is not None:
        conditions.append(TimelineEvent.id <= max_id)
    total = (await session.execute(
        select(func.count(TimelineEvent.id)).where(*conditions))).scalar_one()
    found = (await session.execute(
        select(TimelineEvent).where(*conditions)
        .order_by(TimelineEvent.occurred_at, TimelineEvent.id).limit(limit))).scalars()
    return list(found), int(total)


async def actors(*, session: AsyncSession, incident: Incident, max_id: int | None = None) -> list[str]:
    """Everyone who did something on the timeline, in order of first appearance."""
    conditions = [TimelineEvent.incident_id == incident.id, TimelineEvent.actor.is_not(None)]
    if max_id is not None:
        conditions.append(TimelineEvent.id <= max_id)
    query = (select(TimelineEvent.actor, func.min(TimelineEvent.occurred_at).label("first"))
             .where(*conditions).group_by(TimelineEvent.actor).order_by("first"))
    return [row[0] for row in (await session.execute(query)).all()]


async def tagged_sections(
    *, session: AsyncSession, incident: Incident, max_id: int | None = None, limit: int = 200
) -> dict[str, list[str]]:
    """Notes and status updates written ``impact: …``, ``root cause: …``, ``lesson: …``,
    by section, for the post-mortem's headed sections."""
    conditions = [TimelineEvent.incident_id == incident.id,
                  TimelineEvent.kind.in_([EventKind.NOTE.value, EventKind.STATUS_UPDATE.value,
                                          EventKind.PINNED_MESSAGE.value]),
                  or_(func.lower(TimelineEvent.text).like("impact%"),
                      func.lower(TimelineEvent.text).like("root%"),
                      func.lower(TimelineEvent.text).like("lesson%"))]
    if max_id is not None:
        conditions.append(TimelineEvent.id <= max_id)
    rows = (await session.execute(
        select(TimelineEvent.text).where(*conditions)
        .order_by(TimelineEvent.occurred_at, TimelineEvent.id).limit(limit))).scalars()
    found: dict[str, list[str]] = {name: [] for name in _SECTION_TAGS}
    for text in rows:
        for name, tag in _SECTION_TAGS.items():
            match = tag.match(text)
            if match and text[match.end():].strip():
                found[name].append(text[match.end():].strip())
                break
    return found


async def events_by_id(*, session: AsyncSession, ids: Sequence[int]) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for first in range(0, len(ids), 500):
        rows = await session.execute(select(*EVENT_COLUMNS)
                                     .where(TimelineEvent.id.in_(list(ids[first:first + 500]))))
        found.update({row.id: row for row in rows.all()})
    return found


def event_services(events: Sequence[TimelineEvent]) -> list[str]:
    seen: dict[str, None] = {}
    for event in events:
        service = (event.data or {}).get("service")
        if isinstance(service, str) and service:
            seen.setdefault(service, None)
    return list(seen)


def as_plain(value: Any) -> Any:
    """JSON-safe copy of event data (datetimes as ISO strings)."""
    if isinstance(value, dict):
        return {str(k): as_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
