"""A scripted incident with a known timeline, for the export and web tests.

Times: opened 2026-03-02 14:00:00 UTC (09:00:00 EST in America/New_York);
acknowledged +4m, mitigated +12m, resolved +30m; P1 (respond within 1h).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.clock import ManualClock
from bot.db.engine import SessionMaker, transaction
from bot.export import service as exports
from bot.incidents import lifecycle
from bot.incidents import service as incidents
from bot.incidents.models import EventKind, Role
from bot.playbooks.models import Severity

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
AVA = "U024BE7LH"     # reporter
BEN = "U0G9QF9C6"     # on call, commander
NAMES = {AVA: "ava", BEN: "ben"}
CHANNEL = "C0GENERAL"
LEAKED = "xoxb-leaked-1234567890-abcdefghij"


@dataclass
class Scripted:
    number: int
    # (kind, a piece of the rendered text, minutes after the start), in timeline order
    expected: list[tuple[str, str, float]] = field(default_factory=list)


async def _step(sessions: SessionMaker, clock: ManualClock, number: int, minutes: float,
                action) -> Any:
    clock.set(START + timedelta(minutes=minutes))
    async with transaction(sessions) as session:
        incident = await incidents.get_incident(session=session, number=number, for_update=True)
        return await action(session, incident, clock.now())


async def script_incident(sessions: SessionMaker, clock: ManualClock, *, secret: str = LEAKED,
                          title: str = "Checkout is failing") -> Scripted:
    lifecycle.subscribe(exports.followup_after_rollback)
    clock.set(START)
    async with transaction(sessions) as session:
        opened = await incidents.open_incident(session=session, severity=Severity.P1, title=title,
                                               reporter_id=AVA, now=clock.now(), service="api")
    number = opened.incident.number
    run = Scripted(number)
    expected = run.expected
    expected.append(("opened", f"INC-{number} opened as P1: {title}", 0))

    def event(kind: str, text: str = "", actor: str | None = incidents.SYSTEM_ACTOR, **data: Any):
        async def action(session, incident, now):
            await incidents.record_event(session=session, incident=incident, kind=kind, now=now,
                                         actor=actor, text=text, data=data)
        return action

    await _step(sessions, clock, number, 1, event(
        EventKind.PAGE_DELIVERED, f"Paged <@{BEN}> (oncall:backend, level 1)",
        target="oncall:backend", recipient=f"user:{BEN}", level=1, attempt=0))
    expected.append(("page_delivered", "Paged @ben (oncall:backend, level 1)", 1))
    await _step(sessions, clock, number, 2, event(
        EventKind.PAGE_FAILED, "", target="pagerduty:default", recipient="pagerduty:default",
        level=1, attempt=0))
    expected.append(("page_failed", "Page failed: pagerduty:default (level 1)", 2))
    await _step(sessions, clock, number, 4, lambda s, i, now: incidents.acknowledge(
        session=s, incident=i, actor=BEN, now=now))
    expected.append(("acknowledged", "Acknowledged by @ben", 4))
    await _step(sessions, clock, number, 5, lambda s, i, now: incidents.assign_role(
        session=s, incident=i, role=Role.COMMANDER, user_id=BEN, actor=BEN, now=now))
    expected.append(("role_assigned", "@ben is now commander", 5))
    await _step(sessions, clock, number, 6, lambda s, i, now: incidents.add_note(
        session=s, incident=i, actor=BEN, now=now,
        text=f"impact: 30% of checkouts fail for <@{AVA}>'s customers; see <#{CHANNEL}>"))
    expected.append(("note", "impact: 30% of checkouts fail for @ava's customers; see #general", 6))
    await _step(sessions, clock, number, 7, event(
        EventKind.ROLLBACK, "", actor=BEN, service="api", provider="render", state="in_progress",
        **{"from": "dep-bad", "to": "dep-good"}))
    expected.append(("rollback", "Rollback of api dep-bad → dep-good via render (in_progress)", 7))
    await _step(sessions, clock, number, 9, event(
        EventKind.ROLLBACK, "Rolled back api to dep-good", actor=BEN, service="api",
        provider="render", state="completed", **{"from": "dep-bad", "to": "dep-good"}))
    expected.append(("rollback", "Rolled back api to dep-good", 9))
    # the automatic follow-up, recorded in the same transaction
    expected.append(("followup", ("Follow-up: Revert or fix the change in git (api was rolled "
                                  "back from dep-bad to dep-good) (owner @ben)"), 9))
    await _step(sessions, clock, number, 10, lambda s, i, now: incidents.post_status(
        session=s, incident=i, actor=BEN, now=now, text="Rolled back; error rate falling"))
    expected.append(("status_update", "Rolled back; error rate falling", 10))
    await _step(sessions, clock, number, 12, lambda s, i, now: incidents.mitigate(
        session=s, incident=i, actor=BEN, now=now))
    expected.append(("mitigated", "Mitigated by @ben", 12))
    await _step(sessions, clock, number, 13, lambda s, i, now: incidents.add_note(
        session=s, incident=i, actor=AVA, now=now, text=f"the token was {secret} | oops"))
    expected.append(("note", "the token was [redacted] \\| oops", 13))
    await _step(sessions, clock, number, 14, lambda s, i, now: exports.add_followup(
        session=s, incident=i, actor=BEN, owner_id=AVA, now=now, text="Add a canary for checkout"))
    expected.append(("followup", "Follow-up: Add a canary for checkout (owner @ava)", 14))
    await _step(sessions, clock, number, 20, lambda s, i, now: incidents.add_note(
        session=s, incident=i, actor=BEN, now=now, text="root cause: a bad deploy of the payment client"))
    expected.append(("note", "root cause: a bad deploy of the payment client", 20))
    await _step(sessions, clock, number, 25, lambda s, i, now: incidents.add_note(
        session=s, incident=i, actor=BEN, now=now, text="lesson: canaries catch this"))
    expected.append(("note", "lesson: canaries catch this", 25))
    await _step(sessions, clock, number, 30, lambda s, i, now: incidents.resolve(
        session=s, incident=i, actor=BEN, now=now, summary="Rolled back the payment client"))
    expected.append(("resolved", "Rolled back the payment client", 30))
    return run
