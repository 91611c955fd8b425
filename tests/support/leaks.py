"""Suite-wide check that no configured secret leaks (a pytest plugin, registered in tests/conftest.py).

Which values are secrets
    Every secret of every ``Settings`` built during the session (``Settings.secret_values()``,
    collected as each one is constructed), plus the credentials every fake was started
    with (the Slack emulator's bot tokens, the provider fakes' tokens, the GitHub fake's
    token, PagerDuty routing keys, Opsgenie API keys): many tests hand those to a client
    without building ``Settings``.

Where they must never appear
    * every log record (formatted, traceback included) of the whole session, at INFO and
      above (what ``firebreak serve`` logs by default), and every warning pytest captured;
    * every request the fakes recorded, as far as the bot controls it: the Slack Web API
      calls' parameters (the token itself is not a parameter), response-URL posts, uploaded
      files; provider, pager and GitHub request paths, queries and bodies. Headers are not
      scanned (``Authorization`` is where a token belongs), nor is the ``routing_key`` of a
      PagerDuty event (where the routing key belongs);
    * every row of every table of each test database (timeline events above all), read
      when the ``database_url`` fixture is torn down;
    * every export: each block streamed by ``bot.export.pipeline.buffered`` (Markdown,
      JSON, HTML to Slack, the CLI and the web pages) and each GitHub issue body
      (``pipeline.github_body``). Exports are also checked for token-shaped text
      (``bot.export.scrub.TOKEN_PATTERNS``), which the README promises to remove.

What a user typed
    A secret that a test sent *into* the bot as user input (inside the body of a signed
    request to ``/slack/events``) is the user's own text: its echo in Slack messages, the
    timeline or the logs of that test is not counted as a leak. Exports are still checked
    for it: they are scrubbed whatever the source.

Findings are collected and the session fails at the end (exit status 1) with a report
naming the test, the place and the secret's origin. ``LEAKS.expected()`` diverts findings
inside a ``with`` block, so a test can prove the scanner fails on a planted leak.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import pytest

MIN_SECRET = 6  # as Settings.secret_values(): shorter values are not treated as secrets


@dataclass(frozen=True)
class Finding:
    test: str
    where: str
    origin: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.test or '<outside a test>'}\n    in {self.where}: {self.origin}\n    …{self.excerpt}…"


class LeakWatch:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # value -> where it came from
        self._pattern: re.Pattern[str] | None = None
        self.findings: list[Finding] = []
        self.test = ""
        self.user_supplied: set[str] = set()
        self._diverted: list[list[Finding]] = []
        self._new: list[Any] = []  # fakes created during the current test (strong refs)
        self._old: list[weakref.ref] = []  # fakes of earlier tests that may still record
        self._cursors: dict[int, dict[str, int]] = {}
        self._seen: set[tuple[str, str, str]] = set()

    # -- secrets --------------------------------------------------------------------------

    def add_secret(self, value: Any, origin: str) -> None:
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, str) and len(value) >= MIN_SECRET and value not in self.secrets:
            self.secrets[value] = origin
            self._pattern = None

    @property
    def pattern(self) -> re.Pattern[str] | None:
        if self._pattern is None and self.secrets:
            ordered = sorted(self.secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
        return self._pattern

    # -- checking -------------------------------------------------------------------------

    def check(self, text: str, where: str, *, export: bool = False) -> None:
        if not text:
            return
        pattern = self.pattern
        if pattern is not None:
            for match in pattern.finditer(text):
                secret = match.group(0)
                if not export and secret in self.user_supplied:
                    continue
                self._report(where, f"secret {self.secrets[secret]}", text, match)
        if export:
            from bot.export.scrub import TOKEN_PATTERNS
            for match in TOKEN_PATTERNS.finditer(text):
                self._report(where, "token-shaped text", text, match)

    def check_value(self, value: Any, where: str) -> None:
        if value is None or isinstance(value, (int, float, bool)):
            return
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        self.check(text, where)

    def _report(self, where: str, origin: str, text: str, match: re.Match[str]) -> None:
        start, end = match.span()
        excerpt = text[max(0, start - 60):start] + "<<" + text[start:end] + ">>" + text[end:end + 60]
        finding = Finding(self.test, where, origin, excerpt.replace("\n", "\\n"))
        if self._diverted:
            self._diverted[-1].append(finding)
            return
        key = (finding.test, finding.where, match.group(0))
        if key not in self._seen:  # one line per place and secret is enough
            self._seen.add(key)
            self.findings.append(finding)

    @contextlib.contextmanager
    def expected(self) -> Iterator[list[Finding]]:
        """Findings inside the block go to the yielded list instead of failing the session."""
        caught: list[Finding] = []
        self._diverted.append(caught)
        try:
            yield caught
        finally:
            self._diverted.remove(caught)

    def note_user_input(self, body: str | bytes) -> None:
        """A request body a test sent into the bot: secrets in it were typed by the user."""
        pattern = self.pattern
        if pattern is None:
            return
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        for candidate in (text, unquote_plus(text)):
            self.user_supplied.update(m.group(0) for m in pattern.finditer(candidate))

    # -- fakes ----------------------------------------------------------------------------

    def register_fake(self, fake: Any) -> None:
        if not any(known is fake for known in self._new):
            self._new.append(fake)

    def scan_fakes(self) -> None:
        """Scan what the fakes recorded since the last scan (cheap: new records only)."""
        alive = [ref() for ref in self._old]
        fakes = [f for f in alive if f is not None] + self._new
        for fake in fakes:
            self._scan_fake(fake)
        self._old = [weakref.ref(f) for f in fakes]
        self._new = []
        live = {id(f) for f in fakes}
        self._cursors = {k: v for k, v in self._cursors.items() if k in live}

    def _since(self, fake: Any, name: str, items: list[Any]) -> list[Any]:
        cursors = self._cursors.setdefault(id(fake), {})
        start = cursors.get(name, 0)
        cursors[name] = len(items)
        return items[start:]

    def _scan_fake(self, fake: Any) -> None:
        kind = type(fake).__name__
        if hasattr(fake, "workspace") and hasattr(fake, "calls"):  # the Slack emulator
            for call in self._since(fake, "calls", fake.calls):
                self.check_value(call.params, f"Slack {call.method}")
            posts = fake.workspace.response_url_posts
            for post in self._since(fake, "responses", posts):
                self.check_value(post.payload, "Slack response_url post")
            files = list(fake.workspace.files.values())
            for file in self._since(fake, "files", files):
                self.check(file.content.decode("utf-8", "replace"), f"Slack file {file.name}")
                self.check_value([file.name, file.title], f"Slack file {file.name}")
        elif hasattr(fake, "exchanges"):  # the GitHub issues fake
            for exchange in self._since(fake, "exchanges", fake.exchanges):
                self.check_value([exchange.url, exchange.request_body],
                                 f"GitHub {exchange.verb} {exchange.url}")
        elif hasattr(fake, "requests") and isinstance(fake.requests, list):  # providers, pagers
            for request in self._since(fake, "requests", fake.requests):
                body: Any = request.text
                parsed = request.json
                if isinstance(parsed, dict) and "routing_key" in parsed:
                    body = {k: v for k, v in parsed.items() if k != "routing_key"}
                self.check_value([request.path, request.query, body],
                                 f"{kind} {request.method} {request.path}")

    # -- databases ------------------------------------------------------------------------

    async def scan_database(self, url: str) -> None:
        """Every row of every table of a test database (timeline events above all)."""
        if self.pattern is None:
            return
        where = "database"
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1]
            conn = sqlite3.connect(path)
            try:
                tables = [r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
                for table in tables:
                    for row in conn.execute(f'SELECT * FROM "{table}"'):
                        self.check(repr(row), f"{where} table {table}")
            finally:
                conn.close()
            return
        import asyncpg
        dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            tables = [r[0] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            for table in tables:
                for row in await conn.fetch(f'SELECT to_jsonb(t)::text FROM "{table}" t'):
                    self.check(row[0], f"{where} table {table}")
        finally:
            await conn.close()


LEAKS = LeakWatch()


class _LogScan(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is logging's to report, not ours
            return
        LEAKS.check(text, f"log record of {record.name} ({record.levelname})")


# --------------------------------------------------------------------------- the wiring


def _wrap_init(cls: type, after) -> None:
    original = cls.__init__

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        after(self)

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[method-assign]


def _settings_secrets(settings: Any) -> None:
    from pydantic import SecretStr

    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            LEAKS.add_secret(value, f"Settings.{name}")
    with contextlib.suppress(OSError, ValueError):  # an unreadable .env: Settings reports it itself
        for name, value in settings.pagerduty_routing_keys.items():
            LEAKS.add_secret(value, f"PAGERDUTY_ROUTING_KEY_{name.upper()}")


def _fake_secrets(fake: Any) -> None:
    kind = type(fake).__name__
    for value in getattr(fake, "_tokens", ()) or ():
        LEAKS.add_secret(value, f"{kind} token")
    for attr in ("token", "bot_token"):
        LEAKS.add_secret(getattr(fake, attr, None), f"{kind}.{attr}")
    for attr in ("routing_keys", "api_keys"):
        for value in getattr(fake, attr, ()) or ():
            LEAKS.add_secret(value, f"{kind}.{attr}")
    LEAKS.register_fake(fake)


def _install() -> None:
    from bot.config import Settings
    from bot.emulator import SlackEmulator
    from bot.emulator.github_issues import GitHubIssuesFake
    from bot.emulator.opsgenie import OpsgenieFake
    from bot.emulator.pagerduty import FakeHttpService, PagerDutyFake
    from bot.emulator.providers._server import FakeProviderServer
    from bot.export import pipeline

    _wrap_init(Settings, _settings_secrets)
    # The pager fakes set their keys after their base's __init__: wrapped too (registering twice
    # is harmless).
    for cls in (SlackEmulator, GitHubIssuesFake, FakeHttpService, FakeProviderServer, PagerDutyFake,
                OpsgenieFake):
        _wrap_init(cls, _fake_secrets)
    original_add_token = SlackEmulator.add_token

    def add_token(self, token: str) -> None:
        original_add_token(self, token)
        LEAKS.add_secret(token, "SlackEmulator token")

    SlackEmulator.add_token = add_token  # type: ignore[method-assign]

    buffered = pipeline.buffered

    async def scanned_buffered(chunks, *args: Any, **kwargs: Any):
        tail = b""
        async for block in buffered(chunks, *args, **kwargs):
            text = (tail + block).decode("utf-8", "replace")
            LEAKS.check(text, "export", export=True)
            tail = block[-256:]
            yield block

    pipeline.buffered = scanned_buffered  # type: ignore[assignment]
    github_body = pipeline.github_body

    async def scanned_github_body(*args: Any, **kwargs: Any) -> str:
        body = await github_body(*args, **kwargs)
        LEAKS.check(body, "export (GitHub issue body)", export=True)
        return body

    pipeline.github_body = scanned_github_body  # type: ignore[assignment]

    from tests.support import bed

    post = bed.Bed.post

    async def noting_post(self, body: str, **kwargs: Any):
        LEAKS.note_user_input(body)
        return await post(self, body, **kwargs)

    bed.Bed.post = noting_post  # type: ignore[method-assign]


class LeakPlugin:
    """The pytest side: wiring at start, a scan after each test, the verdict at the end."""

    def __init__(self) -> None:
        self.handler = _LogScan()

    def pytest_configure(self, config: pytest.Config) -> None:
        _install()
        root = logging.getLogger()
        root.addHandler(self.handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        LEAKS.test = item.nodeid
        LEAKS.user_supplied = set()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item):
        yield
        LEAKS.scan_fakes()

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        LEAKS.test = ""
        LEAKS.user_supplied = set()

    def pytest_warning_recorded(self, warning_message, when, nodeid, location) -> None:
        LEAKS.check(str(warning_message.message), f"warning ({when})")

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        LEAKS.scan_fakes()
        if LEAKS.findings and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not LEAKS.findings:
            return
        terminalreporter.section("secrets leaked (tests/support/leaks.py)", sep="=", red=True, bold=True)
        for finding in LEAKS.findings:
            terminalreporter.line(str(finding))
        terminalreporter.line(f"{len(LEAKS.findings)} leak(s) of configured secrets: the session fails.",
                              red=True)
