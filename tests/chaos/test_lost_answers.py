"""Slack did the work but Firebreak never saw the answer (bed level, SQLite and PostgreSQL).

The incident channel set-up (bot/slack/effects.py) stores each step's result before
the next; these tests cut in between a Slack call that succeeded and the storing
of its result, then let the job run again, and check that nothing is done twice:
one channel (adopted only when it is provably ours), one card, one announcement,
one bookmark. The cut is either a lost answer (the emulator drops the connection
after acting: ``lose_answer_next``) or the process dying (tests/support/crash.py, a
BaseException that no handler catches, raised by the Slack client once Slack has
answered; a second "process" on the same database and workspace takes over). The
subprocess tests next to this file do the same with ``kill -9``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.clock import ManualClock
from bot.incidents.models import EventKind, Incident, TimelineEvent
from bot.jobs.models import Job, JobState
from bot.slack import effects as slack_effects
from tests.support.bed import ANNOUNCE, BOT_TOKEN, bed_emulator, start_bed, stop_bed
from tests.support.crash import Deaths

pytestmark = pytest.mark.timeout(60)

TITLE = "checkout is failing"
NAME = "inc-1-checkout-is-failing"


async def _incident(bed) -> Incident:
    async with bed.rt.sessions() as s:
        return (await s.execute(select(Incident).where(Incident.number == 1))).scalar_one()


async def _events(bed, kind: str) -> list[TimelineEvent]:
    async with bed.rt.sessions() as s:
        return list((await s.execute(select(TimelineEvent).where(TimelineEvent.kind == kind))).scalars())


async def _provision_job(bed) -> Job:
    async with bed.rt.sessions() as s:
        return (await s.execute(select(Job).where(Job.dedup_key == "provision:1"))).scalar_one()


def _incident_channels(bed):
    return [c for c in bed.emu.workspace.channels.values() if c.name.startswith("inc-1")]


async def _retry(bed) -> None:
    """The provisioning job's next run (its backoff has passed)."""
    bed.clock.advance(timedelta(minutes=10))
    await bed.run_jobs()


async def _fail_create_once(bed) -> None:
    """`/incident open` whose conversations.create went unanswered, then the channel
    appears at Slack as the bot's: the state a process leaves when it dies right
    after Slack created the channel."""
    bed.emu.fail_next("conversations.create", "fatal_error")
    reply = await bed.run_command(f"open P1 {TITLE} service:api")
    assert "INC-1 opened" in reply and "creating the channel" in reply, reply
    job = await _provision_job(bed)
    assert list(job.payload["channel_requests"]) == [NAME]  # recorded before Slack was asked


def _assert_set_up_once(bed, channel_id: str) -> None:
    cards = [m for m in bed.emu.messages(channel_id) if (m.metadata or {}).get("event_type") ==
             slack_effects.CARD_METADATA]
    assert len(cards) == 1
    assert [p.ts for p in bed.emu.pins(channel_id)] == [cards[0].ts]
    assert len(bed.emu.bookmarks(channel_id)) == 1
    announced = [m for m in bed.emu.messages(ANNOUNCE) if "INC-1" in m.text]
    assert len(announced) == 1


async def test_channel_created_by_a_lost_request_is_adopted(bed):
    await _fail_create_once(bed)
    created = (await bed.rt.slack.conversations_create(name=NAME)).data["channel"]  # the lost one
    await _retry(bed)
    incident = await _incident(bed)
    assert incident.channel_id == created["id"] and incident.channel_name == NAME
    assert [c.id for c in _incident_channels(bed)] == [created["id"]]
    events = await _events(bed, EventKind.CHANNEL_CREATED)
    assert len(events) == 1 and events[0].data["adopted"] is True
    assert events[0].data["creator"] == bed.emu.workspace.bot_user_id
    _assert_set_up_once(bed, incident.channel_id)
    assert incident.is_provisioned and incident.setup_error is None


# The refusals differ only in what Slack shows: on SQLite (the adoption itself runs on both).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("whose", ["a person's", "older than the request", "another incident's",
                                   "archived"])
async def test_channel_that_is_not_provably_ours_is_left_alone(bed, whose):
    await _fail_create_once(bed)
    if whose == "a person's":
        channel = bed.emu.add_channel(NAME, members=["U0G9QF9C6"], bot_member=False)
    else:
        channel = bed.emu.add_channel(NAME)  # created by the bot user
    if whose == "older than the request":
        job = await _provision_job(bed)
        requested = job.payload["channel_requests"][NAME]
        channel.created = int((datetime.fromisoformat(requested) - timedelta(hours=1)).timestamp())
    elif whose == "another incident's":
        # A second incident that already uses the channel (e.g. INC-1 of a restored database).
        await bed.run_command("open P3 something else")
        async with bed.rt.sessions() as s, s.begin():
            two = (await s.execute(select(Incident).where(Incident.number == 2))).scalar_one()
            two.channel_id = channel.id
            s.add(two)
    elif whose == "archived":
        channel.is_archived = True
    await _retry(bed)
    incident = await _incident(bed)
    assert incident.channel_name == f"{NAME}-2"
    assert incident.channel_id != channel.id
    _assert_set_up_once(bed, incident.channel_id)


