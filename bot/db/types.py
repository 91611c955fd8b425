"""Column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from bot.clock import utc


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on SQLite (which drops zones) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONData = JSON().with_variant(JSONB(), "postgresql")


def enum_column(enum_type: type, *, length: int = 20, index: bool = False, nullable: bool = False):
    """A VARCHAR column holding a StrEnum's values, read back as the enum."""
    from sqlalchemy import Column, Enum

    return Column(
        Enum(enum_type, native_enum=False, length=length, validate_strings=True,
             values_callable=lambda members: [m.value for m in members]),
        nullable=nullable, index=index,
    )
