"""The post-mortem as plain data: what every renderer (Markdown, JSON, HTML, GitHub) shows.

Everything here is pure: built from an incident, the facts read from the
database, a :class:`~bot.export.names.Names` and a :class:`~bot.export.scrub.Scrubber`.
Timeline events are turned into :class:`EventRow` one at a time, so that a
renderer can stream a timeline of any length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import utc
from bot.durations import format_duration
from bot.export.mrkdwn import Rich, convert
from bot.export.names import Names, is_user_id, target_label, target_user
from bot.export.scrub import Scrubber
from bot.export.service import ROLLBACK_DONE_STATES, as_plain
from bot.incidents.models import EventKind, Incident, TimelineEvent, event_label

SEVERITY_NAMES = {"P0": "Critical", "P1": "High", "P2": "Medium", "P3": "Low"}

PAGE_STATUS = {EventKind.PAGE_SENT: "sent", EventKind.PAGE_DELIVERED: "delivered",
               EventKind.PAGE_FAILED: "failed", EventKind.PAGE_ACKNOWLEDGED: "acknowledged"}
# How the SVG timeline and the web page group events into marks.
MARK_CLASSES = {
    EventKind.PAGE_SENT: "page", EventKind.PAGE_DELIVERED: "page", EventKind.PAGE_FAILED: "page-failed",
    EventKind.PAGE_ACKNOWLEDGED: "page", EventKind.ESCALATION: "page",
    EventKind.ROLLBACK: "rollback",
    EventKind.NOTE: "note", EventKind.STATUS_UPDATE: "note", EventKind.PINNED_MESSAGE: "note",
    EventKind.FOLLOWUP: "note",
    EventKind.SEVERITY_CHANGED: "change", EventKind.ROLE_ASSIGNED: "change",
    EventKind.REOPENED: "change",
}


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """An instant shown in UTC and in the display zone, each labelled."""

    when: datetime
    zone: ZoneInfo

    @property
    def utc(self) -> datetime:
        return utc(self.when)

    @property
    def local(self) -> datetime:
        return self.utc.astimezone(self.zone)

    @property
    def utc_text(self) -> str:
        return f"{self.utc:%Y-%m-%d %H:%M:%S} UTC"

    @property
    def local_text(self) -> str:
        local = self.local
        return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"

    @property
    def utc_iso(self) -> str:
        return self.utc.isoformat().replace("+00:00", "Z")

    @property
    def local_iso(self) -> str:
        return self.local.isoformat()

    @property
    def zone_abbreviation(self) -> str:
        return self.local.tzname() or self.zone.key

    def as_json(self) -> dict[str, str]:
        return {"utc": self.utc_iso, "local": self.local_iso, "zone": self.zone.key,
                "zone_abbreviation": self.zone_abbreviation}


@dataclass(frozen=True)
class Span:
    seconds: int

    @property
    def text(self) -> str:
        return format_duration(timedelta(seconds=self.seconds))

    def as_json(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "text": self.text}


def span_between(start: datetime | None, end: datetime | None) -> Span | None:
    if start is None or end is None:
        return None
    return Span(int((utc(end) - utc(start)).total_seconds()))


@dataclass(frozen=True)
class Person:
    id: str | None
    name: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}


def person(user_id: str | None, names: Names) -> Person | None:
    if not user_id:
        return None
    return Person(user_id, names.user(user_id))


@dataclass(frozen=True)
class ResponseTarget:
    respond_within: Span | None
    met: bool | None  # None: no target known, or still within it and not acknowledged
    verdict: str


@dataclass(frozen=True)
class RollbackRow:
    """One rollback (its steps are on the timeline)."""

    key: str | None  # RB-n
    service: str
    provider: str
    from_deploy: str
    to_deploy: str
    state: str  # the last one recorded: succeeded, failed, canceled, expired, or still going
    reason: str | None  # why it failed or ended
    requested_by: Person | None
    requested: Moment | None
    confirmed_by: Person | None
    started: Moment  # confirmed (the provider was asked), else first recorded
    live: Moment | None
    finished: Moment | None
    health: str | None  # passed | failed | not_configured; None: not reached
    health_detail: str | None
    redeploy: str | None  # the new deploy the provider made of the target, when it makes one
    text: Rich  # the last step

    @property
    def duration(self) -> Span | None:
        """From Confirm to the verdict (or to live, while the health check runs); none for a
        preview that was never confirmed."""
        end = self.finished or self.live
        if end is None or (self.key and self.confirmed_by is None):
            return None
        return span_between(self.started.when, end.when)

    @property
    def health_text(self) -> str:
        verdict = {"passed": "passed", "failed": "failed", "not_configured": "no health check configured"}
        if self.health is None:
            return "not reached" if self.finished else "pending"
        text = verdict.get(self.health, self.health)
        return f"{text}: {self.health_detail}" if self.health_detail else text

    @property
    def outcome(self) -> str:
        return f"{self.state} ({self.reason})" if self.reason and self.reason != self.state else self.state


@dataclass(frozen=True)
class PageRow:
    at: Moment
    status: str
    target: str
    target_name: str
    pager: str
    level: int | None
    text: Rich


@dataclass(frozen=True)
class FollowUpRow:
    id: int
    text: Rich
    owner: Person | None
    done: bool
    automatic: bool
    created_at: Moment
    created_by: Person | None


@dataclass(frozen=True)
class Participant:
    person: Person
    roles: tuple[str, ...]


@dataclass(frozen=True)
class EventRow:
    seq: int
    id: int
    kind: str
    label: str
    at: Moment
    recorded_at: Moment
    actor: Person | None
    text: Rich
    data: dict[str, Any]
    mark: str | None


@dataclass(frozen=True)
class Facts:
    """What the pipeline read from the database (see ``bot.export.pipeline.gather``)."""

    event_count: int
    rollbacks: Sequence[TimelineEvent] = ()
    rollback_total: int = 0
    pages: Sequence[TimelineEvent] = ()
    page_total: int = 0
    actors: Sequence[str] = ()
    followups: Sequence[Any] = ()  # FollowUp rows
    sections: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Postmortem:
    key: str
    number: int
    title: str
    severity: str
    severity_name: str
    state: str
    services: tuple[str, ...]
    commander: Person | None
    reporter: Person | None
    comms: Person | None
    scribe: Person | None
    channel_id: str | None
    channel_name: str | None
    summary: Rich | None
    zone: ZoneInfo
    generated_at: Moment
    started: Moment
    acknowledged: Moment | None
    mitigated: Moment | None
    resolved: Moment | None
    time_to_acknowledge: Span | None
    time_to_mitigate: Span | None
    time_to_resolve: Span | None
    response: ResponseTarget
    rollbacks: tuple[RollbackRow, ...]
    rollback_total: int  # timeline events of kind rollback (the rows are read from the first 500)
    pages: tuple[PageRow, ...]
    page_total: int
    participants: tuple[Participant, ...]
    followups: tuple[FollowUpRow, ...]
    sections: dict[str, list[Rich]]
    event_count: int

    @property
    def shows_local(self) -> bool:
        return self.zone.key not in ("UTC", "Etc/UTC")

    @property
    def key_times(self) -> list[tuple[str, Moment | None]]:
        return [("Started", self.started), ("Acknowledged", self.acknowledged),
                ("Mitigated", self.mitigated), ("Resolved", self.resolved)]

    @property
    def durations(self) -> list[tuple[str, Span | None]]:
        return [("Time to acknowledge", self.time_to_acknowledge),
                ("Time to mitigate", self.time_to_mitigate),
                ("Time to resolve", self.time_to_resolve)]


# --- building --------------------------------------------------------------------------------


def response_target(
    *, opened_at: datetime, acknowledged_at: datetime | None, resolved_at: datetime | None,
    respond_within: timedelta | None, now: datetime,
) -> ResponseTarget:
    """Whether the severity's ``respond_within`` was met by the first acknowledgement."""
    if respond_within is None:
        return ResponseTarget(None, None, "no response target known for this severity")
    target = Span(int(respond_within.total_seconds()))
    if acknowledged_at is not None:
        taken = span_between(opened_at, acknowledged_at)
        assert taken is not None
        if taken.seconds <= target.seconds:
            return ResponseTarget(target, True,
                                  f"met: acknowledged in {taken.text} (target {target.text})")
        late = Span(taken.seconds - target.seconds)
        return ResponseTarget(target, False, f"missed by {late.text}: acknowledged in "
                                             f"{taken.text} (target {target.text})")
    elapsed = span_between(opened_at, resolved_at or now)
    assert elapsed is not None
    if elapsed.seconds > target.seconds:
        return ResponseTarget(target, False,
                              f"missed: not acknowledged within {target.text}")
    return ResponseTarget(target, None, f"pending: not acknowledged yet (target {target.text})")


