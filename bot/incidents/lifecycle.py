"""In-transaction subscribers to timeline events.

Other concerns (escalation, the Slack adapter) subscribe here instead of the
incident service knowing about them. A subscriber runs inside the transaction
that records the event, so whatever it enqueues commits or rolls back with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

if TYPE_CHECKING:
    from bot.incidents.models import Incident, TimelineEvent

Subscriber = Callable[[AsyncSession, "Incident", "TimelineEvent", datetime], Awaitable[None]]

_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> Subscriber:
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)
    return subscriber


async def publish(
    session: AsyncSession, incident: Incident, event: TimelineEvent, now: datetime
) -> None:
    for subscriber in _subscribers:
        await subscriber(session, incident, event, now)
