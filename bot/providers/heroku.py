"""Heroku: roll back by creating a release from an earlier one (Platform API v3).

- headers ``Accept: application/vnd.heroku+json; version=3``, ``Authorization: Bearer <key>``;
- releases: ``GET /apps/{app}/releases`` with ``Range: version ..; max=10, order=desc``
  (206 + ``Next-Range`` when truncated: the next page is asked with that header);
- target: the previous ``succeeded`` release (the second one newest first);
- trigger: ``POST /apps/{app}/releases`` ``{"release": "<uuid>"}`` → a new release
  "Rollback to vN"; NOT idempotent: after an ambiguous failure the releases are
  read again (``find_triggered``) before anything is re-sent;
- progress: ``GET /apps/{app}/releases/{id}`` (``pending`` → ``succeeded``/``failed``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
from pydantic import SecretStr

from bot.clock import Clock, SystemClock
from bot.playbooks.models import HerokuConfig
from bot.providers.base import (
    Deploy,
    RollbackHandle,
    RollbackPlan,
    RollbackProgress,
    RollbackState,
    choose_plan,
)
from bot.providers.http import ProviderHttp, RetryPolicy
from bot.providers.timeparse import parse_time

ACCEPT = "application/vnd.heroku+json; version=3"
PAGE_SIZE = 10
_DEPLOY_SHA = re.compile(r"^Deploy ([0-9a-f]{7,40})\b")


class HerokuProvider:
    type: ClassVar[str] = "heroku"
    display_name: ClassVar[str] = "Heroku"
    redeploy_id_key: ClassVar[str | None] = None  # a new release, named in its description

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str,
        api_key: SecretStr | str | None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.http = ProviderHttp.with_token(
            session, provider=self.type, display_name=self.display_name, base_url=api_url,
            token=api_key, token_env="HEROKU_API_KEY", policy=retry, headers={"Accept": ACCEPT},
        )

    @classmethod
    def from_settings(cls, settings: Any, session: aiohttp.ClientSession, clock: Clock, retry: RetryPolicy | None = None) -> HerokuProvider:
        return cls(session, api_url=str(settings.heroku_api_url), api_key=settings.heroku_api_key, clock=clock, retry=retry)

    @property
    def notes(self) -> tuple[str, ...]:
        return (
            ("Heroku: a rollback restores the earlier release's slug and config vars but not "
             "add-ons or database migrations; a later deploy replaces it as usual."),
        )

    async def list_deploys(self, config: HerokuConfig, *, limit: int = 20) -> list[Deploy]:
        releases: list[Mapping[str, Any]] = []
        range_header = f"version ..; max={PAGE_SIZE}, order=desc"
        while len(releases) < limit:
            response = await self.http.get(f"/apps/{config.app}/releases", headers={"Range": range_header})
            page = response.data if isinstance(response.data, list) else []
            releases.extend(r for r in page if isinstance(r, Mapping))
            next_range = response.headers.get("Next-Range")
            if response.status != 206 or not next_range or not page:
                break
            range_header = next_range
        releases.sort(key=lambda r: int(r.get("version") or 0), reverse=True)
        return [self._deploy(r) for r in releases[:limit]]

    async def plan(self, config: HerokuConfig, *, to: str | None = None,
                   skip: Mapping[str, str] | None = None) -> RollbackPlan:
        deploys = await self.list_deploys(config, limit=50 if to else 20)
        if to is not None:  # accept "v41" or "41" as well as the release's uuid
            version = to[1:] if to[:1] in ("v", "V") else to
            by_version = next((d for d in deploys if str(d.raw.get("version")) == version), None)
            if by_version is not None:
                to = by_version.id
        return choose_plan(self.type, deploys, to=to, where=f"Heroku app `{config.app}`", notes=self.notes, skip=skip)

    async def trigger(self, config: HerokuConfig, plan: RollbackPlan, *, idempotency_key: str, reason: str = "") -> RollbackHandle:
        started = self.clock.now()
        response = await self.http.write("POST", f"/apps/{config.app}/releases", json_body={"release": plan.target.id})
        data = response.data if isinstance(response.data, Mapping) else {}
        return self._handle(plan, data, started, idempotency_key)

    async def find_triggered(
        self, config: HerokuConfig, plan: RollbackPlan, *, since: datetime, idempotency_key: str | None = None
    ) -> RollbackHandle | None:
        """A release newer than the one that was current, described "Rollback to v<target>"."""
        current_version = int(plan.current.raw.get("version") or 0)
        wanted = f"Rollback to v{plan.target.raw.get('version')}"
        for deploy in await self.list_deploys(config, limit=PAGE_SIZE):
            if int(deploy.raw.get("version") or 0) > current_version and deploy.raw.get("description") == wanted:
                return self._handle(plan, deploy.raw, since, idempotency_key)
        return None

    async def poll(self, config: HerokuConfig, handle: RollbackHandle) -> RollbackProgress:
        release_id = handle.ids["release_id"]
        response = await self.http.get(f"/apps/{config.app}/releases/{release_id}")
        data = response.data if isinstance(response.data, Mapping) else {}
        status = str(data.get("status", "unknown"))
        name = f"v{data.get('version', handle.ids.get('version', '?'))}"
        ids = {"release_id": release_id, "version": str(data.get("version", handle.ids.get("version", "")))}
        if status == "pending":
            return RollbackProgress(RollbackState.IN_PROGRESS, f"Heroku release {name} is pending (release phase running).", ids, status)
        if status == "succeeded":
            if data.get("current") is False:
                return RollbackProgress(RollbackState.CANCELED, f"Heroku release {name} succeeded but a newer release replaced it.", ids, status)
            return RollbackProgress(RollbackState.LIVE, f"Heroku release {name} is current.", ids, status)
        if status in ("failed", "expired"):
            return RollbackProgress(RollbackState.FAILED, f"Heroku release {name} {status}.", ids, status)
        return RollbackProgress(RollbackState.IN_PROGRESS, f"Heroku release {name}: {status}.", ids, status)

    # -- mapping

    def _handle(self, plan: RollbackPlan, release: Mapping[str, Any], started: datetime, key: str | None) -> RollbackHandle:
        return RollbackHandle(
            provider=self.type,
            target_id=plan.target.id,
            started_at=started,
            ids={"release_id": str(release.get("id")), "version": str(release.get("version"))},
            idempotency_key=key,
        )

    @staticmethod
    def _deploy(data: Mapping[str, Any]) -> Deploy:
        status = str(data.get("status", "unknown"))
        current = bool(data.get("current"))
        description = data.get("description")
        match = _DEPLOY_SHA.match(description or "")
        slug = data.get("slug") or {}
        return Deploy(
            id=str(data.get("id")),
            status=status,
            is_live=current,
            can_be_target=(not current and status == "succeeded" and data.get("eligible_for_rollback", True) is not False),
            created_at=parse_time(data.get("created_at")),
            commit_sha=match.group(1) if match else None,
            commit_message=None,  # the slug's commit message needs another call
            deployed_by=(data.get("user") or {}).get("email"),
            description=f"v{data.get('version')}: {description}" if description else f"v{data.get('version')}",
            image=slug.get("id") if isinstance(slug, Mapping) else None,
            raw=dict(data),
        )
