"""What people read from ``/incident``: the timeline reply, the channel topic, refusals that
help, the on-call reply. Signed requests in through ``/slack/events``, the fake Slack out."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from bot.db.engine import transaction
from bot.incidents import service as incidents
from bot.incidents.models import EventKind
from tests.support.bed import start_bed, stop_bed

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


# --- /incident timeline ---------------------------------------------------------------------


@pytest.fixture
async def web_bed(database_url):
    """The bed with the web pages on and a public URL, so that replies can link to them."""
    test_bed = await start_bed(database_url, settings_overrides={
        "web_auth_token": "web-token-0123456789abcdef", "public_base_url": BASE_URL})
    try:
        yield test_bed
    finally:
        await stop_bed(test_bed)
    assert not test_bed.emu.violations, test_bed.emu.violations


async def _timeline_reply(bed, channel: str) -> list[dict]:
    sent = await bed.command("timeline", channel=channel)
    assert sent.status == 200
    reply = await bed.reply(sent)
    assert reply["response_type"] == "ephemeral" and "Timeline of INC-1" in reply["text"]
    return reply["blocks"]


def _lines(blocks: list[dict]) -> list[str]:
    """The event lines of the reply, in order (the sections after the heading)."""
    return [line for b in blocks[1:] if b["type"] == "section" for line in b["text"]["text"].split("\n")]


async def test_the_timeline_reply_keeps_every_line_whole_names_kinds_and_links_the_web_timeline(web_bed):
    bed = web_bed
    channel = await _open(bed)
    for n in range(1, 18):
        await bed.run_command(f"note step {n}: restarted `api-{n}` after the pool hit 100% on "
                              f"<@{OTHER}>'s dashboard; error rate {n}% and falling, watching p99 "
                              "latency of checkout before the next change", channel=channel)
    await bed.run_command("status rolled back; the newest event of all", channel=channel)
    blocks = await _timeline_reply(bed, channel)
    lines = _lines(blocks)
    async with bed.rt.sessions() as session:
        incident = await incidents.get_incident(session=session, number=1)
        events, total = await incidents.latest_events(session=session, incident=incident, limit=100)
    assert total == len(events) >= 20 and len(lines) == total  # nothing cut
    assert "the newest event of all" in lines[-1] and "*Status update*" in lines[-1]
    for n in range(1, 18):
        expected = next(e.text for e in events if e.text.startswith(f"step {n}:"))
        assert any(line.endswith(expected) for line in lines), n  # each line whole
    assert all(line.count("`") % 2 == 0 for line in lines)
    kinds = " ".join(lines)
    assert "*Opened*" in kinds and "*Channel created*" in kinds and "*Note*" in kinds
    assert not re.search(r"\*[a-z]+_[a-z_]+\*", kinds)  # no `channel_created`, `status_update`
    assert len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert f"<{BASE_URL}/incidents/INC-1|" in json.dumps(blocks[-1])


async def test_a_long_timeline_keeps_the_newest_events_and_says_how_many_are_left_out(bed):
    channel = await _open(bed)
    async with transaction(bed.rt.sessions) as session:
        incident = await incidents.get_incident(session=session, number=1, for_update=True)
        start = bed.clock.now()
        for n in range(1, 151):
            await incidents.record_event(
                session=session, incident=incident, kind=EventKind.PAGE_DELIVERED, actor="firebreak",
                now=start + timedelta(seconds=n), text=f"page {n:03d} " + "word " * 240)
    bed.clock.advance(timedelta(minutes=5))
    await bed.run_command("note the newest: `pool` back to normal", channel=channel)
    blocks = await _timeline_reply(bed, channel)
    lines = _lines(blocks)
    assert len(blocks) == 50
    assert lines[-1].endswith("the newest: `pool` back to normal")
    assert lines[-2].split("*Page delivered* ")[1].startswith("page 150 ")  # newest kept, in order
    shown = [int(line.split("page ")[1][:3]) for line in lines[:-1]]
    assert shown == list(range(shown[0], 151)) and shown[0] > 1
    total = int(re.search(r"\((\d+) events\)", blocks[0]["text"]["text"]).group(1))
    assert total >= 153  # opened, channel created, 150 pages, the note (and the real pages)
    assert f"…{total - len(lines):,} earlier events not shown here" in blocks[1]["elements"][0]["text"]
    assert "/incident export" in json.dumps(blocks[-1])  # no web pages configured: the export
    assert all(line.count("`") % 2 == 0 and line.rstrip().endswith(("word", "normal")) for line in lines)


async def test_a_line_too_long_for_a_section_is_shortened_outside_its_code_spans(bed):
    channel = await _open(bed)
    text = "x" * 2900 + " see `select * from pool_stats where busy` now"
    await bed.run_command(f"note {text}", channel=channel)
    lines = _lines(await _timeline_reply(bed, channel))
    last = lines[-1]
    assert last.endswith("…") and len(last) <= 3000
    assert last.count("`") % 2 == 0 and "`select" not in last
