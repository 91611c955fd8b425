"""Chaos harness: a real ``firebreak serve`` subprocess, the fakes in the test process.

The bot is the CLI, configured by environment variables only, on a database the
test made (``database_url``: a SQLite file or a fresh PostgreSQL database). It
talks to the fake Slack (``SlackEmulator``, every call checked against Slack's
OpenAPI spec), a PagerDuty fake and the Render fake; requests into it are signed
like Slack's. :meth:`ChaosWorld.kill` is ``kill -9``; :meth:`ChaosWorld.start_bot`
starts a new process on the same database. Every wait polls with a deadline.

Timings are the settings' (no test waits on the defaults): the worker polls every
0.2 s, a dead process's jobs are taken over after a 3 s lease, rollbacks are polled
every 0.5 s, and the test playbooks count escalation levels in seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import aiohttp
import pytest
import yaml
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db.engine import normalise_url
from bot.emulator import SlackEmulator
from bot.emulator.pagerduty import PagerDutyFake
from bot.emulator.providers import RenderFake
from bot.incidents.models import Incident, TimelineEvent
from bot.jobs.models import Job, JobState
from tests.support.signing import sign
from tests.support.slack_openapi import slack_openapi_validator

REPO = Path(__file__).resolve().parents[2]
BOT_TOKEN = "xoxb-chaos-0123456789abcdef"
SIGNING_SECRET = "chaos-signing-secret-0123456789"
PROVIDER_TOKEN = "rnd_chaos0123456789"
AVA = "U024BE7LH"  # reporter, level 1 by DM, owner of the service
BEN = "U0G9QF9C6"  # level 2 by DM
GENERAL = "C0GENERAL"
ANNOUNCE = "C0ANNOUNCE"
PD_FIRST = "a1" * 16  # PAGERDUTY_ROUTING_KEY_FIRST
PD_SECOND = "b2" * 16  # PAGERDUTY_ROUTING_KEY_SECOND
LEVEL_2_AFTER = 5.0  # seconds

ESCALATION = {
    "severities": {
        "P0": {"name": "Critical", "meaning": "Complete outage", "respond_within": "1h"},
        "P1": {"name": "High", "meaning": "Major feature broken", "respond_within": "1h"},
        "P2": {"name": "Medium", "meaning": "Minor feature issues", "respond_within": "4h"},
        "P3": {"name": "Low", "meaning": "Cosmetic issues", "respond_within": "24h"},
    },
    "escalation": {
        "P0": [{"after": "0s", "notify": ["pagerduty:first"]}],
        "P1": [
            {"after": "0s", "notify": [f"user:{AVA}", "pagerduty:first"]},
            {"after": f"{LEVEL_2_AFTER:g}s", "notify": [f"user:{BEN}", "pagerduty:second"]},
        ],
        "P2": [{"after": "0s", "notify": ["pagerduty:first"]}],
        "P3": [{"after": "0s", "notify": ["channel:C0TRIAGE"]}],
    },
}

WAIT = 20.0  # the longest any single condition may take (a loaded 2-core CI machine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for(condition: Callable[[], Any], *, timeout: float = WAIT, what: str = "condition",
                   interval: float = 0.05) -> Any:
    """Poll ``condition`` (sync or async) until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)


