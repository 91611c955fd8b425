"""Wire rollbacks into a Runtime: the flow's job handlers, and the incident card's
"Rollbacks" section."""

from __future__ import annotations

from bot.rollback.flow import RollbackFlow

FLOW_KEY = "rollback"


def install(rt) -> None:
    flow = RollbackFlow(
        sessions=rt.sessions, clock=rt.clock, settings=rt.settings, playbooks=rt.playbooks,
        slack=rt.slack, http=lambda: rt.http, worker_id=rt.worker.worker_id,
        wake=rt.worker.wake)
    for kind, handler in flow.handlers().items():
        rt.worker.register(kind, handler)
    rt.effects.add_card_section(flow.card_section)
    rt.extras[FLOW_KEY] = flow


def flow_of(rt) -> RollbackFlow:
    return rt.extras[FLOW_KEY]  # type: ignore[return-value]
