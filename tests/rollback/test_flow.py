"""The trigger job after a crash, with the in-memory FakeProvider (no HTTP): a recorded
attempt whose outcome is unknown is resolved by reading the provider, never by resending."""

from __future__ import annotations

import pytest

from bot.db.engine import transaction
from bot.providers.base import RollbackPlan
from bot.providers.fake import FakeProvider, TriggerFailure
from bot.rollback import service as rollbacks
from bot.rollback.install import flow_of
from bot.rollback.models import RollbackStatus
from tests.rollback.conftest import AVA, start_world, stop_world

ZERO = {"P0": 0, "P1": 0, "P2": 0, "P3": 0}


@pytest.fixture
async def w(database_url, tmp_path):
    world = await start_world(database_url, tmp_path, approvals=ZERO)
    fake = FakeProvider(clock=world.clock)
    flow_of(world.rt).provider_factory = lambda playbook: fake
    world.fake_provider = fake  # type: ignore[attr-defined]
    for deploy in world.fakes.render.services["srv-d0fakeapi0001"].deploys:
        deploy.bad = False  # the health URL (Render fake's) answers 200
    try:
        yield world
    finally:
        await stop_world(world)


async def _confirm_and_crash_after_recording_the_attempt(w) -> tuple:
    """Confirm, then do what the trigger job does before the request — and die."""
    await w.command("api")
    playbook = w.rt.playbooks.services["api"]
    async with transaction(w.rt.sessions) as session:
        rollback = await rollbacks.get_rollback(session=session, rollback_id=1, for_update=True)
        await rollbacks.confirm(session=session, rollback=rollback, playbook=playbook, actor=AVA,
                                is_owner=True, now=w.clock.now())
    async with transaction(w.rt.sessions) as session:
        rollback = await rollbacks.get_rollback(session=session, rollback_id=1, for_update=True)
        plan = RollbackPlan.from_dict(rollback.plan)
        assert await rollbacks.claim_trigger_attempt(session=session, rollback=rollback, plan=plan,
                                                     now=w.clock.now())
    return playbook, plan, rollback


async def test_crash_before_the_request_left_fails_without_resending(w):
    fake = w.fake_provider
    await _confirm_and_crash_after_recording_the_attempt(w)
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.FAILED and rollback.failure_reason == "ambiguous"
    assert fake.trigger_calls == 0 and fake.find_calls == 3
    assert "NOT sent again" in rollback.outcome


async def test_crash_after_the_request_arrived_follows_the_rollback(w):
    fake = w.fake_provider
    playbook, plan, rollback = await _confirm_and_crash_after_recording_the_attempt(w)
    await fake.trigger(playbook.provider, plan, idempotency_key=rollback.idempotency_key)  # it got there
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.SUCCEEDED, rollback.outcome
    assert fake.trigger_calls == 1 and fake.find_calls == 1
    steps = await w.steps(rollback.id)
    assert next(s for s in steps if s.step == "triggered").data["found_after_ambiguity"] is True


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_ambiguous_not_started_is_not_resent(w):
    fake = w.fake_provider
    fake.fail_next_trigger(TriggerFailure.AMBIGUOUS_NOT_STARTED)
    await w.command("api")
    from bot.slack.ids import ActionId

    await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.FAILED and rollback.failure_reason == "ambiguous"
    assert fake.trigger_calls == 1 and not fake.rollbacks
