"""Small helpers shared by the listeners: replies, errors, de-duplication."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.response import BoltResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.incidents.commands import UsageError
from bot.incidents.service import IncidentError
from bot.jobs import service as jobs
from bot.runtime import Runtime

log = logging.getLogger("firebreak.handlers")

Reply = dict[str, Any]

OVERLOADED = (
    ":warning: Firebreak is overloaded right now, so nothing was done. Try again in a few "
    "seconds; if this is urgent, page people directly."
)

DATABASE_DOWN = (
    ":warning: Firebreak cannot reach its database right now, so nothing was changed. "
    "Try again in a minute; if this is urgent, page people directly."
)


class AlreadyHandled(Exception):
    """This Slack delivery (same trigger id or event id) was acted on before."""


async def ack_then(ack: Callable[..., Awaitable[Any]], rt: Runtime,
                   work: Callable[[], Awaitable[Any]], *, name: str,
                   refuse: Callable[[Reply], Awaitable[Any]] | None = None) -> None:
    """Answer Slack now and run ``work`` after the answer (``rt.background``).

    Bolt runs with ``process_before_response=True``: the HTTP answer leaves when the
    listener returns, so listeners return right after this. When too much work is
    waiting, nothing is started and the user is told: in the ack itself for a slash
    command (``refuse`` is None), through ``refuse`` otherwise.
    """
    if rt.background.saturated:
        log.warning("refused %s: %d requests are waiting", name, rt.background.pending)
        if refuse is None:
            await ack(response_type="ephemeral", text=OVERLOADED)
            return
        await ack()
        rt.background.spawn(lambda: refuse(ephemeral(OVERLOADED)), name=f"{name} (refused)")
        return
    await ack()
    rt.background.spawn(work, name=name)


async def ack_then_reply(ack: Callable[..., Awaitable[Any]], rt: Runtime,
                         respond: Callable[..., Awaitable[Any]],
                         action: Callable[[], Awaitable[Reply]], *, name: str) -> None:
    """For buttons: ack now, then run ``action`` (guarded) and answer the clicker.

    The response URL reaches the clicker even outside the channel's members.
    """
    async def reply(answer: Reply) -> None:
        await respond(replace_original=False, **answer)

    async def work() -> None:
        await reply(await guarded(action))

    await ack_then(ack, rt, work, name=name, refuse=reply)


def work_on_event(rt: Runtime, work: Callable[[], Awaitable[Any]], *, name: str) -> BoltResponse | None:
    """Events API: run ``work`` after the answer; when overloaded, answer 503 so that Slack
    delivers the event again later instead of it being dropped."""
    if rt.background.saturated:
        log.warning("deferred event %s: %d requests are waiting", name, rt.background.pending)
        return BoltResponse(status=503, body="overloaded; deliver again later")
    rt.background.spawn(work, name=name)
    return None


def ephemeral(text: str, **extra: Any) -> Reply:
    return {"response_type": "ephemeral", "text": text, **extra}


async def once(session: AsyncSession, rt: Runtime, key: str | None, kind: str) -> None:
    """Claim a delivery in the current transaction; raise AlreadyHandled on a repeat."""
    if key and not await jobs.claim_delivery(session=session, key=key, kind=kind,
                                             now=rt.clock.now()):
        raise AlreadyHandled()


async def guarded(action: Callable[[], Awaitable[Reply]]) -> Reply:
    """Turn refusals into a helpful ephemeral reply and never let an exception reach Slack."""
    try:
        return await action()
    except UsageError as exc:
        return ephemeral(str(exc))
    except IncidentError as exc:
        return ephemeral(f":no_entry: {exc}")
    except AlreadyHandled:
        return ephemeral("That request was already handled.")
    except (OperationalError, DBAPIError, ConnectionError, OSError) as exc:
        log.error("database unavailable: %s", type(exc).__name__)
        return ephemeral(DATABASE_DOWN)
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        log.exception("unexpected error %s", error_id)
        return ephemeral(f":warning: Something went wrong (error `{error_id}`); nothing was "
                         "half-done on purpose. Try again, or check Firebreak's logs.")
