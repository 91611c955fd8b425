"""Rollbacks, their steps and approvals.

One rollback per service may be *active* (previewed, triggering, rolling back,
health-checking) at a time. The database enforces it: a unique index on
``service`` restricted to the active states (a partial index, on SQLite and
PostgreSQL alike), so two requests racing on two replicas cannot both insert.

Every step of a rollback is a :class:`RollbackStep` row (numbered per rollback):
the Slack thread and ``/rollback status`` are built from them, and the same step
is recorded on the incident timeline (kind ``rollback``) in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from bot.db.types import JSONData, UTCDateTime, enum_column

REASON_MAX = 500


class RollbackStatus(StrEnum):
    PREVIEW = "preview"  # posted with Confirm / Cancel (and Approve), waiting for an owner
    TRIGGERING = "triggering"  # confirmed: the trigger job asks the provider once
    ROLLING_BACK = "rolling_back"  # the provider accepted it: followed until live
    CHECKING = "checking"  # live: the health check must pass for `settle`
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATES

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


ACTIVE_STATES = frozenset({RollbackStatus.PREVIEW, RollbackStatus.TRIGGERING,
                           RollbackStatus.ROLLING_BACK, RollbackStatus.CHECKING})
STATUS_LABELS = {
    RollbackStatus.PREVIEW: "waiting for confirmation",
    RollbackStatus.TRIGGERING: "confirmed, asking the provider",
    RollbackStatus.ROLLING_BACK: "rolling back",
    RollbackStatus.CHECKING: "live, checking health",
    RollbackStatus.SUCCEEDED: "succeeded",
    RollbackStatus.FAILED: "failed",
    RollbackStatus.CANCELED: "canceled",
    RollbackStatus.EXPIRED: "expired",
}

_ACTIVE_SQL = "state IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATES)))
ONE_ACTIVE_INDEX = "uq_rollbacks_one_active_per_service"


class Rollback(SQLModel, table=True):
    __tablename__ = "rollbacks"
    __table_args__ = (
        Index(ONE_ACTIVE_INDEX, "service", unique=True,
              sqlite_where=text(_ACTIVE_SQL), postgresql_where=text(_ACTIVE_SQL)),
        Index("ix_rollbacks_service_requested", "service", "requested_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(max_length=100)
    provider: str = Field(max_length=20)
    state: RollbackStatus = Field(sa_column=enum_column(RollbackStatus, length=20, index=True))
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)

    requested_by: str = Field(max_length=32)
    requested_at: datetime = Field(sa_type=UTCDateTime)
    reason: str = Field(default="", max_length=REASON_MAX)
    requested_target: str | None = Field(default=None, max_length=200)  # `to <id>` as typed
    command_channel_id: str | None = Field(default=None, max_length=32)  # where it was typed
    channel_id: str | None = Field(default=None, max_length=32)  # where the preview is
    message_ts: str | None = Field(default=None, max_length=32)  # the preview (thread parent)
    expires_at: datetime = Field(sa_type=UTCDateTime)

    current_id: str = Field(max_length=200)  # live when previewed
    target_id: str = Field(max_length=200)
    plan: dict[str, Any] = Field(default_factory=dict, sa_type=JSONData)  # RollbackPlan.to_dict()
    handle: dict[str, Any] | None = Field(default=None, sa_type=JSONData)  # RollbackHandle.to_dict()
    approvals_needed: int = 0
    severity: str | None = Field(default=None, max_length=2)  # the incident's, None outside one

    confirmed_by: str | None = Field(default=None, max_length=32)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set and committed BEFORE the provider is asked: a trigger job that finds it
    # set (a retry, another replica, a restart) reads the provider's state first.
    trigger_attempted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    trigger_attempts: int = 0
    trigger_outcome: str | None = Field(default=None, max_length=20)  # sent|ambiguous|unavailable
    trigger_checks: int = 0  # provider state reads after an ambiguous trigger
    triggered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    provider_status: str | None = Field(default=None, max_length=60)  # raw, last seen
    provider_detail: str | None = Field(default=None, max_length=500)
    provider_ids: dict[str, Any] = Field(default_factory=dict, sa_type=JSONData)
    follow_errors: int = 0
    live_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    health_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    health_ok_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    health_samples: int = 0
    health_detail: str | None = Field(default=None, max_length=500)

    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_by: str | None = Field(default=None, max_length=32)
    failure_reason: str | None = Field(default=None, max_length=40)
    outcome: str | None = Field(default=None, max_length=2000)
    updated_at: datetime = Field(sa_type=UTCDateTime)

    step_count: int = 0  # steps recorded (RollbackStep.seq runs 1..step_count)
    slack_posted: int = 0  # steps posted to the thread
    slack_locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    slack_locked_by: str | None = Field(default=None, max_length=80)

    @property
    def key(self) -> str:
        return f"RB-{self.id}"

    @property
    def idempotency_key(self) -> str:
        return f"firebreak-rollback-{self.id}"

    @property
    def active(self) -> bool:
        return RollbackStatus(self.state).active


class RollbackStep(SQLModel, table=True):
    """One step of a rollback, in order: the thread line and the timeline event."""

    __tablename__ = "rollback_steps"
    __table_args__ = (UniqueConstraint("rollback_id", "seq", name="uq_rollback_steps_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    rollback_id: int = Field(foreign_key="rollbacks.id", index=True)
    seq: int
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str | None = Field(default=None, max_length=64)
    step: str = Field(max_length=40)
    state: str = Field(max_length=20)  # the rollback's state after this step
    text: str = Field(default="", max_length=3000)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONData)
    timeline_event_id: int | None = None


class RollbackApproval(SQLModel, table=True):
    __tablename__ = "rollback_approvals"

    rollback_id: int = Field(foreign_key="rollbacks.id", primary_key=True)
    user_id: str = Field(max_length=32, primary_key=True)
    approved_at: datetime = Field(sa_type=UTCDateTime)
