"""What Firebreak remembers about Slack itself."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from bot.db.types import UTCDateTime


class SlackIdentity(SQLModel, table=True):
    """The bot's identity at Slack as ``auth.test`` last answered it, for each bot token.

    Kept so that a process started while Slack is down knows who it is without asking.
    The token itself is never stored: only its SHA-256, to tell a stored identity from
    that of a token used before.
    """

    __tablename__ = "slack_identities"

    token_sha256: str = Field(primary_key=True, max_length=64)
    team_id: str = Field(max_length=32)
    enterprise_id: str | None = Field(default=None, max_length=32)
    user_id: str = Field(max_length=32)  # the bot user, U…
    bot_id: str | None = Field(default=None, max_length=32)  # B…
    learned_at: datetime = Field(sa_type=UTCDateTime)
