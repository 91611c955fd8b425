"""Faults: retried polls, ambiguous triggers never re-sent, rejections in the provider's
words, failed health checks, and a process restart in the middle of a rollback."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from aiohttp import web

from bot.clock import ManualClock
from bot.emulator.providers import FakeProviderServer, Fault
from bot.jobs import service as jobs
from bot.rollback.models import RollbackStatus
from bot.slack.ids import ActionId
from tests.rollback.conftest import AVA, SERVICES, restart_world, start_world, stop_world

ZERO = {"P0": 0, "P1": 0, "P2": 0, "P3": 0}
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TRIGGER_PATH = {"api": r"/rollback$", "web": r"/rollback/", "billing": r"/releases$", "shop": r"/dispatches$",
                "worker": r"/graphql"}


@pytest.fixture
async def w(database_url, tmp_path):
    world = await start_world(database_url, tmp_path, approvals=ZERO)
    try:
        yield world
    finally:
        await stop_world(world)


def fault_on_trigger(w, service: str, kind: Fault, **kwargs) -> None:
    fake = w.fake(service)
    if service == "worker":  # GraphQL reads are POSTs too: let the pre-trigger read through first
        fake.faults.add(Fault.SLOW, method="POST", path=TRIGGER_PATH[service], delay=0)
    fake.faults.add(kind, method="POST", path=TRIGGER_PATH[service], **kwargs)


async def start(w, service: str, text: str = "", *, trigger_fault: tuple | None = None) -> None:
    """Preview, then Confirm; ``trigger_fault`` = (Fault, kwargs) for the trigger request."""
    await w.command(f"{service} {text}".strip())
    if trigger_fault:
        fault_on_trigger(w, service, trigger_fault[0], **trigger_fault[1])
    await w.click(AVA, ActionId.ROLLBACK_CONFIRM)


@sqlite_only
@pytest.mark.parametrize("service", ["api", "worker"])
async def test_polls_survive_429_and_500(w, service):
    await start(w, service)
    poll = r"/deploys/dep-" if service == "api" else r"/graphql"
    fake = w.fake(service)
    fake.faults.add(Fault.RATE_LIMIT, 2, retry_after=1, path=poll)  # retried inside the provider layer
    fake.faults.add(Fault.SERVER_ERROR, 5, path=poll)  # outlasts one poll's retries: the job retries later
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.SUCCEEDED, rollback.outcome
    faulted = [r.fault for r in fake.api_requests() if r.fault]
    assert faulted.count(Fault.RATE_LIMIT) == 2 and faulted.count(Fault.SERVER_ERROR) == 5
    steps = [s.step for s in await w.steps(rollback.id)]
    assert steps.count("provider_unreachable") == 1 and steps[-1] == "succeeded"
    assert len(w.trigger_requests(service)) == 1


@sqlite_only
@pytest.mark.parametrize("service", SERVICES)
async def test_lost_trigger_response_is_found_not_resent(w, service):
    await start(w, service, trigger_fault=(Fault.LOST_RESPONSE, {}))
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.SUCCEEDED, rollback.outcome
    assert len(w.trigger_requests(service)) == 1
    steps = await w.steps(rollback.id)
    assert [s.step for s in steps][:4] == ["requested", "confirmed", "trigger_ambiguous", "triggered"]
    assert steps[3].data["found_after_ambiguity"] is True
    assert any("NOT sent again" in line for line in w.thread())


async def test_reset_trigger_is_never_resent(w):
    await start(w, "api", trigger_fault=(Fault.RESET, {}))
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.FAILED and rollback.failure_reason == "ambiguous"
    assert "NOT sent again" in rollback.outcome
    assert len(w.trigger_requests("api")) == 1
    assert len(w.fakes.render.services["srv-d0fakeapi0001"].deploys) == 4  # nothing was created
    assert rollback.trigger_checks == 2  # read three times in all


@sqlite_only
async def test_rate_limited_trigger_is_resent_only_after_reading_the_state(w):
    await start(w, "api", trigger_fault=(Fault.RATE_LIMIT, {"retry_after": 1}))
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.SUCCEEDED
    requests = w.trigger_requests("api")
    assert [r.fault for r in requests] == [Fault.RATE_LIMIT, None]
    # between the two sends, the deploy list was read again (find_triggered)
    between = [r for r in w.fakes.render.api_requests("GET") if requests[0].at <= r.at <= requests[1].at]
    assert between
    assert [s.step for s in await w.steps(rollback.id)].count("trigger_unavailable") == 1


@sqlite_only
@pytest.mark.parametrize("service, status, message", [
    ("api", 409, "A deploy is already in progress for this service"),
    ("billing", 401, "Invalid credentials provided."),
    ("worker", 200, None),  # GraphQL: "Not Authorized" in errors[] with HTTP 200
])
async def test_rejection_gives_the_providers_own_message(w, service, status, message):
    if service == "worker":
        await w.command(service)
        w.fakes.railway.faults.add(Fault.SLOW, method="POST", delay=0)  # the pre-trigger read passes
        w.fakes.railway.faults.add(Fault.REJECT, method="POST", status=200, message="Not Authorized")
        await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    else:
        await start(w, service, trigger_fault=(Fault.REJECT, {"status": status, "message": message}))
    rollback = await w.rollback()
    assert rollback.state == RollbackStatus.FAILED and rollback.failure_reason == "rejected"
    expected = message or "Not Authorized"
    assert expected in rollback.outcome and "Nothing was rolled back" in rollback.outcome
    await w.bed.run_jobs()
    assert any(expected in line for line in w.thread())


@sqlite_only
async def test_vercel_hobby_plan_limit_is_explained(w):
    w.fakes.vercel.projects["prj_fakeweb0001"].hobby = True
    oldest = w.seeded("web").oldest_id
    await w.command(f"web to {oldest}")
    await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    rollback = await w.rollback()
    assert rollback.state == RollbackStatus.FAILED
    assert "Hobby plans can only roll back to the previous production deployment" in rollback.outcome


@sqlite_only
async def test_health_check_failing_after_rollback_is_a_failure(w):
    target = w.seeded("api").target_id
    service = w.fakes.render.services["srv-d0fakeapi0001"]
    next(d for d in service.deploys if d.id == target).bad = True
    await start(w, "api")
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.FAILED and rollback.failure_reason == "unhealthy"
    assert "FAILED its health check" in rollback.outcome and "HTTP 500" in rollback.outcome
    steps = await w.steps(rollback.id)
    assert [s.step for s in steps][-3:] == ["live", "health_waiting", "failed"]
    events = [e for e in await w.timeline(rollback.incident_id) if e.kind == "rollback"]
    assert events[-1].data["state"] == "failed" and events[-1].data["reason"] == "unhealthy"
    assert [e.data["state"] for e in events].count("failed") == 1
    assert any("FAILED its health check" in line for line in w.thread())
    assert await w.followups(rollback.incident_id) == []  # nothing was rolled back for good


@sqlite_only
async def test_provider_failing_the_rollback_is_reported(w):
    w.fakes.render.fail_next_rollback("update_failed")
    await start(w, "api")
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.FAILED and rollback.failure_reason == "provider_failed"
    assert "update_failed" in rollback.outcome


@sqlite_only
async def test_live_deploy_changed_since_the_preview(w):
    await w.command("api")
    service = w.fakes.render.services["srv-d0fakeapi0001"]
    # someone deploys meanwhile: a new live deploy
    from bot.emulator.providers.render import RenderDeploy

    for deploy in service.deploys:
        if deploy.status == "live":
            deploy.status = "deactivated"
    service.deploys.insert(0, RenderDeploy("dep-hotfix00000000001", "live", "e" * 40, "Hotfix", w.clock.now()))
    await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    rollback = await w.rollback()
    assert rollback.state == RollbackStatus.FAILED and rollback.failure_reason == "stale"
    assert "dep-hotfix00000000001" in rollback.outcome
    assert not w.trigger_requests("api")


async def test_restart_mid_rollback_resumes_following(database_url, tmp_path):
    w = await start_world(database_url, tmp_path, approvals=ZERO)
    try:
        await start(w, "worker")
        await w.drive(until={RollbackStatus.ROLLING_BACK})
        w.clock.advance(timedelta(seconds=3))
        await w.bed.run_jobs()  # one poll
        # The process dies while holding the follow job (claimed, its lease running).
        held = await jobs.claim_due(sessions=w.rt.sessions, now=w.clock.now() + timedelta(seconds=5),
                                    worker_id="dead-replica", lease=timedelta(minutes=2), kinds=["rollback.follow"])
        assert [j.kind for j in held] == ["rollback.follow"] and held[0].payload["handle"]["provider"] == "railway"
        first_runtime = w.rt
        w = await restart_world(w)
        assert w.rt is not first_runtime
        assert (await w.rollback()).state == RollbackStatus.ROLLING_BACK
        w.clock.advance(timedelta(seconds=30))
        await w.bed.run_jobs()  # the dead replica's lease still runs: the job is not taken
        assert (await w.rollback()).provider_status == "DEPLOYING"
        w.clock.advance(timedelta(minutes=2))
        rollback = await w.drive()  # the lease ran out: the new process takes the job and follows
        assert rollback.state == RollbackStatus.SUCCEEDED, rollback.outcome
        assert len(w.trigger_requests("worker")) == 1
        steps = [s.step for s in await w.steps(rollback.id)]
        assert steps.count("triggered") == 1 and steps[-1] == "succeeded"
        await w.bed.run_jobs()
        assert any("succeeded" in line for line in w.thread())  # the same thread, continued
    finally:
        await stop_world(w)


class WarmingService(FakeProviderServer):
    """``GET /status``: 503 for ``warm_up`` after its first request (on the world's clock), then 200."""

    def __init__(self, clock, warm_up: timedelta) -> None:
        super().__init__(clock=clock)
        self.warm_up = warm_up
        self.first: datetime | None = None
        self.answers: list[int] = []
        self.app.router.add_get("/status", self._status)

    def authorized(self, request) -> bool:
        return True

    async def _status(self, request) -> web.Response:
        now = self.clock.now()
        self.first = self.first or now
        status = 503 if now - self.first < self.warm_up else 200
        self.answers.append(status)
        return web.Response(status=status, text="warming up" if status == 503 else "ok")


@pytest.mark.parametrize(("warm_up", "succeeds"), [(timedelta(seconds=45), True), (timedelta(seconds=75), False)])
async def test_failures_in_the_first_minute_after_live_count_as_warm_up(database_url, tmp_path, warm_up, succeeds):
    """README: Firebreak checks the health URL until it has answered for ``settle``, and
    failures in the first minute count as warm-up (the playbooks settle for 10 s)."""
    clock = ManualClock()
    async with WarmingService(clock, warm_up) as service:
        w = await start_world(database_url, tmp_path, approvals=ZERO, clock=clock,
                              health_urls={"api": f"{service.url}/status"})
        try:
            await start(w, "api")
            rollback = await w.drive()
            steps = await w.steps(rollback.id)
            assert 503 in service.answers and [s.step for s in steps].count("health_waiting") == 1
            if succeeds:
                assert rollback.state == RollbackStatus.SUCCEEDED, rollback.outcome
                assert service.answers[-1] == 200
            else:
                assert rollback.state == RollbackStatus.FAILED and rollback.failure_reason == "unhealthy"
                assert "FAILED its health check" in rollback.outcome and "HTTP 503" in rollback.outcome
                assert set(service.answers) == {503}
        finally:
            await stop_world(w)
