"""Slack's Socket Mode, as the emulator serves it to an app holding an app-level token.

``apps.connections.open`` (called with the ``xapp-`` token) answers a one-time
``ws://127.0.0.1:…/link/?ticket=…`` URL. On that WebSocket the emulator sends what Slack
sends: ``hello`` first, then envelopes ``{"envelope_id", "type", "payload",
"accepts_response_payload"}`` of type ``slash_commands``, ``interactive`` and
``events_api`` (the last with ``retry_attempt`` / ``retry_reason``), and ``disconnect``
before it closes a connection for a refresh. The app answers each envelope with
``{"envelope_id", "payload"?}``.

Slack's rules, checked here: an envelope must be acknowledged within 3 seconds (else it
is a :attr:`SocketModeServer.violations` entry, and an Events API envelope is sent again,
``retry_reason`` ``timeout``, at most 3 times); Events API envelopes that cannot be sent
(no connection) or whose connection dropped before their ack wait and are sent again when
the app reconnects; a slash command or a click with no connection fails at once (the
user sees ``dispatch_failed``), as in Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from bot.emulator.slack_api import SlackEmulator

logger = logging.getLogger(__name__)

EnvelopeType = Literal["slash_commands", "interactive", "events_api"]

ACK_WITHIN = 3.0  # seconds: Slack's limit for acknowledging an envelope
EVENT_RETRIES = 3  # Events API deliveries Slack sends again after the first
TICKET_TTL = 30.0  # seconds a URL from apps.connections.open may wait before it is used


class DispatchFailed(Exception):
    """Slack could not hand a command or a click to the app: no Socket Mode connection."""


@dataclass
class Delivery:
    """One request of Slack to the app, sent as one envelope (or more: Events API retries)."""

    type: EnvelopeType
    payload: dict[str, Any]
    accepts_response_payload: bool
    envelope_ids: list[str] = field(default_factory=list)
    sent_at: float | None = None  # monotonic time of the last send
    acked_after: float | None = None  # seconds between that send and the ack
    ack_payload: dict[str, Any] | None = None
    retry_attempt: int = 0
    retry_reason: str = ""
    acked: asyncio.Event = field(default_factory=asyncio.Event)

    async def ack(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The payload the app acknowledged with (None for a plain ack); raise on no ack."""
        await asyncio.wait_for(self.acked.wait(), timeout)
        return self.ack_payload


@dataclass
class _Connection:
    number: int
    ws: web.WebSocketResponse
    request: web.Request


