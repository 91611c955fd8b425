"""Durations as written in playbooks: ``30s``, ``5m``, ``1h``, ``1h30m``, ``2d``, ``1w``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"^(?:\d+[wdhms])+$")


def parse_duration(text: str | float) -> timedelta:
    """Parse a playbook duration; raise ``ValueError`` naming the accepted form."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(f"duration must not be negative: {text!r}")
        return timedelta(seconds=text)
    compact = str(text).strip().lower().replace(" ", "")
    if not compact or not _WHOLE.match(compact):
        raise ValueError(
            f"not a duration: {text!r} (write it like 30s, 5m, 1h, 1h30m, 2d, 1w)"
        )
    units = [unit for _, unit in _PART.findall(compact)]
    if len(units) != len(set(units)):
        raise ValueError(f"not a duration: {text!r} (a unit appears twice)")
    return timedelta(
        seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(compact))
    )


def format_duration(delta: timedelta) -> str:
    """Render a duration compactly for people: ``1h 5m``, ``45s``, ``2d 3h``."""
    total = int(delta.total_seconds())
    if total < 0:
        return "-" + format_duration(-delta)
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        value, total = divmod(total, size)
        if value:
            parts.append(f"{value}{unit}")
    # Two most significant units are enough for a human reading a card.
    return " ".join(parts[:2])
