"""Pager faults: retries at the edge, then the failure is reported and the level goes on."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.emulator.pagerduty import Fault
from bot.escalation import service as escalation
from bot.escalation.engine import ESCALATION_RETRY, MAX_DEFERRALS
from bot.escalation.models import PageOutcome
from bot.incidents.models import EventKind
from bot.jobs.models import JobState
from tests.escalation.conftest import (
    AVA,
    CHEN,
    SQLITE_ONLY,
    START,
    TRIAGE,
    Harness,
    make_harness,
    write_playbooks,
)
from tests.escalation.test_race import PAGERDUTY_FIRST

pytestmark = SQLITE_ONLY


@pytest.fixture
async def h(database_url, clock, tmp_path, emu, pd, og, http, retry):
    made = await make_harness(database_url, clock=clock, playbooks=write_playbooks(tmp_path / "pb", PAGERDUTY_FIRST),
                              emu=emu, pd=pd, og=og, http=http, retry=retry)
    yield made
    await made.close()


async def _level_one(h: Harness) -> tuple[int, dict[str, object]]:
    incident = await h.open("P1")  # level 1: pagerduty:default, then oncall:backend (chen)
    await h.run()
    pages = {p.recipient: p for p in await h.pages(incident.number)}
    return incident.number, pages


async def _level_one_job(h: Harness) -> list:
    return [j for j in await h.jobs(escalation.LEVEL) if j.payload["level"] == 0 and j.state == JobState.PENDING]


@pytest.mark.parametrize(
    ("fault", "waits"),
    [
        (Fault.SERVER_ERROR, [0.5]),  # 500, then accepted
        (Fault.RATE_LIMIT, [1.0]),  # 429 with a Retry-After of a second is waited out in place
        (Fault.RESET, [0.5]),  # connection reset by the provider
    ],
)
async def test_a_transient_fault_is_retried_in_place_and_the_page_delivered(h, pd, sleeps, fault, waits):
    pd.faults.add(fault, **({"retry_after": 1} if fault is Fault.RATE_LIMIT else {}))
    number, pages = await _level_one(h)
    assert pages["pagerduty:default"].outcome == PageOutcome.SENT
    assert sleeps.waits == waits
    assert pd.incidents[f"firebreak-INC-{number}"].status == "triggered"
    assert len(pd.incidents_for(f"firebreak-INC-{number}")) == 1
    assert pages[f"user:{CHEN}"].outcome == PageOutcome.DELIVERED


async def test_a_long_retry_after_puts_the_page_off_instead_of_sleeping_under_the_lock(h, pd, sleeps):
    pd.faults.add(Fault.RATE_LIMIT, retry_after=7)
    number, pages = await _level_one(h)
    assert "pagerduty:default" not in pages and sleeps.waits == []  # nothing waited under the lock
    assert pages[f"user:{CHEN}"].outcome == PageOutcome.DELIVERED  # the level's other target meanwhile
    h.clock.advance(6)
    assert await h.run() == 0
    h.clock.advance(1)
    await h.run()
    [page] = [p for p in await h.pages(number) if p.recipient == "pagerduty:default"]
    assert page.outcome == PageOutcome.SENT and page.sent_at - page.due_at == timedelta(seconds=7)
    assert [r.fault for r in pd.requests] == [Fault.RATE_LIMIT, None] and sleeps.waits == []


@pytest.mark.parametrize(
    ("fault", "says", "put_off"),
    [
        (Fault.SERVER_ERROR, "HTTP 500", [5, 10]),  # the engine's back-off
        (Fault.RATE_LIMIT, "HTTP 429", [1, 1]),  # the provider's Retry-After
        (Fault.RESET, "connection failed", [5, 10]),
    ],
)
async def test_an_outage_past_the_in_place_retries_puts_the_page_off_until_it_ends(
    h, pd, sleeps, fault, says, put_off
):
    """Two failed tries (PagerDuty down for a moment) do not lose the page: it is put off and
    sent once PagerDuty answers again, while the level's other targets were paged at once."""
    pd.faults.add(fault, times=4)  # two tries of two requests each
    number, pages = await _level_one(h)
    assert "pagerduty:default" not in pages and pages[f"user:{CHEN}"].outcome == PageOutcome.DELIVERED
    for seconds in put_off:
        [job] = await _level_one_job(h)
        assert says in job.last_error and job.due_at == h.clock.now() + timedelta(seconds=seconds)
        h.clock.advance(seconds - 0.5)
        assert await h.run() == 0
        h.clock.advance(0.5)
        await h.run()
    [page] = [p for p in await h.pages(number) if p.recipient == "pagerduty:default"]
    assert page.outcome == PageOutcome.SENT and len(pd.incidents_for(f"firebreak-INC-{number}")) == 1
    assert len(pd.requests) == 5 and all(wait <= 1.0 for wait in sleeps.waits)  # no long wait under the lock
    assert await h.events(number, EventKind.PAGE_FAILED) == []
    assert len(h.page_dms(CHEN, number)) == 1  # the reruns did not page chen again


