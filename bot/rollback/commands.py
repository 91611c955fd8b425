"""Parsing of ``/rollback`` text into a typed command; pure and Slack-agnostic.

    /rollback <service> [to <deploy-id>] [reason]
    /rollback status [service]
    /rollback list
    /rollback help

``status``, ``list`` and ``help`` are sub-commands, so a service cannot be
named after them (``/rollback list`` always lists).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from bot.incidents.commands import UsageError
from bot.rollback.models import REASON_MAX
from bot.text import clean, is_blank

MAX_COMMAND_TEXT = 1000
SUBCOMMANDS = ("status", "list", "help")

USAGE = {
    "start": "/rollback <service> [to <deploy-id>] [reason]",
    "status": "/rollback status [service]",
    "list": "/rollback list",
    "help": "/rollback help",
}
ALL_USAGE = " | ".join(USAGE.values())

_DEPLOY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")


@dataclass(frozen=True)
class RollbackCommand:
    name: str  # start | status | list | help
    service: str | None = None
    target: str | None = None  # `to <deploy-id>`
    reason: str = ""


def _service(token: str, services: Collection[str], usage: str) -> str:
    name = token.strip().lower()
    if name not in services:
        known = ", ".join(sorted(services)) or "none configured"
        raise UsageError(f"There is no service `{token[:40]}` (known: {known}).", usage)
    return name


def parse_rollback_command(text: str, services: Collection[str]) -> RollbackCommand:
    """Parse the text after ``/rollback``; raise :class:`UsageError` with the right usage."""
    text = clean(text).strip()
    if len(text) > MAX_COMMAND_TEXT:
        raise UsageError(
            f"That command is {len(text):,} characters long; /rollback accepts at most "
            f"{MAX_COMMAND_TEXT:,} (a reason of up to {REASON_MAX} characters).", ALL_USAGE)
    if not text:
        return RollbackCommand("help")
    words = text.split()
    head = words[0].lower()
    if head == "help":
        if len(words) > 1:
            raise UsageError("`help` takes nothing after it.", USAGE["help"])
        return RollbackCommand("help")
    if head == "list":
        if len(words) > 1:
            raise UsageError("`list` takes nothing after it.", USAGE["list"])
        return RollbackCommand("list")
    if head == "status":
        if len(words) > 2:
            raise UsageError("Name at most one service.", USAGE["status"])
        service = _service(words[1], services, USAGE["status"]) if len(words) == 2 else None
        return RollbackCommand("status", service=service)
    usage = USAGE["start"]
    if head.startswith("-") or not re.match(r"^[a-z0-9][a-z0-9_-]{0,62}$", head):
        raise UsageError(f"`{words[0][:40]}` is not a /rollback command or a service name.", ALL_USAGE)
    service = _service(words[0], services, usage)
    rest = words[1:]
    target = None
    if rest and rest[0].lower() == "to":
        if len(rest) < 2:
            raise UsageError("Say which deploy to roll back to after `to`, or leave `to` out "
                             "for the previous live deploy.", usage)
        if not _DEPLOY_ID.match(rest[1]):
            raise UsageError(f"`{rest[1][:60]}` is not a deploy id (letters, digits, `_.:-`).", usage)
        target, rest = rest[1], rest[2:]
    reason = " ".join(rest)
    reason = "" if is_blank(reason) else reason
    if len(reason) > REASON_MAX:
        raise UsageError(f"The reason is {len(reason):,} characters long; the limit is {REASON_MAX}.", usage)
    return RollbackCommand("start", service=service, target=target, reason=reason)


def help_text() -> str:
    return "\n".join([
        "*Firebreak — /rollback*",
        (f"• `{USAGE['start']}` — preview a rollback: what is live now → what it goes back to, "
         "with *Confirm* / *Cancel*. The default target is the newest deploy that was live "
         "before the current one (failed builds, and deploys Firebreak rolled back from, skipped)."),
        f"• `{USAGE['status']}` — rollbacks in flight and recent ones",
        f"• `{USAGE['list']}` — services, their providers and what is live now",
        f"• `{USAGE['help']}` — this help",
        ("Only the service's owners (playbook `owners`) may confirm. Where the playbook asks for "
         "approvals at the incident's severity (P2 outside an incident), other owners press "
         "*Approve*, before or after the Confirm: the click that completes them starts the rollback. "
         "A preview expires after 15 minutes; one rollback per service at a time."),
    ])
