"""Validated playbook models (SPEC §5).

Every model is frozen and refuses unknown keys. Durations accept the playbook
forms (``30s``, ``5m``, ``1h``, ``1h30m``, ``2d``, ``1w``; a bare ``0`` is allowed,
other bare numbers are refused because ``5`` would silently mean five seconds).

Escalation repeats
------------------
A level ``{after: 30m, notify: [...], repeat: 2}`` is sent at ``after`` and then
``repeat`` more times (three notifications in all), every *interval*, until the
incident is acknowledged. The interval is, in order of preference:

1. the level's own ``every:`` (an extension of SPEC §5, e.g. ``every: 10m``);
2. the gap to the next level's ``after``;
3. for the last level, the gap from the previous level's ``after``;
4. for a severity with a single level, the severity's ``respond_within``.

So the SPEC example ``{after: 30m, notify: ["group:S0EXEC"], repeat: 2}`` after a
level at 15m pages the executives at 30m, 45m and 60m. Repeats never delay or
replace later levels: escalation only adds people. ``EscalationMatrix.steps``
gives the resulting schedule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from bot.durations import format_duration, parse_duration
from bot.playbooks.targets import ROTATION_NAME, OnCallRole, Target, TargetKind, require_kinds

__all__ = [
    "Duration",
    "EscalationLevel",
    "EscalationMatrix",
    "EscalationStep",
    "GithubActionsConfig",
    "HealthCheck",
    "HerokuConfig",
    "LocatedValueError",
    "OnCallRole",
    "Override",
    "PositiveDuration",
    "ProviderConfig",
    "RailwayConfig",
    "RenderConfig",
    "RollbackPolicy",
    "Rotation",
    "RotationsFile",
    "ServicePlaybook",
    "Severity",
    "SeverityInfo",
    "Target",
    "TargetKind",
    "VercelConfig",
]


class Severity(StrEnum):
    """Incident severity: ``P0`` is the most severe, ``P3`` the least."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class LocatedValueError(ValueError):
    """A validation error about a part of the value being validated.

    ``where`` is the path below the validated value (``(2, "after")`` for the
    third level's ``after``), so the loader can point at the exact YAML line.
    """

    def __init__(self, where: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.where = where


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- field types ----------------------------------------------------------------


_LONGEST = timedelta(days=366)
_EARLIEST, _LATEST = date(1970, 1, 1), date(2199, 12, 31)


def _to_duration(value: Any) -> timedelta:
    if not isinstance(value, timedelta):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value != 0:
            raise ValueError(f"write a duration with its unit, like 30s, 5m or 1h (got {value!r})")
        try:
            value = parse_duration(value)
        except OverflowError:
            value = timedelta.max
    if not timedelta(0) <= value <= _LONGEST:
        raise ValueError(f"must be between 0s and {_LONGEST.days}d")
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


Duration = Annotated[timedelta, BeforeValidator(_to_duration)]
PositiveDuration = Annotated[timedelta, BeforeValidator(_to_duration), AfterValidator(_positive)]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL like https://api.example.com/health (got {value!r})")
    return value


HttpUrlText = Annotated[str, AfterValidator(_http_url)]
OwnerTarget = Annotated[Target, AfterValidator(require_kinds(TargetKind.USER, TargetKind.GROUP))]
UserTarget = Annotated[Target, AfterValidator(require_kinds(TargetKind.USER))]
_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


# --- provider configs (others depend on these names and fields) -------------------------


class RenderConfig(_Strict):
    type: Literal["render"]
    service_id: str = Field(min_length=1)


class RailwayConfig(_Strict):
    type: Literal["railway"]
    project_id: str = Field(min_length=1)
    environment_id: str = Field(min_length=1)
    service_id: str = Field(min_length=1)


class VercelConfig(_Strict):
    type: Literal["vercel"]
    project_id: str = Field(min_length=1)
    team_id: str | None = None


class HerokuConfig(_Strict):
    type: Literal["heroku"]
    app: str = Field(min_length=1)


class GithubActionsConfig(_Strict):
    type: Literal["github-actions"]
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    workflow: str = Field(min_length=1)  # file name (rollback.yml) or numeric id
    ref: str = "main"
    inputs: dict[str, str] = Field(default_factory=dict)
    environment: str = "production"  # the GitHub deployment environment


ProviderConfig = Annotated[
    RenderConfig | RailwayConfig | VercelConfig | HerokuConfig | GithubActionsConfig,
    Field(discriminator="type"),
]
PROVIDER_TYPES = ("render", "railway", "vercel", "heroku", "github-actions")


# --- services/<name>.yaml --------------------------------------------------------


class HealthCheck(_Strict):
    url: HttpUrlText
    expect_status: int = Field(default=200, ge=100, le=599, strict=True)
    timeout: PositiveDuration = timedelta(seconds=5)
    settle: Duration = timedelta(minutes=2)  # how long it must stay healthy after a rollback


class RollbackPolicy(_Strict):
    # Extra owners (besides the one who confirms) who must approve, by severity;
    # severities left out need none. A rollback outside an incident counts as P2.
    approvals: dict[Severity, Annotated[int, Field(ge=0, le=10, strict=True)]] = Field(
        default_factory=dict
    )

    @field_validator("approvals")
    @classmethod
    def _fill_missing(cls, value: dict[Severity, int]) -> dict[Severity, int]:
        return {severity: value.get(severity, 0) for severity in Severity}

    def approvals_needed(self, severity: Severity | None) -> int:
        return self.approvals.get(severity or Severity.P2, 0)


class ServicePlaybook(_Strict):
    name: str = Field(pattern=_NAME)
    description: str = ""
    owners: list[OwnerTarget] = Field(min_length=1)  # who may confirm a rollback
    provider: ProviderConfig
    health_check: HealthCheck | None = None
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)
    runbook_url: HttpUrlText | None = None

    @property
    def owner_user_ids(self) -> tuple[str, ...]:
        return tuple(t.value for t in self.owners if t.kind is TargetKind.USER)

    @property
    def owner_group_ids(self) -> tuple[str, ...]:
        return tuple(t.value for t in self.owners if t.kind is TargetKind.GROUP)


