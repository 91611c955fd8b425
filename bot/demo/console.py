"""The demo's web console: a Slack workspace reduced to what Firebreak uses.

An aiohttp application serving one page (Jinja2 template, plain JavaScript, no build step) and a
small JSON API over the Slack emulator:

- ``GET  /api/state?user=U…``   the workspace as that person sees it (channels, messages,
  their ephemeral messages and open modal), the simulated services and the requests they got;
- ``GET  /api/stream``          server-sent events: one ``change`` per emulator state change
  or simulated request, so the page refreshes live;
- ``POST /api/command``         ``/incident …`` / ``/rollback …`` (signed slash command) or a plain
  message (an Events API ``message``), as the chosen user in the current channel;
- ``POST /api/action``          a button or select on a message or in a modal (``block_actions``);
- ``POST /api/view/submit|close`` modal submission (``view_submission``) or dismissal;
- ``POST /api/pin`` and ``/api/react``  pin a message or react (``pin_added`` / ``reaction_added``);
- ``GET  /files/{id}/{name}``   download a file the bot uploaded (post-mortem exports).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from bot.demo.delivery import SlackDelivery
from bot.demo.simulated import LoggedRequest, SimulatedWorld
from bot.emulator import SlackApiFailure, SlackEmulator, SlackView, StateChange

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SLASH_COMMANDS = ("/incident", "/rollback")
MAX_COMPOSER_TEXT = 8000
KEEPALIVE_SECONDS = 15.0


@dataclass
class BotLinks:
    """Where the bot's own web pages are, and the token that opens them."""

    base_url: str
    token: str | None
    app: web.Application | None = None  # the bot's application, to see which routes exist

    def serves(self, path: str) -> bool:
        if self.app is None:
            return False
        for resource in self.app.router.resources():
            info = resource.get_info()
            if info.get("path") == path:
                return True
            pattern = info.get("pattern")
            if pattern is not None and pattern.fullmatch(path):
                return True
        return False

    def url(self, path: str, *, with_token: bool = True) -> str:
        url = self.base_url.rstrip("/") + path
        if with_token and self.token:
            url += ("&" if "?" in url else "?") + "token=" + self.token
        return url

    def pages(self) -> list[dict[str, str]]:
        found = []
        for title, path, token in (("Incidents", "/incidents", True), ("Metrics", "/metrics", False),
                                   ("Health", "/healthz", False), ("Ready", "/readyz", False)):
            if self.serves(path):
                found.append({"title": title, "url": self.url(path, with_token=token)})
        return found

    def for_incident(self, key: str) -> list[dict[str, str]]:
        found = []
        for title, path in (("Timeline", f"/incidents/{key}"),
                            ("Post-mortem .md", f"/incidents/{key}/postmortem.md"),
                            ("JSON", f"/incidents/{key}/postmortem.json")):
            if self.serves(path):
                found.append({"title": title, "url": self.url(path)})
        return found


