"""The end-to-end test bed: the real bot app over HTTP, the fake Slack, a manual clock.

Requests go in through ``POST /slack/events`` signed like Slack signs them; the
bot talks to the fake Slack through the real ``slack_sdk`` client; every Web API
call is checked against Slack's OpenAPI spec.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp.test_utils import TestServer

from bot.clock import ManualClock
from bot.config import Settings
from bot.emulator import SlackEmulator
from bot.runtime import Runtime
from bot.web.app import RUNTIME
from handlers.app import create_web_app
from tests.support.signing import event_body, sign
from tests.support.slack_openapi import slack_openapi_validator

REPO = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "bed-signing-secret-0123456789"
BOT_TOKEN = "xoxb-bed-token-0123456789"
APP_TOKEN = "xapp-1-A0FIREBRK-bed-0123456789"  # Socket Mode
REPORTER = "U024BE7LH"  # ava, first in the sample rotation
GENERAL = "C0GENERAL"
ANNOUNCE = "C0ANNOUNCE"


@dataclass
class Sent:
    status: int
    body: str
    response_url: str | None = None

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body else {}


class Bed:
    def __init__(self, *, emu: SlackEmulator, server: TestServer, http: aiohttp.ClientSession,
                 clock: ManualClock, owns_emulator: bool = True) -> None:
        self.emu = emu
        self.server = server
        self.http = http
        self.clock = clock
        self.owns_emulator = owns_emulator
        self._events = 0

    @property
    def rt(self) -> Runtime:
        return self.server.app[RUNTIME]

    @property
    def url(self) -> str:
        return str(self.server.make_url("/slack/events"))

    async def post(self, body: str, *, content_type: str, headers: dict[str, str] | None = None,
                   signed: bool = True, timestamp: int | None = None) -> Sent:
        all_headers = {"Content-Type": content_type}
        if signed:
            all_headers.update(sign(SIGNING_SECRET, body, timestamp))
        all_headers.update(headers or {})
        async with self.http.post(self.url, data=body.encode(), headers=all_headers) as resp:
            return Sent(resp.status, await resp.text())

    async def command(self, text: str, *, user: str = REPORTER, channel: str = GENERAL,
                      command: str = "/incident", trigger_id: str | None = None) -> Sent:
        fields = self.emu.slash_command(user, channel, command, text)
        if trigger_id is not None:
            fields["trigger_id"] = trigger_id
        sent = await self.post(urlencode(fields), content_type="application/x-www-form-urlencoded")
        sent.response_url = fields["response_url"]
        return sent

    async def reply(self, sent: Sent, *, timeout: float = 10) -> dict[str, Any]:
        """What the bot posted to the command's response_url (after its ack)."""
        await self.wait_for(lambda: self._posts_for(sent), timeout=timeout)
        return self._posts_for(sent)[-1]

    def _posts_for(self, sent: Sent) -> list[dict[str, Any]]:
        token = (sent.response_url or "").rsplit("/", 1)[-1]
        return [post.payload for post in self.emu.response_url_posts if post.token == token]

    async def run_command(self, text: str, **kwargs: Any) -> str:
        """Send a command and return the text the user finally sees (ack or reply)."""
        sent = await self.command(text, **kwargs)
        assert sent.status == 200, sent
        if sent.body and sent.json.get("text"):
            return sent.json["text"]
        return (await self.reply(sent))["text"]

    async def interact(self, payload: dict[str, Any], **kwargs: Any) -> Sent:
        return await self.post(urlencode({"payload": json.dumps(payload)}),
                               content_type="application/x-www-form-urlencoded", **kwargs)

    async def click(self, *, user: str, channel: str, message_ts: str, action_id: str,
                    value: str | None = None, selected: str | None = None) -> Sent:
        payload = self.emu.block_action(user, channel, message_ts, action_id, value=value)
        if selected is not None:
            payload["actions"][0]["selected_option"] = {
                "text": {"type": "plain_text", "text": selected}, "value": selected}
        return await self.interact(payload)

    async def event(self, event: dict[str, Any], *, event_id: str | None = None,
                    retry_num: int | None = None) -> Sent:
        self._events += 1
        body = event_body(event, event_id=event_id or f"Ev{self._events:08d}")
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} \
            if retry_num else None
        return await self.post(body, content_type="application/json", headers=headers)

    @staticmethod
    def pin_added(channel: str, message: Any, *, by: str) -> dict[str, Any]:
        """The Events API ``pin_added`` event of the emulator's ``message`` pinned by ``by``."""
        return {"type": "pin_added", "user": by, "channel_id": channel,
                "item": {"type": "message", "channel": channel,
                         "message": {"type": "message", "user": message.user, "text": message.text,
                                     "ts": message.ts}},
                "event_ts": message.ts}

    async def wait_for(self, condition: Callable[[], Any], *, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.01)

    async def run_jobs(self) -> int:
        return await self.rt.worker.run_due()

    async def idle(self, *, timeout: float = 10) -> None:
        """Wait until the work acked to Slack has finished (the background runner is empty)."""
        await self.wait_for(lambda: self.rt.background.pending == 0, timeout=timeout)

    async def settle(self, *, timeout: float = 10) -> None:
        """Wait until there is provably nothing left to do at the clock's current time: the
        work acked to Slack has finished and no job is due (``run_jobs()`` returns 0 with
        nothing running after it). Only then may a test assert that something did *not*
        happen."""
        while True:
            await self.idle(timeout=timeout)
            if await self.run_jobs() == 0 and self.rt.background.pending == 0:
                return

    def incident_channel(self, number: int):
        prefix = f"inc-{number}-"
        return next((c for c in self.emu.workspace.channels.values()
                     if c.name.startswith(prefix) or c.name == f"inc-{number}"), None)

    def card(self, channel_id: str):
        """The pinned incident card (the bot's first pin in the channel)."""
        return self.emu.pins(channel_id)[0]


