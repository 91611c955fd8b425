"""The outside world of the demo: simulated hosting providers and pagers, and what they received.

Each service of the sample playbooks is seeded on the fake of its provider (``bot.emulator``)
under the ids the playbook names, with a deploy history in which the live deploy is bad: the
fake's ``GET /health/<service>`` answers 500 until a rollback replaces it, then 200.

Every request a fake answers (API calls and health checks alike) lands in :class:`RequestLog`,
which the console shows in its side panel, secrets redacted.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.emulator.opsgenie import OpsgenieFake
from bot.emulator.pagerduty import PagerDutyFake
from bot.emulator.providers import GitHubFake, HerokuFake, RailwayFake, RenderFake, VercelFake
from bot.emulator.providers._server import FakeProviderServer
from bot.pagers.opsgenie import PRIORITY_MAP, priority_note

log = logging.getLogger(__name__)

BODY_PREVIEW = 4000

# Demo credentials: the fakes accept exactly these, the bot is configured with them.
RENDER_KEY = "rnd_demo_render_key_0001"
RAILWAY_TOKEN = "demo-railway-token-0001"
VERCEL_TOKEN = "demo-vercel-token-0001"
HEROKU_KEY = "demo-heroku-key-0001"
GITHUB_TOKEN = "ghp_demoGitHubToken0001"
PAGERDUTY_ROUTING_KEY = "R0DEMOROUTINGKEY00000000000000001"
OPSGENIE_KEY = "0f3c5d2e-1a4b-4c6d-8e9f-0a1b2c3d4e5f"
SECRETS = (RENDER_KEY, RAILWAY_TOKEN, VERCEL_TOKEN, HEROKU_KEY, GITHUB_TOKEN, PAGERDUTY_ROUTING_KEY,
           OPSGENIE_KEY)


@dataclass(frozen=True)
class LoggedRequest:
    id: int
    target: str  # render, railway, vercel, heroku, github, pagerduty, opsgenie
    method: str
    path: str
    query: str
    status: int
    request_body: str
    response_body: str
    at: datetime
    health_check: bool

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "target": self.target, "method": self.method, "path": self.path,
                "query": self.query, "status": self.status, "request_body": self.request_body,
                "response_body": self.response_body, "at": self.at.isoformat(timespec="milliseconds"),
                "health_check": self.health_check}


class RequestLog:
    """The last requests the simulated services answered, newest last; listeners hear each one."""

    def __init__(self, *, secrets: Iterable[str] = SECRETS, limit: int = 500) -> None:
        self.entries: deque[LoggedRequest] = deque(maxlen=limit)
        self.listeners: list[Callable[[LoggedRequest], None]] = []
        self._secrets = sorted(set(secrets), key=len, reverse=True)
        self._ids = itertools.count(1)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def watch(self, target: str, app: web.Application) -> None:
        """Record every response ``app`` sends (call before the app starts)."""

        async def record(request: web.Request, response: web.StreamResponse) -> None:
            try:
                request_text = await request.text() if request.body_exists else ""
            except Exception:  # noqa: BLE001 - the body may be gone after a fault dropped the connection; the log must not fail the response
                request_text = ""
            body = getattr(response, "body", None)
            response_text = body.decode("utf-8", "replace") if isinstance(body, bytes) else ""
            entry = LoggedRequest(
                id=next(self._ids), target=target, method=request.method, path=request.path,
                query=self.redact(request.query_string), status=response.status,
                request_body=self.redact(request_text[:BODY_PREVIEW]),
                response_body=self.redact(response_text[:BODY_PREVIEW]),
                at=datetime.now(UTC), health_check=request.path.startswith("/health/"))
            self.entries.append(entry)
            for listener in list(self.listeners):
                try:
                    listener(entry)
                except Exception:
                    log.exception("request log listener failed")

        app.on_response_prepare.append(record)

    def to_json(self, *, since: int = 0) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.entries if e.id > since]


@dataclass(frozen=True)
class SimulatedService:
    """A playbook service and the fake that hosts it."""

    name: str
    provider: str  # the playbook's provider type
    fake: FakeProviderServer
    key: str  # the provider's id of the service (service id, project id, app, repo)

    @property
    def health_url(self) -> str:
        return self.fake.health_url(self.name)

    def status(self) -> dict[str, Any]:
        healthy = self.fake.is_healthy(self.name)
        return {"name": self.name, "provider": self.provider, "key": self.key,
                "live": self.fake.describe_live(self.name), "healthy": healthy,
                "health_url": self.health_url}


class SimulatedWorld:
    """The provider fakes, PagerDuty and Opsgenie, seeded from the service playbooks."""

    def __init__(self, log_: RequestLog | None = None) -> None:
        self.requests = log_ or RequestLog()
        self.render = RenderFake(seed=False, token=RENDER_KEY)
        self.railway = RailwayFake(seed=False, token=RAILWAY_TOKEN)
        self.vercel = VercelFake(seed=False, token=VERCEL_TOKEN)
        self.heroku = HerokuFake(seed=False, token=HEROKU_KEY)
        self.github = GitHubFake(seed=False, token=GITHUB_TOKEN)
        self.pagerduty = PagerDutyFake(routing_keys={PAGERDUTY_ROUTING_KEY})
        self.opsgenie = OpsgenieFake(api_keys={OPSGENIE_KEY})
        self.services: dict[str, SimulatedService] = {}
        self.skipped: dict[str, str] = {}  # service -> why it is not simulated
        for target, app in self._apps():
            self.requests.watch(target, app)

    def _apps(self) -> list[tuple[str, web.Application]]:
        fakes: list[tuple[str, Any]] = [
            ("render", self.render), ("railway", self.railway), ("vercel", self.vercel),
            ("heroku", self.heroku), ("github", self.github), ("pagerduty", self.pagerduty),
            ("opsgenie", self.opsgenie)]
        return [(name, fake.app) for name, fake in fakes]

    def seed(self, services: dict[str, dict[str, Any]]) -> None:
        """Seed each service (``name -> provider config``) on its provider's fake."""
        for name, provider in services.items():
            kind = provider.get("type")
            try:
                self.services[name] = self._seed_one(name, kind, provider)
            except _NotSimulated as why:
                self.skipped[name] = str(why)

    def _seed_one(self, name: str, kind: str | None, provider: dict[str, Any]) -> SimulatedService:
        if kind == "render":
            self.render.seed_service(provider["service_id"], name=name)
            return SimulatedService(name, kind, self.render, provider["service_id"])
        if kind == "railway":
            self.railway.seed_service(provider["service_id"], project_id=provider["project_id"],
                                      environment_id=provider["environment_id"], name=name)
            return SimulatedService(name, kind, self.railway, provider["service_id"])
        if kind == "vercel":
            self.vercel.seed_project(provider["project_id"], name=name, team_id=provider.get("team_id"))
            return SimulatedService(name, kind, self.vercel, provider["project_id"])
        if kind == "heroku":
            self.heroku.seed_app(provider["app"], name=name)
            return SimulatedService(name, kind, self.heroku, provider["app"])
        if kind == "github-actions":
            self.github.seed_repo(provider["repo"], alias=name,
                                  environment=provider.get("environment", "production"))
            return SimulatedService(name, kind, self.github, provider["repo"])
        raise _NotSimulated(f"no simulation of provider {kind!r}")

    async def start(self) -> None:
        for fake in self._fakes():
            await fake.start("127.0.0.1", 0)

    async def stop(self) -> None:
        for fake in reversed(self._fakes()):
            try:
                await fake.stop()
            except Exception:  # stopping must finish whatever one fake does
                log.exception("stopping a simulated service failed")

    def _fakes(self) -> list[Any]:
        return [self.render, self.railway, self.vercel, self.heroku, self.github, self.pagerduty,
                self.opsgenie]

    def settings(self) -> dict[str, Any]:
        """The bot's settings that point it at the simulated services."""
        values: dict[str, Any] = {
            "render_api_url": self.render.api_url, "render_api_key": RENDER_KEY,
            "railway_api_url": self.railway.api_url, "railway_api_token": RAILWAY_TOKEN,
            "vercel_api_url": self.vercel.api_url, "vercel_token": VERCEL_TOKEN,
            "heroku_api_url": self.heroku.api_url, "heroku_api_key": HEROKU_KEY,
            "github_api_url": self.github.api_url, "github_token": GITHUB_TOKEN,
            "pagerduty_events_url": self.pagerduty.url,
            "opsgenie_api_url": self.opsgenie.url, "opsgenie_api_key": OPSGENIE_KEY,
        }
        return values

    def status(self) -> dict[str, Any]:
        """What the console's side panel shows: each service's live deploy and health, the pagers."""
        return {
            "services": [s.status() for s in self.services.values()],
            "skipped": dict(self.skipped),
            "pagerduty": [{"dedup_key": i.dedup_key, "summary": i.summary, "severity": i.severity,
                           "status": i.status, "actions": list(i.actions)}
                          for i in self.pagerduty.incident_history],
            "opsgenie": [{"alias": a.alias, "message": a.message, "priority": a.priority,
                          "priority_note": _priority_note(a.tags),
                          "status": a.status, "acknowledged": a.acknowledged, "count": a.count}
                         for a in self.opsgenie.alert_history],
        }


class _NotSimulated(Exception):
    pass


def _priority_note(tags: list[str]) -> str | None:
    """Why the alert has its priority (Firebreak tags it with the incident's severity)."""
    severity = next((t for t in tags if t in PRIORITY_MAP), None)
    return priority_note(severity) if severity else None

