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


async def test_a_near_miss_subcommand_gets_a_did_you_mean(bed):
    assert "Did you mean `open`?" in await bed.run_command("opne P1 checkout is failing")
    assert "Did you mean `timeline`?" in await bed.run_command("timelne")
    assert "Did you mean `resolve`?" in await bed.run_command("clsoe")  # an alias's command
    assert "Did you mean" not in await bed.run_command("frobnicate")
    assert await _count_incidents(bed) == 0


async def _count_incidents(bed) -> int:
    async with bed.rt.sessions() as session:
        return len(await incidents.list_incidents(session=session, include_resolved=True))


async def test_list_with_nothing_open_says_how_to_see_resolved_ones(bed):
    channel = await _open(bed)
    await bed.run_command("resolve fixed", channel=channel)
    empty = await bed.run_command("list")
    assert "No open incidents" in empty and "`/incident list all`" in empty, empty
    assert "INC-1" in await bed.run_command("list all")


async def test_outside_an_incident_channel_the_refusal_names_a_real_incident(bed):
    nothing = await bed.run_command("timeline")
    assert "no incidents yet" in nothing and "INC-" not in nothing.split("Usage")[0], nothing
    await _open(bed)
    second = await bed.run_command("open P2 search is slow")
    assert "INC-2" in second
    refused = await bed.run_command("timeline")
    assert "not an incident channel" in refused and "`INC-2`" in refused, refused
    assert "INC-12" not in refused and "search is slow" in refused
    await bed.run_command("resolve INC-2 fixed")
    assert "`INC-1`" in await bed.run_command("note hello")  # the newest one still open


def _as_fallback(text: str) -> str:
    """What a client that cannot format Slack dates shows: each ``<!date^…|fallback>``'s fallback."""
    return re.sub(r"<!date\^[^|>]*\|([^>]*)>", r"\1", text)


def _as_formatted(text: str) -> str:
    """What Slack shows: the token formatted (the time in the reader's zone)."""
    return re.sub(r"<!date\^\d+\^([^|>]*)\|[^>]*>",
                  lambda m: m.group(1).replace("{date_short_pretty}", "Dec 14").replace("{time}", "9:00 AM"),
                  text)


async def test_the_on_call_reply_gives_each_handoff_time_once(bed):
    reply = await bed.run_command("oncall backend")
    line = next(x for x in reply.splitlines() if "next:" in x)
    assert "<!date^" in line and "{time}" in line, line
    assert len(re.findall(r"\d{1,2}:\d\d", _as_fallback(line))) == 1, _as_fallback(line)
    assert len(re.findall(r"\d{1,2}:\d\d", _as_formatted(line))) == 1, _as_formatted(line)
