"""Text people type, through the signed HTTP endpoint: re-posted by Firebreak it pings nobody
(``<!channel>``, ``<!here>``, ``<!everyone>``, ``<!subteam^…>`` are shown as plain names, in
announcement text and blocks, the card, status lines, the rollback preview and its thread),
never reads reversed, and a title that shows nothing is refused like an empty one."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from bot.incidents.models import Incident
from bot.slack.ids import ActionId
from tests.rollback.conftest import AVA, BEN, open_world  # noqa: F401 - the fixture
from tests.support.bed import ANNOUNCE, GENERAL, REPORTER

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
LIVE = re.compile(r"<!(?:channel|here|everyone|group)\b|<!subteam\^S0HACKERS", re.IGNORECASE)
POSTING = ("chat.postMessage", "chat.update", "chat.postEphemeral", "conversations.setTopic")
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
HOSTILE = "<!channel> <!here> <!everyone> <!subteam^S0HACKERS|@platform>"


def posted(emu) -> list[str]:
    """Everything Firebreak asked Slack to show: text, blocks, topics (as JSON text)."""
    return [json.dumps(c.params, ensure_ascii=False) for c in emu.calls if c.method in POSTING]


def live_mentions(emu) -> list[str]:
    return [m.group(0) for body in posted(emu) for m in LIVE.finditer(body)]


async def _incidents(bed) -> int:
    async with bed.rt.sessions() as session:
        return (await session.execute(select(func.count()).select_from(Incident))).scalar()


async def test_mentions_typed_in_titles_status_updates_and_summaries_ping_nobody(bed):
    reply = await bed.run_command(f"open P1 {HOSTILE} checkout down, ask <@U0G9QF9C6>")
    assert "INC-1" in reply and "<!" not in reply
    await bed.run_jobs()
    channel = bed.incident_channel(1).id
    for text in (f"status {HOSTILE} rolling back", f"mitigated {HOSTILE} error rate normal",
                 f"resolve {HOSTILE} pool size raised"):
        await bed.run_command(text, channel=channel)
        await bed.run_jobs()
    assert live_mentions(bed.emu) == []
    announced = [m for m in bed.emu.messages(ANNOUNCE)]
    assert announced[0].text == ("INC-1 opened: @channel @here @everyone @platform checkout down, "
                                 "ask <@U0G9QF9C6>")
    assert "*@channel @here @everyone @platform checkout down, ask <@U0G9QF9C6>*" in json.dumps(
        announced[0].blocks)
    assert any("Status update" in (m.text or "") and "@here" in m.text for m in announced)
    card = json.dumps(bed.card(channel).blocks)
    assert "@platform checkout down" in card and "<@U0G9QF9C6>" in card


async def test_bidi_controls_never_reach_slack(bed):
    await bed.run_command("open P2 \u202echeckout\u202c is \u2067down\u2069")
    await bed.run_jobs()
    async with bed.rt.sessions() as session:
        incident = (await session.execute(select(Incident))).scalar_one()
    assert incident.title == "checkout is down"
    assert not [body for body in posted(bed.emu) if BIDI.search(body)]


@pytest.mark.parametrize("title", ["\u200b", "\u200b\u200c\u200d", "\u202e", "\u2066 \u2069 \ufeff",
                                   "\u3164", "\u2800\u2060"])
async def test_a_title_that_shows_nothing_is_refused_with_usage(bed, title):
    reply = await bed.run_command(f"open P1 {title}")
    assert "needs a title" in reply and "/incident open P0|P1|P2|P3" in reply
    assert await _incidents(bed) == 0
    assert not bed.emu.calls_to("conversations.create")


@sqlite_only
async def test_an_invisible_title_in_the_form_is_refused_inline(bed):
    await bed.command("open")
    await bed.wait_for(lambda: bed.emu.views)
    view = bed.emu.views[0]
    payload = bed.emu.view_submission(REPORTER, view.id, {
        "modal_severity": {"severity": {"type": "static_select", "selected_option": {"value": "P1"}}},
        "modal_title": {"title": {"type": "plain_text_input", "value": "\u200b\u202e\u200d"}},
    })
    result = await bed.interact(payload)
    assert result.json["response_action"] == "errors" and "needs a title" in result.json["errors"]["modal_title"]
    assert await _incidents(bed) == 0


@sqlite_only
async def test_an_invisible_note_is_no_note(bed):
    await bed.run_command("open P2 search is slow")
    await bed.run_jobs()
    channel = bed.incident_channel(1).id
    reply = await bed.run_command("note \u200b\u2060", channel=channel)
    assert "needs some text" in reply


@sqlite_only
async def test_a_rollback_reason_pings_nobody_in_the_preview_its_thread_or_its_incident(open_world):  # noqa: F811
    w = open_world
    reply = await w.command(f"api {HOSTILE} bad deploy", user=AVA)
    assert "Rollback preview RB-1" in reply
    preview = w.preview(GENERAL)
    assert "*Reason*: @channel @here @everyone @platform bad deploy" in json.dumps(preview.blocks)
    assert "You confirmed" in await w.click(BEN, ActionId.ROLLBACK_CONFIRM)
    await w.drive()
    await w.bed.run_jobs()
    # the P2 incident the rollback opened is titled with the reason: its card and announcement
    channel = w.bed.incident_channel(1).id
    assert "Rollback of api: @channel @here" in json.dumps(w.bed.card(channel).blocks)
    assert live_mentions(w.emu) == []
