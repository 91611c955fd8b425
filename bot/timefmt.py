"""Times for people: UTC beside the display zone, always labelled."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.clock import utc


def in_zone(dt: datetime, zone: ZoneInfo) -> str:
    local = utc(dt).astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def utc_and_local(dt: datetime | None, zone: ZoneInfo) -> str:
    """``2026-03-02 14:05 UTC (2026-03-02 09:05 EST)``; the local part only if it differs."""
    if dt is None:
        return "—"
    text = f"{utc(dt):%Y-%m-%d %H:%M} UTC"
    if zone.key != "UTC":
        text += f" ({in_zone(dt, zone)})"
    return text
