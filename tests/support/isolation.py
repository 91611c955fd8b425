"""What the shell around the test run may not change, and what CI may not skip (a pytest plugin,
registered in tests/conftest.py).

The environment
    Every variable Firebreak reads is removed for each test: the fields of
    :class:`bot.config.Settings` (the list is the class's, never written out here) and the
    ``PAGERDUTY_ROUTING_KEY_<NAME>`` family. Each test runs in its own empty working
    directory, so neither a ``.env`` nor a ``./firebreak.db`` or ``./playbooks`` of the
    developer's is found. A variable the code under test sets (the demo sets a routing key)
    is removed again after the test. ``.ci/hostile-env`` runs a command with every such
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


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    for name in list(os.environ):
        if is_firebreak_variable(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    for name in list(os.environ):  # set by the code under test: monkeypatch does not know them
        if is_firebreak_variable(name):
            del os.environ[name]


class SkipPlugin:
    def __init__(self) -> None:
        self.skipped: list[str] = []
        self.ci = in_ci()

    def _count(self, report: pytest.CollectReport | pytest.TestReport, where: str) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        self.skipped.append(f"{where}: {reason}")
        if self.ci:
            report.outcome = "failed"
            report.longrepr = f"skipped in CI, where every test must run: {reason}"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
        outcome = yield
        self._count(outcome.get_result(), item.nodeid)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Iterator[None]:
        outcome = yield
        self._count(outcome.get_result(), collector.nodeid)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        verdict = " (CI: each one failed the run)" if self.ci and self.skipped else ""
        terminalreporter.line(f"firebreak: {len(self.skipped)} skipped{verdict}")
        for line in self.skipped:
            terminalreporter.line(f"  skipped {line}")
