"""The escalation engine against the fake Slack, PagerDuty and Opsgenie, with a manual clock.

``Harness`` is one Firebreak "process": its own engine, sessions and worker
(Slack effects included, so incidents get their channels). Tests that need two
processes build a second one on the same database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import ManualClock
from bot.config import Settings
from bot.db.engine import SessionMaker, create_engine, create_sessionmaker, transaction
from bot.emulator import SlackEmulator
from bot.emulator.opsgenie import OpsgenieFake
from bot.emulator.pagerduty import PagerDutyFake
from bot.escalation import service as escalation
from bot.escalation.engine import ESCALATION_RETRY, EscalationEngine
from bot.escalation.models import Page
from bot.incidents import service as incidents
from bot.incidents.models import Incident, TimelineEvent
from bot.jobs.models import Job
from bot.jobs.worker import Worker
from bot.pagers import Pager
from bot.pagers.http import RetryPolicy
from bot.pagers.opsgenie import OpsgeniePager
from bot.pagers.pagerduty import PagerDutyPager
from bot.pagers.slack import SlackChannelPager, SlackGroupPager, SlackUserPager, page_client
from bot.playbooks.loader import Playbooks, load_playbooks
from bot.playbooks.models import Severity
from bot.slack.effects import SlackEffects
from tests.pagers.conftest import OG_KEY, PD_KEY, RecordedSleep
from tests.pagers.test_pagerduty import validate_against_spec
from tests.support.slack_openapi import slack_openapi_validator

BOT_TOKEN = "xoxb-escalation-0123456789"
# Tuesday 2026-03-03 10:00 in New York: week 8 of the sample rotation.
START = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
AVA, BEN, CHEN, DANA, ELI, FAY = ("U024BE7LH", "U0G9QF9C6", "U1H2J3K4L", "U2D4N5A6K",
                                  "U3E7L8I9N", "U4F5A6Y7R")
REPORTER = BEN
TRIAGE = "C0TRIAGE"

ESCALATION_YAML = """\
severities:
  P0: {name: Critical, meaning: Complete outage, respond_within: 5m, status_update_every: 30m}
  P1: {name: High, meaning: Major feature broken, respond_within: 1h, status_update_every: 1h}
  P2: {name: Medium, meaning: Minor feature issues, respond_within: 4h}
  P3: {name: Low, meaning: Cosmetic issues, respond_within: 24h}
escalation:
  P0:
    - {after: 0m, notify: ["oncall:backend", "pagerduty:default"]}
    - {after: 5m, notify: ["oncall:backend:secondary", "group:S0LEADS"]}
    - {after: 15m, notify: ["opsgenie:ops", "channel:C0TRIAGE"]}
    - {after: 30m, notify: ["group:S0EXEC"], repeat: 2, every: 10m}
  P1:
    - {after: 0m, notify: ["oncall:backend", "pagerduty:default"]}
    - {after: 15m, notify: ["oncall:backend:secondary"]}
  P2:
    - {after: 0m, notify: ["oncall:backend"]}
    - {after: 1h, notify: ["oncall:backend:secondary"]}
  P3:
    - {after: 0m, notify: ["oncall:berlin"]}
    - {after: 2h, notify: ["oncall:berlin:secondary"]}
"""

ONCALL_YAML = """\
rotations:
  backend:
    timezone: America/New_York
    handoff: "09:00"
    shift: 1w
    start: 2026-01-05
    members: ["user:U024BE7LH", "user:U0G9QF9C6", "user:U1H2J3K4L"]
  berlin:
    timezone: Europe/Berlin
    handoff: "09:00"
    shift: 1d
    start: 2026-01-01
    members: ["user:U2D4N5A6K", "user:U3E7L8I9N"]
"""


def write_playbooks(folder: Path, escalation_yaml: str = ESCALATION_YAML,
                    oncall_yaml: str = ONCALL_YAML) -> Playbooks:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "escalation.yaml").write_text(escalation_yaml)
    (folder / "oncall.yaml").write_text(oncall_yaml)
    return load_playbooks(folder)


@pytest.fixture
def playbooks(tmp_path: Path) -> Playbooks:
    return write_playbooks(tmp_path / "playbooks")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sleeps() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
def retry(sleeps: RecordedSleep) -> RetryPolicy:
    """The engine's own policy (:data:`ESCALATION_RETRY`); only its waits are recorded, not slept."""
    return replace(ESCALATION_RETRY, sleep=sleeps)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def emu(clock: ManualClock) -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(bot_token=BOT_TOKEN, validator=slack_openapi_validator())
    await emulator.start()
    yield emulator
    await emulator.stop()
    assert not emulator.violations, emulator.violations


@pytest.fixture
async def pd() -> AsyncIterator[PagerDutyFake]:
    async with PagerDutyFake(routing_keys={PD_KEY}, validator=validate_against_spec) as fake:
        yield fake
    assert fake.validation_errors == []


@pytest.fixture
async def og() -> AsyncIterator[OpsgenieFake]:
    async with OpsgenieFake(api_keys={OG_KEY}) as fake:
        yield fake


