"""Approvals and Confirm in either order, and the deploys Firebreak rolled back FROM: through
the signed HTTP endpoint, against the provider fakes.

- The click that completes Confirm + approvals starts the rollback; nobody clicks twice.
- The confirmer's own approval never counts; the preview's expiry still applies; what is
  live is re-checked before the trigger.
- A deploy an earlier rollback moved away from is never the default target; named with
  ``to <id>`` it is shown with a warning and needs another owner's approval at any severity.
- A preview whose incident was resolved says why approvals apply.
- A click only counts on the preview's own message, in the preview's own channel.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.rollback.models import RollbackStatus
from bot.slack.ids import ActionId
from tests.rollback.conftest import AVA, BEN, DANA

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
GENERAL = "C0GENERAL"


def preview_text(w, channel: str = GENERAL) -> str:
    return json.dumps(w.preview(channel).blocks, ensure_ascii=False)


async def test_confirm_then_approve_starts_the_rollback_with_the_approval(world):
    """P2 outside an incident needs one approval (the sample policy)."""
    w = world
    await w.command("api checkout 500s")
    reply = await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    assert reply.startswith(f"Confirmed by <@{AVA}> — waiting for 1 approval from the owners"), reply
    assert "nobody needs to press Confirm again" in reply
    await w.bed.run_jobs()
    assert f"Confirmed by <@{AVA}> — waiting for 1 approval from the owners" in preview_text(w)
    assert (await w.rollback()).state == RollbackStatus.PREVIEW and not w.trigger_requests("api")

    reply = await w.click(BEN, ActionId.ROLLBACK_APPROVE)
    assert "the last approval it needed" in reply and f"<@{AVA}> had confirmed it" in reply
    assert len(w.trigger_requests("api")) == 1  # started by that click, no second Confirm
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.SUCCEEDED
    assert (rollback.confirmed_by, len(w.trigger_requests("api"))) == (AVA, 1)
    confirmed = [s for s in await w.steps(rollback.id) if s.step == "confirmed"]
    assert len(confirmed) == 1 and confirmed[0].data["approvers"] == [BEN]


@sqlite_only
async def test_the_confirmers_own_approval_never_counts(world):
    w = world
    await w.command("api")
    await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    assert "your approval would not count" in await w.click(AVA, ActionId.ROLLBACK_APPROVE)
    assert "already confirmed by" in await w.click(BEN, ActionId.ROLLBACK_CONFIRM)
    assert not w.trigger_requests("api")
    assert "the last approval it needed" in await w.click(DANA, ActionId.ROLLBACK_APPROVE)
    assert len(w.trigger_requests("api")) == 1


@sqlite_only
async def test_an_approval_after_the_preview_expired_starts_nothing(world):
    w = world
    await w.command("api")
    await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    w.clock.advance(timedelta(minutes=15, seconds=1))
    assert "expired" in await w.click(BEN, ActionId.ROLLBACK_APPROVE)
    assert (await w.rollback()).state == RollbackStatus.EXPIRED and not w.trigger_requests("api")


@sqlite_only
async def test_what_is_live_is_rechecked_when_the_approval_starts_it(world):
    w = world
    seeded = w.seeded("api")
    await w.command("api")
    await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    # meanwhile someone deploys: the oldest deploy is live now
    deploys = w.fakes.render.services[seeded.key].deploys
    for deploy in deploys:
        deploy.status = "live" if deploy.id == seeded.oldest_id else (
            "deactivated" if deploy.status == "live" else deploy.status)
    await w.click(BEN, ActionId.ROLLBACK_APPROVE)
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.FAILED and rollback.failure_reason == "stale"
    assert not w.trigger_requests("api")


async def test_a_deploy_rolled_back_from_is_never_the_default_and_needs_an_approval_by_name(open_world):
    w = open_world
    seeded = w.seeded("api")
    await w.command("api")
    assert "You confirmed" in await w.click(AVA, ActionId.ROLLBACK_CONFIRM)  # no approvals at P2 here
    first = await w.drive()
    assert first.state == RollbackStatus.SUCCEEDED and first.current_id == seeded.live_id
    channel = w.bed.incident_channel(first.incident_id).id  # the P2 incident RB-1 opened

    # The default skips the deploy RB-1 rolled back from, like a failed build, and says so.
    assert "Rollback preview RB-2" in await w.command("api")
    second = await w.rollback()
    assert second.target_id not in (seeded.live_id, seeded.failed_id)
    assert f"`{seeded.live_id}` was skipped: RB-1 rolled back from it" in preview_text(w, channel)
    assert "You canceled" in await w.click(AVA, ActionId.ROLLBACK_CANCEL, channel=channel)

    # Named explicitly: a prominent warning, and another owner's approval at any severity.
    assert "Rollback preview RB-3" in await w.command(f"api to {seeded.live_id}")
    third = await w.rollback()
    assert third.target_id == seeded.live_id and third.approvals_needed == 1
    blocks = w.preview(channel).blocks
    assert blocks[1]["text"]["text"].startswith(f":warning: *`{seeded.live_id}` is the deploy RB-1 rolled back FROM")
    assert "Approve" in json.dumps(blocks)
    assert "waiting for 1 approval" in await w.click(AVA, ActionId.ROLLBACK_CONFIRM, channel=channel)
    requests_before = len(w.trigger_requests("api"))
    assert "the last approval it needed" in await w.click(BEN, ActionId.ROLLBACK_APPROVE, channel=channel)
    assert len(w.trigger_requests("api")) == requests_before + 1


@sqlite_only
async def test_a_preview_confirmed_after_its_incident_resolved_says_why_approvals_apply(world):
    w = world  # P1: no approval; P2: one
    await w.bed.run_command("open P1 checkout is failing service:api")
    await w.bed.run_jobs()
    channel = w.bed.incident_channel(1).id
    await w.command("api", channel=channel)
    assert "Approve" not in json.dumps(w.preview(channel).blocks)  # none needed in a P1
    await w.bed.run_command("resolve", channel=channel)
    reply = await w.click(AVA, ActionId.ROLLBACK_CONFIRM, channel=channel)
    assert ("INC-1 is resolved: outside an open incident P2 approvals apply, and the rollback would open "
            "a new P2 incident") in reply, reply
    assert "waiting for 1 approval from the owners" in reply and not w.trigger_requests("api")
    await w.bed.run_jobs()
    assert "INC-1 is resolved: outside an open incident P2 approvals apply" in preview_text(w, channel)
    assert "the last approval it needed" in await w.click(BEN, ActionId.ROLLBACK_APPROVE, channel=channel)
    rollback = await w.rollback()
    incident = await w.incident(rollback.incident_id)
    assert incident.number == 2 and incident.severity.value == "P2"


@sqlite_only
async def test_a_confirm_from_another_channel_with_the_previews_ts_is_refused(open_world):
    w = open_world
    await w.command("api")
    rollback = await w.rollback()
    payload = w.emu.block_action(AVA, GENERAL, rollback.message_ts, ActionId.ROLLBACK_CONFIRM.value,
                                 value=str(rollback.id))
    payload["container"]["channel_id"] = payload["channel"]["id"] = "C0TRIAGE"
    before = len(w.emu.response_url_posts)
    sent = await w.bed.interact(payload)
    assert sent.status == 200
    await w.bed.wait_for(lambda: len(w.emu.response_url_posts) > before)
    assert "does not belong to the preview of RB-1" in w.emu.response_url_posts[-1].payload["text"]
    assert (await w.rollback()).state == RollbackStatus.PREVIEW and not w.trigger_requests("api")
