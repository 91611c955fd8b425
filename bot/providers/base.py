"""The rollback-provider interface: deploys, plans, handles, progress and errors.

Every hosting provider (Render, Railway, Vercel, Heroku, GitHub Actions) is
reached through one small, typed protocol, :class:`RollbackProvider`:

1. ``list_deploys`` — recent deploys, newest first, with the live one marked;
2. ``plan`` — the current live deploy and the target to roll back to;
3. ``trigger`` — start the rollback (NOT idempotent: called once);
4. ``find_triggered`` — after an :class:`AmbiguousTriggerError`, read the
   provider's state again to learn whether the rollback was started anyway;
5. ``poll`` — follow the rollback until it is live, failed or canceled.

Everything a caller stores (:class:`RollbackPlan`, :class:`RollbackHandle`,
:class:`RollbackProgress`) round-trips through JSON with ``to_dict`` /
``from_dict`` so that a rollback can be resumed after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from bot.clock import utc

if TYPE_CHECKING:
    from bot.playbooks.models import (
        GithubActionsConfig,
        HerokuConfig,
        RailwayConfig,
        RenderConfig,
        VercelConfig,
    )

    AnyProviderConfig = RenderConfig | RailwayConfig | VercelConfig | HerokuConfig | GithubActionsConfig

# How far a provider's clock may disagree with ours when we compare its
# timestamps with the moment we triggered a rollback.
CLOCK_SKEW = timedelta(minutes=2)


# --------------------------------------------------------------------------- errors


class ProviderError(Exception):
    """Base class: ``str(exc)`` is worded for a Slack message and never holds a secret."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider


class ProviderRejected(ProviderError):
    """The provider refused the request (401/403/404/409/422, plan limits...).

    Retrying will not help. ``provider_message`` is the provider's own text,
    ``status`` the HTTP status when there was one.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        provider: str | None = None,
        provider_message: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.status = status
        self.provider_message = provider_message
        self.code = code


class InvalidTarget(ProviderRejected):
    """``/rollback <service> to <id>`` named a deploy that cannot be rolled back to,
    or there is nothing to roll back to at all."""


class ProviderNotConfigured(ProviderRejected):
    """The provider's API token (or another setting) is missing."""


