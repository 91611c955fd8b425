"""The in-memory FakeProvider used by tests of the rollback flow."""

from __future__ import annotations

import pytest

from bot.playbooks.models import HerokuConfig, RenderConfig
from bot.providers.base import (
    AmbiguousTriggerError,
    InvalidTarget,
    ProviderRejected,
    ProviderUnavailable,
    RollbackProvider,
    RollbackState,
)
from bot.providers.fake import FakeProvider, TriggerFailure, default_history

CONFIG = RenderConfig(type="render", service_id="srv-api")


@pytest.fixture
def fake(clock) -> FakeProvider:
    return FakeProvider(clock=clock)


def test_satisfies_the_protocol(fake):
    assert isinstance(fake, RollbackProvider)


async def test_plan_skips_the_failed_build(fake):
    plan = await fake.plan(CONFIG)
    assert (plan.current.id, plan.target.id) == ("fake-dep-4", "fake-dep-2")
    with pytest.raises(InvalidTarget):
        await fake.plan(CONFIG, to="fake-dep-3")


async def test_scripted_progress_to_live_updates_history(fake):
    fake.script_progress(RollbackState.PENDING, RollbackState.IN_PROGRESS, RollbackState.LIVE)
    handle = await fake.trigger(CONFIG, await fake.plan(CONFIG), idempotency_key="k")
    states = [(await fake.poll(CONFIG, handle)).state for _ in range(4)]
    assert states == [RollbackState.PENDING, RollbackState.IN_PROGRESS, RollbackState.LIVE, RollbackState.LIVE]
    deploys = await fake.list_deploys(CONFIG)
    assert deploys[0].id == handle.ids["deploy_id"] and deploys[0].is_live
    assert deploys[0].commit_sha == deploys[3].commit_sha  # the target's commit
    assert not deploys[1].is_live and deploys[1].can_be_target
    assert fake.trigger_calls == 1 and fake.poll_calls == 4


async def test_histories_are_per_service(fake, clock):
    other = HerokuConfig(type="heroku", app="web")
    fake.set_history(other, default_history(clock.now())[2:])  # no live deploy
    with pytest.raises(InvalidTarget, match="no live deploy"):
        await fake.plan(other)
    assert (await fake.plan(CONFIG)).target.id == "fake-dep-2"


async def test_rejected_trigger(fake):
    fake.fail_next_trigger(TriggerFailure.REJECT, status=409, message="deploy in progress")
    with pytest.raises(ProviderRejected) as info:
        await fake.trigger(CONFIG, await fake.plan(CONFIG), idempotency_key="k")
    assert info.value.status == 409 and "deploy in progress" in str(info.value)
    assert fake.rollbacks == []


async def test_ambiguous_but_started_is_found(fake, clock):
    plan = await fake.plan(CONFIG)
    fake.fail_next_trigger(TriggerFailure.AMBIGUOUS_STARTED)
    with pytest.raises(AmbiguousTriggerError):
        await fake.trigger(CONFIG, plan, idempotency_key="k")
    found = await fake.find_triggered(CONFIG, plan, since=clock.now())
    assert found is not None and found.target_id == plan.target.id
    assert fake.trigger_calls == 1 and len(fake.rollbacks) == 1
    assert (await fake.poll(CONFIG, found)).state is RollbackState.IN_PROGRESS


async def test_ambiguous_not_started_and_unavailable(fake, clock):
    plan = await fake.plan(CONFIG)
    fake.fail_next_trigger(TriggerFailure.AMBIGUOUS_NOT_STARTED)
    with pytest.raises(AmbiguousTriggerError):
        await fake.trigger(CONFIG, plan, idempotency_key="k")
    assert await fake.find_triggered(CONFIG, plan, since=clock.now()) is None
    fake.fail_next_trigger(TriggerFailure.UNAVAILABLE)
    with pytest.raises(ProviderUnavailable):
        await fake.trigger(CONFIG, plan, idempotency_key="k")
    handle = await fake.trigger(CONFIG, plan, idempotency_key="k")  # the script is used up
    assert handle.ids["deploy_id"] and fake.trigger_calls == 3


async def test_failed_rollback(fake):
    fake.script_progress(RollbackState.IN_PROGRESS, RollbackState.FAILED)
    handle = await fake.trigger(CONFIG, await fake.plan(CONFIG), idempotency_key="k")
    await fake.poll(CONFIG, handle)
    progress = await fake.poll(CONFIG, handle)
    assert progress.state is RollbackState.FAILED and progress.terminal
    assert (await fake.list_deploys(CONFIG))[1].is_live  # the bad deploy is still live
