"""Fixtures of the export tests: sessions on each database, settings with secrets, an exporter."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.config import Settings
from bot.db.engine import create_engine, create_sessionmaker
from bot.export.names import Names
from bot.export.pipeline import Exporter
from bot.playbooks.loader import load_playbooks
from tests.export.scripted import CHANNEL, NAMES

REPO = Path(__file__).resolve().parents[2]
SECRETS = {"slack_bot_token": "xoxb-configured-0123456789-secret",
           "slack_signing_secret": "signing-secret-abcdef123456",
           "github_token": "ghp_configuredTokenForTests000000000000",
           "web_auth_token": "web-token-for-tests-123456"}


def make_settings(database_url: str = "sqlite+aiosqlite:///:memory:", **overrides) -> Settings:
    values = dict(database_url=database_url, display_timezone="America/New_York",
                  playbooks_dir=str(REPO / "playbooks"), run_workers=False, **SECRETS)
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def sessions(database_url):
    engine = create_engine(database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def playbooks():
    return load_playbooks(REPO / "playbooks")


@pytest.fixture
def settings(database_url) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def exporter(sessions, settings, clock, playbooks) -> Exporter:
    return Exporter(sessions=sessions, settings=settings, clock=clock, playbooks=playbooks,
                    names=Names(dict(NAMES), {CHANNEL: "#general"}))
