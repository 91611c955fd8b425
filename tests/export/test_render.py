"""Pure parts of the export: names and mrkdwn, scrubbing, the document, Markdown, JSON, SVG."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from bot.export import jsonexport, markdown, svg
from bot.export.document import (
    Facts,
    Moment,
    build_postmortem,
    describe_event,
    event_row,
    pager_of,
    response_target,
)
from bot.export.mrkdwn import plain_text
from bot.export.names import Names, ids_in_data, mentioned_ids, target_label
from bot.export.scrub import REDACTED, Scrubber
from bot.incidents.models import Incident, IncidentState, TimelineEvent
from bot.playbooks.models import Severity

NY = ZoneInfo("America/New_York")
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
NAMES = Names({"U1": "Ava Lin", "U2": "ben"}, {"C1": "#inc-1-checkout"})


def _incident(**values) -> Incident:
    defaults = {"id": 1, "number": 7, "title": "Checkout | failing", "severity": Severity.P1,
                "state": IncidentState.RESOLVED, "reporter_id": "U1", "commander_id": "U2",
                "opened_at": T0, "acknowledged_at": T0 + timedelta(minutes=4),
                "mitigated_at": T0 + timedelta(minutes=12), "resolved_at": T0 + timedelta(minutes=30),
                "updated_at": T0, "service": "api", "channel_id": "C1", "channel_name": "inc-1-old"}
    defaults.update(values)
    return Incident(**defaults)


def _event(kind: str, text: str = "", minutes: float = 0, actor: str | None = "U2", **data):
    when = T0 + timedelta(minutes=minutes)
    return TimelineEvent(id=int(minutes * 10) + 1, incident_id=1, kind=kind, actor=actor, text=text,
                         occurred_at=when, recorded_at=when, data=data)


def _doc(facts: Facts | None = None, **incident):
    return build_postmortem(incident=_incident(**incident), facts=facts or Facts(event_count=0),
                            names=NAMES, zone=NY, scrub=Scrubber(["s3cr3t-value"]),
                            now=T0 + timedelta(hours=2), respond_within=timedelta(hours=1))


# --- names and mrkdwn ----------------------------------------------------------------------


def test_plain_text_renders_mentions_channels_groups_and_links():
    text = ("<@U1> and <@U9|zed> in <#C1> and <#C7|ops>; <!subteam^S1|@oncall> <!here> "
            "see <https://x.example/a|the runbook> or <https://y.example> &amp; more")
    assert plain_text(text, NAMES) == (
        "@Ava Lin and @zed in #inc-1-checkout and #ops; @oncall @here see the runbook "
        "(https://x.example/a) or https://y.example & more")
    assert plain_text("<@U9>", NAMES) == "@U9"  # unknown: the id
    assert mentioned_ids(text) == ({"U1", "U9"}, {"C1", "C7"})
    assert ids_in_data({"target": "user:U5", "recipient": "channel:C5", "owner": "U6",
                        "user": "not-an-id"}) == ({"U5", "U6"}, {"C5"})
    assert target_label("user:U1", NAMES) == "Ava Lin"
    assert target_label("channel:C1", NAMES) == "#inc-1-checkout"
    assert target_label("pagerduty:default", NAMES) == "pagerduty:default"
    assert NAMES.user("firebreak") == "Firebreak"


def test_scrubber_removes_configured_secrets_and_token_shapes():
    scrub = Scrubber(["supersecret-123", "supersecret"])
    assert scrub("a supersecret-123 b supersecret") == f"a {REDACTED} b {REDACTED}"
    assert scrub("xoxb-123456789-abcdefgh and ghp_" + "a" * 36) == f"{REDACTED} and {REDACTED}"
    assert scrub("Authorization: Bearer abcdefghijklmnop1234") == f"Authorization: Bearer {REDACTED}"
    assert scrub.value({"k": ["supersecret", 3, {"supersecret": None}]}) == {
        "k": [REDACTED, 3, {REDACTED: None}]}


# --- the document --------------------------------------------------------------------------


def test_moments_are_labelled_in_both_zones():
    summer = Moment(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), NY)
    assert (summer.utc_text, summer.local_text) == ("2026-07-01 12:00:00 UTC",
                                                    "2026-07-01 08:00:00 EDT")
    assert summer.as_json() == {"utc": "2026-07-01T12:00:00Z", "local": "2026-07-01T08:00:00-04:00",
                                "zone": "America/New_York", "zone_abbreviation": "EDT"}


@pytest.mark.parametrize("ack, resolved, now, met, verdict", [
    (4, 30, 60, True, "met: acknowledged in 4m (target 1h)"),
    (60, 90, 120, True, "met: acknowledged in 1h (target 1h)"),
    (75, 90, 120, False, "missed by 15m: acknowledged in 1h 15m (target 1h)"),
    (None, None, 30, None, "pending: not acknowledged yet (target 1h)"),
    (None, None, 61, False, "missed: not acknowledged within 1h"),
])
def test_response_target(ack, resolved, now, met, verdict):
    minutes = lambda m: None if m is None else T0 + timedelta(minutes=m)
    target = response_target(opened_at=T0, acknowledged_at=minutes(ack),
                             resolved_at=minutes(resolved), respond_within=timedelta(hours=1),
                             now=minutes(now))
    assert (target.met, target.verdict) == (met, verdict)
    unknown = response_target(opened_at=T0, acknowledged_at=None, resolved_at=None,
                              respond_within=None, now=T0)
    assert unknown.met is None


def test_document_header_names_and_durations():
    doc = _doc(title="Leaked s3cr3t-value here")
    assert doc.title == f"Leaked {REDACTED} here"
    assert (doc.commander.name, doc.reporter.name) == ("ben", "Ava Lin")
    assert doc.channel_name == "inc-1-checkout"  # the current name, from Slack
    assert [s.text if s else None for _, s in doc.durations] == ["4m", "12m", "30m"]
    assert doc.response.met is True
    open_doc = _doc(state=IncidentState.OPEN, acknowledged_at=None, mitigated_at=None,
                    resolved_at=None)
    assert [s for _, s in open_doc.durations] == [None, None, None]


def test_pages_rollbacks_and_events_are_described():
    page = _event("page_failed", minutes=2, actor="firebreak", target="oncall:backend",
                  recipient="user:U1", level=2)
    rollback = _event("rollback", minutes=5, service="web", provider="vercel", state="completed",
                      **{"from": "dpl_2", "to": "dpl_1"})
    assert describe_event(page, NAMES) == "Page failed: Ava Lin (level 2)"
    assert describe_event(rollback, NAMES) == "Rollback of web dpl_2 → dpl_1 via vercel (completed)"
    assert pager_of(page.data) == "user" and pager_of({"target": "opsgenie:ops"}) == "opsgenie"
    doc = _doc(Facts(event_count=2, pages=[page], page_total=1, rollbacks=[rollback],
                     rollback_total=1, actors=["U2", "firebreak"]))
    assert doc.services == ("api", "web")
    assert doc.pages[0].target_name == "Ava Lin" and doc.pages[0].level == 2
    assert [(p.person.name, p.roles) for p in doc.participants] == [
        ("ben", ("commander",)), ("Ava Lin", ("reporter", "paged"))]
    row = event_row(page, 3, NAMES, NY, Scrubber())
    assert (row.seq, row.label, row.actor.name, row.mark) == (3, "Page failed", "Firebreak",
                                                              "page-failed")


# --- Markdown and JSON ---------------------------------------------------------------------


def test_markdown_cells_escape_pipes_newlines_and_html():
    assert markdown.cell("a | b\nc <script>") == "a \\| b <br> c &lt;script>"
    assert markdown.cell("") == " "


def test_markdown_and_json_render_without_a_database():
    doc = _doc(Facts(event_count=1))
    row = event_row(_event("note", "hello <@U1>", minutes=3), 1, NAMES, NY, Scrubber())
    text = "".join(markdown.render(doc, [row]))
    assert "| 1 | 2026-03-02 14:03:00 UTC | 2026-03-02 09:03:00 EST | Note | ben | hello @Ava Lin |" in text
    for heading in ("## Key times", "## Rollbacks", "## Pages", "## Timeline", "## Participants",
                    "## Follow-ups", "## Impact", "## Root cause", "## Lessons learned"):
        assert heading in text
    document = json.loads("".join(jsonexport.render(doc, [row])))
    jsonschema.validate(document, jsonexport.schema(), cls=jsonschema.Draft202012Validator)
    assert document["timeline"][0]["text"] == "hello @Ava Lin"


def test_limited_markdown_fits_github_and_points_to_the_full_timeline():
    rows = [event_row(_event("note", "x" * 500, minutes=n / 10), n + 1, NAMES, NY, Scrubber())
            for n in range(400)]
    doc = _doc(Facts(event_count=400))
    body = markdown.render_limited(doc, rows, limit=60_000, full_timeline_at="see the web page")
    assert len(body) <= 60_000
    assert body.startswith(markdown.marker("INC-7"))
    assert "more events: see the web page |" in body
    assert "## Lessons learned" in body


# --- SVG -----------------------------------------------------------------------------------


def test_svg_draws_phases_marks_and_labelled_ticks():
    scale = svg.Scale.covering(T0, T0 + timedelta(minutes=30))
    marks = svg.MarkBuckets(scale, NY)
    for n in range(50):  # fifty pages in the same second: one mark, counted
        marks.add(T0 + timedelta(minutes=1), "page", f"page {n}")
    marks.add(T0 + timedelta(minutes=1), "page-failed", "failed page")
    marks.add(T0 + timedelta(minutes=9), "rollback", "rollback <api>")
    marks.add(T0 + timedelta(minutes=6), "note", "a note")
    marks.add(T0 + timedelta(minutes=6), "unknown-kind", "ignored")
    phases = svg.phases(opened_at=T0, acknowledged_at=T0 + timedelta(minutes=4),
                        mitigated_at=T0 + timedelta(minutes=12),
                        resolved_at=T0 + timedelta(minutes=30))
    drawing = svg.render(scale=scale, phase_list=phases, marks=marks, zone=NY,
                         now=T0 + timedelta(hours=1), title="Timeline of INC-7", event_count=60)
    assert [p.name for p in phases] == ["open", "acknowledged", "mitigated", "resolved"]
    for phase in ("open", "acknowledged", "mitigated", "resolved"):
        assert f'data-phase="{phase}"' in drawing
    assert drawing.count('class="mark mark-page-failed" data-count="51"') == 1
    assert 'class="mark mark-rollback"' in drawing and "rollback &lt;api&gt;" in drawing
    assert 'class="mark mark-note"' in drawing
    assert ">09:05<" in drawing  # tick labels in the display zone
    assert "axis in America/New_York (EST)" in drawing
    assert "2026-03-02 14:09:00 UTC / 2026-03-02 09:09:00 EST" in drawing


def test_svg_ticks_are_round_local_times_and_bounded():
    for hours in (0.1, 3, 30, 24 * 20):
        scale = svg.Scale.covering(T0, T0 + timedelta(hours=hours))
        found = svg.ticks(scale, NY)
        assert 1 <= len(found) <= 16
        assert all(scale.start <= t <= scale.end for t in found)
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: ticks still fall on round local hours
    scale = svg.Scale.covering(T0, T0 + timedelta(hours=6))
    assert {t.astimezone(kolkata).minute for t in svg.ticks(scale, kolkata)} == {0}


def test_phases_skip_what_did_not_happen():
    found = svg.phases(opened_at=T0, acknowledged_at=None, mitigated_at=None,
                       resolved_at=T0 + timedelta(minutes=5))
    assert [(p.name, p.end) for p in found] == [("open", T0 + timedelta(minutes=5)),
                                                ("resolved", None)]