async def test_connection_lost_after_slack_created_the_channel(bed):
    """The answer is lost inside one run (the connection drops after Slack acted): the resend
    says name_taken, and the channel is the one the first send made."""
    bed.emu.lose_answer_next("conversations.create")
    reply = await bed.run_command(f"open P1 {TITLE} service:api")
    assert "INC-1 opened in <#" in reply and "failed" not in reply, reply
    sent = [(c.params["name"], c.response.get("error")) for c in bed.emu.calls_to("conversations.create")]
    assert sent == [(NAME, None), (NAME, "name_taken")]
    incident = await _incident(bed)
    assert [c.id for c in _incident_channels(bed)] == [incident.channel_id]
    assert len(await _events(bed, EventKind.CHANNEL_CREATED)) == 1
    _assert_set_up_once(bed, incident.channel_id)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_first_name_taken_still_gets_a_suffix_without_listing_channels(bed):
    bed.emu.add_channel(NAME)  # the bot's own, from long ago: never adopted on a first answer
    await bed.run_command(f"open P1 {TITLE} service:api")
    assert (await _incident(bed)).channel_name == f"{NAME}-2"
    assert not bed.emu.calls_to("conversations.list")


LOST_STEPS = {  # the Slack call of each step, as the emulator sees it
    "card": ("chat.postMessage", lambda p: (p.get("metadata") or {}).get("event_type") == slack_effects.CARD_METADATA),
    "bookmark": ("bookmarks.add", None),
    "announcement": ("chat.postMessage", lambda p: p.get("channel") == ANNOUNCE),
}


@pytest.mark.parametrize("step", list(LOST_STEPS))
async def test_a_step_whose_answer_was_lost_is_not_repeated(bed, step):
    """Slack posted the card (added the bookmark, posted the announcement) and the connection
    dropped before its answer arrived: the retry finds it at Slack instead of doing it again."""
    method, where = LOST_STEPS[step]
    bed.emu.lose_answer_next(method, where=where)
    await bed.run_command(f"open P1 {TITLE} service:api")
    await _retry(bed)
    incident = await _incident(bed)
    assert incident.is_provisioned and incident.runbook_bookmarked and incident.setup_error is None
    _assert_set_up_once(bed, incident.channel_id)
    assert len(_incident_channels(bed)) == 1


class DyingSlackClient(AsyncWebClient):
    """The Slack client of a process that dies right after Slack answered ``method`` (for the
    calls ``where`` picks): Slack acted, the answer arrived, nothing was stored."""

    def __init__(self, method: str, where, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dying = (method, where)
        self.deaths = Deaths()  # shared with the copies the bot makes of its client

    async def api_call(self, api_method: str, **kwargs):
        answer = await super().api_call(api_method, **kwargs)
        method, where = self.dying
        sent = {**(kwargs.get("params") or {}), **(kwargs.get("json") or {}), **(kwargs.get("data") or {})}
        if not self.deaths and api_method == method and (where is None or where(sent)):
            self.deaths.die(f"once Slack had answered {api_method}")
        return answer


@pytest.mark.parametrize("step", list(LOST_STEPS))
async def test_a_process_that_dies_after_a_step_at_slack_does_not_repeat_it(database_url, step):
    """The process dies (a BaseException: no handler runs, nothing more is committed) after
    Slack did the step and before its result was stored. A new process on the same database
    and workspace takes the set-up job over once the dead one's lease has run out, and
    finishes the set-up without doing the step again."""
    method, where = LOST_STEPS[step]
    emu = bed_emulator()
    await emu.start()
    clock = ManualClock()
    dying = DyingSlackClient(method, where, token=BOT_TOKEN, base_url=emu.api_url)
    first = await start_bed(database_url, emu=emu, clock=clock, slack=dying)
    try:
        sent = await first.command(f"open P1 {TITLE} service:api")
        assert sent.status == 200
        await first.wait_for(lambda: dying.deaths)
        await dying.deaths.bury()
    finally:
        await stop_bed(first)
    second = await start_bed(database_url, emu=emu, clock=clock)
    try:
        assert (await _provision_job(second)).state == JobState.RUNNING  # leased to the dead one
        clock.advance(timedelta(seconds=second.rt.settings.worker_lease_seconds + 1))
        await second.settle()
        incident = await _incident(second)
        assert incident.is_provisioned and incident.runbook_bookmarked and incident.setup_error is None
        _assert_set_up_once(second, incident.channel_id)
        assert len(_incident_channels(second)) == 1
    finally:
        await stop_bed(second)
        await emu.stop()
    assert not emu.violations, emu.violations
