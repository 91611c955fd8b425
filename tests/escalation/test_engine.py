"""The escalation engine on SQLite and PostgreSQL: levels on time, ack, re-plan, resolve, restart."""

from __future__ import annotations

from datetime import timedelta

from bot.escalation import service as escalation
from bot.escalation.models import PageOutcome
from bot.incidents.models import EventKind, IncidentState
from bot.jobs import service as jobs
from bot.jobs.models import JobState
from bot.playbooks.models import Severity
from tests.escalation.conftest import (
    AVA,
    BEN,
    CHEN,
    DANA,
    FAY,
    SQLITE_ONLY,
    START,
    TRIAGE,
    Harness,
    make_harness,
)


async def test_each_level_fires_on_time_with_its_targets(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")
    await h.run()
    number = incident.number
    assert len(h.page_dms(CHEN, number)) == 1  # level 1: oncall:backend (week 8: chen)
    assert h.pd.incidents[f"firebreak-INC-{number}"].trigger_count == 1  # level 1: pagerduty:default
    assert h.page_dms(AVA) == [] and h.page_dms(DANA) == []

    await h.at(4.99)
    assert h.page_dms(AVA) == [] and len(h.pd.requests) == 1

    await h.at(5)  # level 2: oncall:backend:secondary (ava) and group:S0LEADS (dana, ava): ava once
    assert len(h.page_dms(AVA, number)) == 1 and len(h.page_dms(DANA, number)) == 1
    assert len(h.page_dms(CHEN, number)) == 1

    await h.at(15)  # level 3: Opsgenie and the triage channel
    assert [a.alias for a in h.og.alerts.values()] == [f"firebreak-INC-{number}-ops"]
    assert sum(f"INC-{number}" in text for text in h.channel_texts(TRIAGE)) == 1

    for minute, expected in ((30, 1), (39, 1), (40, 2), (50, 3), (120, 3)):
        await h.at(minute)  # level 4: the executives, then two repeats every 10m
        assert len(h.page_dms(FAY, number)) == expected, minute

    pages = await h.pages(number)
    due = {(p.level, p.attempt, p.recipient): p.due_at - START for p in pages}
    assert due == {
        (0, 0, f"user:{CHEN}"): timedelta(0), (0, 0, "pagerduty:default"): timedelta(0),
        (1, 0, f"user:{AVA}"): timedelta(minutes=5), (1, 0, f"user:{DANA}"): timedelta(minutes=5),
        (2, 0, "opsgenie:ops"): timedelta(minutes=15), (2, 0, f"channel:{TRIAGE}"): timedelta(minutes=15),
        (3, 0, f"user:{FAY}"): timedelta(minutes=30), (3, 1, f"user:{FAY}"): timedelta(minutes=40),
        (3, 2, f"user:{FAY}"): timedelta(minutes=50),
    }
    assert all(p.sent_at == p.due_at for p in pages)  # the clock did not move while sending
    assert {p.recipient: p.target for p in pages if p.level == 1} == {
        f"user:{AVA}": "oncall:backend:secondary", f"user:{DANA}": "group:S0LEADS"}

    events = await h.events(number, EventKind.PAGE_SENT, EventKind.PAGE_DELIVERED)
    assert len(events) == len(pages)
    sent = {(e.data["recipient"], e.data["level"], e.data["attempt"]) for e in events}
    assert (f"user:{CHEN}", 1, 0) in sent and ("pagerduty:default", 1, 0) in sent
    assert ("opsgenie:ops", 3, 0) in sent and (f"user:{FAY}", 4, 2) in sent
    assert all(e.data["target"] for e in events)
    kinds = {e.data["recipient"]: e.kind for e in events}
    assert kinds["pagerduty:default"] == EventKind.PAGE_SENT
    assert kinds[f"user:{CHEN}"] == EventKind.PAGE_DELIVERED

    channel = (await h.incident(number)).channel_id
    texts = h.channel_texts(channel)
    assert any(t.startswith(f":pager: INC-{number} escalation level 1: paged <@{CHEN}>") for t in texts)
    assert any("level 4 (repeat 2)" in t for t in texts)


@SQLITE_ONLY
async def test_the_dm_carries_an_acknowledge_button_for_its_level(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")
    await h.at(5)
    dm = h.page_dms(DANA, incident.number)[0]
    button = next(e for b in dm.blocks if b["type"] == "actions" for e in b["elements"])
    assert button["action_id"] == "page_ack"
    assert button["value"] == f'{{"incident":{incident.number},"level":1,"repeat":0}}'


async def test_ack_stops_every_further_level_and_is_mirrored(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")
    await h.at(5)
    await h.ack(incident.number, CHEN)
    pending = [j for j in await h.jobs(escalation.LEVEL) if j.state == JobState.PENDING]
    assert pending == []  # cancelled in the acknowledging transaction itself
    await h.run()
    pd_incident = h.pd.incidents[f"firebreak-INC-{incident.number}"]
    assert pd_incident.status == "acknowledged"
    for minute in (15, 30, 40, 50, 180):
        await h.at(minute)
    assert h.og.requests == [] and h.page_dms(FAY) == []
    assert pd_incident.actions == ["trigger", "acknowledge"]
    # Every page's Acknowledge button is replaced by who acknowledged.
    for user in (CHEN, AVA, DANA):
        dm = h.page_dms(user, incident.number)[0]
        assert not [b for b in dm.blocks if b["type"] == "actions"]
        assert f"Acknowledged by <@{CHEN}>" in str(dm.blocks)
    kinds = [e.kind for e in await h.events(incident.number)]
    assert EventKind.PAGE_ACKNOWLEDGED in kinds
    mirrored = await h.events(incident.number, EventKind.PAGE_ACKNOWLEDGED)
    assert [e.data["recipient"] for e in mirrored] == ["pagerduty:default"]
    # The response check ran at 5m, just before the ack: one warning, none after.
    warnings = [e for e in await h.events(incident.number, EventKind.ESCALATION)
                if e.data.get("action") == "response_overdue"]
    assert len(warnings) == 1


async def test_a_level_already_claimed_when_the_ack_commits_sends_nothing(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")
    await h.run()
    h.clock.set(START + timedelta(minutes=5))
    claimed = await jobs.claim_due(sessions=h.sessions, now=h.clock.now(), worker_id="slow-worker",
                                   lease=timedelta(minutes=2), kinds=[escalation.LEVEL])
    assert [j.payload["level"] for j in claimed] == [1]
    await h.ack(incident.number)  # the job is running: cancel_jobs cannot touch it
    await h.engine.page_level(claimed[0])  # the slow worker gets to it after the ack
    assert h.page_dms(AVA) == [] and h.page_dms(DANA) == []
    assert [p.level for p in await h.pages(incident.number)] == [0, 0]


async def test_severity_upgrade_replans_from_the_new_matrix(harness: Harness) -> None:
    h = harness
    incident = await h.open("P2")  # P2: oncall:backend now, the secondary at +1h
    await h.run()
    assert len(h.page_dms(CHEN)) == 1 and h.pd.requests == []
    h.clock.set(START + timedelta(minutes=10))
    await h.change(incident.number, "change_severity", severity=Severity.P0, actor=BEN)
    await h.run()  # P0 level 1 at once (from the upgrade): PagerDuty; chen had her level 1 DM already
    assert len(h.page_dms(CHEN)) == 1 and len(h.pd.requests) == 1
    await h.at(15)  # P0 level 2 at upgrade + 5m
    assert len(h.page_dms(AVA)) == 1 and len(h.page_dms(DANA)) == 1
    await h.at(70)  # the old P2 level 2 (+1h after opening) was cancelled; P0 level 4 at +40m ran
    pages = await h.pages(incident.number)
    generations = sorted({p.generation for p in pages})
    assert len(generations) == 2
    old = [p for p in pages if p.generation == generations[0]]
    assert [(p.level, p.recipient) for p in old] == [(0, f"user:{CHEN}")]
    assert len(h.page_dms(FAY)) == 3  # P0 level 4 at +40m, +50m, +60m after the upgrade
    replanned = [e for e in await h.events(incident.number, EventKind.ESCALATION)
                 if e.data.get("reason") == "severity_changed"]
    assert len(replanned) == 1 and replanned[0].data["cancelled"] == 1


@SQLITE_ONLY
async def test_downgrade_and_changes_after_ack_do_not_replan(harness: Harness) -> None:
    h = harness
    incident = await h.open("P1")
    await h.run()
    await h.change(incident.number, "change_severity", severity=Severity.P2, actor=BEN)
    await h.run()
    await h.at(15)  # the P1 plan goes on: secondary at +15m
    assert len(h.page_dms(AVA)) == 1
    await h.ack(incident.number)
    await h.change(incident.number, "change_severity", severity=Severity.P0, actor=BEN)
    await h.at(200)
    assert len(h.page_dms(CHEN)) == 1 and h.page_dms(DANA) == [] and len(h.pd.requests) == 2


async def test_resolve_cancels_everything_and_resolves_at_the_providers(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")
    await h.at(15)  # PagerDuty at level 1, Opsgenie at level 3
    await h.change(incident.number, "resolve", actor=CHEN, summary="rolled back")
    await h.run()
    assert h.pd.incidents[f"firebreak-INC-{incident.number}"].status == "resolved"
    assert [a.status for a in h.og.alerts.values()] == ["closed"]
    for minute in (30, 40, 50, 300):
        await h.at(minute)
    assert h.page_dms(FAY) == []
    states = {j.state for j in await h.jobs(escalation.LEVEL, escalation.STATUS_REMINDER,
                                            escalation.RESPONSE_CHECK)}
    assert JobState.PENDING not in states
    channel = (await h.incident(incident.number)).channel_id
    assert not any("status update" in t for t in h.channel_texts(channel))


@SQLITE_ONLY
async def test_reopen_does_not_restart_paging(harness: Harness) -> None:
    h = harness
    incident = await h.open("P1")
    await h.run()
    await h.change(incident.number, "resolve", actor=CHEN)
    await h.at(1)
    await h.change(incident.number, "reopen", actor=CHEN)
    for minute in (2, 16, 120):
        await h.at(minute)
    assert len(h.page_dms(CHEN)) == 1 and h.page_dms(AVA) == []
    assert (await h.incident(incident.number)).state == IncidentState.ACKNOWLEDGED


async def test_reopen_restarts_status_reminders(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")  # a status update every 30m
    await h.ack(incident.number, CHEN)
    await h.at(10)
    channel = (await h.incident(incident.number)).channel_id
    reminders = lambda: [t for t in h.channel_texts(channel) if "time for a status update" in t]
    await h.change(incident.number, "resolve", actor=CHEN)
    for minute in (30, 45, 60):  # resolved: no reminder (each run leaves nothing due behind it)
        await h.at(minute)
    assert reminders() == []
    await h.change(incident.number, "reopen", actor=CHEN)
    await h.at(89)
    assert reminders() == []
    await h.at(90)  # 30m after the reopening
    assert len(reminders()) == 1 and "every 30m" in reminders()[0]
    await h.at(120)
    assert len(reminders()) == 2


async def test_an_opsgenie_page_is_acknowledged_at_opsgenie(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")  # level 3 at 15m: opsgenie:ops and the triage channel
    await h.at(15)
    alias = f"firebreak-INC-{incident.number}-ops"
    assert not h.og.alerts[alias].acknowledged
    await h.ack(incident.number, CHEN)
    await h.run()
    assert h.og.alerts[alias].acknowledged and h.og.alerts[alias].status == "open"
    [acknowledge] = h.og.requests_to("/acknowledge")
    assert acknowledge.path == f"/v2/alerts/{alias}/acknowledge" and acknowledge.query["identifierType"] == "alias"
    mirrored = await h.events(incident.number, EventKind.PAGE_ACKNOWLEDGED)
    assert sorted(e.data["recipient"] for e in mirrored) == ["opsgenie:ops", "pagerduty:default"]


async def test_restart_fires_an_overdue_level_once(harness: Harness, database_url, clock, playbooks,
                                                   emu, pd, og, http, retry) -> None:
    h = harness
    incident = await h.open("P0")
    await h.run()
    await h.close()  # the process goes away; 16 minutes pass (levels 2 and 3 fall due meanwhile)
    clock.set(START + timedelta(minutes=16))
    restarted = await make_harness(database_url, clock=clock, playbooks=playbooks, emu=emu, pd=pd,
                                   og=og, http=http, retry=retry)
    try:
        await restarted.run()
        await restarted.run()
        assert len(restarted.page_dms(AVA)) == 1 and len(restarted.page_dms(DANA)) == 1
        assert len(og.requests) == 1 and len(restarted.page_dms(CHEN)) == 1
        pages = await restarted.pages(incident.number)
        late = [p for p in pages if p.level == 1]
        assert {p.sent_at - p.due_at for p in late} == {timedelta(minutes=11)}
        # The delay is on the timeline too.
        delivered = await restarted.events(incident.number, EventKind.PAGE_DELIVERED)
        assert max(e.data["delay_seconds"] for e in delivered) == 660
    finally:
        await restarted.close()


async def test_a_job_left_running_by_a_crashed_worker_fires_once_after_its_lease(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")
    await h.run()
    h.clock.set(START + timedelta(minutes=5))
    crashed = await jobs.claim_due(sessions=h.sessions, now=h.clock.now(), worker_id="crashed",
                                   lease=timedelta(minutes=2), kinds=[escalation.LEVEL])
    assert len(crashed) == 1
    await h.run()
    assert h.page_dms(AVA) == []  # still leased to the crashed worker
    await h.at(7.5)
    assert len(h.page_dms(AVA)) == 1 and len(h.page_dms(DANA)) == 1
    await h.at(8)
    assert len(h.page_dms(AVA)) == 1
    assert len([p for p in await h.pages(incident.number) if p.level == 1]) == 2


async def test_response_deadline_warning_and_status_reminders(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")  # respond within 5m, status update every 30m
    await h.at(4)
    channel = (await h.incident(incident.number)).channel_id
    assert not any("not been acknowledged" in t for t in h.channel_texts(channel))
    await h.at(5)
    warnings = [t for t in h.channel_texts(channel) if "not been acknowledged" in t]
    assert len(warnings) == 1 and "within 5m" in warnings[0]
    overdue = [e for e in await h.events(incident.number, EventKind.ESCALATION)
               if e.data.get("action") == "response_overdue"]
    assert len(overdue) == 1
    await h.ack(incident.number)
    await h.at(20)
    await h.change(incident.number, "post_status", text="rolling back api", actor=CHEN)
    await h.at(30)  # 30m after opening, but the last update was 10m ago
    reminders = lambda: [t for t in h.channel_texts(channel) if "time for a status update" in t]
    assert reminders() == []
    await h.at(50)
    assert len(reminders()) == 1 and "every 30m" in reminders()[0]
    await h.at(79)
    assert len(reminders()) == 1
    await h.at(80)
    assert len(reminders()) == 2
    await h.change(incident.number, "change_severity", severity=Severity.P1, actor=CHEN)  # every 1h
    await h.at(115)
    assert len(reminders()) == 2
    await h.at(140)
    assert len(reminders()) == 3
    assert len([t for t in h.channel_texts(channel) if "not been acknowledged" in t]) == 1


@SQLITE_ONLY
async def test_a_slower_severity_moves_the_response_deadline(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")
    await h.run()
    await h.at(2)
    await h.change(incident.number, "change_severity", severity=Severity.P1, actor=BEN)  # 1h
    await h.at(10)
    channel = (await h.incident(incident.number)).channel_id
    assert not any("not been acknowledged" in t for t in h.channel_texts(channel))
    await h.at(60)
    assert len([t for t in h.channel_texts(channel) if "not been acknowledged" in t]) == 1


@SQLITE_ONLY
async def test_manual_page_is_sent_at_once_and_recorded(harness: Harness) -> None:
    h = harness
    incident = await h.open("P1")
    await h.run()
    await h.ack(incident.number)
    from bot.db.engine import transaction
    from bot.incidents import service as incidents
    from bot.playbooks.targets import Target

    async with transaction(h.sessions) as session:
        locked = await incidents.get_incident(session=session, number=incident.number, for_update=True)
        request = await escalation.request_manual_page(
            session=session, incident=locked, target=Target.parse("oncall:backend:secondary"),
            message="need a DB expert", actor=CHEN, now=h.clock.now())
    assert await h.worker.run_job(request.job_id)
    dm = h.page_dms(AVA, incident.number)
    assert len(dm) == 1 and "need a DB expert" in str(dm[0].blocks)
    delivered = await h.events(incident.number, EventKind.PAGE_DELIVERED)
    assert delivered[-1].data["manual"] is True and delivered[-1].data["target"] == "oncall:backend:secondary"
    assert "by <@U1H2J3K4L>" in delivered[-1].text
    await h.run()
    channel = (await h.incident(incident.number)).channel_id
    assert any(t.startswith(f":pager: INC-{incident.number}: <@{CHEN}> paged <@{AVA}>")
               for t in h.channel_texts(channel))


@SQLITE_ONLY
async def test_a_target_with_nobody_on_call_fails_and_the_level_goes_on(harness: Harness, tmp_path) -> None:
    h = harness
    from tests.escalation.conftest import ESCALATION_YAML, ONCALL_YAML, write_playbooks

    h.engine.playbooks = write_playbooks(
        tmp_path / "late", ESCALATION_YAML,
        ONCALL_YAML.replace("start: 2026-01-05", "start: 2026-06-01"))  # no shift yet
    incident = await h.open("P1")
    await h.run()
    pages = await h.pages(incident.number)
    assert {(p.recipient, p.outcome) for p in pages} == {
        ("oncall:backend", PageOutcome.FAILED), ("pagerduty:default", PageOutcome.SENT)}
    failed = await h.events(incident.number, EventKind.PAGE_FAILED)
    assert "nobody is primary on call in `backend`" in failed[0].text
    channel = (await h.incident(incident.number)).channel_id
    assert any(":warning: could not page" in t for t in h.channel_texts(channel))


@SQLITE_ONLY
async def test_a_severity_change_before_the_first_plan_still_pages_from_the_opening(harness: Harness) -> None:
    h = harness
    incident = await h.open("P0")
    await h.change(incident.number, "change_severity", severity=Severity.P2, actor=BEN)  # before any job ran
    await h.run()
    assert len(h.page_dms(CHEN)) == 1 and h.pd.requests == []  # P2: oncall:backend only
    await h.at(60)  # P2 level 2 at +1h from the opening
    assert len(h.page_dms(AVA)) == 1
    [planned] = [e for e in await h.events(incident.number, EventKind.ESCALATION)
                 if e.data.get("action") == "planned"]
    assert planned.text.startswith("Escalation planned for P2")
