"""Slack side effects of incident changes, run as durable jobs.

Each step of setting up an incident channel stores its result before the next
one starts, so a retry after a failure (or a crash) resumes where it stopped:
a channel is created once, the card posted once.

The one window that storing results cannot close is a Slack call that did its
work while its answer was lost (the process died, the connection dropped).
Slack has no idempotency keys, so a retry first looks for what an earlier run
may have left:

- channel: every name is recorded in the provisioning job's payload (with the
  time) *before* ``conversations.create`` is asked for it. ``name_taken`` on a
  recorded name adopts the existing channel only when it is provably that
  earlier request's: created by this bot user, not archived, created no earlier
  than the request (give or take :data:`CLOCK_SKEW`), and not the channel of
  another incident. Anything else gets the next ``-2``, ``-3`` name as before.
- card and announcement: posted with message metadata naming the incident; a
  retried job reads the channel's history for it before posting.
- runbook bookmark: a retried job lists the bookmarks first.
- invite and pin are idempotent at Slack (``already_in_channel``, ``already_pinned``);
  the topic is set again only when its text changes (``incidents.topic``), since
  Slack posts a "set the channel topic" line at every call.
"""

from __future__ import annotations

import copy
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock, utc
from bot.config import Settings
from bot.db.engine import SessionMaker, transaction
from bot.durations import format_duration
from bot.incidents import lifecycle
from bot.incidents import service as incidents
from bot.incidents.models import EventKind, Incident, TimelineEvent
from bot.jobs import service as jobs
from bot.jobs.models import Job
from bot.jobs.worker import RetryLater, backoff
from bot.slack import blocks
from bot.slack.channel_names import incident_channel_name
from bot.slack.client import ShortRateLimitRetry, slack_error, slack_retry_after
from bot.slack.identity import BotIdentity
from bot.text import shown

log = logging.getLogger(__name__)

PROVISION = "slack.provision"
SYNC_CARD = "slack.sync_card"
POST_EVENT = "slack.post_event"
PLAIN_NAMES = 3  # inc-12-checkout, -2, -3; then names with a random tag nobody can have taken
TAGGED_NAMES = 2
CREATE_SENDS = 3  # conversations.create sends per name, after answers that prove nothing
# The set-up job's tries, with the worker's back-off between them (1 s, 2 s, 4 s … 256 s):
# about 8.5 minutes, then the reporter and ANNOUNCE_CHANNEL are told it gave up.
PROVISION_ATTEMPTS = 10
SETUP_RETRY_MINUTES = round(sum(backoff(n).total_seconds() for n in range(1, PROVISION_ATTEMPTS)) / 60)
SETUP_WAITS_IN_PLACE = 2.0  # seconds of Retry-After the set-up waits out itself; longer: rescheduled
CARD_METADATA = "firebreak_incident_card"
ANNOUNCEMENT_METADATA = "firebreak_incident_announcement"
CLOCK_SKEW = timedelta(minutes=5)  # between this host's clock and Slack's
HISTORY_PAGES = 10  # of 200 messages, read when looking for a message an earlier run posted
CHANNEL_PAGES = 100  # of 1,000 channels, read when looking for a channel an earlier run created

# Events that change what the card shows, and those worth a line in the channel.
CARD_EVENTS = {EventKind.ACKNOWLEDGED, EventKind.SEVERITY_CHANGED, EventKind.ROLE_ASSIGNED,
               EventKind.MITIGATED, EventKind.RESOLVED, EventKind.REOPENED, EventKind.STATUS_UPDATE}
CHANNEL_EVENTS = CARD_EVENTS


def provision_key(incident_id: int) -> str:
    return f"provision:{incident_id}"


@lifecycle.subscribe
async def enqueue_slack_effects(
    session: AsyncSession, incident: Incident, event: TimelineEvent, now: datetime
) -> None:
    if event.kind == EventKind.OPENED:
        await jobs.enqueue(session=session, kind=PROVISION, due_at=now, now=now,
                           incident_id=incident.id, dedup_key=provision_key(incident.id),
                           max_attempts=PROVISION_ATTEMPTS)
        return
    if event.kind in CARD_EVENTS:
        await jobs.enqueue(session=session, kind=SYNC_CARD, due_at=now, now=now,
                           incident_id=incident.id)
    if event.kind in CHANNEL_EVENTS:
        await jobs.enqueue(session=session, kind=POST_EVENT, due_at=now, now=now,
                           incident_id=incident.id, payload={"event_id": event.id},
                           dedup_key=f"post_event:{event.id}")


