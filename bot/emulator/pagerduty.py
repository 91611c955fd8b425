"""A local fake of PagerDuty's Events API v2, for tests and ``firebreak demo``.

    async with PagerDutyFake(routing_keys={"R0UT1NGKEY..."}) as pd:
        settings = load_settings(pagerduty_events_url=pd.url)
        ...
        assert len(pd.incidents_for("firebreak-INC-12")) == 1

It answers like the real service: 202 ``{status, message, dedup_key}``, 400
``{status: "invalid event", message: "Event object is invalid", errors: [...]}``
for a malformed event or an unknown routing key. Incidents are kept by
``dedup_key`` within a routing key (PagerDuty de-duplicates per service): a
trigger with the key of an open (triggered or acknowledged) incident is
de-duplicated onto it and leaves its status alone; a trigger after ``resolve``
opens a new one; ``acknowledge``/``resolve`` of an unknown or resolved key is
accepted and ignored, as at PagerDuty.

Faults for the next requests (first in, first out)::

    pd.faults.add(Fault.SERVER_ERROR, times=2)         # 500 twice
    pd.faults.add(Fault.RATE_LIMIT, retry_after=7)     # 429 with Retry-After: 7
    pd.faults.add(Fault.HANG)                          # never answers (until stop)
    pd.faults.add(Fault.RESET)                         # drops the connection

``validator`` is called with each request body; whatever it raises is recorded
in ``validation_errors`` and answered with 400.

The fault machinery here (:class:`Fault`, :class:`FaultQueue`,
:class:`FakeHttpService`) is shared with the Opsgenie fake.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self

from aiohttp import web

Validator = Callable[[dict[str, Any]], None]


class Fault(StrEnum):
    SERVER_ERROR = "server_error"  # HTTP 500 (or another status given to FaultQueue.add)
    RATE_LIMIT = "rate_limit"  # HTTP 429 with Retry-After
    HANG = "hang"  # never answers until the fake stops
    RESET = "reset"  # closes the connection without answering


@dataclass(frozen=True, slots=True)
class InjectedFault:
    kind: Fault
    status: int = 500
    retry_after: str | None = None


class FaultQueue:
    """Faults to apply, one per incoming request, in the order they were added."""

    def __init__(self) -> None:
        self._queue: deque[InjectedFault] = deque()

    def add(self, kind: Fault, times: int = 1, *, status: int | None = None, retry_after: float | str | None = None) -> None:
        if kind is Fault.RATE_LIMIT:
            status = status or 429
            retry_after = "1" if retry_after is None else retry_after
        fault = InjectedFault(
            kind,
            status=status or 500,
            retry_after=None if retry_after is None else (f"{retry_after:g}" if isinstance(retry_after, float) else str(retry_after)),
        )
        self._queue.extend([fault] * times)

    def pop(self) -> InjectedFault | None:
        return self._queue.popleft() if self._queue else None

    def clear(self) -> None:
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    text: str
    fault: Fault | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return None


class FakeHttpService:
    """An aiohttp app on 127.0.0.1 with request recording and fault injection."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.faults = FaultQueue()
        self.app = web.Application(middlewares=[self._record_and_fault])
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.port: int | None = None
        self.host = "127.0.0.1"

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the fake is not started")
        return f"http://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeHttpService:
        self.host = host
        self._stopping.clear()
        self._runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = int(self._runner.addresses[0][1])  # the real port when port=0
        return self

    async def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    @web.middleware
    async def _record_and_fault(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        text = await request.text()
        fault = self.faults.pop()
        self.requests.append(
            RecordedRequest(
                request.method, request.path, dict(request.query), dict(request.headers), text,
                fault.kind if fault else None,
            )
        )
        if fault is None:
            return await handler(request)
        if fault.kind is Fault.HANG:
            await self._stopping.wait()
            raise web.HTTPServiceUnavailable()
        if fault.kind is Fault.RESET:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return self.fault_response(fault.status, headers)

    def fault_response(self, status: int, headers: dict[str, str]) -> web.Response:
        """The body of an injected error status; services override it with their own shape."""
        return web.json_response({"status": "error", "message": f"injected HTTP {status}"}, status=status, headers=headers)


@dataclass(slots=True)
class FakeIncident:
    dedup_key: str
    routing_key: str
    summary: str
    severity: str
    status: str = "triggered"  # triggered | acknowledged | resolved
    trigger_count: int = 1
    actions: list[str] = field(default_factory=lambda: ["trigger"])
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


_ACTIONS = ("trigger", "acknowledge", "resolve")
_SEVERITIES = ("critical", "error", "warning", "info")


class PagerDutyFake(FakeHttpService):
    """Events API v2 at ``POST /v2/enqueue`` (``.url``)."""

    def __init__(self, routing_keys: Iterable[str] = (), *, validator: Validator | None = None) -> None:
        super().__init__()
        self.routing_keys = set(routing_keys)
        self.validator = validator
        self.validation_errors: list[str] = []
        self.incidents: dict[str, FakeIncident] = {}
        """The latest incident per dedup_key (of any routing key)."""
        self.incident_history: list[FakeIncident] = []
        """Every incident ever opened, oldest first."""
        self.app.router.add_post("/v2/enqueue", self._enqueue)

    @property
    def url(self) -> str:
        """The value for ``PAGERDUTY_EVENTS_URL``."""
        return f"{self.base_url}/v2/enqueue"

    def incidents_for(self, dedup_key: str) -> list[FakeIncident]:
        return [i for i in self.incident_history if i.dedup_key == dedup_key]

    def fault_response(self, status: int, headers: dict[str, str]) -> web.Response:
        if status == 429:
            body = {"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."}
        else:
            body = {"status": "error", "message": "Internal Server Error"}
        return web.json_response(body, status=status, headers=headers)

    @staticmethod
    def _invalid(*errors: str) -> web.Response:
        return web.json_response(
            {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)}, status=400
        )

    def _check(self, event: dict[str, Any]) -> list[str]:
        errors: list[str] = []
        action = event.get("event_action")
        if action not in _ACTIONS:
            errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
        dedup_key = event.get("dedup_key")
        if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and not dedup_key:
            errors.append("'dedup_key' is missing or blank")
        if action == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                errors.append("'payload' is missing or not an object")
            else:
                summary = payload.get("summary")
                if not isinstance(summary, str) or not summary.strip():
                    errors.append("'payload.summary' is missing or blank")
                elif len(summary) > 1024:
                    errors.append("'payload.summary' is longer than 1024 characters")
                if not isinstance(payload.get("source"), str) or not payload["source"].strip():
                    errors.append("'payload.source' is missing or blank")
                if payload.get("severity") not in _SEVERITIES:
                    errors.append("'payload.severity' is invalid (must be one of critical, error, warning, info)")
        return errors

    async def _enqueue(self, request: web.Request) -> web.Response:
        try:
            event = json.loads(await request.text())
        except ValueError:
            return web.json_response(
                {"status": "Unrecognized object", "message": "Event object format is unrecognized", "errors": ["JSON parse error"]},
                status=400,
            )
        if not isinstance(event, dict):
            return self._invalid("Event object format is unrecognized")
        if self.validator is not None:
            try:
                self.validator(event)
            except Exception as exc:  # noqa: BLE001 - any validator failure is a refused event
                self.validation_errors.append(str(exc))
                return self._invalid(f"validator: {exc}")
        if event.get("routing_key") not in self.routing_keys:
            return self._invalid("Invalid routing key")
        errors = self._check(event)
        if errors:
            return self._invalid(*errors)
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        self._apply(event, dedup_key)
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": dedup_key}, status=202
        )

    def _apply(self, event: dict[str, Any], dedup_key: str) -> None:
        action = event["event_action"]
        current = next((i for i in reversed(self.incident_history)
                        if i.dedup_key == dedup_key and i.routing_key == event["routing_key"]), None)
        if action == "trigger":
            if current is not None and current.status != "resolved":
                current.trigger_count += 1
                current.actions.append("trigger")
                return
            payload = event["payload"]
            incident = FakeIncident(dedup_key, event["routing_key"], payload["summary"], payload["severity"])
            self.incidents[dedup_key] = incident
            self.incident_history.append(incident)
        elif current is not None and current.status != "resolved":
            # Like PagerDuty, acknowledge/resolve of an unknown or resolved key is accepted and ignored.
            current.actions.append(action)
            current.status = "acknowledged" if action == "acknowledge" else "resolved"
