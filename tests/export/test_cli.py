"""``firebreak export INC-n --format … [--output FILE]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.emulator.github_issues import GitHubIssuesFake
from bot.export.cli import run_export
from tests.export.conftest import make_settings
from tests.export.scripted import LEAKED, script_incident


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["export", *argv])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_export_to_a_file_and_to_stdout(database_url, sessions, clock, tmp_path, capsysbinary):
    run = await script_incident(sessions, clock)
    settings = make_settings(database_url, slack_bot_token=None)  # no Slack: ids stay ids
    target = tmp_path / "INC-1.json"
    assert await run_export(settings, _args(f"INC-{run.number}", "--format", "json",
                                            "--output", str(target))) == 0
    document = json.loads(target.read_text())
    assert document["event_count"] == len(run.expected)
    assert document["incident"]["commander"]["name"] == "U0G9QF9C6"
    assert not Path(str(target) + ".partial").exists()
    capsysbinary.readouterr()
    assert await run_export(settings, _args("inc-1")) == 0  # md to standard output
    out = capsysbinary.readouterr().out.decode()
    assert out.startswith("# INC-1: Checkout is failing — post-mortem")
    assert LEAKED not in out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_unknown_incidents_and_bad_names_fail_clearly(database_url, capsys):
    settings = make_settings(database_url)
    assert await run_export(settings, _args("INC-404")) == 1
    assert "There is no incident INC-404." in capsys.readouterr().err
    assert await run_export(settings, _args("yesterday")) == 2
    assert "write it like INC-12" in capsys.readouterr().err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_export_github_prints_the_issue(database_url, sessions, clock, capsys):
    run = await script_incident(sessions, clock)
    async with GitHubIssuesFake(repos=["acme/pm"]) as fake:
        settings = make_settings(database_url, github_api_url=fake.api_url, github_token=fake.token,
                                 postmortem_github_repo="acme/pm", slack_bot_token=None)
        assert await run_export(settings, _args(f"INC-{run.number}", "--format", "github")) == 0
        assert f"Opened acme/pm#1: {fake.url}/acme/pm/issues/1" in capsys.readouterr().out
        assert await run_export(settings, _args(f"INC-{run.number}", "--format", "github")) == 0
        assert "Updated acme/pm#1" in capsys.readouterr().out
        assert len(fake.issues("acme/pm")) == 1
