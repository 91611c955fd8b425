"""What a finished rollback leaves for people: the preview updated in place, the new deploy
named, the caveat said once, and one row per rollback in the post-mortem (Markdown, JSON, HTML).

A real rollback of ``api`` on the Render fake, inside an incident, through signed commands and
clicks; the exports come from ``/incident export`` (files uploaded to the fake Slack).
"""

from __future__ import annotations

import json

import jsonschema

from bot.export import jsonexport
from bot.rollback.models import RollbackStatus
from bot.slack.ids import ActionId
from tests.rollback.conftest import AVA, BEN

CAVEAT = "leaves auto-deploy on"


async def _rolled_back_in_an_incident(world):
    reply = await world.bed.run_command("open P1 checkout failing service:api")
    assert "INC-1 opened" in reply, reply
    await world.bed.run_jobs()
    channel = world.bed.incident_channel(1).id
    reply = await world.command("api checkout 500s since the deploy", user=BEN, channel=channel)
    assert "Rollback preview RB-1" in reply, reply
    confirmed = await world.click(AVA, ActionId.ROLLBACK_CONFIRM, channel=channel)
    assert "You confirmed RB-1" in confirmed, confirmed
    rollback = await world.drive()
    assert rollback.state == RollbackStatus.SUCCEEDED, rollback.outcome
    await world.bed.run_jobs()
    return channel, rollback


def _everything_shown(world, channel: str) -> str:
    return "\n".join(m.text + json.dumps(m.blocks or []) for m in world.emu.messages(channel))


async def test_the_preview_says_what_is_live_after_the_rollback_names_the_redeploy_and_the_caveat_once(world):
    channel, rollback = await _rolled_back_in_an_incident(world)
    seeded = world.seeded("api")
    redeploy = rollback.provider_ids["deploy_id"]
    assert redeploy not in (seeded.live_id, seeded.target_id)  # Render made a new deploy of the target

    preview = world.preview(channel)  # the same message, updated in place
    deploys = preview.blocks[1]["text"]["text"]
    assert deploys.startswith(f"*Live now*: `{redeploy}`, Render's redeploy of `{seeded.target_id}`"), deploys
    assert f"*Rolled back from*: `{seeded.live_id}`" in deploys
    assert f"*Live now*: `{seeded.live_id}`" not in json.dumps(preview.blocks)
    assert ":white_check_mark: *Succeeded*" in json.dumps(preview.blocks)
    assert not [b for b in preview.blocks if b["type"] == "actions"]

    # Every line that names the new deploy says whose redeploy it is.
    shown = _everything_shown(world, channel)
    mentions = [shown[i:i + 120] for i in range(len(shown)) if shown.startswith(f"`{redeploy}`", i)]
    assert len(mentions) >= 4  # triggered, rolling out, live, succeeded, the preview, the card
    assert all(f"redeploy of `{seeded.target_id}`" in around for around in mentions), mentions
    assert f"live as `{redeploy}`, a redeploy of `{seeded.target_id}`" in json.dumps(world.bed.card(channel).blocks)

    # Render's caveat: once in the whole channel (the preview), not again in the outcome.
    assert shown.count(CAVEAT) == 1, shown


async def test_the_post_mortem_has_one_row_per_rollback_and_keeps_the_steps_in_the_timeline(world):
    channel, rollback = await _rolled_back_in_an_incident(world)
    seeded = world.seeded("api")
    redeploy = rollback.provider_ids["deploy_id"]
    for fmt in ("md", "json", "html"):
        assert "uploaded" in await world.bed.run_command(f"export {fmt}", channel=channel)
    markdown, document, page = (f.content.decode("utf-8") for f in world.emu.files)

    section = markdown.split("\n## Rollbacks\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| RB-")]
    assert len(rows) == 1, section
    cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
    header = [c.strip() for c in next(x for x in section.splitlines() if x.startswith("| Rollback")).strip("|").split(" | ")]
    row = dict(zip(header, cells, strict=True))
    assert row["Rollback"] == "RB-1" and row["Service"] == "api (render)"
    assert row["From → to"].startswith(f"{seeded.live_id} → {seeded.target_id}") and redeploy in row["From → to"]
    assert (row["Requested by"], row["Confirmed by"]) == ("ben", "ava")
    assert row["Started (UTC)"].endswith("UTC") and row["Started (America/New_York)"].endswith("EST")
    assert row["Live at"].endswith("EST") and row["Live at"] != "—"
    assert row["Health"].startswith("passed: ") and "answered 200" in row["Health"]
    assert row["Duration"] not in ("", "—") and row["Outcome"] == "succeeded"
    timeline = markdown.split("\n## Timeline\n", 1)[1].split("\n## ", 1)[0]
    steps = [line for line in timeline.splitlines() if "| Rollback |" in line]
    assert len(steps) == rollback.step_count >= 6  # requested, confirmed, triggered, …, live, succeeded

    data = json.loads(document)
    jsonschema.validate(data, jsonexport.schema(), cls=jsonschema.Draft202012Validator)
    assert data["schema_version"] == "2.0" and data["rollback_count"] == 1
    assert data["rollback_event_count"] == rollback.step_count
    (item,) = data["rollbacks"]
    assert (item["id"], item["from"], item["to"], item["redeploy"]) == ("RB-1", seeded.live_id, seeded.target_id,
                                                                        redeploy)
    assert item["requested_by"]["id"] == BEN and item["confirmed_by"]["id"] == AVA
    assert item["health"]["verdict"] == "passed" and item["state"] == "succeeded"
    assert item["live_at"] and item["finished_at"] and item["duration"]["seconds"] > 0

    rows_html = page.split('<table id="rollbacks">', 1)[1].split("</table>", 1)[0]
    assert rows_html.count('<tr class="rollback">') == 1 and "passed: " in rows_html


async def test_cancel_on_a_preview_is_a_neutral_button(world):
    await world.command("api checkout 500s")
    buttons = {e["action_id"]: e for b in world.preview().blocks if b["type"] == "actions" for e in b["elements"]}
    assert "style" not in buttons[ActionId.ROLLBACK_CANCEL]
    assert buttons[ActionId.ROLLBACK_CONFIRM]["style"] == "primary"
