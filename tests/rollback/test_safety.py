"""Who may do what, one rollback per service, never twice: against the real bot over HTTP."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.escalation.models import Page
from bot.incidents.models import IncidentState
from bot.jobs.models import Job
from bot.playbooks.models import Severity
from bot.rollback.models import Rollback, RollbackStatus
from bot.slack.ids import ActionId
from tests.rollback.conftest import AVA, BEN, CHEN, DANA, ELI

# Storage does not change these rules: they run on SQLite only (the races run on both).
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _count(world, model, **where) -> int:
    async with world.rt.sessions() as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return (await session.execute(query)).scalar()


async def test_outsider_confirm_is_refused_without_any_provider_call(open_world):
    w = open_world
    await w.command("api", user=ELI)  # anyone may ask for a preview
    gets_before = len(w.fakes.render.api_requests())
    reply = await w.click(ELI, ActionId.ROLLBACK_CONFIRM)
    assert "Only the owners of `api`" in reply and "Nothing was done" in reply
    rollback = await w.rollback()
    assert rollback.state == RollbackStatus.PREVIEW and rollback.confirmed_by is None
    assert len(w.fakes.render.api_requests()) == gets_before  # not even a read
    assert not w.trigger_requests("api")
    assert await _count(w, Job, kind="rollback.trigger") == 0
    # Owner-ship through a user group is read from Slack at the click.
    assert any(c.params.get("usergroup") == "S0PLATFORM" for c in w.emu.calls_to("usergroups.users.list"))
    # ...and an owner still can, afterwards.
    assert "You confirmed" in await w.click(CHEN, ActionId.ROLLBACK_CONFIRM)
    assert len(w.trigger_requests("api")) == 1


@sqlite_only
async def test_forged_payloads_are_refused(open_world):
    w = open_world
    await w.command("api")
    rollback = await w.rollback()
    # an owner's click carried on another message
    reply = await w.forged_click(AVA, ActionId.ROLLBACK_CONFIRM, value="1")
    assert "does not belong to the preview of RB-1" in reply
    # a non-owner's made-up Confirm on the real preview
    reply = await w.forged_click(ELI, ActionId.ROLLBACK_CONFIRM, value="1", message_ts=rollback.message_ts)
    assert "Only the owners" in reply
    reply = await w.forged_click(ELI, ActionId.ROLLBACK_CONFIRM, value="not-a-number", message_ts=rollback.message_ts)
    assert "not one of Firebreak's rollback previews" in reply
    reply = await w.forged_click(AVA, ActionId.ROLLBACK_CONFIRM, value="99", message_ts=rollback.message_ts)
    assert "There is no rollback RB-99" in reply
    assert not w.trigger_requests("api")
    assert (await w.rollback()).state == RollbackStatus.PREVIEW


async def test_two_concurrent_confirms_make_one_rollback(open_world):
    w = open_world
    await w.command("api")
    replies = await asyncio.gather(w.click(AVA, ActionId.ROLLBACK_CONFIRM), w.click(DANA, ActionId.ROLLBACK_CONFIRM))
    assert sum("You confirmed RB-1" in r for r in replies) == 1, replies
    assert sum("already confirmed" in r or "already handled" in r for r in replies) == 1, replies
    assert len(w.trigger_requests("api")) == 1
    assert await _count(w, Job, kind="rollback.trigger") == 1
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.SUCCEEDED
    assert len(w.trigger_requests("api")) == 1
    assert [s.step for s in await w.steps(rollback.id)].count("confirmed") == 1


async def test_one_rollback_per_service_second_request_told_who_and_state(open_world):
    w = open_world
    await w.command("api", user=BEN)
    lists_before = len(w.fakes.render.api_requests("GET"))
    reply = await w.command("api", user=AVA)
    assert "already in flight" in reply and "RB-1" in reply and f"<@{BEN}>" in reply
    assert "waiting for confirmation" in reply
    assert len(w.fakes.render.api_requests("GET")) == lists_before  # refused before asking Render
    assert len([m for m in w.emu.messages("C0GENERAL") if (m.text or "").startswith("Rollback RB-")]) == 1
    await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    reply = await w.command("api", user=DANA)
    assert "already in flight" in reply and "confirmed by" in reply
    # another service is not blocked
    assert "Rollback preview RB-2 of `web`" in await w.command("web")
    await w.drive(until={RollbackStatus.SUCCEEDED}, rollback_id=1)
    # after it finished, a new one may start; its default target is never the deploy RB-1 rolled
    # back from (in the P2 incident RB-1 opened, whose channel gets the preview)
    channel = w.bed.incident_channel(1).id
    assert f"Rollback preview RB-3 of `api` posted in <#{channel}>" in await w.command("api")
    first, third = await w.rollback(1), await w.rollback(3)
    assert third.target_id != first.current_id
    assert f"`{first.current_id}` was skipped: RB-1 rolled back from it" in json.dumps(w.preview(channel).blocks)


async def test_concurrent_requests_one_preview(open_world):
    w = open_world
    replies = await asyncio.gather(w.command("api", user=AVA), w.command("api", user=BEN))
    assert sum("Rollback preview" in r for r in replies) == 1, replies
    assert sum("already in flight" in r for r in replies) == 1, replies
    assert await _count(w, Rollback) == 1


@sqlite_only
async def test_approval_rules_at_p2(world):
    """Outside an incident (P2 per SPEC) the sample policy needs one approval."""
    w = world
    await w.command("api", user=ELI)
    assert "Only the owners" in await w.click(ELI, ActionId.ROLLBACK_APPROVE)
    assert "You approved" in await w.click(AVA, ActionId.ROLLBACK_APPROVE)
    assert "already" in await w.click(AVA, ActionId.ROLLBACK_APPROVE)
    # the approver's own Confirm: her approval does not count, so it waits for another one
    assert "waiting for 1 approval from the owners" in await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    assert not w.trigger_requests("api")
    assert "already confirmed by" in await w.click(BEN, ActionId.ROLLBACK_CONFIRM)
    assert not w.trigger_requests("api")
    assert "the last approval it needed" in await w.click(BEN, ActionId.ROLLBACK_APPROVE)
    assert len(w.trigger_requests("api")) == 1
    rollback = await w.rollback()
    assert rollback.severity == "P2" and rollback.confirmed_by == AVA


@sqlite_only
async def test_in_a_p1_incident_preview_goes_to_its_channel_and_needs_no_approval(world):
    w = world
    opened = await w.bed.run_command("open P1 checkout is failing service:api")
    assert "INC-1" in opened
    await w.bed.run_jobs()
    channel = w.bed.incident_channel(1).id
    reply = await w.command("api bad deploy", user=BEN)  # typed in #general
    assert f"posted in <#{channel}>" in reply
    preview = w.preview(channel)
    assert "Approve" not in json.dumps(preview.blocks) and "INC-1 (P1)" in json.dumps(preview.blocks)
    events = [e for e in await w.timeline(1) if e.kind == "rollback"]
    assert [e.data["step"] for e in events] == ["requested"] and events[0].actor == BEN
    assert "You confirmed" in await w.click(AVA, ActionId.ROLLBACK_CONFIRM, channel=channel)
    rollback = await w.drive()
    assert rollback.state == RollbackStatus.SUCCEEDED and rollback.incident_id == 1
    assert any("succeeded" in line for line in w.thread(channel))
    card = json.dumps(w.bed.card(channel).blocks)
    assert "RB-1" in card and "succeeded" in card and "incident_ack" in card


@sqlite_only
async def test_p3_incident_needs_approval(world):
    w = world
    await w.bed.run_command("open P3 typo on the status page service:api")
    await w.bed.run_jobs()
    channel = w.bed.incident_channel(1).id
    await w.command("api", channel=channel)
    assert "waiting for 1 approval" in await w.click(AVA, ActionId.ROLLBACK_CONFIRM, channel=channel)
    assert not w.trigger_requests("api")


@sqlite_only
async def test_cancel_by_requester_or_owner_only_before_confirm(open_world):
    w = open_world
    await w.command("api", user=ELI)
    # someone who is neither owner nor requester
    assert "may cancel" in await w.click("U4F5A6Y7R", ActionId.ROLLBACK_CANCEL)
    assert "You canceled RB-1" in await w.click(ELI, ActionId.ROLLBACK_CANCEL)
    rollback = await w.rollback()
    assert rollback.state == RollbackStatus.CANCELED and rollback.finished_by == ELI
    blocks = json.dumps(w.preview().blocks)
    assert "rollback_confirm" not in blocks and "Canceled" in blocks
    late = await w.forged_click(AVA, ActionId.ROLLBACK_CONFIRM, value=str(rollback.id), message_ts=rollback.message_ts)
    assert "canceled" in late
    assert not w.trigger_requests("api")
    # a confirmed rollback cannot be canceled
    await w.command("api")
    await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    second = await w.rollback()
    reply = await w.forged_click(AVA, ActionId.ROLLBACK_CANCEL, value=str(second.id), message_ts=second.message_ts)
    assert "cannot be stopped" in reply


@sqlite_only
async def test_preview_expires_and_a_late_confirm_is_refused(open_world):
    w = open_world
    await w.command("api")
    w.clock.advance(timedelta(minutes=15, seconds=1))
    reply = await w.click(AVA, ActionId.ROLLBACK_CONFIRM)  # before the expiry job ran
    assert "expired" in reply and not w.trigger_requests("api")
    rollback = await w.rollback()
    assert rollback.state == RollbackStatus.EXPIRED
    assert "rollback_confirm" not in json.dumps(w.preview().blocks)
    # the expiry job finds it done; a new request is not blocked
    await w.bed.run_jobs()
    assert "Rollback preview RB-2" in await w.command("api")


@sqlite_only
async def test_expiry_job_updates_the_preview(open_world):
    w = open_world
    await w.command("api")
    w.clock.advance(timedelta(minutes=16))
    await w.bed.run_jobs()
    assert (await w.rollback()).state == RollbackStatus.EXPIRED
    assert any("expired" in line for line in w.thread())
    assert "Expired" in json.dumps(w.preview().blocks)


@pytest.mark.parametrize("failure", ["an error", "no answer"])
async def test_a_group_owner_is_refused_when_slack_cannot_list_the_group(open_world, failure):
    """Owners through ``group:`` are read from Slack at the click; when Slack cannot list the
    group, the check fails closed: the Confirm of a member of it is refused, nothing starts."""
    w = open_world
    await w.command("api", user=AVA)  # AVA owns `api` only through group:S0PLATFORM
    if failure == "an error":
        w.emu.fail_next("usergroups.users.list", "internal_error")
    else:  # however often the client tries again, the answer never arrives
        w.emu.lose_answer_next("usergroups.users.list", times=100)
    reply = await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    assert "cannot tell whether you are an owner of `api`" in reply and "Nothing was done" in reply
    await w.bed.settle()
    rollback = await w.rollback()
    assert rollback.state == RollbackStatus.PREVIEW and rollback.confirmed_by is None
    assert not w.trigger_requests("api")
    assert await _count(w, Job, kind="rollback.trigger") == 0
    # Once Slack lists the group again, the same owner gets through.
    w.emu.clear_faults()
    assert "You confirmed" in await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
    assert len(w.trigger_requests("api")) == 1


async def test_a_rollback_confirmed_outside_an_incident_opens_a_p2_that_escalates_as_p2(open_world):
    """README: outside an incident, confirming opens a P2 incident for the service, which is
    then escalated as P2 (sample matrix: oncall:backend at once, its secondary after 1h; a
    P1 would repeat at 5m and widen at 15m)."""
    w = open_world
    await w.command("api", user=DANA)  # in #general: no incident
    assert "You confirmed" in await w.click(DANA, ActionId.ROLLBACK_CONFIRM)
    rollback = await w.rollback()
    incident = await w.incident(rollback.incident_id)
    assert (incident.severity, incident.service, incident.state) == (Severity.P2, "api", IncidentState.OPEN)
    opened = incident.opened_at

    async def pages() -> list[tuple[int | None, int, str, timedelta]]:
        async with w.rt.sessions() as session:
            rows = (await session.execute(select(Page).where(Page.incident_id == incident.id))).scalars()
            return sorted((p.level, p.attempt, p.target, p.due_at - opened) for p in rows)

    for minutes in (0, 5, 15, 59):
        w.clock.set(opened + timedelta(minutes=minutes))
        await w.bed.settle()
    assert await pages() == [(0, 0, "oncall:backend", timedelta(0))]
    w.clock.set(opened + timedelta(hours=1))
    await w.bed.settle()
    assert await pages() == [(0, 0, "oncall:backend", timedelta(0)),
                             (1, 0, "oncall:backend:secondary", timedelta(hours=1))]
