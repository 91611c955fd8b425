"""The demo console's API, in process: what it sends reaches the bot signed like Slack's requests.

The whole demo stack runs here (simulated providers and pagers, the Slack emulator, the bot as
``firebreak serve`` builds it, the console), each on a free port of 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.demo.delivery import signature_headers
from bot.demo.stack import ANNOUNCE_CHANNEL, DEFAULT_CHANNEL, DEFAULT_USER, SIGNING_SECRET, DemoStack
from bot.slack.ids import ActionId

AVA = DEFAULT_USER
BEN = "U0G9QF9C6"


class Console:
    def __init__(self, stack: DemoStack, http: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.http = http
        self.url = stack.console_url.rstrip("/")

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.url + path, json=body) as resp:
            return await resp.json()

    async def state(self, user: str = AVA) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/api/state", params={"user": user}) as resp:
            assert resp.status == 200
            return await resp.json()

    async def type(self, text: str, *, user: str = AVA, channel: str = DEFAULT_CHANNEL) -> dict[str, Any]:
        return await self.post("/api/command", {"user": user, "channel": channel, "text": text})

    async def wait_for(self, condition: Callable[[dict[str, Any]], Any], *, user: str = AVA,
                       timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            found = condition(await self.state(user))
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError("the console never showed it")
            await asyncio.sleep(0.05)


@pytest.fixture
async def console(tmp_path) -> AsyncIterator[Console]:
    stack = DemoStack(data_dir=tmp_path / "demo-data", console_port=0)
    await stack.start()
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies on 127.0.0.1
    try:
        yield Console(stack, http)
    finally:
        await http.close()
        await stack.stop()


def incident_channel(state: dict[str, Any], number: int = 1) -> dict[str, Any] | None:
    return next((c for c in state["channels"] if c.get("incident_key") == f"INC-{number}"), None)


def card_of(channel: dict[str, Any]) -> dict[str, Any] | None:
    pinned = set(channel["pins"])
    return next((m for m in channel["messages"] if m["ts"] in pinned and m.get("blocks")), None)


def block_text(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or []) + message.get("text", "")


def ephemeral_texts(state: dict[str, Any]) -> list[str]:
    return [e["text"] for e in state["ephemerals"]]


async def open_incident(console: Console) -> tuple[dict[str, Any], dict[str, Any]]:
    sent = await console.type("/incident open P1 checkout failing service:api")
    assert sent["ok"] and sent["status"] == 200, sent
    channel = await console.wait_for(lambda s: (c := incident_channel(s)) and card_of(c) and c)
    return channel, card_of(channel)


async def test_the_bot_accepts_what_the_console_signs_and_refuses_a_forgery(console):
    sent = await console.type("/incident help")
    assert sent["kind"] == "command" and sent["ok"] and sent["status"] == 200, sent
    # The answer (ack text or response_url reply) shows as an ephemeral message to the typist.
    texts = await console.wait_for(lambda s: [t for t in ephemeral_texts(s) if "/incident" in t])
    assert texts
    assert not [t for t in ephemeral_texts(await console.state(BEN)) if "/incident" in t]

    fields = console.stack.emulator.slash_command(AVA, DEFAULT_CHANNEL, "/incident", "help")
    body = urlencode(fields)
    events_url = console.stack.bot_url + "/slack/events"
    forged = signature_headers("not-the-signing-secret", body)
    async with console.http.post(events_url, data=body, headers={
            **forged, "Content-Type": "application/x-www-form-urlencoded"}) as resp:
        assert resp.status == 401
    genuine = signature_headers(SIGNING_SECRET, body)
    async with console.http.post(events_url, data=body, headers={
            **genuine, "Content-Type": "application/x-www-form-urlencoded"}) as resp:
        assert resp.status == 200


async def test_a_typed_slash_command_creates_the_incident_channel_and_pinned_card(console):
    channel, card = await open_incident(console)
    assert channel["name"].startswith("inc-1-checkout-failing")
    assert AVA in channel["members"]
    assert "INC-1" in block_text(card) and "checkout failing" in block_text(card)
    actions = [e["action_id"] for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ActionId.INCIDENT_ACK in actions
    announce = await console.wait_for(lambda s: next(
        (c for c in s["channels"] if c["id"] == ANNOUNCE_CHANNEL and c["messages"]), None))
    assert announce["is_announce"] and any("INC-1" in block_text(m) for m in announce["messages"])
    await console.wait_for(lambda s: incident_channel(s)["bookmarks"])  # the runbook


async def test_clicking_acknowledge_acknowledges_the_incident_and_the_pages(console):
    channel, card = await open_incident(console)
    # P1 pages the on-call person by DM, and (in the demo's playbooks) PagerDuty and Opsgenie.
    await console.wait_for(lambda s: s["world"]["pagerduty"] and s["world"]["opsgenie"])
    clicked = await console.post("/api/action", {
        "user": AVA, "channel": channel["id"], "ts": card["ts"], "action_id": ActionId.INCIDENT_ACK})
    assert clicked["ok"] and clicked["status"] == 200, clicked
    await console.wait_for(lambda s: "Acknowledge" not in json.dumps(
        [e for b in card_of(incident_channel(s))["blocks"] if b["type"] == "actions" for e in b["elements"]]))
    await console.wait_for(lambda s: any("acknowledged INC-1" in t for t in ephemeral_texts(s)))
    pagers = await console.wait_for(
        lambda s: s["world"]["pagerduty"][0]["status"] == "acknowledged" and s["world"])
    assert pagers["opsgenie"][0]["alias"]
    received = [r for r in (await console.state())["requests"] if r["target"] == "pagerduty"]
    assert received and "[redacted]" in received[0]["request_body"]  # the routing key never shows


async def test_a_select_sends_the_chosen_option(console):
    channel, card = await open_incident(console)
    picked = await console.post("/api/action", {
        "user": AVA, "channel": channel["id"], "ts": card["ts"],
        "action_id": ActionId.INCIDENT_CHANGE_SEVERITY, "selected": "P0"})
    assert picked["ok"], picked
    await console.wait_for(lambda s: "P0" in block_text(card_of(incident_channel(s))))


async def test_the_open_modal_shows_errors_then_opens_the_incident(console):
    sent = await console.type("/incident open")
    assert sent["ok"], sent
    view = await console.wait_for(lambda s: s["view"])
    assert view["title"]["text"] == "Open an incident"
    assert (await console.state(BEN))["view"] is None  # only the typist sees it
    blocks = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    severity_block = next(k for k, b in blocks.items() if b["element"]["action_id"] == "severity")
    title_block = next(k for k, b in blocks.items() if b["element"]["action_id"] == "title")
    p1 = {"text": {"type": "plain_text", "text": "P1"}, "value": "P1"}
    refused = await console.post("/api/view/submit", {"user": AVA, "view_id": view["id"], "values": {
        severity_block: {"severity": {"type": "static_select", "selected_option": p1}},
        title_block: {"title": {"type": "plain_text_input", "value": None}}}})
    assert refused["ack"]["response_action"] == "errors" and title_block in refused["ack"]["errors"]
    assert (await console.state())["view"] is not None  # still open, showing the error
    accepted = await console.post("/api/view/submit", {"user": AVA, "view_id": view["id"], "values": {
        severity_block: {"severity": {"type": "static_select", "selected_option": p1}},
        title_block: {"title": {"type": "plain_text_input", "value": "Search is slow"}}}})
    assert accepted["ok"] and not accepted["ack"], accepted
    await console.wait_for(lambda s: s["view"] is None and incident_channel(s))


async def test_a_pinned_message_reaches_the_incident_timeline(console):
    channel, _ = await open_incident(console)
    posted = await console.type("Customers report 502s on /checkout", channel=channel["id"])
    assert posted["ok"], posted
    message = await console.wait_for(lambda s: next(
        (m for m in incident_channel(s)["messages"] if m.get("text") == "Customers report 502s on /checkout"), None))
    pinned = await console.post("/api/pin", {"user": AVA, "channel": channel["id"], "ts": message["ts"]})
    assert pinned["ok"], pinned
    again = await console.post("/api/pin", {"user": AVA, "channel": channel["id"], "ts": message["ts"]})
    assert not again["ok"] and again["error"]
    deadline = time.monotonic() + 15
    while True:  # the bot records the pin after acknowledging the event: ask until it shows
        await console.type("/incident timeline", channel=channel["id"])
        await asyncio.sleep(0.3)
        if any("Customers report 502s" in block_text(e) for e in (await console.state())["ephemerals"]):
            break
        assert time.monotonic() < deadline, "the pinned message never reached the timeline"


async def test_unknown_commands_and_bad_requests_are_refused_plainly(console):
    refused = await console.type("/deploy api")
    assert refused == {"ok": False, "error": refused["error"]} and "/deploy" in refused["error"]
    async with console.http.post(console.url + "/api/command", data="nope",
                                 headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
    async with console.http.get(console.url + "/api/state", params={"user": "U0NOBODY"}) as resp:
        assert resp.status == 400


async def test_the_page_and_its_live_stream(console):
    async with console.http.get(console.url + "/") as resp:
        html = await resp.text()
        assert resp.status == 200 and "FIREBREAK_CONSOLE" in html and "/static/console.js" in html
    async with console.http.get(console.url + "/api/stream") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        first = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)
        assert b"event: hello" in first
        await console.type("hello everyone")
        change = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)
        assert b"event: change" in change


async def test_the_state_links_the_bot_web_pages_with_the_token(console):
    await open_incident(console)
    state = await console.state()
    assert console.stack.console.links.serves("/incidents")  # the demo serves the bot's web pages
    token = console.stack.web_auth_token
    assert any(p["url"].endswith(f"/incidents?token={token}") for p in state["bot_pages"])
    links = incident_channel(state)["incident_links"]
    assert any(link["url"].endswith(f"/incidents/INC-1?token={token}") for link in links)
    async with console.http.get(next(p["url"] for p in state["bot_pages"] if p["title"] == "Incidents")) as resp:
        assert resp.status == 200 and "INC-1" in await resp.text()


async def test_services_start_unhealthy_on_the_simulated_providers(console):
    state = await console.state()
    services = {s["name"]: s for s in state["world"]["services"]}
    assert {"api", "jobs", "web", "worker", "storefront"} <= set(services)
    assert all(s["healthy"] is False for s in services.values())
    async with console.http.get(services["api"]["health_url"]) as resp:
        assert resp.status == 500


async def test_the_page_arrives_by_dm_and_its_acknowledge_button_works(console):
    await open_incident(console)
    dm = await console.wait_for(lambda s: next(
        (c for c in s["channels"] if c.get("is_im") and c["messages"]), None))
    assert dm["user"] == AVA  # ava is on call: her DM with the bot holds the page
    assert not [c for c in (await console.state(BEN))["channels"] if c.get("is_im") and c["id"] == dm["id"]]
    page = next(m for m in dm["messages"] if ActionId.PAGE_ACK in json.dumps(m.get("blocks")))
    # Level 1 also pages PagerDuty; clicking before that page left would (rightly) stop it.
    await console.wait_for(lambda s: s["world"]["pagerduty"])
    clicked = await console.post("/api/action", {
        "user": AVA, "channel": dm["id"], "ts": page["ts"], "action_id": ActionId.PAGE_ACK})
    assert clicked["ok"], clicked
    await console.wait_for(lambda s: s["world"]["pagerduty"][0]["status"] == "acknowledged")


async def test_a_data_folder_that_is_not_the_demos_is_refused(tmp_path):
    from bot.demo.playbooks import DemoDataError

    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "mine.yaml").write_text("precious: true\n")
    with pytest.raises(DemoDataError, match="not written by `firebreak demo`"):
        await DemoStack(data_dir=tmp_path, console_port=0).start()
    assert (tmp_path / "playbooks" / "mine.yaml").exists()


async def test_the_console_refuses_other_pages_and_host_names(console):
    body = json.dumps({"user": AVA, "channel": DEFAULT_CHANNEL, "text": "/incident help"})
    async with console.http.post(console.url + "/api/command", data=body,
                                 headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 415  # a cross-site "simple" POST
    async with console.http.get(console.url + "/api/state", headers={"Host": "evil.example:80"}) as resp:
        assert resp.status == 421  # DNS rebinding


async def test_rollback_confirmed_in_the_console_goes_live_and_passes_the_health_check(console):
    channel, _ = await open_incident(console)
    typed = await console.type("/rollback api", channel=channel["id"])
    assert typed["ok"], typed
    preview = await console.wait_for(lambda s: next(
        (m for m in incident_channel(s)["messages"] if ActionId.ROLLBACK_CONFIRM in json.dumps(m.get("blocks"))), None))
    confirmed = await console.post("/api/action", {
        "user": AVA, "channel": channel["id"], "ts": preview["ts"], "action_id": ActionId.ROLLBACK_CONFIRM})
    assert confirmed["ok"], confirmed
    await console.wait_for(lambda s: next(x for x in s["world"]["services"] if x["name"] == "api")["healthy"],
                           timeout=60)
    state = await console.wait_for(lambda s: any(
        "succeeded" in m["text"] for m in incident_channel(s)["messages"]) and s, timeout=60)
    render_calls = [(r["method"], r["path"]) for r in state["requests"] if r["target"] == "render"]
    assert ("POST", "/v1/services/srv-d0abc123kq8s73a1b2c0/rollback") in render_calls  # the playbook's id
    assert any(path == "/health/api" for _, path in render_calls)
