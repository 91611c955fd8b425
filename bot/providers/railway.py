"""Railway: GraphQL ``deploymentRollback`` (``POST https://backboard.railway.com/graphql/v2``).

Every document sent is a module constant (:data:`QUERY_DOCUMENTS`), so that tests
validate them all against Railway's official schema. Errors arrive in
``errors[]`` with HTTP 200: "Not Authorized" and "... not found" become
:class:`ProviderRejected` (401 / 404).

``deploymentRollback`` returns a bare ``Boolean!``: the new deployment it creates
is found afterwards as the newest deployment of the service created after the
trigger (``poll`` and ``find_triggered`` both do that).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import SecretStr

from bot.clock import Clock, SystemClock
from bot.playbooks.models import RailwayConfig
from bot.providers.base import (
    Deploy,
    InvalidTarget,
    ProviderRejected,
    ProviderUnavailable,
    RollbackHandle,
    RollbackPlan,
    RollbackProgress,
    RollbackState,
    choose_plan,
    created_after_trigger,
)
from bot.providers.http import HttpResponse, ProviderHttp, RetryPolicy, provider_error_message, rejection_message
from bot.providers.timeparse import parse_time

DEPLOYMENT_FIELDS = """
fragment FirebreakDeploymentFields on Deployment {
  id
  status
  createdAt
  canRollback
  serviceId
  environmentId
  url
  staticUrl
  meta
  creator { name email }
}
"""

DEPLOYMENTS_QUERY = (
    """
query FirebreakDeployments($input: DeploymentListInput!, $first: Int) {
  deployments(input: $input, first: $first) {
    edges { node { ...FirebreakDeploymentFields } }
  }
}
"""
    + DEPLOYMENT_FIELDS
)

DEPLOYMENT_QUERY = (
    """
