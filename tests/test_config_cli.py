"""Start-up configuration errors name the variable; the CLI refuses to serve without it."""

import os
import subprocess
import sys

import pytest

from bot.config import ConfigError, load_settings
from bot.durations import format_duration, parse_duration


def _firebreak(*args: str, **env: str) -> subprocess.CompletedProcess:
    # In the test's own empty working directory, without the shell's Firebreak variables
    # (tests/support/isolation.py): the CLI sees only what the test gives it.
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env={**os.environ, **env}, check=False,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("variable, value, named", [
    ("PORT", "eighty", "PORT"),
    ("DISPLAY_TIMEZONE", "Mars/Olympus", "DISPLAY_TIMEZONE"),
    ("INCIDENT_CHANNEL_PREFIX", "Bad Prefix!", "INCIDENT_CHANNEL_PREFIX"),
    ("POSTMORTEM_GITHUB_REPO", "no-slash", "POSTMORTEM_GITHUB_REPO"),
])
def test_malformed_variable_is_named(monkeypatch, variable, value, named):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert named in str(info.value)


def test_serve_without_tokens_names_them_and_exits_2():
    result = _firebreak("serve")
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr and "SLACK_SIGNING_SECRET" in result.stderr


def test_secrets_never_shown_in_errors(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret-value")
    monkeypatch.setenv("PORT", "nope")
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert "very-secret" not in str(info.value)


def test_durations():
    assert parse_duration("1h30m").total_seconds() == 5400
    assert format_duration(parse_duration("2d3h")) == "2d 3h"
    with pytest.raises(ValueError, match="30s, 5m"):
        parse_duration("5 minutes")
