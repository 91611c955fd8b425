"""A local fake of Vercel's REST API (``VERCEL_API_URL`` = ``fake.api_url``).

- ``GET  /v6/deployments?projectId=&target=production&state=READY&limit=N`` →
  ``{"deployments": [{uid, name, url, created, state, readyState, target, creator, meta}], "pagination": {...}}``;
- ``GET  /v9/projects/{idOrName}`` → the project with ``targets.production`` and
  ``lastAliasRequest {fromDeploymentId, toDeploymentId, jobStatus, requestedAt, type}``;
- ``POST /v9/projects/{projectId}/rollback/{deploymentId}`` body ``{}`` → 201 ``{}``.

A project created with ``team_id`` answers only with ``?teamId=<id>`` (404
otherwise, as for a project of another scope). After a rollback, each read of
the project moves ``lastAliasRequest.jobStatus`` from ``pending`` through
``in-progress`` to ``succeeded`` (or ``failed`` when scripted with
:meth:`VercelFake.fail_next_rollback`), when ``targets.production`` switches.
A ``hobby`` project refuses any target other than the previous production
deployment (403). A bad token gets 403 ``{"error": {"code": "forbidden",
"message": "Not authorized", "invalidToken": true}}``, as Vercel answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.emulator.providers._server import FakeProviderServer, SeededService

JOB_STEPS = ("pending", "in-progress", "in-progress", "succeeded")


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


@dataclass(slots=True)
class VercelDeployment:
    uid: str
    state: str  # READY, ERROR, BUILDING, QUEUED, INITIALIZING, CANCELED
    created: datetime
    sha: str
    message: str
    target: str | None = "production"
    author: str = "octocat"
    bad: bool = False

    def to_json(self, project: VercelProject) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "name": project.name,
            "url": f"{project.name}-{self.uid[4:13].lower()}-acme.vercel.app",
            "created": _ms(self.created),
            "createdAt": _ms(self.created),
            "buildingAt": _ms(self.created) + 1500,
            "ready": _ms(self.created) + 60_000 if self.state == "READY" else None,
            "state": self.state,
            "readyState": self.state,
            "type": "LAMBDAS",
            "target": self.target,
            "aliasAssigned": self.state == "READY" and self.target == "production",
            "creator": {"uid": "usr_fake0000000000000001", "username": self.author, "email": f"{self.author}@example.com"},
            "meta": {
                "githubCommitSha": self.sha,
                "githubCommitMessage": self.message,
                "githubCommitAuthorLogin": self.author,
                "githubCommitRef": "main",
            },
            "inspectorUrl": f"https://vercel.com/acme/{project.name}/{self.uid[4:]}",
        }


@dataclass(slots=True)
class VercelProject:
    id: str
    name: str
    team_id: str | None
    deployments: list[VercelDeployment] = field(default_factory=list)  # newest first
    production_id: str | None = None
    last_alias_request: dict[str, Any] | None = None
    last_rollback_target: dict[str, Any] | None = None
    pending_steps: list[str] = field(default_factory=list)
    hobby: bool = False

    def deployment(self, uid: str) -> VercelDeployment | None:
        return next((d for d in self.deployments if d.uid == uid), None)

    def to_json(self) -> dict[str, Any]:
        production = self.deployment(self.production_id) if self.production_id else None
        return {
            "id": self.id,
            "name": self.name,
            "accountId": self.team_id or "usr_fake0000000000000001",
            "framework": "nextjs",
            "targets": {"production": production.to_json(self) | {"id": production.uid}} if production else {},
            "latestDeployments": [d.to_json(self) | {"id": d.uid} for d in self.deployments[:5]],
            "lastAliasRequest": self.last_alias_request,
            "lastRollbackTarget": self.last_rollback_target,
        }


class VercelFake(FakeProviderServer):
    provider = "vercel"
    validation_status = 400

    def __init__(self, *, seed: bool = True, team_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.projects: dict[str, VercelProject] = {}
        self.seeded: dict[str, SeededService] = {}
        self.job_steps: tuple[str, ...] = JOB_STEPS
        self._next_failure: str | None = None
        self._counter = 0
        r = self.app.router
        r.add_get("/v6/deployments", self._list)
        r.add_get("/v9/projects/{project}", self._project)
        r.add_post("/v9/projects/{project}/rollback/{deployment}", self._rollback)
        if seed:
            self.seed_project("prj_fakeweb0001", name="web", team_id=team_id)

    # -- seeding and scripting

    def seed_project(self, project_id: str, *, name: str = "web", team_id: str | None = None, hobby: bool = False) -> SeededService:
        now = self.clock.now()
        ids = [self._new_id() for _ in range(5)]
        deployments = [
            VercelDeployment(ids[4], "READY", now - timedelta(minutes=20), "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", "Try new edge config", target=None),
            VercelDeployment(ids[3], "READY", now - timedelta(minutes=30), "d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3", "Refactor payment client", bad=True),
            VercelDeployment(ids[2], "ERROR", now - timedelta(hours=2), "c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2", "WIP: bump dependencies"),
            VercelDeployment(ids[1], "READY", now - timedelta(days=1), "b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1", "Add checkout retries"),
            VercelDeployment(ids[0], "READY", now - timedelta(days=3), "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0", "Initial release"),
        ]
        project = VercelProject(project_id, name, team_id, deployments, production_id=ids[3], hobby=hobby)
        self.projects[project_id] = project
        seeded = SeededService(project_id, name, live_id=ids[3], target_id=ids[1], failed_id=ids[2], oldest_id=ids[0])
        self.seeded[project_id] = seeded
        return seeded

    def fail_next_rollback(self, job_status: str = "failed") -> None:
        self._next_failure = job_status

    def _new_id(self) -> str:
        self._counter += 1
        return f"dpl_Fake{self._counter:020d}"

    def _find(self, key: str, request: web.Request | None = None) -> VercelProject | None:
        project = self.projects.get(key) or next((p for p in self.projects.values() if p.name == key), None)
        if project is None or request is None:
            return project
        # A team project is only visible in its team's scope.
        return project if request.query.get("teamId") == project.team_id else None

    def _advance(self, project: VercelProject) -> None:
        if not project.pending_steps or project.last_alias_request is None:
            return
        status = project.pending_steps.pop(0)
        project.last_alias_request = {**project.last_alias_request, "jobStatus": status}
        if status == "succeeded":
            project.production_id = project.last_alias_request["toDeploymentId"]
            project.last_rollback_target = {
                "fromDeploymentId": project.last_alias_request["fromDeploymentId"],
                "toDeploymentId": project.production_id,
                "jobStatus": "succeeded",
                "requestedAt": project.last_alias_request["requestedAt"],
            }
        if status not in ("pending", "in-progress"):
            project.pending_steps.clear()

    # -- health and errors

    def is_healthy(self, service: str) -> bool | None:
        project = self._find(service)
        if project is None:
            return None
        live = project.deployment(project.production_id) if project.production_id else None
        return live is not None and not live.bad

    def describe_live(self, service: str) -> str | None:
        project = self._find(service)
        return project.production_id if project else None

    def error_response(self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"error": {"code": code or _CODES.get(status, "error"), "message": message}}, status=status, headers=headers)

    def unauthorized_response(self) -> web.Response:
        return web.json_response({"error": {"code": "forbidden", "message": "Not authorized", "invalidToken": True}}, status=403)

    # -- handlers

    async def _list(self, request: web.Request) -> web.Response:
        project_id = request.query.get("projectId")
        project = self._find(project_id, request) if project_id else None
        if project is None:
            return self.error_response(404, "Project not found", code="not_found")
        self._advance(project)
        deployments = project.deployments
        if target := request.query.get("target"):
            deployments = [d for d in deployments if d.target == target]
        if states := request.query.get("state"):
            wanted = {s.strip().upper() for s in states.split(",")}
            deployments = [d for d in deployments if d.state in wanted]
        try:
            limit = max(1, min(100, int(request.query.get("limit", "20"))))
        except ValueError:
            return self.error_response(400, "Invalid request: `limit` should be number.", code="bad_request")
        page = deployments[:limit]
        pagination = {
            "count": len(page),
            "next": _ms(page[-1].created) if len(deployments) > limit else None,
            "prev": _ms(page[0].created) if page else None,
        }
        return web.json_response({"deployments": [d.to_json(project) for d in page], "pagination": pagination})

    async def _project(self, request: web.Request) -> web.Response:
        project = self._find(request.match_info["project"], request)
        if project is None:
            return self.error_response(404, "Project not found", code="not_found")
        self._advance(project)
        return web.json_response(project.to_json())

    async def _rollback(self, request: web.Request) -> web.Response:
        project = self._find(request.match_info["project"], request)
        if project is None:
            return self.error_response(404, "Project not found", code="not_found")
        target = project.deployment(request.match_info["deployment"])
        if target is None:
            return self.error_response(404, "Deployment not found", code="not_found")
        if target.state != "READY" or target.target != "production":
            return self.error_response(400, "Only READY production deployments can be rolled back to.", code="invalid_deployment")
        if target.uid == project.production_id:
            return self.error_response(400, "This deployment is already the current production deployment.", code="invalid_deployment")
        if project.hobby:
            previous = next(
                (d for d in project.deployments if d.state == "READY" and d.target == "production" and d.uid != project.production_id and d.created < project.deployment(project.production_id).created),  # type: ignore[union-attr]
                None,
            )
            if previous is None or previous.uid != target.uid:
                return self.error_response(403, "Hobby plans can only roll back to the previous production deployment.", code="rollback_not_allowed")
        steps = list(self.job_steps)
        if self._next_failure:
            steps = [*steps[:-1], self._next_failure]
            self._next_failure = None
        project.last_alias_request = {
            "fromDeploymentId": project.production_id,
            "toDeploymentId": target.uid,
            "jobStatus": steps.pop(0),
            "requestedAt": _ms(self.clock.now()),
            "type": "rollback",
        }
        project.pending_steps = steps
        return web.json_response({}, status=201)


_CODES = {400: "bad_request", 401: "unauthorized", 402: "payment_required", 403: "forbidden", 404: "not_found", 409: "conflict", 429: "rate_limited", 500: "internal_server_error"}
