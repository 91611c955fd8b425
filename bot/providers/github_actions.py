"""GitHub Actions: dispatch the team's rollback workflow, recorded as a GitHub deployment.

All calls go through PyGithub (blocking: each runs in ``asyncio.to_thread``).
PyGithub's own retries are off (``retry=None``, so a POST is never repeated);
reads are retried here with :func:`bot.providers.http.call_with_retries`.

- deploys: the repository's GitHub deployments for the playbook's ``environment``,
  newest first, each with its latest status; live = the newest whose latest
  status is ``success``; targets = older ones that were ``success`` (or since
  marked ``inactive``); ``failure``/``error`` ones are skipped;
- trigger: ``repo.get_workflow(workflow).create_dispatch(ref, inputs,
  return_run_details=True)``, then ``repo.create_deployment(target sha)`` with
  ``create_status("in_progress")`` pointing at the run;
- progress: ``repo.get_workflow_run(id)`` (status/conclusion); the terminal state is
  mirrored into a deployment status (``success``/``failure``/``error``).

The rollback workflow receives these ``workflow_dispatch`` inputs, merged over
the playbook's ``inputs`` (ours win)::

    sha:           the commit to redeploy (the target deployment's sha)  — required
    deploy_id:     the GitHub deployment id being restored
    reason:        why (from /rollback ... [reason])
    firebreak_key: Firebreak's idempotency key for this rollback

and should declare them, ideally with ``run-name: Rollback to ${{ inputs.sha }}
[${{ inputs.firebreak_key }}]``: with the key in the run's title, a dispatch whose
response was lost is found exactly; without it, the first dispatched run of the
workflow on ``ref`` since the trigger is taken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from itertools import islice
from typing import Any, ClassVar, TypeVar

import requests
from github import Auth, Github, GithubException
from pydantic import SecretStr
from urllib3.exceptions import NewConnectionError

from bot.clock import Clock, SystemClock, utc
from bot.playbooks.models import GithubActionsConfig
from bot.providers.base import (
    CLOCK_SKEW,
    AmbiguousTriggerError,
    Deploy,
    ProviderNotConfigured,
    ProviderRejected,
    ProviderUnavailable,
    RollbackHandle,
    RollbackPlan,
    RollbackProgress,
    RollbackState,
    choose_plan,
)
from bot.providers.http import RetryPolicy, TransientError, call_with_retries, parse_retry_after, rejection_message

log = logging.getLogger(__name__)
T = TypeVar("T")

INPUT_SHA = "sha"
INPUT_DEPLOY_ID = "deploy_id"
INPUT_REASON = "reason"
INPUT_KEY = "firebreak_key"
WORKFLOW_INPUTS = (INPUT_SHA, INPUT_DEPLOY_ID, INPUT_REASON, INPUT_KEY)

WAS_LIVE_STATES = {"success", "inactive"}
_MIRROR = {RollbackState.LIVE: "success", RollbackState.FAILED: "failure", RollbackState.CANCELED: "error"}


class GithubActionsProvider:
    type: ClassVar[str] = "github-actions"
    display_name: ClassVar[str] = "GitHub Actions"
    redeploy_id_key: ClassVar[str | None] = None  # the workflow deploys the target commit

    def __init__(
        self,
        *,
        api_url: str,
        token: SecretStr | str | None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        timeout: int = 15,
        seconds_between_writes: float | None = 1.0,
        github: Github | None = None,
    ) -> None:
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        if not secret and github is None:
            raise ProviderNotConfigured("GitHub is not configured: set GITHUB_TOKEN.", provider=self.display_name)
        self.clock = clock or SystemClock()
        self.policy = retry or RetryPolicy()
        self._secret = secret or ""
        self.gh = github or Github(
            base_url=api_url.rstrip("/"),
            auth=Auth.Token(secret or ""),
            retry=None,  # PyGithub would retry POSTs too; reads are retried in call_with_retries
            timeout=timeout,
            seconds_between_requests=None,
            seconds_between_writes=seconds_between_writes,
        )

    @classmethod
    def from_settings(cls, settings: Any, session: Any, clock: Clock, retry: RetryPolicy | None = None) -> GithubActionsProvider:
        return cls(api_url=str(settings.github_api_url), token=settings.github_token, clock=clock, retry=retry)

    @property
    def notes(self) -> tuple[str, ...]:
        return (
            ("GitHub Actions: the rollback is whatever the dispatched workflow does; Firebreak "
             f"passes the inputs {', '.join(WORKFLOW_INPUTS)} and follows the run."),
            "GitHub Actions: a later push that deploys again replaces this rollback.",
        )

    # -- reads

    async def list_deploys(self, config: GithubActionsConfig, *, limit: int = 20) -> list[Deploy]:
        def read() -> list[dict[str, Any]]:
            repo = self.gh.get_repo(config.repo, lazy=True)
            rows = []
            for deployment in islice(repo.get_deployments(environment=config.environment), limit):
                latest = next(iter(deployment.get_statuses()), None)
                rows.append(_deployment_row(deployment, latest))
            return rows

        rows = await self._read(read, f"list deployments of {config.repo}")
        rows.sort(key=lambda r: r["created_at"], reverse=True)
        live_id = next((r["id"] for r in rows if r["state"] == "success"), None)
        return [_deploy(row, live_id) for row in rows]

    async def plan(self, config: GithubActionsConfig, *, to: str | None = None,
                   skip: Mapping[str, str] | None = None) -> RollbackPlan:
        deploys = await self.list_deploys(config, limit=50 if to else 20)
        if to is not None and len(to) >= 7 and all(d.id != to for d in deploys):
            by_sha = next((d for d in deploys if d.commit_sha and d.commit_sha.startswith(to) and d.can_be_target), None)
            if by_sha is not None:  # accept a commit sha (prefix) as well as a deployment id
                to = by_sha.id
        where = f"GitHub environment `{config.environment}` of `{config.repo}`"
        return choose_plan(self.type, deploys, to=to, where=where, notes=self.notes, skip=skip)

    # -- the rollback

    def workflow_inputs(self, config: GithubActionsConfig, plan: RollbackPlan, *, idempotency_key: str, reason: str) -> dict[str, str]:
        return {
            **config.inputs,
            INPUT_SHA: plan.target.commit_sha or "",
            INPUT_DEPLOY_ID: plan.target.id,
            INPUT_REASON: reason or f"Rollback from {plan.current.short_sha or plan.current.id} via Firebreak",
            INPUT_KEY: idempotency_key,
        }

    async def trigger(
        self, config: GithubActionsConfig, plan: RollbackPlan, *, idempotency_key: str, reason: str = ""
    ) -> RollbackHandle:
        started = self.clock.now()

        def get_workflow() -> Any:
            workflow = self.gh.get_repo(config.repo, lazy=True).get_workflow(config.workflow)
            workflow.complete()  # GET it now: a missing workflow is refused before anything is sent
            return workflow

        workflow = await self._read(get_workflow, f"get workflow {config.workflow}")
        inputs = self.workflow_inputs(config, plan, idempotency_key=idempotency_key, reason=reason)

        def dispatch() -> dict[str, str]:
            run = workflow.create_dispatch(config.ref, inputs=inputs, throw=True, return_run_details=True)
            if run is True or run is None:  # an older GitHub without run details: 204
                return {}
            return {"run_id": str(run.id), "run_url": run.url, "html_url": run.html_url}

        ids = await self._write(dispatch, f"dispatch {config.workflow} on {config.ref}")
        if not ids:
            found = await self._find_run(config, since=started, key=idempotency_key)
            ids = found or {}
        deployment_id = await self._record_deployment(config, plan, ids, idempotency_key)
        return RollbackHandle(
            provider=self.type,
            target_id=plan.target.id,
            started_at=started,
            ids={**ids, "deployment_id": deployment_id},
            idempotency_key=idempotency_key,
        )

    async def find_triggered(
        self, config: GithubActionsConfig, plan: RollbackPlan, *, since: datetime, idempotency_key: str | None = None
    ) -> RollbackHandle | None:
        ids = await self._find_run(config, since=since, key=idempotency_key)
        if ids is None:
            return None
        deployment_id = await self._find_recorded_deployment(config, idempotency_key)
        if deployment_id is None:
            deployment_id = await self._record_deployment(config, plan, ids, idempotency_key)
        return RollbackHandle(self.type, plan.target.id, since, {**ids, "deployment_id": deployment_id}, idempotency_key)

    async def poll(self, config: GithubActionsConfig, handle: RollbackHandle) -> RollbackProgress:
        run_id = handle.ids.get("run_id")
        if not run_id:
            found = await self._find_run(config, since=handle.started_at, key=handle.idempotency_key)
            if found is None:
                return RollbackProgress(RollbackState.PENDING, "Waiting for GitHub to start the rollback workflow run.")
            run_id = found["run_id"]

        def read() -> dict[str, Any]:
            run = self.gh.get_repo(config.repo, lazy=True).get_workflow_run(int(run_id))
            return {"status": run.status, "conclusion": run.conclusion, "html_url": run.html_url}

        run = await self._read(read, f"get workflow run {run_id}")
        state, detail = _run_state(run_id, run["status"], run["conclusion"])
        ids = {"run_id": run_id, "html_url": run["html_url"] or ""}
        if handle.ids.get("deployment_id"):
            ids["deployment_id"] = handle.ids["deployment_id"]
            if state.terminal:
                await self._mirror(config, int(handle.ids["deployment_id"]), _MIRROR[state], run["html_url"], detail)
        raw = run["status"] if run["conclusion"] is None else f"{run['status']}/{run['conclusion']}"
        return RollbackProgress(state, detail, ids, raw)

    # -- helpers: runs and deployments

    async def _find_run(self, config: GithubActionsConfig, *, since: datetime, key: str | None) -> dict[str, str] | None:
        """The dispatched run: by the idempotency key in its title, else the first
        ``workflow_dispatch`` run on ``ref`` created since ``since``."""
        created = f">={(utc(since) - CLOCK_SKEW).strftime('%Y-%m-%dT%H:%M:%SZ')}"

        def read() -> list[dict[str, Any]]:
            workflow = self.gh.get_repo(config.repo, lazy=True).get_workflow(config.workflow)
            runs = workflow.get_runs(event="workflow_dispatch", created=created)
            return [
                {
                    "id": r.id, "title": r.display_title or r.name or "", "branch": r.head_branch,
                    "created_at": r.created_at, "url": r.url, "html_url": r.html_url,
                }
                for r in islice(runs, 30)
            ]

        runs = await self._read(read, f"list runs of {config.workflow}")
        match = next((r for r in runs if key and key in r["title"]), None)
        if match is None:
            on_ref = sorted((r for r in runs if r["branch"] == config.ref), key=lambda r: r["created_at"])
            match = on_ref[0] if on_ref else None
        if match is None:
            return None
        return {"run_id": str(match["id"]), "run_url": match["url"], "html_url": match["html_url"]}

    async def _find_recorded_deployment(self, config: GithubActionsConfig, key: str | None) -> str | None:
        if not key:
            return None

        def read() -> str | None:
            repo = self.gh.get_repo(config.repo, lazy=True)
            for deployment in islice(repo.get_deployments(environment=config.environment), 20):
                payload = deployment.payload if isinstance(deployment.payload, Mapping) else {}
                if (payload.get("firebreak") or {}).get("idempotency_key") == key:
                    return str(deployment.id)
            return None

        return await self._read(read, "list deployments")

    async def _record_deployment(
        self, config: GithubActionsConfig, plan: RollbackPlan, ids: Mapping[str, str], key: str | None
    ) -> str | None:
        """Best effort: the rollback is started already; a failure here is logged, not raised."""
        sha = plan.target.commit_sha
        if not sha:
            return None

        def create() -> str:
            repo = self.gh.get_repo(config.repo, lazy=True)
            deployment = repo.create_deployment(
                sha,
                task="deploy",
                auto_merge=False,
                required_contexts=[],
                payload={
                    "firebreak": {
                        "idempotency_key": key,
                        "rollback_of": plan.current.id,
                        "target_deployment_id": plan.target.id,
                        "run_id": ids.get("run_id"),
                    }
                },
                environment=config.environment,
                description=f"Rollback to {sha[:7]} (from {plan.current.short_sha or plan.current.id}) by Firebreak",
            )
            deployment.create_status(
                "in_progress",
                target_url=ids.get("html_url") or "",
                description="Rollback workflow running",
                environment=config.environment,
            )
            return str(deployment.id)

        try:
            return await asyncio.to_thread(create)
        except Exception as exc:  # noqa: BLE001 - bookkeeping must not fail a started rollback
            log.warning("GitHub: could not record the rollback as a deployment: %s", self._describe(exc))
            return None

    async def _mirror(self, config: GithubActionsConfig, deployment_id: int, state: str, run_url: str | None, detail: str) -> None:
        """Write the run's outcome as the deployment's status, once."""

        def latest_state() -> str | None:
            deployment = self.gh.get_repo(config.repo, lazy=True).get_deployment(deployment_id)
            latest = next(iter(deployment.get_statuses()), None)
            return latest.state if latest else None

        try:
            if await self._read(latest_state, f"get deployment {deployment_id}") == state:
                return

            def create() -> None:
                deployment = self.gh.get_repo(config.repo, lazy=True).get_deployment(deployment_id)
                deployment.create_status(state, target_url=run_url or "", description=detail[:140], auto_inactive=True)

            await asyncio.to_thread(create)
        except Exception as exc:  # noqa: BLE001 - the rollback's outcome stands even if this fails
            log.warning("GitHub: could not mirror %s into deployment %s: %s", state, deployment_id, self._describe(exc))

    # -- helpers: calling PyGithub

    async def _read(self, operation: Callable[[], T], describe: str) -> T:
        async def once() -> T:
            try:
                return await asyncio.to_thread(operation)
            except GithubException as exc:
                if _is_transient(exc):
                    raise TransientError(f"HTTP {exc.status}", retry_after=_retry_after(exc), status=exc.status) from None
                raise self._rejected(exc) from None
            except requests.exceptions.RequestException as exc:
                raise TransientError(self._describe(exc)) from None

        return await call_with_retries(once, policy=self.policy, provider=self.display_name, describe=describe)

    async def _write(self, operation: Callable[[], T], describe: str) -> T:
        try:
            return await asyncio.to_thread(operation)
        except GithubException as exc:
            if exc.status == 429 or (exc.status == 403 and _is_transient(exc)):
                raise ProviderUnavailable(
                    f"GitHub is rate limiting us ({describe}); nothing was changed.",
                    provider=self.display_name,
                    retry_after=_retry_after(exc),
                ) from None
            if exc.status >= 500:
                raise AmbiguousTriggerError(
                    f"GitHub answered HTTP {exc.status} to {describe}: the workflow may have been dispatched.",
                    provider=self.display_name,
                ) from None
            raise self._rejected(exc) from None
        except requests.exceptions.RequestException as exc:
            if _never_sent(exc):
                raise ProviderUnavailable(
                    f"GitHub could not be reached ({describe}: {self._describe(exc)}); nothing was changed.",
                    provider=self.display_name,
                ) from None
            raise AmbiguousTriggerError(
                f"GitHub did not answer {describe} ({self._describe(exc)}): the workflow may have been dispatched.",
                provider=self.display_name,
            ) from None

    def _rejected(self, exc: GithubException) -> ProviderRejected:
        data = exc.data if isinstance(exc.data, Mapping) else {}
        message = data.get("message") or exc.message
        message = self._scrub(str(message)) if message else None
        return ProviderRejected(
            rejection_message("GitHub", exc.status, message, token_env="GITHUB_TOKEN"),
            exc.status,
            provider=self.display_name,
            provider_message=message,
        )

    def _describe(self, exc: BaseException) -> str:
        return self._scrub(f"{type(exc).__name__}: {exc}")

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text


# --------------------------------------------------------------------------- mapping


def _deployment_row(deployment: Any, latest: Any) -> dict[str, Any]:
    """Plain data read inside the worker thread (PyGithub objects may load lazily)."""
    creator = deployment.creator
    return {
        "id": str(deployment.id),
        "sha": deployment.sha,
        "ref": deployment.ref,
        "task": deployment.task,
        "environment": deployment.environment,
        "description": deployment.description,
        "payload": deployment.payload,
        "created_at": utc(deployment.created_at),
        "creator": creator.login if creator else None,
        "state": latest.state if latest else None,
        "state_at": utc(latest.created_at) if latest else None,
        "environment_url": (latest.environment_url or None) if latest else None,
        "log_url": (latest.target_url or None) if latest else None,
    }


def _deploy(row: Mapping[str, Any], live_id: str | None) -> Deploy:
    live = row["id"] == live_id
    state = row["state"] or "no status"
    return Deploy(
        id=row["id"],
        status=state,
        is_live=live,
        can_be_target=not live and row["state"] in WAS_LIVE_STATES,
        created_at=row["created_at"],
        commit_sha=row["sha"],
        commit_message=None,  # a deployment carries a description, not the commit message
        deployed_by=row["creator"],
        description=row["description"] or None,
        url=row["environment_url"] or row["log_url"],
        raw={k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()},
    )


def _run_state(run_id: str, status: str | None, conclusion: str | None) -> tuple[RollbackState, str]:
    if status != "completed":
        if status == "in_progress":
            return RollbackState.IN_PROGRESS, f"Rollback workflow run {run_id} is running."
        return RollbackState.PENDING, f"Rollback workflow run {run_id} is {status or 'queued'}."
    if conclusion == "success":
        return RollbackState.LIVE, f"Rollback workflow run {run_id} succeeded."
    if conclusion in ("cancelled", "skipped", "stale"):
        return RollbackState.CANCELED, f"Rollback workflow run {run_id} was {conclusion}."
    return RollbackState.FAILED, f"Rollback workflow run {run_id} ended: {conclusion}."


def _is_transient(exc: GithubException) -> bool:
    if exc.status == 429 or exc.status >= 500:
        return True
    if exc.status == 403:  # GitHub signals (secondary) rate limits with 403
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        message = str((exc.data or {}).get("message", "")) if isinstance(exc.data, Mapping) else ""
        return "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower()
    return False


def _retry_after(exc: GithubException) -> float | None:
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    return parse_retry_after(headers.get("retry-after"))


def _never_sent(exc: BaseException) -> bool:
    """A refused or timed-out connection: the request never reached GitHub."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        reason = getattr(current, "reason", None)
        args = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        current = reason if isinstance(reason, BaseException) else (args[0] if args else current.__cause__ or current.__context__)
    return False
