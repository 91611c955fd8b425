"""``playbooks check``: reading ``--at`` and the report for a fixed time."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.playbooks.check import parse_at, render_check_report
from bot.playbooks.loader import load_playbooks

SAMPLES = Path(__file__).resolve().parents[1] / "playbooks"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-08T09:30-05:00", datetime(2026, 3, 8, 14, 30, tzinfo=UTC)),
        ("2026-03-08T14:30Z", datetime(2026, 3, 8, 14, 30, tzinfo=UTC)),
        ("2026-03-08T09:30:15+01:00", datetime(2026, 3, 8, 8, 30, 15, tzinfo=UTC)),
        ("2026-03-08T09:30 America/New_York", datetime(2026, 3, 8, 13, 30, tzinfo=UTC)),  # EDT
        ("2026-03-07 09:30 America/New_York", datetime(2026, 3, 7, 14, 30, tzinfo=UTC)),  # EST
        ("  2026-10-25T09:00 Europe/Berlin ", datetime(2026, 10, 25, 8, 0, tzinfo=UTC)),
    ],
)
def test_parse_at_forms(text: str, expected: datetime) -> None:
    assert parse_at(text) == expected


def test_parse_at_keeps_the_zone_it_was_given() -> None:
    assert parse_at("2026-03-08T09:30 America/New_York").tzinfo == ZoneInfo("America/New_York")
    assert parse_at("2026-03-08T09:30-05:00").tzinfo == timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-03-08T09:30", "no offset or time zone"),
        ("tomorrow", "cannot read the time"),
        ("2026-03-08T09:30 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("2026-03-08T09:30-05:00 America/New_York", "not both"),
        ("2026-03-08T02:30 America/New_York", "does not exist in America/New_York"),
        ("", "cannot read the time"),
    ],
)
def test_parse_at_errors_say_what_is_accepted(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_at(text)


def test_report_for_a_fixed_time() -> None:
    groups = {"S0PLATFORM": ["U024BE7LH", "U0G9QF9C6"], "S0LEADS": ["U0LEAD001"],
              "S0MANAGERS": ["U04QK2M8N"], "S0EXEC": []}
    report = render_check_report(
        load_playbooks(SAMPLES),
        parse_at("2026-03-09T08:50 America/New_York"),  # ten minutes before a handoff
        resolve_group=groups.__getitem__,
        pagerduty_keys=["default"],
    )
    lines = report.splitlines()
    assert "Incident opened at 2026-03-09 12:50 UTC = 2026-03-09 08:50 EDT. This check pages nobody." in lines
    assert ("  backend: primary U1H2J3K4L, secondary U024BE7LH; shift 2026-03-02 09:00 EST → "
            "2026-03-09 09:00 EDT [America/New_York]") in lines
    p0 = lines[lines.index("P0 Critical: Complete outage (respond within 5m, status update every 30m)"):]
    assert p0[1:9] == [
        "  +0m     2026-03-09 12:50 UTC = 2026-03-09 08:50 EDT  (level 1)",
        "          oncall:backend             → U1H2J3K4L (backend primary, DM)",
        "          pagerduty:default          → PagerDuty event (PAGERDUTY_ROUTING_KEY_DEFAULT)",
        "  +5m     2026-03-09 12:55 UTC = 2026-03-09 08:55 EDT  (level 2)",
        "          oncall:backend:secondary   → U024BE7LH (backend secondary, DM)",
        "          group:S0PLATFORM           → U024BE7LH, U0G9QF9C6 (DM each)",
        "          group:S0LEADS              → U0LEAD001 (DM each)",
        "  +15m    2026-03-09 13:05 UTC = 2026-03-09 09:05 EDT  (level 3)",
    ]
    # the handoff at 09:00 happened between level 2 and level 3: the manager rotation moved on
    assert p0[9] == "          oncall:managers            → U07ZX3B5C (managers primary, DM)"
    assert "  +1h30m  2026-03-09 14:20 UTC = 2026-03-09 10:20 EDT  (level 5, repeat 1 of 2)" in p0
    p1 = lines[lines.index("P1 High: Major feature broken (respond within 1h, status update every 1h)"):]
    # P1 level 2 at +15m is after the 09:00 handoff: U024BE7LH is primary now, U0G9QF9C6 secondary
    assert p1[1:4] == [
        "  +0m     2026-03-09 12:50 UTC = 2026-03-09 08:50 EDT  (level 1)",
        "          oncall:backend             → U1H2J3K4L (backend primary, DM)",
        "  +5m     2026-03-09 12:55 UTC = 2026-03-09 08:55 EDT  (level 1, repeat 1 of 1)",
    ]
    assert "          oncall:backend:secondary   → U0G9QF9C6 (backend secondary, DM)" in p1
    assert "P3 Low: Cosmetic issues (respond within 1d)" in lines
    warnings = lines[lines.index("Warnings") + 1:]
    assert warnings == ["  ! group S0EXEC has no members: it pages nobody"]


def test_report_without_resolver_shows_group_ids_and_flags_gaps_and_missing_keys() -> None:
    report = render_check_report(load_playbooks(SAMPLES), parse_at("2026-01-05T13:55Z"), pagerduty_keys=[])
    assert "group:S0LEADS              → members of S0LEADS (DM each)" in report
    # 08:55 EST: the rotations start at 09:00, so the first page reaches nobody
    assert "oncall:backend             → nobody on call (primary)" in report
    assert "  ! P0 +0m: oncall:backend pages nobody at 2026-01-05 13:55 UTC" in report
    assert "  ! rotation backend: nobody is on call from 2026-01-05 08:55 EST to 2026-01-05 09:00 EST" in report
    assert "  ! pagerduty:default has no routing key: set PAGERDUTY_ROUTING_KEY_DEFAULT" in report
    # UTC input: times in UTC only, the rotation's local time beside the person
    assert "  +5m     2026-01-05 14:00 UTC  (level 2)" in report
    assert "→ U0G9QF9C6 (backend secondary, 09:00 EST rotation time, DM)" in report


def test_report_shows_overrides_and_overlaps(tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    shutil.copytree(SAMPLES, folder)
    oncall = folder / "oncall.yaml"
    oncall.write_text(oncall.read_text().replace(
        '      - {from: "2026-12-24T09:00", to: "2026-12-26T09:00", user: "user:U0G9QF9C6"}',
        '      - {from: "2026-12-24T09:00", to: "2026-12-26T09:00", user: "user:U0G9QF9C6"}\n'
        '      - {from: "2026-12-25T09:00", to: "2026-12-27T09:00", user: "user:U024BE7LH"}',
    ))
    report = render_check_report(load_playbooks(folder), parse_at("2026-12-24T10:00 America/New_York"))
    assert "backend: primary U0G9QF9C6 (override for U1H2J3K4L), secondary U024BE7LH" in report
    assert "→ U0G9QF9C6 (backend primary, override, DM)" in report
    assert ("  ! rotation backend: overrides #1 (U0G9QF9C6) and #2 (U024BE7LH) overlap from "
            "2026-12-25 09:00 EST to 2026-12-26 09:00 EST") in report


def test_escalation_offsets_are_elapsed_time_across_the_autumn_change() -> None:
    # 01:30 happens twice on 2026-11-01 in New York; the first one (EDT) is meant
    report = render_check_report(load_playbooks(SAMPLES), parse_at("2026-11-01T01:30 America/New_York"))
    assert "  +0m     2026-11-01 05:30 UTC = 2026-11-01 01:30 EDT  (level 1)" in report
    assert "  +1h     2026-11-01 06:30 UTC = 2026-11-01 01:30 EST  (level 5)" in report


def test_report_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        render_check_report(load_playbooks(SAMPLES), datetime(2026, 3, 8, 9, 30))


def test_report_explains_the_opsgenie_priority_of_each_severity(tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    shutil.copytree(SAMPLES, folder)
    escalation = folder / "escalation.yaml"
    escalation.write_text(escalation.read_text().replace(
        '["oncall:backend", "pagerduty:default"]', '["oncall:backend", "opsgenie:platform"]', 1))
    report = render_check_report(load_playbooks(folder), parse_at("2026-03-02T09:00 America/New_York"))
    line = next(x for x in report.splitlines() if "opsgenie:platform" in x)
    assert line.endswith("Opsgenie alert for team platform, priority P1 for a P0 incident "
                         "(Firebreak's P0–P3 are Opsgenie's P1–P4: Opsgenie counts from P1)"), line
