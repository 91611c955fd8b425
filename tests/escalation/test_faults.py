"""Pager faults: retries at the edge, then the failure is reported and the level goes on."""

from __future__ import annotations

import pytest

from bot.emulator.pagerduty import Fault
from bot.escalation.models import PageOutcome
from bot.incidents.models import EventKind
from bot.pagers.http import RetryPolicy
from tests.escalation.conftest import (
    AVA,
    CHEN,
    SQLITE_ONLY,
    TRIAGE,
    Harness,
    make_harness,
    write_playbooks,
)
from tests.escalation.test_race import PAGERDUTY_FIRST

pytestmark = SQLITE_ONLY


@pytest.fixture
async def h(database_url, clock, tmp_path, emu, pd, og, http, sleeps):
    # Short request timeouts so that a hanging provider fails fast; waits are recorded only.
    hasty = RetryPolicy(attempts=3, initial_wait=0.5, max_wait=2.0, max_retry_after=30.0,
                        request_timeout=0.3, sleep=sleeps)
    made = await make_harness(database_url, clock=clock, playbooks=write_playbooks(tmp_path / "pb", PAGERDUTY_FIRST),
                              emu=emu, pd=pd, og=og, http=http, retry=hasty)
    yield made
    await made.close()


async def _level_one(h: Harness) -> tuple[int, dict[str, object]]:
    incident = await h.open("P1")  # level 1: pagerduty:default, then oncall:backend (chen)
    await h.run()
    pages = {p.recipient: p for p in await h.pages(incident.number)}
    return incident.number, pages


@pytest.mark.parametrize(
    ("fault", "times", "waits"),
    [
        (Fault.SERVER_ERROR, 2, [0.5, 1.0]),  # 500, 500, then accepted
        (Fault.RATE_LIMIT, 1, [7.0]),  # 429 with Retry-After: 7 is honoured
        (Fault.RESET, 1, [0.5]),  # connection reset by the provider
        (Fault.HANG, 1, [0.5]),  # no answer within the request timeout
    ],
)
async def test_transient_faults_are_retried_and_the_page_delivered(h, pd, sleeps, fault, times, waits):
    pd.faults.add(fault, times=times, **({"retry_after": 7} if fault is Fault.RATE_LIMIT else {}))
    number, pages = await _level_one(h)
    assert pages["pagerduty:default"].outcome == PageOutcome.SENT
    assert sleeps.waits == waits
    assert pd.incidents[f"firebreak-INC-{number}"].status == "triggered"
    assert len(pd.incidents_for(f"firebreak-INC-{number}")) == 1
    assert pages[f"user:{CHEN}"].outcome == PageOutcome.DELIVERED


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (Fault.SERVER_ERROR, "HTTP 500"),
        (Fault.RATE_LIMIT, "HTTP 429"),
        (Fault.HANG, "no answer within 0.3s"),
        (Fault.RESET, "connection failed"),
    ],
)
async def test_a_target_that_keeps_failing_is_reported_and_the_level_goes_on(h, pd, fault, says):
    pd.faults.add(fault, times=3)
    number, pages = await _level_one(h)
    failed = pages["pagerduty:default"]
    assert failed.outcome == PageOutcome.FAILED and says in failed.detail
    assert pages[f"user:{CHEN}"].outcome == PageOutcome.DELIVERED  # the next target still paged
    assert len(h.page_dms(CHEN, number)) == 1
    events = await h.events(number, EventKind.PAGE_FAILED)
    assert len(events) == 1 and events[0].data["recipient"] == "pagerduty:default"
    assert events[0].data["level"] == 1 and "PagerDuty unavailable after 3 attempt(s)" in events[0].text
    await h.run()  # the channel hears about it
    channel = (await h.incident(number)).channel_id
    warning = [t for t in h.channel_texts(channel) if ":warning: could not page PagerDuty `default`" in t]
    assert len(warning) == 1 and "other targets were still paged" in warning[0]
    await h.at(15)  # and the matrix goes on
    assert len(h.page_dms(AVA, number)) == 1


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
    og.faults.add(Fault.RATE_LIMIT, retry_after=3)
    await h.change(incident.number, "resolve", actor=CHEN)
    await h.run()
    assert [a.status for a in og.alerts.values()] == ["closed"]
    assert sleeps.waits == [0.5, 3.0]


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
