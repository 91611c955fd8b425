"""Parsing of /rollback text (pure)."""

from __future__ import annotations

import pytest

from bot.incidents.commands import UsageError
from bot.rollback.commands import RollbackCommand, help_text, parse_rollback_command

SERVICES = {"api", "web", "billing-v2"}


@pytest.mark.parametrize("text, expected", [
    ("", RollbackCommand("help")),
    ("  help ", RollbackCommand("help")),
    ("list", RollbackCommand("list")),
    ("LIST", RollbackCommand("list")),
    ("status", RollbackCommand("status")),
    ("status API", RollbackCommand("status", service="api")),
    ("api", RollbackCommand("start", service="api")),
    ("Api checkout is down", RollbackCommand("start", service="api", reason="checkout is down")),
    ("api to dep-d0abc123", RollbackCommand("start", service="api", target="dep-d0abc123")),
    ("api TO v41 broke   billing", RollbackCommand("start", service="api", target="v41", reason="broke billing")),
    ("billing-v2 to 3f6c2a1e-8b4d-4e7a-9c15-2d8f0b6a7e31",
     RollbackCommand("start", service="billing-v2", target="3f6c2a1e-8b4d-4e7a-9c15-2d8f0b6a7e31")),
    ("web to dpl_7rTq2LmX9c", RollbackCommand("start", service="web", target="dpl_7rTq2LmX9c")),
    ("api tomorrow is too late", RollbackCommand("start", service="api", reason="tomorrow is too late")),
])
def test_parses(text, expected):
    assert parse_rollback_command(text, SERVICES) == expected


@pytest.mark.parametrize("text, problem", [
    ("nope", "There is no service `nope` (known: api, billing-v2, web)"),
    ("status nope", "There is no service"),
    ("status api web", "at most one service"),
    ("list all", "takes nothing"),
    ("api to", "Say which deploy"),
    ("api to ../../etc", "is not a deploy id"),
    ("<@U123>", "is not a /rollback command"),
    ("api " + "r" * 501, "The reason is 501 characters long"),
    ("x" * 1001, "at most 1,000"),
])
def test_usage_errors(text, problem):
    with pytest.raises(UsageError) as raised:
        parse_rollback_command(text, SERVICES)
    assert problem in str(raised.value) and "Usage: `/rollback" in str(raised.value)


def test_no_services_configured():
    with pytest.raises(UsageError, match="none configured"):
        parse_rollback_command("api", set())


def test_help_mentions_every_form_and_the_rules():
    text = help_text()
    for form in ("/rollback <service> [to <deploy-id>] [reason]", "/rollback status [service]",
                 "/rollback list", "/rollback help", "owners", "Approve", "15 minutes"):
        assert form in text
