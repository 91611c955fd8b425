"""Follow-up action items and the GitHub issue that holds an incident's post-mortem."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from bot.db.types import UTCDateTime
from bot.incidents.models import TEXT_MAX, TimelineEvent


class FollowUp(SQLModel, table=True):
    """An action item: ``/incident followup <text> [@owner]``, or added automatically."""

    __tablename__ = "followups"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    text: str = Field(max_length=TEXT_MAX)
    owner_id: str | None = Field(default=None, max_length=32)
    created_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    done: bool = False
    automatic: bool = False
    # Automatic follow-ups carry a key so that they are added once, whatever repeats.
    source_key: str | None = Field(default=None, max_length=200, unique=True)


class PostmortemIssue(SQLModel, table=True):
    """Where ``export github`` put the post-mortem, so that the next export updates it."""

    __tablename__ = "postmortem_issues"

    incident_id: int = Field(foreign_key="incidents.id", primary_key=True)
    repo: str = Field(max_length=200)
    number: int
    url: str = Field(max_length=500)
    updated_at: datetime = Field(sa_type=UTCDateTime)


# Metrics count pages and rollbacks across all incidents by kind at every scrape;
# without this index that is a scan of the whole timeline.
Index("ix_timeline_events_kind", TimelineEvent.__table__.c.kind)
