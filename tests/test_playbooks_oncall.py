"""Who is on call: shifts across daylight-saving changes, overrides, secondaries, coverage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.playbooks.models import OnCallRole, Rotation
from bot.playbooks.oncall import (
    ProblemKind,
    coverage_problems,
    local_to_utc,
    next_handoffs,
    on_call,
    oncall_user,
    resolve_oncall,
    shift_at,
)
from bot.playbooks.targets import Target

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
A, B, C = "U0AAAAAAA", "U0BBBBBBB", "U0CCCCCCC"


def rotation(**changes: Any) -> Rotation:
    data: dict[str, Any] = {
        "timezone": "America/New_York",
        "handoff": "09:00",
        "shift": "1w",
        "start": "2026-01-05",
        "members": [f"user:{A}", f"user:{B}", f"user:{C}"],
    }
    data.update(changes)
    return Rotation.model_validate(data)


def local(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone)  # type: ignore[misc]


# --- handoffs keep their local time across daylight saving --------------------------


@pytest.mark.parametrize(
    ("zone", "change", "offset_before", "offset_after"),
    [
        ("America/New_York", (2026, 3, 8), -5, -4),  # spring forward
        ("America/New_York", (2026, 11, 1), -4, -5),  # fall back
        ("Europe/Berlin", (2026, 3, 29), 1, 2),
        ("Europe/Berlin", (2026, 10, 25), 2, 1),
    ],
)
def test_daily_handoffs_stay_at_nine_local_across_dst(
    zone: str, change: tuple[int, int, int], offset_before: int, offset_after: int
) -> None:
    tz = ZoneInfo(zone)
    daily = rotation(timezone=zone, shift="1d")
    day_before = datetime(*change, tzinfo=tz) - timedelta(days=1)
    handoffs = next_handoffs(daily, day_before.replace(hour=0), 3)
    assert [(h.start.day, h.start.hour, h.start.minute) for h in handoffs] == [
        ((day_before + timedelta(days=n)).day, 9, 0) for n in range(3)
    ]
    assert handoffs[0].start.utcoffset() == timedelta(hours=offset_before)
    assert handoffs[1].start.utcoffset() == timedelta(hours=offset_after)
    # the shift that spans the change lasts 23h or 25h of real time
    real = handoffs[1].start.astimezone(UTC) - handoffs[0].start.astimezone(UTC)
    assert real == timedelta(hours=24 - (offset_after - offset_before))


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        ("America/New_York", (2026, 3, 2), (2026, 3, 9)),
        ("America/New_York", (2026, 10, 26), (2026, 11, 2)),
        ("Europe/Berlin", (2026, 3, 23), (2026, 3, 30)),
        ("Europe/Berlin", (2026, 10, 19), (2026, 10, 26)),
    ],
)
def test_weekly_handoff_at_nine_local_on_both_sides(
    zone: str, before: tuple[int, int, int], after: tuple[int, int, int]
) -> None:
    tz = ZoneInfo(zone)
    weekly = rotation(timezone=zone)
    just_before = on_call(weekly, datetime(*after, 8, 59, tzinfo=tz))
    just_after = on_call(weekly, datetime(*after, 9, 0, tzinfo=tz))
    assert just_before.shift_start == datetime(*before, 9, 0, tzinfo=tz)
    assert just_before.shift_end == datetime(*after, 9, 0, tzinfo=tz)
    assert (just_before.shift_end.hour, just_after.shift_start.hour) == (9, 9)
    assert just_after.shift_start == just_before.shift_end
    assert just_after.primary == just_before.secondary


def test_who_is_on_call_in_the_sample_week_of_the_spring_change() -> None:
    weekly = rotation()  # starts Monday 2026-01-05: A, B, C, A, ... each week
    assert on_call(weekly, local(NEW_YORK, 2026, 1, 5, 9, 0)).primary == A
    assert on_call(weekly, local(NEW_YORK, 2026, 1, 12, 8, 59)).primary == A
    assert on_call(weekly, local(NEW_YORK, 2026, 1, 12, 9, 0)).primary == B
    # week 8 (2026-03-02) is C's: it runs into the DST change and ends at 09:00 EDT
    at = datetime(2026, 3, 9, 12, 59, tzinfo=UTC)  # 08:59 EDT
    assert on_call(weekly, at).primary == C
    assert on_call(weekly, at + timedelta(minutes=1)).primary == A


def test_twelve_hour_shifts_step_in_wall_clock_time() -> None:
    half = rotation(shift="12h", start="2026-03-07")
    starts = [s.start for s in next_handoffs(half, local(NEW_YORK, 2026, 3, 7, 0, 0), 5)]
    assert [(s.day, s.hour) for s in starts] == [(7, 9), (7, 21), (8, 9), (8, 21), (9, 9)]
    # the night shift across the spring change is one hour shorter
    assert starts[2].astimezone(UTC) - starts[1].astimezone(UTC) == timedelta(hours=11)
    assert [s.primary for s in next_handoffs(half, local(NEW_YORK, 2026, 3, 7, 0, 0), 4)] == [A, B, C, A]


def test_a_handoff_in_the_spring_gap_happens_when_the_clocks_jump() -> None:
    night = rotation(handoff="02:30", shift="1d", start="2026-03-01")
    shift = shift_at(night, local(NEW_YORK, 2026, 3, 8, 12, 0))
    assert shift is not None
    assert shift.start == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, the jump
    assert shift.end == local(NEW_YORK, 2026, 3, 9, 2, 30)
    assert local_to_utc(datetime(2026, 11, 1, 1, 30), NEW_YORK) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


# --- primary, secondary and overrides --------------------------------------------------


def test_secondary_is_the_next_member_and_wraps() -> None:
    weekly = rotation()
    assert (on_call(weekly, local(NEW_YORK, 2026, 1, 6)).secondary) == B
    third_week = on_call(weekly, local(NEW_YORK, 2026, 1, 20, 10))
    assert (third_week.primary, third_week.secondary) == (C, A)
    assert oncall_user(weekly, OnCallRole.SECONDARY, local(NEW_YORK, 2026, 1, 20, 10)) == A
    assert on_call(rotation(members=[f"user:{A}"]), local(NEW_YORK, 2026, 1, 20)).secondary is None


def test_before_the_first_shift_nobody_is_on_call() -> None:
    before = on_call(rotation(), local(NEW_YORK, 2026, 1, 5, 8, 59))
    assert (before.primary, before.secondary, before.shift_start) == (None, None, None)
    assert before.shift_end == local(NEW_YORK, 2026, 1, 5, 9, 0)
    assert shift_at(rotation(), local(NEW_YORK, 2026, 1, 1)) is None
    assert next_handoffs(rotation(), local(NEW_YORK, 2025, 6, 1), 1)[0].index == 0


def test_override_replaces_the_primary_for_its_window_only() -> None:
    holiday = rotation(overrides=[{"from": "2026-12-24T09:00", "to": "2026-12-26T09:00", "user": f"user:{B}"}])
    # the week of 2026-12-21 is shift 50: 50 % 3 == 2 -> C primary, A secondary
    assert on_call(holiday, local(NEW_YORK, 2026, 12, 24, 8, 59)).primary == C
    covered = on_call(holiday, local(NEW_YORK, 2026, 12, 24, 9, 0))
    assert (covered.primary, covered.secondary, covered.scheduled_primary) == (B, A, C)
    assert covered.override is not None and covered.override.user == Target.parse(f"user:{B}")
    assert on_call(holiday, local(NEW_YORK, 2026, 12, 26, 9, 0)).primary == C


def test_override_by_the_secondary_makes_the_scheduled_primary_secondary() -> None:
    swap = rotation(overrides=[{"from": "2026-12-24T09:00", "to": "2026-12-25T09:00", "user": f"user:{A}"}])
    now = on_call(swap, local(NEW_YORK, 2026, 12, 24, 12))
    assert (now.primary, now.secondary) == (A, C)


def test_overlapping_overrides_the_latest_started_wins() -> None:
    nested = rotation(overrides=[
        {"from": "2026-02-02T09:00", "to": "2026-02-09T09:00", "user": "user:U0DDDDDDD"},
        {"from": "2026-02-04T09:00", "to": "2026-02-05T09:00", "user": "user:U0EEEEEEE"},
    ])
    assert on_call(nested, local(NEW_YORK, 2026, 2, 3)).primary == "U0DDDDDDD"
    assert on_call(nested, local(NEW_YORK, 2026, 2, 4, 12)).primary == "U0EEEEEEE"
    assert on_call(nested, local(NEW_YORK, 2026, 2, 6)).primary == "U0DDDDDDD"


def test_resolve_oncall_target() -> None:
    rotations = {"backend": rotation()}
    at = local(NEW_YORK, 2026, 1, 6)
    assert resolve_oncall(rotations, Target.parse("oncall:backend"), at) == A
    assert resolve_oncall(rotations, Target.parse("oncall:backend:secondary"), at) == B
    assert resolve_oncall(rotations, Target.parse("oncall:nope"), at) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        on_call(rotation(), datetime(2026, 1, 6))


# --- coverage problems -----------------------------------------------------------------


def test_time_before_start_is_a_gap_unless_an_override_covers_it() -> None:
    found = coverage_problems(rotation(), local(NEW_YORK, 2026, 1, 1), local(NEW_YORK, 2026, 2, 1))
    assert [(p.kind, p.start, p.end) for p in found] == [
        (ProblemKind.GAP, local(NEW_YORK, 2026, 1, 1), local(NEW_YORK, 2026, 1, 5, 9, 0))
    ]
    assert "nobody is on call from 2026-01-01 00:00 EST to 2026-01-05 09:00 EST" in found[0].message
    covered = rotation(overrides=[{"from": "2026-01-02T09:00", "to": "2026-01-05T09:00", "user": f"user:{C}"}])
    found = coverage_problems(covered, local(NEW_YORK, 2026, 1, 1), local(NEW_YORK, 2026, 2, 1))
    assert [(p.kind, p.start, p.end) for p in found] == [
        (ProblemKind.GAP, local(NEW_YORK, 2026, 1, 1), local(NEW_YORK, 2026, 1, 2, 9, 0))
    ]
    assert coverage_problems(rotation(), local(NEW_YORK, 2026, 1, 6), local(NEW_YORK, 2026, 12, 1)) == []


def test_overlapping_and_redundant_overrides_and_no_secondary() -> None:
    messy = rotation(
        members=[f"user:{A}"],
        overrides=[
            {"from": "2026-02-02T09:00", "to": "2026-02-04T09:00", "user": f"user:{A}"},
            {"from": "2026-02-10T09:00", "to": "2026-02-12T09:00", "user": f"user:{B}"},
            {"from": "2026-02-11T09:00", "to": "2026-02-13T09:00", "user": f"user:{C}"},
        ],
    )
    found = coverage_problems(messy, local(NEW_YORK, 2026, 2, 1), local(NEW_YORK, 2026, 3, 1))
    kinds = [p.kind for p in found]
    assert kinds == [ProblemKind.NO_SECONDARY, ProblemKind.REDUNDANT_OVERRIDE, ProblemKind.OVERLAP]
    overlap = found[2]
    assert (overlap.start, overlap.end) == (local(NEW_YORK, 2026, 2, 11, 9), local(NEW_YORK, 2026, 2, 12, 9))
    assert "overrides #2 (U0BBBBBBB) and #3 (U0CCCCCCC) overlap" in overlap.message
    # outside the window, nothing about the overrides
    later = coverage_problems(messy, local(NEW_YORK, 2026, 3, 1), local(NEW_YORK, 2026, 4, 1))
    assert [p.kind for p in later] == [ProblemKind.NO_SECONDARY]


def test_override_spanning_two_people_is_not_redundant() -> None:
    across = rotation(overrides=[{"from": "2026-01-10T09:00", "to": "2026-01-14T09:00", "user": f"user:{A}"}])
    assert coverage_problems(across, local(NEW_YORK, 2026, 1, 6), local(NEW_YORK, 2026, 2, 1)) == []


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(["America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata", "UTC"]),
    shift=st.sampled_from(["1d", "1w", "2w", "12h"]),
    at=st.datetimes(datetime(2026, 1, 6), datetime(2028, 12, 31), timezones=st.just(UTC)),
)
def test_every_instant_is_in_one_shift_that_hands_off_at_local_handoff(zone: str, shift: str, at: datetime) -> None:
    weekly = rotation(timezone=zone, shift=shift)
    now = on_call(weekly, at)
    assert now.shift_start is not None and now.shift_start <= at < now.shift_end
    assert {now.shift_start.strftime("%H:%M"), now.shift_end.strftime("%H:%M")} <= {"09:00", "21:00"}
    if shift != "12h":
        assert now.shift_start.strftime("%H:%M") == now.shift_end.strftime("%H:%M") == "09:00"
    assert now.primary != now.secondary
    following = on_call(weekly, now.shift_end)
    assert following.shift_start == now.shift_end and following.primary == now.secondary
