"""Who is on call in a rotation (SPEC §5, ``oncall.yaml``).

Shift rule
----------
Shifts are counted on the rotation's local wall clock. Shift ``k`` (``k = 0, 1,
…``) begins at ``start`` + ``handoff`` + ``k × shift`` read as a local time in the
rotation's ``timezone``, and ends where shift ``k + 1`` begins. A 1w rotation with
``handoff: "09:00"`` therefore hands off at 09:00 local time on both sides of a
daylight-saving change (the shift across the change lasts 167h or 169h of real
time), and a 12h rotation hands off at 09:00 and 21:00 local time. Two corner
cases of the local clock:

- a handoff that falls in the spring-forward gap (02:30 when clocks jump from
  02:00 to 03:00) happens at the moment the clocks jump (03:00 local);
- a handoff in the repeated fall-back hour happens at its first occurrence.

Member ``k mod n`` is the primary of shift ``k``; the secondary is the next
member in the list (none when the rotation has a single member). Before the
first shift nobody is on call. An override makes its ``user`` primary from its
``from`` to its ``to`` (local times, same rules); when overrides overlap, the
one that started last wins (the later in the file on a tie). If the override's
user is the scheduled secondary, the scheduled primary becomes the secondary.

All functions take aware datetimes and return datetimes in the rotation's zone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.playbooks.models import OnCallRole, Override, Rotation
from bot.playbooks.targets import Target, TargetKind

__all__ = [
    "CoverageProblem", "OnCall", "ProblemKind", "Shift", "coverage_problems", "local_to_utc",
    "next_handoffs", "on_call", "oncall_user", "resolve_oncall", "shift_at",
]


@dataclass(frozen=True, slots=True)
class OnCall:
    """Who is on call at one instant.

    ``shift_start`` is ``None`` before the rotation's first shift; ``shift_end`` is
    then the first handoff. ``override`` is the override in force, if any, and
    ``scheduled_primary`` who the rotation alone would have made primary.
    """

    primary: str | None
    secondary: str | None
    shift_start: datetime | None
    shift_end: datetime
    override: Override | None = None
    scheduled_primary: str | None = None

    def user(self, role: OnCallRole) -> str | None:
        return self.primary if role is OnCallRole.PRIMARY else self.secondary


@dataclass(frozen=True, slots=True)
class Shift:
    """A scheduled shift (overrides not applied); ``index`` 0 is the first shift."""

    index: int
    start: datetime
    end: datetime
    primary: str
    secondary: str | None


class ProblemKind(StrEnum):
    GAP = "gap"  # nobody on call
    OVERLAP = "overlap"  # two overrides cover the same time
    NO_SECONDARY = "no_secondary"  # a single-member rotation has nobody as secondary
    REDUNDANT_OVERRIDE = "redundant_override"  # the override's user is on call anyway


@dataclass(frozen=True, slots=True)
class CoverageProblem:
    kind: ProblemKind
    start: datetime
    end: datetime
    message: str

    def __str__(self) -> str:
        return self.message


# --- local clock -----------------------------------------------------------------


def local_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall time in ``zone`` as an aware UTC instant (rules in the module doc)."""
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    # ``wall`` is in a gap. fold=0 read it with the offset from before the jump (an
    # instant after the jump), fold=1 with the offset from after it (an instant
    # before the jump): the jump lies between, find it to the second.
    low = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(instant.timestamp())
    offset_after = instant.astimezone(zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz=zone).utcoffset() == offset_after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, tz=UTC)


def _aware_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"need an aware datetime (with a time zone), got {at!r}")
    return at.astimezone(UTC)


def _boundary(rotation: Rotation, index: int) -> datetime:
    """When shift ``index`` begins, in UTC."""
    origin = datetime.combine(rotation.start, rotation.handoff)
    return local_to_utc(origin + index * rotation.shift, rotation.zone)


def _index_at(rotation: Rotation, at_utc: datetime) -> int:
    """The shift containing ``at_utc`` (negative before the first shift)."""
    origin = datetime.combine(rotation.start, rotation.handoff)
    wall = at_utc.astimezone(rotation.zone).replace(tzinfo=None)
    index = (wall - origin) // rotation.shift  # a wall-clock estimate, off by at most one
    while _boundary(rotation, index) > at_utc:
        index -= 1
    while _boundary(rotation, index + 1) <= at_utc:
        index += 1
    return index


def _members_of(rotation: Rotation, index: int) -> tuple[str, str | None]:
    members = rotation.member_ids
    primary = members[index % len(members)]
    following = members[(index + 1) % len(members)]
    return primary, (following if following != primary else None)


def _shift(rotation: Rotation, index: int) -> Shift:
    primary, secondary = _members_of(rotation, index)
    zone = rotation.zone
    return Shift(
        index,
        _boundary(rotation, index).astimezone(zone),
        _boundary(rotation, index + 1).astimezone(zone),
        primary,
        secondary,
    )


def _override_window(rotation: Rotation, override: Override) -> tuple[datetime, datetime]:
    return local_to_utc(override.start, rotation.zone), local_to_utc(override.end, rotation.zone)


# --- public API --------------------------------------------------------------------


def shift_at(rotation: Rotation, at: datetime) -> Shift | None:
    """The scheduled shift at ``at``, or ``None`` before the first shift."""
    index = _index_at(rotation, _aware_utc(at))
    return _shift(rotation, index) if index >= 0 else None