@dataclass
class Harness:
    """One Firebreak process: engine, sessions, worker."""

    db: AsyncEngine
    sessions: SessionMaker
    clock: ManualClock
    engine: EscalationEngine
    worker: Worker
    emu: SlackEmulator
    pd: PagerDutyFake
    og: OpsgenieFake
    pagers: dict[str, Pager] = field(default_factory=dict)

    # --- incident actions, as the listeners do them (row locked) ---------------------

    async def open(self, severity: str = "P0", title: str = "checkout is failing",
                   reporter: str = REPORTER) -> Incident:
        async with transaction(self.sessions) as session:
            result = await incidents.open_incident(session=session, severity=Severity(severity),
                                                   title=title, reporter_id=reporter, now=self.clock.now())
        return result.incident

    async def change(self, number: int, action: str, **kwargs: Any) -> Any:
        async with transaction(self.sessions) as session:
            incident = await incidents.get_incident(session=session, number=number, for_update=True)
            function = getattr(incidents, action)
            return await function(session=session, incident=incident, now=self.clock.now(), **kwargs)

    async def ack(self, number: int, actor: str = CHEN) -> Any:
        return await self.change(number, "acknowledge", actor=actor)

    async def run(self) -> int:
        return await self.worker.run_due()

    async def at(self, minutes: float) -> int:
        """Move the clock to ``minutes`` after START and run what is due."""
        self.clock.set(START + timedelta(minutes=minutes))
        return await self.run()

    # --- reading -----------------------------------------------------------------------

    async def incident(self, number: int) -> Incident:
        async with self.sessions() as session:
            return await incidents.get_incident(session=session, number=number)

    async def pages(self, number: int) -> list[Page]:
        async with self.sessions() as session:
            incident = await incidents.get_incident(session=session, number=number)
            return await escalation.pages_of(session=session, incident_id=incident.id)

    async def events(self, number: int, *kinds: str) -> list[TimelineEvent]:
        async with self.sessions() as session:
            incident = await incidents.get_incident(session=session, number=number)
            events = await incidents.timeline(session=session, incident=incident)
        return [e for e in events if not kinds or e.kind in kinds]

    async def jobs(self, *kinds: str) -> list[Job]:
        async with self.sessions() as session:
            query = select(Job).order_by(Job.id)
            if kinds:
                query = query.where(Job.kind.in_(kinds))
            return list((await session.execute(query)).scalars())

    def page_dms(self, user: str, number: int | None = None) -> list[Any]:
        """The paging DMs ``user`` received (about INC-number)."""
        wanted = "Page: " if number is None else f"Page: INC-{number} "
        return [m for m in self.emu.dms(user) if (m.text or "").startswith(wanted)]

    def channel_texts(self, channel_id: str | None) -> list[str]:
        return [m.text or "" for m in self.emu.messages(channel_id)] if channel_id else []

    async def close(self) -> None:
        await self.db.dispose()


async def make_harness(database_url: str, *, clock: ManualClock, playbooks: Playbooks,
                       emu: SlackEmulator, pd: PagerDutyFake, og: OpsgenieFake,
                       http: aiohttp.ClientSession, retry: RetryPolicy,
                       worker_id: str | None = None, lease: timedelta = timedelta(minutes=2),
                       slack_effects: bool = True) -> Harness:
    db = create_engine(database_url)
    sessions = create_sessionmaker(db)
    slack = AsyncWebClient(token=BOT_TOKEN, base_url=emu.api_url)
    sender = page_client(slack)  # as installed: no retries under the incident's lock
    pagers: dict[str, Pager] = {
        "user": SlackUserPager(sender),
        "group": SlackGroupPager(sender, members_client=slack),
        "channel": SlackChannelPager(sender),
        "pagerduty": PagerDutyPager(http, pd.url, {"default": SecretStr(PD_KEY)}, retry=retry),
        "opsgenie": OpsgeniePager(http, og.url, SecretStr(OG_KEY), retry=retry),
    }
    engine = EscalationEngine(sessions=sessions, clock=clock, playbooks=playbooks, slack=slack,
                              pagers=pagers)
    worker = Worker(sessions=sessions, clock=clock, worker_id=worker_id, lease=lease)
    engine.register(worker)
    if not slack_effects:  # no incident channels: their posts would only wait for one
        del worker.handlers[escalation.CHANNEL_POST]
    if slack_effects:  # incidents get their channels, as in production
        settings = Settings(_env_file=None, slack_bot_token=BOT_TOKEN, slack_api_url=emu.api_url,
                            database_url=database_url)
        effects = SlackEffects(sessions=sessions, client=slack, settings=settings, clock=clock)
        for kind, handler in effects.handlers().items():
            worker.register(kind, handler)
    return Harness(db, sessions, clock, engine, worker, emu, pd, og, pagers)


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For tests whose subject does not depend on the database (the rest run on both)."""


@pytest.fixture
async def harness(database_url, clock, playbooks, emu, pd, og, http, retry) -> AsyncIterator[Harness]:
    made = await make_harness(database_url, clock=clock, playbooks=playbooks, emu=emu, pd=pd, og=og,
                              http=http, retry=retry)
    yield made
    await made.close()
