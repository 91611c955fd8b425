"""Block Kit builders: pure functions from domain objects to Slack JSON."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.durations import format_duration
from bot.incidents.models import EventKind, Incident, IncidentState, TimelineEvent, event_label
from bot.playbooks.models import Severity
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.text import shown
from bot.timefmt import utc_and_local

Block = dict[str, Any]

SEVERITY_EMOJI = {"P0": ":red_circle:", "P1": ":large_orange_circle:",
                  "P2": ":large_yellow_circle:", "P3": ":white_circle:"}
STATE_EMOJI = {"open": ":rotating_light:", "acknowledged": ":eyes:",
               "mitigated": ":adhesive_bandage:", "resolved": ":white_check_mark:"}
SEVERITY_NAMES = {"P0": "Critical", "P1": "High", "P2": "Medium", "P3": "Low"}


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": _truncate(text, 3000)}


def _person(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "_unassigned_"


def severity_label(severity: str) -> str:
    return f"{SEVERITY_EMOJI.get(severity, '')} {severity} {SEVERITY_NAMES.get(severity, '')}".strip()


def incident_summary_line(incident: Incident) -> str:
    channel = f" <#{incident.channel_id}>" if incident.channel_id else ""
    return (f"*{incident.key}* {severity_label(incident.severity.value)} · "
            f"{STATE_EMOJI[incident.state.value]} {incident.state.value} · {shown(incident.title)}{channel}")


def severity_options() -> list[Block]:
    return [
        {"text": {"type": "plain_text", "text": f"{s.value} — {SEVERITY_NAMES[s.value]}"},
         "value": s.value}
        for s in Severity
    ]


def incident_card(incident: Incident, *, now: datetime, zone: ZoneInfo) -> list[Block]:
    """The pinned card, rebuilt from the incident on every change."""
    end = incident.resolved_at or now
    elapsed = format_duration(end - incident.opened_at)
    state = incident.state.value
    fields = [
        _mrkdwn(f"*Severity*\n{severity_label(incident.severity.value)}"),
        _mrkdwn(f"*State*\n{STATE_EMOJI[state]} {state.capitalize()}"),
        _mrkdwn(f"*Commander*\n{_person(incident.commander_id)}"),
        _mrkdwn(f"*Comms* / *Scribe*\n{_person(incident.comms_id)} / {_person(incident.scribe_id)}"),
        _mrkdwn(f"*Service*\n{incident.service or '—'}"),
        _mrkdwn(f"*{'Duration' if incident.resolved_at else 'Elapsed'}*\n{elapsed}"),
    ]
    times = [f"Opened {utc_and_local(incident.opened_at, zone)} by <@{incident.reporter_id}>"]
    if incident.acknowledged_at:
        times.append(f"acknowledged {utc_and_local(incident.acknowledged_at, zone)}"
                     + (f" by <@{incident.acknowledged_by}>" if incident.acknowledged_by else ""))
    if incident.mitigated_at:
        times.append(f"mitigated {utc_and_local(incident.mitigated_at, zone)}")
    if incident.resolved_at:
        times.append(f"resolved {utc_and_local(incident.resolved_at, zone)}")
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": _truncate(f"{incident.key} · {shown(incident.title)}", 150)}},
        {"type": "section", "fields": fields},
        {"type": "context", "elements": [_mrkdwn(" · ".join(times))]},
    ]
    if incident.summary and incident.state == IncidentState.RESOLVED:
        blocks.append({"type": "section", "text": _mrkdwn(f"*Summary*\n{shown(incident.summary)}")})
    value = str(incident.number)
    actions: list[Block] = []
    if incident.state == IncidentState.OPEN:
        actions.append({"type": "button", "action_id": ActionId.INCIDENT_ACK.value, "style": "primary",
                        "text": {"type": "plain_text", "text": "Acknowledge"}, "value": value})
    if incident.state != IncidentState.RESOLVED:
        actions.append({"type": "button", "action_id": ActionId.INCIDENT_RESOLVE.value,
                        "text": {"type": "plain_text", "text": "Resolve"}, "value": value,
                        "confirm": {"title": {"type": "plain_text", "text": "Resolve incident?"},
                                    "text": _mrkdwn(f"Mark {incident.key} resolved?"),
                                    "confirm": {"type": "plain_text", "text": "Resolve"},
                                    "deny": {"type": "plain_text", "text": "Cancel"}}})
        actions.append({"type": "static_select", "action_id": ActionId.INCIDENT_CHANGE_SEVERITY.value,
                        "placeholder": {"type": "plain_text", "text": "Change severity"},
                        "options": severity_options()})
    if actions:
        blocks.append({"type": "actions", "block_id": f"incident-{value}", "elements": actions})
    return blocks


def with_card_sections(card: list[Block], sections: Sequence[Block]) -> list[Block]:
    """The card with other concerns' sections placed before its buttons."""
    index = next((i for i, b in enumerate(card) if b.get("type") == "actions"), len(card))
    return [*card[:index], *sections, *card[index:]]


def card_fallback_text(incident: Incident) -> str:
    return f"{incident.key} [{incident.severity.value}, {incident.state.value}] {shown(incident.title)}"


def channel_topic(incident: Incident) -> str:
    commander = f" · Commander <@{incident.commander_id}>" if incident.commander_id else ""
    return _truncate(f"{incident.key} {incident.severity.value} {incident.state.value}: "
                     f"{shown(incident.title)}{commander}", 250)


def announcement_text(incident: Incident) -> str:
    """The announcement's notification text."""
    return f"{incident.key} opened: {shown(incident.title)}"