class ChangeBroker:
    """Fans state changes out to the open event streams."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.closed = False

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=1000)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._queues.discard(queue)

    def publish(self, item: dict[str, Any]) -> None:
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(item)

    def close(self) -> None:
        self.closed = True
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)


@dataclass
class Console:
    """Everything the console's handlers need."""

    emulator: SlackEmulator
    delivery: SlackDelivery
    world: SimulatedWorld | None
    links: BotLinks
    incident_prefix: str = "inc"
    default_user: str = "U024BE7LH"
    default_channel: str = "C0GENERAL"
    announce_channel: str | None = "C0ANNOUNCE"
    broker: ChangeBroker = field(default_factory=ChangeBroker)

    def attach(self) -> None:
        """Listen to the emulator and the simulated services."""
        self.emulator.subscribe(self._emulator_changed)
        self.delivery.on_view_change = lambda kind, view: self.broker.publish(
            {"type": "change", "kind": kind, "channel": None, "user": view.user_id})
        if self.world is not None:
            self.world.requests.listeners.append(self._request_logged)

    def _emulator_changed(self, change: StateChange) -> None:
        self.broker.publish({"type": "change", "kind": change.kind, "channel": change.channel_id})

    def _request_logged(self, entry: LoggedRequest) -> None:
        self.broker.publish({"type": "change", "kind": "request", "channel": None,
                             "target": entry.target})

    # -- what one person sees ---------------------------------------------------------------

    def humans(self) -> list[dict[str, Any]]:
        ws = self.emulator.workspace
        return [{"id": u.id, "name": u.name, "real_name": u.real_name, "title": u.title}
                for u in ws.users.values() if not u.is_bot and not u.deleted]

    def state(self, user_id: str) -> dict[str, Any]:
        emu = self.emulator
        ws = emu.workspace
        if user_id not in ws.users or ws.users[user_id].is_bot:
            raise web.HTTPBadRequest(text=f"unknown user {user_id}")
        snapshot = emu.snapshot()
        channels = []
        for channel in snapshot["channels"]:
            if not self._visible(channel, user_id):
                continue
            channel["messages"] = [self._with_file_links(m) for m in channel["messages"]]
            key = self._incident_key(channel)
            channel["incident_key"] = key
            channel["incident_links"] = self.links.for_incident(key) if key else []
            channel["is_announce"] = channel["id"] == self.announce_channel
            channel["is_member"] = user_id in channel["members"]
            channels.append(channel)
        views = [v for v in ws.views.values() if v.user_id == user_id and not v.closed and v.type == "modal"]
        return {
            "team": snapshot["team"],
            "bot_user_id": snapshot["bot_user_id"],
            "me": user_id,
            "users": [{"id": u["id"], "name": u["name"], "real_name": u["real_name"],
                       "is_bot": u["is_bot"]} for u in snapshot["users"]],
            "usergroups": [{"id": g["id"], "handle": g["handle"], "name": g["name"]}
                           for g in snapshot["usergroups"]],
            "channel_names": {c.id: (c.name if not c.is_im else f"dm-{c.im_user}")
                              for c in ws.channels.values()},
            "channels": channels,
            "ephemerals": [e for e in snapshot["ephemerals"] if e["user"] == user_id],
            "view": _view_json(views[-1]) if views else None,
            "world": self.world.status() if self.world is not None else None,
            "requests": self.world.requests.to_json()[-200:] if self.world is not None else [],
            "bot_pages": self.links.pages(),
            # Links to the bot's pages in messages open signed in: the console holds the token.
            "bot_link": {"base_url": self.links.base_url.rstrip("/"), "token": self.links.token},
        }

    def _visible(self, channel: dict[str, Any], user_id: str) -> bool:
        if channel.get("is_im"):
            return channel.get("user") == user_id
        if channel.get("is_archived"):
            return False
        return not channel.get("is_private") or user_id in channel["members"]

    def _incident_key(self, channel: dict[str, Any]) -> str | None:
        match = re.match(rf"^{re.escape(self.incident_prefix)}-(\d+)(?:-|$)", channel.get("name") or "")
        return f"INC-{match.group(1)}" if match else None

    @staticmethod
    def _with_file_links(message: dict[str, Any]) -> dict[str, Any]:
        for file in message.get("files") or []:
            file["console_url"] = f"/files/{file['id']}/{file['name']}"
        return message


def _view_json(view: SlackView) -> dict[str, Any]:
    return {**view.to_api(), "user": view.user_id}


# -- HTTP handlers -------------------------------------------------------------------------

CONSOLE: web.AppKey[Console] = web.AppKey("demo_console", Console)
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("demo_templates", jinja2.Environment)


async def _json_body(request: web.Request) -> dict[str, Any]:
    # JSON only: a form or text/plain POST from another web page (no CORS preflight) is refused.
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send application/json")
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="expected a JSON object") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


