"""The JSON post-mortem: a documented, versioned format (``schema/postmortem.schema.json``).

Versioning: ``schema_version`` is ``MAJOR.MINOR``. A new optional field raises
MINOR; removing or changing the meaning of a field raises MAJOR. Consumers
should check the major version and ignore fields they do not know.

The document streams: everything but the timeline comes first, then
``"timeline"`` as the last member, one event per line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any

from bot.export.document import EventRow, Moment, Person, Postmortem, Span

SCHEMA_VERSION = "2.0"  # 2.0: one `rollbacks` item per rollback; plain `text` beside `text_mrkdwn`
MEDIA_TYPE = "application/json"


def schema() -> dict[str, Any]:
    """The JSON Schema of this format (draft 2020-12)."""
    text = resources.files("bot.export").joinpath("schema/postmortem.schema.json").read_text("utf-8")
    return json.loads(text)


def _moment(moment: Moment | None) -> dict[str, str] | None:
    return moment.as_json() if moment else None


def _span(span: Span | None) -> dict[str, Any] | None:
    return span.as_json() if span else None


def _person(person: Person | None) -> dict[str, Any] | None:
    return person.as_json() if person else None


def document_json(doc: Postmortem) -> dict[str, Any]:
    """Everything but the timeline."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _moment(doc.generated_at),
        "display_timezone": doc.zone.key,
        "incident": {
            "id": doc.key,
            "number": doc.number,
            "title": doc.title,
            "severity": doc.severity,
            "severity_name": doc.severity_name,
            "status": doc.state,
            "services": list(doc.services),
            "commander": _person(doc.commander),
            "reporter": _person(doc.reporter),
            "comms": _person(doc.comms),
            "scribe": _person(doc.scribe),
            "channel": ({"id": doc.channel_id, "name": doc.channel_name}
                        if doc.channel_id else None),
            "summary": doc.summary.plain if doc.summary else None,
            "summary_mrkdwn": doc.summary.mrkdwn if doc.summary else None,
        },
        "times": {
            "started": _moment(doc.started),
            "acknowledged": _moment(doc.acknowledged),
            "mitigated": _moment(doc.mitigated),
            "resolved": _moment(doc.resolved),
        },
        "durations": {
            "time_to_acknowledge": _span(doc.time_to_acknowledge),
            "time_to_mitigate": _span(doc.time_to_mitigate),
            "time_to_resolve": _span(doc.time_to_resolve),
        },
        "response_target": {
            "respond_within": _span(doc.response.respond_within),
            "met": doc.response.met,
            "verdict": doc.response.verdict,
        },
        "rollbacks": [
            {"id": r.key, "service": r.service, "provider": r.provider, "from": r.from_deploy,
             "to": r.to_deploy, "redeploy": r.redeploy, "state": r.state, "reason": r.reason,
             "requested_by": _person(r.requested_by), "requested_at": _moment(r.requested),
             "confirmed_by": _person(r.confirmed_by), "started_at": _moment(r.started),
             "live_at": _moment(r.live), "finished_at": _moment(r.finished),
             "health": {"verdict": r.health, "detail": r.health_detail, "text": r.health_text},
             "duration": _span(r.duration), "text": r.text.plain, "text_mrkdwn": r.text.mrkdwn}
            for r in doc.rollbacks
        ],
        "rollback_count": len(doc.rollbacks),
        "rollback_event_count": doc.rollback_total,
        "pages": [
            {"occurred_at": _moment(p.at), "status": p.status, "target": p.target,
             "target_name": p.target_name, "pager": p.pager, "level": p.level, "text": p.text.plain}
            for p in doc.pages
        ],
        "page_event_count": doc.page_total,
        "participants": [
            {"id": p.person.id, "name": p.person.name, "roles": list(p.roles)}
            for p in doc.participants
        ],
        "followups": [
            {"id": f.id, "text": f.text.plain, "text_mrkdwn": f.text.mrkdwn, "owner": _person(f.owner),
             "done": f.done,
             "automatic": f.automatic, "created_at": _moment(f.created_at),
             "created_by": _person(f.created_by)}
            for f in doc.followups
        ],
        "sections": {
            "impact": [t.plain for t in doc.sections.get("impact", [])],
            "root_cause": [t.plain for t in doc.sections.get("root_cause", [])],
            "lessons": [t.plain for t in doc.sections.get("lessons", [])],
        },
        "event_count": doc.event_count,
    }


def event_json(row: EventRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "id": row.id,
        "kind": row.kind,
        "label": row.label,
        "occurred_at": row.at.as_json(),
        "recorded_at": row.recorded_at.utc_iso,
        "actor": _person(row.actor),
        "text": row.text.plain,
        "text_mrkdwn": row.text.mrkdwn,
        "data": row.data,
    }


def header(doc: Postmortem) -> str:
    opening = json.dumps(document_json(doc), indent=2, ensure_ascii=False)
    assert opening.endswith("\n}")
    return opening[:-2] + ',\n  "timeline": ['


def event_chunk(row: EventRow, *, first: bool) -> str:
    return ("\n    " if first else ",\n    ") + json.dumps(event_json(row), ensure_ascii=False)


FOOTER = "\n  ]\n}\n"


def render(doc: Postmortem, rows: Iterable[EventRow]) -> Iterator[str]:
    yield header(doc)
    first = True
    for row in rows:
        yield event_chunk(row, first=first)
        first = False
    yield FOOTER
