"""Exports of a scripted incident, on SQLite and PostgreSQL: every event, both zones, durations."""

from __future__ import annotations

import json
import tracemalloc
from datetime import timedelta

import jsonschema
import pytest
from sqlalchemy import insert, select

from bot.db.engine import transaction
from bot.export import jsonexport, pipeline
from bot.export import service as exports
from bot.export.models import FollowUp
from bot.incidents import service as incidents
from bot.incidents.models import TimelineEvent
from bot.playbooks.models import Severity
from tests.export.conftest import SECRETS
from tests.export.scripted import AVA, BEN, LEAKED, START, script_incident


def _utc(minutes: float) -> str:
    return f"{START + timedelta(minutes=minutes):%Y-%m-%d %H:%M:%S} UTC"


def _est(minutes: float) -> str:
    return f"{START + timedelta(minutes=minutes) - timedelta(hours=5):%Y-%m-%d %H:%M:%S} EST"


def _section(markdown: str, title: str) -> str:
    start = markdown.index(f"\n## {title}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start:end if end != -1 else None]


def _timeline_rows(markdown: str) -> list[list[str]]:
    rows = []
    for line in _section(markdown, "Timeline").splitlines():
        if line.startswith("| ") and line[2:3].isdigit():
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


async def test_markdown_has_every_event_in_order_with_both_zones(exporter, sessions, clock):
    run = await script_incident(sessions, clock)
    clock.advance(3600)
    text = await pipeline.render_text(exporter, number=run.number, fmt="md")

    rows = _timeline_rows(text)
    assert len(rows) == len(run.expected) == 16
    for seq, (row, (kind, fragment, minutes)) in enumerate(zip(rows, run.expected, strict=True), start=1):
        assert row[0] == str(seq)
        assert row[1] == _utc(minutes), (row, kind)
        assert row[2] == _est(minutes), (row, kind)
        assert fragment in row[5], (fragment, row)
    assert "| Time (UTC) | Time (America/New_York) | Event | Who | Details |" in text

    header = text.split("## Key times")[0]
    assert f"# INC-{run.number}: Checkout is failing — post-mortem" in header
    assert "| Severity | P1 (High) |" in header
    assert "| Services | api |" in header
    assert "| Commander | ben |" in header
    assert "| Status | resolved |" in header
    times = _section(text, "Key times")
    assert f"| Started | {_utc(0)} | {_est(0)} |" in times
    assert f"| Acknowledged | {_utc(4)} | {_est(4)} |" in times
    assert f"| Mitigated | {_utc(12)} | {_est(12)} |" in times
    assert f"| Resolved | {_utc(30)} | {_est(30)} |" in times
    assert "| Time to acknowledge | 4m |" in times
    assert "| Time to mitigate | 12m |" in times
    assert "| Time to resolve | 30m |" in times
    assert "| Response target (P1: respond within 1h) | met: acknowledged in 4m (target 1h) |" in times

    rollbacks = _section(text, "Rollbacks")
    # The two rollback events are one rollback: started at the first, live at the completion.
    assert (f"| — | api (render) | dep-bad → dep-good | — | ben | {_utc(7)} | {_est(7)} | "
            f"14:09:00 UTC / 09:09:00 EST | not reached | 2m | completed |") in rollbacks
    assert rollbacks.count("dep-bad → dep-good") == 1
    pages = _section(text, "Pages")
    assert f"| {_utc(1)} | {_est(1)} | ben | user | 1 | delivered |" in pages
    assert f"| {_utc(2)} | {_est(2)} | pagerduty:default | pagerduty | 1 | failed |" in pages
    participants = _section(text, "Participants")
    assert "- ben — commander, acknowledged, paged, follow-up owner" in participants
    assert "- ava — reporter, follow-up owner" in participants
    followups = _section(text, "Follow-ups")
    assert ("- [ ] Revert or fix the change in git (api was rolled back from dep-bad to dep-good)"
            " — owner: ben _(added automatically)_") in followups
    assert "- [ ] Add a canary for checkout — owner: ava" in followups
    assert "30% of checkouts fail for @ava's customers; see #general" in _section(text, "Impact")
    assert "a bad deploy of the payment client" in _section(text, "Root cause")
    assert "canaries catch this" in _section(text, "Lessons learned")
    assert "Rolled back the payment client" in _section(text, "Summary")
    assert LEAKED not in text and "[redacted]" in text
    for secret in SECRETS.values():
        assert secret not in text


async def test_json_matches_its_schema_and_the_timeline(exporter, sessions, clock):
    run = await script_incident(sessions, clock)
    text = await pipeline.render_text(exporter, number=run.number, fmt="json")
    document = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(jsonexport.schema())
    jsonschema.validate(document, jsonexport.schema(), cls=jsonschema.Draft202012Validator)
    assert document["schema_version"] == jsonexport.SCHEMA_VERSION == "2.0"
    assert document["event_count"] == len(document["timeline"]) == len(run.expected)
    for seq, (event, (kind, fragment, minutes)) in enumerate(
            zip(document["timeline"], run.expected, strict=True), start=1):
        assert (event["seq"], event["kind"]) == (seq, kind)
        moment = START + timedelta(minutes=minutes)
        assert event["occurred_at"]["utc"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert event["occurred_at"]["local"] == (moment - timedelta(hours=5)).strftime(
            "%Y-%m-%dT%H:%M:%S-05:00")
        assert fragment.replace("\\|", "|") in event["text"]
    assert document["durations"]["time_to_acknowledge"] == {"seconds": 240, "text": "4m"}
    assert document["durations"]["time_to_mitigate"]["seconds"] == 720
    assert document["durations"]["time_to_resolve"]["seconds"] == 1800
    assert document["response_target"]["met"] is True
    assert document["response_target"]["respond_within"]["seconds"] == 3600
    assert document["incident"]["commander"] == {"id": BEN, "name": "ben"}
    assert document["incident"]["reporter"] == {"id": AVA, "name": "ava"}
    assert [f["text"] for f in document["followups"]] == [
        "Revert or fix the change in git (api was rolled back from dep-bad to dep-good)",
        "Add a canary for checkout"]
    assert document["followups"][0]["automatic"] is True
    assert [r["state"] for r in document["rollbacks"]] == ["completed"] and document["rollback_count"] == 1
    assert [p["pager"] for p in document["pages"]] == ["user", "pagerduty"]
    assert LEAKED not in text


async def test_html_export_has_the_svg_timeline_and_every_event(exporter, sessions, clock):
    run = await script_incident(sessions, clock)
    text = await pipeline.render_text(exporter, number=run.number, fmt="html")
    assert text.startswith("<!doctype html>")
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="timeline"' in text
    for phase in ("open", "acknowledged", "mitigated", "resolved"):
        assert f'data-phase="{phase}"' in text
    assert text.count('<tr class="event ') == len(run.expected)
    assert "30% of checkouts fail for <span class=\"mention\">@ava</span>&#39;s customers" in text
    assert LEAKED not in text


async def test_response_target_missed_and_unacknowledged(exporter, sessions, clock):
    clock.set(START)
    async with transaction(sessions) as session:
        opened = await incidents.open_incident(session=session, severity=Severity.P0,
                                               title="Everything is down", reporter_id=AVA,
                                               now=clock.now())
    number = opened.incident.number
    clock.advance(timedelta(minutes=3))
    prepared = await pipeline.prepare(exporter, number=number)
    assert prepared.doc.response.met is None and "pending" in prepared.doc.response.verdict
    clock.advance(timedelta(minutes=4))
    prepared = await pipeline.prepare(exporter, number=number)
    assert prepared.doc.response.met is False
    assert prepared.doc.response.verdict == "missed: not acknowledged within 5m"
    async with transaction(sessions) as session:
        incident = await incidents.get_incident(session=session, number=number)
        await incidents.acknowledge(session=session, incident=incident, actor=BEN, now=clock.now())
    prepared = await pipeline.prepare(exporter, number=number)
    assert prepared.doc.response.verdict == "missed by 2m: acknowledged in 7m (target 5m)"


async def test_followups_are_added_once_per_completed_rollback(sessions, clock):
    run = await script_incident(sessions, clock)
    async with transaction(sessions) as session:
        incident = await incidents.get_incident(session=session, number=run.number)
        # the provider reports the same completed rollback again: no second follow-up
        await incidents.record_event(session=session, incident=incident, kind="rollback",
                                     now=clock.now(), actor=BEN,
                                     data={"service": "api", "provider": "render",
                                           "state": "completed", "from": "dep-bad", "to": "dep-good"})
    async with sessions() as session:
        incident = await incidents.get_incident(session=session, number=run.number)
        items = await exports.list_followups(session=session, incident=incident)
    assert [(f.automatic, f.owner_id) for f in items] == [(True, BEN), (False, AVA)]
    with pytest.raises(incidents.IncidentError, match="needs some text"):
        async with transaction(sessions) as session:
            incident = await incidents.get_incident(session=session, number=run.number)
            await exports.add_followup(session=session, incident=incident, text="  ", actor=AVA,
                                       now=clock.now())


async def _bulk_events(sessions, incident_id: int, count: int) -> None:
    base = START + timedelta(minutes=1)
    async with transaction(sessions) as session:
        for first in range(0, count, 2000):
            rows = [{"incident_id": incident_id, "kind": "note", "actor": BEN,
                     "text": f"note {n:06d} " + "x" * 80, "occurred_at": base + timedelta(seconds=n),
                     "recorded_at": base + timedelta(seconds=n), "data": {"n": n}}
                    for n in range(first, min(count, first + 2000))]
            await session.execute(insert(TimelineEvent), rows)


async def _peak_export(exporter, number: int, fmt: str) -> tuple[int, int]:
    written = 0

    def sink(block: bytes) -> None:
        nonlocal written
        written += len(block)

    tracemalloc.start()
    try:
        await pipeline.write(exporter, number=number, fmt=fmt, sink=sink)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, written


@pytest.mark.parametrize("fmt", ["md", "json"])
async def test_export_streams_in_bounded_memory(exporter, sessions, clock, fmt):
    """Four times the events, about the same peak memory: the timeline is never held whole."""
    exporter.page_size = 250
    numbers = []
    for count in (1000, 4000):
        clock.set(START)
        async with transaction(sessions) as session:
            opened = await incidents.open_incident(session=session, severity=Severity.P2,
                                                   title=f"big {count}", reporter_id=AVA,
                                                   now=clock.now())
        await _bulk_events(sessions, opened.incident.id, count)
        numbers.append(opened.incident.number)
    small_peak, small_size = await _peak_export(exporter, numbers[0], fmt)
    large_peak, large_size = await _peak_export(exporter, numbers[1], fmt)
    assert large_size > 3.5 * small_size
    assert large_peak < 1.5 * small_peak + 256 * 1024, (small_peak, large_peak)


async def test_streamed_json_of_many_events_is_valid_and_complete(exporter, sessions, clock):
    exporter.page_size = 100
    clock.set(START)
    async with transaction(sessions) as session:
        opened = await incidents.open_incident(session=session, severity=Severity.P2, title="many",
                                               reporter_id=AVA, now=clock.now())
    await _bulk_events(sessions, opened.incident.id, 1050)
    document = json.loads(await pipeline.render_text(exporter, number=opened.incident.number,
                                                     fmt="json"))
    assert document["event_count"] == len(document["timeline"]) == 1051
    assert [e["seq"] for e in document["timeline"]] == list(range(1, 1052))
    assert [e["data"].get("n") for e in document["timeline"][1:]] == list(range(1050))


async def test_followup_rows_are_stored(sessions, clock):
    run = await script_incident(sessions, clock)
    async with sessions() as session:
        rows = (await session.execute(select(FollowUp).order_by(FollowUp.id))).scalars().all()
    assert [r.text for r in rows][1] == "Add a canary for checkout"
    assert rows[0].source_key.startswith("rollback:")
    assert run.number == 1
