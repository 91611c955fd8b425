"""/rollback help, list, status, explicit targets and bad input (nothing half-created)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from bot.rollback.models import Rollback, RollbackStatus
from bot.slack.ids import ActionId
from tests.rollback.conftest import AVA, BEN

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _rows(w) -> int:
    async with w.rt.sessions() as session:
        return (await session.execute(select(func.count()).select_from(Rollback))).scalar()


@pytest.mark.parametrize("text, expected", [
    ("frobnicate", "There is no service `frobnicate`"),
    ("P7", "There is no service `P7`"),
    ("-rf api", "is not a /rollback command"),
    ("api to", "Say which deploy"),
    ("api to dep<script>", "is not a deploy id"),
    ("status nope", "There is no service `nope`"),
    ("status api web", "at most one service"),
    ("list everything", "`list` takes nothing"),
    ("help me", "`help` takes nothing"),
    ("api " + "x" * 4000, "at most 1,000"),
    ("api " + "x" * 600, "The reason is 600 characters long"),
])
async def test_bad_input_gets_usage_and_nothing_else(world, text, expected):
    sent = await world.bed.command(text, command="/rollback")
    assert sent.status == 200
    reply = sent.json  # answered in the ack itself
    assert reply["response_type"] == "ephemeral"
    assert expected in reply["text"] and "Usage: `/rollback" in reply["text"], reply["text"]
    assert await _rows(world) == 0
    assert not world.emu.calls_to("chat.postMessage")
    assert not world.fakes.render.api_requests()


async def test_help_and_empty(world):
    for text in ("", "help"):
        reply = await world.command(text)
        assert "/rollback <service> [to <deploy-id>] [reason]" in reply and "/rollback status" in reply


async def test_list_shows_services_providers_and_what_is_live(world):
    reply = await world.command("list")
    for service in ("api", "worker", "web", "billing", "shop"):
        assert f"*{service}*" in reply
        assert world.seeded(service).live_id in reply
    for provider in ("Render", "Railway", "Vercel", "Heroku", "GitHub Actions"):
        assert provider in reply
    await world.command("api")
    assert "RB-1 waiting for confirmation" in await world.command("list")


async def test_status_in_flight_and_recent(world):
    assert "No rollbacks yet" in await world.command("status")
    await world.command("api", user=BEN)
    reply = await world.command("status api")
    assert "_In flight_" in reply and "RB-1" in reply and "waiting for confirmation" in reply
    await world.click(BEN, ActionId.ROLLBACK_CANCEL)
    reply = await world.command("status")
    assert "_Nothing in flight._" in reply and "_Recent_" in reply and "canceled" in reply
    assert "No rollbacks of `web` yet" in await world.command("status web")


async def test_explicit_target_and_invalid_target(world):
    seeded = world.seeded("api")
    reply = await world.command(f"api to {seeded.failed_id}")
    assert "cannot be a rollback target" in reply and "build_failed" in reply
    assert await _rows(world) == 0
    reply = await world.command(f"api to {seeded.oldest_id} the retries commit broke it too")
    assert f"→ `{seeded.oldest_id}`" in reply
    rollback = await world.rollback()
    assert rollback.target_id == seeded.oldest_id and rollback.reason == "the retries commit broke it too"
    assert rollback.requested_target == seeded.oldest_id
    assert "Initial release" in json.dumps(world.preview().blocks)
    await world.click(BEN, ActionId.ROLLBACK_APPROVE)
    await world.click(AVA, ActionId.ROLLBACK_CONFIRM)
    rollback = await world.drive()
    assert rollback.state == RollbackStatus.SUCCEEDED
    assert world.trigger_requests("api")[0].json == {"deployId": seeded.oldest_id}


async def test_provider_unreachable_when_previewing(world):
    await world.fakes.render.stop()
    reply = await world.command("api")
    assert "Render" in reply and "Nothing was started" in reply
    assert await _rows(world) == 0
