"""Interactions Firebreak does not (or no longer) handle, through the signed HTTP endpoint: an
unknown button, form, global or message shortcut, or command gets a 200 (a 404 shows Slack's
error icon) and, where a person can see it, a reply saying nothing was done."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from bot.incidents.models import Incident
from bot.jobs.models import Job
from tests.hostile.support import count_rows, watching_logs
from tests.support.bed import GENERAL, REPORTER

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
NO_LONGER = "is no longer handled by Firebreak, so nothing was done"


@sqlite_only
async def test_unknown_interactions_are_acknowledged_and_refused_where_someone_sees_it(bed):
    emu = bed.emu
    team = {"id": emu.workspace.team.id}
    with watching_logs() as records:
        # an old button on a message of Firebreak's, with an action id it no longer has
        message = (await bed.rt.slack.chat_postMessage(channel=GENERAL, text="old", blocks=[
            {"type": "actions", "elements": [{"type": "button", "action_id": "launch_missiles",
                                              "text": {"type": "plain_text", "text": "Launch"}}]}])).data
        sent = await bed.interact(emu.block_action(REPORTER, GENERAL, message["ts"], "launch_missiles"))
        assert sent.status == 200
        await bed.wait_for(lambda: emu.response_url_posts)
        reply = emu.response_url_posts[-1]
        assert reply.user_id == REPORTER and f"This button {NO_LONGER}" in reply.payload["text"]
        assert reply.payload["response_type"] == "ephemeral"

        # a form whose callback id is unknown: the modal itself says so
        sent = await bed.interact({"type": "view_submission", "user": {"id": REPORTER}, "team": team,
                                   "view": {"id": "V0OLD", "type": "modal", "callback_id": "order_pizza",
                                            "state": {"values": {}}}})
        assert sent.status == 200
        assert sent.json["response_action"] == "update" and NO_LONGER in json.dumps(sent.json["view"])

        # a global shortcut: no channel, so a small modal
        sent = await bed.interact({"type": "shortcut", "callback_id": "make_coffee", "user": {"id": REPORTER},
                                   "team": team, "trigger_id": emu.new_trigger_id(REPORTER)})
        assert sent.status == 200
        await bed.wait_for(lambda: emu.calls_to("views.open"))
        assert f"This shortcut {NO_LONGER}" in json.dumps(emu.calls_to("views.open")[-1].params)

        # a message shortcut: an ephemeral reply in the channel
        replies = len(emu.response_url_posts)
        sent = await bed.interact({"type": "message_action", "callback_id": "summarise", "user": {"id": REPORTER},
                                   "team": team, "channel": {"id": GENERAL}, "trigger_id": emu.new_trigger_id(REPORTER),
                                   "message": {"type": "message", "ts": message["ts"], "text": "old"},
                                   "response_url": emu.new_response_url(GENERAL, REPORTER)})
        assert sent.status == 200
        await bed.wait_for(lambda: len(emu.response_url_posts) > replies)
        assert f"This shortcut {NO_LONGER}" in emu.response_url_posts[-1].payload["text"]

        # a select menu asking for options Firebreak does not serve
        sent = await bed.interact({"type": "block_suggestion", "action_id": "pick_pizza", "block_id": "b",
                                   "value": "mar", "user": {"id": REPORTER}, "team": team})
        assert sent.status == 200 and sent.json == {"options": []}

        # a command that is not Firebreak's
        fields = emu.slash_command(REPORTER, GENERAL, "/incident", "help")
        fields["command"] = "/deploy"
        sent = await bed.post(urlencode(fields), content_type="application/x-www-form-urlencoded")
        assert sent.status == 200 and "Firebreak does not handle `/deploy`" in sent.json["text"]

        await bed.settle()
        assert not records.problems(), records.problems()
    assert await count_rows(bed, Incident, Job) == {"incidents": 0, "jobs": 0}
