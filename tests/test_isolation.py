"""The shell around the test run does not reach the tests (tests/support/isolation.py), and
``Settings(_env_file=None)`` reads no ``.env`` at all, routing keys included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.config import Settings
from tests.support.isolation import hostile_environment

REPO = Path(__file__).resolve().parents[1]

PROBE = '''
import os
from pathlib import Path

from bot.config import Settings
from tests.support.isolation import is_firebreak_variable


def test_probe():
    assert [name for name in os.environ if is_firebreak_variable(name)] == []
    assert list(Path.cwd().iterdir()) == []  # not the folder with the junk .env
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///./firebreak.db" and settings.port == 3000
    assert settings.pagerduty_routing_keys == {} and settings.slack_bot_token is None
'''


def _run_probe(folder: Path, *plugins: str) -> subprocess.CompletedProcess[str]:
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in hostile_environment().items()))
    (folder / "test_probe.py").write_text(PROBE)
    options = [item for plugin in plugins for item in ("-p", plugin)]
    env = {**os.environ, **hostile_environment(), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
         "--rootdir", str(folder), *options, "test_probe.py"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_a_hostile_shell_and_dotenv_do_not_reach_a_test(tmp_path: Path) -> None:
    isolated = _run_probe(tmp_path, "tests.support.isolation")
    assert isolated.returncode == 0, isolated.stdout + isolated.stderr
    # The probe does notice the junk when nothing isolates it.
    exposed = _run_probe(tmp_path)
    assert exposed.returncode == 1 and "FAILED test_probe.py::test_probe" in exposed.stdout, exposed.stdout


SKIPPING = '''
import pytest


def test_needs_something_missing():
    pytest.skip("Alertmanager is not installed")


def test_runs():
    pass
'''


def _run_skipping(folder: Path, ci: str) -> subprocess.CompletedProcess[str]:
    (folder / "test_skipping.py").write_text(SKIPPING)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
         "--rootdir", str(folder), "-p", "tests.support.isolation", "test_skipping.py"],
        cwd=folder, env={**os.environ, "PYTHONPATH": str(REPO), "CI": ci},
        capture_output=True, text=True, timeout=120, check=False)


def test_a_skip_fails_the_run_in_ci_and_is_counted_everywhere(tmp_path: Path) -> None:
    local = _run_skipping(tmp_path, "")
    assert local.returncode == 0 and "firebreak: 1 skipped" in local.stdout, local.stdout
    ci = _run_skipping(tmp_path, "true")
    assert ci.returncode == 1 and "1 failed, 1 passed" in ci.stdout, ci.stdout
    assert "skipped in CI, where every test must run: Alertmanager is not installed" in ci.stdout
    assert "firebreak: 1 skipped (CI: each one failed the run)" in ci.stdout


def test_settings_without_an_env_file_read_no_routing_key_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PAGERDUTY_ROUTING_KEY_PAYMENTS=from-the-dotenv-file\nPORT=4000\n")
    os.chdir(tmp_path)  # the isolation fixture puts the working directory back
    assert Settings().pagerduty_routing_keys["payments"].get_secret_value() == "from-the-dotenv-file"
    assert Settings().port == 4000
    unfiled = Settings(_env_file=None)
    assert unfiled.pagerduty_routing_keys == {} and unfiled.port == 3000
    os.environ["PAGERDUTY_ROUTING_KEY_PAYMENTS"] = "from-the-environment"  # removed after the test
    assert Settings(_env_file=None).pagerduty_routing_keys["payments"].get_secret_value() == "from-the-environment"
    assert Settings().pagerduty_routing_keys["payments"].get_secret_value() == "from-the-environment"
