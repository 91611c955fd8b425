"""The Bolt app and its place in the aiohttp application (the composition root)."""

from __future__ import annotations

import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

import handlers
from bot.config import Settings
from bot.runtime import Runtime, build_runtime
from bot.web.app import RUNTIME, create_app

log = logging.getLogger(__name__)

BOLT = web.AppKey("bolt", AsyncApp)


def build_bolt_app(rt: Runtime) -> AsyncApp:
    secret = rt.settings.slack_signing_secret
    app = AsyncApp(
        client=rt.slack,
        signing_secret=secret.get_secret_value() if secret else None,
        # Listeners ack, hand their work to rt.background (handlers.common.ack_then) and
        # return, so the answer leaves at once. (With False, Bolt polls for the ack every
        # 10 ms and runs every listener unbounded on the loop that also answers Slack.)
        process_before_response=True,
        request_verification_enabled=not rt.settings.socket_mode,
        logger=logging.getLogger("firebreak.bolt"),
    )
    handlers.register(app, rt)
    return app


async def slack_events(request: web.Request) -> web.Response:
    bolt = request.app[BOLT]
    return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))


def add_socket_mode(app: web.Application, app_token: str) -> None:
    """Receive Slack's requests over Socket Mode for as long as the application runs."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    async def socket_mode(app: web.Application):
        handler = AsyncSocketModeHandler(app[BOLT], app_token)
        await handler.connect_async()
        yield
        await handler.close_async()

    app.cleanup_ctx.append(socket_mode)


def create_web_app(settings: Settings, **runtime_options) -> web.Application:
    """The full application of ``firebreak serve``: web routes plus Slack at /slack/events,
    or over Socket Mode when ``SLACK_APP_TOKEN`` is set (the web routes still answer)."""
    rt = build_runtime(settings, **runtime_options)
    app = create_app(rt)
    app[BOLT] = build_bolt_app(rt)
    if settings.slack_app_token is not None:
        add_socket_mode(app, settings.slack_app_token.get_secret_value())
    else:
        app.router.add_post("/slack/events", slack_events)
    return app


__all__ = ["BOLT", "RUNTIME", "build_bolt_app", "create_web_app"]
