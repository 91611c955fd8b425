"""Exports as streams: read the incident's facts, then render the timeline page by page.

Nothing here holds a whole timeline: events are read ``page_size`` at a time
(keyset pagination), the names they mention are looked up, their rows rendered
and written, and the page dropped. Memory stays flat from ten events to a
hundred thousand.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.db.engine import SessionMaker, transaction
from bot.export import github, jsonexport, markdown, svg
from bot.export import html as html_export
from bot.export import service as exports
from bot.export.document import (
    MARK_CLASSES,
    EventRow,
    Facts,
    Postmortem,
    build_postmortem,
    describe_event,
    event_row,
)
from bot.export.mrkdwn import convert
from bot.export.names import Names, ids_in_data, is_user_id, mentioned_ids
from bot.export.scrub import Scrubber
from bot.incidents import service as incidents
from bot.incidents.models import EventKind, Incident, TimelineEvent

FORMATS = ("md", "json", "html")
MEDIA_TYPES = {"md": "text/markdown; charset=utf-8", "json": "application/json; charset=utf-8",
               "html": "text/html; charset=utf-8"}
EXTENSIONS = {"md": "md", "json": "json", "html": "html"}
CHUNK_BYTES = 64 * 1024


@dataclass
class Exporter:
    """What an export needs; built by the runtime, the CLI or a test."""

    sessions: SessionMaker
    settings: Settings
    names: Names = field(default_factory=Names)
    clock: Clock = field(default_factory=SystemClock)
    playbooks: Any = None  # bot.playbooks.loader.Playbooks, for severity names and targets
    page_size: int = exports.DEFAULT_PAGE_SIZE

    @property
    def scrub(self) -> Scrubber:
        return Scrubber(self.settings.secret_values())

    @property
    def zone(self):
        return self.settings.display_zone

    def severity_info(self, severity: str) -> tuple[str | None, Any]:
        matrix = getattr(self.playbooks, "escalation", None)
        info = matrix.severities.get(severity) if matrix is not None else None
        if info is None:
            return None, None
        return info.name, info.respond_within


@dataclass(frozen=True)
class Prepared:
    incident: Incident
    snapshot: exports.TimelineSnapshot
    doc: Postmortem


def event_ids(events: Iterable[TimelineEvent]) -> tuple[set[str], set[str]]:
    users: set[str] = set()
    channels: set[str] = set()
    for event in events:
        if is_user_id(event.actor):
            users.add(event.actor)
        for found_users, found_channels in (mentioned_ids(event.text), ids_in_data(event.data)):
            users |= found_users
            channels |= found_channels
    return users, channels


async def prepare(exporter: Exporter, *, number: int) -> Prepared:
    """The incident and everything but the timeline rows, with names looked up."""
    async with exporter.sessions() as session:
        incident = await incidents.get_incident(session=session, number=number)
        snap = await exports.snapshot(session=session, incident=incident)
        rollbacks, rollback_total = await exports.events_of_kinds(
            session=session, incident=incident, kinds=[EventKind.ROLLBACK], max_id=snap.max_id)
        pages, page_total = await exports.events_of_kinds(
            session=session, incident=incident, kinds=exports.PAGE_KINDS, max_id=snap.max_id)
        actors = await exports.actors(session=session, incident=incident, max_id=snap.max_id)
        followups = await exports.list_followups(session=session, incident=incident)
        sections = await exports.tagged_sections(session=session, incident=incident,
                                                 max_id=snap.max_id)
    users = {u for u in (incident.reporter_id, incident.commander_id, incident.comms_id,
                         incident.scribe_id, incident.acknowledged_by) if u}
    users |= {a for a in actors if is_user_id(a)}
    users |= {f.owner_id for f in followups if f.owner_id} | {f.created_by for f in followups
                                                              if is_user_id(f.created_by)}
    channels = {incident.channel_id} if incident.channel_id else set()
    more_users, more_channels = event_ids([*rollbacks, *pages])
    users |= more_users
    channels |= more_channels
    for text in [incident.summary or "", *(f.text for f in followups),
                 *(t for texts in sections.values() for t in texts)]:
        found_users, found_channels = mentioned_ids(text)
        users |= found_users
        channels |= found_channels
    await exporter.names.resolve(users=users, channels=channels)
    name, respond_within = exporter.severity_info(incident.severity.value)
    doc = build_postmortem(
        incident=incident,
        facts=Facts(event_count=snap.count, rollbacks=rollbacks, rollback_total=rollback_total,
                    pages=pages, page_total=page_total, actors=actors, followups=followups,
                    sections=sections),
        names=exporter.names, zone=exporter.zone, scrub=exporter.scrub, now=exporter.clock.now(),
        severity_name=name, respond_within=respond_within,
    )
    return Prepared(incident, snap, doc)


async def row_pages(exporter: Exporter, prepared: Prepared) -> AsyncIterator[list[EventRow]]:
    """The timeline as rendered rows, one database page at a time."""
    scrub = exporter.scrub
    seq = 0
    async for page in exports.iter_timeline(sessions=exporter.sessions,
                                            incident_id=prepared.incident.id,
                                            max_id=prepared.snapshot.max_id,
                                            page_size=exporter.page_size):
        users, channels = event_ids(page)
        await exporter.names.resolve(users=users, channels=channels)
        rows = []
        for event in page:
            seq += 1
            rows.append(event_row(event, seq, exporter.names, exporter.zone, scrub))
        yield rows


async def rows(exporter: Exporter, prepared: Prepared) -> AsyncIterator[EventRow]:
    async for page in row_pages(exporter, prepared):
        for row in page:
            yield row


async def stream(exporter: Exporter, prepared: Prepared, fmt: str) -> AsyncIterator[str]:
    """The export as text chunks (one per page of events, plus header and footer)."""
    doc = prepared.doc
    if fmt == "md":
        yield markdown.header(doc)
        async for page in row_pages(exporter, prepared):
            yield "".join(markdown.event_line(doc, row) for row in page)
        yield markdown.footer(doc)
    elif fmt == "json":
        yield jsonexport.header(doc)
        first = True
        async for page in row_pages(exporter, prepared):
            parts = []
            for row in page:
                parts.append(jsonexport.event_chunk(row, first=first))
                first = False
            yield "".join(parts)
        yield jsonexport.FOOTER
    elif fmt == "html":
        timeline_svg = await build_svg(exporter, prepared)
        async for chunk in html_export.postmortem_page(doc, rows(exporter, prepared),
                                                       timeline_svg=timeline_svg):
            yield chunk
    else:
        raise ValueError(f"unknown export format {fmt!r} (choose md, json or html)")


async def buffered(chunks: AsyncIterator[str], size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """Re-chunk text into UTF-8 blocks of about ``size`` bytes (secrets scrubbed already)."""
    pending: list[bytes] = []
    held = 0
    async for chunk in chunks:
        data = chunk.encode("utf-8")
        pending.append(data)
        held += len(data)
        if held >= size:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)


async def write(exporter: Exporter, *, number: int, fmt: str,
                sink: Callable[[bytes], Awaitable[None] | None]) -> Prepared:
    """Prepare and stream one export into ``sink`` (sync or async), block by block."""
    prepared = await prepare(exporter, number=number)
    async for block in buffered(stream(exporter, prepared, fmt)):
        result = sink(block)
        if inspect.isawaitable(result):
            await result
    return prepared


async def render_text(exporter: Exporter, *, number: int, fmt: str) -> str:
    """The whole export as one string (small incidents and tests)."""
    parts: list[bytes] = []
    await write(exporter, number=number, fmt=fmt, sink=parts.append)
    return b"".join(parts).decode("utf-8")


async def github_body(exporter: Exporter, prepared: Prepared, *, full_timeline_at: str) -> str:
    """The Markdown body of the GitHub issue: within GitHub's size limit."""
    first_rows: list[EventRow] = []
    budget = markdown.GITHUB_BODY_LIMIT
    used = 0
    async for page in row_pages(exporter, prepared):
        for row in page:
            line = markdown.event_line(prepared.doc, row)
            used += len(line)
            if used > budget:
                break
            first_rows.append(row)
        if used > budget:
            break
    return markdown.render_limited(prepared.doc, first_rows, full_timeline_at=full_timeline_at)


