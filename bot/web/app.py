"""aiohttp application factory: health routes and the runtime's lifecycle.

Slack's endpoint is mounted by ``handlers.app`` so that this package stays free
of slack_bolt; other concerns add their routes through ``bot/<concern>/install.py``
(see ``bot.plugins``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bot.config import Settings
from bot.db.engine import database_ready
from bot.plugins import concern_installers
from bot.runtime import Runtime

log = logging.getLogger(__name__)

RUNTIME = web.AppKey("runtime", Runtime)


MAX_BODY = 1024 * 1024  # Slack payloads are far smaller; refuse anything bigger (413)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    if await database_ready(rt.engine):
        return web.json_response({"status": "ready", "database": "ok"})
    return web.json_response({"status": "not ready", "database": "unreachable"}, status=503)


def server_options(settings: Settings) -> dict[str, Any]:
    """How ``firebreak serve`` runs aiohttp's server (``web.run_app`` / ``web.AppRunner``).

    ``keepalive_timeout`` closes a connection that is idle, or whose request line and
    headers never finish, after ``HTTP_IDLE_TIMEOUT_SECONDS``. A body that stops half-way
    is cut off by :func:`client_deadline` after ``HTTP_READ_TIMEOUT_SECONDS``; what is left
    of it is read for at most half that (``lingering_time``) before the connection closes.
    No access log: a request line may carry ``?token=``.
    """
    return {"keepalive_timeout": settings.http_idle_timeout_seconds,
            "lingering_time": min(10.0, settings.http_read_timeout_seconds / 2),
            "access_log": None}


def client_deadline(read_timeout: float):
    """Middleware: a request body must arrive within ``read_timeout`` seconds (else 408 and
    the connection closes), and a client that goes away half-way is an everyday event,
    logged at INFO without a traceback (aiohttp would log it at ERROR)."""

    def gone(request: web.Request) -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        if request.body_exists:
            try:
                async with asyncio.timeout(read_timeout):
                    await request.read()  # kept: the handler reads it from memory
            except TimeoutError:
                log.info("%s %s: the request body did not arrive within %gs; closing the connection",
                         request.method, request.path, read_timeout)
                response = web.Response(status=408, text="the request body did not arrive in time")
                response.force_close()
                return response
            except ConnectionResetError:
                log.info("%s %s: the client went away before sending its whole request",
                         request.method, request.path)
                return web.Response(status=400, text="incomplete request")  # nobody is there to read it
        try:
            return await handler(request)
        except ConnectionResetError:
            if not gone(request):
                raise
            log.info("%s %s: the client went away before reading the whole answer", request.method, request.path)
            return web.Response(status=400, text="the client went away")

    return middleware


def create_app(rt: Runtime) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY,
                          middlewares=[client_deadline(rt.settings.http_read_timeout_seconds)])
    app[RUNTIME] = rt

    async def runtime_context(app: web.Application) -> AsyncIterator[None]:
        await rt.start()
        yield
        await rt.close()

    app.cleanup_ctx.append(runtime_context)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    for concern in concern_installers():
        if hasattr(concern, "install_routes"):
            concern.install_routes(app, rt)
    return app
