"""The Bolt app and its place in the aiohttp application (the composition root)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest

import handlers
from bot.config import Settings
from bot.runtime import Runtime, build_runtime
from bot.web.app import RUNTIME, create_app
from handlers.common import dig, slack_id

log = logging.getLogger(__name__)

BOLT = web.AppKey("bolt", AsyncApp)
SIGNING_SECRET = web.AppKey("slack_signing_secret", object)  # str, or None (no check: Socket Mode)


def identity_authorize(rt: Runtime) -> Callable[..., Awaitable[AuthorizeResult]]:
    """Bolt's ``authorize``: the bot token and whatever is known of the bot's identity
    (``bot.slack.identity``), never a call to Slack. Bolt's default asks ``auth.test`` on
    the request's path and, while Slack is down, answers the request with an error
    instead of running it."""
    token = rt.slack.token

    # Bolt passes the arguments this function names.
    async def authorize(enterprise_id: str | None, team_id: str | None,
                        user_id: str | None) -> AuthorizeResult:
        known = rt.identity.for_team(team_id)
        return AuthorizeResult(
            enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token,
            bot_user_id=known.user_id if known else None, bot_id=known.bot_id if known else None)

    return authorize


class _WithoutTokenIgnoredWarning(logging.Filter):
    """Bolt warns that the client's token is ignored when ``authorize`` is given; it is not
    (``authorize`` hands it back on every request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_token_skipped()


def build_bolt_app(rt: Runtime) -> AsyncApp:
    secret = rt.settings.slack_signing_secret
    bolt_log = logging.getLogger("firebreak.bolt")
    quiet = _WithoutTokenIgnoredWarning()
    bolt_log.addFilter(quiet)
    try:
        app = AsyncApp(
            client=rt.slack,
            authorize=identity_authorize(rt),
            signing_secret=secret.get_secret_value() if secret else None,
            # Listeners ack, hand their work to rt.background (handlers.common.ack_then) and
            # return, so the answer leaves at once. (With False, Bolt polls for the ack every
            # 10 ms and runs every listener unbounded on the loop that also answers Slack.)
            process_before_response=True,
            request_verification_enabled=not rt.settings.socket_mode,
            logger=bolt_log,
        )
    finally:
        bolt_log.removeFilter(quiet)
    handlers.register(app, rt)
    return app


SIGNATURE_MAX_AGE = 60 * 5  # seconds, as Slack's own check (and Bolt's)


def _signed_by_slack(secret: str, body: bytes, headers) -> bool:
    """Slack's request signature over the raw bytes, checked before anything reads the body."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12 or not signature:
        return False
    if abs(time.time() - int(timestamp)) > SIGNATURE_MAX_AGE:
        return False
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body,
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def _ssl_check(body: bytes) -> bool:
    """Slack's certificate check (``ssl_check=1``): Bolt answers it with 200 and runs nothing."""
    try:
        fields = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))
    except UnicodeDecodeError:
        return False
    return fields.get("ssl_check") == "1" and not fields.keys() - {"ssl_check", "token"}


def _refuse(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)


async def slack_events(request: web.Request) -> web.Response:
    """Slack's requests: signature first (401), then a body Bolt can read (400), then Bolt.

    Bolt parses the body before it checks the signature, and a body it cannot read (not
    UTF-8, ``payload`` that is not JSON, JSON that is not an object, a bad timestamp)
    raises out of it: an unsigned request could make us answer 500.
    """
    bolt = request.app[BOLT]
    body = await request.read()
    secret = request.app[SIGNING_SECRET]
    if secret is not None and not _signed_by_slack(secret, body, request.headers) \
            and not _ssl_check(body):
        return _refuse(401, "invalid request signature")
    try:
        bolt_request = AsyncBoltRequest(body=body.decode("utf-8"), query=request.query_string,
                                        headers=request.headers)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        log.warning("refused a signed request Bolt cannot read: %s", type(exc).__name__)
        return _refuse(400, "malformed request")
    if not _well_shaped(bolt_request):
        log.warning("refused a signed request that is not shaped like Slack's")
        return _refuse(400, "malformed request")
    return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))


# Fields Bolt reads to route a request, with the JSON type Slack always gives them.
_SHAPES = {"event": dict, "view": dict, "actions": list, "user": (dict, str), "team": (dict, str),
           "channel": (dict, str), "container": dict, "message": dict, "enterprise": (dict, str),
           "authorizations": list, "type": str, "command": str, "callback_id": str,
           "action_id": str}


def _well_shaped(request: AsyncBoltRequest) -> bool:
    """Bolt indexes into these without checking; Slack always sends them so."""
    body = request.body
    if not isinstance(body, dict):
        return False
    for key in ("team_id", "enterprise_id"):  # Bolt's client adds them to every Web API call
        value = request.context.get(key)
        if value is not None and slack_id(value) is None:
            return False
    if not all(body.get(key) is None or isinstance(body[key], kind) for key, kind in _SHAPES.items()):
        return False
    for key in ("event", "view"):  # routed on their "type"
        if key in body and not isinstance(dig(body, key, "type"), str):
            return False
    if dig(body, "view", "callback_id") is not None and not isinstance(dig(body, "view", "callback_id"), str):
        return False  # forms are routed on it
    if "actions" in body:  # routed on the first action's action_id (block_id, for some)
        actions = body["actions"]
        if not actions or not all(isinstance(a, dict) and isinstance(a.get("action_id"), str)
                                  and isinstance(a.get("block_id") or "", str) for a in actions):
            return False
    return True


SOCKET_PING_SECONDS = 5  # a dropped socket is noticed within this and replaced


def add_socket_mode(app: web.Application, app_token: str) -> None:
    """Receive Slack's requests over Socket Mode for as long as the application runs.

    The connection is opened in the background (and re-opened whenever it drops): the
    rest of Firebreak (web pages, the worker, pages already due) never waits for Slack.
    """
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    async def socket_mode(app: web.Application):
        handler = AsyncSocketModeHandler(app[BOLT], app_token, ping_interval=SOCKET_PING_SECONDS)
        connecting = asyncio.get_running_loop().create_task(handler.connect_async(),
                                                            name="slack socket mode")
        yield
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
        await handler.close_async()

    app.cleanup_ctx.append(socket_mode)


def create_web_app(settings: Settings, **runtime_options) -> web.Application:
    """The full application of ``firebreak serve``: web routes plus Slack at /slack/events,
    or over Socket Mode when ``SLACK_APP_TOKEN`` is set (the web routes still answer)."""
    rt = build_runtime(settings, **runtime_options)
    app = create_app(rt)
    app[BOLT] = build_bolt_app(rt)
    secret = settings.slack_signing_secret
    app[SIGNING_SECRET] = secret.get_secret_value() if secret is not None and not settings.socket_mode else None
    if settings.slack_app_token is not None:
        add_socket_mode(app, settings.slack_app_token.get_secret_value())
    else:
        app.router.add_post("/slack/events", slack_events)
    return app


__all__ = ["BOLT", "RUNTIME", "build_bolt_app", "create_web_app"]