# A card section: (session, incident, now) -> blocks shown on the card above its buttons.
CardSection = Callable[[AsyncSession, Incident, datetime], Awaitable[list[dict]]]


class SlackStepFailed(Exception):
    def __init__(self, step: str, error: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.error = error
        self.retry_after = retry_after  # Slack said when to try again (a 429)

    @classmethod
    def from_slack(cls, step: str, exc: SlackApiError) -> SlackStepFailed:
        rate_limited = getattr(exc.response, "status_code", None) == 429
        return cls(step, slack_error(exc), retry_after=slack_retry_after(exc) if rate_limited else None)


def _no_answer(exc: BaseException) -> str:
    return f"no answer from Slack ({type(exc).__name__})"


def _metadata(event_type: str, incident: Incident) -> dict[str, Any]:
    """Message metadata that lets a retry recognise a message this bot posted for ``incident``."""
    return {"event_type": event_type,
            "event_payload": {"incident_id": incident.id, "incident": incident.key}}


def _marks(message: dict[str, Any], event_type: str, incident: Incident) -> bool:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return metadata.get("event_type") == event_type and payload.get("incident_id") == incident.id


class SlackEffects:
    def __init__(
        self,
        *,
        sessions: SessionMaker,
        client: AsyncWebClient,
        settings: Settings,
        clock: Clock,
        runbook_for: Callable[[str | None], str | None] = lambda service: None,
        identity: BotIdentity | None = None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.settings = settings
        self.clock = clock
        self.runbook_for = runbook_for
        self.card_sections: list[CardSection] = []
        self.identity = identity or BotIdentity(sessions=sessions, client=client, clock=clock)
        # The set-up waits out a 429 in place only when it is short: after a longer Retry-After
        # the job is rescheduled for that time (provision), instead of holding a worker and
        # the reply to `/incident open`. The writes that Slack would do twice if sent twice
        # (the channel, the card, the bookmark, the announcement) go through _once_client,
        # which retries nothing else: after a lost connection or a 5xx Slack may have acted,
        # so the channel is settled by _create_channel and the rest by the job's next run,
        # which looks at Slack before doing the step again.
        short_429 = ShortRateLimitRetry(max_wait=SETUP_WAITS_IN_PLACE)
        self._setup_client = copy.copy(client)
        self._setup_client.retry_handlers = [
            short_429 if isinstance(h, AsyncRateLimitErrorRetryHandler) else h for h in client.retry_handlers or []]
        self._once_client = copy.copy(client)
        self._once_client.retry_handlers = [short_429]

    def add_card_section(self, section: CardSection) -> None:
        """Let another concern (rollbacks, …) show its state on the incident card."""
        self.card_sections.append(section)

    async def card_blocks(self, incident: Incident) -> list[dict]:
        now = self.clock.now()
        card = blocks.incident_card(incident, now=now, zone=self.settings.display_zone)
        if not self.card_sections:
            return card
        extra: list[dict] = []
        async with self.sessions() as session:
            for section in self.card_sections:
                extra += await section(session, incident, now)
        return blocks.with_card_sections(card, extra)

    def handlers(self) -> dict:
        return {PROVISION: self.provision, SYNC_CARD: self.sync_card, POST_EVENT: self.post_event}

    async def _load(self, incident_id: int) -> Incident:
        async with self.sessions() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None:
                raise RuntimeError(f"incident id {incident_id} vanished")
            return incident

    async def _save(self, incident_id: int, **values: object) -> Incident:
        async with transaction(self.sessions) as session:
            incident = await session.get(Incident, incident_id)
            for name, value in values.items():
                setattr(incident, name, value)
            session.add(incident)
            return incident

    async def _post(self, channel: str, *, once: bool = False, **kwargs: object) -> dict:
        """chat.postMessage, joining a public channel first if the bot is not in it; ``once``:
        never sent again after a lost connection or a 5xx (see ``_once_client``)."""
        poster = self._once_client if once else self.client
        try:
            return (await poster.chat_postMessage(channel=channel, **kwargs)).data
        except SlackApiError as exc:
            if slack_error(exc) != "not_in_channel":
                raise
            await self.client.conversations_join(channel=channel)
            return (await poster.chat_postMessage(channel=channel, **kwargs)).data

    async def provision(self, job: Job) -> None:
        incident = await self._load(job.incident_id)
        try:
            incident = await self._provision_steps(incident, job)
        except Exception as exc:
            failure = exc if isinstance(exc, SlackStepFailed) else \
                SlackStepFailed("setting up the incident", type(exc).__name__)
            await self._record_failure(incident.id, failure, first=job.attempts == 1)
            if failure.retry_after is not None:  # rate limited: again when Slack said, not before
                raise RetryLater(timedelta(seconds=max(failure.retry_after, 1.0)), str(failure)) from failure
            if job.attempts >= job.max_attempts:
                await self._tell_gave_up(incident.id, failure, job)
            raise
        if incident.setup_error:
            await self._save(incident.id, setup_error=None)

    async def resume_setup(self, incident_id: int) -> None:
        """Set-up given up earlier: make its job due again (``/incident open`` typed again)."""
        async with transaction(self.sessions) as session:
            await jobs.rearm(session=session, dedup_key=provision_key(incident_id), now=self.clock.now())

    async def _tell_gave_up(self, incident_id: int, failure: SlackStepFailed, job: Job) -> None:
        """The set-up job's last try failed: say so on the timeline, to the reporter and in
        ANNOUNCE_CHANNEL. Never a silent give-up; the incident stays open and paging."""
        now = self.clock.now()
        async with transaction(self.sessions) as session:
            incident = await session.get(Incident, incident_id)
            took = format_duration(now - utc(job.created_at or incident.opened_at))
            problem = f"Slack failed while {failure.step}: {failure.error}"
            incident.setup_error = f"Firebreak gave up after {job.attempts} tries over {took}. {problem}"[:500]
            session.add(incident)
            await incidents.record_event(
                session=session, incident=incident, kind=EventKind.SLACK_ERROR, now=now,
                actor=incidents.SYSTEM_ACTOR,
                text=f"Gave up setting up the incident in Slack after {job.attempts} tries over {took}: {problem}",
                data={"step": failure.step, "error": failure.error, "gave_up": True, "tries": job.attempts})
        log.error("%s: gave up setting up Slack after %d tries over %s: %s", incident.key, job.attempts,
                  took, problem)
        where = f" (<#{incident.channel_id}>)" if incident.channel_id else ""
        again = f"/incident open {incident.severity.value} {shown(incident.title)}" + (
            f" service:{incident.service}" if incident.service else "")
        text = (f":warning: {incident.key} ({incident.severity.value}) {shown(incident.title)}{where}: Firebreak "
                f"could not finish setting it up in Slack and stopped trying after {job.attempts} tries over "
                f"{took}. {problem}. The incident is open and paging as planned. To try again, run `{again}`.")
        try:
            opened = await self.client.conversations_open(users=incident.reporter_id)
            await self.client.chat_postMessage(channel=opened["channel"]["id"], text=text)
        except SlackApiError as exc:
            log.error("%s: could not tell the reporter the set-up failed: %s", incident.key, slack_error(exc))
        if self.settings.announce_channel:
            try:
                await self._post(self.settings.announce_channel,
                                 text=text + f" (reported by <@{incident.reporter_id}>)")
            except SlackApiError as exc:
                log.error("%s: could not tell %s the set-up failed: %s", incident.key,
                          self.settings.announce_channel, slack_error(exc))

    async def _provision_steps(self, incident: Incident, job: Job) -> Incident:
        client = self._setup_client
        # An earlier run of this job may have done a step at Slack and died before storing it.
        retry = job.attempts > 1
        if not incident.channel_id:
            incident = await self._create_channel(incident, job)
        if not incident.reporter_invited:
            try:
                await client.conversations_invite(channel=incident.channel_id, users=incident.reporter_id)
            except SlackApiError as exc:
                if slack_error(exc) not in ("already_in_channel", "cant_invite_self"):
                    raise SlackStepFailed.from_slack("inviting the reporter", exc) from exc
            incident = await self._save(incident.id, reporter_invited=True)
        if not incident.card_ts:
            card_ts = await self._find_posted(incident.channel_id, CARD_METADATA, incident) if retry else None
            if card_ts is None:
                try:
                    posted = await self._once_client.chat_postMessage(
                        channel=incident.channel_id, text=blocks.card_fallback_text(incident),
                        blocks=await self.card_blocks(incident),
                        metadata=_metadata(CARD_METADATA, incident))
                except SlackApiError as exc:
                    raise SlackStepFailed.from_slack("posting the incident card", exc) from exc
                except (TimeoutError, aiohttp.ClientError) as exc:
                    raise SlackStepFailed("posting the incident card", _no_answer(exc)) from exc
                card_ts = posted["ts"]
            incident = await self._save(incident.id, card_ts=card_ts)
        if not incident.card_pinned:
            try:
                await client.pins_add(channel=incident.channel_id, timestamp=incident.card_ts)
            except SlackApiError as exc:
                if slack_error(exc) != "already_pinned":
                    raise SlackStepFailed.from_slack("pinning the card", exc) from exc
            incident = await self._save(incident.id, card_pinned=True)
        if not incident.topic_set:
            topic = blocks.channel_topic(incident)
            try:
                await client.conversations_setTopic(channel=incident.channel_id, topic=topic)
            except SlackApiError as exc:
                raise SlackStepFailed.from_slack("setting the topic", exc) from exc
            incident = await self._save(incident.id, topic_set=True, topic=topic)
        if not incident.runbook_bookmarked:
            runbook = self.runbook_for(incident.service)
            if runbook and not (retry and await self._has_bookmark(incident.channel_id, runbook)):
                try:
                    await self._once_client.bookmarks_add(channel_id=incident.channel_id, title="Runbook",
                                                          type="link", link=runbook)
                except SlackApiError as exc:
                    raise SlackStepFailed.from_slack("bookmarking the runbook", exc) from exc
                except (TimeoutError, aiohttp.ClientError) as exc:
                    raise SlackStepFailed("bookmarking the runbook", _no_answer(exc)) from exc
            incident = await self._save(incident.id, runbook_bookmarked=True)
        if not incident.announced:
            announce = self.settings.announce_channel
            if announce and not (retry and await self._find_posted(
                    announce, ANNOUNCEMENT_METADATA, incident,
                    oldest=utc(incident.opened_at) - CLOCK_SKEW)):
                try:
                    await self._post(announce, once=True,
                                     text=blocks.announcement_text(incident),
                                     blocks=blocks.announcement(incident),
                                     metadata=_metadata(ANNOUNCEMENT_METADATA, incident))
                except SlackApiError as exc:
                    raise SlackStepFailed.from_slack("announcing the incident", exc) from exc
                except (TimeoutError, aiohttp.ClientError) as exc:
                    raise SlackStepFailed("announcing the incident", _no_answer(exc)) from exc
            incident = await self._save(incident.id, announced=True)
        return incident

    async def _create_channel(self, incident: Incident, job: Job) -> Incident:
        requested: dict[str, str] = dict((job.payload or {}).get("channel_requests") or {})
        # Names asked for without a definite answer: in an earlier run (it may have died
        # right after Slack created the channel), or in this one (connection lost, 5xx).
        unanswered = set(requested)
        for name in await self._channel_names(incident, job):
            if name not in requested:
                # Durable before Slack is asked: if the answer is lost, a retry can prove
                # the channel it finds under this name is the one this request made.
                requested[name] = self.clock.now().isoformat()
                await self._record_channel_requests(job, requested)
            for send in range(1, CREATE_SENDS + 1):
                try:
                    created = await self._once_client.conversations_create(name=name)
                except SlackApiError as exc:
                    code = slack_error(exc)
                    if code == "name_taken":
                        break
                    if exc.response.status_code < 500 or send == CREATE_SENDS:
                        raise SlackStepFailed.from_slack("creating the channel", exc) from exc
                except (TimeoutError, aiohttp.ClientError) as exc:
                    if send == CREATE_SENDS:
                        unanswered.add(name)
                        raise SlackStepFailed("creating the channel", _no_answer(exc)) from exc
                else:
                    return await self._store_channel(incident, created["channel"])
                unanswered.add(name)  # Slack may have created it: the next send can say name_taken
                await self.clock.sleep(0.5 * send)
            if name in unanswered:
                mine = await self._channel_from_lost_answer(
                    incident, name, requested_at=datetime.fromisoformat(requested[name]))
                if mine is not None:
                    return await self._store_channel(incident, mine, adopted=True)
        raise SlackStepFailed("creating the channel",
                              f"name_taken for {PLAIN_NAMES + TAGGED_NAMES} variants of the name")

    async def _channel_names(self, incident: Incident, job: Job) -> list[str]:
        """The names to try, in order: the plain ones, then ones with a random tag (kept in
        the job's payload, so that a retry asks for the same names)."""
        tags = list((job.payload or {}).get("channel_tags") or [])
        if len(tags) < TAGGED_NAMES:
            tags += [secrets.token_hex(2) for _ in range(TAGGED_NAMES - len(tags))]
            await self._record_payload(job, channel_tags=tags)
        prefix, number, title = self.settings.incident_channel_prefix, incident.number, incident.title
        return ([incident_channel_name(prefix, number, title, attempt) for attempt in range(PLAIN_NAMES)]
                + [incident_channel_name(prefix, number, title, tag=tag) for tag in tags])

    async def _record_channel_requests(self, job: Job, requested: dict[str, str]) -> None:
        await self._record_payload(job, channel_requests=dict(requested))

    async def _record_payload(self, job: Job, **values: Any) -> None:
        payload = {**(job.payload or {}), **values}
        async with transaction(self.sessions) as session:
            await session.execute(update(Job).where(Job.id == job.id).values(payload=payload))
        job.payload = payload

    async def _store_channel(self, incident: Incident, channel: dict[str, Any], *,
                             adopted: bool = False) -> Incident:
        async with transaction(self.sessions) as session:
            stored = await session.get(Incident, incident.id, with_for_update=True)
            if stored.channel_id:  # another run (whose lease ran out) got there first
                log.warning("%s already has channel %s; #%s is left unused",
                            stored.key, stored.channel_id, channel.get("name"))
                return stored
            stored.channel_id = channel["id"]
            stored.channel_name = channel["name"]
            session.add(stored)
            data: dict[str, Any] = {"channel": channel["id"], "name": channel["name"]}
            if adopted:  # the proof, for whoever reads the timeline's data later
                data.update(adopted=True, creator=channel.get("creator"), created=channel.get("created"))
            await incidents.record_event(
                session=session, incident=stored, kind=EventKind.CHANNEL_CREATED,
                now=self.clock.now(), actor=incidents.SYSTEM_ACTOR,
                text=f"Channel #{channel['name']} created", data=data)
            return stored

    async def _channel_from_lost_answer(self, incident: Incident, name: str, *,
                                        requested_at: datetime) -> dict[str, Any] | None:
        """The channel called ``name`` if an earlier ``conversations.create`` of ours made it
        for this incident (its answer lost), else None."""
        bot_user = await self.identity.user_id()
        if not bot_user:
            return None
        channel = await self._channel_named(name)
        if channel is None or channel.get("is_archived") or channel.get("creator") != bot_user:
            return None
        created = channel.get("created")
        if not isinstance(created, (int, float)) or \
                created < (utc(requested_at) - CLOCK_SKEW).timestamp():
            return None  # older than our request: an earlier incident's, not this one's
        async with self.sessions() as session:
            taken = (await session.execute(
                select(Incident.id).where(Incident.channel_id == channel["id"],
                                          Incident.id != incident.id))).first()
        if taken is not None:
            return None
        log.info("adopting #%s (%s) for %s: created by this bot for a request whose answer was lost",
                 name, channel["id"], incident.key)
        return channel

    async def _channel_named(self, name: str) -> dict[str, Any] | None:
        cursor: str | None = None
        try:
            for _ in range(CHANNEL_PAGES):
                page = await self.client.conversations_list(
                    types="public_channel", exclude_archived=True, limit=1000, cursor=cursor)
                found = next((c for c in page.get("channels") or [] if c.get("name") == name), None)
                if found is not None:
                    return found
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except SlackApiError as exc:
            log.warning("could not list channels to find #%s: %s", name, slack_error(exc))
        return None

    async def _find_posted(self, channel: str, event_type: str, incident: Incident, *,
                           oldest: datetime | None = None) -> str | None:
        """The ts of a message this bot posted in ``channel`` for ``incident`` (by its
        metadata), or None. A failed lookup counts as not found: better a second message
        than none."""
        bot_user = await self.identity.user_id()
        cursor: str | None = None
        for joined in (False, True):
            try:
                for _ in range(HISTORY_PAGES):
                    page = await self.client.conversations_history(
                        channel=channel, limit=200, include_all_metadata=True, cursor=cursor,
                        oldest=f"{oldest.timestamp():.6f}" if oldest else None)
                    for message in page.get("messages") or []:
                        if _marks(message, event_type, incident) and \
                                (message.get("user") == bot_user or message.get("bot_id")):
                            return message["ts"]
                    cursor = (page.get("response_metadata") or {}).get("next_cursor")
                    if not cursor:
                        return None
                return None
            except SlackApiError as exc:
                if slack_error(exc) == "not_in_channel" and not joined:
                    try:  # a public channel posted to with chat:write.public: join to read it
                        await self.client.conversations_join(channel=channel)
                        continue
                    except SlackApiError:
                        pass
                log.warning("could not read %s to find an earlier %s: %s", channel, event_type,
                            slack_error(exc))
                return None
        return None

    async def _has_bookmark(self, channel: str, link: str) -> bool:
        try:
            found = await self.client.bookmarks_list(channel_id=channel)
        except SlackApiError as exc:
            log.warning("could not list the bookmarks of %s: %s", channel, slack_error(exc))
            return False
        return any(b.get("link") == link for b in found.get("bookmarks") or [])

    async def _record_failure(self, incident_id: int, failure: SlackStepFailed, *, first: bool) -> None:
        message = f"Slack failed while {failure.step}: {failure.error}"
        async with transaction(self.sessions) as session:
            incident = await session.get(Incident, incident_id)
            incident.setup_error = message[:500]
            session.add(incident)
            if first:  # once on the timeline, not once per retry
                await incidents.record_event(
                    session=session, incident=incident, kind=EventKind.SLACK_ERROR,
                    now=self.clock.now(), actor=incidents.SYSTEM_ACTOR, text=message,
                    data={"step": failure.step, "error": failure.error})

    async def sync_card(self, job: Job) -> None:
        incident = await self._load(job.incident_id)
        if not (incident.channel_id and incident.card_ts):
            return  # the provisioning job posts the card with the latest state
        await self.client.chat_update(
            channel=incident.channel_id, ts=incident.card_ts,
            text=blocks.card_fallback_text(incident), blocks=await self.card_blocks(incident))
        topic = blocks.channel_topic(incident)
        # Slack posts "set the channel topic" in the channel at every call, even with the
        # same text: set it only when it says something new.
        if incident.topic_set and topic != incident.topic:
            await self.client.conversations_setTopic(channel=incident.channel_id, topic=topic)
            await self._save(incident.id, topic=topic)

    async def post_event(self, job: Job) -> None:
        async with self.sessions() as session:
            event = await session.get(TimelineEvent, job.payload["event_id"])
            incident = await session.get(Incident, job.incident_id)
        line = blocks.event_line(event, incident)
        if line is None:
            return
        if incident.channel_id:
            await self._post(incident.channel_id, text=line)
        elif not incident.is_provisioned:
            raise RuntimeError("incident channel not ready yet")  # retried with backoff
        if event.kind == EventKind.STATUS_UPDATE and self.settings.announce_channel:
            await self._post(self.settings.announce_channel, text=line)