class SocketModeServer:
    def __init__(self, emulator: SlackEmulator) -> None:
        self.emulator = emulator
        self.connections: list[_Connection] = []
        self.deliveries: list[Delivery] = []
        self.violations: list[str] = []
        self.opened = 0  # connections ever opened (hello sent)
        self._tickets: dict[str, float] = {}
        self._envelopes: dict[str, Delivery] = {}  # every envelope id sent
        self._in_flight: dict[str, _Connection] = {}  # envelope id -> its connection, until acked
        self._waiting: list[Delivery] = []  # Events API deliveries waiting for a connection
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._next = 0
        self._lose_ack_of: str | None = None

    # -- apps.connections.open and the WebSocket ------------------------------------------

    def new_url(self) -> str:
        ticket = self.emulator.workspace.ids.secret(32)
        self._tickets[ticket] = time.monotonic()
        ws_base = self.emulator.base_url.replace("http://", "ws://", 1)
        return f"{ws_base}/link/?ticket={ticket}&app_id={self.emulator.workspace.app_id}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        issued = self._tickets.pop(request.query.get("ticket", ""), None)
        if issued is None or time.monotonic() - issued > TICKET_TTL:
            return web.Response(status=401, text="invalid_ticket")  # each URL connects once
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.opened += 1
        connection = _Connection(self.opened, ws, request)
        self.connections.append(connection)
        ws_state = self.emulator.workspace
        await ws.send_json({"type": "hello", "num_connections": len(self.connections),
                            "debug_info": {"host": "applink-emulator", "build_number": 1,
                                           "approximate_connection_time": 18060},
                            "connection_info": {"app_id": ws_state.app_id}})
        waiting, self._waiting = self._waiting, []
        for delivery in waiting:
            await self._send(delivery, connection)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._received(connection, message.data)
        finally:
            self._lost(connection)
        return ws

    def _received(self, connection: _Connection, text: str) -> None:
        try:
            answer = json.loads(text)
        except json.JSONDecodeError:
            self.violations.append(f"not JSON on the socket: {text[:100]!r}")
            return
        envelope_id = answer.get("envelope_id") if isinstance(answer, dict) else None
        delivery = self._envelopes.get(envelope_id) if isinstance(envelope_id, str) else None
        if delivery is None:
            self.violations.append(f"an ack for no envelope Slack sent: {text[:200]}")
            return
        if self._lose_ack_of is not None and _event_type(delivery) == self._lose_ack_of \
                and envelope_id in self._in_flight:
            self._lose_ack_of = None
            self.drop()  # the ack never reaches Slack
            return
        self._in_flight.pop(envelope_id, None)  # acks may come over any of the app's connections
        timer = self._timers.pop(envelope_id, None)
        if timer is not None:
            timer.cancel()
        elapsed = time.monotonic() - (delivery.sent_at or 0.0)
        if elapsed > ACK_WITHIN:
            self.violations.append(f"{delivery.type} envelope {envelope_id} acknowledged after {elapsed:.1f} s")
        payload = answer.get("payload")
        if payload is not None and not delivery.accepts_response_payload:
            self.violations.append(f"{delivery.type} envelope {envelope_id} does not accept a response payload")
        if delivery.acked.is_set():
            return  # a retried event's earlier envelope, acknowledged late
        if delivery in self._waiting:
            self._waiting.remove(delivery)
        delivery.acked_after = elapsed
        delivery.ack_payload = payload if isinstance(payload, dict) else None
        delivery.acked.set()

    def _lost(self, connection: _Connection) -> None:
        """A connection closed or dropped: what it had not acknowledged waits for the next."""
        if connection in self.connections:
            self.connections.remove(connection)
        for envelope_id, sent_on in list(self._in_flight.items()):
            if sent_on is not connection:
                continue
            del self._in_flight[envelope_id]
            timer = self._timers.pop(envelope_id, None)
            if timer is not None:
                timer.cancel()
            delivery = self._envelopes[envelope_id]
            if delivery.type == "events_api" and not delivery.acked.is_set() and delivery not in self._waiting:
                self._queue_retry(delivery, "timeout")

    # -- sending ----------------------------------------------------------------------------

    async def deliver(self, type_: EnvelopeType, payload: dict[str, Any]) -> Delivery:
        """Send ``payload`` to the app, as Slack would; returns once it is sent (or waiting).

        Raises :class:`DispatchFailed` for a command or a click when no connection is open.
        """
        connection = self._pick()
        if connection is None and type_ != "events_api":
            raise DispatchFailed(f"no Socket Mode connection for a {type_} request")
        delivery = Delivery(type_, payload, accepts_response_payload=self._accepts_payload(type_, payload))
        self.deliveries.append(delivery)
        if connection is None:
            self._waiting.append(delivery)
            return delivery
        await self._send(delivery, connection)
        return delivery

    @staticmethod
    def _accepts_payload(type_: EnvelopeType, payload: dict[str, Any]) -> bool:
        # Slack lets a command's ack carry the reply, and a view submission's ack its
        # response_action; block_actions and events take a plain ack.
        return type_ == "slash_commands" or (type_ == "interactive" and payload.get("type") == "view_submission")

    def _pick(self) -> _Connection | None:
        live = [c for c in self.connections if not c.ws.closed]
        return live[self._next_index(len(live))] if live else None

    def _next_index(self, count: int) -> int:
        self._next += 1
        return self._next % count

    async def _send(self, delivery: Delivery, connection: _Connection) -> None:
        envelope_id = self._new_envelope_id()
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "payload": delivery.payload,
                                    "type": delivery.type,
                                    "accepts_response_payload": delivery.accepts_response_payload}
        if delivery.type == "events_api":
            envelope.update(retry_attempt=delivery.retry_attempt, retry_reason=delivery.retry_reason)
        delivery.envelope_ids.append(envelope_id)
        delivery.sent_at = time.monotonic()
        self._envelopes[envelope_id] = delivery
        self._in_flight[envelope_id] = connection
        self._timers[envelope_id] = asyncio.get_running_loop().call_later(
            ACK_WITHIN, self._deadline_passed, envelope_id)
        try:
            await connection.ws.send_str(json.dumps(envelope))
        except ConnectionError:
            self._lost(connection)

    def _new_envelope_id(self) -> str:
        ids = self.emulator.workspace.ids
        return "-".join(ids.secret(n).lower() for n in (8, 4, 4, 4, 12))

    def _deadline_passed(self, envelope_id: str) -> None:
        self._timers.pop(envelope_id, None)
        if self._in_flight.pop(envelope_id, None) is None:
            return
        delivery = self._envelopes[envelope_id]
        if delivery.acked.is_set():
            return
        self.violations.append(f"{delivery.type} envelope {envelope_id} not acknowledged within {ACK_WITHIN:.0f} s")
        if delivery.type == "events_api":
            self._queue_retry(delivery, "timeout")
            live = self._pick()
            if live is not None:
                waiting, self._waiting = self._waiting, []
                for retry in waiting:
                    asyncio.ensure_future(self._send(retry, live))

    def _queue_retry(self, delivery: Delivery, reason: str) -> None:
        if delivery.retry_attempt >= EVENT_RETRIES:
            self.violations.append(f"event {delivery.payload.get('event_id')} dropped after {EVENT_RETRIES} retries")
            return
        delivery.retry_attempt += 1
        delivery.retry_reason = reason
        self._waiting.append(delivery)

    # -- what Slack does to connections ----------------------------------------------------

    async def refresh(self) -> None:
        """Ask every connection to reconnect (``disconnect``, ``refresh_requested``), as Slack
        does every few hours; the old connections close once the app has moved."""
        for connection in list(self.connections):
            await connection.ws.send_json({"type": "disconnect", "reason": "refresh_requested",
                                           "debug_info": {"host": "applink-emulator"}})

    def lose_next_ack(self, event_type: str) -> None:
        """The next acknowledgement of an ``event_type`` event is lost with its connection: the
        app did the work, Slack never heard, and sends the event again once the app reconnects."""
        self._lose_ack_of = event_type

    def drop(self) -> None:
        """Cut every connection without a close frame, as a network failure does."""
        for connection in list(self.connections):
            transport = connection.request.transport
            if transport is not None:
                transport.abort()
            self._lost(connection)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for connection in list(self.connections):
            with contextlib.suppress(Exception):
                await connection.ws.close()
        self.connections.clear()

    @property
    def waiting(self) -> list[Delivery]:
        """Events API deliveries waiting for the app to (re)connect."""
        return list(self._waiting)


def _event_type(delivery: Delivery) -> str | None:
    event = delivery.payload.get("event") if delivery.type == "events_api" else None
    return event.get("type") if isinstance(event, dict) else None