class SocketModeBed(Bed):
    """The same bot with ``SLACK_APP_TOKEN`` set: what the HTTP bed would POST to
    /slack/events reaches the bot as a Socket Mode envelope from the emulator instead, and
    the answer is the envelope's acknowledgement (Slack's 3 s limit checked by the emulator)."""

    async def post(self, body: str, *, content_type: str, headers: dict[str, str] | None = None,
                   signed: bool = True, timestamp: int | None = None) -> Sent:
        if content_type == "application/json":
            delivery = await self.emu.socket_mode.deliver("events_api", json.loads(body))
        else:
            fields = dict(parse_qsl(body, keep_blank_values=True))
            if "payload" in fields:
                delivery = await self.emu.socket_mode.deliver("interactive", json.loads(fields["payload"]))
            else:
                delivery = await self.emu.socket_mode.deliver("slash_commands", fields)
        answer = await delivery.ack()
        return Sent(200, json.dumps(answer) if answer else "")


def bed_settings(database_url: str, emu: SlackEmulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN, "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": emu.api_url, "database_url": database_url,
        "playbooks_dir": str(REPO / "playbooks"), "announce_channel": ANNOUNCE,
        "display_timezone": "America/New_York", "run_workers": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def bed_emulator(**options: Any) -> SlackEmulator:
    """The fake Slack of the bed: the bot's token, every call checked against Slack's OpenAPI."""
    return SlackEmulator(bot_token=BOT_TOKEN, validator=slack_openapi_validator(), **options)


async def start_bed(database_url: str, *, settings_overrides: dict[str, Any] | None = None,
                    clock: ManualClock | None = None, emu: SlackEmulator | None = None,
                    socket_mode: bool = False, **runtime_options: Any):
    """The bot on ``database_url`` against ``emu`` (by default a new :func:`bed_emulator`).

    An emulator that is not running yet is started here and stopped by :func:`stop_bed`; one
    the caller started (several beds: several Firebreak processes in one Slack workspace) is
    left to the caller. ``runtime_options`` go to ``build_runtime`` (``slack``, ``http``: the
    clients crossing the machine's edge).

    With ``socket_mode``, the bot runs with ``SLACK_APP_TOKEN`` and the bed returned (a
    :class:`SocketModeBed`) is connected: the emulator's user actions (``user_pin``…)
    reach the bot as Events API envelopes.
    """
    emu = emu or bed_emulator()
    overrides = dict(settings_overrides or {})
    if socket_mode:
        emu.add_app_token(APP_TOKEN)
        emu.on_event = lambda envelope: emu.socket_mode.deliver("events_api", envelope)
        overrides["slack_app_token"] = APP_TOKEN
    owns_emulator = not emu.running
    if owns_emulator:
        await emu.start()
    clock = clock or ManualClock()
    settings = bed_settings(database_url, emu, **overrides)
    app = create_web_app(settings, clock=clock, **runtime_options)
    # No access log, as `firebreak serve` runs (bot/cli.py): a request line can carry
    # ?token=<WEB_AUTH_TOKEN>, which must not reach a log (tests/support/leaks.py).
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    http = aiohttp.ClientSession()
    bed = (SocketModeBed if socket_mode else Bed)(emu=emu, server=server, http=http, clock=clock,
                                                  owns_emulator=owns_emulator)
    if socket_mode:
        await bed.wait_for(lambda: emu.socket_mode.connections)
    return bed


async def stop_bed(bed: Bed) -> None:
    await bed.http.close()
    await bed.server.close()
    if bed.owns_emulator:
        await bed.emu.stop()
