"""``kill -9`` between channel creation and card posting: after the restart the incident has
one channel, one card, one announcement, and its pin, topic and bookmark once.

Two windows, both answers lost with the process:

- ``card``: the channel is created and stored, the reporter invited; the card's
  ``chat.postMessage`` reaches the fake Slack (which answers it 1 s late) and the
  bot is killed as it arrives. Slack posts the card; nobody stores its ts.
- ``channel``: ``conversations.create`` reaches the fake Slack, which creates the
  channel; the bot is killed before the answer leaves, so its id is never stored.
  This used to end with a second channel named ``…-2``.

The new process takes the provisioning job over when the dead one's lease runs out
and finishes the set-up, finding at Slack what the dead one left.
"""

from __future__ import annotations

import pytest

from bot.slack.effects import ANNOUNCEMENT_METADATA, CARD_METADATA
from tests.chaos.conftest import ANNOUNCE, AVA, wait_for

pytestmark = pytest.mark.timeout(90)

TITLE = "search is down"
RUNBOOK = "https://wiki.example.com/runbooks/api"


def _calls(world, method: str, channel: str, key: str = "channel"):
    return [c for c in world.slack.calls_to(method) if c.ok and c.params.get(key) == channel]


def _with_metadata(world, channel: str, event_type: str):
    return [m for m in world.slack.messages(channel) if (m.metadata or {}).get("event_type") == event_type]


@pytest.mark.parametrize("window", ["card", "channel"])
async def test_killed_during_channel_setup_completes_once_after_restart(world, window):
    killed = []

    def kill_once() -> None:
        if not killed:
            killed.append(window)
            world.kill()

    if window == "card":
        world.slack.delay("chat.postMessage", 1.0)

        def on_arrival(method: str, params: dict) -> None:
            if method == "chat.postMessage" and (params.get("metadata") or {}).get("event_type") == CARD_METADATA:
                kill_once()

        world.slack.on_arrival.append(on_arrival)
    else:
        def on_change(change) -> None:
            if change.kind == "channel_created" and change.data.get("name", "").startswith("inc-1-"):
                kill_once()  # the channel exists at Slack; the answer never reaches the bot

        world.slack.subscribe(on_change)

    await world.start_bot()
    sent = await world.command(f"open P3 {TITLE} service:api")
    assert sent.status == 200 and sent.seconds < 3
    await wait_for(lambda: killed, what=f"the kill in the {window} window")
    world.slack.clear_faults()
    world.slack.on_arrival.clear()

    incident = await world.incident(1)
    assert not incident.card_ts  # whatever Slack did, the dead process never stored it
    if window == "card":
        assert incident.channel_id and incident.reporter_invited
        # The request the dead process sent is carried out by Slack all the same.
        await wait_for(lambda: _with_metadata(world, incident.channel_id, CARD_METADATA),
                       what="the dead process's card to land")
    else:
        assert not incident.channel_id and len(world.incident_channels(1)) == 1

    await world.start_bot()

    async def provisioned():
        found = await world.incident(1)
        return found.is_provisioned and found.runbook_bookmarked and found

    incident = await wait_for(provisioned, what="the set-up finished by the new process")
    await world.settle()  # nothing running or due, the bot stopped: what Slack saw is final

    channels = world.incident_channels(1)
    assert [c.id for c in channels] == [incident.channel_id], [c.name for c in channels]
    assert channels[0].name == "inc-1-search-is-down"
    assert AVA in channels[0].members
    assert len([c for c in world.slack.calls_to("conversations.create") if c.ok]) == 1

    cards = _with_metadata(world, incident.channel_id, CARD_METADATA)
    assert [m.ts for m in cards] == [incident.card_ts]
    assert [m.ts for m in world.slack.pins(incident.channel_id)] == [incident.card_ts]
    announcements = _with_metadata(world, ANNOUNCE, ANNOUNCEMENT_METADATA)
    assert len(announcements) == 1 and "INC-1" in announcements[0].text
    assert [b.link for b in world.slack.bookmarks(incident.channel_id)] == [RUNBOOK]
    assert len(_calls(world, "bookmarks.add", incident.channel_id, key="channel_id")) == 1
    assert len(_calls(world, "conversations.setTopic", incident.channel_id)) == 1
    assert len(_calls(world, "pins.add", incident.channel_id)) == 1
    assert incident.setup_error is None

    created = [e for e in await world.timeline(1) if e.kind == "channel_created"]
    assert len(created) == 1 and created[0].data["channel"] == incident.channel_id
    assert created[0].data.get("adopted", False) is (window == "channel")