def announcement(incident: Incident) -> list[Block]:
    return [{"type": "section", "text": _mrkdwn(
        f":rotating_light: {incident.key} opened — {severity_label(incident.severity.value)}\n"
        f"*{shown(incident.title)}*" + (f" (service `{incident.service}`)" if incident.service else "")
        + (f"\nJoin <#{incident.channel_id}>" if incident.channel_id else "")
        + f"\nReported by <@{incident.reporter_id}>")}]


EVENT_LINES = {
    EventKind.ACKNOWLEDGED: ":eyes: {text}",
    EventKind.SEVERITY_CHANGED: ":arrows_counterclockwise: {text} (by {actor})",
    EventKind.ROLE_ASSIGNED: ":bust_in_silhouette: {text} (by {actor})",
    EventKind.MITIGATED: ":adhesive_bandage: Mitigated by {actor}: {text}",
    EventKind.RESOLVED: ":white_check_mark: Resolved by {actor}: {text}",
    EventKind.REOPENED: ":leftwards_arrow_with_hook: {text}",
    EventKind.STATUS_UPDATE: ":mega: *Status update* from {actor}: {text}",
}


def event_line(event: TimelineEvent, incident: Incident) -> str | None:
    template = EVENT_LINES.get(event.kind)  # StrEnum keys match plain strings
    if template is None:
        return None
    actor = f"<@{event.actor}>" if event.actor else "Firebreak"
    return f"{incident.key}: " + template.format(text=shown(event.text), actor=actor)


MAX_BLOCKS = 50  # in one message
SECTION_TEXT = 3000  # characters in one section's text


def clip_mrkdwn(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, never inside a ``<…>`` mention or link
    nor inside a code span, at a word boundary when there is one, marked with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    if cut.count("```") % 2:
        cut = cut[: cut.rfind("```")]
    elif cut.replace("```", "").count("`") % 2:
        cut = cut[: cut.rfind("`")]
    space = cut.rfind(" ")
    if space > len(cut) // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def timeline_line(event: TimelineEvent, zone: ZoneInfo) -> str:
    actor = f" <@{event.actor}>" if event.actor and event.actor.startswith(("U", "W")) else ""
    line = f"`{utc_and_local(event.occurred_at, zone)}` *{event_label(event.kind)}*{actor} {event.text}"
    return clip_mrkdwn(line.rstrip(), SECTION_TEXT)  # only a line longer than a section is cut


def timeline_blocks(incident: Incident, events: Sequence[TimelineEvent], zone: ZoneInfo, *,
                    total: int, web_url: str | None) -> list[Block]:
    """The reply to ``/incident timeline``: one line per event, whole lines only, spread over
    as many sections as one message allows. When they do not all fit, the newest are kept and
    the reply says how many earlier ones the web timeline (or the export) has."""
    where = (f"<{web_url}|the full timeline of {incident.key} on the web>" if web_url
             else f"`/incident export` for the full timeline of {incident.key}")
    head: Block = {"type": "section", "text": _mrkdwn(
        f"*Timeline of {incident.key}* — {incident.title} ({total:,} event{'s' if total != 1 else ''})")}
    room = MAX_BLOCKS - 3  # the heading, the note about earlier events, the link
    sections: list[list[str]] = []
    size = 0
    shown = 0
    for event in reversed(events):  # newest first: they are the ones to keep
        line = timeline_line(event, zone)
        if sections and size + 1 + len(line) <= SECTION_TEXT:
            sections[0].insert(0, line)
            size += 1 + len(line)
        elif len(sections) < room:
            sections.insert(0, [line])
            size = len(line)
        else:
            break
        shown += 1
    blocks = [head]
    if total > shown:
        earlier = total - shown
        blocks.append({"type": "context", "elements": [_mrkdwn(
            f"…{earlier:,} earlier event{'s' if earlier != 1 else ''} not shown here: see {where}.")]})
    blocks += [{"type": "section", "text": _mrkdwn("\n".join(lines))} for lines in sections]
    blocks.append({"type": "context", "elements": [_mrkdwn(f"Every event, with the details: {where}.")]})
    return blocks


def incident_list_text(incidents: Sequence[Incident], *, include_resolved: bool) -> str:
    if not incidents:
        if include_resolved:
            return "No incidents yet."
        return "No open incidents. :tada: `/incident list all` shows the resolved ones too."
    heading = "*All incidents*" if include_resolved else "*Open incidents*"
    return _truncate("\n".join([heading] + [incident_summary_line(i) for i in incidents]), 3000)


def open_incident_modal(services: Sequence[str], *, channel_id: str | None) -> Block:
    blocks: list[Block] = [
        {"type": "input", "block_id": BlockId.MODAL_SEVERITY.value,
         "label": {"type": "plain_text", "text": "Severity"},
         "element": {"type": "static_select", "action_id": "severity", "options": severity_options(),
                     "initial_option": severity_options()[2]}},
        {"type": "input", "block_id": BlockId.MODAL_TITLE.value,
         "label": {"type": "plain_text", "text": "What is broken?"},
         "element": {"type": "plain_text_input", "action_id": "title", "max_length": 150}},
    ]
    if services:
        blocks.append(
            {"type": "input", "block_id": BlockId.MODAL_SERVICE.value, "optional": True,
             "label": {"type": "plain_text", "text": "Service"},
             "element": {"type": "static_select", "action_id": "service",
                         "options": [{"text": {"type": "plain_text", "text": s}, "value": s}
                                     for s in list(services)[:100]]}})
    return {
        "type": "modal", "callback_id": CallbackId.OPEN_INCIDENT_MODAL.value,
        "title": {"type": "plain_text", "text": "Open an incident"},
        "submit": {"type": "plain_text", "text": "Open"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": channel_id or "",
        "blocks": blocks,
    }
