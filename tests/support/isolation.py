"""What the shell around the test run may not change, and what CI may not skip (a pytest plugin,
registered in tests/conftest.py).

The environment
    Every variable Firebreak reads is removed: the fields of :class:`bot.config.Settings`
    (the list is the class's, never written out here) and the ``PAGERDUTY_ROUTING_KEY_<NAME>``
    family, once when the session starts (so module and session fixtures, and the processes
    they start, never see them) and again around each test. The session, then each test,
    runs in its own empty working directory, so neither a ``.env`` nor a ``./firebreak.db``
    or ``./playbooks`` of the developer's is found. A variable the code under test sets (the
    demo sets a routing key) is removed again after the test. ``.ci/hostile-env`` runs a command with every such
    variable set to junk and a junk ``.env`` in the working directory: ``.ci/run`` runs the
    suite that way.

Skips
    Outside CI a test may skip when something it needs is missing (PostgreSQL, Chromium,
    Alertmanager), saying what. In CI (``CI`` set to anything but ``false``/``0``/empty)
    every skip is reported as a failure, so a green CI run has run every test. The summary
    line ``firebreak: N skipped`` gives the count either way (``.ci/run`` prints it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bot.config import ROUTING_KEY_PREFIX, Settings

SETTINGS_VARIABLES = frozenset(name.upper() for name in Settings.model_fields)


def is_firebreak_variable(name: str) -> bool:
    upper = name.upper()
    return upper in SETTINGS_VARIABLES or upper.startswith(ROUTING_KEY_PREFIX)


def hostile_environment() -> dict[str, str]:
    """Every variable Firebreak reads, set to a value no test expects (and most fields refuse)."""
    junk = {name: f"junk-{name.lower()}" for name in sorted(SETTINGS_VARIABLES)}
    junk[f"{ROUTING_KEY_PREFIX}DEFAULT"] = "junk-routing-key-default"
    return junk


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _remove_firebreak_variables() -> dict[str, str]:
    return {name: os.environ.pop(name) for name in list(os.environ) if is_firebreak_variable(name)}


_SHELL: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    _SHELL.update(_remove_firebreak_variables())


def pytest_unconfigure(config: pytest.Config) -> None:
    _remove_firebreak_variables()
    os.environ.update(_SHELL)


@pytest.fixture(scope="session", autouse=True)
def isolated_session_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("session-cwd"))
        yield


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    _remove_firebreak_variables()
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    _remove_firebreak_variables()  # set by the code under test


_SKIPPED: list[str] = []


def _count_skip(report: pytest.CollectReport | pytest.TestReport, where: str) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    _SKIPPED.append(f"{where}: {reason}")
    if in_ci():
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    _count_skip(outcome.get_result(), item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _count_skip(outcome.get_result(), collector.nodeid)


def pytest_terminal_summary(terminalreporter) -> None:
    verdict = " (CI: each one failed the run)" if in_ci() and _SKIPPED else ""
    terminalreporter.line(f"firebreak: {len(_SKIPPED)} skipped{verdict}")
    for line in _SKIPPED:
        terminalreporter.line(f"  skipped {line}")
