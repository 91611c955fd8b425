"""Who the bot is at Slack (``auth.test``), learned in the background and remembered.

Bolt's single-workspace set-up asks ``auth.test`` on a request's path and, while Slack
answers 5xx, answers the request with an error instead of running it: an ``/incident
open`` typed during an outage, or reaching a bot just restarted by a deploy, would be
lost and nobody paged. Firebreak never asks Slack on a request's path. At start-up it
reads the identity stored by the last ``auth.test`` that succeeded, then asks Slack again
in the background, retrying transient failures until Slack answers, and stores the answer.
Requests handled in the meantime use what is known, or nothing: recording an incident and
paging do not need the bot's own user id.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from bot.clock import Clock
from bot.db.engine import SessionMaker, transaction
from bot.slack.client import slack_error
from bot.slack.models import SlackIdentity

log = logging.getLogger(__name__)

# Slack's answers that say "not now" rather than "never" (a bad token is never).
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout",
                              "ratelimited", "team_is_restricted"})


@dataclass(frozen=True)
class Identity:
    team_id: str
    user_id: str
    bot_id: str | None = None
    enterprise_id: str | None = None


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200) or 200
        return status >= 500 or status == 429 or slack_error(exc) in TRANSIENT_ERRORS
    return isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, OSError))


def _token_sha256(token: str | None) -> str | None:
    return hashlib.sha256(token.encode()).hexdigest() if token else None


class BotIdentity:
    """The bot's identity, known once Slack (or the database) has told it; never waited for."""

    def __init__(self, *, sessions: SessionMaker, client: AsyncWebClient, clock: Clock,
                 first_wait: float = 1.0, max_wait: float = 60.0) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.first_wait = first_wait
        self.max_wait = max_wait
        self._known: Identity | None = None
        self._task: asyncio.Task[Identity | None] | None = None

    @property
    def known(self) -> Identity | None:
        return self._known

    def for_team(self, team_id: str | None) -> Identity | None:
        """The identity, if it is this workspace's (a request names its workspace)."""
        known = self._known
        return known if known is not None and team_id in (None, known.team_id) else None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.learn(), name="slack identity")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def learn(self) -> Identity | None:
        """The stored identity first, then Slack's answer, asked until Slack gives one."""
        await self._load_stored()
        try:
            async for attempt in AsyncRetrying(
                    retry=retry_if_exception(_transient), reraise=True, sleep=asyncio.sleep,
                    wait=wait_exponential(multiplier=self.first_wait, max=self.max_wait),
                    before_sleep=self._waiting):
                with attempt:
                    return await self._ask_slack()
        except (TimeoutError, SlackApiError, aiohttp.ClientError, OSError) as exc:
            error = slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
            log.error("Slack refused auth.test (%s): check SLACK_BOT_TOKEN; Firebreak runs on, "
                      "but Slack will refuse what it sends", error)
        return None

    def known_user_id(self) -> str | None:
        """The bot user's id if it is known, without asking Slack (for a request's path)."""
        return self._known.user_id if self._known else None

    async def user_id(self) -> str | None:
        """The bot user's id, asking Slack once now if it is not known (never on a request's
        path: for work that runs after Slack has its answer)."""
        if self._known is None:
            try:
                await self._ask_slack()
            except (TimeoutError, SlackApiError, aiohttp.ClientError, OSError) as exc:
                log.warning("auth.test failed: %s",
                            slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__)
        return self._known.user_id if self._known else None

    def _waiting(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        error = slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
        level = logging.WARNING if state.attempt_number == 1 else logging.DEBUG
        log.log(level, "Slack did not answer auth.test (%s, attempt %d): asking again in %.1f s; "
                "requests are handled meanwhile", error, state.attempt_number,
                state.next_action.sleep if state.next_action else 0)

    async def _ask_slack(self) -> Identity:
        answer = await self.client.auth_test()
        identity = Identity(team_id=str(answer["team_id"]), user_id=str(answer["user_id"]),
                            bot_id=answer.get("bot_id"), enterprise_id=answer.get("enterprise_id"))
        await self._store(identity)
        self._known = identity
        return identity

    async def _load_stored(self) -> None:
        key = _token_sha256(self.client.token)
        if key is None or self._known is not None:
            return
        try:
            async with self.sessions() as session:
                stored = (await session.execute(
                    select(SlackIdentity).where(SlackIdentity.token_sha256 == key))).scalar_one_or_none()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not read the stored Slack identity: %s", type(exc).__name__)
            return
        if stored is not None and self._known is None:
            self._known = Identity(team_id=stored.team_id, user_id=stored.user_id, bot_id=stored.bot_id,
                                   enterprise_id=stored.enterprise_id)

    async def _store(self, identity: Identity) -> None:
        key = _token_sha256(self.client.token)
        if key is None:
            return
        try:
            async with transaction(self.sessions) as session:
                row = await session.get(SlackIdentity, key, with_for_update=True) or SlackIdentity(
                    token_sha256=key, team_id=identity.team_id, user_id=identity.user_id,
                    learned_at=self.clock.now())
                row.team_id, row.user_id = identity.team_id, identity.user_id
                row.bot_id, row.enterprise_id = identity.bot_id, identity.enterprise_id
                row.learned_at = self.clock.now()
                session.add(row)
        except IntegrityError:
            pass  # another replica stored it at the same moment
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not store the Slack identity: %s", type(exc).__name__)
