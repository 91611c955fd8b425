"""Shared fixtures: databases (SQLite and PostgreSQL), the fake Slack, the bot under test."""

from __future__ import annotations

import os
import time

# The whole suite runs in a zone that is not UTC, so that a naive local-time conversion
# (``datetime.fromtimestamp(ts)`` without ``tz=``) shifts a time by hours and fails a test.
# Set before anything below is imported, and re-read by the C library at once.
os.environ["TZ"] = "America/Los_Angeles"
time.tzset()

from collections.abc import AsyncIterator

import pytest

from bot.db.migrate import upgrade_async
from tests.support import isolation, loop_clock
from tests.support.databases import create_pg_database, drop_pg_database, pg_url
from tests.support.leaks import LEAKS, LeakPlugin


def pytest_configure(config) -> None:
    # Suite-wide: no configured secret in any log, Slack call, database row or export.
    config.pluginmanager.register(LeakPlugin(), "firebreak-leaks")
    # --- isolation and skips (tests/support/isolation.py) ---------------------------------
    # Each test: no Firebreak variable from the shell, an empty working directory.
    # In CI, a skip fails the run; the summary gives the skip count.
    config.pluginmanager.register(isolation, "firebreak-isolation")
    # The ``loop_clock`` fixture: request timeouts fire without waiting for them.
    config.pluginmanager.register(loop_clock, "firebreak-loop-clock")
    # --- end of isolation and skips ---------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request, tmp_path) -> AsyncIterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'firebreak.db'}"
        await upgrade_async(url)
        yield url
        await LEAKS.scan_database(url)
        return
    name = await create_pg_database()
    try:
        url = pg_url(name)
        await upgrade_async(url)
        yield url
        await LEAKS.scan_database(url)
    finally:
        await drop_pg_database(name)


@pytest.fixture
async def bed(database_url):
    """The bot over HTTP against the fake Slack, on each database (see tests/support/bed.py)."""
    from tests.support.bed import start_bed, stop_bed

    test_bed = await start_bed(database_url)
    try:
        yield test_bed
    finally:
        await stop_bed(test_bed)
    assert not test_bed.emu.violations, test_bed.emu.violations