class ChaosSlack(SlackEmulator):
    """The fake Slack, also telling the test when a Web API request *arrives* (before any
    delay and before it is answered): ``on_arrival(method, params)`` hooks."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_arrival: list[Callable[[str, dict[str, Any]], None]] = []
        self.app.middlewares.append(self._arrivals)

    @web.middleware
    async def _arrivals(self, request: web.Request, handler):
        if request.path.startswith("/api/") and self.on_arrival:
            method = request.path[len("/api/"):]
            body = await request.read()  # cached: the handler reads it again
            try:
                params = json.loads(body) if request.content_type == "application/json" else {
                    k: v[0] for k, v in parse_qs(body.decode()).items()}
            except ValueError:
                params = {}
            for hook in list(self.on_arrival):
                hook(method, params if isinstance(params, dict) else {})
        return await handler(request)


@dataclass
class BotProcess:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Sent:
    status: int
    body: str
    seconds: float  # until the HTTP answer: Slack's ack
    response_token: str | None = None


@dataclass
class ChaosWorld:
    tmp: Path
    database_url: str
    slack: ChaosSlack
    pd: PagerDutyFake
    render: RenderFake
    playbooks: Path
    http: aiohttp.ClientSession
    bots: list[BotProcess] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    # -- the bot process -----------------------------------------------------------------

    @property
    def bot(self) -> BotProcess:
        return self.bots[-1]

    def env(self, port: int) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update({
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "DATABASE_URL": self.database_url,
            "PLAYBOOKS_DIR": str(self.playbooks),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "ANNOUNCE_CHANNEL": ANNOUNCE,
            "DISPLAY_TIMEZONE": "UTC",
            "WORKER_POLL_SECONDS": "0.2",
            "WORKER_LEASE_SECONDS": "3",
            "ROLLBACK_POLL_SECONDS": "0.5",
            "PAGERDUTY_EVENTS_URL": self.pd.url,
            "PAGERDUTY_ROUTING_KEY_FIRST": PD_FIRST,
            "PAGERDUTY_ROUTING_KEY_SECOND": PD_SECOND,
            "RENDER_API_URL": self.render.api_url,
            "RENDER_API_KEY": PROVIDER_TOKEN,
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    def _spawn(self, port: int, log: Path) -> subprocess.Popen:
        executable = Path(sys.executable).with_name("firebreak")
        command = [str(executable), "serve"] if executable.exists() else [sys.executable, "-m", "bot.cli", "serve"]
        with open(log, "wb") as out:
            return subprocess.Popen(command, cwd=self.tmp, env=self.env(port), stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    async def start_bot(self) -> BotProcess:
        """``firebreak serve`` on the world's database; returns once /readyz says ready."""
        port = free_port()
        log = self.tmp / f"bot-{len(self.bots) + 1}.log"
        process = await asyncio.to_thread(self._spawn, port, log)  # fork and exec off the event loop
        bot = BotProcess(process, port, log)
        self.bots.append(bot)

        async def ready() -> bool:
            if not bot.alive:
                raise AssertionError(f"firebreak serve exited with {bot.process.returncode}:\n{bot.tail()}")
            try:
                async with self.http.get(bot.url + "/readyz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(ready, what="firebreak serve to be ready", interval=0.1)
        return bot

    def kill(self) -> None:
        """``kill -9`` of the running bot process."""
        bot = self.bot
        if bot.alive:
            os.kill(bot.process.pid, signal.SIGKILL)
        bot.process.wait(timeout=10)
        assert bot.process.returncode == -signal.SIGKILL

    async def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM, waiting without blocking the loop: the fakes must keep answering while
        the bot shuts down (its worker finishes the jobs it is running)."""
        for bot in self.bots:
            if not bot.alive:
                continue
            bot.process.terminate()
            deadline = time.monotonic() + timeout
            while bot.alive and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if bot.alive:
                bot.process.kill()
                bot.process.wait(timeout=5)
                raise AssertionError(f"firebreak serve ignored SIGTERM for {timeout:g}s:\n{bot.tail()}")

    async def settle(self) -> None:
        """Wait until no job is running or due, then stop the bot (SIGTERM: it finishes what it
        has started, its acked work included) and check again: from here on nothing can reach
        the fakes, so what they saw is final and a test may assert that something did *not*
        happen."""

        async def busy() -> list[Job]:
            now = datetime.now(UTC)
            jobs = await self.query(select(Job).where(Job.state.in_([JobState.PENDING, JobState.RUNNING])))
            return [j for j in jobs if j.state == JobState.RUNNING or j.due_at <= now]

        async def idle() -> bool:
            return not await busy()

        await wait_for(idle, what="no job running or due")
        await self.stop_all()
        left = await busy()
        assert left == [], [(j.kind, j.state, j.due_at) for j in left]

    # -- requests into the bot, signed like Slack's ----------------------------------------

    async def _post(self, body: str, content_type: str) -> Sent:
        headers = {"Content-Type": content_type, **sign(SIGNING_SECRET, body)}
        started = time.perf_counter()
        async with self.http.post(self.bot.url + "/slack/events", data=body.encode(), headers=headers,
                                  timeout=aiohttp.ClientTimeout(total=30)) as resp:
            text = await resp.text()
        return Sent(resp.status, text, time.perf_counter() - started)

    async def command(self, text: str, *, user: str = AVA, channel: str = GENERAL,
                      command: str = "/incident") -> Sent:
        fields = self.slack.slash_command(user, channel, command, text)
        sent = await self._post(urlencode(fields), "application/x-www-form-urlencoded")
        sent.response_token = fields["response_url"].rsplit("/", 1)[-1]
        return sent

    async def reply(self, sent: Sent, *, timeout: float = WAIT) -> str:
        """What the user finally sees: the ack's text, or the later response_url post."""
        if sent.body and sent.body.strip().startswith("{"):
            text = json.loads(sent.body).get("text")
            if text:
                return text

        def posted():
            return [p.payload for p in self.slack.response_url_posts if p.token == sent.response_token]

        return (await wait_for(posted, timeout=timeout, what=f"the reply to {sent.response_token}"))[-1]["text"]

    async def run(self, text: str, **kwargs: Any) -> str:
        sent = await self.command(text, **kwargs)
        assert sent.status == 200, (sent.status, sent.body)
        return await self.reply(sent)

    async def click(self, *, user: str, channel: str, message_ts: str, action_id: str) -> Sent:
        payload = self.slack.block_action(user, channel, message_ts, action_id)
        return await self._post(urlencode({"payload": json.dumps(payload)}),
                                "application/x-www-form-urlencoded")

    # -- reading the database (a plain engine: no write lock taken for reads) ----------------

    async def query(self, statement) -> list[Any]:
        engine = create_async_engine(normalise_url(self.database_url))
        try:
            sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
            async with sessions() as session:
                return list((await session.execute(statement)).scalars())
        finally:
            await engine.dispose()

    async def incident(self, number: int) -> Incident | None:
        found = await self.query(select(Incident).where(Incident.number == number))
        return found[0] if found else None

    async def timeline(self, number: int) -> list[TimelineEvent]:
        incident = await self.incident(number)
        return await self.query(select(TimelineEvent).where(TimelineEvent.incident_id == incident.id)
                                .order_by(TimelineEvent.occurred_at, TimelineEvent.id))

    # -- what the fakes saw ----------------------------------------------------------------

    def pd_triggers(self, routing_key: str) -> list[dict[str, Any]]:
        return [r.json for r in self.pd.requests
                if isinstance(r.json, dict) and r.json.get("routing_key") == routing_key
                and r.json.get("event_action") == "trigger"]

    def page_dms(self, user: str) -> list[Any]:
        return [m for m in self.slack.dms(user) if m.user == self.slack.workspace.bot_user_id]

    def incident_channels(self, number: int) -> list[Any]:
        prefix = f"inc-{number}-"
        return [c for c in self.slack.workspace.channels.values()
                if c.name.startswith(prefix) or c.name == f"inc-{number}"]


def write_playbooks(root: Path, render: RenderFake, escalation: dict[str, Any] | None = None) -> Path:
    folder = root / "playbooks"
    (folder / "services").mkdir(parents=True)
    (folder / "escalation.yaml").write_text(yaml.safe_dump(escalation or ESCALATION, sort_keys=False))
    shutil.copy(REPO / "playbooks" / "oncall.yaml", folder / "oncall.yaml")
    seeded = next(iter(render.seeded.values()))
    service = {
        "name": "api",
        "description": "the API on the Render fake",
        "owners": [f"user:{AVA}"],
        "provider": {"type": "render", "service_id": seeded.key},
        "health_check": {"url": render.health_url(seeded.key), "expect_status": 200, "timeout": "2s",
                         "settle": "1s"},
        "rollback": {"approvals": {"P0": 0, "P1": 0, "P2": 0, "P3": 0}},
        "runbook_url": "https://wiki.example.com/runbooks/api",
    }
    (folder / "services" / "api.yaml").write_text(yaml.safe_dump(service, sort_keys=False))
    return folder


async def open_world(tmp: Path, database_url: str) -> ChaosWorld:
    slack = ChaosSlack(bot_token=BOT_TOKEN, validator=slack_openapi_validator())
    await slack.start()
    pd = PagerDutyFake(routing_keys={PD_FIRST, PD_SECOND})
    await pd.start()
    render = RenderFake(token=PROVIDER_TOKEN)
    await render.start()
    playbooks = write_playbooks(tmp, render)
    return ChaosWorld(tmp=tmp, database_url=database_url, slack=slack, pd=pd, render=render,
                      playbooks=playbooks, http=aiohttp.ClientSession())


async def close_world(world: ChaosWorld) -> None:
    try:
        await world.stop_all()
    finally:
        for bot in world.bots:  # shown by pytest only when the test failed
            print(f"----- {bot.log.name} (port {bot.port}) -----\n{bot.tail(80)}")
        await world.http.close()
        await world.render.stop()
        await world.pd.stop()
        await world.slack.stop()


@pytest.fixture
async def world(database_url, tmp_path) -> ChaosWorld:
    w = await open_world(tmp_path, database_url)
    try:
        yield w
    finally:
        await close_world(w)
    assert not w.slack.violations, w.slack.violations
    assert not w.render.validation_errors, w.render.validation_errors
