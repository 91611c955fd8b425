"""Socket Mode end to end: ``SLACK_APP_TOKEN`` set, Slack's requests arrive over a WebSocket.

The emulator answers ``apps.connections.open`` with a ``ws://127.0.0.1`` URL and sends
Slack's envelopes (``hello``, ``slash_commands``, ``interactive``, ``events_api``), checking
that each is acknowledged within 3 s (``emu.socket_mode.violations``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.emulator.slack_socket import DispatchFailed
from bot.incidents.models import EventKind, IncidentState, TimelineEvent
from bot.slack.ids import ActionId
from tests.support.bed import REPORTER, start_bed, stop_bed

OTHER = "U0G9QF9C6"


@pytest.fixture
async def bed(database_url):
    test_bed = await start_bed(database_url, socket_mode=True)
    try:
        yield test_bed
    finally:
        await stop_bed(test_bed)
    assert not test_bed.emu.violations, test_bed.emu.violations
    assert not test_bed.emu.socket_mode.violations, test_bed.emu.socket_mode.violations


async def _pinned(bed) -> list[TimelineEvent]:
    async with bed.rt.sessions() as session:
        return list((await session.execute(select(TimelineEvent).where(
            TimelineEvent.kind == EventKind.PINNED_MESSAGE).order_by(TimelineEvent.id))).scalars())


async def _until_pinned(bed, count: int, timeout: float = 15) -> list[TimelineEvent]:
    for _ in range(int(timeout / 0.02)):
        found = await _pinned(bed)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} pinned messages expected on the timeline, found {len(await _pinned(bed))}")


async def _open(bed) -> str:
    reply = await bed.run_command("open P1 checkout is failing service:api")
    assert "INC-1 opened in <#" in reply, reply
    await bed.run_jobs()
    return bed.incident_channel(1).id


async def test_open_acknowledge_and_pin_over_socket_mode(bed) -> None:
    async with bed.http.post(bed.url, data=b"{}") as response:
        assert response.status == 404  # no HTTP endpoint for Slack in Socket Mode
    [connect] = bed.emu.calls_to("apps.connections.open")
    assert connect.ok and bed.emu.socket_mode.opened == 1

    channel = await _open(bed)
    card = bed.card(channel)
    await bed.click(user=REPORTER, channel=channel, message_ts=card.ts, action_id=ActionId.INCIDENT_ACK)
    await bed.wait_for(lambda: any("acknowledged" in p.payload.get("text", "")
                                   for p in bed.emu.response_url_posts if p.user_id == REPORTER))
    async with bed.rt.sessions() as session:
        from bot.incidents import service as incidents

        incident = await incidents.get_incident(session=session, number=1)
    assert incident.state == IncidentState.ACKNOWLEDGED and incident.acknowledged_by == REPORTER

    await bed.emu.user_post_message(OTHER, channel, "p99 is 4 s since the deploy")
    message = bed.emu.messages(channel)[-1]
    await bed.emu.user_pin(OTHER, channel, message.ts)  # Slack sends pin_added over the socket
    [pinned] = await _until_pinned(bed, 1)
    assert pinned.occurred_at == datetime.fromtimestamp(float(message.ts), tz=UTC)
    assert pinned.actor == OTHER and "p99" in pinned.text

    deliveries = bed.emu.socket_mode.deliveries
    assert {d.type for d in deliveries} == {"slash_commands", "interactive", "events_api"}
    await asyncio.gather(*(d.ack(timeout=3) for d in deliveries))
    assert all(d.acked_after is not None and d.acked_after < 3 for d in deliveries)


async def test_a_dropped_socket_is_replaced_and_nothing_is_lost_or_done_twice(bed) -> None:
    channel = await _open(bed)
    for text in ("error rate 40%", "the deploy went out at 14:02", "rolled back"):
        await bed.emu.user_post_message(OTHER, channel, text)
    first, second, third = bed.emu.messages(channel)[-3:]
    socket = bed.emu.socket_mode

    # The bot records the pin and acknowledges it, but the connection drops with the ack.
    await bed.wait_for(lambda: all(d.acked.is_set() for d in socket.deliveries))  # the messages' events
    socket.lose_next_ack("pin_added")
    await bed.emu.user_pin(OTHER, channel, first.ts)
    await _until_pinned(bed, 1)
    await bed.wait_for(lambda: not socket.connections)

    # While the bot is away: an event waits for it; a command cannot be delivered at all
    # (Slack tells the user), so nothing is half-done.
    await bed.emu.user_add_reaction(OTHER, channel, second.ts, "pushpin")
    assert len(socket.waiting) == 2  # the pin again (its ack was lost) and the reaction
    with pytest.raises(DispatchFailed):
        await bed.command("note typed while the socket is down", channel=channel)

    await bed.wait_for(lambda: socket.opened == 2 and socket.connections, timeout=30)  # reconnected
    assert len(bed.emu.calls_to("apps.connections.open")) == 2
    pinned = await _until_pinned(bed, 2)
    await bed.wait_for(lambda: not socket.waiting and all(d.acked.is_set() for d in socket.deliveries))
    retried = [d for d in socket.deliveries if d.retry_attempt]
    assert len(retried) == 1 and retried[0].payload["event"]["type"] == "pin_added"
    await asyncio.sleep(0.2)  # the retried pin has been worked on: still one row per message
    assert sorted(e.data["ts"] for e in await _pinned(bed)) == sorted([first.ts, second.ts])
    assert [e.data["via"] for e in pinned] == ["pin", "pushpin"]

    # Slack asks for a refresh (it does every few hours): the bot moves to a new connection.
    await socket.refresh()
    await bed.wait_for(lambda: socket.opened == 3 and len(socket.connections) == 1, timeout=15)
    await bed.emu.user_pin(OTHER, channel, third.ts)
    assert len(await _until_pinned(bed, 3)) == 3
    assert "noted" in (await bed.run_command("note after the reconnect", channel=channel)).lower()
