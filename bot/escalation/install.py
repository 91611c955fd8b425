"""Wire escalation into a Runtime: job handlers on its worker, pagers built on first use."""

from __future__ import annotations

from collections.abc import Mapping

from bot.escalation import service  # noqa: F401 - registers the lifecycle subscriber
from bot.escalation.engine import ESCALATION_RETRY, EscalationEngine
from bot.pagers import Pager, build_pagers
from bot.pagers.slack import page_client

ENGINE_KEY = "escalation"


def install(rt) -> None:
    built: dict[str, object] = {}

    def pagers() -> Mapping[str, Pager]:
        # The pagers share the runtime's HTTP session, which exists once it has started
        # (before any job runs); a restarted runtime gets a new session, hence new pagers.
        if rt.http is None:
            raise RuntimeError("the runtime has not started: no HTTP session for the pagers")
        if built.get("http") is not rt.http:
            built["http"] = rt.http
            # Pages go out under the incident's row lock: their Slack client never sleeps
            # on a rate limit (the runtime's shared client does) and never repeats a post.
            built["pagers"] = build_pagers(rt.settings, rt.http, rt.slack, retry=ESCALATION_RETRY,
                                           page_client=page_client(rt.slack))
        return built["pagers"]  # type: ignore[return-value]

    engine = EscalationEngine(sessions=rt.sessions, clock=rt.clock, playbooks=rt.playbooks,
                              slack=rt.slack, pagers=pagers)
    engine.register(rt.worker)
    rt.extras[ENGINE_KEY] = engine


def engine_of(rt) -> EscalationEngine:
    return rt.extras[ENGINE_KEY]  # type: ignore[return-value]
