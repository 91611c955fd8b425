"""On call: the engine pages whoever is on call at each level's due time, across DST handoffs;
``/incident oncall`` text; ``firebreak playbooks check``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from bot.escalation.oncall_view import next_change, oncall_text
from bot.incidents.commands import UsageError
from tests.escalation.conftest import (
    AVA,
    BEN,
    CHEN,
    DANA,
    ELI,
    ONCALL_YAML,
    SQLITE_ONLY,
    Harness,
    make_harness,
    write_playbooks,
)

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


async def _recipients(h: Harness, number: int) -> dict[int, str]:
    return {p.level: p.recipient for p in await h.pages(number)}


@SQLITE_ONLY
async def test_spring_forward_handoff_in_new_york(harness: Harness) -> None:
    """Clocks jumped on Sunday 2026-03-08; Monday's 09:00 handoff is 13:00 UTC, not 14:00."""
    h = harness
    h.clock.set(datetime(2026, 3, 9, 8, 30, tzinfo=NEW_YORK))
    incident = await h.open("P2")  # level 1 oncall:backend now, level 2 the secondary at +1h
    await h.run()
    h.clock.set(datetime(2026, 3, 9, 9, 30, tzinfo=NEW_YORK))  # 13:30 UTC: the new shift began
    await h.run()
    # week 8 (chen, then ava) until 09:00 EDT; week 9: ava primary, ben secondary
    assert await _recipients(h, incident.number) == {0: f"user:{CHEN}", 1: f"user:{BEN}"}


@SQLITE_ONLY
async def test_autumn_handoff_in_berlin(harness: Harness) -> None:
    """Clocks went back on 2026-10-25; that day's 09:00 handoff is 08:00 UTC, not 07:00."""
    h = harness
    h.clock.set(datetime(2026, 10, 25, 6, 30, tzinfo=UTC))  # 07:30 CET: still yesterday's shift
    incident = await h.open("P3")  # oncall:berlin now, oncall:berlin:secondary at +2h (09:30 CET)
    await h.run()
    h.clock.set(datetime(2026, 10, 25, 8, 30, tzinfo=UTC))
    await h.run()
    # day 296 since 2026-01-01: dana primary (eli secondary); day 297 from 09:00 CET: eli, dana
    assert await _recipients(h, incident.number) == {0: f"user:{DANA}", 1: f"user:{DANA}"}
    h.clock.set(datetime(2026, 10, 25, 7, 30, tzinfo=UTC))
    assert f"primary <@{DANA}>" in oncall_text(h.engine.playbooks, now=h.clock.now(), rotation="berlin")


async def test_an_overdue_level_pages_who_was_on_call_when_it_fell_due(
    harness: Harness, database_url, clock, playbooks, emu, pd, og, http, retry
) -> None:
    h = harness
    clock.set(datetime(2026, 3, 9, 8, 40, tzinfo=NEW_YORK))
    incident = await h.open("P1")  # the secondary at +15m = 08:55, before the 09:00 handoff
    await h.run()
    await h.close()
    clock.set(datetime(2026, 3, 9, 9, 30, tzinfo=NEW_YORK))  # back after the handoff
    restarted = await make_harness(database_url, clock=clock, playbooks=playbooks, emu=emu, pd=pd,
                                   og=og, http=http, retry=retry)
    try:
        await restarted.run()
        recipients = await _recipients(restarted, incident.number)
        assert recipients[1] == f"user:{AVA}"  # week 8's secondary, on call at 08:55
    finally:
        await restarted.close()


