"""The durable jobs of a rollback: trigger once, follow to live, check health, tell Slack.

- ``rollback.trigger`` — after Confirm. Re-checks that what is live is still what
  the preview showed, records (and commits) that the provider is about to be asked,
  then asks ONCE. An ambiguous answer (timeout, reset, 5xx) is never retried:
  the provider's state is read (``find_triggered``) and, when nothing shows up
  after a few reads, the rollback fails saying so. A retry of this job — after a
  crash, on another replica — that finds the attempt recorded reads the
  provider's state first, too.
- ``rollback.follow`` — holds the :class:`RollbackHandle` in its payload; polls the
  provider until it is live (or failed), then samples the health check one request
  per run until it answered ``expect_status`` for ``settle``. Between runs it is a
  pending job (``RetryLater``), so nothing blocks, a restarted process resumes it,
  and tests drive it with a manual clock.
- ``rollback.expire`` — an unconfirmed preview expires.
- ``rollback.slack`` — posts each step in the preview's thread, in order, and
  updates the preview in place.

The incident card gets a "Rollbacks" section: :meth:`RollbackFlow.sync_card` wraps
the core's ``slack.sync_card`` job.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import or_, update

from bot.clock import Clock
from bot.db.engine import SessionMaker, transaction
from bot.incidents.models import Incident
from bot.jobs.models import Job
from bot.jobs.worker import RetryLater
from bot.playbooks.models import ServicePlaybook
from bot.providers import PROVIDERS, build_provider
from bot.providers.base import (
    AmbiguousTriggerError,
    InvalidTarget,
    ProviderError,
    ProviderNotConfigured,
    ProviderRejected,
    ProviderUnavailable,
    RollbackHandle,
    RollbackPlan,
    RollbackProvider,
    RollbackState,
)
from bot.providers.health import check_health
from bot.providers.http import RetryPolicy
from bot.rollback import blocks
from bot.rollback import service as rollbacks
from bot.rollback.models import Rollback, RollbackStatus
from bot.slack.client import slack_error

log = logging.getLogger(__name__)

JobHandler = Callable[[Job], Awaitable[None]]


class RollbackFlow:
    # Timings (attributes so that a deployment or a test may change them).
    progress_interval = timedelta(seconds=3)  # between provider polls (ROLLBACK_POLL_SECONDS)
    follow_timeout = timedelta(minutes=30)  # not live by then: failed (the provider may still finish)
    trigger_deadline = timedelta(minutes=10)  # provider unreachable that long after Confirm: failed
    trigger_max_attempts = 3  # sends, only after answers that prove nothing was applied (429, refused)
    ambiguous_checks = 3  # reads of the provider's state after an ambiguous trigger
    ambiguous_recheck = timedelta(seconds=10)
    max_health_interval = timedelta(seconds=10)
    max_health_grace = timedelta(seconds=60)  # failures this soon after live: still warming up
    slack_lease = timedelta(seconds=60)

    def __init__(
        self,
        *,
        sessions: SessionMaker,
        clock: Clock,
        settings: Any,
        playbooks: Any,
        slack: AsyncWebClient,
        http: Callable[[], aiohttp.ClientSession | None],
        worker_id: str = "rollback",
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.playbooks = playbooks
        self.slack = slack
        self._http = http
        self._providers: dict[tuple[str, int], RollbackProvider] = {}
        self.worker_id = worker_id
        self.wake = wake  # new steps wait as Slack jobs: wake the worker to post them now
        # Settings ROLLBACK_POLL_SECONDS and WORKER_LEASE_SECONDS (README "Configuration"):
        # the lock on a rollback's Slack thread lasts no longer than the job holding it.
        poll = getattr(settings, "rollback_poll_seconds", None)
        if isinstance(poll, (int, float)) and poll > 0:
            self.progress_interval = timedelta(seconds=poll)
        lease = getattr(settings, "worker_lease_seconds", None)
        if isinstance(lease, (int, float)) and lease > 0:
            self.slack_lease = min(self.slack_lease, timedelta(seconds=lease))
        # Provider reads wait through the injected clock (a manual clock in tests).
        self.retry = RetryPolicy(sleep=clock.sleep)
        # PyGithub pauses between writes (GitHub's advice for content-creating calls).
        self.github_seconds_between_writes: float | None = 1.0

    # -- wiring

    def handlers(self) -> dict[str, JobHandler]:
        return {
            rollbacks.TRIGGER_JOB: self._waking(self.run_trigger),
            rollbacks.FOLLOW_JOB: self._waking(self.run_follow),
            rollbacks.EXPIRE_JOB: self._waking(self.run_expire),
            rollbacks.SLACK_JOB: self.run_slack,
        }

    def _waking(self, handler: JobHandler) -> JobHandler:
        """Run ``handler``, then wake the worker: the steps it recorded wait as Slack jobs."""
        async def run(job: Job) -> None:
            try:
                await handler(job)
            finally:
                self.wake()
        return run

    @property
    def http(self) -> aiohttp.ClientSession:
        session = self._http()
        if session is None:
            raise RuntimeError("the runtime has not started: no HTTP session for the providers")
        return session

    def provider_for(self, playbook: ServicePlaybook) -> RollbackProvider:
        """The playbook's provider (raises ProviderNotConfigured without its token)."""
        kind = playbook.provider.type
        key = (kind, id(self.http))
        if key not in self._providers:
            if kind == "github-actions":
                cls = PROVIDERS[kind]
                self._providers[key] = cls(
                    api_url=str(self.settings.github_api_url), token=self.settings.github_token,
                    clock=self.clock, retry=self.retry,
                    seconds_between_writes=self.github_seconds_between_writes)
            else:
                self._providers[key] = build_provider(kind, self.settings, self.http, self.clock, retry=self.retry)
        return self._providers[key]

    def playbook(self, service: str) -> ServicePlaybook | None:
        return self.playbooks.services.get(service)

    # -- helpers

    async def _load(self, rollback_id: int) -> Rollback:
        async with self.sessions() as session:
            return await rollbacks.get_rollback(session=session, rollback_id=rollback_id)

    async def _fail(self, rollback_id: int, *, reason: str, text: str, only_from: set[RollbackStatus]) -> None:
        async with transaction(self.sessions) as session:
            rollback = await rollbacks.get_rollback(session=session, rollback_id=rollback_id, for_update=True)
            if RollbackStatus(rollback.state) not in only_from:
                return
            await rollbacks.finish(session=session, rollback=rollback, state=RollbackStatus.FAILED,
                                   now=self.clock.now(), reason=reason, text=text)

    def _name(self, rollback: Rollback) -> str:
        return blocks.provider_label(rollback.provider)

    # -- rollback.trigger

    async def run_trigger(self, job: Job) -> None:
        rollback = await self._load(job.payload["rollback_id"])
        if rollback.state != RollbackStatus.TRIGGERING or rollback.handle:
            return
        triggering = {RollbackStatus.TRIGGERING}
        name = self._name(rollback)
        playbook = self.playbook(rollback.service)
        if playbook is None:
            await self._fail(rollback.id, reason="config", only_from=triggering,
                             text=f":x: `{rollback.service}` is no longer in the playbooks: nothing was rolled back.")
            return
        try:
            provider = self.provider_for(playbook)
        except ProviderNotConfigured as exc:
            await self._fail(rollback.id, reason="not_configured", only_from=triggering,
                             text=f":x: Nothing was rolled back: {exc.message}")
            return
        config = playbook.provider
        plan = RollbackPlan.from_dict(rollback.plan)
        now = self.clock.now()

        if rollback.trigger_attempted_at is not None:
            # Asked before (a retry, a restart, another replica): read the provider's state first.
            try:
                found = await provider.find_triggered(config, plan, since=rollback.trigger_attempted_at,
                                                      idempotency_key=rollback.idempotency_key)
            except ProviderUnavailable as exc:
                await self._trigger_retry_or_fail(rollback, exc)
                return
            except ProviderRejected as exc:
                await self._fail(rollback.id, reason="rejected", only_from=triggering,
                                 text=f":x: {name} refused to show whether the rollback started: {exc.message}. "
                                      f"Check {name}'s dashboard before trying again.")
                return
            if found is not None:
                await self._triggered(rollback.id, found, found=True)
                return
            if rollback.trigger_outcome == "unavailable" and rollback.trigger_attempts < self.trigger_max_attempts:
                pass  # the last answer proved nothing was applied: it may be asked again
            else:
                await self._ambiguous_recheck(rollback)
                return

        # What is live must still be what the preview showed.
        try:
            fresh = await provider.plan(config, to=plan.target.id)
        except InvalidTarget as exc:
            await self._fail(rollback.id, reason="stale", only_from=triggering,
                             text=f":x: Nothing was rolled back: {exc.message} Run `/rollback {rollback.service}` again.")
            return
        except ProviderRejected as exc:
            await self._fail(rollback.id, reason="rejected", only_from=triggering,
                             text=f":x: Nothing was rolled back: {exc.message}")
            return
        except ProviderUnavailable as exc:
            await self._trigger_retry_or_fail(rollback, exc)
            return
        if fresh.current.id != plan.current.id:
            await self._fail(rollback.id, reason="stale", only_from=triggering,
                             text=f":x: Nothing was rolled back: since the preview, the live deploy of "
                                  f"*{rollback.service}* changed from `{plan.current.id}` to `{fresh.current.id}`. "
                                  f"Run `/rollback {rollback.service}` again to see what is live now.")
            return

        async with transaction(self.sessions) as session:
            current = await rollbacks.get_rollback(session=session, rollback_id=rollback.id, for_update=True)
            if current.state != RollbackStatus.TRIGGERING or current.handle or \
                    current.trigger_attempts != rollback.trigger_attempts:
                return  # another worker is on it
            if not await rollbacks.claim_trigger_attempt(session=session, rollback=current, plan=fresh, now=now):
                return
        attempted_at = now
        try:
            handle = await provider.trigger(config, fresh, idempotency_key=rollback.idempotency_key,
                                            reason=rollback.reason)
        except AmbiguousTriggerError as exc:
            await self._record_problem(rollback.id, "ambiguous",
                                       f"{exc.message} Reading {name}'s state before anything else: "
                                       "Firebreak never sends a rollback twice.")
            try:
                found = await provider.find_triggered(config, fresh, since=attempted_at,
                                                      idempotency_key=rollback.idempotency_key)
            except ProviderError:
                found = None
            if found is not None:
                await self._triggered(rollback.id, found, found=True)
                return
            await self._ambiguous_recheck(await self._load(rollback.id))
            return
        except ProviderUnavailable as exc:
            await self._record_problem(rollback.id, "unavailable", f"{exc.message}")
            await self._trigger_retry_or_fail(await self._load(rollback.id), exc)
            return
        except ProviderRejected as exc:
            await self._fail(rollback.id, reason="rejected", only_from=triggering,
                             text=f":x: {name} refused the rollback of *{rollback.service}*: {exc.message} "
                                  "Nothing was rolled back.")
            return
        await self._triggered(rollback.id, handle)

    async def _triggered(self, rollback_id: int, handle: RollbackHandle, *, found: bool = False) -> None:
        async with transaction(self.sessions) as session:
            rollback = await rollbacks.get_rollback(session=session, rollback_id=rollback_id, for_update=True)
            if rollback.state != RollbackStatus.TRIGGERING or rollback.handle:
                return
            await rollbacks.record_triggered(session=session, rollback=rollback, handle=handle,
                                             now=self.clock.now(), found=found,
                                             first_poll_in=self.progress_interval)

    async def _record_problem(self, rollback_id: int, outcome: str, text: str) -> None:
        async with transaction(self.sessions) as session:
            rollback = await rollbacks.get_rollback(session=session, rollback_id=rollback_id, for_update=True)
            await rollbacks.record_trigger_problem(session=session, rollback=rollback, outcome=outcome,
                                                   text=text, now=self.clock.now())

    async def _ambiguous_recheck(self, rollback: Rollback) -> None:
        """Nothing found after an ambiguous trigger: read again later, then give up — never resend."""
        name = self._name(rollback)
        if rollback.trigger_checks + 1 >= self.ambiguous_checks:
            await self._fail(
                rollback.id, reason="ambiguous", only_from={RollbackStatus.TRIGGERING},
                text=f":x: Firebreak cannot tell whether {name} started the rollback of *{rollback.service}*: "
                     f"its answer was lost and the rollback does not show in {name}'s history after "
                     f"{rollback.trigger_checks + 1} reads. It was NOT sent again. Check {name}'s dashboard; "
                     f"if nothing happened, run `/rollback {rollback.service}` again.")
            return
        async with transaction(self.sessions) as session:
            await session.execute(update(Rollback).where(Rollback.id == rollback.id)
                                  .values(trigger_checks=Rollback.trigger_checks + 1))
        raise RetryLater(self.ambiguous_recheck, f"reading {name}'s state again after an ambiguous trigger")

    async def _trigger_retry_or_fail(self, rollback: Rollback, exc: ProviderUnavailable) -> None:
        now = self.clock.now()
        started = rollback.confirmed_at or now
        if now - started >= self.trigger_deadline or rollback.trigger_attempts >= self.trigger_max_attempts:
            await self._fail(rollback.id, reason="unavailable", only_from={RollbackStatus.TRIGGERING},
                             text=f":x: Nothing was rolled back: {exc.message} (gave up "
                                  f"{int((now - started).total_seconds())}s after Confirm).")
            return
        wait = max(5.0, min(exc.retry_after or 15.0, 120.0))
        raise RetryLater(timedelta(seconds=wait), exc.message)

    # -- rollback.follow

    async def run_follow(self, job: Job) -> None:
        rollback = await self._load(job.payload["rollback_id"])
        state = RollbackStatus(rollback.state)
        if state not in (RollbackStatus.ROLLING_BACK, RollbackStatus.CHECKING):
            return
        following = {RollbackStatus.ROLLING_BACK, RollbackStatus.CHECKING}
        playbook = self.playbook(rollback.service)
        name = self._name(rollback)
        if playbook is None:
            await self._fail(rollback.id, reason="config", only_from=following,
                             text=f":x: `{rollback.service}` left the playbooks while rolling back; Firebreak "
                                  f"stopped following it. Check {name}'s dashboard.")
            return
        now = self.clock.now()
        if state == RollbackStatus.ROLLING_BACK:
            handle = RollbackHandle.from_dict(job.payload.get("handle") or rollback.handle or {})
            try:
                provider = self.provider_for(playbook)
                progress = await provider.poll(playbook.provider, handle)
            except ProviderUnavailable as exc:
                async with transaction(self.sessions) as session:
                    current = await rollbacks.get_rollback(session=session, rollback_id=rollback.id, for_update=True)
                    await rollbacks.record_follow_error(session=session, rollback=current, error=exc.message, now=now)
                await self._follow_timeout_or_retry(rollback, exc.retry_after)
                return
            except ProviderRejected as exc:
                await self._fail(rollback.id, reason="provider_error", only_from=following,
                                 text=f":x: {name} refused to report the rollback's progress: {exc.message} "
                                      f"Firebreak stopped following it; check {name}'s dashboard.")
                return
            async with transaction(self.sessions) as session:
                current = await rollbacks.get_rollback(session=session, rollback_id=rollback.id, for_update=True)
                if current.state != RollbackStatus.ROLLING_BACK:
                    return
                if progress.state == RollbackState.LIVE:
                    await rollbacks.record_live(session=session, rollback=current, progress=progress,
                                                playbook=playbook, now=now)
                elif progress.state in (RollbackState.FAILED, RollbackState.CANCELED):
                    await rollbacks.finish(
                        session=session, rollback=current, state=RollbackStatus.FAILED, now=now,
                        reason="provider_failed",
                        text=f":x: Rollback of *{current.service}* FAILED at {name}: {progress.detail} "
                             f"`{current.current_id}` is probably still live; check {name}'s dashboard.",
                        data={"provider_status": progress.raw_status,
                              "provider_ids": dict(progress.provider_ids)})
                else:
                    await rollbacks.record_progress(session=session, rollback=current, progress=progress, now=now)
                state = RollbackStatus(current.state)
            if state == RollbackStatus.ROLLING_BACK:
                await self._follow_timeout_or_retry(rollback, None)
                return
            if state != RollbackStatus.CHECKING:
                return
            rollback = await self._load(rollback.id)
        await self._health_sample(rollback, playbook)

    async def _follow_timeout_or_retry(self, rollback: Rollback, retry_after: float | None) -> None:
        now = self.clock.now()
        since = rollback.triggered_at or now
        if now - since >= self.follow_timeout:
            name = self._name(rollback)
            await self._fail(rollback.id, reason="timeout", only_from={RollbackStatus.ROLLING_BACK},
                             text=f":x: The rollback of *{rollback.service}* is not live "
                                  f"{int((now - since).total_seconds() // 60)} minutes after {name} accepted it "
                                  f"(last state: {rollback.provider_status or 'unknown'}). Firebreak stopped "
                                  f"following it; check {name}'s dashboard.")
            return
        wait = self.progress_interval.total_seconds()
        if retry_after:
            wait = max(wait, min(retry_after, 120.0))
        raise RetryLater(timedelta(seconds=wait), "following the rollback")

    def health_timing(self, playbook: ServicePlaybook) -> tuple[timedelta, timedelta]:
        """(interval between samples, grace after live) for the playbook's ``settle``: failures
        in the first minute after live are warm-up, whatever ``settle`` is (README)."""
        settle = playbook.health_check.settle if playbook.health_check else timedelta(0)
        interval = max(timedelta(seconds=1), min(self.max_health_interval, settle / 6))
        return interval, self.max_health_grace

    async def _health_sample(self, rollback: Rollback, playbook: ServicePlaybook) -> None:
        check = playbook.health_check
        if check is None:  # record_live finished it already
            return
        interval, grace = self.health_timing(playbook)
        result = await check_health(self.http, url=check.url, expect_status=check.expect_status,
                                    timeout=check.timeout, settle=0, clock=self.clock, interval=1.0)
        sample = result.samples[-1]
        detail = f"answered HTTP {sample.status}" if sample.status is not None else f"gave no answer ({sample.error})"
        async with transaction(self.sessions) as session:
            current = await rollbacks.get_rollback(session=session, rollback_id=rollback.id, for_update=True)
            if current.state != RollbackStatus.CHECKING:
                return
            outcome = await rollbacks.record_health_sample(
                session=session, rollback=current, playbook=playbook, ok=sample.ok, detail=detail,
                now=self.clock.now(), grace=grace)
        if outcome == "waiting":
            raise RetryLater(interval, "health check")

    # -- rollback.expire

    async def run_expire(self, job: Job) -> None:
        async with transaction(self.sessions) as session:
            rollback = await rollbacks.get_rollback(session=session, rollback_id=job.payload["rollback_id"],
                                                    for_update=True)
            if rollback.state == RollbackStatus.PREVIEW and rollback.expires_at > self.clock.now():
                raise RetryLater(rollback.expires_at - self.clock.now(), "not due yet")
            await rollbacks.expire(session=session, rollback=rollback, now=self.clock.now())

    # -- rollback.slack

    async def run_slack(self, job: Job) -> None:
        rollback_id = job.payload["rollback_id"]
        now = self.clock.now()
        async with transaction(self.sessions) as session:
            taken = await session.execute(
                update(Rollback)
                .where(Rollback.id == rollback_id,
                       or_(Rollback.slack_locked_until.is_(None), Rollback.slack_locked_until < now))
                .values(slack_locked_until=now + self.slack_lease, slack_locked_by=self.worker_id))
        if not taken.rowcount:
            raise RetryLater(timedelta(seconds=2), "another job is posting this rollback's steps")
        try:
            await self._post_steps(rollback_id)
        finally:
            async with transaction(self.sessions) as session:
                await session.execute(
                    update(Rollback).where(Rollback.id == rollback_id, Rollback.slack_locked_by == self.worker_id)
                    .values(slack_locked_until=None, slack_locked_by=None))

    async def _post_steps(self, rollback_id: int) -> None:
        posted_any = False
        while True:
            async with self.sessions() as session:
                rollback = await rollbacks.get_rollback(session=session, rollback_id=rollback_id)
                steps = await rollbacks.steps_of(session=session, rollback_id=rollback_id,
                                                 after=rollback.slack_posted)
                incident = await session.get(Incident, rollback.incident_id) if rollback.incident_id else None
            if not (rollback.channel_id and rollback.message_ts):
                if rollback.state == RollbackStatus.PREVIEW and steps:
                    raise RetryLater(timedelta(seconds=2), "the preview is not posted yet")
                return  # never posted (the preview failed): nothing to thread under
            if not steps:
                break
            for step in steps:
                final = step.step in blocks.FINAL_STEPS
                await self.slack.chat_postMessage(
                    channel=rollback.channel_id, thread_ts=rollback.message_ts, text=blocks.step_line(step),
                    reply_broadcast=final and step.step in ("succeeded", "failed"))
                if final and incident is not None and incident.channel_id and incident.channel_id != rollback.channel_id:
                    await self._post_quietly(incident.channel_id, f"{incident.key}: {blocks.step_line(step)}")
                async with transaction(self.sessions) as session:
                    await session.execute(update(Rollback).where(Rollback.id == rollback_id,
                                                                 Rollback.slack_posted < step.seq)
                                          .values(slack_posted=step.seq))
                posted_any = True
        if posted_any or rollback.state != RollbackStatus.PREVIEW:
            await self.update_preview(rollback_id)

    async def _post_quietly(self, channel: str, text: str) -> None:
        try:
            await self.slack.chat_postMessage(channel=channel, text=text)
        except SlackApiError as exc:
            log.warning("could not post a rollback outcome in %s: %s", channel, slack_error(exc))

    async def preview_payload(self, rollback_id: int) -> dict[str, Any]:
        """``text`` and ``blocks`` of the preview as it should look now."""
        async with self.sessions() as session:
            rollback = await rollbacks.get_rollback(session=session, rollback_id=rollback_id)
            approvers = await rollbacks.approvers_of(session=session, rollback_id=rollback_id)
            incident = await session.get(Incident, rollback.incident_id) if rollback.incident_id else None
            earlier = await rollbacks.rolled_back_from(session=session, service=rollback.service,
                                                       deploy_id=rollback.target_id, before=rollback.id)
            note = await rollbacks.incident_note(session=session, rollback=rollback)
        playbook = self.playbook(rollback.service)
        owners = rollbacks.owners_text(playbook) if playbook else "unknown"
        return {
            "text": blocks.preview_fallback(rollback),
            "blocks": blocks.preview_blocks(
                rollback, approvers=approvers, owners=owners, incident_key=incident.key if incident else None,
                now=self.clock.now(), zone=self.settings.display_zone, incident_note=note,
                brings_back=rollbacks.brings_back_text(rollback, earlier) if earlier else None),
        }

    async def update_preview(self, rollback_id: int) -> None:
        rollback = await self._load(rollback_id)
        if not (rollback.channel_id and rollback.message_ts):
            return
        payload = await self.preview_payload(rollback_id)
        await self.slack.chat_update(channel=rollback.channel_id, ts=rollback.message_ts, **payload)

    # -- the incident card

    async def card_section(self, session, incident: Incident, now) -> list:
        """The incident card's "Rollbacks" section (registered with the Slack effects)."""
        found = await rollbacks.rollbacks_of_incident(session=session, incident_id=incident.id)
        return blocks.card_blocks(found, now=now) if found else []
