"""``firebreak playbooks check [--at TIME]``: who would be paged, level by level (SPEC §2).

``render_check_report`` is a pure function over loaded playbooks: it pages
nobody and reads no clock. Each escalation step (repeats included) is shown at
its own time, because a shift may hand off in the middle of an escalation, and
``oncall:`` targets are resolved at that time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.durations import format_duration
from bot.pagers.opsgenie import priority_note
from bot.playbooks.loader import Playbooks
from bot.playbooks.models import Severity
from bot.playbooks.oncall import coverage_problems, on_call
from bot.playbooks.targets import OnCallRole, Target, TargetKind

__all__ = ["GroupResolver", "parse_at", "render_check_report"]

GroupResolver = Callable[[str], Sequence[str]]
"""Maps a user group id (``S0LEADS``) to the Slack user ids of its members."""

_FORMS = (
    "write ISO 8601 with an offset, like 2026-03-08T09:30-05:00, "
    "or a local time and an IANA zone, like 2026-03-08T09:30 America/New_York"
)


def parse_at(text: str) -> datetime:
    """Read a ``--at`` time; raise ``ValueError`` saying what is accepted.

    ``2026-03-08T09:30-05:00`` (or ``Z``) keeps its fixed offset; ``2026-03-08T09:30
    America/New_York`` is that zone's local time (a repeated fall-back time means
    its first occurrence; a time skipped by spring-forward is refused).
    """
    cleaned = text.strip()
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        pass
    else:
        if value.tzinfo is None:
            raise ValueError(f"{text!r} has no offset or time zone: {_FORMS}")
        return value
    stamp, _, zone_name = cleaned.rpartition(" ")
    try:
        local = datetime.fromisoformat(stamp.strip())
    except ValueError:
        raise ValueError(f"cannot read the time {text!r}: {_FORMS}") from None
    if local.tzinfo is not None:
        raise ValueError(f"{text!r}: give an offset or a time zone, not both")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone_name!r} in {text!r}: {_FORMS}") from None
    value = local.replace(tzinfo=zone)
    if value.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
        raise ValueError(
            f"{stamp.strip()} does not exist in {zone_name}: the clocks skip it (daylight saving)"
        )
    return value


def render_check_report(
    playbooks: Playbooks,
    at: datetime,
    *,
    resolve_group: GroupResolver | None = None,
    pagerduty_keys: Collection[str] | None = None,
    horizon: timedelta = timedelta(days=14),
) -> str:
    """The ``playbooks check`` report for an incident opened at ``at`` (aware).

    ``resolve_group`` lists a group's members (otherwise groups are shown by id);
    ``pagerduty_keys``, when given, are the configured routing-key names, so that
    a ``pagerduty:`` target without a key is flagged. Rotation gaps and overlaps
    are looked for from ``at`` to ``at + horizon``.
    """
    if at.tzinfo is None:
        raise ValueError("render_check_report needs an aware datetime")
    return _Report(playbooks, at, resolve_group, pagerduty_keys, horizon).render()


class _Report:
    def __init__(
        self,
        playbooks: Playbooks,
        at: datetime,
        resolve_group: GroupResolver | None,
        pagerduty_keys: Collection[str] | None,
        horizon: timedelta,
    ) -> None:
        self.playbooks = playbooks
        self.at = at.astimezone(UTC)  # offsets are elapsed time: add them in UTC, not on a local clock
        self.zone: tzinfo = at.tzinfo or UTC
        self.horizon = horizon
        self.resolve_group = resolve_group
        self.pagerduty_keys = {key.lower() for key in pagerduty_keys} if pagerduty_keys is not None else None
        self.groups: dict[str, list[str] | Exception] = {}
        self.lines: list[str] = []
        self.warnings: list[str] = []

    def render(self) -> str:
        playbooks = self.playbooks
        self.lines += [
            (f"Playbooks in {playbooks.directory}: valid "
             f"({len(playbooks.services)} services, {len(playbooks.rotations)} rotations)."),
            f"Incident opened at {self._when(self.at)}. This check pages nobody.",
        ]
        self._services()
        self._rotations()
        for severity in Severity:
            self._severity(severity)
        self.lines += ["", "Warnings"]
        self.lines += [f"  ! {warning}" for warning in dict.fromkeys(self.warnings)] or ["  none"]
        return "\n".join(self.lines) + "\n"

    def _services(self) -> None:
        self.lines += ["", "Services"]
        if not self.playbooks.services:
            self.lines.append("  none (services/ is empty): /rollback has nothing to roll back")
        width = max((len(name) for name in self.playbooks.services), default=0)
        for name, service in self.playbooks.services.items():
            approvals = " ".join(
                f"{severity}:{count}" for severity, count in service.rollback.approvals.items() if count
            ) or "none"
            owners = ", ".join(str(owner) for owner in service.owners)
            self.lines.append(
                f"  {name:<{width}}  {service.provider.type:<14}  owners {owners}; approvals {approvals}"
            )

    def _rotations(self) -> None:
        self.lines += ["", f"On call at {self._when(self.at)}"]
        if not self.playbooks.rotations:
            self.lines.append("  no rotations (no oncall.yaml)")
        for name, rotation in self.playbooks.rotations.items():
            now = on_call(rotation, self.at)
            if now.shift_start is None:
                shift = f"before the first shift, which starts {_stamp(now.shift_end)}"
            else:
                shift = f"shift {_stamp(now.shift_start)} → {_stamp(now.shift_end)}"
            override = f" (override for {now.scheduled_primary})" if now.override else ""
            self.lines.append(
                f"  {name}: primary {now.primary or 'nobody'}{override}, "
                f"secondary {now.secondary or 'nobody'}; {shift} [{rotation.timezone}]"
            )
            for problem in coverage_problems(rotation, self.at, self.at + self.horizon):
                self.warnings.append(f"rotation {name}: {problem.message}")

    def _severity(self, severity: Severity) -> None:
        matrix = self.playbooks.escalation
        info = matrix.severities[severity]
        cadence = (
            f", status update every {format_duration(info.status_update_every)}"
            if info.status_update_every else ""
        )
        self.lines += [
            "",
            (f"{severity} {info.name}: {info.meaning} "
             f"(respond within {format_duration(info.respond_within)}{cadence})"),
        ]
        levels = matrix.levels(severity)
        for step in matrix.steps(severity):
            when = self.at + step.offset
            label = f"level {step.level + 1}"
            repeat = levels[step.level].repeat
            if step.attempt:
                label += f", repeat {step.attempt} of {repeat}"
            offset = _offset(step.offset)
            self.lines.append(f"  {offset:<7} {self._when(when)}  ({label})")
            for target in step.notify:
                resolved = self._resolve(target, when, f"{severity} {offset}", severity)
                self.lines.append(f"          {target!s:<26} → {resolved}")

    def _resolve(self, target: Target, when: datetime, where: str, severity: Severity) -> str:
        if target.kind is TargetKind.USER:
            return f"{target.value} (DM)"
        if target.kind is TargetKind.GROUP:
            return self._group(target.value)
        if target.kind is TargetKind.ONCALL:
            rotation = self.playbooks.rotations[target.value]
            now = on_call(rotation, when)
            user = now.user(target.role or OnCallRole.PRIMARY)
            if user is None:
                self.warnings.append(f"{where}: {target} pages nobody at {self._when(when)}")
                return f"nobody on call ({target.role})"
            local = ""
            if when.astimezone(rotation.zone).utcoffset() != when.astimezone(self.zone).utcoffset():
                local = f", {when.astimezone(rotation.zone):%H:%M %Z} rotation time"
            override = ", override" if now.override and target.role is OnCallRole.PRIMARY else ""
            return f"{user} ({target.value} {target.role}{override}{local}, DM)"
        if target.kind is TargetKind.PAGERDUTY:
            env = f"PAGERDUTY_ROUTING_KEY_{target.value.upper()}"
            if self.pagerduty_keys is not None and target.value not in self.pagerduty_keys:
                self.warnings.append(f"{target} has no routing key: set {env}")
                return f"PagerDuty event, but {env} is not set"
            return f"PagerDuty event ({env})"
        if target.kind is TargetKind.OPSGENIE:
            return f"Opsgenie alert for team {target.value}, priority {priority_note(severity.value)}"
        return f"post in channel {target.value}"

    def _group(self, group: str) -> str:
        if self.resolve_group is None:
            return f"members of {group} (DM each)"
        if group not in self.groups:
            try:
                self.groups[group] = list(self.resolve_group(group))
            except Exception as exc:  # noqa: BLE001 - a resolver talks to Slack: report any failure, finish the check
                self.groups[group] = exc
        members = self.groups[group]
        if isinstance(members, Exception):
            self.warnings.append(f"could not list the members of group {group}: {members}")
            return f"members of {group} (could not list them)"
        if not members:
            self.warnings.append(f"group {group} has no members: it pages nobody")
            return "nobody (empty group)"
        return f"{', '.join(members)} (DM each)"

    def _when(self, instant: datetime) -> str:
        text = f"{instant.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        if self.zone is UTC or getattr(self.zone, "key", None) in ("UTC", "Etc/UTC"):
            return text
        return f"{text} = {_stamp(instant.astimezone(self.zone))}"


def _offset(delta: timedelta) -> str:
    return "+" + (format_duration(delta).replace(" ", "") if delta else "0m")


def _stamp(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d %H:%M %Z}"