FINAL_STEPS = {"succeeded": "succeeded", "failed": "failed", "canceled": "canceled", "expired": "expired"}
HEALTH_VERDICTS = ("passed", "failed", "not_configured")


def rollback_rows(events: Sequence[TimelineEvent], names: Names, zone: ZoneInfo,
                  scrub: Scrubber) -> tuple[RollbackRow, ...]:
    """One row per rollback, from its steps on the timeline: grouped by ``rollback_id``, or,
    for events recorded by something else than ``/rollback``, by service and deploys."""
    groups: dict[Any, list[TimelineEvent]] = {}
    for event in events:
        data = event.data or {}
        rollback_id = data.get("rollback_id")
        key = rollback_id if rollback_id is not None else (data.get("service"), data.get("from"), data.get("to"))
        groups.setdefault(key, []).append(event)
    return tuple(_rollback_row(steps, names, zone, scrub) for steps in groups.values())


def _rollback_row(steps: list[TimelineEvent], names: Names, zone: ZoneInfo, scrub: Scrubber) -> RollbackRow:
    by_step = {str((e.data or {}).get("step")): e for e in steps}
    last = steps[-1]
    data = last.data or {}
    state = str(data.get("state") or "")

    def who(event: TimelineEvent | None) -> Person | None:
        if event is None or not is_user_id(event.actor):
            return None
        found = person(event.actor, names)
        return Person(found.id, scrub(found.name)) if found else None

    def at(event: TimelineEvent | None) -> Moment | None:
        return Moment(event.occurred_at, zone) if event is not None else None

    final = next((by_step[s] for s in FINAL_STEPS if s in by_step), None)
    done = state.lower() in ROLLBACK_DONE_STATES
    if final is None and (done or state.lower() in ("failed", "canceled", "expired")):
        final = last  # recorded by something else than /rollback: one event says it all
    live = by_step.get("live") or (final if done else None)
    started = by_step.get("confirmed") or by_step.get("triggered") or steps[0]
    final_data = (final.data or {}) if final is not None else {}
    health = final_data.get("health")
    if health not in HEALTH_VERDICTS:  # recorded before the verdict was stored with the step
        health = None
        if final is not None and state == "succeeded":
            health = "passed" if final_data.get("health_url") else "not_configured"
        elif final is not None and final_data.get("reason") == "unhealthy":
            health = "failed"
    redeploy = next((str(e.data["redeploy_id"]) for e in steps if (e.data or {}).get("redeploy_id")), None)
    rollback_id = data.get("rollback_id")
    return RollbackRow(
        key=f"RB-{rollback_id}" if rollback_id is not None else None,
        service=scrub(str(data.get("service") or "")),
        provider=scrub(str(data.get("provider") or "")),
        from_deploy=scrub(str(data.get("from") or "")),
        to_deploy=scrub(str(data.get("to") or "")),
        state=scrub(state),
        reason=scrub(str(final_data["reason"])) if final_data.get("reason") else None,
        requested_by=who(by_step.get("requested")),
        requested=at(by_step.get("requested")),
        confirmed_by=who(by_step.get("confirmed") or (final if "requested" not in by_step else None)),
        started=Moment(started.occurred_at, zone),
        live=at(live),
        finished=at(final),
        health=health,
        health_detail=scrub(str(final_data["health_detail"])) if final_data.get("health_detail") else None,
        redeploy=scrub(redeploy) if redeploy else None,
        text=convert(last.text or describe_event(last, names), names, scrub),
    )


