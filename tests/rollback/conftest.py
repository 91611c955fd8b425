"""The rollback test world: the bot over HTTP (tests/support/bed.py), the fake Slack,
all five provider fakes — each checking the requests it gets against the official
spec or recording where one exists (Railway: graphql-core against the official
schema; Heroku: the JSON hyper-schema; GitHub: PyGithub's recordings; Render and
Vercel: the operations documented in reference/PROVIDERS.md) — and playbooks
whose services point at those fakes, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.clock import ManualClock
from bot.emulator.providers import ProviderFakes, RecordedRequest
from bot.export import service as exports
from bot.export.models import FollowUp
from bot.incidents.models import Incident, TimelineEvent
from bot.rollback.install import flow_of
from bot.rollback.models import Rollback, RollbackStatus, RollbackStep
from bot.slack.ids import ActionId
from handlers.app import create_web_app
from tests.providers.test_github_actions import NOT_RECORDED, _template, recorded
from tests.providers.test_heroku import hyper_schema_validator
from tests.providers.test_railway import official_schema_validator
from tests.support.bed import REPO, Bed, bed_settings, start_bed, stop_bed

AVA = "U024BE7LH"  # platform group (owner)
BEN = "U0G9QF9C6"  # platform group (owner)
CHEN = "U1H2J3K4L"  # platform group (owner)
DANA = "U2D4N5A6K"  # owner by user
ELI = "U3E7L8I9N"  # not an owner
SERVICES = ("api", "worker", "web", "billing", "shop")  # render, railway, vercel, heroku, github-actions
PROVIDER_OF = dict(zip(SERVICES, ("render", "railway", "vercel", "heroku", "github-actions"), strict=True))


# --------------------------------------------------------------------------- request validators


def render_validator(request: RecordedRequest) -> list[str]:
    """Render's documented operations (PROVIDERS.md; no public OpenAPI file exists)."""
    path, problems = request.path, []
    if request.headers.get("Accept") != "application/json":
        problems.append("Render: Accept must be application/json")
    if request.method == "GET" and re.fullmatch(r"/v1/services/srv-[\w-]+/deploys", path):
        unknown = set(request.query) - {"limit", "cursor", "status"}
        return problems + ([f"Render: unknown query {sorted(unknown)}"] if unknown else [])
    if request.method == "GET" and re.fullmatch(r"/v1/services/srv-[\w-]+/deploys/dep-[\w-]+", path):
        return problems
    if request.method == "POST" and re.fullmatch(r"/v1/services/srv-[\w-]+/rollback", path):
        body = request.json
        if not (isinstance(body, dict) and set(body) == {"deployId"} and str(body["deployId"]).startswith("dep-")):
            problems.append(f"Render: rollback body must be {{deployId}}, got {request.text[:100]}")
        return problems
    return problems + [f"Render: {request.method} {path} is not a documented operation"]


def vercel_validator(request: RecordedRequest) -> list[str]:
    """Vercel's documented operations (PROVIDERS.md: the CLI's calls)."""
    path = request.path
    if request.method == "GET" and path == "/v6/deployments":
        needed = {"projectId", "target", "state", "limit"}
        missing = needed - set(request.query)
        unknown = set(request.query) - needed - {"teamId"}
        problems = [f"Vercel: missing {sorted(missing)}"] if missing else []
        problems += [f"Vercel: unknown query {sorted(unknown)}"] if unknown else []
        if request.query.get("target") != "production" or request.query.get("state") != "READY":
            problems.append("Vercel: candidates are READY production deployments")
        return problems
    if request.method == "GET" and re.fullmatch(r"/v9/projects/[\w-]+", path):
        return []
    if request.method == "POST" and re.fullmatch(r"/v9/projects/[\w-]+/rollback/[\w-]+", path):
        return [] if request.json == {} else [f"Vercel: rollback body must be {{}}, got {request.text[:100]}"]
    return [f"Vercel: {request.method} {path} is not a documented operation"]


def github_recording_validator(request: RecordedRequest) -> list[str]:
    """Every call must be one PyGithub was recorded making (tests/specs/github), shaped alike."""
    kind = (request.method, _template(request.path))
    if kind in NOT_RECORDED:
        return []
    matches = recorded(*kind)
    if not matches:
        return [f"GitHub: {kind} is not a call PyGithub was recorded making"]
    reference, problems = matches[0], []
    if "Accept" in reference.headers and request.headers.get("Accept") != reference.headers["Accept"]:
        problems.append(f"GitHub: Accept {request.headers.get('Accept')!r} for {kind}")
    if reference.body is not None:
        body = request.json
        if not isinstance(body, dict) or not set(body) <= set(reference.body) | {"return_run_details"}:
            problems.append(f"GitHub: body keys {sorted(body or {})} not as recorded for {kind}")
    return problems


