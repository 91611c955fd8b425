"""``kill -9`` while an escalation level is pending: after the restart it pages exactly once.

P1 in the chaos playbooks: level 1 (Ava by DM, PagerDuty key "first") at once,
level 2 (Ben by DM, PagerDuty key "second") 5 s later. The bot is killed once
level 1 is recorded, stays down until level 2 is past due, and a new process
on the same database pages level 2 once and level 1 not again.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.escalation.models import Page
from bot.jobs.models import Job, JobState
from tests.chaos.conftest import AVA, BEN, PD_FIRST, PD_SECOND, wait_for

pytestmark = pytest.mark.timeout(90)


async def test_level_pending_at_kill_pages_once_after_restart(world):
    await world.start_bot()
    reply = await world.run("open P1 payments are failing service:api")
    # (the channel link is in the reply unless the worker took the set-up job first)
    assert "INC-1 opened" in reply and "failed" not in reply, reply
    incident = await world.incident(1)

    async def level_one_recorded():
        pages = await world.query(select(Page).where(Page.incident_id == incident.id))
        return len([p for p in pages if p.level == 0]) == 2

    await wait_for(level_one_recorded, what="level 1's two pages")
    level_two = (await world.query(select(Job).where(Job.kind == "escalation.level",
                                                     Job.incident_id == incident.id)
                                   .order_by(Job.due_at)))[-1]
    assert level_two.state == JobState.PENDING
    assert level_two.due_at - incident.opened_at == timedelta(seconds=5)
    world.kill()  # level 2 still pending
    assert not world.pd_triggers(PD_SECOND) and not world.page_dms(BEN)

    # It falls due while no Firebreak runs.
    await asyncio.sleep(max(0.0, level_two.due_at.timestamp() - time.time() + 0.3))
    await world.start_bot()
    await wait_for(lambda: world.pd_triggers(PD_SECOND) and world.page_dms(BEN),
                   what="level 2 paged by the new process")

    async def settled():
        jobs = await world.query(select(Job).where(Job.kind == "escalation.level",
                                                   Job.incident_id == incident.id))
        return all(j.state == JobState.DONE for j in jobs)

    await wait_for(settled, what="every level job done")
    await world.settle()  # nothing running or due, the bot stopped: what the fakes saw is final

    assert len(world.pd_triggers(PD_FIRST)) == 1
    assert len(world.pd_triggers(PD_SECOND)) == 1
    assert len(world.page_dms(AVA)) == 1
    assert len(world.page_dms(BEN)) == 1
    pages = await world.query(select(Page).where(Page.incident_id == incident.id))
    assert sorted((p.level, p.recipient) for p in pages) == [
        (0, "pagerduty:first"), (0, f"user:{AVA}"), (1, "pagerduty:second"), (1, f"user:{BEN}")]
    # Each page is on the timeline once, with the page row it describes.
    paged = [e for e in await world.timeline(1) if e.kind in ("page_sent", "page_delivered", "page_failed")]
    assert sorted((e.data["level"], e.data["recipient"], e.data["outcome"]) for e in paged) == [
        (1, "pagerduty:first", "sent"), (1, f"user:{AVA}", "delivered"),
        (2, "pagerduty:second", "sent"), (2, f"user:{BEN}", "delivered")]
    assert sorted(e.data["page_id"] for e in paged) == sorted(p.id for p in pages)