def pager_of(data: dict[str, Any]) -> str:
    """The pager that carried a page: ``data.pager``, else the kind of the recipient
    (``user:U1`` → ``user``, ``pagerduty:default`` → ``pagerduty``), else of the target."""
    pager = data.get("pager")
    if isinstance(pager, str) and pager:
        return pager
    for key in ("recipient", "target"):
        value = data.get(key)
        if isinstance(value, str) and ":" in value:
            return value.split(":", 1)[0]
    return "unknown"


def page_row(event: TimelineEvent, names: Names, zone: ZoneInfo, scrub: Scrubber) -> PageRow:
    data = event.data or {}
    level = data.get("level")
    target = str(data.get("target") or data.get("recipient") or "")
    recipient = str(data.get("recipient") or target)
    return PageRow(
        at=Moment(event.occurred_at, zone),
        status=PAGE_STATUS.get(event.kind, event.kind),
        target=scrub(target),
        target_name=scrub(target_label(recipient, names)),
        pager=scrub(pager_of(data)),
        level=level if isinstance(level, int) else None,
        text=convert(event.text, names, scrub),
    )


def describe_event(event: TimelineEvent, names: Names) -> str:
    """The event's text (Slack mrkdwn); pages and rollbacks without text are described."""
    text = event.text or ""
    data = event.data or {}
    if event.kind in PAGE_STATUS and not text:
        level = data.get("level")
        where = f" (level {level})" if isinstance(level, int) else ""
        who = target_label(data.get("recipient") or data.get("target"), names)
        return f"Page {PAGE_STATUS[event.kind]}: {who}{where}"
    if event.kind == EventKind.ROLLBACK and not text:
        parts = [f"Rollback of {data.get('service') or '?'}"]
        if data.get("from") or data.get("to"):
            parts.append(f"{data.get('from') or '?'} → {data.get('to') or '?'}")
        if data.get("provider"):
            parts.append(f"via {data['provider']}")
        if data.get("state"):
            parts.append(f"({data['state']})")
        return " ".join(parts)
    return text


