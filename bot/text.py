"""Text people type, kept as text: the one helper for storing it and showing it again.

Whatever a person types (a title, a note, a status update, a rollback reason, a
follow-up, a page message) may come back in a message Firebreak posts. There it
must never

- ping people: Slack turns ``<!channel>``, ``<!here>``, ``<!everyone>`` and
  ``<!subteam^S123|@platform>`` into live broadcast and group mentions, in message
  text, in mrkdwn blocks and in the notification text. :func:`shown` writes them as
  plain ``@channel``, ``@here``, ``@everyone``, ``@platform``; a person mentioned
  with ``<@U123>`` stays a mention (that is how people name each other);
- read reversed: the bidi controls U+202A–U+202E and U+2066–U+2069 are dropped
  (:func:`clean`, also by :func:`shown` for text stored before);
- be invisible: :func:`is_blank` says whether anything would show once format and
  control characters are set aside, so that a title of zero-width spaces is
  refused like an empty one.

Slack's mrkdwn is left alone otherwise (``*bold*``, links, ``<#C123>``).
"""

from __future__ import annotations

import re
import unicodedata

# Embeddings and overrides (LRE, RLE, PDF, LRO, RLO) and isolates (LRI, RLI, FSI, PDI).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DROPPED = {ord(c): None for c in BIDI_CONTROLS | {"\x00"}}

# Characters that draw nothing although Unicode counts them as letters or symbols.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Format, control, unassigned and surrogate code points; separators; marks with nothing to mark.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})

# ``<!keyword>`` or ``<!keyword|label>``: Slack's special mentions (and ``<!date^…>``).
_SPECIAL = re.compile(r"<!([^<>|]*)(?:\|([^<>]*))?>")
_BROADCASTS = ("channel", "here", "everyone", "group")


def clean(text: str | None) -> str:
    """Text as Firebreak stores it: without NUL (PostgreSQL cannot store it, Slack never
    sends it) and without bidi controls (nothing Firebreak shows may read reversed)."""
    return (text or "").translate(_DROPPED)


def is_blank(text: str | None) -> bool:
    """True when nothing of ``text`` would be visible: only spaces, zero-width, format,
    control or bidi characters (and combining marks with no letter to sit on)."""
    return not any(
        c not in _BLANK_LETTERS and unicodedata.category(c) not in _INVISIBLE_CATEGORIES
        for c in text or ""
    )


def _plain(match: re.Match[str]) -> str:
    keyword, label = match.group(1), match.group(2)
    if keyword.lower() in _BROADCASTS:
        return "@" + keyword.lower()
    if keyword.lower().startswith("subteam^"):
        name = (label or "").strip().lstrip("@") or keyword[len("subteam^"):] or "group"
        return "@" + name
    if keyword.startswith("date^") and label:
        return label  # the date's fallback text: what Slack would show without formatting
    return (label or keyword).strip() or "!"


def shown(text: str | None) -> str:
    """``text`` as it may appear in a Slack message Firebreak posts (mrkdwn, plain text
    or notification text): no live broadcast or group mention, no bidi control.

    Idempotent; ``<@U123>`` user mentions, links and formatting are kept.
    """
    text = clean(text)
    if "<!" not in text:
        return text
    for _ in range(len(text)):  # a special inside a special's label: unwrap from the inside
        unwrapped = _SPECIAL.sub(_plain, text)
        if unwrapped == text:
            break
        text = unwrapped
    # Whatever is left of a ``<!`` (never closed, or rebuilt by the unwrapping) is shown
    # as the characters themselves: mrkdwn reads ``&lt;`` as ``<``.
    return text.replace("<!", "&lt;!")
