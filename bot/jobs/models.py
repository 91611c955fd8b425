"""Durable work: every side effect and every timed step is a row here first."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from bot.db.types import JSONData, UTCDateTime, enum_column


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "state", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=60, index=True)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    # A job with a key is enqueued at most once, ever (e.g. one page per level).
    dedup_key: str | None = Field(default=None, max_length=200, unique=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONData)
    state: JobState = Field(default=JobState.PENDING, sa_column=enum_column(JobState, length=16))
    due_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    max_attempts: int = 8
    last_error: str | None = Field(default=None, max_length=1000)
    locked_by: str | None = Field(default=None, max_length=80)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SlackDelivery(SQLModel, table=True):
    """A Slack request already acted on (event id, or trigger id of a command/click)."""

    __tablename__ = "slack_deliveries"

    key: str = Field(primary_key=True, max_length=200)
    kind: str = Field(max_length=40)
    received_at: datetime = Field(sa_type=UTCDateTime)
    result: str | None = Field(default=None, max_length=200)  # e.g. "INC-12", for the reply to a repeat
