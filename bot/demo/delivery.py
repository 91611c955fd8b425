"""Deliver what a person does in the emulated workspace to the bot, exactly as Slack would.

The Slack emulator (:mod:`bot.emulator`) builds the payloads (slash command form fields,
``block_actions``, ``view_submission``, Events API envelopes); this module signs them with the
app's signing secret (``X-Slack-Request-Timestamp`` / ``X-Slack-Signature``, v0 HMAC-SHA256 by
``slack_sdk``) and POSTs them to the bot's ``/slack/events``: slash commands and interactivity
form-encoded (``payload=<json>`` for interactivity), events as JSON.

What the bot answers (the "ack") is applied the way Slack applies it: a slash command's
immediate text becomes an ephemeral message (or an ``in_channel`` one) through the command's
own ``response_url``; a view submission's ``response_action`` closes, updates, pushes or shows
errors on the modal.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bot.emulator import SlackEmulator, SlackView
from bot.emulator.slack_methods import Params

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"


@dataclass
class Delivered:
    """The bot's HTTP answer to one delivery."""

    status: int
    body: str
    elapsed_ms: float
    ack: dict[str, Any] = field(default_factory=dict)  # the body as JSON, or {"text": body}
    error: str | None = None  # why the delivery did not reach the bot

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300

    @property
    def ack_text(self) -> str | None:
        return self.ack.get("text") if isinstance(self.ack.get("text"), str) else None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "ok": self.ok, "ack": self.ack, "ack_text": self.ack_text,
                "elapsed_ms": round(self.elapsed_ms, 1), "error": self.error}


def signature_headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack adds to every request it sends an app."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def _parse_ack(body: str) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {"text": body}
    return parsed if isinstance(parsed, dict) else {"text": body}