# --- escalation.yaml -------------------------------------------------------------


class SeverityInfo(_Strict):
    name: str = Field(min_length=1)
    meaning: str = Field(min_length=1)
    respond_within: PositiveDuration
    status_update_every: PositiveDuration | None = None


class EscalationLevel(_Strict):
    after: Duration
    notify: list[Target] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=20, strict=True)  # sent this many MORE times
    every: PositiveDuration | None = None  # spacing of the repeats (see module docstring)

    @model_validator(mode="after")
    def _every_needs_repeat(self) -> EscalationLevel:
        if self.every is not None and self.repeat == 0:
            raise LocatedValueError(("every",), "'every' spaces repeats: add 'repeat: <n>' or remove it")
        return self


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """One notification of the schedule: level ``level`` (0-based), ``attempt`` 0 is
    the first send and 1..repeat the repeats, ``offset`` after the incident opened."""

    offset: timedelta
    level: int
    attempt: int
    notify: tuple[Target, ...]


def _check_levels(levels: list[EscalationLevel]) -> list[EscalationLevel]:
    for index in range(1, len(levels)):
        before, this = levels[index - 1].after, levels[index].after
        if this <= before:
            raise LocatedValueError(
                (index, "after"),
                f"{format_duration(this)} must come after the previous level's "
                f"{format_duration(before)}: list levels in increasing order of 'after'",
            )
    return levels


EscalationLevels = Annotated[list[EscalationLevel], Field(min_length=1), AfterValidator(_check_levels)]


