"""A local fake of Render's REST API (``RENDER_API_URL`` = ``fake.api_url``, ending in ``/v1``).

Operations, as documented in ``reference/PROVIDERS.md``:

- ``GET  /v1/services/{serviceId}/deploys`` → ``[{"deploy": {...}, "cursor": "..."}]``
  (``limit``, ``cursor``, ``status`` filters), newest first;
- ``GET  /v1/services/{serviceId}/deploys/{deployId}`` → Deploy;
- ``POST /v1/services/{serviceId}/rollback`` ``{"deployId": "dep-..."}`` → 201 Deploy.

A rollback creates a new deploy (``trigger: "rollback"``, the target's commit),
status ``created``; each later read of the service moves it one step through
``update_in_progress`` to ``live`` (or to ``rollback_failure_status`` when one
is scripted with :meth:`RenderFake.fail_next_rollback`); the deploy it replaced
becomes ``deactivated``. Errors are ``{id, code, message}``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.emulator.providers._server import FakeProviderServer, SeededService, iso_z

ROLLBACK_STEPS = ("update_in_progress", "update_in_progress", "live")
IN_FLIGHT = {"created", "queued", "build_in_progress", "update_in_progress", "pre_deploy_in_progress"}


@dataclass(slots=True)
class RenderDeploy:
    id: str
    status: str
    commit_id: str
    commit_message: str
    created_at: datetime
    trigger: str = "new_commit"
    finished_at: datetime | None = None
    image_ref: str | None = None
    bad: bool = False  # the health endpoint fails while this deploy is live
    pending_steps: list[str] = field(default_factory=list)
    rollback_of: str | None = None  # the deploy a rollback redeployed (not in Render's API)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "commit": {"id": self.commit_id, "message": self.commit_message, "createdAt": iso_z(self.created_at - timedelta(minutes=3))},
            "image": {"ref": self.image_ref, "sha": f"sha256:{self.commit_id}"} if self.image_ref else None,
            "status": self.status,
            "trigger": self.trigger,
            "createdAt": iso_z(self.created_at),
            "startedAt": iso_z(self.created_at),
            "finishedAt": iso_z(self.finished_at) if self.finished_at else None,
            "updatedAt": iso_z(self.finished_at or self.created_at),
        }


@dataclass(slots=True)
class RenderService:
    id: str
    name: str
    deploys: list[RenderDeploy] = field(default_factory=list)  # newest first

    @property
    def live(self) -> RenderDeploy | None:
        return next((d for d in self.deploys if d.status == "live"), None)


class RenderFake(FakeProviderServer):
    provider = "render"
    api_prefix = "/v1"
    validation_status = 400

    def __init__(self, *, seed: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services: dict[str, RenderService] = {}
        self.seeded: dict[str, SeededService] = {}
        self.rollback_steps: tuple[str, ...] = ROLLBACK_STEPS
        self._next_failure: str | None = None
        self._counter = 0
        r = self.app.router
        r.add_get("/v1/services/{service_id}/deploys", self._list)
        r.add_get("/v1/services/{service_id}/deploys/{deploy_id}", self._get)
        r.add_post("/v1/services/{service_id}/rollback", self._rollback)
        if seed:
            self.seed_service("srv-d0fakeapi0001", name="api")

    # -- seeding and scripting

    def seed_service(self, service_id: str, *, name: str | None = None) -> SeededService:
        """A live bad deploy, a failed build before it, and two older good deploys."""
        now = self.clock.now()
        ids = [self._new_id() for _ in range(4)]
        deploys = [
            RenderDeploy(ids[3], "live", "d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3", "Refactor payment client", now - timedelta(minutes=30), bad=True, finished_at=now - timedelta(minutes=27)),
            RenderDeploy(ids[2], "build_failed", "c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2", "WIP: bump dependencies", now - timedelta(hours=2), finished_at=now - timedelta(hours=2) + timedelta(minutes=4)),
            RenderDeploy(ids[1], "deactivated", "b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1", "Add checkout retries", now - timedelta(days=1), finished_at=now - timedelta(days=1) + timedelta(minutes=5)),
            RenderDeploy(ids[0], "deactivated", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0", "Initial release", now - timedelta(days=3), finished_at=now - timedelta(days=3) + timedelta(minutes=5)),
        ]
        self.services[service_id] = RenderService(service_id, name or service_id, deploys)
        seeded = SeededService(service_id, name or service_id, live_id=ids[3], target_id=ids[1], failed_id=ids[2], oldest_id=ids[0])
        self.seeded[service_id] = seeded
        return seeded

    def fail_next_rollback(self, status: str = "update_failed") -> None:
        """The next rollback ends in ``status`` instead of ``live``."""
        self._next_failure = status

    def _new_id(self) -> str:
        self._counter += 1
        return f"dep-d0fake{self._counter:012d}"

    def _service(self, key: str) -> RenderService | None:
        return self.services.get(key) or next((s for s in self.services.values() if s.name == key), None)

    def _advance(self, service: RenderService) -> None:
        """One step for every in-flight rollback of ``service`` (called on each read)."""
        for deploy in service.deploys:
            if not deploy.pending_steps:
                continue
            deploy.status = deploy.pending_steps.pop(0)
            if deploy.status == "live":
                deploy.finished_at = self.clock.now()
                for other in service.deploys:
                    if other is not deploy and other.status == "live":
                        other.status = "deactivated"
            elif deploy.status not in IN_FLIGHT:
                deploy.finished_at = self.clock.now()
                deploy.pending_steps.clear()

    # -- health

    def is_healthy(self, service: str) -> bool | None:
        found = self._service(service)
        if found is None:
            return None
        live = found.live
        return live is not None and not live.bad

    def describe_live(self, service: str) -> str | None:
        found = self._service(service)
        live = found.live if found else None
        if live is None:
            return None
        return f"{live.id} (redeploy of {live.rollback_of})" if live.rollback_of else live.id

    # -- errors

    def error_response(self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
        body = {"id": str(uuid.uuid4()), "code": code or _CODES.get(status, "error"), "message": message}
        return web.json_response(body, status=status, headers=headers)

    def unauthorized_response(self) -> web.Response:
        return self.error_response(401, "unauthorized", code="unauthorized")

    # -- handlers

    async def _list(self, request: web.Request) -> web.Response:
        service = self.services.get(request.match_info["service_id"])
        if service is None:
            return self.error_response(404, "service not found", code="not_found")
        self._advance(service)
        try:
            limit = max(1, min(100, int(request.query.get("limit", "20"))))
        except ValueError:
            return self.error_response(400, "limit must be an integer", code="invalid_parameter")
        deploys = service.deploys
        statuses = set(request.query.getall("status", []))
        if statuses:
            deploys = [d for d in deploys if d.status in statuses]
        cursor = request.query.get("cursor")
        if cursor:
            index = next((i for i, d in enumerate(deploys) if d.id == cursor), None)
            deploys = deploys[index + 1 :] if index is not None else []
        return web.json_response([{"deploy": d.to_json(), "cursor": d.id} for d in deploys[:limit]])

    async def _get(self, request: web.Request) -> web.Response:
        service = self.services.get(request.match_info["service_id"])
        if service is None:
            return self.error_response(404, "service not found", code="not_found")
        self._advance(service)
        deploy = next((d for d in service.deploys if d.id == request.match_info["deploy_id"]), None)
        if deploy is None:
            return self.error_response(404, "deploy not found", code="not_found")
        return web.json_response(deploy.to_json())

    async def _rollback(self, request: web.Request) -> web.Response:
        service = self.services.get(request.match_info["service_id"])
        if service is None:
            return self.error_response(404, "service not found", code="not_found")
        try:
            body = await request.json()
        except ValueError:
            return self.error_response(400, "invalid JSON body", code="invalid_body")
        deploy_id = body.get("deployId") if isinstance(body, dict) else None
        if not isinstance(deploy_id, str) or not deploy_id:
            return self.error_response(400, "deployId is required", code="invalid_parameter")
        target = next((d for d in service.deploys if d.id == deploy_id), None)
        if target is None:
            return self.error_response(404, "deploy not found", code="not_found")
        if target.status == "live":
            return self.error_response(400, f"deploy {deploy_id} is already live", code="invalid_parameter")
        if target.status != "deactivated":
            return self.error_response(400, f"cannot roll back to deploy {deploy_id}: it was never live (status {target.status})", code="invalid_parameter")
        steps = list(self.rollback_steps)
        if self._next_failure:
            steps = [*steps[:-1], self._next_failure]
            self._next_failure = None
        new = RenderDeploy(
            self._new_id(),
            "created",
            target.commit_id,
            target.commit_message,
            self.clock.now(),
            trigger="rollback",
            image_ref=target.image_ref,
            bad=target.bad,
            pending_steps=steps,
            rollback_of=target.id,
        )
        service.deploys.insert(0, new)
        return web.json_response(new.to_json(), status=201)


_CODES = {400: "invalid_parameter", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 429: "rate_limited", 500: "internal_error"}
