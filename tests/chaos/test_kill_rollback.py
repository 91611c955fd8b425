"""``kill -9`` while a rollback is being polled: the new process finishes it, exactly once.

``/rollback api`` → preview → Confirm (Ava owns the service; no approvals) → the
Render fake accepts the rollback, whose deploy then needs several reads to go
live. Once the first poll has been recorded, the next poll is held at the fake
and the bot is killed with that request in flight. A new process on the same
database takes the follow job over when the dead one's lease runs out, follows
the rollback to live and runs the health check. The trigger reached Render once;
every step is in the database, on the timeline and in the Slack thread once.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import select

from bot.emulator.providers import Fault
from bot.incidents.models import Incident
from bot.rollback.models import Rollback, RollbackStatus, RollbackStep
from bot.slack.ids import ActionId
from tests.chaos.conftest import AVA, GENERAL, wait_for

pytestmark = pytest.mark.timeout(90)

POLL = re.compile(r"/deploys/dep-")


async def _rollback(world) -> Rollback | None:
    found = await world.query(select(Rollback).order_by(Rollback.id.desc()).limit(1))
    return found[0] if found else None


async def test_rollback_polled_at_kill_completes_once_after_restart(world):
    seeded = next(iter(world.render.seeded.values()))
    world.render.rollback_steps = ("update_in_progress",) * 4 + ("live",)  # 5 reads, polled every 0.5 s
    await world.start_bot()

    reply = await world.run("api checkout 500s since the last deploy", command="/rollback")
    assert "Rollback preview RB-1" in reply, reply
    preview = next(m for m in world.slack.messages(GENERAL, top_level=True)
                   if (m.text or "").startswith("Rollback RB-1"))
    confirmed = await world.click(user=AVA, channel=GENERAL, message_ts=preview.ts,
                                  action_id=ActionId.ROLLBACK_CONFIRM)
    assert confirmed.status == 200

    def triggers():
        return world.render.api_requests("POST", r"/rollback$")

    def polls():
        return [r for r in world.render.api_requests("GET") if POLL.search(r.path)]

    await wait_for(triggers, what="the rollback trigger at Render")

    async def polled_once():
        rollback = await _rollback(world)
        return polls() and rollback.provider_status == "update_in_progress"

    await wait_for(polled_once, what="a first poll recorded")
    world.render.faults.add(Fault.SLOW, method="GET", path=POLL.pattern, delay=1.0)
    seen = len(polls())
    await wait_for(lambda: len(polls()) > seen, what="the next poll in flight")
    world.kill()  # with a poll request in flight
    rollback = await _rollback(world)
    assert rollback.state == RollbackStatus.ROLLING_BACK, rollback.state

    await world.start_bot()

    async def finished():
        found = await _rollback(world)
        return found if not found.active else None

    rollback = await wait_for(finished, what="the rollback to finish in the new process")
    assert rollback.state == RollbackStatus.SUCCEEDED, (rollback.state, rollback.outcome)
    assert rollback.health_samples >= 1 and rollback.live_at is not None
    assert world.render.is_healthy(seeded.key)

    # Asked once at Render, although the process that asked is gone.
    assert len(triggers()) == 1
    # Every step once, in the database and on the timeline, in the same order.
    steps = await world.query(select(RollbackStep).where(RollbackStep.rollback_id == rollback.id)
                              .order_by(RollbackStep.seq))
    names = [s.step for s in steps]
    assert [n for n, count in Counter(names).items() if count > 1] == [], names
    assert names[:3] == ["requested", "confirmed", "triggered"], names
    assert names[-2:] == ["live", "succeeded"], names
    assert "provider_state" in names
    number = await _incident_number(world, rollback)  # the P2 incident Confirm opened
    events = [e for e in await world.timeline(number) if e.kind == "rollback"]
    assert [e.data["step"] for e in events] == names

    # The thread under the preview says each step once (posted by whichever process was up).
    await wait_for(lambda: any("succeeded" in (m.text or "") for m in _thread(world, preview.ts)),
                   what="the outcome in the preview's thread")
    lines = [m.text for m in _thread(world, preview.ts)]
    assert len(lines) == len(set(lines)), lines


async def _incident_number(world, rollback: Rollback) -> int:
    return (await world.query(select(Incident.number).where(Incident.id == rollback.incident_id)))[0]


def _thread(world, parent_ts: str):
    return [m for m in world.slack.messages(GENERAL, thread_ts=parent_ts) if m.ts != parent_ts]
