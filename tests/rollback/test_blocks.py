"""Block Kit builders of /rollback (pure): content, buttons by state, Slack's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.providers.base import Deploy, RollbackPlan
from bot.rollback import blocks
from bot.rollback.models import Rollback, RollbackStatus, RollbackStep
from bot.slack.blocks import with_card_sections
from bot.slack.ids import ActionId

NOW = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)
ZONE = ZoneInfo("America/New_York")


def _plan(message: str = "Add checkout retries") -> dict:
    current = Deploy("dep-4", "live", True, False, NOW - timedelta(minutes=35), "d4e5f6a" + "0" * 33,
                     "Refactor payment client", "alice")
    target = Deploy("dep-2", "deactivated", False, True, NOW - timedelta(days=1), "b2c3d4e" + "0" * 33,
                    message, None)
    return RollbackPlan("render", current, target, ("Render: autodeploy stays on.",)).to_dict()


def _rollback(state: RollbackStatus = RollbackStatus.PREVIEW, **kw) -> Rollback:
    values = {"id": 7, "service": "api", "provider": "render", "state": state, "requested_by": "U1",
              "requested_at": NOW - timedelta(minutes=5), "expires_at": NOW + timedelta(minutes=10),
              "current_id": "dep-4", "target_id": "dep-2", "plan": _plan(), "approvals_needed": 1,
              "reason": "checkout 500s", "updated_at": NOW}
    values.update(kw)
    return Rollback(**values)


def _actions(built: list[dict]) -> list[str]:
    return [e["action_id"] for b in built if b["type"] == "actions" for e in b["elements"]]


def test_preview_shows_live_now_and_target_with_commit_age_and_deployer():
    built = blocks.preview_blocks(_rollback(), approvers=[], owners="<@U9>", incident_key=None, now=NOW, zone=ZONE)
    text = json.dumps(built, ensure_ascii=False)
    assert built[0]["text"]["text"] == "Rollback RB-7: api (Render)"
    assert "*Live now*: `dep-4` · `d4e5f6a` “Refactor payment client” · 35m ago · by alice" in text
    assert "*Roll back to*: `dep-2` · `b2c3d4e` “Add checkout retries” · 1d ago · deployer not reported" in text
    assert "confirming opens a P2 incident" in text and "checkout 500s" in text
    assert "0 of 1" in text and "expires in 10m" in text
    assert "Render: autodeploy stays on." in text
    assert _actions(built) == [ActionId.ROLLBACK_CONFIRM, ActionId.ROLLBACK_APPROVE, ActionId.ROLLBACK_CANCEL]
    assert all(e["value"] == "7" for b in built if b["type"] == "actions" for e in b["elements"])


def test_no_approve_button_when_no_approval_is_needed():
    built = blocks.preview_blocks(_rollback(approvals_needed=0), approvers=[], owners="x", incident_key="INC-3",
                                  now=NOW, zone=ZONE)
    assert _actions(built) == [ActionId.ROLLBACK_CONFIRM, ActionId.ROLLBACK_CANCEL]
    assert "in INC-3" in json.dumps(built, ensure_ascii=False)


@pytest.mark.parametrize("state", [s for s in RollbackStatus if s != RollbackStatus.PREVIEW])
def test_buttons_only_while_previewed(state):
    rollback = _rollback(state, confirmed_by="U2", outcome="done", provider_detail="rolling out")
    built = blocks.preview_blocks(rollback, approvers=["U3"], owners="x", incident_key="INC-1", now=NOW, zone=ZONE)
    assert _actions(built) == []
    assert state.label.capitalize() in json.dumps(built, ensure_ascii=False)


def test_limits_hold_for_long_inputs():
    long = "y" * 5000
    rollback = _rollback(service="s" * 60, reason="r" * 500, plan=_plan(long), outcome=long)
    for state in (RollbackStatus.PREVIEW, RollbackStatus.FAILED):
        rollback.state = state
        built = blocks.preview_blocks(rollback, approvers=["U1"] * 10, owners="o" * 500, incident_key=None,
                                      now=NOW, zone=ZONE)
        assert len(built) <= 50 and len(built[0]["text"]["text"]) <= 150
        for block in built:
            for element in [block.get("text")] + block.get("elements", []):
                if isinstance(element, dict) and element.get("type") == "mrkdwn":
                    assert len(element["text"]) <= 3000


def test_step_line_and_card_section():
    step = RollbackStep(rollback_id=7, seq=3, at=NOW, step="triggered", state="rolling_back",
                        text="Render accepted the request", data={})
    assert blocks.step_line(step) == ":arrows_counterclockwise: Render accepted the request"
    rollback = _rollback(RollbackStatus.CHECKING, confirmed_at=NOW - timedelta(minutes=2),
                         health_detail="answered HTTP 200")
    section = blocks.card_blocks([rollback], now=NOW)
    assert "RB-7 `api` via Render: `dep-4` → `dep-2` — *live, checking health*" in section[0]["text"]["text"]
    assert "2m since confirmed" in section[0]["text"]["text"]
    card = [{"type": "header"}, {"type": "section"}, {"type": "actions"}]
    assert [b.get("block_id") for b in with_card_sections(card, section)] == [None, None, "rollbacks", None]
    assert with_card_sections(card, []) == card


def test_status_and_list_texts():
    active = _rollback(RollbackStatus.ROLLING_BACK, confirmed_by="U2", provider_detail="Render is rolling out")
    done = _rollback(RollbackStatus.SUCCEEDED, id=6, outcome="All good")
    text = blocks.status_text([active, done], service="api", now=NOW, zone=ZONE)
    assert "_In flight_" in text and "_Recent_" in text and "RB-7" in text and "All good" in text
    assert "No rollbacks of `api` yet" in blocks.status_text([], service="api", now=NOW, zone=ZONE)
    rows = [blocks.ServiceRow("api", "render", "srv-1", _plan()["current"]),
            blocks.ServiceRow("web", "vercel", "prj_1", None, error="Vercel is unavailable"),
            blocks.ServiceRow("shop", "github-actions", "acme/shop@production", None, in_flight="RB-2 rolling back")]
    listing = blocks.list_text(rows, now=NOW)
    assert "*api* — Render `srv-1`" in listing and "live: `dep-4`" in listing
    assert ":warning: Vercel is unavailable" in listing and "RB-2 rolling back" in listing
    assert "GitHub Actions" in listing and "no live deploy reported" in listing
