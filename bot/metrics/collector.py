"""Firebreak's metrics, read from the database and exposed through a custom collector."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import String, cast, func, or_, select

from bot.clock import utc
from bot.db.engine import SessionMaker
from bot.export.document import pager_of
from bot.incidents.models import EventKind, Incident, IncidentState, TimelineEvent
from bot.playbooks.models import Severity

log = logging.getLogger(__name__)

# Seconds: 1m, 5m, 10m, 15m, 30m, 1h, 2h, 4h, 8h, 1d, 2d (then +Inf).
DURATION_BUCKETS = (60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
                    86400.0, 172800.0)
PAGE_OUTCOMES = {EventKind.PAGE_SENT.value: "sent", EventKind.PAGE_DELIVERED.value: "delivered",
                 EventKind.PAGE_FAILED.value: "failed",
                 EventKind.PAGE_ACKNOWLEDGED.value: "acknowledged"}
# A rollback's timeline shows its steps; only its final state is counted, once.
ROLLBACK_OUTCOMES = {
    "completed": "succeeded", "succeeded": "succeeded", "success": "succeeded",
    "healthy": "succeeded", "done": "succeeded", "verified": "succeeded",
    "failed": "failed", "error": "failed", "unhealthy": "failed", "timed_out": "failed",
    "cancelled": "cancelled", "canceled": "cancelled", "refused": "cancelled",
    "expired": "expired",
}


@dataclass
class Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    count: int = 0
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        for index, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self.buckets[index] += 1

    def exposition(self) -> list[tuple[str, float]]:
        pairs = [(str(bound), float(n)) for bound, n in zip(DURATION_BUCKETS, self.buckets, strict=True)]
        return [*pairs, ("+Inf", float(self.count))]


@dataclass
class Snapshot:
    incidents: dict[tuple[str, str], int] = field(default_factory=dict)
    time_to_ack: dict[str, Histogram] = field(default_factory=dict)
    time_to_resolve: dict[str, Histogram] = field(default_factory=dict)
    pages: dict[tuple[str, str], int] = field(default_factory=dict)
    rollbacks: dict[tuple[str, str], int] = field(default_factory=dict)
    database_up: bool = False
    took: float = 0.0


async def read_snapshot(sessions: SessionMaker) -> Snapshot:
    snap = Snapshot()
    for severity in Severity:
        for state in IncidentState:
            snap.incidents[(severity.value, state.value)] = 0
        snap.time_to_ack[severity.value] = Histogram()
        snap.time_to_resolve[severity.value] = Histogram()
    async with sessions() as session:
        counted = await session.execute(
            select(Incident.severity, Incident.state, func.count(Incident.id))
            .group_by(Incident.severity, Incident.state))
        for severity, state, count in counted.all():
            snap.incidents[(str(severity.value), str(state.value))] = int(count)
        timed = await session.execute(
            select(Incident.severity, Incident.opened_at, Incident.acknowledged_at,
                   Incident.resolved_at)
            .where(or_(Incident.acknowledged_at.is_not(None), Incident.resolved_at.is_not(None))))
        for severity, opened, acked, resolved in timed.all():
            if acked is not None:
                snap.time_to_ack[severity.value].observe((utc(acked) - utc(opened)).total_seconds())
            if resolved is not None:
                snap.time_to_resolve[severity.value].observe(
                    (utc(resolved) - utc(opened)).total_seconds())
        columns = [TimelineEvent.data[name].as_string() for name in ("pager", "recipient", "target")]
        action = TimelineEvent.data["action"].as_string()
        paged = await session.execute(
            select(TimelineEvent.kind, *columns, func.count(TimelineEvent.id))
            .where(TimelineEvent.kind.in_(list(PAGE_OUTCOMES)), action.is_(None))
            .group_by(TimelineEvent.kind, *columns))
        for kind, pager_value, recipient, target_value, count in paged.all():
            pager = pager_of({"pager": pager_value, "recipient": recipient, "target": target_value})
            key = (pager, PAGE_OUTCOMES[kind])
            snap.pages[key] = snap.pages.get(key, 0) + int(count)
        # One rollback may write several steps in its final state: count rollbacks
        # (by rollback_id; an event without one counts alone), not events.
        provider = TimelineEvent.data["provider"].as_string()
        state = TimelineEvent.data["state"].as_string()
        rollback = func.coalesce(TimelineEvent.data["rollback_id"].as_string(),
                                 "event:" + cast(TimelineEvent.id, String))
        rolled = await session.execute(
            select(provider, func.lower(state), rollback)
            .where(TimelineEvent.kind == EventKind.ROLLBACK.value,
                   func.lower(state).in_(list(ROLLBACK_OUTCOMES)))
            .distinct())
        for provider_value, state_value, _rollback in rolled.all():
            key = (provider_value or "unknown", ROLLBACK_OUTCOMES[state_value])
            snap.rollbacks[key] = snap.rollbacks.get(key, 0) + 1
    snap.database_up = True
    return snap


class FirebreakCollector(Collector):
    """Serves the last snapshot; :meth:`refresh` reads a new one (at most every ``min_interval``)."""

    def __init__(self, sessions: SessionMaker, *, min_interval: float = 5.0) -> None:
        self.sessions = sessions
        self.min_interval = min_interval
        self.snapshot = Snapshot()
        self._taken = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._taken < self.min_interval:
                return
            started = time.monotonic()
            try:
                snap = await read_snapshot(self.sessions)
            except Exception as exc:  # noqa: BLE001 - /metrics must answer even then
                log.warning("metrics: database unavailable (%s)", type(exc).__name__)
                snap = Snapshot(database_up=False)
                # keep the last known figures rather than dropping the series
                snap.incidents, snap.pages = self.snapshot.incidents, self.snapshot.pages
                snap.rollbacks = self.snapshot.rollbacks
                snap.time_to_ack = self.snapshot.time_to_ack
                snap.time_to_resolve = self.snapshot.time_to_resolve
            snap.took = time.monotonic() - started
            self.snapshot = snap
            self._taken = time.monotonic()

    def describe(self) -> list[Metric]:
        return []  # no collect() at registration time: it needs the database

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        incidents = GaugeMetricFamily("firebreak_incidents", "Incidents by severity and state",
                                      labels=["severity", "state"])
        for (severity, state), count in sorted(snap.incidents.items()):
            incidents.add_metric([severity, state], count)
        yield incidents
        for name, helptext, data in (
            ("firebreak_incident_time_to_acknowledge_seconds",
             "Time from opening to the first acknowledgement, by severity", snap.time_to_ack),
            ("firebreak_incident_time_to_resolve_seconds",
             "Time from opening to resolution, by severity", snap.time_to_resolve),
        ):
            family = HistogramMetricFamily(name, helptext, labels=["severity"])
            for severity, histogram in sorted(data.items()):
                family.add_metric([severity], histogram.exposition(), histogram.total)
            yield family
        pages = CounterMetricFamily("firebreak_pages", "Pages by pager and outcome "
                                    "(sent, delivered, failed, acknowledged)",
                                    labels=["pager", "outcome"])
        for (pager, outcome), count in sorted(snap.pages.items()):
            pages.add_metric([pager, outcome], count)
        yield pages
        rollbacks = CounterMetricFamily("firebreak_rollbacks", "Finished rollbacks by provider "
                                        "and outcome", labels=["provider", "outcome"])
        for (provider, outcome), count in sorted(snap.rollbacks.items()):
            rollbacks.add_metric([provider, outcome], count)
        yield rollbacks
        yield GaugeMetricFamily("firebreak_metrics_database_up",
                                "1 if the last metrics read reached the database",
                                value=1 if snap.database_up else 0)
        yield GaugeMetricFamily("firebreak_metrics_read_seconds",
                                "Time the last metrics read took", value=snap.took)
