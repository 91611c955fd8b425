"""Parsing of ``/incident`` text into a typed command; pure and Slack-agnostic.

Mentions arrive as Slack formats them: ``<@U123|name>`` or ``<@U123>``,
``<!subteam^S123|@group>`` and ``<#C123|name>``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from bot.incidents.models import TEXT_MAX, TITLE_MAX, Role
from bot.playbooks.models import Severity
from bot.text import clean, is_blank

MAX_COMMAND_TEXT = 3500
EXPORT_FORMATS = ("md", "json", "html", "github")

USAGE: dict[str, str] = {
    "open": "/incident open P0|P1|P2|P3 <title> [service:<name>]   (or /incident open alone for a form)",
    "ack": "/incident ack [INC-n]",
    "sev": "/incident sev [INC-n] P0|P1|P2|P3",
    "assign": "/incident assign [INC-n] commander|comms|scribe @user",
    "note": "/incident note [INC-n] <text>",
    "status": "/incident status [INC-n] <text>",
    "page": "/incident page [INC-n] @user|@group|oncall:<rotation> [message]",
    "mitigated": "/incident mitigated [INC-n] [text]",
    "resolve": "/incident resolve [INC-n] [summary]",
    "reopen": "/incident reopen [INC-n]",
    "list": "/incident list [all]",
    "timeline": "/incident timeline [INC-n]",
    "oncall": "/incident oncall [rotation]",
    "followup": "/incident followup [INC-n] <text> [@owner]",
    "export": "/incident export [INC-n] [md|json|html|github]",
    "help": "/incident help",
}
ALIASES = {"declare": "open", "acknowledge": "ack", "severity": "sev", "mitigate": "mitigated",
           "close": "resolve", "timeline": "timeline", "ls": "list", "follow-up": "followup"}

_INCIDENT_REF = re.compile(r"^(?:INC-?)?#?(\d{1,9})$", re.IGNORECASE)
_INCIDENT_TOKEN = re.compile(r"^INC-?(\d{1,9})$", re.IGNORECASE)
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_GROUP = re.compile(r"^<!subteam\^([A-Z0-9]+)(?:\|[^>]*)?>$")
_CHANNEL = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$")
_SEVERITY = re.compile(r"^P[0-3]$", re.IGNORECASE)
_SERVICE = re.compile(r"(?:^|\s)service:([A-Za-z0-9_.-]+)(?=\s|$)")


class UsageError(Exception):
    """Bad input: ``problem`` says what was wrong, ``usage`` the right form."""

    def __init__(self, problem: str, usage: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.usage = usage

    def __str__(self) -> str:
        return f"{self.problem}\nUsage: `{self.usage}`"


@dataclass(frozen=True)
class Command:
    name: str
    incident: int | None = None
    severity: Severity | None = None
    text: str = ""
    service: str | None = None
    role: Role | None = None
    user: str | None = None
    target: str | None = None
    format: str | None = None
    include_all: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def parse_incident_ref(token: str) -> int | None:
    match = _INCIDENT_REF.match(token.strip())
    return int(match.group(1)) if match else None


def parse_user(token: str) -> str | None:
    match = _USER.match(token.strip())
    return match.group(1) if match else None


def parse_target(token: str) -> str | None:
    """A page target from a mention or a playbook-style target string."""
    token = token.strip()
    if user := parse_user(token):
        return f"user:{user}"
    if match := _GROUP.match(token):
        return f"group:{match.group(1)}"
    if match := _CHANNEL.match(token):
        return f"channel:{match.group(1)}"
    if re.match(r"^(user|group|channel|oncall|pagerduty|opsgenie):[A-Za-z0-9_.:-]+$", token):
        return token
    return None


def _severity(token: str, usage: str) -> Severity:
    if not _SEVERITY.match(token):
        raise UsageError(f"`{token[:20]}` is not a severity: use P0 (critical) to P3 (low).", usage)
    return Severity(token.upper())


def _split_incident(words: list[str]) -> tuple[int | None, list[str]]:
    if words:
        match = _INCIDENT_TOKEN.match(words[0])
        if match:
            return int(match.group(1)), words[1:]
    return None, words


def _limit(text: str, limit: int, what: str, usage: str) -> str:
    if len(text) > limit:
        raise UsageError(f"The {what} is {len(text):,} characters long; the limit is {limit:,}.", usage)
    return text


def parse_incident_command(text: str) -> Command:
    """Parse the text after ``/incident``; raise UsageError with the right usage.

    Text that shows nothing (zero-width or format characters only) counts as no text.
    """
    text = clean(text).strip()
    if len(text) > MAX_COMMAND_TEXT:
        raise UsageError(
            f"That command is {len(text):,} characters long; Firebreak accepts at most "
            f"{MAX_COMMAND_TEXT:,}. Put long text in the channel and pin it instead.",
            USAGE["help"],
        )
    if not text:
        return Command("help")
    head, _, rest = text.partition(" ")
    name = ALIASES.get(head.lower(), head.lower())
    rest = rest.strip()
    if name not in USAGE:
        guess = difflib.get_close_matches(name, [*USAGE, *ALIASES], n=1, cutoff=0.6)
        hint = f" Did you mean `{ALIASES.get(guess[0], guess[0])}`?" if guess else ""
        raise UsageError(
            f"`{head[:30]}` is not an /incident command.{hint}",
            " | ".join(sorted(k for k in USAGE)) + "  (see /incident help)",
        )
    usage = USAGE[name]
    words = rest.split()

    if name == "open":
        if not words:
            return Command("open")  # opens the form
        severity = _severity(words[0], usage)
        body = rest[len(words[0]):].strip()
        service = None
        if match := _SERVICE.search(body):
            service = match.group(1).lower()
            body = (body[: match.start()] + " " + body[match.end():]).strip()
        title = " ".join(body.split())
        if is_blank(title):
            raise UsageError("An incident needs a title (one that shows: zero-width and format "
                             "characters alone are not one).", usage)
        _limit(title, TITLE_MAX, "title", usage)
        return Command("open", severity=severity, text=title, service=service)

    if name in ("help", "list", "oncall"):
        if name == "list":
            if words and words[0].lower() not in ("all", "open", "active"):
                raise UsageError(f"`{words[0][:20]}`: say `all` or nothing.", usage)
            return Command("list", include_all=bool(words) and words[0].lower() == "all")
        if name == "oncall":
            if len(words) > 1:
                raise UsageError("Name at most one rotation.", usage)
            return Command("oncall", target=words[0] if words else None)
        return Command("help")

    incident, words = _split_incident(words)
    body = " ".join(words)
    if is_blank(body):
        body = ""

    if name in ("ack", "reopen", "timeline"):
        if words:
            raise UsageError(f"`{name}` takes no text.", usage)
        return Command(name, incident=incident)
    if name == "sev":
        if len(words) != 1:
            raise UsageError("Give exactly one severity.", usage)
        return Command(name, incident=incident, severity=_severity(words[0], usage))
    if name == "assign":
        if len(words) != 2:
            raise UsageError("Name a role and a person.", usage)
        try:
            role = Role(words[0].lower())
        except ValueError:
            raise UsageError(f"`{words[0][:20]}` is not a role.", usage) from None
        user = parse_user(words[1])
        if user is None:
            raise UsageError(f"`{words[1][:40]}` is not a person: mention them with @.", usage)
        return Command(name, incident=incident, role=role, user=user)
    if name in ("note", "status"):
        if not body:
            raise UsageError(f"`{name}` needs some text.", usage)
        return Command(name, incident=incident, text=_limit(body, TEXT_MAX, name, usage))
    if name in ("mitigated", "resolve"):
        return Command(name, incident=incident, text=_limit(body, TEXT_MAX, "text", usage))
    if name == "page":
        if not words:
            raise UsageError("Say whom to page.", usage)
        target = parse_target(words[0])
        if target is None:
            raise UsageError(f"`{words[0][:40]}` is not someone Firebreak can page.", usage)
        message = " ".join(words[1:])
        message = "" if is_blank(message) else message
        return Command(name, incident=incident, target=target,
                       text=_limit(message, TEXT_MAX, "message", usage))
    if name == "followup":
        owner = parse_user(words[-1]) if words else None
        item = " ".join(words[:-1] if owner else words)
        if is_blank(item):
            raise UsageError("A follow-up needs some text.", usage)
        return Command(name, incident=incident, text=_limit(item, TEXT_MAX, "follow-up", usage),
                       user=owner)
    if name == "export":
        if len(words) > 1 or (words and words[0].lower() not in EXPORT_FORMATS):
            raise UsageError(f"Choose one format: {', '.join(EXPORT_FORMATS)}.", usage)
        return Command(name, incident=incident, format=(words[0].lower() if words else "md"))
    raise UsageError(f"`{name}` is not handled.", usage)  # pragma: no cover - USAGE covers all


def help_text() -> str:
    lines = ["*Firebreak — /incident*"] + [f"• `{usage}`" for usage in USAGE.values()]
    lines.append("An `INC-n` argument defaults to the incident of the channel you type in.")
    return "\n".join(lines)