class SlackDelivery:
    """Signs and posts requests from the emulated workspace to the bot's Slack endpoint."""

    def __init__(self, emulator: SlackEmulator, *, events_url: str, signing_secret: str,
                 http: aiohttp.ClientSession | None = None, timeout: float = 10.0) -> None:
        self.emulator = emulator
        self.events_url = events_url
        self.signing_secret = signing_secret
        self.timeout = timeout
        self._http = http
        self._owns_http = http is None
        # Called when a modal closes or changes without a Web API call (the console listens).
        self.on_view_change: Callable[[str, SlackView], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._owns_http = True
        return self._http

    async def close(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.close()
            self._http = None

    def attach(self) -> None:
        """Deliver the emulator's Events API envelopes (user messages, pins, reactions) to the bot."""
        self.emulator.on_event = self.deliver_event

    # -- the raw POST ---------------------------------------------------------------------

    async def post(self, body: str, *, content_type: str,
                   extra_headers: dict[str, str] | None = None) -> Delivered:
        headers = {"Content-Type": content_type, **signature_headers(self.signing_secret, body)}
        headers.update(extra_headers or {})
        started = time.perf_counter()
        try:
            async with self.http.post(self.events_url, data=body.encode(), headers=headers) as resp:
                text = await resp.text()
                elapsed = (time.perf_counter() - started) * 1000
                return Delivered(resp.status, text, elapsed, _parse_ack(text))
        except (aiohttp.ClientError, TimeoutError) as exc:
            elapsed = (time.perf_counter() - started) * 1000
            return Delivered(0, "", elapsed, error=f"the bot did not answer: {type(exc).__name__}")

    async def _interactive(self, payload: dict[str, Any]) -> Delivered:
        return await self.post(urlencode({"payload": json.dumps(payload)}), content_type=FORM)

    # -- slash commands -------------------------------------------------------------------

    async def slash_command(self, user_id: str, channel_id: str, command: str, text: str = "") -> Delivered:
        """``user_id`` types ``/command text`` in ``channel_id``; the ack is shown like Slack shows it."""
        fields = self.emulator.slash_command(user_id, channel_id, command, text)
        delivered = await self.post(urlencode(fields), content_type=FORM)
        if delivered.ok and (delivered.ack.get("text") or delivered.ack.get("blocks")):
            await self._show_command_ack(fields["response_url"], delivered.ack)
        return delivered

    async def _show_command_ack(self, response_url: str, ack: dict[str, Any]) -> None:
        # Slack shows a command's immediate answer as if it came through the response URL.
        try:
            async with self.http.post(response_url, json=ack) as resp:
                await resp.read()
        except aiohttp.ClientError as exc:  # the emulator is local: only during shutdown
            log.debug("could not show the command's answer: %s", exc)

    # -- interactivity --------------------------------------------------------------------

    async def block_action(self, user_id: str, channel_id: str, message_ts: str, action_id: str, *,
                           value: str | None = None, selected: str | list[str] | None = None) -> Delivered:
        """``user_id`` clicks a button (``value``) or picks an option (``selected``) on a message."""
        payload = self.emulator.block_action(user_id, channel_id, message_ts, action_id, value=value)
        blocks = _message_blocks(self.emulator, channel_id, message_ts)
        element = _find_element(blocks, action_id)
        if element is not None and selected is not None:
            payload["actions"][0].update(_selection(self.emulator, element, selected))
            payload["actions"][0].pop("value", None)
        return await self._interactive(payload)

    async def view_block_action(self, user_id: str, view_id: str, action_id: str, *,
                                value: str | None = None, selected: str | list[str] | None = None,
                                values: dict[str, Any] | None = None) -> Delivered:
        """A button or select inside an open modal (``container.type == "view"``)."""
        emu = self.emulator
        ws = emu.workspace
        view = ws.views[view_id]
        element = _find_element(view.blocks, action_id)
        if element is None:
            raise LookupError(f"no element with action_id {action_id!r} in view {view_id}")
        user = ws.users[user_id]
        action: dict[str, Any] = {"action_id": action_id, "block_id": _block_id_of(view.blocks, action_id),
                                  "type": element.get("type"), "action_ts": ws.new_ts()}
        if "text" in element:
            action["text"] = element["text"]
        if selected is not None:
            action.update(_selection(emu, element, selected))
        elif value is not None or "value" in element:
            action["value"] = value if value is not None else element["value"]
        payload = {
            "type": "block_actions",
            "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team.id},
            "api_app_id": ws.app_id, "token": emu.verification_token,
            "container": {"type": "view", "view_id": view_id},
            "trigger_id": emu.new_trigger_id(user_id),
            "team": {"id": ws.team.id, "domain": ws.team.domain},
            "enterprise": None, "is_enterprise_install": False,
            "view": {**view.to_api(), "state": {"values": values or {}}},
            "actions": [action],
        }
        return await self._interactive(payload)

    async def view_submission(self, user_id: str, view_id: str, values: dict[str, Any]) -> Delivered:
        """``user_id`` presses the modal's submit button; the ``response_action`` is applied."""
        payload = self.emulator.view_submission(user_id, view_id, values)
        delivered = await self._interactive(payload)
        if delivered.ok:
            self._apply_view_response(view_id, delivered.ack)
        return delivered

    def _apply_view_response(self, view_id: str, ack: dict[str, Any]) -> None:
        ws = self.emulator.workspace
        view = ws.views[view_id]
        action = ack.get("response_action")
        if action == "errors":
            return  # the modal stays open; the console shows ack["errors"] under the inputs
        if action == "update" and isinstance(ack.get("view"), dict):
            view.history.append(view.view)
            view.view = ack["view"]
            self._changed("view_updated", view)
            return
        if action == "push" and isinstance(ack.get("view"), dict):
            self.emulator.api.views_push(Params({  # opened as views.push would open it
                "trigger_id": self.emulator.new_trigger_id(view.user_id or ""), "view": ack["view"]}))
            return
        if action == "clear":
            for other in ws.views.values():
                if other.user_id == view.user_id and not other.closed:
                    other.closed = True
        view.closed = True
        self._changed("view_closed", view)

    async def view_closed(self, user_id: str, view_id: str) -> Delivered | None:
        """``user_id`` dismisses a modal; Slack tells the app only when ``notify_on_close`` is set."""
        view = self.emulator.workspace.views[view_id]
        view.closed = True
        self._changed("view_closed", view)
        if not view.view.get("notify_on_close"):
            return None
        user = self.emulator.workspace.users[user_id]
        ws = self.emulator.workspace
        payload = {"type": "view_closed", "team": {"id": ws.team.id, "domain": ws.team.domain},
                   "user": {"id": user.id, "name": user.name, "team_id": ws.team.id},
                   "api_app_id": ws.app_id, "token": self.emulator.verification_token,
                   "view": view.to_api(), "is_cleared": False}
        return await self._interactive(payload)

    def _changed(self, kind: str, view: SlackView) -> None:
        if self.on_view_change is not None:
            self.on_view_change(kind, view)

    # -- Events API -----------------------------------------------------------------------

    async def deliver_event(self, envelope: dict[str, Any]) -> None:
        delivered = await self.post(json.dumps(envelope), content_type="application/json")
        if not delivered.ok:
            log.warning("event %s was not accepted: HTTP %s %s", envelope.get("event", {}).get("type"),
                        delivered.status, delivered.error or delivered.body[:200])


# -- Block Kit lookups ----------------------------------------------------------------------


def _message_blocks(emu: SlackEmulator, channel_id: str, ts: str) -> list[dict[str, Any]]:
    message = emu.workspace.find_message(channel_id, ts)
    if message is not None:
        return list(message.blocks or [])
    ephemeral = next((e for e in emu.workspace.ephemerals if e.ts == ts), None)
    return list(ephemeral.blocks or []) if ephemeral else []


def _elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    found = [e for e in block.get("elements") or [] if isinstance(e, dict)]
    for key in ("accessory", "element"):
        if isinstance(block.get(key), dict):
            found.append(block[key])
    return found


def _find_element(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any] | None:
    for block in blocks:
        for element in _elements(block):
            if element.get("action_id") == action_id:
                return element
    return None


def _block_id_of(blocks: list[dict[str, Any]], action_id: str) -> str | None:
    for block in blocks:
        if any(e.get("action_id") == action_id for e in _elements(block)):
            return block.get("block_id")
    return None


def element_options(element: dict[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _option(element: dict[str, Any], value: str) -> dict[str, Any]:
    for option in element_options(element):
        if option.get("value") == value:
            return option
    return {"text": {"type": "plain_text", "text": value}, "value": value}


def _selection(emu: SlackEmulator, element: dict[str, Any], selected: str | list[str]) -> dict[str, Any]:
    """The ``actions[0]`` fields Slack sends for a select or picker of type ``element["type"]``."""
    kind = element.get("type", "")
    values = selected if isinstance(selected, list) else [selected]
    first = values[0] if values else None
    if kind in ("static_select", "external_select", "overflow", "radio_buttons"):
        return {"selected_option": _option(element, first) if first is not None else None}
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        return {"selected_options": [_option(element, v) for v in values]}
    if kind == "users_select":
        return {"selected_user": first}
    if kind == "multi_users_select":
        return {"selected_users": values}
    if kind == "conversations_select":
        return {"selected_conversation": first}
    if kind == "channels_select":
        return {"selected_channel": first}
    if kind == "datepicker":
        return {"selected_date": first}
    if kind == "timepicker":
        return {"selected_time": first}
    return {"value": first}
