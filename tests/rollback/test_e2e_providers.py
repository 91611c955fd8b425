"""/rollback end to end for each provider: Slack command → preview → Approve → Confirm →
provider fake (requests checked against the spec / recording) → live → health check →
timeline, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from bot.rollback.models import RollbackStatus
from bot.slack.ids import ActionId
from tests.rollback.conftest import AVA, BEN, PROVIDER_OF, SERVICES


@pytest.mark.parametrize("service", SERVICES)
async def test_rollback_end_to_end(world, service):
    seeded = world.seeded(service)
    reply = await world.command(f"{service} checkout 500s since the last deploy")
    assert "Rollback preview RB-1" in reply and "posted here" in reply, reply
    preview = world.preview()
    text = str(preview.blocks)
    assert seeded.live_id in text and seeded.target_id in text
    assert "Confirm rollback" in text and "Approve" in text and "Cancel" in text

    # P2 outside an incident: one approval from another owner; Confirm may come first.
    waiting = await world.click(AVA, ActionId.ROLLBACK_CONFIRM)
    assert "waiting for 1 approval" in waiting and not world.trigger_requests(service)
    approved = await world.click(BEN, ActionId.ROLLBACK_APPROVE)  # the click that completes it starts it
    assert "the last approval it needed" in approved, approved
    assert len(world.trigger_requests(service)) == 1

    rollback = await world.drive()
    assert rollback.state == RollbackStatus.SUCCEEDED, rollback.outcome
    assert rollback.provider == PROVIDER_OF[service]
    assert len(world.trigger_requests(service)) == 1
    steps = [s.step for s in await world.steps(rollback.id)]
    assert steps[:5] == ["requested", "confirm_waiting", "approved", "confirmed", "triggered"]
    assert steps[-2:] == ["live", "succeeded"]

    # The P2 incident opened for it holds every step, with who / from / to / provider ids.
    incident = await world.incident(rollback.incident_id)
    assert incident.severity.value == "P2" and incident.service == service
    events = [e for e in await world.timeline(incident.id) if e.kind == "rollback"]
    assert [e.data["step"] for e in events] == steps
    assert all(e.data["from"] == seeded.live_id and e.data["to"] == seeded.target_id for e in events)
    assert [e.actor for e in events[:4]] == [AVA, AVA, BEN, AVA]
    assert events[-1].data["state"] == "succeeded"
    assert events[4].data["provider_ids"]

    # The rollback leaves the bad change in git: a follow-up says so, once, on the timeline too.
    [followup] = await world.followups(incident.id)
    assert followup.text == (f"Revert or fix the change in git ({service} was rolled back "
                             f"from {seeded.live_id} to {seeded.target_id})")
    assert [e.text for e in await world.timeline(incident.id) if e.kind == "followup"] == [
        f"Follow-up: {followup.text}"]

    thread = world.thread()
    assert any("succeeded" in line for line in thread), thread
    async with world.bed.http.get(world.fake(service).health_url(seeded.key)) as r:
        assert r.status == 200
