"""Shared machinery of the provider fakes: an aiohttp app on 127.0.0.1 with
request recording, auth, fault injection, a validator hook and health endpoints.

Each fake (Render, Railway, Vercel, Heroku, GitHub) subclasses
:class:`FakeProviderServer`, adds its routes and answers in its provider's shapes.

    async with RenderFake() as render:                  # start() on 127.0.0.1, a free port
        settings = load_settings(render_api_url=render.api_url, render_api_key=render.token)
        render.faults.add(Fault.RATE_LIMIT, retry_after=1, method="GET")
        render.faults.add(Fault.LOST_RESPONSE, method="POST", path="/rollback")
        ...
        assert render.requests[-1].method == "GET"

Faults are consumed first in, first out, by the first request that matches
their ``method`` / ``path`` (a regular expression searched in the path):

- ``SERVER_ERROR`` – HTTP ``status`` (500) in the provider's error shape;
- ``RATE_LIMIT`` – 429 with ``Retry-After``;
- ``REJECT`` – ``status`` (409) with ``message`` in the provider's error shape;
- ``HANG`` – never answers (until the fake stops); ``SLOW`` – answers after ``delay``;
- ``RESET`` – closes the connection (TCP RST) without processing the request;
- ``LOST_RESPONSE`` – processes the request, then closes the connection:
  "the trigger succeeded but its response was lost".

``GET /health/<service>`` (never faulted, no auth) answers 500 while a deploy
marked bad is live on that service and 200 once a rollback replaced it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from aiohttp import web

from bot.clock import Clock, SystemClock, utc

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Fault(StrEnum):
    SERVER_ERROR = "server_error"
    RATE_LIMIT = "rate_limit"
    REJECT = "reject"
    HANG = "hang"
    SLOW = "slow"
    RESET = "reset"
    LOST_RESPONSE = "lost_response"


@dataclass(frozen=True, slots=True)
class InjectedFault:
    kind: Fault
    status: int = 500
    retry_after: str | None = None
    message: str | None = None
    delay: float = 0.0
    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None


class FaultQueue:
    """Faults to apply, each to one matching request, in the order they were added."""

    def __init__(self) -> None:
        self._queue: deque[InjectedFault] = deque()

    def add(
        self,
        kind: Fault,
        times: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        retry_after: float | str | None = None,
        message: str | None = None,
        delay: float = 0.0,
    ) -> None:
        if kind is Fault.RATE_LIMIT:
            status = status or 429
            retry_after = 1 if retry_after is None else retry_after
        elif kind is Fault.REJECT:
            status = status or 409
        fault = InjectedFault(
            kind,
            status=status or 500,
            retry_after=None if retry_after is None else (f"{retry_after:g}" if isinstance(retry_after, float) else str(retry_after)),
            message=message,
            delay=delay,
            method=method,
            path=path,
        )
        self._queue.extend([fault] * times)

    def take(self, method: str, path: str) -> InjectedFault | None:
        for fault in self._queue:
            if fault.matches(method, path):
                self._queue.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)


_SECRET_HEADERS = {"authorization", "project-access-token"}


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # credentials redacted
    text: str
    at: datetime
    fault: Fault | None = None
    authorized: bool = True

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return None


RequestValidator = Callable[[RecordedRequest], Iterable[str]]


class FakeProviderServer:
    """Base class of the provider fakes (see the module docstring)."""

    provider: ClassVar[str] = "fake"
    api_prefix: ClassVar[str] = ""  # e.g. "/v1" for Render: api_url = url + api_prefix
    validation_status: ClassVar[int] = 422

    def __init__(
        self,
        *,
        token: str = "test-token",
        clock: Clock | None = None,
        validator: RequestValidator | None = None,
    ) -> None:
        self.token = token
        self.clock: Clock = clock or SystemClock()
        self.validator = validator
        self.validation_errors: list[str] = []
        self.requests: list[RecordedRequest] = []
        self.faults = FaultQueue()
        self.app = web.Application(middlewares=[self._middleware])
        self.app.router.add_get("/health/{service:.+}", self._health)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.host = "127.0.0.1"
        self.port: int | None = None

    # -- lifecycle

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"the {self.provider} fake is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The base URL to configure (``RENDER_API_URL`` etc.)."""
        return self.url + self.api_prefix

    def health_url(self, service: str) -> str:
        return f"{self.url}/health/{service}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeProviderServer:
        self.host = host
        self._stopping.clear()
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Any:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- for subclasses

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def error_response(self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
        """An error in the provider's shape; subclasses override."""
        return web.json_response({"message": message}, status=status, headers=headers)

    def unauthorized_response(self) -> web.Response:
        return self.error_response(401, "Unauthorized", code="unauthorized")

    def is_healthy(self, service: str) -> bool | None:
        """None for an unknown service; subclasses override."""
        return None

    def describe_live(self, service: str) -> str | None:
        return None

    def api_requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded API requests (health checks excluded), filtered by method and path regex."""
        return [
            r for r in self.requests
            if not r.path.startswith("/health/")
            and (method is None or r.method == method.upper())
            and (path is None or re.search(path, r.path))
        ]

    # -- internals

    async def _health(self, request: web.Request) -> web.Response:
        service = request.match_info["service"]
        healthy = self.is_healthy(service)
        if healthy is None:
            return web.json_response({"status": "unknown", "service": service}, status=404)
        body = {"status": "ok" if healthy else "failing", "service": service, "live": self.describe_live(service)}
        return web.json_response(body, status=200 if healthy else 500)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/health/"):
            return await handler(request)
        text = await request.text()
        fault = self.faults.take(request.method, request.path)
        authorized = self.authorized(request)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k: ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in request.headers.items()},
            text=text,
            at=self.clock.now(),
            fault=fault.kind if fault else None,
            authorized=authorized,
        )
        self.requests.append(record)
        if fault is not None:
            early = await self._apply_fault_before(fault, request)
            if early is not None:
                return early
        if not authorized:
            return self.unauthorized_response()
        if self.validator is not None:
            problems = list(self.validator(record))
            if problems:
                self.validation_errors.extend(problems)
                return self.error_response(self.validation_status, "; ".join(problems), code="invalid_params")
        response = await handler(request)
        if fault is not None and fault.kind is Fault.LOST_RESPONSE:
            self._reset(request)  # processed, but the client never sees the answer
        return response

    async def _apply_fault_before(self, fault: InjectedFault, request: web.Request) -> web.StreamResponse | None:
        kind = fault.kind
        if kind is Fault.HANG:
            await self._stopping.wait()
            return self.error_response(503, "the fake is stopping")
        if kind is Fault.SLOW:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=fault.delay)
            return None
        if kind is Fault.RESET:
            self._reset(request)
            return web.Response(status=502)  # never delivered: the connection is gone
        if kind is Fault.LOST_RESPONSE:
            return None
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        if kind is Fault.RATE_LIMIT:
            return self.error_response(fault.status, fault.message or "Too many requests", code="rate_limited", headers=headers)
        if kind is Fault.REJECT:
            return self.error_response(fault.status, fault.message or "Conflict", code="conflict", headers=headers)
        return self.error_response(fault.status, fault.message or "Internal server error", code="internal_error", headers=headers)

    @staticmethod
    def _reset(request: web.Request) -> None:
        transport = request.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # SO_LINGER 0: the peer sees a reset, not an orderly close
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


@dataclass(frozen=True, slots=True)
class SeededService:
    """What a fake seeded for one service: ids by role, for tests and the demo."""

    key: str  # the provider's service identifier (service id, app name, project id, repo)
    name: str  # a friendly alias, also accepted by /health/<service>
    live_id: str  # the bad deploy, live now
    target_id: str  # the newest deploy that was live before: the expected default target
    failed_id: str  # a failed build between them, to be skipped
    oldest_id: str  # an older good deploy, a valid explicit target


def iso_z(when: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a ``Z``, as most provider APIs write it."""
    when = utc(when)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
