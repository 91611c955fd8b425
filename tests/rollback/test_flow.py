"""The trigger after a crash: Confirm is clicked, the trigger attempt is recorded, and the
process dies before or after the request reached the provider (the Render fake, over HTTP).
A new process on the same database takes the trigger job over when the dead one's lease
runs out, and settles the attempt by reading the provider: it follows a rollback that
started, and never sends one twice.

The crash is a ``ProcessDied`` (a BaseException: no handler runs, nothing more is committed)
raised by the dead process's HTTP session at the edge, as its request to Render is about to
leave or once Render's answer has arrived. (A trigger answer lost on the wire, and a reset
connection, are in test_faults.py.)
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp
from sqlalchemy import select

from bot.jobs.models import Job, JobState
from bot.rollback.models import RollbackStatus
from bot.slack.ids import ActionId
from tests.rollback.conftest import AVA, restart_world, start_world, stop_world
from tests.support.crash import Deaths

ZERO = {"P0": 0, "P1": 0, "P2": 0, "P3": 0}
RENDER_SERVICE = "srv-d0fakeapi0001"


def dies_at_the_trigger(when: str) -> tuple[aiohttp.TraceConfig, Deaths]:
    """An aiohttp trace that kills the process at the first rollback request to Render:
    ``before`` it leaves, or ``after`` Render answered it."""
    deaths = Deaths()
    trace = aiohttp.TraceConfig()

    def is_trigger(params) -> bool:
        return params.method == "POST" and params.url.path.endswith("/rollback") and not deaths

    async def on_start(_session, _context, params) -> None:
        if when == "before" and is_trigger(params):
            deaths.die("before the trigger left")

    async def on_end(_session, _context, params) -> None:
        if when == "after" and is_trigger(params):
            deaths.die(f"after Render answered the trigger ({params.response.status})")

    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    return trace, deaths


async def _confirm_and_die(database_url, tmp_path, when: str):
    trace, deaths = dies_at_the_trigger(when)
    w = await start_world(database_url, tmp_path, approvals=ZERO,
                          http=aiohttp.ClientSession(trace_configs=[trace]))
    for deploy in w.fakes.render.services[RENDER_SERVICE].deploys:
        deploy.bad = False  # the health URL answers 200 whatever is live
    await w.command("api")
    sent = await w.bed.click(user=AVA, channel="C0GENERAL", message_ts=w.preview().ts,
                             action_id=ActionId.ROLLBACK_CONFIRM)  # an owner, through the group
    assert sent.status == 200
    await w.bed.wait_for(lambda: deaths)
    await deaths.bury()
    rollback = await w.rollback()
    assert rollback.state == RollbackStatus.TRIGGERING and rollback.trigger_attempted_at is not None
    assert rollback.confirmed_by == AVA
    w = await restart_world(w)  # the dead process's trigger job is still leased to it
    [job] = [j for j in await _jobs(w) if j.kind == "rollback.trigger"]
    assert job.state == JobState.RUNNING
    w.clock.advance(timedelta(seconds=w.rt.settings.worker_lease_seconds + 1))
    return w


async def _jobs(w) -> list[Job]:
    async with w.rt.sessions() as session:
        return list((await session.execute(select(Job))).scalars())


async def test_a_crash_before_the_request_left_fails_without_sending_it(database_url, tmp_path):
    w = await _confirm_and_die(database_url, tmp_path, "before")
    try:
        reads_before = len(w.fakes.render.api_requests("GET", r"/deploys$"))
        rollback = await w.drive()
        assert rollback.state == RollbackStatus.FAILED and rollback.failure_reason == "ambiguous"
        assert "NOT sent again" in rollback.outcome
        assert w.trigger_requests("api") == []  # never sent, and not sent by the new process either
        assert len(w.fakes.render.api_requests("GET", r"/deploys$")) - reads_before == 3  # read three times
        assert len(w.fakes.render.services[RENDER_SERVICE].deploys) == 4  # nothing was created
    finally:
        await stop_world(w)


async def test_a_crash_after_the_request_arrived_follows_the_rollback(database_url, tmp_path):
    w = await _confirm_and_die(database_url, tmp_path, "after")
    try:
        rollback = await w.drive()
        assert rollback.state == RollbackStatus.SUCCEEDED, rollback.outcome
        assert len(w.trigger_requests("api")) == 1  # Render got it once, from the dead process
        steps = await w.steps(rollback.id)
        triggered = [s for s in steps if s.step == "triggered"]
        assert len(triggered) == 1 and triggered[0].data["found_after_ambiguity"] is True
        await w.bed.settle()
        assert any("succeeded" in line for line in w.thread())  # the same preview thread, continued
    finally:
        await stop_world(w)
