"""Incidents, their timeline, and the counter that numbers them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from bot.db.types import JSONData, UTCDateTime, enum_column
from bot.playbooks.models import Severity

TITLE_MAX = 150
TEXT_MAX = 3000


class IncidentState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"


class Role(StrEnum):
    COMMANDER = "commander"
    COMMS = "comms"
    SCRIBE = "scribe"


class EventKind(StrEnum):
    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    SEVERITY_CHANGED = "severity_changed"
    ROLE_ASSIGNED = "role_assigned"
    NOTE = "note"
    STATUS_UPDATE = "status_update"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    PINNED_MESSAGE = "pinned_message"
    CHANNEL_CREATED = "channel_created"
    SLACK_ERROR = "slack_error"
    PAGE_SENT = "page_sent"
    PAGE_DELIVERED = "page_delivered"
    PAGE_FAILED = "page_failed"
    PAGE_ACKNOWLEDGED = "page_acknowledged"
    ESCALATION = "escalation"
    ROLLBACK = "rollback"
    FOLLOWUP = "followup"


# How each kind of event is named for people (Slack replies, exports, web pages).
EVENT_LABELS: dict[str, str] = {
    EventKind.OPENED: "Opened",
    EventKind.ACKNOWLEDGED: "Acknowledged",
    EventKind.SEVERITY_CHANGED: "Severity changed",
    EventKind.ROLE_ASSIGNED: "Role assigned",
    EventKind.NOTE: "Note",
    EventKind.STATUS_UPDATE: "Status update",
    EventKind.MITIGATED: "Mitigated",
    EventKind.RESOLVED: "Resolved",
    EventKind.REOPENED: "Reopened",
    EventKind.PINNED_MESSAGE: "Pinned message",
    EventKind.CHANNEL_CREATED: "Channel created",
    EventKind.SLACK_ERROR: "Slack error",
    EventKind.PAGE_SENT: "Page sent",
    EventKind.PAGE_DELIVERED: "Page delivered",
    EventKind.PAGE_FAILED: "Page failed",
    EventKind.PAGE_ACKNOWLEDGED: "Page acknowledged",
    EventKind.ESCALATION: "Escalation",
    EventKind.ROLLBACK: "Rollback",
    EventKind.FOLLOWUP: "Follow-up",
}


def event_label(kind: str) -> str:
    return EVENT_LABELS.get(kind, kind.replace("_", " ").capitalize())


class IncidentBase(SQLModel):
    title: str = Field(max_length=TITLE_MAX)
    severity: Severity = Field(sa_column=enum_column(Severity, length=2))
    service: str | None = Field(default=None, max_length=100)


class IncidentCreate(IncidentBase):
    reporter_id: str


class Incident(IncidentBase, table=True):
    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True, index=True)
    state: IncidentState = Field(
        default=IncidentState.OPEN, sa_column=enum_column(IncidentState, index=True)
    )
    reporter_id: str = Field(max_length=32)
    commander_id: str | None = Field(default=None, max_length=32)
    comms_id: str | None = Field(default=None, max_length=32)
    scribe_id: str | None = Field(default=None, max_length=32)
    acknowledged_by: str | None = Field(default=None, max_length=32)
    summary: str | None = Field(default=None, max_length=TEXT_MAX)

    opened_at: datetime = Field(sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    mitigated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    last_status_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    # Slack side, filled in by the provisioning job step by step so that a retry
    # resumes where the last attempt stopped instead of repeating a step.
    channel_id: str | None = Field(default=None, max_length=32, index=True)
    channel_name: str | None = Field(default=None, max_length=80)
    card_ts: str | None = Field(default=None, max_length=32)
    reporter_invited: bool = False
    topic_set: bool = False
    topic: str | None = Field(default=None, max_length=250)  # the text last set, to set it only on change
    card_pinned: bool = False
    runbook_bookmarked: bool = False
    announced: bool = False
    setup_error: str | None = Field(default=None, max_length=500)

    @property
    def key(self) -> str:
        return f"INC-{self.number}"

    @property
    def is_active(self) -> bool:
        return self.state != IncidentState.RESOLVED

    @property
    def is_provisioned(self) -> bool:
        return bool(self.channel_id and self.card_ts and self.card_pinned and self.announced)

    def role_holder(self, role: Role) -> str | None:
        return getattr(self, f"{role.value}_id")


class IncidentPublic(IncidentBase):
    number: int
    state: IncidentState
    reporter_id: str
    commander_id: str | None
    comms_id: str | None
    scribe_id: str | None
    channel_id: str | None
    opened_at: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None


class TimelineEventBase(SQLModel):
    kind: str = Field(max_length=40)
    actor: str | None = Field(default=None, max_length=64)
    text: str = Field(default="", max_length=TEXT_MAX * 2)
    occurred_at: datetime = Field(sa_type=UTCDateTime)


class TimelineEvent(TimelineEventBase, table=True):
    __tablename__ = "timeline_events"
    __table_args__ = (Index("ix_timeline_incident_time", "incident_id", "occurred_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONData)
    # Set for events that come from outside and may arrive twice (a pin and a
    # :pushpin: on the same message): the second insert is refused.
    source_key: str | None = Field(default=None, max_length=200, unique=True)


class TimelineEventPublic(TimelineEventBase):
    id: int
    recorded_at: datetime
    data: dict[str, Any]


class Counter(SQLModel, table=True):
    """Gap-free numbering: incremented in the transaction that uses the number."""

    __tablename__ = "counters"

    name: str = Field(primary_key=True, max_length=40)
    value: int = 0