def _require_every_severity(value: dict[Severity, Any]) -> dict[Severity, Any]:
    missing = [severity.value for severity in Severity if severity not in value]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}: every severity P0..P3 must be defined")
    return value


class EscalationMatrix(_Strict):
    severities: Annotated[dict[Severity, SeverityInfo], AfterValidator(_require_every_severity)]
    escalation: Annotated[dict[Severity, EscalationLevels], AfterValidator(_require_every_severity)]

    def levels(self, severity: Severity) -> list[EscalationLevel]:
        return self.escalation[severity]

    def repeat_interval(self, severity: Severity, index: int) -> timedelta:
        """The spacing of level ``index``'s repeats (rule in the module docstring)."""
        levels = self.escalation[severity]
        level = levels[index]
        if level.every is not None:
            return level.every
        if index + 1 < len(levels):
            return levels[index + 1].after - level.after
        if index > 0:
            return level.after - levels[index - 1].after
        return self.severities[severity].respond_within

    def steps(self, severity: Severity) -> list[EscalationStep]:
        """Every notification for ``severity`` in time order, repeats included."""
        steps = []
        for index, level in enumerate(self.escalation[severity]):
            interval = self.repeat_interval(severity, index)
            for attempt in range(level.repeat + 1):
                steps.append(
                    EscalationStep(level.after + attempt * interval, index, attempt, tuple(level.notify))
                )
        return sorted(steps, key=lambda step: (step.offset, step.level, step.attempt))


# --- oncall.yaml -----------------------------------------------------------------

_D = TypeVar("_D", date, datetime)
_HANDOFF = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _to_handoff(value: Any) -> time:
    if isinstance(value, time):
        return value
    match = _HANDOFF.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f'write the local handoff time as "HH:MM", e.g. "09:00" (got {value!r})')
    return time(int(match[1]), int(match[2]))


def _to_local_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, datetime):
        raise ValueError('write a local date and time like "2026-12-24T09:00"')
    if value.tzinfo is not None:
        raise ValueError("write the local time without an offset: it is read in the rotation's timezone")
    return _in_range(value)


def _in_range(value: _D) -> _D:
    day = value.date() if isinstance(value, datetime) else value
    if not _EARLIEST <= day <= _LATEST:
        raise ValueError(f"must be between {_EARLIEST} and {_LATEST}")
    return value


class Override(_Strict):
    """``user`` replaces the primary from ``start`` to ``end``, local times of the rotation."""

    model_config = ConfigDict(populate_by_name=True)

    start: Annotated[datetime, BeforeValidator(_to_local_datetime)] = Field(alias="from")
    end: Annotated[datetime, BeforeValidator(_to_local_datetime)] = Field(alias="to")
    user: UserTarget

    @model_validator(mode="after")
    def _ends_after_start(self) -> Override:
        if self.end <= self.start:
            raise LocatedValueError(("to",), "must be later than 'from'")
        return self


class Rotation(_Strict):
    timezone: str
    handoff: Annotated[time, BeforeValidator(_to_handoff)]
    shift: PositiveDuration
    start: Annotated[date, AfterValidator(_in_range)]  # the first shift begins at its handoff
    members: list[UserTarget] = Field(min_length=1)
    overrides: list[Override] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. America/New_York)") from None
        return value

    @field_validator("shift")
    @classmethod
    def _at_least_an_hour(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1):
            raise ValueError("a shift lasts at least 1h")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def member_ids(self) -> tuple[str, ...]:
        return tuple(member.value for member in self.members)


def _check_rotation_names(value: dict[str, Rotation]) -> dict[str, Rotation]:
    for name in value:
        if not ROTATION_NAME.match(name):
            raise LocatedValueError(
                (name, "[key]"), f"rotation name {name!r}: use letters, digits, '-', '_' or '.'"
            )
    return value


class RotationsFile(_Strict):
    rotations: Annotated[dict[str, Rotation], AfterValidator(_check_rotation_names)] = Field(
        default_factory=dict
    )
