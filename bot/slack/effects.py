"""Slack side effects of incident changes, run as durable jobs.

Each step of setting up an incident channel stores its result before the next
one starts, so a retry after a failure (or a crash) resumes where it stopped:
a channel is created once, the card posted once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.engine import SessionMaker, transaction
from bot.incidents import lifecycle
from bot.incidents import service as incidents
from bot.incidents.models import EventKind, Incident, TimelineEvent
from bot.jobs import service as jobs
from bot.jobs.models import Job
from bot.slack import blocks
from bot.slack.channel_names import incident_channel_name

log = logging.getLogger(__name__)

PROVISION = "slack.provision"
SYNC_CARD = "slack.sync_card"
POST_EVENT = "slack.post_event"
NAME_ATTEMPTS = 10

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
                           incident_id=incident.id, dedup_key=provision_key(incident.id))
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
    def __init__(self, step: str, error: str) -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.error = error


def _error_code(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or exc)
    except Exception:  # noqa: BLE001
        return str(exc)


class SlackEffects:
    def __init__(
        self,
        *,
        sessions: SessionMaker,
        client: AsyncWebClient,
        settings: Settings,
        clock: Clock,
        runbook_for: Callable[[str | None], str | None] = lambda service: None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.settings = settings
        self.clock = clock
        self.runbook_for = runbook_for
        self.card_sections: list[CardSection] = []

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

    async def _post(self, channel: str, **kwargs: object) -> dict:
        """chat.postMessage, joining a public channel first if the bot is not in it."""
        try:
            return (await self.client.chat_postMessage(channel=channel, **kwargs)).data
        except SlackApiError as exc:
            if _error_code(exc) != "not_in_channel":
                raise
            await self.client.conversations_join(channel=channel)
            return (await self.client.chat_postMessage(channel=channel, **kwargs)).data

    async def provision(self, job: Job) -> None:
        incident = await self._load(job.incident_id)
        try:
            incident = await self._provision_steps(incident)
        except SlackStepFailed as failure:
            await self._record_failure(incident.id, failure, first=job.attempts == 1)
            raise
        if incident.setup_error:
            await self._save(incident.id, setup_error=None)

    async def _provision_steps(self, incident: Incident) -> Incident:
        client = self.client
        if not incident.channel_id:
            incident = await self._create_channel(incident)
        if not incident.reporter_invited:
            try:
                await client.conversations_invite(channel=incident.channel_id, users=incident.reporter_id)
            except SlackApiError as exc:
                if _error_code(exc) not in ("already_in_channel", "cant_invite_self"):
                    raise SlackStepFailed("inviting the reporter", _error_code(exc)) from exc
            incident = await self._save(incident.id, reporter_invited=True)
        if not incident.card_ts:
            try:
                posted = await client.chat_postMessage(
                    channel=incident.channel_id, text=blocks.card_fallback_text(incident),
                    blocks=await self.card_blocks(incident))
            except SlackApiError as exc:
                raise SlackStepFailed("posting the incident card", _error_code(exc)) from exc
            incident = await self._save(incident.id, card_ts=posted["ts"])
        if not incident.card_pinned:
            try:
                await client.pins_add(channel=incident.channel_id, timestamp=incident.card_ts)
            except SlackApiError as exc:
                if _error_code(exc) != "already_pinned":
                    raise SlackStepFailed("pinning the card", _error_code(exc)) from exc
            incident = await self._save(incident.id, card_pinned=True)
        if not incident.topic_set:
            try:
                await client.conversations_setTopic(channel=incident.channel_id,
                                                    topic=blocks.channel_topic(incident))
            except SlackApiError as exc:
                raise SlackStepFailed("setting the topic", _error_code(exc)) from exc
            incident = await self._save(incident.id, topic_set=True)
        if not incident.runbook_bookmarked:
            runbook = self.runbook_for(incident.service)
            if runbook:
                try:
                    await client.bookmarks_add(channel_id=incident.channel_id, title="Runbook",
                                               type="link", link=runbook)
                except SlackApiError as exc:
                    raise SlackStepFailed("bookmarking the runbook", _error_code(exc)) from exc
            incident = await self._save(incident.id, runbook_bookmarked=True)
        if not incident.announced:
            if self.settings.announce_channel:
                try:
                    await self._post(self.settings.announce_channel,
                                     text=f"{incident.key} opened: {incident.title}",
                                     blocks=blocks.announcement(incident))
                except SlackApiError as exc:
                    raise SlackStepFailed("announcing the incident", _error_code(exc)) from exc
            incident = await self._save(incident.id, announced=True)
        return incident

    async def _create_channel(self, incident: Incident) -> Incident:
        for attempt in range(NAME_ATTEMPTS):
            name = incident_channel_name(self.settings.incident_channel_prefix, incident.number,
                                         incident.title, attempt)
            try:
                created = await self.client.conversations_create(name=name)
            except SlackApiError as exc:
                if _error_code(exc) == "name_taken":
                    continue
                raise SlackStepFailed("creating the channel", _error_code(exc)) from exc
            channel = created["channel"]
            async with transaction(self.sessions) as session:
                stored = await session.get(Incident, incident.id)
                stored.channel_id = channel["id"]
                stored.channel_name = channel["name"]
                session.add(stored)
                await incidents.record_event(
                    session=session, incident=stored, kind=EventKind.CHANNEL_CREATED,
                    now=self.clock.now(), actor=incidents.SYSTEM_ACTOR,
                    text=f"Channel #{channel['name']} created",
                    data={"channel": channel["id"], "name": channel["name"]})
                return stored
        raise SlackStepFailed("creating the channel",
                              f"name_taken for {NAME_ATTEMPTS} variants of the name")

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
        if incident.topic_set:
            await self.client.conversations_setTopic(channel=incident.channel_id,
                                                     topic=blocks.channel_topic(incident))

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
