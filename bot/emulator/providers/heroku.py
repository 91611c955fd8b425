"""A local fake of the Heroku Platform API (``HEROKU_API_URL`` = ``fake.api_url``).

- every request needs ``Accept: application/vnd.heroku+json; version=3`` and
  ``Authorization: Bearer <key>`` (401 ``{"id": "unauthorized", ...}`` otherwise);
- ``GET /apps/{app}/releases`` honours ``Range: version ..; max=10, order=desc``
  and answers 206 with ``Next-Range`` when the page is truncated;
- ``GET /apps/{app}/releases/{id-or-version}``;
- ``POST /apps/{app}/releases`` ``{"release": "<uuid>"}`` (the schema's
  "Rollback" link) → 201, a new release "Rollback to vN", ``pending`` then
  ``succeeded`` and ``current`` on later reads (or ``failed``, when scripted with
  :meth:`HerokuFake.fail_next_rollback`).

Errors are ``{"id": "not_found", "message": "Couldn't find that app."}``.
A ``validator`` (tests: the official JSON hyper-schema) sees every request.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.emulator.providers._server import FakeProviderServer, SeededService, iso_z

ACCEPT = "application/vnd.heroku+json; version=3"
ROLLBACK_STEPS = ("pending", "pending", "succeeded")  # at creation, then one per read
_RANGE = re.compile(
    r"^\s*(?P<field>\w+)\s+(?P<excl>\])?(?P<start>[^.;\s]*)\.\.(?P<end>[^;\s]*)\s*(?:;\s*(?P<opts>.*))?$"
)


@dataclass(slots=True)
class HerokuRelease:
    id: str
    version: int
    description: str
    status: str
    created_at: datetime
    slug_id: str | None
    user_email: str = "deployer@example.com"
    current: bool = False
    bad: bool = False
    pending_steps: list[str] = field(default_factory=list)
    updated_at: datetime | None = None

    def to_json(self, app: HerokuApp) -> dict[str, Any]:
        return {
            "addon_plan_names": ["heroku-postgresql:essential-0"],
            "artifacts": [{"type": "slug", "id": self.slug_id}] if self.slug_id else [],
            "app": {"id": app.id, "name": app.name},
            "created_at": _heroku_time(self.created_at),
            "description": self.description,
            "id": self.id,
            "updated_at": _heroku_time(self.updated_at or self.created_at),
            "slug": {"id": self.slug_id} if self.slug_id else None,
            "status": self.status,
            "user": {"id": "01234567-89ab-cdef-0123-456789abcdef", "email": self.user_email},
            "version": self.version,
            "current": self.current,
            "output_stream_url": None,
            "eligible_for_rollback": self.status == "succeeded" and self.slug_id is not None,
        }


@dataclass(slots=True)
class HerokuApp:
    id: str
    name: str
    releases: list[HerokuRelease] = field(default_factory=list)  # ascending version

    @property
    def current(self) -> HerokuRelease | None:
        return next((r for r in self.releases if r.current), None)


def _heroku_time(when: datetime) -> str:
    return iso_z(when)[:-5] + "Z"  # Heroku writes whole seconds: 2026-03-02T14:00:00Z


class HerokuFake(FakeProviderServer):
    provider = "heroku"
    validation_status = 422

    def __init__(self, *, seed: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.apps: dict[str, HerokuApp] = {}
        self.seeded: dict[str, SeededService] = {}
        self.rollback_steps: tuple[str, ...] = ROLLBACK_STEPS
        self._next_failure: str | None = None
        r = self.app.router
        r.add_get("/apps/{app}/releases", self._list)
        r.add_get("/apps/{app}/releases/{release}", self._get)
        r.add_post("/apps/{app}/releases", self._create)
        if seed:
            self.seed_app("firebreak-demo-api", name="api")

    # -- seeding and scripting

    def seed_app(self, app_name: str, *, name: str | None = None, extra_releases: int = 0) -> SeededService:
        """v1 initial, v2/v3 good, v4 failed, v5 live and bad (plus ``extra_releases`` older good ones)."""
        now = self.clock.now()
        app = HerokuApp(str(uuid.uuid5(uuid.NAMESPACE_DNS, app_name)), app_name)
        specs: list[tuple[str, str, timedelta, bool]] = [("Initial release", "succeeded", timedelta(days=30), False)]
        specs += [(f"Deploy 0ld{i:04d}", "succeeded", timedelta(days=20 - i / 10), False) for i in range(extra_releases)]
        specs += [
            ("Deploy a1b2c3d4", "succeeded", timedelta(days=3), False),
            ("Deploy b2c3d4e5", "succeeded", timedelta(days=1), False),
            ("Deploy c3d4e5f6", "failed", timedelta(hours=2), False),
            ("Deploy d4e5f6a7", "succeeded", timedelta(minutes=30), True),
        ]
        for version, (description, status, age, bad) in enumerate(specs, start=1):
            slug = None if version == 1 else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{app_name}/slug/{version}"))
            app.releases.append(
                HerokuRelease(
                    str(uuid.uuid5(uuid.NAMESPACE_URL, f"{app_name}/release/{version}")),
                    version, description, status, now - age, slug, bad=bad,
                )
            )
        app.releases[-1].current = True
        self.apps[app_name] = app
        by_version = {r.version: r.id for r in app.releases}
        top = len(app.releases)
        seeded = SeededService(app_name, name or app_name, live_id=by_version[top], target_id=by_version[top - 2],
                               failed_id=by_version[top - 1], oldest_id=by_version[top - 3])
        self.seeded[app_name] = seeded
        return seeded

    def fail_next_rollback(self, status: str = "failed") -> None:
        self._next_failure = status

    def _app(self, key: str) -> HerokuApp | None:
        return self.apps.get(key) or next((a for a in self.apps.values() if a.name == key or a.id == key), None)

    def _advance(self, app: HerokuApp) -> None:
        for release in app.releases:
            if not release.pending_steps:
                continue
            release.status = release.pending_steps.pop(0)
            release.updated_at = self.clock.now()
            if release.status == "succeeded":
                for other in app.releases:
                    other.current = other is release
                release.pending_steps.clear()
            elif release.status != "pending":
                release.pending_steps.clear()

    # -- health, auth, errors

    def is_healthy(self, service: str) -> bool | None:
        app = self._app(service) or next((self.apps[s.key] for s in self.seeded.values() if s.name == service), None)
        if app is None:
            return None
        current = app.current
        return current is not None and not current.bad

    def describe_live(self, service: str) -> str | None:
        app = self._app(service) or next((self.apps[s.key] for s in self.seeded.values() if s.name == service), None)
        current = app.current if app else None
        if current is None:
            return None
        rollback = current.description.startswith("Rollback to ")
        return f"v{current.version} ({current.description.lower()})" if rollback else f"v{current.version}"

    def error_response(self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"id": code or _IDS.get(status, "error"), "message": message}, status=status, headers=headers)

    def unauthorized_response(self) -> web.Response:
        return self.error_response(401, "Invalid credentials provided.", code="unauthorized")

    def _check_accept(self, request: web.Request) -> web.Response | None:
        accept = request.headers.get("Accept", "")
        if "application/vnd.heroku+json" not in accept or "version=3" not in accept:
            return self.error_response(
                400,
                f"This fake (like the Platform API) expects `Accept: {ACCEPT}`.",
                code="bad_request",
            )
        return None

    # -- handlers

    async def _list(self, request: web.Request) -> web.Response:
        if (problem := self._check_accept(request)) is not None:
            return problem
        app = self._app(request.match_info["app"])
        if app is None:
            return self.error_response(404, "Couldn't find that app.", code="not_found")
        self._advance(app)
        field_name, exclusive, start, end, max_items, order = "version", False, "", "", 200, "asc"
        if header := request.headers.get("Range"):
            match = _RANGE.match(header)
            if match is None or match["field"] not in ("id", "version"):
                return self.error_response(400, f"Invalid Range header: {header}", code="bad_request")
            field_name, exclusive, start, end = match["field"], bool(match["excl"]), match["start"], match["end"]
            for opt in (match["opts"] or "").split(","):
                key, _, value = opt.strip().partition("=")
                if key == "max" and value.isdigit():
                    max_items = max(1, min(1000, int(value)))
                elif key == "order" and value in ("asc", "desc"):
                    order = value
        releases = sorted(app.releases, key=lambda r: r.version, reverse=order == "desc")
        if field_name == "version" and start:
            bound = int(start)
            if order == "desc":
                releases = [r for r in releases if r.version < bound or (not exclusive and r.version == bound)]
            else:
                releases = [r for r in releases if r.version > bound or (not exclusive and r.version == bound)]
        if field_name == "version" and end:
            bound = int(end)
            releases = [r for r in releases if (r.version >= bound if order == "desc" else r.version <= bound)]
        page, rest = releases[:max_items], releases[max_items:]
        body = [r.to_json(app) for r in page]
        headers = {"Accept-Ranges": "id, version"}
        if page:
            headers["Content-Range"] = f"version {page[0].version}..{page[-1].version}"
        if rest:
            headers["Next-Range"] = f"version ]{page[-1].version}..; max={max_items}, order={order}"
            return web.json_response(body, status=206, headers=headers)
        return web.json_response(body, status=200, headers=headers)

    async def _get(self, request: web.Request) -> web.Response:
        if (problem := self._check_accept(request)) is not None:
            return problem
        app = self._app(request.match_info["app"])
        if app is None:
            return self.error_response(404, "Couldn't find that app.", code="not_found")
        self._advance(app)
        release = self._find_release(app, request.match_info["release"])
        if release is None:
            return self.error_response(404, "Couldn't find that release.", code="not_found")
        return web.json_response(release.to_json(app))

    async def _create(self, request: web.Request) -> web.Response:
        if (problem := self._check_accept(request)) is not None:
            return problem
        app = self._app(request.match_info["app"])
        if app is None:
            return self.error_response(404, "Couldn't find that app.", code="not_found")
        try:
            body = await request.json()
        except ValueError:
            return self.error_response(400, "Request body must be valid JSON.", code="bad_request")
        if not isinstance(body, dict) or "release" not in body:
            return self.error_response(422, "Missing required params: release.", code="invalid_params")
        target = self._find_release(app, str(body["release"]))
        if target is None:
            return self.error_response(404, "Couldn't find that release.", code="not_found")
        if target.status != "succeeded" or target.slug_id is None:
            return self.error_response(422, f"Cannot roll back to v{target.version}: it did not succeed.", code="invalid_params")
        steps = list(self.rollback_steps)
        if self._next_failure:
            steps = [*steps[:-1], self._next_failure]
            self._next_failure = None
        version = max(r.version for r in app.releases) + 1
        release = HerokuRelease(
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"{app.name}/release/{version}/{uuid.uuid4()}")),
            version,
            f"Rollback to v{target.version}",
            steps.pop(0),
            self.clock.now(),
            target.slug_id,
            user_email="firebreak@example.com",
            bad=target.bad,
            pending_steps=steps,
        )
        app.releases.append(release)
        if release.status == "succeeded":
            for other in app.releases:
                other.current = other is release
        return web.json_response(release.to_json(app), status=201)

    @staticmethod
    def _find_release(app: HerokuApp, key: str) -> HerokuRelease | None:
        if key.isdigit():
            return next((r for r in app.releases if r.version == int(key)), None)
        return next((r for r in app.releases if r.id == key), None)


_IDS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 422: "invalid_params", 429: "rate_limit", 500: "internal_server_error"}
