"""No start-up dependency on Slack: the bot's identity is learned in the background.

A bot process that starts (or restarts after a deploy) while Slack's Web API answers 5xx
still records an ``/incident open`` that reaches it and pages at once; the channel is set
up, once, when Slack is back. The identity ``auth.test`` gives is stored, so that the next
start knows it before Slack answers.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.engine import create_engine, create_sessionmaker
from bot.emulator.pagerduty import PagerDutyFake
from bot.incidents.models import Incident
from bot.slack.client import make_slack_client
from bot.slack.identity import BotIdentity, Identity
from bot.slack.models import SlackIdentity
from tests.pagers.conftest import PD_KEY
from tests.pagers.test_pagerduty import validate_against_spec
from tests.support.bed import bed_emulator, bed_settings, start_bed, stop_bed

OUTAGE = 10**6  # calls: Slack answers 503 to every Web API call until clear_faults()


@pytest.fixture
async def pd():
    async with PagerDutyFake(routing_keys={PD_KEY}, validator=validate_against_spec) as fake:
        yield fake
    assert fake.validation_errors == []


async def test_an_open_reaching_a_bot_started_during_a_slack_outage_is_recorded_paged_and_set_up_once(
        database_url, pd, monkeypatch) -> None:
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY_DEFAULT", PD_KEY)
    emu = bed_emulator()
    emu.fail_next("*", "internal_error", status=503, times=OUTAGE)
    bed = await start_bed(database_url, emu=emu, settings_overrides={
        "pagerduty_events_url": pd.url, "run_workers": True, "worker_poll_seconds": 0.05})
    try:
        await bed.wait_for(lambda: emu.calls_to("auth.test"))  # asked at start-up, refused
        assert bed.rt.identity.known is None

        started = time.monotonic()
        sent = await bed.command("open P0 checkout is down")
        assert sent.status == 200 and sent.body == ""  # acked and worked on, not refused
        await bed.wait_for(lambda: pd.incidents.get("firebreak-INC-1"), timeout=5)
        assert time.monotonic() - started < 5
        reply = (await bed.reply(sent))["text"]
        assert "INC-1" in reply, reply
        async with bed.rt.sessions() as session:
            [incident] = (await session.execute(select(Incident))).scalars().all()
        assert incident.channel_id is None and incident.setup_error  # Slack is still down
        assert all(not c.ok for c in emu.calls)

        emu.clear_faults()  # Slack is back: the set-up job's next try (due later) completes it
        bed.clock.advance(timedelta(minutes=10))
        bed.rt.worker.wake()
        await bed.wait_for(lambda: bed.incident_channel(1) is not None and bed.emu.pins(bed.incident_channel(1).id),
                           timeout=15)
        await bed.run_jobs()
        channel = bed.incident_channel(1)
        assert [c.ok for c in emu.calls_to("conversations.create")][-1] is True
        assert sum(c.ok for c in emu.calls_to("conversations.create")) == 1
        cards = [m for m in emu.messages(channel.id) if "INC-1" in (m.text or "") and m.blocks]
        assert len(emu.pins(channel.id)) == 1 and len(cards) >= 1
        assert len([c for c in emu.calls_to("chat.postMessage")
                    if c.ok and c.params["channel"] == channel.id
                    and (c.params.get("metadata") or {}).get("event_type") == "firebreak_incident_card"]) == 1
        assert len(pd.incidents) == 1 and pd.incidents["firebreak-INC-1"].actions == ["trigger"]
    finally:
        await stop_bed(bed)
    assert not emu.violations, emu.violations


@pytest.fixture
async def sessions(database_url):
    engine = create_engine(database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def test_the_identity_is_learned_in_the_background_stored_and_known_at_the_next_start(
        database_url, sessions) -> None:
    async with bed_emulator() as emu:
        settings = bed_settings(database_url, emu)
        expected = Identity(team_id=emu.workspace.team.id, user_id=emu.workspace.bot_user_id,
                            bot_id=emu.workspace.bot_id)
        emu.fail_next("auth.test", "internal_error", status=503, times=OUTAGE)
        client = make_slack_client(settings)
        first = BotIdentity(sessions=sessions, client=client, clock=ManualClock(), first_wait=0.05, max_wait=0.2)
        first.start()
        await _until(lambda: len(emu.calls_to("auth.test")) >= 6)  # asked again, and again
        assert first.known is None
        emu.clear_faults()
        await _until(lambda: first.known is not None)
        assert first.known == expected
        await first.stop()
        async with sessions() as session:
            [stored] = (await session.execute(select(SlackIdentity))).scalars().all()
        assert (stored.team_id, stored.user_id, stored.bot_id) == (expected.team_id, expected.user_id,
                                                                   expected.bot_id)
        assert settings.slack_bot_token.get_secret_value() not in str(stored.model_dump())

        # The next start, with Slack down again, knows it from the database at once.
        emu.fail_next("auth.test", "internal_error", status=503, times=OUTAGE)
        second = BotIdentity(sessions=sessions, client=client, clock=ManualClock(), first_wait=0.05, max_wait=0.2)
        second.start()
        await _until(lambda: second.known is not None)
        assert second.known == expected and not emu.calls_to("auth.test")[-1].ok
        assert second.for_team(expected.team_id) == expected and second.for_team("T0OTHER") is None
        await second.stop()

        # Another token (another app) does not take the stored identity for its own.
        emu.add_token("xoxb-another-app-0123456789")
        other = BotIdentity(sessions=sessions, client=make_slack_client(
            bed_settings(database_url, emu, slack_bot_token="xoxb-another-app-0123456789")),
            clock=ManualClock(), first_wait=0.05, max_wait=0.2)
        asked = len(emu.calls_to("auth.test"))
        other.start()
        await _until(lambda: len(emu.calls_to("auth.test")) > asked)  # the database was read first
        assert other.known is None
        await other.stop()


async def test_a_refused_token_stops_the_asking_and_says_why(database_url, sessions, caplog) -> None:
    async with bed_emulator() as emu:
        client = make_slack_client(bed_settings(database_url, emu, slack_bot_token="xoxb-revoked-0123456789"))
        identity = BotIdentity(sessions=sessions, client=client, clock=ManualClock(), first_wait=0.05)
        assert await identity.learn() is None
        assert len(emu.calls_to("auth.test")) == 1
        assert "invalid_auth" in caplog.text and "SLACK_BOT_TOKEN" in caplog.text


async def _until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