def event_row(event: TimelineEvent, seq: int, names: Names, zone: ZoneInfo,
              scrub: Scrubber) -> EventRow:
    actor = None
    if event.actor:
        actor = Person(scrub(event.actor), scrub(names.user(event.actor)))
    return EventRow(
        seq=seq, id=event.id or 0, kind=event.kind, label=event_label(event.kind),
        at=Moment(event.occurred_at, zone), recorded_at=Moment(event.recorded_at, zone),
        actor=actor, text=convert(describe_event(event, names), names, scrub),
        data=scrub.value(as_plain(event.data or {})), mark=MARK_CLASSES.get(event.kind),
    )


def participants(incident: Incident, actors: Sequence[str], followups: Sequence[Any],
                 pages: Sequence[TimelineEvent], names: Names) -> tuple[Participant, ...]:
    roles: dict[str, list[str]] = {}

    def add(user_id: str | None, role: str | None = None) -> None:
        if not is_user_id(user_id):
            return
        held = roles.setdefault(user_id, [])
        if role and role not in held:
            held.append(role)

    add(incident.commander_id, "commander")
    add(incident.comms_id, "comms")
    add(incident.scribe_id, "scribe")
    add(incident.reporter_id, "reporter")
    add(incident.acknowledged_by, "acknowledged")
    for actor in actors:
        add(actor)
    for event in pages:
        data = event.data or {}
        add(target_user(data.get("recipient") or data.get("target")), "paged")
    for followup in followups:
        add(followup.owner_id, "follow-up owner")
    return tuple(Participant(Person(uid, names.user(uid)), tuple(r)) for uid, r in roles.items())


