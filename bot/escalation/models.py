"""Escalation state: the current plan of each incident and every page sent.

Levels themselves are durable jobs (``bot.jobs``, kind ``escalation.level``):
the plan row says which generation of jobs is current, the page rows say which
recipient of which step was already paged. A page row is written in the same
transaction that holds the incident's row lock while the page is sent, so a
recipient is paged at most once per step, and never after the incident was
acknowledged. Before that transaction, a page *attempt* row is committed: it
survives a crash between the send and the commit, and tells the retry to look
for the page it may have sent already (see ``bot/escalation/engine.py``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.db.types import JSONData, UTCDateTime, enum_column
from bot.playbooks.models import Severity


class PageOutcome(StrEnum):
    SENT = "sent"  # handed to PagerDuty / Opsgenie, which deliver on their own
    DELIVERED = "delivered"  # posted in Slack: a DM to the person, or in the channel
    FAILED = "failed"  # not delivered after the pager's own retries (or nobody to page)


class EscalationPlan(SQLModel, table=True):
    """The escalation of one incident: which generation of level jobs is live.

    ``generation`` is the id of the timeline event the plan was made from (the
    incident's opening, or a severity upgrade), so a newer plan always has a
    larger generation and a level job of an older one knows it is stale.
    """

    __tablename__ = "escalation_plans"

    incident_id: int = Field(primary_key=True, foreign_key="incidents.id")
    generation: int
    severity: Severity = Field(sa_column=enum_column(Severity, length=2))
    origin_at: datetime = Field(sa_type=UTCDateTime)  # level offsets count from here
    planned_at: datetime = Field(sa_type=UTCDateTime)
    levels: int = 0
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stop_reason: str | None = Field(default=None, max_length=200)
    respond_warned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Page(SQLModel, table=True):
    """One page to one recipient for one step (a level's send, a repeat, or a manual page)."""

    __tablename__ = "escalation_pages"
    __table_args__ = (
        UniqueConstraint("incident_id", "step_key", "recipient", name="uq_escalation_pages_step_recipient"),
        Index("ix_escalation_pages_incident_recipient", "incident_id", "recipient"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    # "g<generation>:l<level>:a<attempt>" for a level, "manual:<event id>" for a manual page.
    step_key: str = Field(max_length=80)
    generation: int | None = None
    level: int | None = None  # 0-based; None for a manual page
    attempt: int = 0  # 0 the first send of the level, 1.. its repeats
    target: str = Field(max_length=200)  # as written: "oncall:backend:secondary", "group:S0LEADS"
    recipient: str = Field(max_length=200)  # as paged: "user:U024BE7LH", "pagerduty:default"
    outcome: PageOutcome = Field(sa_column=enum_column(PageOutcome, length=16))
    detail: str = Field(default="", max_length=1000)
    provider_ids: dict[str, Any] = Field(default_factory=dict, sa_type=JSONData)
    message: str | None = Field(default=None, max_length=3000)
    paged_by: str | None = Field(default=None, max_length=64)  # who sent a manual page
    due_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime = Field(sa_type=UTCDateTime)  # when the send started
    finished_at: datetime = Field(sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=64)
    ack_mirrored_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolve_mirrored_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def recipient_kind(self) -> str:
        return self.recipient.partition(":")[0]

    @property
    def level_label(self) -> str:
        if self.level is None:
            return "manual page"
        label = f"level {self.level + 1}"
        return f"{label}, repeat {self.attempt}" if self.attempt else label


class PageAttempt(SQLModel, table=True):
    """A page about to be sent, committed before the send (one row per step and recipient).

    ``key`` is carried by the page itself (Slack message metadata), so after a
    crash between the send and the commit of its :class:`Page` row, the retry
    can find out whether the page went out. ``sends`` counts the transactions
    that set out to send it: when it is above one at the moment of sending,
    another try may have delivered the page already and is looked for first.
    ``deferrals`` counts the times the send was put off (a 429 with
    Retry-After, a transient Slack failure) and rescheduled with the level's job.
    """

    __tablename__ = "escalation_page_attempts"
    __table_args__ = (
        UniqueConstraint("incident_id", "step_key", "recipient", name="uq_escalation_page_attempts_step_recipient"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    step_key: str = Field(max_length=80)
    recipient: str = Field(max_length=200)
    key: str = Field(max_length=64)
    sends: int = 0
    deferrals: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    detail: str = Field(default="", max_length=500)  # why the last try was put off
