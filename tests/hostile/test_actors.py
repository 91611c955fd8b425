"""Actors must be people in the workspace, through the signed HTTP endpoint: requests made in
the name of Firebreak's own bot user or of ids Slack does not know are refused and change
nothing, and so is naming them as commander, follow-up owner or page target. Slack is asked
(``users.info``) once per id, not at every request."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from bot.incidents.models import Incident, IncidentState
from bot.rollback.models import RollbackStatus
from bot.slack.ids import ActionId
from tests.rollback.conftest import AVA, open_world  # noqa: F401 - the fixture
from tests.support.bed import GENERAL, REPORTER

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
FORM = "application/x-www-form-urlencoded"
UNKNOWN = "U999NOPE"
ENTERPRISE = "W0ENTERPR1"


async def _incident(bed) -> Incident:
    async with bed.rt.sessions() as session:
        return (await session.execute(select(Incident))).scalar_one()


async def forged_command(bed, text: str, *, user: str, channel: str) -> str:
    """``/incident <text>`` signed like Slack's, in the name of ``user``."""
    fields = bed.emu.slash_command(REPORTER, channel, "/incident", text)
    fields["user_id"] = user
    sent = await bed.post(urlencode(fields), content_type=FORM)
    sent.response_url = fields["response_url"]
    assert sent.status == 200
    return sent.json.get("text") or (await bed.reply(sent))["text"]


async def test_the_bot_and_unknown_ids_cannot_acknowledge(bed):
    await bed.run_command("open P1 checkout is failing")
    await bed.run_jobs()
    channel = bed.incident_channel(1).id
    bot = bed.emu.workspace.bot_user_id
    for user in (bot, UNKNOWN, ENTERPRISE):
        reply = await forged_command(bed, "ack", user=user, channel=channel)
        assert f"<@{user}> is " in reply and "only people in this workspace" in reply, reply
    # the card's Acknowledge button, clicked in the bot's name
    payload = bed.emu.block_action(REPORTER, channel, bed.card(channel).ts, ActionId.INCIDENT_ACK.value, value="1")
    payload["user"]["id"] = bot
    before = len(bed.emu.response_url_posts)
    assert (await bed.interact(payload)).status == 200
    await bed.wait_for(lambda: len(bed.emu.response_url_posts) > before)
    assert "is a bot, not a person" in bed.emu.response_url_posts[-1].payload["text"]
    incident = await _incident(bed)
    assert incident.state == IncidentState.OPEN and incident.acknowledged_by is None  # escalation goes on
    # Slack was asked about each id once, however often it acted
    assert await forged_command(bed, "ack", user=UNKNOWN, channel=channel)
    asked = [c.params.get("user") for c in bed.emu.calls_to("users.info")]
    assert asked.count(UNKNOWN) == 1 and asked.count(REPORTER) == 1


@pytest.mark.parametrize("named", ["bot", UNKNOWN, ENTERPRISE])
async def test_only_people_can_be_named_commander_owner_or_paged(bed, named):
    await bed.run_command("open P2 search is slow")
    await bed.run_jobs()
    channel = bed.incident_channel(1).id
    who = bed.emu.workspace.bot_user_id if named == "bot" else named
    reply = await bed.run_command(f"assign commander <@{who}>", channel=channel)
    assert f"<@{who}> is " in reply and "cannot be the commander" in reply, reply
    reply = await bed.run_command(f"followup fix the index <@{who}>", channel=channel)
    assert "cannot be the owner of a follow-up" in reply, reply
    reply = await bed.run_command(f"page <@{who}> look at this", channel=channel)
    assert "cannot be paged" in reply, reply
    assert (await _incident(bed)).commander_id is None
    assert not [c for c in bed.emu.calls_to("chat.postMessage") if c.params.get("channel") == who]


@sqlite_only
async def test_a_person_can_still_be_assigned(bed):
    await bed.run_command("open P2 search is slow")
    await bed.run_jobs()
    channel = bed.incident_channel(1).id
    assert "is now commander" in await bed.run_command("assign commander <@U0G9QF9C6|ben>", channel=channel)


@sqlite_only
async def test_a_confirm_in_the_bots_name_is_refused(open_world):  # noqa: F811
    w = open_world
    await w.command("api", user=AVA)
    rollback = await w.rollback()
    payload = w.emu.block_action(AVA, GENERAL, rollback.message_ts, ActionId.ROLLBACK_CONFIRM.value,
                                 value=str(rollback.id))
    payload["user"]["id"] = w.emu.workspace.bot_user_id
    before = len(w.emu.response_url_posts)
    assert (await w.bed.interact(payload)).status == 200
    await w.bed.wait_for(lambda: len(w.emu.response_url_posts) > before)
    assert "is a bot, not a person" in w.emu.response_url_posts[-1].payload["text"]
    assert (await w.rollback()).state == RollbackStatus.PREVIEW and not w.trigger_requests("api")


@sqlite_only
async def test_slack_unable_to_say_who_someone_is_does_not_stop_an_ack(bed):
    await bed.run_command("open P1 checkout is failing")
    await bed.run_jobs()
    channel = bed.incident_channel(1).id
    bed.emu.fail_next("users.info", "fatal_error", times=20)
    assert "You acknowledged INC-1" in await bed.run_command("ack", channel=channel, user="U0G9QF9C6")
    assert (await _incident(bed)).state == IncidentState.ACKNOWLEDGED