def build_postmortem(
    *,
    incident: Incident,
    facts: Facts,
    names: Names,
    zone: ZoneInfo,
    scrub: Scrubber,
    now: datetime,
    severity_name: str | None = None,
    respond_within: timedelta | None = None,
) -> Postmortem:
    services: dict[str, None] = {}
    if incident.service:
        services[incident.service] = None
    for event in facts.rollbacks:
        service = (event.data or {}).get("service")
        if isinstance(service, str) and service:
            services.setdefault(service, None)
    severity = incident.severity.value
    channel_name = incident.channel_name
    if incident.channel_id and names.known_channel(incident.channel_id):
        channel_name = names.channel(incident.channel_id).lstrip("#")

    def scrubbed_person(user_id: str | None) -> Person | None:
        found = person(user_id, names)
        return Person(found.id, scrub(found.name)) if found else None

    followups = tuple(
        FollowUpRow(id=f.id, text=convert(f.text, names, scrub), owner=scrubbed_person(f.owner_id),
                    done=bool(f.done), automatic=bool(f.automatic),
                    created_at=Moment(f.created_at, zone),
                    created_by=scrubbed_person(f.created_by) if is_user_id(f.created_by) else None)
        for f in facts.followups)
    return Postmortem(
        key=incident.key, number=incident.number, title=scrub(incident.title), severity=severity,
        severity_name=severity_name or SEVERITY_NAMES.get(severity, severity),
        state=incident.state.value, services=tuple(scrub(s) for s in services),
        commander=scrubbed_person(incident.commander_id),
        reporter=scrubbed_person(incident.reporter_id),
        comms=scrubbed_person(incident.comms_id), scribe=scrubbed_person(incident.scribe_id),
        channel_id=incident.channel_id, channel_name=channel_name,
        summary=convert(incident.summary, names, scrub) if incident.summary else None,
        zone=zone, generated_at=Moment(now, zone),
        started=Moment(incident.opened_at, zone),
        acknowledged=Moment(incident.acknowledged_at, zone) if incident.acknowledged_at else None,
        mitigated=Moment(incident.mitigated_at, zone) if incident.mitigated_at else None,
        resolved=Moment(incident.resolved_at, zone) if incident.resolved_at else None,
        time_to_acknowledge=span_between(incident.opened_at, incident.acknowledged_at),
        time_to_mitigate=span_between(incident.opened_at, incident.mitigated_at),
        time_to_resolve=span_between(incident.opened_at, incident.resolved_at),
        response=response_target(opened_at=incident.opened_at,
                                 acknowledged_at=incident.acknowledged_at,
                                 resolved_at=incident.resolved_at,
                                 respond_within=respond_within, now=now),
        rollbacks=rollback_rows(facts.rollbacks, names, zone, scrub),
        rollback_total=facts.rollback_total,
        pages=tuple(page_row(e, names, zone, scrub) for e in facts.pages),
        page_total=facts.page_total,
        participants=tuple(Participant(Person(p.person.id, scrub(p.person.name)), p.roles)
                           for p in participants(incident, facts.actors, facts.followups,
                                                 facts.pages, names)),
        followups=followups,
        sections={k: [convert(t, names, scrub) for t in v] for k, v in facts.sections.items()},
        event_count=facts.event_count,
    )
