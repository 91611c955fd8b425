"""Small helpers shared by the listeners: replies, errors, de-duplication."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.incidents.commands import UsageError
from bot.incidents.service import IncidentError
from bot.jobs import service as jobs
from bot.runtime import Runtime

log = logging.getLogger("firebreak.handlers")

Reply = dict[str, Any]

DATABASE_DOWN = (
    ":warning: Firebreak cannot reach its database right now, so nothing was changed. "
    "Try again in a minute; if this is urgent, page people directly."
)


class AlreadyHandled(Exception):
    """This Slack delivery (same trigger id or event id) was acted on before."""


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