def on_call(rotation: Rotation, at: datetime) -> OnCall:
    """Who is primary and secondary at ``at``, overrides applied."""
    at_utc = _aware_utc(at)
    zone = rotation.zone
    index = _index_at(rotation, at_utc)
    if index >= 0:
        shift = _shift(rotation, index)
        scheduled, secondary = shift.primary, shift.secondary
        shift_start, shift_end = shift.start, shift.end
    else:
        scheduled, secondary = None, None
        shift_start, shift_end = None, _boundary(rotation, 0).astimezone(zone)

    active = [
        (window[0], position, override)
        for position, override in enumerate(rotation.overrides)
        if (window := _override_window(rotation, override))[0] <= at_utc < window[1]
    ]
    if not active:
        return OnCall(scheduled, secondary, shift_start, shift_end, None, scheduled)
    override = max(active, key=lambda item: item[:2])[2]
    primary = override.user.value
    if secondary == primary:
        secondary = scheduled if scheduled != primary else None
    return OnCall(primary, secondary, shift_start, shift_end, override, scheduled)


def oncall_user(rotation: Rotation, role: OnCallRole, at: datetime) -> str | None:
    """The Slack user id an ``oncall:<rotation>[:role]`` target resolves to at ``at``."""
    return on_call(rotation, at).user(role)


def resolve_oncall(rotations: Mapping[str, Rotation], target: Target, at: datetime) -> str | None:
    """The Slack user id an ``oncall:`` target resolves to at ``at`` (None: nobody, or no such rotation)."""
    rotation = rotations.get(target.value)
    if target.kind is not TargetKind.ONCALL or rotation is None:
        return None
    return oncall_user(rotation, target.role or OnCallRole.PRIMARY, at)


def next_handoffs(rotation: Rotation, at: datetime, count: int) -> list[Shift]:
    """The next ``count`` scheduled shifts beginning strictly after ``at``."""
    index = max(_index_at(rotation, _aware_utc(at)) + 1, 0)
    shifts: list[Shift] = []
    while len(shifts) < count:
        shift = _shift(rotation, index)
        if shift.end > shift.start:  # skip a shift swallowed by a spring-forward gap
            shifts.append(shift)
        index += 1
    return shifts


def coverage_problems(
    rotation: Rotation, window_start: datetime, window_end: datetime
) -> list[CoverageProblem]:
    """Problems of the rotation between ``window_start`` and ``window_end``, in time order:
    times nobody is on call, a rotation without secondary, overlapping overrides, and
    overrides naming the person who is on call anyway."""
    begin, finish = _aware_utc(window_start), _aware_utc(window_end)
    if finish <= begin:
        return []
    zone = rotation.zone
    problems: list[CoverageProblem] = []

    def problem(kind: ProblemKind, start: datetime, end: datetime, message: str) -> None:
        problems.append(CoverageProblem(kind, start.astimezone(zone), end.astimezone(zone), message))

    windows = [_override_window(rotation, override) for override in rotation.overrides]
    first_shift = _boundary(rotation, 0)
    for start, end in _subtract((begin, min(finish, first_shift)), windows):
        problem(
            ProblemKind.GAP, start, end,
            f"nobody is on call from {_local(start, zone)} to {_local(end, zone)}: "
            f"the first shift starts {_local(first_shift, zone)}",
        )

    if len(set(rotation.member_ids)) == 1:
        problem(
            ProblemKind.NO_SECONDARY, begin, finish,
            f"only one member ({rotation.member_ids[0]}): oncall:…:secondary pages nobody",
        )

    for first, (a_start, a_end) in enumerate(windows):
        for second in range(first + 1, len(windows)):
            b_start, b_end = windows[second]
            start, end = max(a_start, b_start, begin), min(a_end, b_end, finish)
            if start < end:
                problem(
                    ProblemKind.OVERLAP, start, end,
                    f"overrides #{first + 1} ({rotation.overrides[first].user.value}) and "
                    f"#{second + 1} ({rotation.overrides[second].user.value}) overlap from "
                    f"{_local(start, zone)} to {_local(end, zone)}",
                )

    for position, (start, end) in enumerate(windows):
        user = rotation.overrides[position].user.value
        if start < finish and end > begin and _scheduled_throughout(rotation, user, start, end):
            problem(
                ProblemKind.REDUNDANT_OVERRIDE, start, end,
                f"override #{position + 1} makes {user} primary from {_local(start, zone)} to "
                f"{_local(end, zone)}, but {user} is the scheduled primary then anyway",
            )
    return sorted(problems, key=lambda item: (item.start, item.kind))


# --- helpers -----------------------------------------------------------------------


def _scheduled_throughout(rotation: Rotation, user: str, start: datetime, end: datetime) -> bool:
    if start < _boundary(rotation, 0):
        return False
    for shift in _shifts_between(rotation, start, end, limit=len(rotation.members) + 1):
        if shift is None or shift.primary != user:
            return False
    return True


def _shifts_between(
    rotation: Rotation, start: datetime, end: datetime, *, limit: int
) -> Iterator[Shift | None]:
    """Shifts overlapping ``[start, end)``; ``None`` once more than ``limit`` would follow."""
    index = _index_at(rotation, start)
    for _ in range(limit):
        yield _shift(rotation, index)
        index += 1
        if _boundary(rotation, index) >= end:
            return
    yield None


def _subtract(
    interval: tuple[datetime, datetime], cuts: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    pieces = [interval] if interval[0] < interval[1] else []
    for cut_start, cut_end in cuts:
        remaining = []
        for start, end in pieces:
            if cut_end <= start or cut_start >= end:
                remaining.append((start, end))
                continue
            if start < cut_start:
                remaining.append((start, cut_start))
            if cut_end < end:
                remaining.append((cut_end, end))
        pieces = remaining
    return pieces


def _local(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
