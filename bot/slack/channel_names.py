"""Slack channel names: lowercase letters, digits, ``-`` and ``_``, at most 80 characters."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME = 80


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9]+", "-", ascii_text.lower())).strip("-")


def incident_channel_name(prefix: str, number: int, title: str, attempt: int = 0, *,
                          tag: str | None = None) -> str:
    """``inc-12-checkout-is-failing``; ``attempt`` > 0 adds ``-2``, ``-3``… after a clash, and
    ``tag`` (a short random word) makes a name that nobody can have taken in advance."""
    head = f"{prefix}-{number}"
    suffix = f"-{tag}" if tag else (f"-{attempt + 1}" if attempt else "")
    room = MAX_NAME - len(head) - len(suffix) - 1
    slug = slugify(title)[: max(room, 0)].rstrip("-")
    return f"{head}-{slug}{suffix}" if slug else f"{head}{suffix}"