def test_oncall_text_shows_now_and_next_with_overrides(tmp_path) -> None:
    playbooks = write_playbooks(tmp_path / "pb", oncall_yaml=ONCALL_YAML.replace(
        '    members: ["user:U024BE7LH", "user:U0G9QF9C6", "user:U1H2J3K4L"]\n',
        '    members: ["user:U024BE7LH", "user:U0G9QF9C6", "user:U1H2J3K4L"]\n'
        '    overrides:\n      - {from: "2026-03-04T18:00", to: "2026-03-05T09:00", user: "user:U2D4N5A6K"}\n'))
    now = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    text = oncall_text(playbooks, now=now, rotation="backend")
    assert f"now: primary <@{CHEN}>, secondary <@{AVA}>" in text
    # The next change is the override (Wed 18:00 EST), not the Monday handoff.
    assert f"next: primary <@{DANA}>, secondary <@{AVA}> from <!date^1772665200^" in text
    assert "|Wed 2026-03-04 18:00 EST>" in text  # 23:00 UTC, shown in the reader's own time zone
    change = next_change(playbooks.rotations["backend"], datetime(2026, 3, 5, 14, 30, tzinfo=UTC))
    assert change.at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # Monday 09:00 EDT after the jump
    assert (change.who.primary, change.who.secondary) == (AVA, BEN)
    everything = oncall_text(playbooks, now=now)
    assert "*backend*" in everything and "*berlin*" in everything
    assert f"now: primary <@{ELI}>" in everything or f"now: primary <@{DANA}>" in everything
    with pytest.raises(UsageError, match="There is no rotation `frontend`"):
        oncall_text(playbooks, now=now, rotation="frontend")


def test_oncall_before_the_first_shift(tmp_path) -> None:
    playbooks = write_playbooks(tmp_path / "pb", oncall_yaml=ONCALL_YAML.replace(
        "start: 2026-01-05", "start: 2026-06-01"))
    text = oncall_text(playbooks, now=datetime(2026, 3, 3, 15, 0, tzinfo=UTC), rotation="backend")
    assert "now: nobody is on call; the first shift starts <!date^1780318800^" in text
    assert "|Mon 2026-06-01 09:00 EDT>" in text


async def test_playbooks_check_prints_levels_people_and_rotation_problems(
    tmp_path, monkeypatch, capsys, emu
) -> None:
    write_playbooks(tmp_path / "pb", oncall_yaml=ONCALL_YAML.replace(
        '    members: ["user:U024BE7LH", "user:U0G9QF9C6", "user:U1H2J3K4L"]\n',
        '    members: ["user:U024BE7LH", "user:U0G9QF9C6", "user:U1H2J3K4L"]\n'
        '    overrides:\n'
        '      - {from: "2026-03-08T12:00", to: "2026-03-09T12:00", user: "user:U2D4N5A6K"}\n'
        '      - {from: "2026-03-09T09:00", to: "2026-03-10T09:00", user: "user:U3E7L8I9N"}\n'
    ).replace("start: 2026-01-01", "start: 2026-03-10"))
    monkeypatch.setenv("PLAYBOOKS_DIR", str(tmp_path / "pb"))
    monkeypatch.setenv("SLACK_BOT_TOKEN", emu.bot_token)
    monkeypatch.setenv("SLACK_API_URL", emu.api_url)
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY_DEFAULT", "0123456789abcdef0123456789abcdef")
    monkeypatch.chdir(tmp_path)  # no .env
    # The CLI is synchronous (it lists groups through Slack): run it beside the emulator's loop.
    code = await asyncio.to_thread(main, ["playbooks", "check", "--at", "2026-03-08T09:30 America/New_York"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Incident opened at 2026-03-08 13:30 UTC = 2026-03-08 09:30 EDT" in out
    assert "+5m     2026-03-08 13:35 UTC = 2026-03-08 09:35 EDT  (level 2)" in out
    assert f"oncall:backend             → {CHEN} (backend primary, DM)" in out
    assert f"group:S0LEADS              → {DANA}, {AVA} (DM each)" in out  # listed through Slack
    assert "PagerDuty event (PAGERDUTY_ROUTING_KEY_DEFAULT)" in out
    assert "overlap" in out  # the two overrides
    assert "rotation berlin: nobody is on call" in out  # the first shift starts 2026-03-10
    monkeypatch.delenv("PAGERDUTY_ROUTING_KEY_DEFAULT")
    await asyncio.to_thread(main, ["playbooks", "check", "--at", "2026-03-08T09:30-05:00"])
    assert "! pagerduty:default has no routing key: set PAGERDUTY_ROUTING_KEY_DEFAULT" in capsys.readouterr().out
