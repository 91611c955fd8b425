"""Vercel: instant rollback of a project's production deployment.

- candidates: ``GET /v6/deployments?projectId=&target=production&state=READY&limit=N``
  (``?teamId=`` for team projects); the live one is the project's
  ``targets.production`` (``GET /v9/projects/{projectId}``);
- trigger: ``POST /v9/projects/{projectId}/rollback/{deploymentId}`` body ``{}``
  (the CLI's call) → 201;
- progress: ``GET /v9/projects/{projectId}`` → ``lastAliasRequest.jobStatus``
  (``pending``, ``in-progress``, ``succeeded``, ``failed``, ``skipped``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
from pydantic import SecretStr

from bot.clock import Clock, SystemClock, utc
from bot.playbooks.models import VercelConfig
from bot.providers.base import (
    CLOCK_SKEW,
    Deploy,
    RollbackHandle,
    RollbackPlan,
    RollbackProgress,
    RollbackState,
    choose_plan,
)
from bot.providers.http import ProviderHttp, RetryPolicy
from bot.providers.timeparse import parse_time

_JOB_STATES = {
    "pending": RollbackState.PENDING,
    "in-progress": RollbackState.IN_PROGRESS,
    "succeeded": RollbackState.LIVE,
    "failed": RollbackState.FAILED,
    "skipped": RollbackState.CANCELED,
}


class VercelProvider:
    type: ClassVar[str] = "vercel"
    display_name: ClassVar[str] = "Vercel"
    redeploy_id_key: ClassVar[str | None] = None  # the target itself is promoted again

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str,
        token: SecretStr | str | None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.http = ProviderHttp.with_token(
            session, provider=self.type, display_name=self.display_name, base_url=api_url,
            token=token, token_env="VERCEL_TOKEN", policy=retry,
        )

    @classmethod
    def from_settings(cls, settings: Any, session: aiohttp.ClientSession, clock: Clock, retry: RetryPolicy | None = None) -> VercelProvider:
        return cls(session, api_url=str(settings.vercel_api_url), token=settings.vercel_token, clock=clock, retry=retry)

    @property
    def notes(self) -> tuple[str, ...]:
        return (
            "Vercel: Hobby plans may only roll back to the previous production deployment.",
            ("Vercel: after a rollback, new production deployments are no longer assigned "
             "the production domains automatically until one is promoted (`vercel promote`)."),
        )

    # -- reads

    async def list_deploys(self, config: VercelConfig, *, limit: int = 20) -> list[Deploy]:
        project = await self._project(config)
        params = self._params(config) | {
            "projectId": config.project_id,
            "target": "production",
            "state": "READY",
            "limit": str(min(max(limit, 1), 100)),
        }
        response = await self.http.get("/v6/deployments", params=params)
        items = (response.data or {}).get("deployments", []) if isinstance(response.data, Mapping) else []
        production = ((project.get("targets") or {}).get("production") or {}).get("id")
        deploys = [self._deploy(item, production) for item in items if isinstance(item, Mapping)]
        deploys.sort(key=lambda d: d.created_at, reverse=True)
        if production is None and deploys:  # no targets in the answer: the newest READY one is live
            deploys[0] = replace(deploys[0], is_live=True, can_be_target=False)
        return deploys[:limit]

    async def plan(self, config: VercelConfig, *, to: str | None = None,
                   skip: Mapping[str, str] | None = None) -> RollbackPlan:
        deploys = await self.list_deploys(config, limit=50 if to else 20)
        return choose_plan(self.type, deploys, to=to, where=f"Vercel project `{config.project_id}` (READY production deployments)", notes=self.notes, skip=skip)

    # -- the rollback

    async def trigger(self, config: VercelConfig, plan: RollbackPlan, *, idempotency_key: str, reason: str = "") -> RollbackHandle:
        started = self.clock.now()
        await self.http.write(
            "POST",
            f"/v9/projects/{config.project_id}/rollback/{plan.target.id}",
            params=self._params(config) or None,
            json_body={},
        )
        return self._handle(plan, started, idempotency_key)

    async def find_triggered(
        self, config: VercelConfig, plan: RollbackPlan, *, since: datetime, idempotency_key: str | None = None
    ) -> RollbackHandle | None:
        """The project's last alias request points at the target and was made since ``since``."""
        project = await self._project(config)
        request = project.get("lastAliasRequest") or {}
        if request.get("toDeploymentId") == plan.target.id:
            requested = parse_time(request.get("requestedAt"))
            if requested >= utc(since) - CLOCK_SKEW:
                return self._handle(plan, since, idempotency_key)
        return None

    async def poll(self, config: VercelConfig, handle: RollbackHandle) -> RollbackProgress:
        project = await self._project(config)
        target = handle.ids.get("deployment_id", handle.target_id)
        ids = {"deployment_id": target}
        request = project.get("lastAliasRequest") or {}
        production = ((project.get("targets") or {}).get("production") or {}).get("id")
        if request.get("toDeploymentId") == target:
            job = str(request.get("jobStatus", "pending"))
            state = _JOB_STATES.get(job, RollbackState.IN_PROGRESS)
            detail = {
                RollbackState.PENDING: f"Vercel queued the rollback to `{target}`.",
                RollbackState.IN_PROGRESS: f"Vercel is moving the production domains to `{target}`.",
                RollbackState.LIVE: f"`{target}` is the production deployment again.",
                RollbackState.FAILED: f"Vercel could not roll back to `{target}` (job {job}).",
                RollbackState.CANCELED: f"Vercel skipped the rollback to `{target}` (job {job}).",
            }[state]
            return RollbackProgress(state, detail, ids, job)
        if production == target:
            return RollbackProgress(RollbackState.LIVE, f"`{target}` is the production deployment.", ids, "succeeded")
        if request:
            return RollbackProgress(
                RollbackState.CANCELED,
                f"Another promotion or rollback (to `{request.get('toDeploymentId')}`) replaced this one.",
                ids,
                str(request.get("jobStatus")),
            )
        return RollbackProgress(RollbackState.PENDING, "Waiting for Vercel to register the rollback.", ids)

    # -- helpers

    @staticmethod
    def _params(config: VercelConfig) -> dict[str, str]:
        return {"teamId": config.team_id} if config.team_id else {}

    async def _project(self, config: VercelConfig) -> Mapping[str, Any]:
        response = await self.http.get(f"/v9/projects/{config.project_id}", params=self._params(config) or None)
        return response.data if isinstance(response.data, Mapping) else {}

    def _handle(self, plan: RollbackPlan, started: datetime, key: str | None) -> RollbackHandle:
        return RollbackHandle(
            provider=self.type,
            target_id=plan.target.id,
            started_at=started,
            ids={"deployment_id": plan.target.id, "from_deployment_id": plan.current.id},
            idempotency_key=key,
        )

    @staticmethod
    def _deploy(data: Mapping[str, Any], production_id: str | None) -> Deploy:
        uid = str(data.get("uid") or data.get("id"))
        state = str(data.get("readyState") or data.get("state") or "UNKNOWN")
        meta = data.get("meta") or {}
        creator = data.get("creator") or {}
        live = production_id is not None and uid == production_id
        return Deploy(
            id=uid,
            status=state,
            is_live=live,
            can_be_target=not live and state == "READY",
            created_at=parse_time(data.get("createdAt") or data.get("created")),
            commit_sha=meta.get("githubCommitSha") or meta.get("gitlabCommitSha") or meta.get("bitbucketCommitSha"),
            commit_message=meta.get("githubCommitMessage") or meta.get("gitlabCommitMessage") or meta.get("bitbucketCommitMessage"),
            deployed_by=creator.get("username") or meta.get("githubCommitAuthorLogin"),
            url=f"https://{data['url']}" if data.get("url") else None,
            raw=dict(data),
        )
