"""A severity upgrade, through the signed HTTP endpoint: re-planned to the new matrix, but no
page the old plan had due sooner is put off, and nobody already paged at a level is DM'd
again at that level (PagerDuty may be triggered again under the same dedup key).

Sample playbooks, Monday 2026-03-02 09:00 New York: chen is primary, ava secondary.
P1: level 1 oncall:backend at once and again at +5m; level 2 (secondary, leads) at +15m.
P0: level 1 oncall:backend and PagerDuty at once; level 2 (secondary, platform, leads) +5m.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.escalation.models import Page
from bot.escalation.service import PlannedStep, keep_earlier_pages
from bot.incidents.models import EventKind
from tests.escalation.conftest import AVA, BEN, CHEN, DANA
from tests.escalation.test_slack_e2e import _open, _timeline, bed, page_dms, pd  # noqa: F401 - fixtures

UPGRADE_AT = timedelta(minutes=14, seconds=48)  # level 2 of P1 is due 12 s later


async def test_an_upgrade_never_puts_off_a_page_nor_dms_someone_twice_at_a_level(bed, pd) -> None:  # noqa: F811
    opened = bed.clock.now()
    number = await _open(bed, "open P1 checkout is failing")
    channel = bed.incident_channel(number).id
    bed.clock.set(opened + timedelta(minutes=5))  # the level 1 repeat
    await bed.run_jobs()
    assert len(page_dms(bed, CHEN)) == 2 and page_dms(bed, AVA) == []

    bed.clock.set(opened + UPGRADE_AT)
    assert "is now P0" in await bed.run_command("sev P0", channel=channel, user=BEN)
    await bed.run_jobs()
    # P0 level 1 from the upgrade: PagerDuty is triggered, chen is not DM'd a third time
    assert len(page_dms(bed, CHEN)) == 2
    assert pd.incidents[f"firebreak-INC-{number}"].status == "triggered"

    bed.clock.set(opened + timedelta(minutes=15))  # when the P1 plan had level 2 due
    await bed.run_jobs()
    assert len(page_dms(bed, AVA)) == 1 and len(page_dms(bed, DANA)) == 1  # secondary, leads: on time
    assert len(page_dms(bed, CHEN)) == 3  # level 2 reaches her through the platform group

    bed.clock.set(opened + UPGRADE_AT + timedelta(minutes=5))  # P0's own level 2 time: nothing new
    await bed.run_jobs()
    assert [len(page_dms(bed, who)) for who in (AVA, CHEN, DANA)] == [1, 3, 1]

    async with bed.rt.sessions() as session:
        pages = list((await session.execute(select(Page).order_by(Page.id))).scalars())
    level_two = [p for p in pages if p.level == 1]
    assert all(p.due_at == opened + timedelta(minutes=15) for p in level_two)
    assert all(p.sent_at - p.due_at < timedelta(seconds=1) for p in level_two)
    _, events = await _timeline(bed, number)
    [replanned] = [e for e in events if e.kind == EventKind.ESCALATION and e.data.get("reason") == "severity_changed"]
    assert "counting from the upgrade" in replanned.text and "kept at the old plan's earlier times" in replanned.text
    texts = [m.text for m in bed.emu.messages(channel)]
    assert any(t.startswith(f":pager: INC-{number} escalation level 1: paged <@{CHEN}> (paged at this level "
                            "already), PagerDuty") for t in texts), texts


def test_a_target_the_new_matrix_forgets_keeps_its_old_time() -> None:
    t0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    new = [PlannedStep(t0, 0, 0, ("oncall:backend", "pagerduty:default")),
           PlannedStep(t0 + timedelta(minutes=5), 1, 0, ("oncall:backend:secondary",)),
           PlannedStep(t0 + timedelta(minutes=35), 1, 1, ("oncall:backend:secondary",))]
    pending = [PlannedStep(t0 + timedelta(minutes=1), 1, 0, ("oncall:backend:secondary", "channel:C0TRIAGE")),
               PlannedStep(t0 + timedelta(hours=1), 2, 0, ("oncall:managers",))]
    steps, moved = keep_earlier_pages(new, pending)
    assert [(s.due_at - t0, s.level, s.attempt, s.targets) for s in steps] == [
        (timedelta(0), 0, 0, ("oncall:backend", "pagerduty:default")),
        (timedelta(minutes=1), 1, 0, ("oncall:backend:secondary", "channel:C0TRIAGE")),
        (timedelta(minutes=35), 1, 1, ("oncall:backend:secondary",)),  # a repeat stays a repeat
        (timedelta(hours=1), 2, 0, ("oncall:managers",)),
    ]
    assert [(s.level, s.attempt) for s in moved] == [(1, 0), (2, 0)]
