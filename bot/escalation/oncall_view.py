"""``/incident oncall [rotation]``: who is on call now, and who is next (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.durations import format_duration
from bot.incidents.commands import USAGE, UsageError
from bot.playbooks.loader import Playbooks
from bot.playbooks.models import Rotation
from bot.playbooks.oncall import OnCall, local_to_utc, next_handoffs, on_call


@dataclass(frozen=True)
class Change:
    at: datetime
    who: OnCall


def next_change(rotation: Rotation, now: datetime) -> Change | None:
    """The first moment after ``now`` at which the primary or secondary changes (overrides included)."""
    current = on_call(rotation, now)
    candidates = {current.shift_end}
    candidates.update(shift.start for shift in next_handoffs(rotation, now, len(rotation.members) + 1))
    for override in rotation.overrides:
        for local in (override.start, override.end):
            candidates.add(local_to_utc(local, rotation.zone))
    for moment in sorted(c for c in candidates if c > now):
        upcoming = on_call(rotation, moment)
        if (upcoming.primary, upcoming.secondary) != (current.primary, current.secondary):
            return Change(moment, upcoming)
    return None


def _person(user: str | None) -> str:
    return f"<@{user}>" if user else "_nobody_"


def _when(moment: datetime, rotation: Rotation) -> str:
    """One time: Slack shows it in the reader's own zone; a client that cannot falls back
    to the rotation's zone (the header line names that zone)."""
    fallback = moment.astimezone(rotation.zone).strftime("%a %Y-%m-%d %H:%M %Z")
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} at {{time}} your time|{fallback}>"


def rotation_lines(name: str, rotation: Rotation, now: datetime) -> list[str]:
    current = on_call(rotation, now)
    override = " (override)" if current.override is not None else ""
    lines = [(f"*{name}* · shifts of {_shift_text(rotation)}, handoff {rotation.handoff:%H:%M} "
              f"{rotation.timezone}")]
    if current.primary is None:
        lines.append(f"  now: nobody is on call; the first shift starts {_when(current.shift_end, rotation)}")
    else:
        lines.append(f"  now: primary {_person(current.primary)}{override}, "
                     f"secondary {_person(current.secondary)}")
    change = next_change(rotation, now)
    if change is None:
        lines.append("  next: no change ahead")
    else:
        lines.append(f"  next: primary {_person(change.who.primary)}, secondary "
                     f"{_person(change.who.secondary)} from {_when(change.at, rotation)}")
    return lines


def _shift_text(rotation: Rotation) -> str:
    days, seconds = rotation.shift.days, rotation.shift.seconds
    if not seconds and days % 7 == 0:
        return f"{days // 7} week" + ("s" if days > 7 else "")
    return format_duration(rotation.shift)


def oncall_text(playbooks: Playbooks, *, now: datetime, rotation: str | None = None) -> str:
    """The reply to ``/incident oncall [rotation]``; an unknown rotation is a UsageError."""
    rotations = playbooks.rotations
    if not rotations:
        return "There are no on-call rotations: add them to `oncall.yaml` in the playbooks."
    if rotation is not None and rotation not in rotations:
        known = ", ".join(f"`{name}`" for name in rotations)
        raise UsageError(f"There is no rotation `{rotation[:40]}` (known: {known}).", USAGE["oncall"])
    chosen = {rotation: rotations[rotation]} if rotation else rotations
    lines = [":telephone_receiver: *On call*"]
    for name, value in chosen.items():
        lines += rotation_lines(name, value, now)
    return "\n".join(lines)