query FirebreakDeployment($id: String!) {
  deployment(id: $id) { ...FirebreakDeploymentFields }
}
"""
    + DEPLOYMENT_FIELDS
)

# deploymentRollback returns Boolean!: no selection set.
ROLLBACK_MUTATION = """
mutation FirebreakRollback($id: String!) {
  deploymentRollback(id: $id)
}
"""

QUERY_DOCUMENTS: dict[str, str] = {
    "deployments": DEPLOYMENTS_QUERY,
    "deployment": DEPLOYMENT_QUERY,
    "rollback": ROLLBACK_MUTATION,
}

LIVE_STATUSES = {"SUCCESS", "SLEEPING"}
WAS_LIVE_STATUSES = {"SUCCESS", "SLEEPING", "REMOVED"}
_STATES = {
    "QUEUED": RollbackState.PENDING,
    "WAITING": RollbackState.PENDING,
    "NEEDS_APPROVAL": RollbackState.PENDING,
    "INITIALIZING": RollbackState.IN_PROGRESS,
    "BUILDING": RollbackState.IN_PROGRESS,
    "DEPLOYING": RollbackState.IN_PROGRESS,
    "SUCCESS": RollbackState.LIVE,
    "SLEEPING": RollbackState.LIVE,
    "FAILED": RollbackState.FAILED,
    "CRASHED": RollbackState.FAILED,
    "REMOVING": RollbackState.CANCELED,
    "REMOVED": RollbackState.CANCELED,
    "SKIPPED": RollbackState.CANCELED,
}


class RailwayProvider:
    type: ClassVar[str] = "railway"
    display_name: ClassVar[str] = "Railway"
    redeploy_id_key: ClassVar[str | None] = "deployment_id"  # the rollback is a new deployment of the target

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str,
        token: SecretStr | str | None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        token_kind: Literal["account", "project"] = "account",
    ) -> None:
        self.clock = clock or SystemClock()
        self.http = ProviderHttp.with_token(
            session, provider=self.type, display_name=self.display_name, base_url=api_url,
            token=token, token_env="RAILWAY_API_TOKEN", policy=retry,
            headers={"Content-Type": "application/json"},
            auth=(lambda s: {"Authorization": f"Bearer {s}"}) if token_kind == "account"
            else (lambda s: {"Project-Access-Token": s}),
        )

    @classmethod
    def from_settings(cls, settings: Any, session: aiohttp.ClientSession, clock: Clock, retry: RetryPolicy | None = None) -> RailwayProvider:
        return cls(session, api_url=str(settings.railway_api_url), token=settings.railway_api_token, clock=clock, retry=retry)

    @property
    def notes(self) -> tuple[str, ...]:
        return (
            ("Railway: a rollback redeploys the earlier deployment's image and variables as a new "
             "deployment; a later push to the connected branch deploys again."),
        )

    # -- reads

    async def list_deploys(self, config: RailwayConfig, *, limit: int = 20) -> list[Deploy]:
        data = await self._query(
            DEPLOYMENTS_QUERY,
            {
                "input": {
                    "projectId": config.project_id,
                    "environmentId": config.environment_id,
                    "serviceId": config.service_id,
                },
                "first": limit,
            },
        )
        edges = ((data or {}).get("deployments") or {}).get("edges") or []
        nodes = [edge["node"] for edge in edges if isinstance(edge, Mapping) and isinstance(edge.get("node"), Mapping)]
        nodes.sort(key=lambda n: parse_time(n.get("createdAt")), reverse=True)
        live_id = next((n["id"] for n in nodes if n.get("status") in LIVE_STATUSES), None)
        return [self._deploy(n, live_id) for n in nodes[:limit]]

    async def plan(self, config: RailwayConfig, *, to: str | None = None,
                   skip: Mapping[str, str] | None = None) -> RollbackPlan:
        deploys = await self.list_deploys(config, limit=50 if to else 20)
        if to is not None and all(d.id != to for d in deploys):
            await self._check_outside_window(config, to)
        return choose_plan(self.type, deploys, to=to, where=f"Railway service `{config.service_id}`", notes=self.notes, skip=skip)

    async def _check_outside_window(self, config: RailwayConfig, deployment_id: str) -> None:
        """A ``to`` id not among the recent deployments: say precisely why it is refused."""
        try:
            data = await self._query(DEPLOYMENT_QUERY, {"id": deployment_id})
        except ProviderRejected as exc:
            if exc.status == 404:
                raise InvalidTarget(f"Railway has no deployment `{deployment_id}`.", provider=self.type) from None
            raise
        node = (data or {}).get("deployment") or {}
        if node.get("serviceId") != config.service_id or node.get("environmentId") != config.environment_id:
            raise InvalidTarget(
                f"Deployment `{deployment_id}` belongs to another Railway service or environment.", provider=self.type
            )
        raise InvalidTarget(
            f"Deployment `{deployment_id}` is older than the last 50 deployments of this service: "
            "roll back to it from the Railway dashboard.",
            provider=self.type,
        )

    # -- the rollback

    async def trigger(self, config: RailwayConfig, plan: RollbackPlan, *, idempotency_key: str, reason: str = "") -> RollbackHandle:
        started = self.clock.now()
        data = await self._mutate(ROLLBACK_MUTATION, {"id": plan.target.id})
        if not (data or {}).get("deploymentRollback"):
            raise ProviderRejected(
                f"Railway did not accept the rollback to `{plan.target.id}` (deploymentRollback returned false).",
                None,
                provider=self.display_name,
            )
        return self._handle(plan, started, idempotency_key)

    async def find_triggered(
        self, config: RailwayConfig, plan: RollbackPlan, *, since: datetime, idempotency_key: str | None = None
    ) -> RollbackHandle | None:
        handle = self._handle(plan, since, idempotency_key)
        found = await self._rollback_deployment(config, handle)
        if found is None:
            return None
        return RollbackHandle(handle.provider, handle.target_id, handle.started_at, {**handle.ids, "deployment_id": found.id}, idempotency_key)

    async def poll(self, config: RailwayConfig, handle: RollbackHandle) -> RollbackProgress:
        found = await self._rollback_deployment(config, handle)
        if found is None:
            return RollbackProgress(RollbackState.PENDING, "Waiting for Railway to create the rollback deployment.")
        state = _STATES.get(found.status, RollbackState.IN_PROGRESS)
        new, target = f"`{found.id}`", f"`{handle.target_id}`"  # a new deployment of the target
        status = found.status.lower()
        detail = {
            RollbackState.PENDING: f"Railway deployment {new}, its redeploy of {target}, is {status}.",
            RollbackState.IN_PROGRESS: f"Railway is rolling out {new}, its redeploy of {target} ({status}).",
            RollbackState.LIVE: f"{new}, Railway's redeploy of {target}, is live.",
            RollbackState.FAILED: f"{new}, Railway's redeploy of {target}, {status}.",
            RollbackState.CANCELED: f"{new}, Railway's redeploy of {target}, was {status}.",
        }[state]
        return RollbackProgress(state, detail, {"deployment_id": found.id}, found.status)

    async def _rollback_deployment(self, config: RailwayConfig, handle: RollbackHandle) -> Deploy | None:
        """The deployment created by our rollback: newer than the one live before, created
        since the trigger, preferably with the target's commit."""
        previous_created = parse_time(handle.ids.get("previous_created_at"))
        previous = Deploy(handle.ids.get("previous_id", ""), "", False, False, previous_created)
        candidates = [
            d
            for d in await self.list_deploys(config, limit=10)
            if d.id not in (handle.ids.get("previous_id"), handle.target_id)
            and created_after_trigger(d.created_at, since=handle.started_at, current=previous)
        ]
        if known := handle.ids.get("deployment_id"):
            return next((d for d in candidates if d.id == known), None)
        target_sha = handle.ids.get("target_sha")
        same_commit = [d for d in candidates if target_sha and d.commit_sha == target_sha]
        pool = same_commit or candidates  # newest first: the first one created after the trigger is last
        return pool[-1] if pool else None

    # -- GraphQL plumbing

    async def _query(self, document: str, variables: Mapping[str, Any]) -> Mapping[str, Any] | None:
        response = await self.http.read("POST", "", json_body={"query": document, "variables": dict(variables)})
        return self._data(response)

    async def _mutate(self, document: str, variables: Mapping[str, Any]) -> Mapping[str, Any] | None:
        response = await self.http.write("POST", "", json_body={"query": document, "variables": dict(variables)})
        return self._data(response)

    def _data(self, response: HttpResponse) -> Mapping[str, Any] | None:
        body = response.data if isinstance(response.data, Mapping) else {}
        if body.get("errors"):
            message, code = provider_error_message(body)
            message = self.http.scrub(message or "unknown error")
            lowered = f"{message} {code or ''}".lower()
            if "rate limit" in lowered or "too many requests" in lowered:
                raise ProviderUnavailable(f"Railway is rate limiting us: {message}", provider=self.display_name)
            if any(word in lowered for word in ("not authorized", "unauthorized", "unauthenticated", "invalid token")):
                status = 401
            elif "not found" in lowered:
                status = 404
            else:
                status = 422
            raise ProviderRejected(
                rejection_message(self.display_name, status, message, token_env="RAILWAY_API_TOKEN"),
                status,
                provider=self.display_name,
                provider_message=message,
                code=code,
            )
        data = body.get("data")
        return data if isinstance(data, Mapping) else None

    # -- mapping

    def _handle(self, plan: RollbackPlan, started: datetime, key: str | None) -> RollbackHandle:
        return RollbackHandle(
            provider=self.type,
            target_id=plan.target.id,
            started_at=started,
            ids={
                "previous_id": plan.current.id,
                "previous_created_at": plan.current.created_at.isoformat(),
                "target_sha": plan.target.commit_sha or "",
            },
            idempotency_key=key,
        )

    @staticmethod
    def _deploy(node: Mapping[str, Any], live_id: str | None) -> Deploy:
        status = str(node.get("status", "UNKNOWN"))
        meta = node.get("meta") if isinstance(node.get("meta"), Mapping) else {}
        creator = node.get("creator") or {}
        live = node.get("id") == live_id
        url = node.get("url") or (f"https://{node['staticUrl']}" if node.get("staticUrl") else None)
        return Deploy(
            id=str(node.get("id")),
            status=status,
            is_live=live,
            can_be_target=not live and bool(node.get("canRollback")) and status in WAS_LIVE_STATUSES,
            created_at=parse_time(node.get("createdAt")),
            commit_sha=meta.get("commitHash"),
            commit_message=meta.get("commitMessage"),
            deployed_by=creator.get("name") or creator.get("email") or meta.get("commitAuthor"),
            description=meta.get("reason"),
            url=url,
            image=meta.get("image"),
            raw=dict(node),
        )
