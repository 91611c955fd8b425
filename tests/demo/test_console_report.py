"""What the demo shows after an incident: ``/incident export md`` answers with a real link that
opens (the console holds the web token), the uploaded Markdown reads as UTF-8, the side panel names
Render's redeploy and explains Opsgenie's priority. The whole demo stack runs here."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from bot.slack.ids import ActionId
from tests.demo.test_console_api import AVA, console, incident_channel, open_incident  # noqa: F401 - fixture

LINK = re.compile(r"<(http://127\.0\.0\.1:\d+/incidents/INC-1/postmortem\.html)\|([^>]+)>")


async def test_export_md_links_the_post_mortem_and_the_console_opens_it_signed_in(console):  # noqa: F811
    channel, _ = await open_incident(console)
    sent = await console.type("/incident export md", channel=channel["id"])
    assert sent["ok"], sent
    reply = await console.wait_for(lambda s: next(
        (e["text"] for e in s["ephemerals"] if "uploaded" in e["text"]), None))
    link = LINK.search(reply)
    assert link and "post-mortem" in link.group(2), reply
    assert urlsplit(link.group(1)).netloc == urlsplit(console.stack.bot_url).netloc

    state = await console.state()
    assert state["bot_link"] == {"base_url": console.stack.bot_url, "token": console.stack.web_auth_token}
    async with console.http.get(link.group(1)) as resp:  # without the token: the page says how to sign in
        assert resp.status == 401 and 'name="token"' in await resp.text()
    signed = f"{link.group(1)}?token={state['bot_link']['token']}"  # what the console's link opens
    async with console.http.get(signed) as resp:
        page = await resp.text()
        assert resp.status == 200 and "INC-1: checkout failing — post-mortem" in page
        assert str(resp.url) == link.group(1)  # the token left the address at once

    file = next(f for m in incident_channel(await console.state())["messages"] for f in m.get("files") or []
                if f["name"] == "INC-1-postmortem.md")
    async with console.http.get(console.url + file["console_url"], params={"view": "1"}) as resp:
        assert resp.headers["Content-Type"] == "text/markdown; charset=utf-8"
        text = await resp.text()  # decoded as the browser will: by the header's charset
    assert "— post-mortem" in text and "â€" not in text


async def test_the_side_panel_explains_the_opsgenie_priority(console):  # noqa: F811
    await open_incident(console)  # P1: the demo's playbooks page Opsgenie too
    alerts = await console.wait_for(lambda s: s["world"]["opsgenie"])
    assert alerts[0]["priority"] == "P2"
    assert alerts[0]["priority_note"].startswith("P2 for a P1 incident (Firebreak's P0–P3 are Opsgenie's P1–P4")
    sent = console.stack.world.opsgenie.alert_history[0]  # what Opsgenie itself shows
    assert "Priority P2 for a P1 incident" in sent.description


async def test_the_side_panel_names_the_redeploy_a_rollback_made(console):  # noqa: F811
    channel, _ = await open_incident(console)
    await console.type("/rollback api", channel=channel["id"])
    preview = await console.wait_for(lambda s: next(
        (m for m in incident_channel(s)["messages"] if ActionId.ROLLBACK_CONFIRM in str(m.get("blocks"))), None))
    before = next(x for x in (await console.state())["world"]["services"] if x["name"] == "api")["live"]
    await console.post("/api/action", {"user": AVA, "channel": channel["id"], "ts": preview["ts"],
                                       "action_id": ActionId.ROLLBACK_CONFIRM})
    api = await console.wait_for(lambda s: next(
        (x for x in s["world"]["services"] if x["name"] == "api" and x["healthy"]), None), timeout=60)
    seeded = next(iter(console.stack.world.render.seeded.values()))
    assert before == seeded.live_id
    assert re.fullmatch(rf"dep-\w+ \(redeploy of {seeded.target_id}\)", api["live"]), api["live"]
