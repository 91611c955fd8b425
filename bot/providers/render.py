"""Render: ``POST /services/{id}/rollback`` (REST, ``Authorization: Bearer <key>``).

- deploys: ``GET /services/{id}/deploys?limit=N`` → ``[{"deploy": {...}, "cursor": ...}]``;
- target: a ``deactivated`` deploy (it was live before); failed builds never are;
- trigger: ``POST /services/{id}/rollback`` ``{"deployId": ...}`` → 201, the NEW deploy;
- progress: ``GET /services/{id}/deploys/{newDeployId}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
from pydantic import SecretStr

from bot.clock import Clock, SystemClock
from bot.playbooks.models import RenderConfig
from bot.providers.base import (
    Deploy,
    RollbackHandle,
    RollbackPlan,
    RollbackProgress,
    RollbackState,
    choose_plan,
    created_after_trigger,
)
from bot.providers.http import ProviderHttp, RetryPolicy
from bot.providers.timeparse import parse_time

_STATES = {
    "created": RollbackState.PENDING,
    "queued": RollbackState.PENDING,
    "build_in_progress": RollbackState.IN_PROGRESS,
    "update_in_progress": RollbackState.IN_PROGRESS,
    "pre_deploy_in_progress": RollbackState.IN_PROGRESS,
    "live": RollbackState.LIVE,
    "build_failed": RollbackState.FAILED,
    "update_failed": RollbackState.FAILED,
    "pre_deploy_failed": RollbackState.FAILED,
    "canceled": RollbackState.CANCELED,
    "deactivated": RollbackState.CANCELED,  # replaced by a newer deploy before we saw it live
}


class RenderProvider:
    type: ClassVar[str] = "render"
    display_name: ClassVar[str] = "Render"
    redeploy_id_key: ClassVar[str | None] = "deploy_id"  # the rollback is a new deploy of the target

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
            token=api_key, token_env="RENDER_API_KEY", policy=retry,
        )

    @classmethod
    def from_settings(cls, settings: Any, session: aiohttp.ClientSession, clock: Clock, retry: RetryPolicy | None = None) -> RenderProvider:
        return cls(session, api_url=str(settings.render_api_url), api_key=settings.render_api_key, clock=clock, retry=retry)

    @property
    def notes(self) -> tuple[str, ...]:
        return (
            ("Render: a rollback through the API leaves auto-deploy on, so the next push "
             "to the service's branch deploys again and can undo this rollback. Pause "
             "auto-deploy in the dashboard until the fix is merged."),
        )

    async def list_deploys(self, config: RenderConfig, *, limit: int = 20) -> list[Deploy]:
        response = await self.http.get(f"/services/{config.service_id}/deploys", params={"limit": str(min(max(limit, 1), 100))})
        items = response.data if isinstance(response.data, list) else []
        deploys = [self._deploy(item.get("deploy", item)) for item in items if isinstance(item, Mapping)]
        deploys.sort(key=lambda d: d.created_at, reverse=True)
        return deploys[:limit]

    async def plan(self, config: RenderConfig, *, to: str | None = None,
                   skip: Mapping[str, str] | None = None) -> RollbackPlan:
        deploys = await self.list_deploys(config, limit=50 if to else 20)
        return choose_plan(self.type, deploys, to=to, where=f"Render service `{config.service_id}`", notes=self.notes, skip=skip)

    async def trigger(self, config: RenderConfig, plan: RollbackPlan, *, idempotency_key: str, reason: str = "") -> RollbackHandle:
        started = self.clock.now()
        response = await self.http.write(
            "POST", f"/services/{config.service_id}/rollback", json_body={"deployId": plan.target.id}
        )
        data = response.data if isinstance(response.data, Mapping) else {}
        return RollbackHandle(
            provider=self.type,
            target_id=plan.target.id,
            started_at=started,
            ids={"deploy_id": str(data.get("id", ""))} if data.get("id") else {},
            idempotency_key=idempotency_key,
        )

    async def find_triggered(
        self, config: RenderConfig, plan: RollbackPlan, *, since: datetime, idempotency_key: str | None = None
    ) -> RollbackHandle | None:
        """A rollback deploy (``trigger: rollback``, the target's commit) created since ``since``."""
        for deploy in await self.list_deploys(config, limit=20):
            if deploy.raw.get("trigger") != "rollback":
                continue
            if plan.target.commit_sha and deploy.commit_sha and deploy.commit_sha != plan.target.commit_sha:
                continue
            if created_after_trigger(deploy.created_at, since=since, current=plan.current):
                return RollbackHandle(self.type, plan.target.id, since, {"deploy_id": deploy.id}, idempotency_key)
        return None

    async def poll(self, config: RenderConfig, handle: RollbackHandle) -> RollbackProgress:
        deploy_id = handle.ids.get("deploy_id")
        if not deploy_id:
            return RollbackProgress(RollbackState.PENDING, "Waiting for Render to create the rollback deploy.")
        response = await self.http.get(f"/services/{config.service_id}/deploys/{deploy_id}")
        deploy = self._deploy(response.data if isinstance(response.data, Mapping) else {})
        state = _STATES.get(deploy.status, RollbackState.IN_PROGRESS)
        new, target = f"`{deploy_id}`", f"`{handle.target_id}`"  # Render redeploys the target as a new deploy
        detail = {
            RollbackState.PENDING: f"Render queued {new}, its redeploy of {target}.",
            RollbackState.IN_PROGRESS: f"Render is rolling out {new}, its redeploy of {target} ({deploy.status}).",
            RollbackState.LIVE: f"{new}, Render's redeploy of {target}, is live.",
            RollbackState.FAILED: f"{new}, Render's redeploy of {target}, failed ({deploy.status}).",
            RollbackState.CANCELED: f"{new}, Render's redeploy of {target}, ended as {deploy.status}.",
        }[state]
        return RollbackProgress(state, detail, {"deploy_id": deploy_id}, deploy.status)

    # -- mapping

    @staticmethod
    def _deploy(data: Mapping[str, Any]) -> Deploy:
        commit = data.get("commit") or {}
        image = data.get("image") or {}
        status = str(data.get("status", "unknown"))
        return Deploy(
            id=str(data.get("id")),
            status=status,
            is_live=status == "live",
            can_be_target=status == "deactivated",
            created_at=parse_time(data.get("createdAt")),
            commit_sha=commit.get("id"),
            commit_message=commit.get("message"),
            deployed_by=None,  # Render deploys do not name a user
            description=f"trigger: {data['trigger']}" if data.get("trigger") else None,
            image=image.get("ref"),
            raw=dict(data),
        )