def _text_field(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise web.HTTPBadRequest(text=f"{key} is required")
        return None
    if not isinstance(value, str):
        raise web.HTTPBadRequest(text=f"{key} must be a string")
    return value


def _refused(message: str, status: int = 400) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def index(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    template = request.app[TEMPLATES].get_template("console.html")
    config = {"default_user": console.default_user, "default_channel": console.default_channel,
              "users": console.humans(), "commands": list(SLASH_COMMANDS),
              "team": console.emulator.workspace.team.name}
    static = request.app.router["static"]
    html = template.render(
        config_json=json.dumps(config).replace("<", "\\u003c"), team=config["team"],
        css_url=static.url_for(filename="console.css"), js_url=static.url_for(filename="console.js"))
    return web.Response(text=html, content_type="text/html")


async def state(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    user = request.query.get("user") or console.default_user
    return web.json_response(console.state(user))


async def stream(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue = console.broker.subscribe()
    try:
        await response.write(b"retry: 1000\nevent: hello\ndata: {}\n\n")
        while not console.broker.closed:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item is None:
                break
            await response.write(f"event: {item['type']}\ndata: {json.dumps(item)}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass  # the page went away
    finally:
        console.broker.unsubscribe(queue)
    return response


async def command(request: web.Request) -> web.Response:
    """A line typed in the composer: a slash command, or a plain message."""
    console = request.app[CONSOLE]
    body = await _json_body(request)
    user = _text_field(body, "user")
    channel = _text_field(body, "channel")
    text = (_text_field(body, "text") or "").strip()
    thread_ts = _text_field(body, "thread_ts", required=False)
    if len(text) > MAX_COMPOSER_TEXT:
        return _refused(f"at most {MAX_COMPOSER_TEXT} characters")
    emu = console.emulator
    try:
        if text.startswith("/"):
            name, _, rest = text.partition(" ")
            name = name.lower()
            if name not in SLASH_COMMANDS:
                return _refused(f"{name} is not a valid command. This workspace knows "
                                + " and ".join(SLASH_COMMANDS) + ".")
            delivered = await console.delivery.slash_command(user, channel, name, rest.strip())
            return web.json_response({"kind": "command", "command": name, **delivered.to_json()})
        message = await emu.user_post_message(user, channel, text, thread_ts=thread_ts)
        return web.json_response({"kind": "message", "ok": True, "ts": message.ts})
    except (LookupError, PermissionError) as exc:
        return _refused(str(exc).strip("'\""))


async def action(request: web.Request) -> web.Response:
    """A click on a button, or a choice in a select, on a message or in a modal."""
    console = request.app[CONSOLE]
    body = await _json_body(request)
    user = _text_field(body, "user")
    action_id = _text_field(body, "action_id")
    value = _text_field(body, "value", required=False)
    selected = body.get("selected")
    if selected is not None and not isinstance(selected, (str, list)):
        return _refused("selected must be a string or a list")
    try:
        if body.get("view_id"):
            delivered = await console.delivery.view_block_action(
                user, str(body["view_id"]), action_id, value=value, selected=selected,
                values=body.get("values") if isinstance(body.get("values"), dict) else None)
        else:
            delivered = await console.delivery.block_action(
                user, _text_field(body, "channel"), _text_field(body, "ts"), action_id,
                value=value, selected=selected)
    except (LookupError, KeyError) as exc:
        return _refused(str(exc).strip("'\""))
    return web.json_response({"kind": "action", **delivered.to_json()})


async def view_submit(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    body = await _json_body(request)
    user = _text_field(body, "user")
    view_id = _text_field(body, "view_id")
    values = body.get("values")
    if not isinstance(values, dict):
        return _refused("values must be an object (view.state.values)")
    if view_id not in console.emulator.workspace.views:
        return _refused(f"no view {view_id}", 404)
    delivered = await console.delivery.view_submission(user, view_id, values)
    return web.json_response({"kind": "view_submission", **delivered.to_json()})


async def view_close(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    body = await _json_body(request)
    user = _text_field(body, "user")
    view_id = _text_field(body, "view_id")
    if view_id not in console.emulator.workspace.views:
        return _refused(f"no view {view_id}", 404)
    delivered = await console.delivery.view_closed(user, view_id)
    return web.json_response({"kind": "view_closed", "ok": True,
                              "delivered": delivered.to_json() if delivered else None})


async def pin(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    body = await _json_body(request)
    user, channel, ts = (_text_field(body, k) for k in ("user", "channel", "ts"))
    try:
        await console.emulator.user_pin(user, channel, ts)
    except (LookupError, PermissionError) as exc:
        return _refused(str(exc).strip("'\""))
    except SlackApiFailure as exc:  # e.g. already_pinned
        return _refused(exc.error)
    return web.json_response({"ok": True})


async def react(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    body = await _json_body(request)
    user, channel, ts = (_text_field(body, k) for k in ("user", "channel", "ts"))
    name = (_text_field(body, "name", required=False) or "pushpin").strip(":")
    try:
        await console.emulator.user_add_reaction(user, channel, ts, name)
    except (LookupError, PermissionError) as exc:
        return _refused(str(exc).strip("'\""))
    except SlackApiFailure as exc:  # e.g. already_reacted
        return _refused(exc.error)
    return web.json_response({"ok": True})


async def download(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    file = console.emulator.workspace.files.get(request.match_info["file_id"])
    if file is None or not file.completed:
        raise web.HTTPNotFound(text="no such file")
    disposition = "inline" if request.query.get("view") else "attachment"
    text = file.mimetype.startswith("text/") or file.mimetype == "application/json"
    return web.Response(body=file.content, content_type=file.mimetype, charset="utf-8" if text else None,
                        headers={"Content-Disposition": f'{disposition}; filename="{file.name}"'})


async def console_health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@web.middleware
async def local_only(request: web.Request, handler):
    """Refuse requests addressed to another host name (a DNS-rebinding page in the browser)."""
    if request.url.host not in LOCAL_HOSTS:
        raise web.HTTPMisdirectedRequest(text="the demo console answers on 127.0.0.1 only")
    return await handler(request)


def create_console_app(console: Console) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024, middlewares=[local_only])
    app[CONSOLE] = console
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(["html"]))
    console.attach()

    async def close_streams(app: web.Application) -> None:
        console.broker.close()

    app.on_shutdown.append(close_streams)
    r = app.router
    r.add_get("/", index)
    r.add_get("/console/health", console_health)
    r.add_get("/api/state", state)
    r.add_get("/api/stream", stream)
    r.add_post("/api/command", command)
    r.add_post("/api/action", action)
    r.add_post("/api/view/submit", view_submit)
    r.add_post("/api/view/close", view_close)
    r.add_post("/api/pin", pin)
    r.add_post("/api/react", react)
    r.add_get("/files/{file_id}/{name}", download)
    r.add_static("/static", str(HERE / "static"), append_version=True, name="static")
    return app
