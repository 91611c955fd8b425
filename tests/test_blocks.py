from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.incidents.models import Incident, IncidentState
from bot.playbooks.models import Severity
from bot.slack import blocks
from bot.slack.channel_names import incident_channel_name
from bot.slack.ids import ActionId

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def _incident(**kw) -> Incident:
    values = {"number": 12, "title": "Checkout is failing", "severity": Severity.P1, "reporter_id": "U1",
              "opened_at": T0, "updated_at": T0, "state": IncidentState.OPEN, "service": "api"}
    values.update(kw)
    return Incident(**values)


def _actions(card):
    return [e["action_id"] for b in card if b["type"] == "actions" for e in b["elements"]]


def test_card_of_open_incident_has_the_three_controls():
    card = blocks.incident_card(_incident(), now=T0 + timedelta(minutes=65), zone=ZoneInfo("America/New_York"))
    assert _actions(card) == [ActionId.INCIDENT_ACK, ActionId.INCIDENT_RESOLVE, ActionId.INCIDENT_CHANGE_SEVERITY]
    text = str(card)
    assert "1h 5m" in text and "EST" in text and "UTC" in text and "api" in text


def test_card_of_resolved_incident_has_no_buttons_and_stays_in_limits():
    incident = _incident(state=IncidentState.RESOLVED, resolved_at=T0 + timedelta(hours=2),
                         title="x" * 150, summary="s" * 3000)
    card = blocks.incident_card(incident, now=T0 + timedelta(days=3), zone=ZoneInfo("UTC"))
    assert _actions(card) == []
    assert len(card[0]["text"]["text"]) <= 150
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in card)
    assert "2h" in str(card)


def test_channel_names_follow_slack_rules():
    name = incident_channel_name("inc", 12, "Checkout is FAILING!! (EU) — ünïcode")
    assert name == "inc-12-checkout-is-failing-eu-unicode"
    long_name = incident_channel_name("inc", 123456, "a" * 200, attempt=3)
    assert len(long_name) <= 80 and long_name.endswith("-4")
    assert incident_channel_name("inc", 5, "!!!") == "inc-5"


def test_modal_respects_limits():
    view = blocks.open_incident_modal([f"svc{i}" for i in range(150)], channel_id="C1")
    assert len(view["title"]["text"]) <= 24
    service = view["blocks"][-1]["element"]["options"]
    assert len(service) == 100
