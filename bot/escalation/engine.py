"""The escalation engine: job handlers that page, post in the channel and mirror acks.

Exactly-once paging
-------------------
A level is one durable job (``escalation.level``, at most one per plan
generation, level and repeat: its ``dedup_key``). Workers claim due jobs with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so one worker normally runs a level.
That alone is not enough (a worker whose lease ran out may still be sending
when another takes the job over, and a worker may die mid-send), so each
recipient is paged in two transactions, each of which first locks the incident
row (``SELECT … FOR UPDATE``; SQLite: ``BEGIN IMMEDIATE``) and checks that the
incident is still open, the plan generation current and no page row exists yet
for (incident, step, recipient) (:func:`service.page_gate`):

1. the *claim* records a page attempt (:class:`PageAttempt`: a key, and a count
   of sends set out) and commits, before anything is sent;
2. the *send* sends the page and inserts the page row and its timeline event,
   then commits.

Acknowledging updates the same incident row, so it waits for a send in flight
and commits after it; a send that takes the lock after the acknowledgement
committed sees the new state and stays silent. A second worker running the
same level waits for the lock and then finds the page row.

A crash between the send and its commit leaves the attempt without a page row;
the job is retried (its lease runs out) and finds ``sends`` above one, so the
page may be out already. PagerDuty and Opsgenie de-duplicate it themselves
(``dedup_key``, ``alias``); a Slack page carries the attempt's key in its message
metadata, and the Slack pagers look for it in the conversation before posting
(``PageRequest.maybe_sent``). So a recipient gets one page per step even when a
process dies at any point. If the incident is acknowledged or resolved before
the retry, PagerDuty/Opsgenie alerts of such attempts are acknowledged/resolved
by the mirror job like recorded ones.

The row lock is held while one page is sent, so nothing in a send may wait
long: the pagers' in-place retries are short (:data:`ESCALATION_RETRY`, the
Slack page client has none). A provider that answers 429 with a
``Retry-After`` longer than a second is not waited on (``PagerError.defer``),
and any transient failure left after the in-place retries (5xx, timeouts,
resets, a transient Slack error) puts the page off: the step's other
recipients are still paged, and the job is rescheduled (``RetryLater``) at the
Retry-After, else with a back-off from :data:`DEFER_BACKOFF`, at most
:data:`MAX_DEFERRALS` times before the page is reported as failed. An
acknowledgement cancels the rescheduled job like any pending level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock, utc
from bot.db.engine import SessionMaker, transaction
from bot.escalation import service
from bot.escalation.models import Page, PageOutcome
from bot.incidents.models import Incident, TimelineEvent
from bot.jobs.models import Job
from bot.jobs.worker import RetryLater, Worker
from bot.pagers import Pager, PageRequest, PagerError, pager_for
from bot.pagers.http import RetryPolicy
from bot.pagers.slack import SlackGroupPager
from bot.pagers.slack_blocks import build_page_acknowledged_blocks, page_fallback_text
from bot.playbooks.loader import Playbooks
from bot.playbooks.models import Severity
from bot.playbooks.oncall import on_call
from bot.playbooks.targets import OnCallRole, Target, TargetKind
from bot.slack.client import slack_error

log = logging.getLogger(__name__)

# While a page is being sent the incident row stays locked: keep one send short.
# PagerDuty/Opsgenie: 2 attempts of at most 4 s with one wait of at most 1 s; a
# Retry-After over 1 s is not waited out but puts the page off (see MAX_DEFERRALS).
# Slack pages use bot.pagers.slack.page_client: one call of at most 5 s, no retries.
ESCALATION_RETRY = RetryPolicy(attempts=2, initial_wait=0.5, max_wait=1.0, max_retry_after=1.0,
                               defer_retry_after_over=1.0, request_timeout=4.0)
MAX_DEFERRALS = 8  # a page put off more often than this is reported as failed
DEFER_MIN = timedelta(seconds=1)
DEFER_MAX = timedelta(minutes=5)
DEFER_BACKOFF = timedelta(seconds=5)  # first wait after a transient failure without Retry-After
CHANNEL_RETRY = timedelta(seconds=15)
CHANNEL_ATTEMPTS = 60  # about 15 minutes of waiting for the incident channel to exist

PagerSource = Mapping[str, Pager] | Callable[[], Mapping[str, Pager]]


@dataclass(frozen=True)
class Recipient:
    target: str  # as written in the playbook / command
    recipient: str  # what is paged: user:U.., channel:C.., pagerduty:.., opsgenie:..
    problem: str | None = None  # set when there is nobody to page for this target


@dataclass(frozen=True)
class Deferred:
    """A page put off: try again after ``delay``."""

    recipient: str
    delay: timedelta
    reason: str


@dataclass(frozen=True)
class Step:
    incident_id: int
    step_key: str
    generation: int | None
    level: int | None
    attempt: int
    due_at: datetime
    message: str | None = None
    actor: str | None = None

    @property
    def manual(self) -> bool:
        return self.level is None


class EscalationEngine:
    """Runs the escalation jobs of :mod:`bot.escalation.service` against real pagers."""

    def __init__(
        self,
        *,
        sessions: SessionMaker,
        clock: Clock,
        playbooks: Playbooks,
        slack: AsyncWebClient,
        pagers: PagerSource,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.playbooks = playbooks
        self.slack = slack
        self._pagers = pagers

    @property
    def pagers(self) -> Mapping[str, Pager]:
        return self._pagers() if callable(self._pagers) else self._pagers

    def handlers(self) -> dict[str, Callable[[Job], Any]]:
        return {
            service.PLAN: self.plan,
            service.LEVEL: self.page_level,
            service.MANUAL_PAGE: self.manual_page,
            service.RESPONSE_CHECK: self.response_check,
            service.STATUS_REMINDER: self.status_reminder,
            service.MIRROR: self.mirror,
            service.CHANNEL_POST: self.channel_post,
        }

    def register(self, worker: Worker) -> None:
        for kind, handler in self.handlers().items():
            worker.register(kind, handler)

    # --- planning -------------------------------------------------------------------------

    async def plan(self, job: Job) -> None:
        payload = job.payload
        async with transaction(self.sessions) as session:
            incident = await service.lock_incident(session=session, incident_id=job.incident_id)
            event = await session.get(TimelineEvent, payload["event_id"])
            origin = incident.opened_at if payload["reason"] == "opened" else event.occurred_at
            await service.plan_escalation(
                session=session, incident=incident, matrix=self.playbooks.escalation,
                generation=payload["event_id"], origin_at=origin, reason=payload["reason"],
                severity=Severity(payload["severity"]), upgrade=bool(payload.get("upgrade")),
                now=self.clock.now(),
            )

    # --- paging ---------------------------------------------------------------------------

    async def page_level(self, job: Job) -> None:
        payload = job.payload
        generation, level, attempt = payload["generation"], payload["level"], payload["attempt"]
        # A job put off (RetryLater) has a later due_at: the level's own time is in the payload.
        due_at = datetime.fromisoformat(payload["due_at"]) if payload.get("due_at") else job.due_at
        step = Step(job.incident_id, service.level_step_key(generation, level, attempt),
                    generation, level, attempt, utc(due_at))
        recipients = await self.resolve_targets(payload["targets"], at=step.due_at)
        await self._page_all(step, recipients)

    async def manual_page(self, job: Job) -> None:
        payload = job.payload
        step = Step(job.incident_id, service.manual_step_key(payload["event_id"]), None, None, 0,
                    utc(job.created_at or job.due_at), message=payload.get("message"),
                    actor=payload.get("actor"))
        recipients = await self.resolve_targets([payload["target"]], at=self.clock.now())
        await self._page_all(step, recipients)

    async def _page_all(self, step: Step, recipients: list[Recipient]) -> None:
        paged: list[Page] = []
        deferred: list[Deferred] = []
        for position, recipient in enumerate(recipients):
            last = position == len(recipients) - 1
            outcome = await self.page_one(step, recipient,
                                          summarise_after=paged if last and not deferred else None)
            if outcome is None:  # stopped (acknowledged, resolved, re-planned): the rest is not paged
                await self._post_summary(step, paged)
                return
            if isinstance(outcome, Deferred):
                deferred.append(outcome)
                continue
            paged.append(outcome[1])
        if deferred:
            # The paged recipients have their rows: the rerun finds them and pages the rest
            # (and the last recipient's transaction then posts the channel summary).
            raise RetryLater(max(d.delay for d in deferred),
                             "; ".join(f"{d.recipient}: {d.reason}" for d in deferred)[:1000])

    async def _post_summary(self, step: Step, paged: list[Page]) -> None:
        if not paged:
            return
        async with transaction(self.sessions) as session:
            incident = await session.get(Incident, step.incident_id)
            await self._enqueue_summary(session, incident, step, paged)

    async def _enqueue_summary(self, session, incident: Incident, step: Step, paged: list[Page]) -> None:
        text = service.level_summary(incident=incident, pages=paged, level=step.level,
                                     attempt=step.attempt, actor=step.actor, generation=step.generation)
        if text:
            await service.enqueue_channel_post(session=session, incident=incident, text=text,
                                               key=f"step:{step.step_key}", now=self.clock.now())

    @staticmethod
    async def _lock_and_gate(session, step, recipient):
        """Lock the incident, then ask whether this recipient of ``step`` is still to be paged:
        (incident, the reason it is not — or None, its existing page — or None)."""
        incident = await service.lock_incident(session=session, incident_id=step.incident_id)
        stop_reason, existing = await service.page_gate(
            session=session, incident=incident, step_key=step.step_key,
            recipient=recipient.recipient, generation=step.generation, level=step.level,
            attempt=step.attempt)
        return incident, stop_reason, existing

    async def page_one(
        self, step: Step, recipient: Recipient, *, summarise_after: list[Page] | None = None
    ) -> tuple[Incident, Page] | Deferred | None:
        """Page one recipient of a step at most once, and never once the level is stopped.

        Returns the incident and the page row (new, or found when this recipient was
        paged already), :class:`Deferred` when the send was put off, or None when the
        step no longer pages. With ``summarise_after`` (the step's earlier pages) this
        is the step's last recipient: the line for the incident channel is enqueued in
        the same transaction as its page.
        """
        # 1. The claim: committed before anything is sent, so it survives a crash mid-send.
        async with transaction(self.sessions) as session:
            incident, stop_reason, existing = await self._lock_and_gate(session, step, recipient)
            if stop_reason is not None:
                return None
            if existing is None and recipient.problem is not None:  # nobody to send to
                now = self.clock.now()
                existing = await self._record(session, incident, step, recipient, PageOutcome.FAILED,
                                              recipient.problem, started=now)
            if existing is not None:
                return await self._finish(session, incident, step, existing, summarise_after)
            attempt = await service.claim_page_attempt(
                session=session, incident=incident, step_key=step.step_key,
                recipient=recipient.recipient, now=self.clock.now())
            attempt_id = attempt.id
        # 2. The send, under the incident's row lock, recorded in the same transaction.
        async with transaction(self.sessions) as session:
            incident, stop_reason, existing = await self._lock_and_gate(session, step, recipient)
            if stop_reason is not None:
                return None
            if existing is not None:  # another worker paged this recipient meanwhile
                return await self._finish(session, incident, step, existing, summarise_after)
            attempt = await service.get_page_attempt(session=session, attempt_id=attempt_id)
            started = self.clock.now()
            # Another claim than ours (a crashed or put-off try, or a worker running
            # the same level) may have delivered the page: the pager looks first.
            request = self._request(incident, step, started, page_key=attempt.key,
                                    maybe_sent=attempt.sends > 1)
            provider_ids: dict[str, Any] = {}
            try:
                result = await pager_for(self.pagers, recipient.recipient).page(recipient.recipient, request)
            except PagerError as exc:
                if exc.transient and attempt.deferrals < MAX_DEFERRALS:
                    count = await service.defer_page_attempt(session=session, attempt=attempt,
                                                             detail=exc.detail, now=self.clock.now())
                    delay = self._defer_delay(exc, count)
                    log.warning("%s: page to %s put off for %s (%d/%d): %s", incident.key,
                                recipient.recipient, delay, count, MAX_DEFERRALS, exc.detail)
                    return Deferred(recipient.recipient, delay, exc.detail)
                outcome, detail = PageOutcome.FAILED, exc.detail
                if attempt.deferrals:
                    detail += f" (gave up after {attempt.deferrals + 1} tries)"
            else:
                kind = recipient.recipient.partition(":")[0]
                outcome = PageOutcome.DELIVERED if kind in service.SLACK_RECIPIENTS else PageOutcome.SENT
                detail, provider_ids = result.detail, dict(result.provider_ids)
            page = await self._record(session, incident, step, recipient, outcome, detail, started=started,
                                      provider_ids=provider_ids)
            return await self._finish(session, incident, step, page, summarise_after)

    async def _finish(self, session, incident: Incident, step: Step, page: Page,
                      summarise_after: list[Page] | None) -> tuple[Incident, Page]:
        if summarise_after is not None:
            await self._enqueue_summary(session, incident, step, [*summarise_after, page])
        return incident, page

    @staticmethod
    def _defer_delay(error: PagerError, count: int) -> timedelta:
        if error.retry_after is not None:
            delay = timedelta(seconds=error.retry_after)
        else:
            delay = DEFER_BACKOFF * (2 ** (count - 1))
        return min(DEFER_MAX, max(DEFER_MIN, delay))

    async def _record(self, session, incident: Incident, step: Step, recipient: Recipient,
                      outcome: PageOutcome, detail: str, *, started: datetime,
                      provider_ids: dict[str, Any] | None = None) -> Page:
        return await service.record_page(
            session=session, incident=incident, step_key=step.step_key, generation=step.generation,
            level=step.level, attempt=step.attempt, target=recipient.target,
            recipient=recipient.recipient, outcome=outcome, detail=detail, due_at=step.due_at,
            sent_at=started, now=self.clock.now(), provider_ids=provider_ids or {},
            message=step.message, actor=step.actor,
        )

    def _request(self, incident: Incident, step: Step, now: datetime, actor: str | None = None, *,
                 page_key: str | None = None, maybe_sent: bool = False) -> PageRequest:
        return PageRequest(
            incident_number=incident.number, incident_title=incident.title, severity=incident.severity,
            timestamp=now, level=step.level or 0, repeat=step.attempt, message=step.message,
            channel_id=incident.channel_id, actor=actor, manual=step.manual,
            paged_by=step.actor if step.manual else None, page_key=page_key, maybe_sent=maybe_sent,
        )

    async def resolve_targets(self, targets: list[str], *, at: datetime) -> list[Recipient]:
        """Turn targets into recipients: ``oncall:`` → who is on call at ``at``, ``group:`` → its members.

        A recipient reached through two targets of the same step is paged once.
        """
        found: dict[str, Recipient] = {}
        for text in targets:
            for recipient in await self._resolve_one(text, at):
                key = recipient.recipient if recipient.problem is None else f"{recipient.recipient}!"
                found.setdefault(key, recipient)
        return list(found.values())

    async def _resolve_one(self, text: str, at: datetime) -> list[Recipient]:
        try:
            target = Target.parse(text)
        except ValueError as exc:
            return [Recipient(text, text, str(exc))]
        if target.kind is TargetKind.ONCALL:
            rotation = self.playbooks.rotations.get(target.value)
            if rotation is None:
                return [Recipient(text, text, f"there is no rotation `{target.value}` in oncall.yaml")]
            role = target.role or OnCallRole.PRIMARY
            user = on_call(rotation, at).user(role)
            if user is None:
                when = at.astimezone(rotation.zone).strftime("%Y-%m-%d %H:%M %Z")
                return [Recipient(text, text, f"nobody is {role} on call in `{target.value}` at {when}")]
            return [Recipient(text, f"user:{user}")]
        if target.kind is TargetKind.GROUP:
            pager = self.pagers.get("group")
            if isinstance(pager, SlackGroupPager):
                try:
                    members = await pager.members(target.value, text)
                except PagerError as exc:
                    return [Recipient(text, text, exc.detail)]
                if not members:
                    return [Recipient(text, text, f"user group {target.value} has no members")]
                return [Recipient(text, f"user:{member}") for member in members]
        return [Recipient(text, str(target))]

    # --- deadlines and reminders -------------------------------------------------------------

    async def response_check(self, job: Job) -> None:
        async with transaction(self.sessions) as session:
            incident = await service.lock_incident(session=session, incident_id=job.incident_id)
            text = await service.check_response_deadline(
                session=session, incident=incident, matrix=self.playbooks.escalation, now=self.clock.now())
            if text:
                await service.enqueue_channel_post(session=session, incident=incident, text=text,
                                                   key=f"response:{job.id}", now=self.clock.now())

    async def status_reminder(self, job: Job) -> None:
        since = job.payload.get("since")
        async with transaction(self.sessions) as session:
            incident = await service.lock_incident(session=session, incident_id=job.incident_id)
            text = await service.status_reminder_step(
                session=session, incident=incident, matrix=self.playbooks.escalation,
                now=self.clock.now(), since=datetime.fromisoformat(since) if since else None)
            if text:
                await service.enqueue_channel_post(session=session, incident=incident, text=text,
                                                   key=f"status:{job.id}", now=self.clock.now())

    # --- mirroring ---------------------------------------------------------------------------

    async def mirror(self, job: Job) -> None:
        """Acknowledge/resolve at PagerDuty and Opsgenie, and close the Acknowledge buttons in Slack."""
        action = job.payload["action"]
        actor = job.payload.get("actor")
        async with self.sessions() as session:
            incident = await session.get(Incident, job.incident_id)
            recipients = await service.provider_recipients_to_mirror(
                session=session, incident_id=incident.id, action=action)
            # Sends that may have reached PagerDuty/Opsgenie before a crash, never recorded.
            unrecorded = [r for r in await service.unrecorded_provider_attempts(
                session=session, incident_id=incident.id) if r not in recipients]
            slack_pages = (await service.slack_pages_to_close(session=session, incident_id=incident.id)
                           if action == "acknowledge" else [])
        request = PageRequest(
            incident_number=incident.number, incident_title=incident.title, severity=incident.severity,
            timestamp=self.clock.now(), channel_id=incident.channel_id, actor=actor,
        )
        transient: list[str] = []
        for recipient in unrecorded:
            try:
                pager = pager_for(self.pagers, recipient)
                await (pager.acknowledge if action == "acknowledge" else pager.resolve)(recipient, request)
            except PagerError as exc:
                if exc.transient:
                    transient.append(exc.detail)
                else:
                    log.warning("%s: could not %s a possibly sent page at %s: %s", incident.key, action,
                                recipient, exc.detail)
        for recipient in recipients:
            error = None
            try:
                pager = pager_for(self.pagers, recipient)
                await (pager.acknowledge if action == "acknowledge" else pager.resolve)(recipient, request)
            except PagerError as exc:
                if exc.transient:
                    transient.append(exc.detail)
                    continue  # retried with the job
                error = exc.detail
            async with transaction(self.sessions) as session:
                current = await session.get(Incident, incident.id)
                await service.record_mirrored(session=session, incident=current, recipient=recipient,
                                              action=action, now=self.clock.now(), error=error)
        acknowledged_by = incident.acknowledged_by or actor or "someone"
        for page in slack_pages:
            await self._close_slack_page(incident, page, acknowledged_by)
        if transient:
            raise RuntimeError("; ".join(transient))

    async def _close_slack_page(self, incident: Incident, page: Page, acknowledged_by: str) -> None:
        step = Step(incident.id, page.step_key, page.generation, page.level, page.attempt, page.due_at,
                    message=page.message, actor=page.paged_by)
        request = self._request(incident, step, page.sent_at)
        try:
            await self.slack.chat_update(
                channel=page.provider_ids["channel"], ts=page.provider_ids["ts"],
                text=page_fallback_text(request),
                blocks=build_page_acknowledged_blocks(request, acknowledged_by))
        except SlackApiError as exc:
            log.warning("could not update page %s in Slack: %s", page.id, slack_error(exc))
        async with transaction(self.sessions) as session:
            await service.mark_slack_page_closed(session=session, page_id=page.id, now=self.clock.now())

    # --- channel -------------------------------------------------------------------------------

    async def channel_post(self, job: Job) -> None:
        async with self.sessions() as session:
            incident = await session.get(Incident, job.incident_id)
        if not incident.channel_id:
            if job.attempts >= CHANNEL_ATTEMPTS:
                log.warning("%s has no channel; dropped: %s", incident.key, job.payload["text"])
                return
            raise RetryLater(CHANNEL_RETRY, "the incident channel does not exist yet")
        try:
            await self.slack.chat_postMessage(channel=incident.channel_id, text=job.payload["text"])
        except SlackApiError as exc:
            if slack_error(exc) != "not_in_channel":
                raise
            await self.slack.conversations_join(channel=incident.channel_id)
            await self.slack.chat_postMessage(channel=incident.channel_id, text=job.payload["text"])


def build_request_for(incident: Incident, *, level: int, attempt: int, now: datetime,
                      message: str | None = None, page: Page | None = None) -> PageRequest:
    """The PageRequest of a page of ``incident`` (for rebuilding a DM after its button was pressed).

    With ``page`` (its row), a manual page is rebuilt as one (``level``/``attempt`` are ignored).
    """
    manual = page is not None and page.level is None
    return PageRequest(incident_number=incident.number, incident_title=incident.title,
                       severity=incident.severity, timestamp=now, level=0 if manual else level,
                       repeat=0 if manual else attempt, message=message, channel_id=incident.channel_id,
                       manual=manual, paged_by=page.paged_by if manual else None)
