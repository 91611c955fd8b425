"""What people read from ``/incident``: the timeline reply, the channel topic, refusals that
help, the on-call reply. Signed requests in through ``/slack/events``, the fake Slack out."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from bot.db.engine import transaction
from bot.incidents import service as incidents
from bot.incidents.models import EventKind, Incident
from tests.support.bed import REPORTER, start_bed, stop_bed

OTHER = "U0G9QF9C6"
BASE_URL = "https://firebreak.example.com"


async def _open(bed, text: str = "open P1 checkout is failing service:api") -> str:
    reply = await bed.run_command(text)
    assert "INC-1 opened" in reply, reply
    await bed.run_jobs()
    return bed.incident_channel(1).id


def _topic_lines(bed, channel: str) -> list[str]:
    return [m.text for m in bed.emu.messages(channel, include_system=True) if m.subtype == "channel_topic"]


async def test_the_topic_is_set_only_when_its_text_changes(bed):
    channel = await _open(bed)
    for text in ("status investigating", "status still investigating", "note pool at 100%", "ack",
                 "status rolling back", "sev P0", "status watching error rates"):
        await bed.run_command(text, channel=channel)
        await bed.run_jobs()
    lines = _topic_lines(bed, channel)
    assert lines == ["set the channel topic: INC-1 P1 open: checkout is failing",
                     "set the channel topic: INC-1 P1 acknowledged: checkout is failing",
                     "set the channel topic: INC-1 P0 acknowledged: checkout is failing"], lines
    assert len(bed.emu.calls_to("chat.update")) >= 5  # the card itself was updated every time