# --------------------------------------------------------------------------- playbooks


def write_playbooks(root: Path, fakes: ProviderFakes, *, approvals: dict[str, int], settle: str = "10s",
                    health_urls: dict[str, str] | None = None) -> Path:
    """One playbook per fake's service; ``health_urls`` replaces a service's health check URL."""
    folder = root / "playbooks"
    (folder / "services").mkdir(parents=True)
    for name in ("escalation.yaml", "oncall.yaml"):
        shutil.copy(REPO / "playbooks" / name, folder / name)
    for service in fakes.services():
        document = {
            "name": service["name"],
            "description": f"{service['name']} on the {service['provider']['type']} fake",
            "owners": ["group:S0PLATFORM", f"user:{DANA}"],
            "provider": service["provider"],
            "health_check": {"url": (health_urls or {}).get(service["name"], service["health_url"]),
                             "expect_status": 200, "timeout": "2s", "settle": settle},
            "rollback": {"approvals": approvals},
            "runbook_url": f"https://wiki.example.com/runbooks/{service['name']}",
        }
        (folder / "services" / f"{service['name']}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return folder


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    bed: Bed
    fakes: ProviderFakes
    clock: ManualClock
    database_url: str
    playbooks_dir: Path
    seen_replies: dict[str, int] = field(default_factory=dict)

    @property
    def rt(self):
        return self.bed.rt

    @property
    def emu(self):
        return self.bed.emu

    def fake(self, service: str):
        return {"api": self.fakes.render, "worker": self.fakes.railway, "web": self.fakes.vercel,
                "billing": self.fakes.heroku, "shop": self.fakes.github}[service]

    def seeded(self, service: str):
        return next(s for s in self.fakes.services() if s["name"] == service)["seeded"]

    def trigger_requests(self, service: str) -> list[RecordedRequest]:
        """The rollback requests the service's provider fake received (faulted ones too)."""
        fake = self.fake(service)
        if service == "worker":
            return [r for r in fake.api_requests("POST") if "deploymentRollback" in r.text]
        if service == "shop":
            return fake.api_requests("POST", r"/dispatches$")
        if service == "billing":
            return fake.api_requests("POST", r"/releases$")
        return fake.api_requests("POST", r"/rollback")

    async def command(self, text: str, *, user: str = AVA, channel: str = "C0GENERAL") -> str:
        return await self.bed.run_command(text, user=user, channel=channel, command="/rollback")

    def preview(self, channel: str = "C0GENERAL"):
        found = [m for m in self.emu.messages(channel, top_level=True) if (m.text or "").startswith("Rollback RB-")]
        assert found, f"no rollback preview in {channel}"
        return found[-1]

    def thread(self, channel: str = "C0GENERAL") -> list[str]:
        parent = self.preview(channel)
        return [m.text for m in self.emu.messages(channel, thread_ts=parent.ts) if m.ts != parent.ts]

    async def click(self, user: str, action: ActionId, *, channel: str = "C0GENERAL", message_ts: str | None = None,
                    value: str | None = None) -> str:
        """Click a button of the preview and return the ephemeral reply to the clicker."""
        before = self._replies(user)
        ts = message_ts or self.preview(channel).ts
        sent = await self.bed.click(user=user, channel=channel, message_ts=ts, action_id=action, value=value)
        assert sent.status == 200, sent
        await self.bed.wait_for(lambda: len(self._replies(user)) > len(before))
        return self._replies(user)[-1]

    async def forged_click(self, user: str, action: ActionId, *, value: str, message_ts: str | None = None,
                           channel: str = "C0GENERAL") -> str:
        """A block_actions payload made up by hand (signed, as a compromised or stale client
        would send it): ``action`` with ``value`` on ``message_ts`` (default: a message of
        its own), whether that message has the button or not."""
        before = self._replies(user)
        carrier = (await self.rt.slack.chat_postMessage(channel=channel, text="carrier", blocks=[
            {"type": "actions", "elements": [{"type": "button", "action_id": action.value, "value": value,
                                              "text": {"type": "plain_text", "text": "x"}}]}])).data
        payload = self.emu.block_action(user, channel, carrier["ts"], action.value, value=value)
        payload["container"]["message_ts"] = message_ts or carrier["ts"]
        payload.pop("message", None)
        sent = await self.bed.interact(payload)
        assert sent.status == 200, sent
        await self.bed.wait_for(lambda: len(self._replies(user)) > len(before))
        return self._replies(user)[-1]

    def _replies(self, user: str) -> list[str]:
        return [p.payload.get("text", "") for p in self.emu.response_url_posts if p.user_id == user]

    async def rollback(self, rollback_id: int | None = None) -> Rollback:
        async with self.rt.sessions() as session:
            query = select(Rollback).order_by(Rollback.id.desc()).limit(1)
            if rollback_id is not None:
                query = select(Rollback).where(Rollback.id == rollback_id)
            return (await session.execute(query)).scalar_one()

    async def steps(self, rollback_id: int) -> list[RollbackStep]:
        async with self.rt.sessions() as session:
            query = select(RollbackStep).where(RollbackStep.rollback_id == rollback_id).order_by(RollbackStep.seq)
            return list((await session.execute(query)).scalars())

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        async with self.rt.sessions() as session:
            query = (select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
                     .order_by(TimelineEvent.occurred_at, TimelineEvent.id))
            return list((await session.execute(query)).scalars())

    async def incident(self, incident_id: int) -> Incident:
        async with self.rt.sessions() as session:
            return await session.get(Incident, incident_id)

    async def followups(self, incident_id: int) -> list[FollowUp]:
        async with self.rt.sessions() as session:
            return await exports.list_followups(session=session, incident=await session.get(Incident, incident_id))

    async def drive(self, *, until: set[RollbackStatus] | None = None, step: float = 5.0, max_steps: int = 60,
                    rollback_id: int | None = None) -> Rollback:
        """Advance the clock and run due jobs until the rollback (default: the newest) reaches
        ``until`` (default: finished)."""
        rollback = await self.rollback(rollback_id)
        for _ in range(max_steps):
            if (until is None and not rollback.active) or (until and rollback.state in until):
                return rollback
            self.clock.advance(timedelta(seconds=step))
            await self.bed.run_jobs()
            rollback = await self.rollback(rollback.id)
        raise AssertionError(f"{rollback.key} still {rollback.state} after {max_steps} steps")


async def start_world(database_url: str, tmp_path: Path, *, approvals: dict[str, int] | None = None,
                      clock: ManualClock | None = None, fakes: ProviderFakes | None = None,
                      playbooks_dir: Path | None = None, health_urls: dict[str, str] | None = None,
                      **runtime_options: Any) -> World:
    clock = clock or ManualClock()
    if fakes is None:
        fakes = ProviderFakes(clock=clock)
        fakes.render.validator = render_validator
        fakes.vercel.validator = vercel_validator
        fakes.railway.validator = official_schema_validator
        fakes.heroku.validator = hyper_schema_validator
        fakes.github.validator = github_recording_validator
        await fakes.start()
    if playbooks_dir is None:
        approvals = approvals if approvals is not None else {"P0": 0, "P1": 0, "P2": 1, "P3": 1}
        playbooks_dir = write_playbooks(tmp_path, fakes, approvals=approvals, health_urls=health_urls)
    bed = await start_bed(database_url, clock=clock,
                          settings_overrides={**fakes.settings_overrides(), "playbooks_dir": str(playbooks_dir)},
                          **runtime_options)
    flow_of(bed.rt).github_seconds_between_writes = None  # PyGithub's 1 s pause between writes
    return World(bed, fakes, clock, database_url, playbooks_dir)


async def restart_world(world: World) -> World:
    """The bot process dies and a new one starts on the same database (same Slack, same
    providers): a new runtime, worker and job handlers; only the database carries over."""
    await world.bed.http.close()
    await world.bed.server.close()
    settings = bed_settings(world.database_url, world.bed.emu,
                            **{**world.fakes.settings_overrides(), "playbooks_dir": str(world.playbooks_dir)})
    server = TestServer(create_web_app(settings, clock=world.clock), host="127.0.0.1")
    await server.start_server()
    bed = Bed(emu=world.bed.emu, server=server, http=aiohttp.ClientSession(), clock=world.clock)
    flow_of(bed.rt).github_seconds_between_writes = None
    return World(bed, world.fakes, world.clock, world.database_url, world.playbooks_dir)


async def stop_world(world: World, *, stop_fakes: bool = True) -> None:
    await stop_bed(world.bed)
    if stop_fakes:
        await world.fakes.stop()
    assert not world.bed.emu.violations, world.bed.emu.violations
    for fake in world.fakes.all:
        assert not fake.validation_errors, (fake.provider, fake.validation_errors)


@pytest.fixture
async def world(database_url, tmp_path):
    w = await start_world(database_url, tmp_path)
    try:
        yield w
    finally:
        await stop_world(w)


NO_APPROVALS = {"P0": 0, "P1": 0, "P2": 0, "P3": 0}


@pytest.fixture
async def open_world(database_url, tmp_path):
    """Playbooks that need no approval at any severity."""
    w = await start_world(database_url, tmp_path, approvals=NO_APPROVALS)
    try:
        yield w
    finally:
        await stop_world(w)
