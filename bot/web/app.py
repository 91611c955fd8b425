"""aiohttp application factory: health routes and the runtime's lifecycle.

Slack's endpoint is mounted by ``handlers.app`` so that this package stays free
of slack_bolt; other concerns add their routes through ``bot/<concern>/install.py``
(see ``bot.plugins``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.db.engine import database_ready
from bot.plugins import concern_installers
from bot.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)


MAX_BODY = 1024 * 1024  # Slack payloads are far smaller; refuse anything bigger (413)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    if await database_ready(rt.engine):
        return web.json_response({"status": "ready", "database": "ok"})
    return web.json_response({"status": "not ready", "database": "unreachable"}, status=503)


def create_app(rt: Runtime) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
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
