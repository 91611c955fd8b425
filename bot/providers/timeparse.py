"""Timestamps as providers write them: RFC 3339 strings or epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.clock import utc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(value: Any) -> datetime:
    """An aware UTC datetime from ``2026-03-02T14:00:00Z``, ``...+00:00``, or epoch ms.

    Unknown values give the epoch, which sorts last and is never mistaken for "new".
    """
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str) and value:
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            return utc(datetime.fromisoformat(text))
        except ValueError:
            return _EPOCH
    return _EPOCH
