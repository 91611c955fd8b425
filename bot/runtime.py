"""Everything a running Firebreak needs, built once and shared by web, workers and handlers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.background import BackgroundWork
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.db.engine import SessionMaker, create_engine, create_sessionmaker
from bot.jobs.worker import Worker
from bot.playbooks.loader import Playbooks, load_playbooks
from bot.plugins import concern_installers
from bot.slack.client import make_slack_client
from bot.slack.effects import SlackEffects
from bot.slack.identity import BotIdentity
from bot.slack.people import People

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: SessionMaker
    slack: AsyncWebClient
    playbooks: Playbooks
    worker: Worker
    effects: SlackEffects
    identity: BotIdentity
    people: People
    background: BackgroundWork = field(default_factory=BackgroundWork)
    http: aiohttp.ClientSession | None = None
    extras: dict[str, object] = field(default_factory=dict)
    _own_slack_session: aiohttp.ClientSession | None = field(default=None, repr=False)

    def runbook_for(self, service: str | None) -> str | None:
        playbook = self.playbooks.services.get(service) if service else None
        return playbook.runbook_url if playbook else None

    async def start(self, *, run_workers: bool | None = None) -> None:
        if self.http is None:
            self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        if self.slack.session is None:
            # One connection pool for Slack calls instead of a new session per call.
            self.slack.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.slack.timeout))
            self._own_slack_session = self.slack.session
        self.identity.start()  # in the background: nothing waits for Slack to answer
        if self.settings.run_workers if run_workers is None else run_workers:
            self.worker.start()

    async def close(self) -> None:
        await self.background.drain()
        await self.worker.stop()
        await self.identity.stop()
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self._own_slack_session is not None:
            await self._own_slack_session.close()
            self.slack.session = self._own_slack_session = None
        await self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    playbooks: Playbooks | None = None,
    slack: AsyncWebClient | None = None,
    http: aiohttp.ClientSession | None = None,
) -> Runtime:
    """Wire the parts together; nothing here touches the network or the database.

    ``slack`` and ``http`` (the session for providers and pagers, closed with the runtime)
    default to the ones ``firebreak serve`` makes."""
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    sessions = create_sessionmaker(engine)
    if playbooks is None:
        playbooks = load_playbooks(Path(settings.playbooks_dir))
    slack = slack or make_slack_client(settings)
    worker = Worker(sessions=sessions, clock=clock, poll_seconds=settings.worker_poll_seconds,
                    lease=timedelta(seconds=settings.worker_lease_seconds))
    identity = BotIdentity(sessions=sessions, client=slack, clock=clock)
    runtime = Runtime(settings=settings, clock=clock, engine=engine, sessions=sessions,
                      slack=slack, playbooks=playbooks, worker=worker, effects=None,  # type: ignore[arg-type]
                      identity=identity,
                      people=People(slack, bot_user_id=identity.known_user_id),
                      background=BackgroundWork(concurrency=settings.work_concurrency,
                                                queue_limit=settings.work_queue_limit),
                      http=http)
    runtime.effects = SlackEffects(sessions=sessions, client=slack, settings=settings, clock=clock,
                                   runbook_for=runtime.runbook_for, identity=identity)
    for kind, handler in runtime.effects.handlers().items():
        worker.register(kind, handler)
    for concern in concern_installers():
        if hasattr(concern, "install"):
            concern.install(runtime)
    return runtime
