"""A local Slack Web API emulator that the real ``slack_sdk`` clients can talk to unchanged.

One aiohttp application serves ``/api/<method>`` (form, query or JSON parameters, ``Bearer``
token), the file upload URLs it hands out, file downloads and ``response_url``s. State lives in
memory (:mod:`bot.emulator.slack_state`); every call is recorded for tests; faults (errors, 429s,
slow answers) can be injected; and the ``user_*`` methods act as a human would, emitting Events
API envelopes to ``on_event``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from aiohttp import web

from bot.clock import Clock
from bot.emulator.slack_blocks import check_message_blocks, check_message_text
from bot.emulator.slack_methods import Params, SlackWebApi, StateChange
from bot.emulator.slack_socket import SocketModeServer
from bot.emulator.slack_state import (
    Bookmark,
    EphemeralMessage,
    ResponseUrl,
    ResponseUrlPost,
    SlackApiFailure,
    SlackChannel,
    SlackFile,
    SlackMessage,
    SlackUser,
    SlackUserGroup,
    SlackView,
    Team,
    Workspace,
)
from bot.emulator.slack_state import seed_default_workspace as seed_sample_team

logger = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], Awaitable[None]]
ChangeListener = Callable[[StateChange], Awaitable[None] | None]
Validator = Callable[[str, dict[str, Any]], Any]

# Parameters that slack_sdk sends as JSON text inside form or query fields.
JSON_PARAMS = frozenset({"attachments", "blocks", "files", "metadata", "view", "unfurls"})

# Methods Slack has retired: it answers ``method_deprecated`` rather than ``unknown_method``.
RETIRED_METHODS = frozenset({"files.upload", "channels.create", "channels.invite", "channels.history", "im.open"})

RESPONSE_URL_MAX_USES = 5

# Methods called with an app-level token (xapp-): every other method refuses one, and these
# refuse a bot token (``not_allowed_token_type``).
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})

# ``app[EMULATOR_KEY]`` is the emulator serving an application, for whoever mounts ``emu.app``.
EMULATOR_KEY: web.AppKey[SlackEmulator] = web.AppKey("slack_emulator")


@dataclass(frozen=True)
class RecordedCall:
    """One Web API call: parameters as decoded by the emulator (JSON fields parsed), and the answer."""

    method: str
    params: dict[str, Any]
    response: dict[str, Any]
    status: int
    timestamp: float

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")


@dataclass(frozen=True)
class Violation:
    """A request the validator hook refused."""

    method: str
    params: dict[str, Any]
    message: str


@dataclass
class _Fault:
    kind: Literal["error", "rate_limit"]
    remaining: int
    error: str = "internal_error"
    status: int = 200
    retry_after: int = 1


@dataclass
class _RateLimitFraction:
    fraction: float
    retry_after: int
    rng: random.Random = field(default_factory=random.Random)


@dataclass
class _LostAnswer:
    method: str
    remaining: int
    where: Callable[[dict[str, Any]], bool] | None = None


class SlackEmulator:
    """An in-memory Slack workspace behind a Web API that ``AsyncWebClient(base_url=emu.api_url)`` accepts."""

    def __init__(
        self,
        bot_token: str = "xoxb-test",
        *,
        app_token: str | None = None,
        team_id: str = "T0FIREBRK",
        team_name: str = "Firebreak Demo",
        team_domain: str = "firebreak-demo",
        app_id: str = "A0FIREBRK",
        bot_user_id: str = "U0FIREBOT",
        bot_id: str = "B0FIREBOT",
        bot_name: str = "firebreak",
        verification_token: str = "emulator-verification-token",
        seed_default_workspace: bool = True,
        validator: Validator | None = None,
        on_event: EventCallback | None = None,
        clock: Clock | None = None,
        chat_write_public: bool = False,
        strict_trigger_ids: bool = False,
        trigger_ttl: float = 3.0,
        response_url_ttl: float = 30 * 60,
        id_seed: int = 0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.bot_token = bot_token
        self.sleep = sleep  # how a delay (``delay()``) is waited: tests pass a recording one
        self.verification_token = verification_token
        self.validator = validator
        self.on_event = on_event
        self.response_url_ttl = response_url_ttl
        self.workspace = Workspace(
            team=Team(team_id, team_name, team_domain),
            app_id=app_id,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            bot_name=bot_name,
            clock=clock,
            id_seed=id_seed,
        )
        if seed_default_workspace:
            seed_sample_team(self.workspace)
        self.api = SlackWebApi(
            self.workspace,
            notify=self._notify,
            base_url=lambda: self.base_url,
            chat_write_public=chat_write_public,
            strict_trigger_ids=strict_trigger_ids,
            trigger_ttl=trigger_ttl,
        )
        self.calls: list[RecordedCall] = []
        self.violations: list[Violation] = []
        self.events: list[dict[str, Any]] = []
        self.event_errors: list[BaseException] = []
        self._tokens = {bot_token}
        self._app_tokens = {app_token} if app_token else set()
        self.socket_mode = SocketModeServer(self)
        self._app_methods: dict[str, Callable[[Params], dict[str, Any]]] = {
            "apps.connections.open": lambda params: {"url": self.socket_mode.new_url()},
        }
        self._faults: dict[str, list[_Fault]] = {}
        self._fractions: dict[str, _RateLimitFraction] = {}
        self._delays: dict[str, float] = {}
        self._lost_answers: list[_LostAnswer] = []
        self._listeners: list[ChangeListener] = []
        self._listener_tasks: set[asyncio.Task[Any]] = set()
        self._base_url: str | None = None
        self._runner: web.AppRunner | None = None
        self.app = self._build_app()

    # -- lifecycle ----------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app[EMULATOR_KEY] = self
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{token}", self._handle_upload)
        app.router.add_get("/files/{file_id}/{name}", self._handle_download)
        app.router.add_post("/response/{token}", self._handle_response_url)
        app.router.add_get("/link/", self.socket_mode.handle)
        return app

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> SlackEmulator:
        """Serve on ``host:port`` (port 0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        public_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self._base_url = f"http://{public_host}:{bound_port}"
        return self

    async def stop(self) -> None:
        for task in list(self._listener_tasks):
            task.cancel()
        if self._listener_tasks:
            await asyncio.gather(*self._listener_tasks, return_exceptions=True)
        await self.socket_mode.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: set by :meth:`start`, or by whoever serves :attr:`app`."""
        if self._base_url is None:
            raise RuntimeError("the emulator is not serving: call start() or set base_url")
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self._base_url = value.rstrip("/")

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    # -- HTTP handlers ------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            raw = await _read_params(request)
        except SlackApiFailure as failure:
            return self._answer(method, {}, 200, failure.to_body(), {})
        token = _bearer(request) or _str_param(raw, "token")
        raw.pop("token", None)
        params = _decode_json_params(raw)
        status, body, headers = await self._dispatch(method, token, params)
        response = self._answer(method, params, status, body, headers)
        if self._take_lost_answer(method, params):
            # Slack did the work; the connection drops before the answer leaves.
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        return response

    def _answer(
        self, method: str, params: dict[str, Any], status: int, body: dict[str, Any], headers: dict[str, str]
    ) -> web.Response:
        self.calls.append(RecordedCall(method, params, body, status, self.workspace.now()))
        return web.json_response(body, status=status, headers=headers)

    async def _dispatch(
        self, method: str, token: str | None, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        delay = self._delays.get(method, self._delays.get("*", 0.0))
        if delay > 0:
            await self.sleep(delay)
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token not in self._tokens and token not in self._app_tokens:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if (token in self._app_tokens) != (method in APP_TOKEN_METHODS):
            return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        if self.validator is not None:
            try:
                outcome = self.validator(method, params)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as exc:  # noqa: BLE001 - any complaint of the hook is a violation, whatever its type
                self.violations.append(Violation(method, params, str(exc)))
                return 200, SlackApiFailure("invalid_arguments", f"[ERROR] {exc}").to_body(), {}
        if method in RETIRED_METHODS:
            return 200, {"ok": False, "error": "method_deprecated"}, {}
        handler = self.api.handler(method) or self._app_methods.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        injected = self._take_fault(method)
        if injected is not None:
            return injected
        try:
            return 200, {"ok": True, **handler(Params(params))}, {}
        except SlackApiFailure as failure:
            return 200, failure.to_body(), {}
        except Exception as exc:  # an emulator bug: answer like a Slack outage, and say why
            logger.exception("slack emulator failed on %s", method)
            return 500, {"ok": False, "error": "fatal_error", "emulator_exception": repr(exc)}, {}

    async def _handle_upload(self, request: web.Request) -> web.Response:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next((v for v in form.values() if isinstance(v, web.FileField)), None)
            content = part.file.read() if part is not None else str(form.get("file", "")).encode()
        else:
            content = await request.read()
        file = self.api.receive_upload(request.match_info["token"], content)
        if file is None:
            return web.Response(status=404, text="upload_url_not_found")
        return web.Response(text=f"OK - {len(content)}")

    async def _handle_download(self, request: web.Request) -> web.Response:
        if _bearer(request) not in self._tokens:
            return web.Response(status=403, text="forbidden")
        file = self.workspace.files.get(request.match_info["file_id"])
        if file is None or not file.completed:
            return web.Response(status=404, text="file_not_found")
        return web.Response(body=file.content, content_type=file.mimetype)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        url = self.workspace.response_urls.get(request.match_info["token"])
        if url is None:
            return web.json_response({"ok": False, "error": "invalid_token"}, status=404)
        try:
            payload = await _read_response_payload(request)
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        if self.workspace.now() - url.created > self.response_url_ttl:
            return self._response_url_answer(url, payload, 404, "expired_url")
        if url.uses >= RESPONSE_URL_MAX_USES:
            return self._response_url_answer(url, payload, 404, "used_url")
        url.uses += 1
        try:
            outcome = self._apply_response(url, payload)
        except SlackApiFailure as failure:
            return self._response_url_answer(url, payload, 400, failure.error, failure.to_body())
        return self._response_url_answer(url, payload, 200, outcome, {"ok": True})

    def _response_url_answer(
        self,
        url: ResponseUrl,
        payload: dict[str, Any],
        status: int,
        outcome: str,
        body: dict[str, Any] | None = None,
    ) -> web.Response:
        self.workspace.response_url_posts.append(
            ResponseUrlPost(url.token, url.channel_id, url.user_id, payload, status, outcome)
        )
        return web.json_response(body or {"ok": False, "error": outcome}, status=status)

    def _apply_response(self, url: ResponseUrl, payload: dict[str, Any]) -> str:
        """Do what Slack does with a response_url answer; returns what happened."""
        ws = self.workspace
        channel = ws.channels[url.channel_id]
        original = ws.find_message(channel.id, url.message_ts) if url.message_ts else None
        original_ephemeral = self._response_url_ephemeral(url)
        if _truthy(payload.get("delete_original")):
            if original is not None:
                original.deleted = True
                self._notify(StateChange("message_deleted", channel.id, {"ts": original.ts}))
            elif original_ephemeral is not None:
                original_ephemeral.deleted = True
            return "deleted"
        text, blocks = payload.get("text"), payload.get("blocks")
        if not text and not blocks and not payload.get("attachments"):
            raise SlackApiFailure("no_text")
        check_message_text(text)
        check_message_blocks(blocks)
        text = str(text or "")
        if _truthy(payload.get("replace_original")):
            if original is not None:
                original.text, original.blocks = text, blocks or None
                original.edited_ts = ws.new_ts()
                self._notify(StateChange("message_updated", channel.id, original.to_api(ws)))
                return "replaced"
            if original_ephemeral is not None:
                original_ephemeral.replaced = True
                self._post_ephemeral_answer(url, text, blocks, payload)
                return "replaced"
        if payload.get("response_type") == "in_channel":
            self.api.bot_message(channel, text=text, blocks=blocks or None, thread_ts=payload.get("thread_ts"))
            return "in_channel"
        self._post_ephemeral_answer(url, text, blocks, payload)
        return "ephemeral"

    def _response_url_ephemeral(self, url: ResponseUrl) -> EphemeralMessage | None:
        """The ephemeral message a response_url answer may replace: the button's, else its own last one."""
        live = [e for e in self.workspace.ephemerals if not e.replaced and not e.deleted and e.user_id == url.user_id]
        if url.message_ts:
            return next((e for e in live if e.ts == url.message_ts), None)
        return next((e for e in reversed(live) if e.response_url_token == url.token), None)

    def _post_ephemeral_answer(self, url: ResponseUrl, text: str, blocks: Any, payload: dict[str, Any]) -> None:
        ephemeral = EphemeralMessage(
            channel_id=url.channel_id,
            user_id=url.user_id,
            ts=self.workspace.new_ts(),
            text=text,
            blocks=blocks or None,
            thread_ts=payload.get("thread_ts"),
            source="response_url",
            response_url_token=url.token,
        )
        self.workspace.ephemerals.append(ephemeral)
        self._notify(StateChange("ephemeral_posted", url.channel_id, _ephemeral_data(ephemeral)))

    # -- fault injection ----------------------------------------------------------------------

    def fail_next(self, method: str, error: str = "internal_error", *, times: int = 1, status: int = 200) -> None:
        """The next ``times`` calls to ``method`` (``"*"``: any) fail with ``error`` and HTTP ``status``."""
        self._faults.setdefault(method, []).append(_Fault("error", times, error=error, status=status))

    def rate_limit_next(self, method: str, retry_after: int = 1, *, times: int = 1) -> None:
        """The next ``times`` calls to ``method`` answer HTTP 429 ``ratelimited`` with ``Retry-After``."""
        self._faults.setdefault(method, []).append(_Fault("rate_limit", times, retry_after=retry_after))

    def lose_answer_next(self, method: str, *, times: int = 1,
                         where: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """The next ``times`` calls to ``method`` (whose parameters satisfy ``where``) are
        carried out, then the connection is dropped before the answer is sent: the client
        cannot know that Slack acted."""
        self._lost_answers.append(_LostAnswer(method, times, where))

    def _take_lost_answer(self, method: str, params: dict[str, Any]) -> bool:
        for lost in self._lost_answers:
            if lost.method == method and lost.remaining > 0 and (lost.where is None or lost.where(params)):
                lost.remaining -= 1
                return True
        return False

    def rate_limit_fraction(
        self, method: str, fraction: float, retry_after: int = 1, *, seed: int | None = None
    ) -> None:
        """Rate-limit about ``fraction`` of the calls to ``method`` from now on (0 turns it off)."""
        if fraction <= 0:
            self._fractions.pop(method, None)
            return
        self._fractions[method] = _RateLimitFraction(fraction, retry_after, random.Random(seed))

    def delay(self, method: str, seconds: float) -> None:
        """Answer every call to ``method`` (``"*"``: any) ``seconds`` late (0 turns it off)."""
        if seconds <= 0:
            self._delays.pop(method, None)
        else:
            self._delays[method] = seconds

    def clear_faults(self) -> None:
        self._faults.clear()
        self._lost_answers.clear()
        self._fractions.clear()
        self._delays.clear()

    def _take_fault(self, method: str) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        for key in (method, "*"):
            queue = self._faults.get(key)
            if queue:
                fault = queue[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.pop(0)
                if fault.kind == "rate_limit":
                    return _rate_limited(fault.retry_after)
                return fault.status, {"ok": False, "error": fault.error}, {}
        for key in (method, "*"):
            rule = self._fractions.get(key)
            if rule is not None and rule.rng.random() < rule.fraction:
                return _rate_limited(rule.retry_after)
        return None

    # -- change listeners ---------------------------------------------------------------------

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener(StateChange)`` (sync or async) on every state change; returns an unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _notify(self, change: StateChange) -> None:
        for listener in list(self._listeners):
            try:
                outcome = listener(change)
            except Exception:
                logger.exception("slack emulator change listener failed on %s", change.kind)
                continue
            if inspect.isawaitable(outcome):
                task = asyncio.ensure_future(outcome)
                self._listener_tasks.add(task)
                task.add_done_callback(self._listener_tasks.discard)

    # -- Events API ---------------------------------------------------------------------------

    async def _emit_event(self, event: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        envelope = {
            "token": self.verification_token,
            "team_id": ws.team.id,
            "api_app_id": ws.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": ws.ids.new("Ev"),
            "event_time": int(ws.now()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": ws.team.id,
                    "user_id": ws.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": ws.ids.secret(32),
        }
        self.events.append(envelope)
        if self.on_event is not None:
            try:
                await self.on_event(envelope)
            except Exception as exc:
                logger.exception("on_event failed for %s", event.get("type"))
                self.event_errors.append(exc)
        return envelope

    def _human(self, user_id: str) -> SlackUser:
        user = self.workspace.users.get(user_id)
        if user is None or user.is_bot:
            raise LookupError(f"no human user {user_id}")
        return user

    def _human_channel(self, user_id: str, channel_ref: str) -> SlackChannel:
        channel = self.channel(channel_ref)
        if user_id not in channel.members:
            if not channel.is_public:
                raise PermissionError(f"{user_id} is not a member of {channel.id}")
            channel.members.append(user_id)
            self.api.joined(channel, user_id)
        return channel

    async def user_post_message(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> SlackMessage:
        """``user_id`` writes in a channel (joining a public one if needed); emits a ``message`` event."""
        self._human(user_id)
        channel = self._human_channel(user_id, channel_id)
        message = self.api.append_message(
            channel,
            SlackMessage(channel.id, self.workspace.new_ts(), user_id, text, blocks=blocks, thread_ts=thread_ts),
        )
        if self._bot_hears(channel):
            event: dict[str, Any] = {
                "type": "message",
                "channel": channel.id,
                "user": user_id,
                "text": text,
                "ts": message.ts,
                "event_ts": message.ts,
                "channel_type": channel.channel_type,
                "team": self.workspace.team.id,
                "client_msg_id": self.workspace.ids.secret(16),
            }
            if blocks:
                event["blocks"] = blocks
            if thread_ts:
                event["thread_ts"] = thread_ts
            await self._emit_event(event)
        return message

    async def user_add_reaction(self, user_id: str, channel_id: str, ts: str, name: str) -> None:
        """``user_id`` reacts with ``:name:``; emits ``reaction_added``."""
        self._human(user_id)
        channel = self.channel(channel_id)
        message = self._existing_message(channel, ts)
        self.api.react(channel, message, name, user_id)
        if self._bot_hears(channel):
            await self._emit_event(
                {
                    "type": "reaction_added",
                    "user": user_id,
                    "reaction": name.strip(":"),
                    "item_user": message.user,
                    "item": {"type": "message", "channel": channel.id, "ts": message.ts},
                    "event_ts": self.workspace.new_ts(),
                }
            )

    async def user_pin(self, user_id: str, channel_id: str, ts: str) -> None:
        """``user_id`` pins a message; emits ``pin_added``."""
        self._human(user_id)
        channel = self._human_channel(user_id, channel_id)
        message = self._existing_message(channel, ts)
        pin = self.api.pin(channel, message, user_id)
        if self._bot_hears(channel):
            await self._emit_event(
                {
                    "type": "pin_added",
                    "user": user_id,
                    "channel_id": channel.id,
                    "item": {
                        "type": "message",
                        "created": pin.created,
                        "created_by": user_id,
                        "channel": channel.id,
                        "message": message.to_api(self.workspace),
                    },
                    "item_user": message.user,
                    "pin_count": len(channel.pins),
                    "pinned_info": {"channel": channel.id, "pinned_by": user_id, "pinned_ts": pin.created},
                    "event_ts": self.workspace.new_ts(),
                }
            )

    def _bot_hears(self, channel: SlackChannel) -> bool:
        # Slack delivers channel events only for conversations the app's bot is in.
        return self.workspace.bot_user_id in channel.members

    @staticmethod
    def _existing_message(channel: SlackChannel, ts: str) -> SlackMessage:
        message = next((m for m in channel.messages if m.ts == ts and not m.deleted), None)
        if message is None:
            raise LookupError(f"no message {ts} in {channel.id}")
        return message

    # -- what Slack sends the app: response URLs, trigger ids, payloads -----------------------

    def new_response_url(self, channel_id: str, user_id: str, message_ts: str | None = None) -> str:
        """A response URL for a command or action of ``user_id`` in ``channel_id``.

        ``message_ts`` is the message whose button was clicked: ``replace_original`` edits it.
        """
        channel = self.channel(channel_id)
        token = self.workspace.ids.secret(32)
        self.workspace.response_urls[token] = ResponseUrl(token, channel.id, user_id, message_ts, self.workspace.now())
        return f"{self.base_url}/response/{token}"

    def new_trigger_id(self, user_id: str) -> str:
        """A trigger id for ``user_id``: views.open accepts it once, within ``trigger_ttl`` seconds."""
        return self.api.issue_trigger(user_id)

    def slash_command(self, user_id: str, channel_id: str, command: str, text: str = "") -> dict[str, str]:
        """The form fields Slack POSTs for ``/command text`` typed by ``user_id`` in ``channel_id``."""
        user, channel = self._human(user_id), self.channel(channel_id)
        ws = self.workspace
        return {
            "token": self.verification_token,
            "team_id": ws.team.id,
            "team_domain": ws.team.domain,
            "channel_id": channel.id,
            "channel_name": "directmessage" if channel.is_im else channel.name,
            "user_id": user.id,
            "user_name": user.name,
            "command": command if command.startswith("/") else f"/{command}",
            "text": text,
            "api_app_id": ws.app_id,
            "is_enterprise_install": "false",
            "response_url": self.new_response_url(channel.id, user.id),
            "trigger_id": self.new_trigger_id(user.id),
        }

    def block_action(
        self, user_id: str, channel_id: str, message_ts: str, action_id: str, *, value: str | None = None
    ) -> dict[str, Any]:
        """The ``block_actions`` payload Slack sends when ``user_id`` clicks ``action_id`` on a message."""
        user, channel = self._human(user_id), self.channel(channel_id)
        ws = self.workspace
        message = ws.find_message(channel.id, message_ts)
        ephemeral = next((e for e in ws.ephemerals if e.ts == message_ts), None)
        blocks = message.blocks if message else (ephemeral.blocks if ephemeral else None)
        if message is None and ephemeral is None:
            raise LookupError(f"no message {message_ts} in {channel.id}")
        block_id, element = _find_element(blocks or [], action_id)
        if element is None:
            raise LookupError(f"no element with action_id {action_id!r} in message {message_ts}")
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "type": element.get("type"),
            "action_ts": ws.new_ts(),
        }
        if "text" in element:
            action["text"] = element["text"]
        if value is not None or "value" in element:
            action["value"] = value if value is not None else element["value"]
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team.id},
            "api_app_id": ws.app_id,
            "token": self.verification_token,
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel.id,
                "is_ephemeral": message is None,
            },
            "trigger_id": self.new_trigger_id(user.id),
            "team": {"id": ws.team.id, "domain": ws.team.domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel.id, "name": channel.name},
            "state": {"values": {}},
            "response_url": self.new_response_url(channel.id, user.id, message_ts),
            "actions": [action],
        }
        if message is not None:
            payload["message"] = message.to_api(ws)
        return payload

    def view_submission(self, user_id: str, view_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """The ``view_submission`` payload for ``user_id`` submitting view ``view_id`` with ``state.values``."""
        user = self._human(user_id)
        view = self.workspace.views[view_id]
        ws = self.workspace
        return {
            "type": "view_submission",
            "team": {"id": ws.team.id, "domain": ws.team.domain},
            "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team.id},
            "api_app_id": ws.app_id,
            "token": self.verification_token,
            "trigger_id": self.new_trigger_id(user.id),
            "view": {**view.to_api(), "state": {"values": values}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    # -- workspace set-up ---------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        *,
        user_id: str | None = None,
        real_name: str | None = None,
        tz: str = "UTC",
        email: str | None = None,
        title: str = "",
        is_admin: bool = False,
    ) -> SlackUser:
        user = SlackUser(
            id=user_id or self.workspace.ids.new("U"),
            name=name,
            real_name=real_name or name.capitalize(),
            tz=tz,
            email=email,
            title=title,
            is_admin=is_admin,
        )
        return self.workspace.add_user(user)

    def add_usergroup(
        self, handle: str, users: Iterable[str] = (), *, group_id: str | None = None, name: str | None = None
    ) -> SlackUserGroup:
        group = SlackUserGroup(
            group_id or self.workspace.ids.new("S"),
            handle,
            name or handle,
            list(users),
            created_by=self.workspace.bot_user_id,
        )
        return self.workspace.add_usergroup(group)

    def add_channel(
        self,
        name: str,
        *,
        channel_id: str | None = None,
        members: Iterable[str] = (),
        is_private: bool = False,
        bot_member: bool = True,
        topic: str = "",
    ) -> SlackChannel:
        if self.workspace.channel_by_name(name) is not None:
            raise ValueError(f"a channel named #{name} exists already")
        member_ids = list(dict.fromkeys([*members, *([self.workspace.bot_user_id] if bot_member else [])]))
        channel = SlackChannel(
            id=channel_id or self.workspace.ids.new("C"),
            name=name,
            is_private=is_private,
            creator=member_ids[0] if member_ids else "",
            members=member_ids,
            topic=topic,
        )
        return self.workspace.add_channel(channel)

    def add_token(self, token: str) -> None:
        """Accept another token (e.g. a second installation's) as valid."""
        self._tokens.add(token)

    def add_app_token(self, token: str) -> None:
        """Accept an app-level token (xapp-), for Socket Mode (:attr:`socket_mode`)."""
        self._app_tokens.add(token)

    # -- inspection ---------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method]

    def last_call(self, method: str) -> RecordedCall:
        calls = self.calls_to(method)
        if not calls:
            raise LookupError(f"{method} was never called")
        return calls[-1]

    def channel(self, ref: str) -> SlackChannel:
        """A conversation by id or ``#name``."""
        channel = self.workspace.channels.get(ref) or self.workspace.channel_by_name(ref)
        if channel is None:
            raise LookupError(f"no channel {ref}")
        return channel

    def channel_by_name(self, name: str) -> SlackChannel | None:
        return self.workspace.channel_by_name(name)

    def user(self, user_id: str) -> SlackUser:
        return self.workspace.users[user_id]

    def usergroup(self, group_id: str) -> SlackUserGroup:
        return self.workspace.usergroups[group_id]

    def messages(
        self,
        channel: str,
        *,
        thread_ts: str | None = None,
        top_level: bool = False,
        include_system: bool = False,
    ) -> list[SlackMessage]:
        """Messages of a channel (id or ``#name``), oldest first; joins and topic changes left out by default."""
        found = [m for m in self.channel(channel).messages if not m.deleted]
        if not include_system:
            found = [m for m in found if not m.is_system]
        if thread_ts is not None:
            found = [m for m in found if m.ts == thread_ts or m.thread_ts == thread_ts]
        elif top_level:
            found = [m for m in found if not m.is_reply or m.reply_broadcast]
        return found

    def message(self, channel: str, ts: str) -> SlackMessage:
        return self._existing_message(self.channel(channel), ts)

    def ephemerals(
        self, *, user_id: str | None = None, channel_id: str | None = None, include_replaced: bool = False
    ) -> list[EphemeralMessage]:
        return [
            e
            for e in self.workspace.ephemerals
            if (user_id is None or e.user_id == user_id)
            and (channel_id is None or e.channel_id == channel_id)
            and (include_replaced or not (e.replaced or e.deleted))
        ]

    def pins(self, channel: str) -> list[SlackMessage]:
        found = self.channel(channel)
        return [m for m in (self.workspace.find_message(found.id, p.ts) for p in found.pins) if m is not None]

    def bookmarks(self, channel: str) -> list[Bookmark]:
        return list(self.channel(channel).bookmarks)

    def dms(self, user_id: str) -> list[SlackMessage]:
        """What the bot wrote to (and read from) ``user_id`` in their direct message."""
        im = self.workspace.im_with(user_id)
        return [m for m in im.messages if not m.deleted] if im else []

    @property
    def views(self) -> list[SlackView]:
        return list(self.workspace.views.values())

    @property
    def files(self) -> list[SlackFile]:
        """Files whose upload was completed, in upload order."""
        return [f for f in self.workspace.files.values() if f.completed]

    def file(self, file_id: str) -> SlackFile:
        return self.workspace.files[file_id]

    @property
    def response_url_posts(self) -> list[ResponseUrlPost]:
        return list(self.workspace.response_url_posts)

    def permalink(self, channel: str, ts: str) -> str:
        found = self.channel(channel)
        return self.api.permalink(found.id, self._existing_message(found, ts))

    def snapshot(self) -> dict[str, Any]:
        """The whole workspace as JSON-ready data (for a web console)."""
        ws = self.workspace
        return {
            "team": {"id": ws.team.id, "name": ws.team.name, "domain": ws.team.domain},
            "bot_user_id": ws.bot_user_id,
            "users": [u.to_api(ws.team.id) for u in ws.users.values()],
            "usergroups": [g.to_api(ws.team.id, include_users=True) for g in ws.usergroups.values()],
            "channels": [
                {
                    **c.to_api(ws, include_num_members=True),
                    "name": c.name,
                    "members": list(c.members),
                    "messages": [m.to_api(ws) for m in c.messages if not m.deleted],
                    "pins": [p.ts for p in c.pins],
                    "bookmarks": [b.to_api(ws) for b in c.bookmarks],
                }
                for c in ws.channels.values()
            ],
            "ephemerals": [_ephemeral_data(e) for e in self.ephemerals()],
            "views": [v.to_api() | {"user": v.user_id} for v in ws.views.values()],
        }


def _ephemeral_data(ephemeral: EphemeralMessage) -> dict[str, Any]:
    return {
        "channel": ephemeral.channel_id,
        "user": ephemeral.user_id,
        "ts": ephemeral.ts,
        "text": ephemeral.text,
        "blocks": ephemeral.blocks,
    }


def _rate_limited(retry_after: int) -> tuple[int, dict[str, Any], dict[str, str]]:
    return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


def _str_param(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    return str(value) if value else None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string, then the body (form, multipart or JSON) on top, like Slack merges them."""
    params: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.body_exists:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise SlackApiFailure("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackApiFailure("json_not_object")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _decode_json_params(raw: dict[str, Any]) -> dict[str, Any]:
    params = dict(raw)
    for key in JSON_PARAMS & params.keys():
        value = params[key]
        if isinstance(value, str) and value.strip():
            # Left as text when it is not JSON: the method answers invalid_blocks_format / invalid_arguments.
            with contextlib.suppress(json.JSONDecodeError):
                params[key] = json.loads(value)
    return params


async def _read_response_payload(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body = await request.json()
    else:
        form = await request.post()
        body = json.loads(str(form["payload"])) if "payload" in form else dict(form)
    if not isinstance(body, dict):
        raise ValueError("the payload must be a JSON object")
    if isinstance(body.get("blocks"), str):
        body["blocks"] = json.loads(body["blocks"])
    return body


def _find_element(blocks: list[dict[str, Any]], action_id: str) -> tuple[str | None, dict[str, Any] | None]:
    for block in blocks:
        candidates = list(block.get("elements") or [])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None, None