async def build_svg(exporter: Exporter, prepared: Prepared, *, now: datetime | None = None) -> str:
    """The SVG timeline: phases from the incident, marks from the events (merged per pixel)."""
    incident, snap = prepared.incident, prepared.snapshot
    now = now or exporter.clock.now()
    scale = svg.Scale.covering(incident.opened_at, incident.acknowledged_at, incident.mitigated_at,
                               incident.resolved_at, snap.first_at, snap.last_at,
                               None if incident.resolved_at else now)
    buckets = svg.MarkBuckets(scale, exporter.zone)
    scrub = exporter.scrub
    # Pass 1 reads only what places a mark; the first event of each mark (whose
    # text becomes the tooltip) is read whole afterwards.
    first_ids: list[int] = []
    light = (TimelineEvent.id, TimelineEvent.kind, TimelineEvent.occurred_at)
    async for page in exports.iter_timeline(sessions=exporter.sessions, incident_id=incident.id,
                                            max_id=snap.max_id, page_size=exporter.page_size * 5,
                                            kinds=list(MARK_CLASSES), columns=light):
        for event in page:
            cls = MARK_CLASSES[event.kind]
            if buckets.is_new(event.occurred_at, cls):
                first_ids.append(event.id)
            buckets.add(event.occurred_at, cls, str(event.id))
    async with exporter.sessions() as session:
        firsts = await exports.events_by_id(session=session, ids=first_ids)
    users, channels = event_ids(firsts.values())
    await exporter.names.resolve(users=users, channels=channels)
    for bucket in buckets.buckets.values():
        event = firsts.get(int(bucket.label))
        bucket.label = (convert(describe_event(event, exporter.names), exporter.names, scrub).plain
                        or event.kind)[:120] if event is not None else ""
    phase_list = svg.phases(opened_at=incident.opened_at, acknowledged_at=incident.acknowledged_at,
                            mitigated_at=incident.mitigated_at, resolved_at=incident.resolved_at)
    return svg.render(scale=scale, phase_list=phase_list, marks=buckets, zone=exporter.zone,
                      now=now, title=f"Timeline of {incident.key}: {scrub(incident.title)}",
                      event_count=snap.count)


def full_timeline_pointer(settings: Settings, key: str) -> str:
    """Where a reader of a shortened post-mortem finds every event."""
    if settings.public_base_url:
        return f"the full timeline is at {settings.public_base_url.rstrip('/')}/incidents/{key}"
    return f"run `firebreak export {key} --format md` for the full timeline"


async def publish_github(exporter: Exporter, *, number: int, client: Any = None) -> github.IssueRef:
    """Create or update the incident's GitHub issue and remember its number."""
    prepared = await prepare(exporter, number=number)
    settings = exporter.settings
    async with exporter.sessions() as session:
        known = await exports.issue_for(session=session, incident=prepared.incident)
    known_number = known.number if known and known.repo == settings.postmortem_github_repo else None
    body = await github_body(exporter, prepared,
                             full_timeline_at=full_timeline_pointer(settings, prepared.doc.key))
    ref = await github.publish(settings, key=prepared.doc.key, title=prepared.doc.title, body=body,
                               severity=prepared.doc.severity, known_number=known_number,
                               client=client)
    async with transaction(exporter.sessions) as session:
        await exports.remember_issue(session=session, incident=prepared.incident, repo=ref.repo,
                                     number=ref.number, url=ref.url, now=exporter.clock.now())
    return ref
