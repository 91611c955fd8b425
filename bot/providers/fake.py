"""An in-memory rollback provider for tests of the rollback flow (no HTTP at all),
in the spirit of Libcloud's dummy drivers.

    fake = FakeProvider(clock=clock)                     # seeded: live bad, failed, good, good
    fake.script_progress(RollbackState.IN_PROGRESS, RollbackState.LIVE)
    fake.fail_next_trigger(TriggerFailure.AMBIGUOUS_STARTED)
    plan = await fake.plan(config)
    ...
    assert fake.trigger_calls == 1 and len(fake.rollbacks) == 1

It works with any playbook provider config (histories are kept per
:func:`bot.providers.base.service_label`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from bot.clock import Clock, SystemClock, utc
from bot.providers.base import (
    CLOCK_SKEW,
    AmbiguousTriggerError,
    Deploy,
    ProviderRejected,
    ProviderUnavailable,
    RollbackHandle,
    RollbackPlan,
    RollbackProgress,
    RollbackState,
    choose_plan,
    service_label,
)


class TriggerFailure(StrEnum):
    REJECT = "reject"  # ProviderRejected(message, status); nothing started
    AMBIGUOUS_STARTED = "ambiguous_started"  # the rollback starts, then AmbiguousTriggerError
    AMBIGUOUS_NOT_STARTED = "ambiguous_not_started"  # AmbiguousTriggerError; nothing started
    UNAVAILABLE = "unavailable"  # ProviderUnavailable; nothing started


@dataclass(slots=True)
class FakeRollback:
    key: str  # service label
    handle: RollbackHandle
    plan: RollbackPlan
    new_deploy_id: str
    script: list[RollbackState]
    polls: int = 0
    state: RollbackState = RollbackState.PENDING


@dataclass(slots=True)
class _ScriptedFailure:
    kind: TriggerFailure
    status: int | None
    message: str


def default_history(now: datetime) -> list[Deploy]:
    """Newest first: the live (bad) deploy, a failed build, the expected target, an older one."""
    return [
        Deploy("fake-dep-4", "live", True, False, now - timedelta(minutes=30), "d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3",
               "Refactor payment client", "alice"),
        Deploy("fake-dep-3", "build_failed", False, False, now - timedelta(hours=2), "c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2",
               "WIP: bump dependencies", "bob"),
        Deploy("fake-dep-2", "deactivated", False, True, now - timedelta(days=1), "b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1",
               "Add checkout retries", "carol"),
        Deploy("fake-dep-1", "deactivated", False, True, now - timedelta(days=3), "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0",
               "Initial release", "alice"),
    ]


class FakeProvider:
    type: ClassVar[str] = "fake"
    display_name: ClassVar[str] = "Fake provider"
    redeploy_id_key: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        history: Sequence[Deploy] | None = None,
        progress: Sequence[RollbackState] = (RollbackState.IN_PROGRESS, RollbackState.LIVE),
        notes: Sequence[str] = ("Fake provider: nothing real is rolled back.",),
    ) -> None:
        self.clock = clock or SystemClock()
        self._default = list(history) if history is not None else None
        self.histories: dict[str, list[Deploy]] = {}
        self.progress_script: list[RollbackState] = list(progress)
        self._notes = tuple(notes)
        self._failures: list[_ScriptedFailure] = []
        self._ids = itertools.count(100)
        self.rollbacks: list[FakeRollback] = []
        self.trigger_calls = 0
        self.find_calls = 0
        self.poll_calls = 0
        self.list_calls = 0

    # -- scripting

    def set_history(self, config_or_key: Any, deploys: Sequence[Deploy]) -> None:
        key = config_or_key if isinstance(config_or_key, str) else service_label(config_or_key)
        self.histories[key] = list(deploys)

    def history(self, config: Any) -> list[Deploy]:
        key = service_label(config)
        if key not in self.histories:
            self.histories[key] = list(self._default) if self._default is not None else default_history(self.clock.now())
        return self.histories[key]

    def script_progress(self, *states: RollbackState) -> None:
        """States answered by successive polls of each later rollback (the last one sticks)."""
        self.progress_script = list(states)

    def fail_next_trigger(self, kind: TriggerFailure, *, status: int | None = 409, message: str | None = None) -> None:
        text = message or {
            TriggerFailure.REJECT: "a deploy is already in progress",
            TriggerFailure.AMBIGUOUS_STARTED: "the connection was reset after the request was sent",
            TriggerFailure.AMBIGUOUS_NOT_STARTED: "the request timed out",
            TriggerFailure.UNAVAILABLE: "the provider is unavailable",
        }[kind]
        self._failures.append(_ScriptedFailure(kind, status, text))

    # -- the protocol

    @property
    def notes(self) -> tuple[str, ...]:
        return self._notes

    async def list_deploys(self, config: Any, *, limit: int = 20) -> list[Deploy]:
        self.list_calls += 1
        return list(self.history(config)[:limit])

    async def plan(self, config: Any, *, to: str | None = None,
                   skip: Mapping[str, str] | None = None) -> RollbackPlan:
        deploys = await self.list_deploys(config, limit=50)
        return choose_plan(self.type, deploys, to=to, where=f"fake service `{service_label(config)}`", notes=self.notes, skip=skip)

    async def trigger(self, config: Any, plan: RollbackPlan, *, idempotency_key: str, reason: str = "") -> RollbackHandle:
        self.trigger_calls += 1
        failure = self._failures.pop(0) if self._failures else None
        if failure is not None and failure.kind is TriggerFailure.REJECT:
            raise ProviderRejected(f"Fake provider refused the request: “{failure.message}”", failure.status,
                                   provider=self.display_name, provider_message=failure.message)
        if failure is not None and failure.kind is TriggerFailure.UNAVAILABLE:
            raise ProviderUnavailable(f"Fake provider is unavailable: {failure.message}", provider=self.display_name)
        if failure is not None and failure.kind is TriggerFailure.AMBIGUOUS_NOT_STARTED:
            raise AmbiguousTriggerError(f"Fake provider: {failure.message}", provider=self.display_name)
        handle = self._start(config, plan, idempotency_key)
        if failure is not None and failure.kind is TriggerFailure.AMBIGUOUS_STARTED:
            raise AmbiguousTriggerError(f"Fake provider: {failure.message}", provider=self.display_name)
        return handle

    async def find_triggered(
        self, config: Any, plan: RollbackPlan, *, since: datetime, idempotency_key: str | None = None
    ) -> RollbackHandle | None:
        self.find_calls += 1
        key = service_label(config)
        for rollback in reversed(self.rollbacks):
            if (
                rollback.key == key
                and rollback.plan.target.id == plan.target.id
                and rollback.handle.started_at >= utc(since) - CLOCK_SKEW
            ):
                return rollback.handle
        return None

    async def poll(self, config: Any, handle: RollbackHandle) -> RollbackProgress:
        self.poll_calls += 1
        rollback = next((r for r in self.rollbacks if r.new_deploy_id == handle.ids.get("deploy_id")), None)
        if rollback is None:
            raise ProviderRejected(f"Fake provider has no rollback `{handle.ids.get('deploy_id')}`", 404,
                                   provider=self.display_name)
        if not rollback.state.terminal:
            index = min(rollback.polls, len(rollback.script) - 1)
            rollback.polls += 1
            rollback.state = rollback.script[index]
            self._apply(config, rollback)
        return RollbackProgress(
            rollback.state,
            f"Fake rollback to `{rollback.plan.target.id}`: {rollback.state.value}.",
            {"deploy_id": rollback.new_deploy_id},
            rollback.state.value,
        )

    # -- internals

    def _start(self, config: Any, plan: RollbackPlan, idempotency_key: str) -> RollbackHandle:
        new_id = f"fake-dep-{next(self._ids)}"
        handle = RollbackHandle(self.type, plan.target.id, self.clock.now(), {"deploy_id": new_id}, idempotency_key)
        script = self.progress_script or [RollbackState.LIVE]
        self.rollbacks.append(FakeRollback(service_label(config), handle, plan, new_id, list(script)))
        history = self.history(config)
        history.insert(0, Deploy(new_id, "created", False, False, self.clock.now(), plan.target.commit_sha,
                                 plan.target.commit_message, "firebreak", description="rollback"))
        return handle

    def _apply(self, config: Any, rollback: FakeRollback) -> None:
        history = self.history(config)
        index = next((i for i, d in enumerate(history) if d.id == rollback.new_deploy_id), None)
        if index is None:
            return
        if rollback.state is RollbackState.LIVE:
            for i, deploy in enumerate(history):
                if deploy.is_live:
                    history[i] = replace(deploy, status="deactivated", is_live=False, can_be_target=True)
            history[index] = replace(history[index], status="live", is_live=True, can_be_target=False)
        else:
            status = {RollbackState.FAILED: "update_failed", RollbackState.CANCELED: "canceled"}.get(
                rollback.state, "update_in_progress"
            )
            history[index] = replace(history[index], status=status)
