"""The emulator's Socket Mode keeps Slack's rules (so that tests/test_socket_mode.py can trust it)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulator import SlackEmulator
from bot.emulator.slack_socket import ACK_WITHIN, DispatchFailed
from tests.support.slack_openapi import slack_openapi_validator

BOT_TOKEN = "xoxb-emulator-socket-test"
APP_TOKEN = "xapp-1-A0FIREBRK-emulator-socket-test"


@pytest.fixture
async def emu():
    async with SlackEmulator(bot_token=BOT_TOKEN, app_token=APP_TOKEN, validator=slack_openapi_validator()) as emu:
        yield emu
    assert not emu.violations


async def _connect(emu: SlackEmulator, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
    answer = await AsyncWebClient(base_url=emu.api_url).apps_connections_open(app_token=APP_TOKEN)
    assert answer["url"].startswith("ws://127.0.0.1:")
    ws = await http.ws_connect(answer["url"])
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == emu.workspace.app_id
    return ws


async def test_connections_open_wants_the_app_level_token_and_each_url_connects_once(emu) -> None:
    client = AsyncWebClient(base_url=emu.api_url)
    with pytest.raises(SlackApiError) as bot_token:
        await client.apps_connections_open(app_token=BOT_TOKEN)
    with pytest.raises(SlackApiError) as app_token:
        await AsyncWebClient(token=APP_TOKEN, base_url=emu.api_url).chat_postMessage(channel="C0GENERAL", text="x")
    assert bot_token.value.response["error"] == app_token.value.response["error"] == "not_allowed_token_type"
    url = (await client.apps_connections_open(app_token=APP_TOKEN))["url"]
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url)
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(url)
        await ws.close()


async def test_envelopes_must_be_acknowledged_within_3_s_and_events_are_sent_again(emu) -> None:
    socket = emu.socket_mode
    async with aiohttp.ClientSession() as http:
        ws = await _connect(emu, http)
        command = await socket.deliver("slash_commands", {"command": "/incident", "text": "help"})
        envelope = await ws.receive_json(timeout=5)
        assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"] is True
        assert envelope["envelope_id"] == command.envelope_ids[0]
        await ws.send_json({"envelope_id": envelope["envelope_id"], "payload": {"text": "usage"}})
        assert await command.ack() == {"text": "usage"} and command.acked_after < ACK_WITHIN

        event = await socket.deliver("events_api", {"type": "event_callback", "event_id": "Ev1",
                                                    "event": {"type": "pin_added"}})
        first = await ws.receive_json(timeout=5)
        assert (first["type"], first["retry_attempt"], first["accepts_response_payload"]) == ("events_api", 0, False)
        retry = await ws.receive_json(timeout=ACK_WITHIN + 2)  # never acknowledged: Slack tries again
        assert (retry["retry_attempt"], retry["retry_reason"]) == (1, "timeout")
        assert retry["envelope_id"] != first["envelope_id"]
        assert socket.violations == [f"events_api envelope {first['envelope_id']} not acknowledged within 3 s"]
        await ws.send_json({"envelope_id": retry["envelope_id"]})
        await event.ack()

        late = await socket.deliver("interactive", {"type": "block_actions"})
        envelope = await ws.receive_json(timeout=5)
        await asyncio.sleep(ACK_WITHIN + 0.3)
        await ws.send_str(json.dumps({"envelope_id": envelope["envelope_id"]}))
        await late.ack()
        assert any("acknowledged after" in v or "not acknowledged within" in v for v in socket.violations[1:])
        socket.violations.clear()
        await ws.close()

    await asyncio.sleep(0.1)  # the emulator has seen the connection go
    with pytest.raises(DispatchFailed):
        await socket.deliver("slash_commands", {"command": "/incident"})
    waiting = await socket.deliver("events_api", {"type": "event_callback", "event": {"type": "pin_added"}})
    assert socket.waiting == [waiting]  # sent when the app connects again
    async with aiohttp.ClientSession() as http:
        ws = await _connect(emu, http)
        assert (await ws.receive_json(timeout=5))["envelope_id"] == waiting.envelope_ids[0]
        await ws.send_json({"envelope_id": waiting.envelope_ids[0]})
        await waiting.ack()
        await ws.close()
    assert socket.violations == []