async def test_a_target_that_keeps_failing_is_reported_and_the_level_goes_on(h, pd, sleeps):
    pd.faults.add(Fault.SERVER_ERROR, times=1000)
    number, pages = await _level_one(h)
    assert pages[f"user:{CHEN}"].outcome == PageOutcome.DELIVERED  # the next target still paged
    for _ in range(MAX_DEFERRALS):
        [job] = await _level_one_job(h)
        h.clock.set(job.due_at)
        await h.run()
    failed = {p.recipient: p for p in await h.pages(number)}["pagerduty:default"]
    assert failed.outcome == PageOutcome.FAILED and "HTTP 500" in failed.detail
    assert f"gave up after {MAX_DEFERRALS + 1} tries" in failed.detail
    # Each try is two requests (one in-place retry); between tries the job waited, never a sleep.
    assert len(pd.requests) == 2 * (MAX_DEFERRALS + 1) and sleeps.waits == [0.5] * (MAX_DEFERRALS + 1)
    # Put off 5 s, 10 s, 20 s … (at most 5 min each): reported about 15 minutes after the level.
    assert h.clock.now() - START == timedelta(seconds=5 + 10 + 20 + 40 + 80 + 160 + 300 + 300)
    assert len(h.page_dms(CHEN, number)) == 1
    events = await h.events(number, EventKind.PAGE_FAILED)
    assert len(events) == 1 and events[0].data["recipient"] == "pagerduty:default"
    assert events[0].data["level"] == 1 and "PagerDuty unavailable after 2 attempt(s)" in events[0].text
    await h.run()  # the channel hears about it
    channel = (await h.incident(number)).channel_id
    warning = [t for t in h.channel_texts(channel) if ":warning: could not page PagerDuty `default`" in t]
    assert len(warning) == 1 and "other targets were still paged" in warning[0]
    await h.at(15)  # and the matrix goes on
    assert len(h.page_dms(AVA, number)) == 1


async def test_a_hanging_provider_is_given_up_on_after_the_request_timeout_and_put_off(h, pd, sleeps, loop_clock):
    pd.faults.add(Fault.HANG, times=2)
    level = asyncio.create_task(_level_one(h))
    for tries in (1, 2):  # PagerDuty holds each try until the request timeout (the loop's clock)
        await loop_clock.when(lambda tries=tries: len(pd.requests) == tries)
        loop_clock.advance(ESCALATION_RETRY.request_timeout)
    number, pages = await asyncio.wait_for(level, 20)
    assert "pagerduty:default" not in pages and pages[f"user:{CHEN}"].outcome == PageOutcome.DELIVERED
    [job] = await _level_one_job(h)
    assert f"no answer within {ESCALATION_RETRY.request_timeout:g}s" in job.last_error
    h.clock.set(job.due_at)
    await h.run()
    [page] = [p for p in await h.pages(number) if p.recipient == "pagerduty:default"]
    assert page.outcome == PageOutcome.SENT and len(pd.incidents_for(f"firebreak-INC-{number}")) == 1


async def test_a_refused_event_is_final_and_not_retried(h, pd, sleeps):
    pd.routing_keys.clear()  # the key is no longer valid: 400
    _, pages = await _level_one(h)
    assert pages["pagerduty:default"].outcome == PageOutcome.FAILED
    assert "refused the event" in pages["pagerduty:default"].detail
    assert len(pd.requests) == 1 and sleeps.waits == []
    assert pages[f"user:{CHEN}"].outcome == PageOutcome.DELIVERED


async def test_a_slack_dm_that_fails_does_not_stop_the_level(h, emu, pd):
    emu.fail_next("conversations.open", error="user_disabled")
    _, pages = await _level_one(h)
    assert pages[f"user:{CHEN}"].outcome == PageOutcome.FAILED
    assert "user_disabled" in pages[f"user:{CHEN}"].detail
    assert pages["pagerduty:default"].outcome == PageOutcome.SENT


async def test_opsgenie_faults_and_mirrored_close(h, og, sleeps):
    og.faults.add(Fault.SERVER_ERROR, times=1)
    incident = await h.open("P0")  # P0 level 3 at 15m: opsgenie:ops and the triage channel
    await h.at(15)
    pages = {p.recipient: p for p in await h.pages(incident.number)}
    assert pages["opsgenie:ops"].outcome == PageOutcome.SENT and sleeps.waits == [0.5]
    assert pages[f"channel:{TRIAGE}"].outcome == PageOutcome.DELIVERED
    # Resolving acknowledges too: both mirrors are answered 429 with a Retry-After of 3 s,
    # which is not slept on: their jobs are retried later.
    og.faults.add(Fault.RATE_LIMIT, times=2, retry_after=3)
    await h.change(incident.number, "resolve", actor=CHEN)
    await h.run()
    assert [a.status for a in og.alerts.values()] == ["open"] and sleeps.waits == [0.5]
    mirrors = await h.jobs(escalation.MIRROR)
    assert {j.state for j in mirrors} == {JobState.PENDING}
    assert all("asked to retry in 3s" in j.last_error for j in mirrors)
    h.clock.advance(3)
    await h.run()
    assert [a.status for a in og.alerts.values()] == ["closed"] and sleeps.waits == [0.5]


async def test_a_mirror_that_keeps_failing_is_retried_by_the_job(h, pd):
    number, _ = await _level_one(h)
    pd.faults.add(Fault.SERVER_ERROR, times=3)
    await h.ack(number)
    await h.run()
    assert pd.incidents[f"firebreak-INC-{number}"].status == "triggered"
    h.clock.advance(5)  # the job's own back-off
    await h.run()
    assert pd.incidents[f"firebreak-INC-{number}"].status == "acknowledged"
    mirrored = await h.events(number, EventKind.PAGE_ACKNOWLEDGED)
    assert [e.data["recipient"] for e in mirrored] == ["pagerduty:default"]