class ProviderUnavailable(ProviderError):
    """A transient failure that outlasted the retries (429, 5xx, network errors).

    For a non-idempotent call it is only raised when the request surely had no
    effect (refused connection, 429): the caller may try again later.
    """

    def __init__(self, message: str, *, provider: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class AmbiguousTriggerError(ProviderError):
    """The rollback request may or may not have been applied (timeout, reset, 5xx).

    The caller must call ``find_triggered`` before anything else, and must not
    trigger again unless that finds nothing.
    """


# --------------------------------------------------------------------------- data


def _iso(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat()


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else utc(datetime.fromisoformat(value))


@dataclass(frozen=True, slots=True)
class Deploy:
    """One deploy (Render deploy, Railway deployment, Vercel deployment, Heroku
    release, GitHub deployment) as the provider reports it."""

    id: str
    status: str  # the provider's raw status ("deactivated", "SUCCESS", "READY", "succeeded", "inactive"...)
    is_live: bool
    can_be_target: bool  # was live before and can be rolled back to
    created_at: datetime  # aware UTC
    commit_sha: str | None = None
    commit_message: str | None = None
    deployed_by: str | None = None
    description: str | None = None  # e.g. Heroku "Deploy 1a2b3c4", Render trigger
    url: str | None = None
    image: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", utc(self.created_at))

    @property
    def short_sha(self) -> str | None:
        return self.commit_sha[:7] if self.commit_sha else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "is_live": self.is_live,
            "can_be_target": self.can_be_target,
            "created_at": _iso(self.created_at),
            "commit_sha": self.commit_sha,
            "commit_message": self.commit_message,
            "deployed_by": self.deployed_by,
            "description": self.description,
            "url": self.url,
            "image": self.image,
            "raw": dict(self.raw),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deploy:
        created = _from_iso(data["created_at"])
        assert created is not None
        return cls(
            id=data["id"],
            status=data["status"],
            is_live=bool(data["is_live"]),
            can_be_target=bool(data["can_be_target"]),
            created_at=created,
            commit_sha=data.get("commit_sha"),
            commit_message=data.get("commit_message"),
            deployed_by=data.get("deployed_by"),
            description=data.get("description"),
            url=data.get("url"),
            image=data.get("image"),
            raw=data.get("raw") or {},
        )


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """What a rollback would do: ``current`` (live now) → ``target``."""

    provider: str
    current: Deploy
    target: Deploy
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "current": self.current.to_dict(),
            "target": self.target.to_dict(),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RollbackPlan:
        return cls(
            provider=data["provider"],
            current=Deploy.from_dict(data["current"]),
            target=Deploy.from_dict(data["target"]),
            notes=tuple(data.get("notes", ())),
        )


@dataclass(frozen=True, slots=True)
class RollbackHandle:
    """What ``trigger`` (or ``find_triggered``) returned: enough to follow the rollback.

    ``ids`` holds the provider's identifiers, by provider:

    - render: ``deploy_id`` (the new deploy created by the rollback)
    - railway: ``previous_id`` (the deployment live before); the new deployment is
      found by ``poll`` and reported in ``RollbackProgress.provider_ids``
    - vercel: ``deployment_id`` (the target), ``from_deployment_id``
    - heroku: ``release_id``, ``version`` (the new release)
    - github-actions: ``run_id``, ``run_url``, ``html_url``, ``deployment_id`` (when recorded)
    """

    provider: str
    target_id: str
    started_at: datetime
    ids: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "started_at", utc(self.started_at))
        object.__setattr__(self, "ids", {k: str(v) for k, v in self.ids.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "target_id": self.target_id,
            "started_at": _iso(self.started_at),
            "ids": dict(self.ids),
            "idempotency_key": self.idempotency_key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RollbackHandle:
        started = _from_iso(data["started_at"])
        assert started is not None
        return cls(
            provider=data["provider"],
            target_id=data["target_id"],
            started_at=started,
            ids=dict(data.get("ids") or {}),
            idempotency_key=data.get("idempotency_key"),
        )


class RollbackState(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    LIVE = "live"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (RollbackState.LIVE, RollbackState.FAILED, RollbackState.CANCELED)


@dataclass(frozen=True, slots=True)
class RollbackProgress:
    state: RollbackState
    detail: str  # human-readable, for the Slack thread and the timeline
    provider_ids: Mapping[str, str] = field(default_factory=dict)
    raw_status: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "detail": self.detail,
            "provider_ids": dict(self.provider_ids),
            "raw_status": self.raw_status,
            "terminal": self.terminal,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RollbackProgress:
        return cls(
            state=RollbackState(data["state"]),
            detail=data["detail"],
            provider_ids=dict(data.get("provider_ids") or {}),
            raw_status=data.get("raw_status"),
        )


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class RollbackProvider(Protocol):
    type: ClassVar[str]  # the playbook's provider.type
    display_name: ClassVar[str]
    # The key in the progress' provider_ids of the NEW deploy a rollback makes, for a provider
    # that puts the target back live by redeploying it under a new id (None: it reuses the target).
    redeploy_id_key: ClassVar[str | None]

    @property
    def notes(self) -> tuple[str, ...]:
        """Caveats to show beside a rollback preview."""
        ...

    async def list_deploys(self, config: Any, *, limit: int = 20) -> list[Deploy]:
        """Recent deploys, newest first, the live one marked."""
        ...

    async def plan(self, config: Any, *, to: str | None = None,
                   skip: Mapping[str, str] | None = None) -> RollbackPlan:
        """Current live deploy → target (default: the newest deploy that was live
        before the current one, failed builds and the deploys in ``skip`` skipped —
        id → why, said in the plan's notes). Raises InvalidTarget."""
        ...

    async def trigger(
        self, config: Any, plan: RollbackPlan, *, idempotency_key: str, reason: str = ""
    ) -> RollbackHandle:
        """Start the rollback. Never retried blindly: raises AmbiguousTriggerError
        when the outcome is unknown."""
        ...

    async def find_triggered(
        self, config: Any, plan: RollbackPlan, *, since: datetime, idempotency_key: str | None = None
    ) -> RollbackHandle | None:
        """Read the provider's state to learn whether the rollback of ``plan``
        was started at or after ``since``."""
        ...

    async def poll(self, config: Any, handle: RollbackHandle) -> RollbackProgress:
        """Where the rollback is now."""
        ...


# --------------------------------------------------------------------------- shared logic


def service_label(config: Any) -> str:
    """How a playbook provider config is named in messages (and keyed in fakes)."""
    kind = getattr(config, "type", None)
    if kind in ("render", "railway"):
        return config.service_id
    if kind == "vercel":
        return config.project_id
    if kind == "heroku":
        return config.app
    if kind == "github-actions":
        return f"{config.repo}@{config.environment}"
    return str(getattr(config, "service_id", None) or getattr(config, "name", None) or config)


def choose_plan(
    provider: str,
    deploys: Sequence[Deploy],
    *,
    to: str | None,
    where: str,
    notes: tuple[str, ...] = (),
    skip: Mapping[str, str] | None = None,
) -> RollbackPlan:
    """Pick the live deploy and the rollback target from ``deploys`` (newest first).

    ``where`` names the service in messages ("Render service srv-abc"). The default
    target is never one of ``skip`` (deploy id → why, e.g. a deploy Firebreak rolled back
    from): like a failed build it is passed over, and a note says so. Named with ``to``,
    it is allowed (the caller warns).
    """
    live_at = next((i for i, d in enumerate(deploys) if d.is_live), None)
    if live_at is None:
        raise InvalidTarget(f"{where} has no live deploy right now: there is nothing to roll back.", provider=provider)
    current = deploys[live_at]
    if to is not None:
        target = next((d for d in deploys if d.id == to), None)
        if target is None:
            raise InvalidTarget(
                f"`{to}` is not one of the last {len(deploys)} deploys of {where}. "
                "Use `/rollback list` or pick an id from the provider's dashboard.",
                provider=provider,
            )
        if target.id == current.id:
            raise InvalidTarget(f"`{to}` is already live on {where}: nothing to roll back to.", provider=provider)
        if not target.can_be_target:
            raise InvalidTarget(
                f"`{to}` cannot be a rollback target: its status is `{target.status}` "
                "(only a deploy that was live before can be restored).",
                provider=provider,
            )
        return RollbackPlan(provider, current, target, notes)
    skip = skip or {}
    skipped: list[str] = []
    target = None
    for deploy in deploys[live_at + 1 :]:
        if not deploy.can_be_target:
            continue
        if deploy.id in skip:
            skipped.append(f"`{deploy.id}` was skipped: {skip[deploy.id]}. Name it with `to {deploy.id}` "
                           "to bring it back (another owner must approve).")
            continue
        target = deploy
        break
    if target is None:
        raise InvalidTarget(
            f"{where} has no earlier deploy that was live before `{current.id}`: nothing to roll back to."
            + "".join(f" {note}" for note in skipped),
            provider=provider,
        )
    return RollbackPlan(provider, current, target, (*skipped, *notes))


def created_after_trigger(created_at: datetime, *, since: datetime, current: Deploy) -> bool:
    """Whether a deploy the provider created at ``created_at`` can be the one our
    trigger (at ``since``, our clock) started: newer than the deploy that was live,
    and not older than ``since`` minus the tolerated clock skew."""
    return created_at > current.created_at and created_at >= utc(since) - CLOCK_SKEW
