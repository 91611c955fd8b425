"""Benchmark: post-mortem export of 1,000, 10,000 and 100,000 timeline events.

    .venv/bin/python bench/export.py                      # SQLite in a temporary folder
    .venv/bin/python bench/export.py --database-url postgresql://postgres@127.0.0.1/bench
    .venv/bin/python bench/export.py --sizes 1000,10000

For each size it fills one incident's timeline (notes, pages, rollbacks, status
updates), then streams the Markdown and JSON exports into a byte counter and
reports the time taken and the peak Python memory (tracemalloc, measured in a
second run so that tracing does not slow the timed one). Memory stays flat as
the timeline grows: the export reads and writes one page of events at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from bot.clock import ManualClock
from bot.config import Settings
from bot.db.engine import create_engine, create_sessionmaker, transaction
from bot.db.migrate import upgrade_async
from bot.export import pipeline
from bot.export.names import Names
from bot.incidents import service as incidents
from bot.incidents.models import TimelineEvent
from bot.playbooks.models import Severity

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
USERS = ["U024BE7LH", "U0G9QF9C6", "U1H2J3K4L", "U2D4N5A6K"]


def _event(incident_id: int, n: int) -> dict:
    when = START + timedelta(seconds=n + 1)
    actor = USERS[n % len(USERS)]
    base = {"incident_id": incident_id, "occurred_at": when, "recorded_at": when, "actor": actor}
    if n % 50 == 0:
        return {**base, "kind": "page_delivered", "actor": "firebreak",
                "text": f"Paged <@{actor}> (oncall:backend, level {n % 3 + 1})",
                "data": {"target": "oncall:backend", "recipient": f"user:{actor}", "level": n % 3 + 1}}
    if n % 997 == 0:
        return {**base, "kind": "rollback", "text": "",
                "data": {"service": "api", "provider": "render", "from": f"dep-{n}",
                         "to": f"dep-{n - 1}", "state": "completed"}}
    if n % 10 == 0:
        return {**base, "kind": "status_update", "text": f"Update {n}: error rate {n % 37}%",
                "data": {}}
    return {**base, "kind": "note",
            "text": f"Note {n} from <@{actor}>: checked the dashboards, p99 latency {n % 900} ms",
            "data": {}}


async def _fill(sessions, size: int) -> int:
    clock = ManualClock(START)
    async with transaction(sessions) as session:
        opened = await incidents.open_incident(session=session, severity=Severity.P1,
                                               title=f"bench {size:,} events",
                                               reporter_id=USERS[0], now=clock.now(), service="api")
    incident_id = opened.incident.id
    for first in range(0, size - 1, 5000):
        rows = [_event(incident_id, n) for n in range(first, min(size - 1, first + 5000))]
        async with transaction(sessions) as session:
            await session.execute(insert(TimelineEvent), rows)
    return opened.incident.number


async def _export(exporter, number: int, fmt: str) -> int:
    written = 0

    def sink(block: bytes) -> None:
        nonlocal written
        written += len(block)

    await pipeline.write(exporter, number=number, fmt=fmt, sink=sink)
    return written


async def run(database_url: str, sizes: list[int]) -> list[tuple]:
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    settings = Settings(_env_file=None, database_url=database_url,
                        display_timezone="America/New_York")
    names = Names({u: f"user-{u[-4:].lower()}" for u in USERS})
    exporter = pipeline.Exporter(sessions=sessions, settings=settings, names=names,
                                 clock=ManualClock(START + timedelta(days=2)))
    results = []
    try:
        for size in sizes:
            started = time.perf_counter()
            number = await _fill(sessions, size)
            filled = time.perf_counter() - started
            for fmt in ("md", "json"):
                started = time.perf_counter()
                written = await _export(exporter, number, fmt)
                seconds = time.perf_counter() - started
                tracemalloc.start()
                await _export(exporter, number, fmt)
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                results.append((size, fmt, seconds, written, peak, filled))
                print(f"{size:>9,} events  {fmt:<4}  {seconds:7.2f} s  "
                      f"{written / 1e6:8.1f} MB written  peak {peak / 1e6:6.1f} MB "
                      f"(filled in {filled:.1f} s)", flush=True)
    finally:
        await engine.dispose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{folder}/bench.db"
        print(f"Post-mortem export benchmark on {url.split('://')[0]} "
              f"(Python {sys.version.split()[0]})")
        results = asyncio.run(run(url, sizes))
    print()
    print("| events | format | time | output | peak Python memory |")
    print("|---:|---|---:|---:|---:|")
    for size, fmt, seconds, written, peak, _ in results:
        print(f"| {size:,} | {fmt} | {seconds:.2f} s | {written / 1e6:.1f} MB | {peak / 1e6:.1f} MB |")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS over the whole run (filling included): {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
