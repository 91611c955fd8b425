"""Properties of the command parsers: any text gives a typed command or a UsageError that
says what was wrong and how to write it, never another exception; what parses obeys the
limits the rest of Firebreak relies on (lengths, ids, no NUL for PostgreSQL)."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.incidents.commands import (
    ALIASES,
    EXPORT_FORMATS,
    MAX_COMMAND_TEXT,
    USAGE,
    Command,
    UsageError,
    parse_incident_command,
)
from bot.incidents.models import TEXT_MAX, TITLE_MAX, Role
from bot.playbooks.models import Severity
from bot.playbooks.targets import Target
from bot.rollback.commands import RollbackCommand, parse_rollback_command
from bot.rollback.models import REASON_MAX

SERVICES = ("api", "jobs", "web", "worker")
WORDS = sorted({*USAGE, *ALIASES}) + [
    "INC-1", "inc-999999999", "INC-0", "INC-", "#4", "P0", "P1", "p3", "P4", "PX", "service:api",
    "service:", "service:API", "<@U024BE7LH>", "<@U024BE7LH|ava>", "<@W1>", "<@u1>", "<!subteam^S0LEADS|@leads>",
    "<#C0GENERAL|general>", "<!here>", "oncall:backend", "oncall:backend:secondary", "user:U1",
    "pagerduty:default", "opsgenie:ops", "group:", "commander", "comms", "scribe", "boss", "all",
    "open", "md", "json", "html", "github", "pdf", "to", "dep-abc123", "api", "jobs", "web", "worker",
    "status", "list", "help", "-x", "ünïcødé", "🔥", "\u202e", "\x00", "\t", "\n", "\u3000", "`", "*",
]
# Text that looks like a command often enough to reach every branch, plus anything at all.
command_text = st.one_of(
    st.lists(st.sampled_from(WORDS) | st.text(max_size=12), max_size=12).map(" ".join),
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=3400, max_size=3600),
    st.builds(lambda head, n: head + " " + "x" * n, st.sampled_from(WORDS), st.integers(0, 4000)),
)
MAX_PROBLEM = 400  # a refusal quotes the input only briefly


def _check_refusal(error: UsageError) -> None:
    assert error.problem and error.usage
    assert len(error.problem) <= MAX_PROBLEM, error.problem[:200]
    assert error.usage.startswith("/incident") or error.usage.startswith("/rollback") \
        or "see /incident help" in error.usage


def _check_incident(command: Command) -> None:
    assert command.name in USAGE
    for text in (command.text, command.target or "", command.service or "", command.user or ""):
        assert "\x00" not in text, "PostgreSQL cannot store NUL in text"
    if command.incident is not None:
        assert 0 <= command.incident < 2**31  # fits the database's integer column
    if command.severity is not None:
        assert isinstance(command.severity, Severity)
    if command.name == "open" and command.severity is not None:
        assert command.text and command.text == command.text.strip() and len(command.text) <= TITLE_MAX
        assert command.service is None or re.fullmatch(r"[a-z0-9_.-]+", command.service)
    if command.name in ("note", "status", "followup"):
        assert command.text and len(command.text) <= TEXT_MAX
    if command.name in ("mitigated", "resolve", "page"):
        assert len(command.text) <= TEXT_MAX
    if command.name == "assign":
        assert isinstance(command.role, Role) and re.fullmatch(r"[UW][A-Z0-9]+", command.user)
    if command.user is not None:
        assert re.fullmatch(r"[UW][A-Z0-9]+", command.user)
    if command.name == "page":
        try:  # what the handler does next: a bad target is a usage error there
            Target.parse(command.target)
        except ValueError as exc:
            assert str(exc)
    if command.name == "export":
        assert command.format in EXPORT_FORMATS


@settings(max_examples=400, deadline=None)
@given(text=command_text)
@example("note \x00")
@example("open P1 a\x00b")
@example("note INC-99999999999 x")
@example("x" * (MAX_COMMAND_TEXT + 1))
def test_any_incident_text_parses_or_is_refused_with_usage(text: str) -> None:
    try:
        command = parse_incident_command(text)
    except UsageError as error:
        _check_refusal(error)
    else:
        _check_incident(command)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(["note", "status", "mitigated", "resolve", "followup"]),
       number=st.none() | st.integers(1, 999_999_999),
       words=st.lists(st.text(alphabet=st.characters(categories=["L", "N", "P", "S"]), min_size=1,
                              max_size=15), min_size=1, max_size=20))
def test_well_formed_text_commands_round_trip(name: str, number: int | None, words: list[str]) -> None:
    words = [w for w in words if not re.fullmatch(r"(?i)INC-?\d{1,9}", w)]
    if name == "followup" and words and re.fullmatch(r"<@[UW][A-Z0-9]+(\|[^>]*)?>", words[-1]):
        words = words[:-1]
    if not words:
        return
    text = " ".join(words)
    ref = f" INC-{number}" if number is not None else ""
    command = parse_incident_command(f"{name}{ref} {text}")
    assert (command.name, command.incident, command.text) == (name, number, text)


@settings(max_examples=100, deadline=None)
@given(severity=st.sampled_from(list(Severity)), lower=st.booleans(),
       title=st.text(alphabet=st.characters(categories=["L", "N", "Zs"]), min_size=1, max_size=TITLE_MAX),
       service=st.none() | st.sampled_from(SERVICES))
def test_well_formed_open_round_trips(severity: Severity, lower: bool, title: str, service: str | None) -> None:
    title = " ".join(title.split())
    if not title or re.match(r"(?i)P[0-3]$", title.split()[0]) and False:
        return
    sev = severity.value.lower() if lower else severity.value
    text = f"open {sev} {title}" + (f" service:{service}" if service else "")
    command = parse_incident_command(text)
    assert (command.severity, command.text, command.service) == (severity, title, service)


rollback_text = st.one_of(
    st.lists(st.sampled_from(WORDS) | st.text(max_size=12), max_size=10).map(" ".join),
    st.text(max_size=200),
    st.builds(lambda head, n: head + " " + "y" * n, st.sampled_from(["api", "api to dep-1", "status"]),
              st.integers(0, 1100)),
)


@settings(max_examples=300, deadline=None)
@given(text=rollback_text)
@example("api to")
@example("api to \x00")
@example("api reason \x00 here")
@example("status nope")
@example("API")
def test_any_rollback_text_parses_or_is_refused_with_usage(text: str) -> None:
    try:
        command = parse_rollback_command(text, SERVICES)
    except UsageError as error:
        _check_refusal(error)
        return
    assert isinstance(command, RollbackCommand) and command.name in ("start", "status", "list", "help")
    if command.name == "start":
        assert command.service in SERVICES
        assert len(command.reason) <= REASON_MAX and "\x00" not in command.reason
        assert command.target is None or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}", command.target)
    if command.name == "status":
        assert command.service is None or command.service in SERVICES


@settings(max_examples=100, deadline=None)
@given(service=st.sampled_from(SERVICES), target=st.none() | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,40}", fullmatch=True),
       reason=st.lists(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=10), max_size=8))
def test_well_formed_rollback_round_trips(service: str, target: str | None, reason: list[str]) -> None:
    if reason and reason[0].lower() == "to":
        reason = reason[1:]
    text = service.upper() + (f" to {target}" if target else "") + (" " + " ".join(reason) if reason else "")
    command = parse_rollback_command(text, SERVICES)
    assert (command.name, command.service, command.target, command.reason) == (
        "start", service, target, " ".join(reason))
