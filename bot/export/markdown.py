"""The Markdown post-mortem (also the body of the GitHub issue): pure functions.

:func:`render` yields the document piece by piece: the header, one line per
timeline event, then the footer, so that any number of events streams through.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from bot.export.document import EventRow, Moment, Postmortem
from bot.export.service import HEADER_LIST_LIMIT

PLACEHOLDER = "_To be written by the incident commander._"
GITHUB_BODY_LIMIT = 65_000  # GitHub refuses issue bodies over 65,536 characters


def marker(key: str) -> str:
    """The hidden line by which the GitHub issue of an incident is found again."""
    return f"<!-- firebreak:postmortem:{key} -->"


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    value = "" if text is None else str(text)
    value = value.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
    return " <br> ".join(part.strip() for part in value.strip().splitlines()) or " "


def inline(text: object) -> str:
    """Text safe in a list item or paragraph (one line, no raw HTML)."""
    value = "" if text is None else str(text)
    return " ".join(value.replace("<", "&lt;").split())


def _who(person) -> str:
    return cell(person.name) if person else "—"


def _time_columns(doc: Postmortem) -> list[str]:
    return ["Time (UTC)", f"Time ({doc.zone.key})"] if doc.shows_local else ["Time (UTC)"]


def _times(doc: Postmortem, moment: Moment) -> list[str]:
    if doc.shows_local:
        return [moment.utc_text, moment.local_text]
    return [moment.utc_text]


def _clock(doc: Postmortem, moment: Moment | None) -> str:
    """A time of day (the date is in the row's other times): ``14:09:30 UTC / 09:09:30 EST``."""
    if moment is None:
        return "—"
    text = f"{moment.utc:%H:%M:%S} UTC"
    return f"{text} / {moment.local:%H:%M:%S %Z}" if doc.shows_local else text


def _table(headings: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def header(doc: Postmortem, *, with_marker: bool = False) -> str:
    lines: list[str] = []
    if with_marker:
        lines.append(marker(doc.key))
    lines += [f"# {doc.key}: {inline(doc.title)} — post-mortem", ""]
    channel = f"#{doc.channel_name}" if doc.channel_name else (doc.channel_id or "—")
    lines += _table(["Field", "Value"], [
        ["Incident", doc.key],
        ["Title", cell(doc.title)],
        ["Severity", f"{doc.severity} ({cell(doc.severity_name)})"],
        ["Services", cell(", ".join(doc.services)) if doc.services else "—"],
        ["Commander", _who(doc.commander)],
        ["Status", doc.state],
        ["Reporter", _who(doc.reporter)],
        ["Comms", _who(doc.comms)],
        ["Scribe", _who(doc.scribe)],
        ["Channel", cell(channel)],
    ])
    lines += ["", "## Key times", ""]
    if doc.shows_local:
        lines.append(f"Times are given in UTC and in {doc.zone.key} (the display time zone).")
        headings = ["Moment", "UTC", doc.zone.key]
    else:
        lines.append("Times are given in UTC.")
        headings = ["Moment", "UTC"]
    lines.append("")
    rows = []
    for label, moment in doc.key_times:
        if moment is None:
            rows.append([label] + ["—"] * (len(headings) - 1))
        else:
            rows.append([label] + _times(doc, moment))
    lines += _table(headings, rows)
    lines.append("")
    duration_rows = [[label, span.text if span else "—"] for label, span in doc.durations]
    target = doc.response.respond_within.text if doc.response.respond_within else "unknown"
    duration_rows.append([f"Response target ({doc.severity}: respond within {target})",
                          cell(doc.response.verdict)])
    lines += _table(["Measure", "Value"], duration_rows)
    if doc.summary:
        lines += ["", "## Summary", "", doc.summary.markdown]
    lines += ["", "## Rollbacks", ""]
    if doc.rollbacks:
        lines += _table(
            ["Rollback", "Service", "From → to", "Requested by", "Confirmed by",
             *(f"Started {c[5:]}" for c in _time_columns(doc)), "Live at", "Health", "Duration", "Outcome"],
            ([cell(r.key or "—"), cell(f"{r.service} ({r.provider})" if r.provider else r.service),
              cell(f"{r.from_deploy or '?'} → {r.to_deploy or '?'}"
                   + (f" (live as {r.redeploy}, a redeploy of {r.to_deploy})" if r.redeploy else "")),
              _who(r.requested_by), _who(r.confirmed_by), *_times(doc, r.started),
              _clock(doc, r.live), cell(r.health_text), r.duration.text if r.duration else "—",
              cell(r.outcome)]
             for r in doc.rollbacks))
        lines += ["", "Every step of each rollback is in the timeline below."]
        if doc.rollback_total > HEADER_LIST_LIMIT:
            lines += ["", (f"_Rollbacks after the first {HEADER_LIST_LIMIT:,} rollback steps are only in "
                           "the timeline below._")]
    else:
        lines.append("_No rollbacks._")
    lines += ["", "## Pages", ""]
    if doc.pages:
        lines += _table(
            [*_time_columns(doc), "Target", "Pager", "Level", "Status"],
            ([*_times(doc, p.at), cell(p.target_name or p.target), cell(p.pager),
              str(p.level) if p.level is not None else "—", p.status]
             for p in doc.pages))
        if doc.page_total > len(doc.pages):
            lines += ["", (f"_…and {doc.page_total - len(doc.pages):,} more page events in the "
                           "timeline below._")]
    else:
        lines.append("_No pages._")
    lines += ["", "## Timeline", "",
              f"{doc.event_count:,} event{'s' if doc.event_count != 1 else ''}, in order.", ""]
    lines += _table(["#", *_time_columns(doc), "Event", "Who", "Details"], [])
    return "\n".join(lines) + "\n"


def event_line(doc: Postmortem, row: EventRow) -> str:
    return ("| " + " | ".join([str(row.seq), *_times(doc, row.at), row.label,
                               _who(row.actor), row.text.markdown_cell]) + " |\n")


def omitted_line(doc: Postmortem, omitted: int, *, where: str) -> str:
    columns = 3 + len(_time_columns(doc))
    return ("| … | " + " | ".join([" "] * (columns - 2))
            + f" | {omitted:,} more events: {cell(where)} |\n")


def footer(doc: Postmortem, *, task_list: bool = True) -> str:
    lines = ["", "## Participants", ""]
    if doc.participants:
        for participant in doc.participants:
            roles = f" — {', '.join(participant.roles)}" if participant.roles else ""
            lines.append(f"- {inline(participant.person.name)}{roles}")
    else:
        lines.append("_Nobody recorded._")
    lines += ["", "## Follow-ups", ""]
    if doc.followups:
        for item in doc.followups:
            box = ("[x] " if item.done else "[ ] ") if task_list else ""
            owner = f" — owner: {inline(item.owner.name)}" if item.owner else ""
            auto = " _(added automatically)_" if item.automatic else ""
            lines.append(f"- {box}{item.text.markdown}{owner}{auto}")
    else:
        lines.append("_None yet: add them with `/incident followup <text> [@owner]`._")
    for title, name in (("Impact", "impact"), ("Root cause", "root_cause"),
                        ("Lessons learned", "lessons")):
        lines += ["", f"## {title}", ""]
        entries = doc.sections.get(name) or []
        lines += [f"- {text.markdown}" for text in entries] or [PLACEHOLDER]
    lines += ["", "---", "",
              f"_Generated by Firebreak on {doc.generated_at.utc_text}"
              + (f" ({doc.generated_at.local_text})" if doc.shows_local else "") + "._", ""]
    return "\n".join(lines)


def render(doc: Postmortem, rows: Iterable[EventRow]) -> Iterator[str]:
    yield header(doc)
    for row in rows:
        yield event_line(doc, row)
    yield footer(doc)


def render_limited(doc: Postmortem, rows: Iterable[EventRow], *, limit: int = GITHUB_BODY_LIMIT,
                   full_timeline_at: str, with_marker: bool = True) -> str:
    """The whole document as one string of at most ``limit`` characters (a GitHub
    issue body): timeline rows stop when the budget is spent, with a pointer to
    the full timeline."""
    head = header(doc, with_marker=with_marker)
    tail = footer(doc)
    budget = limit - len(head) - len(tail) - 300
    parts = [head]
    used = 0
    shown = 0
    for row in rows:
        line = event_line(doc, row)
        if used + len(line) > budget:
            break
        parts.append(line)
        used += len(line)
        shown += 1
    if shown < doc.event_count:
        parts.append(omitted_line(doc, doc.event_count - shown, where=full_timeline_at))
    parts.append(tail)
    return "".join(parts)
