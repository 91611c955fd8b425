"""Keep secrets out of exports: configured secret values and well-known token shapes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

# Tokens that must not leak even when they are not Firebreak's own configuration
# (someone pasted one into a note).
TOKEN_PATTERNS = re.compile(
    r"xox[abposre]-[A-Za-z0-9-]{8,}"          # Slack bot/user/app-level tokens
    r"|xapp-[A-Za-z0-9-]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"            # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|(?<=Bearer )[A-Za-z0-9._~+/=-]{16,}"   # an Authorization header value
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
)


class Scrubber:
    """Replace every configured secret (and token-shaped strings) with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so that a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._seen: dict[str, str] = {}

    def remembered(self, value: str) -> str:
        """``text(value)`` for short values that repeat (names), each scrubbed once."""
        found = self._seen.get(value)
        if found is None:
            found = self.text(value)
            if len(self._seen) < 10_000:
                self._seen[value] = found
        return found

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return TOKEN_PATTERNS.sub(REDACTED, value)

    __call__ = text

    def value(self, value: Any) -> Any:
        """A copy of JSON-like data with every string scrubbed (keys too)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value
