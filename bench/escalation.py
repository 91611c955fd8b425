"""Escalation under load: delay from a level's due time to its page being sent.

Run: ``.venv/bin/python bench/escalation.py [--incidents 2000] [--levels 5] [--database-url URL]``

It opens ``incidents`` P1 incidents whose matrix has ``levels`` levels, each paging
``pagerduty:default`` (a local PagerDuty fake on 127.0.0.1), so that
``incidents × levels`` levels (10,000 by default) are pending in the database.
Then, while more incidents keep opening (``--open-rate`` a second), escalation
workers run them with the real clock: two engine instances with their own
connection pools when the database is PostgreSQL (as two ``firebreak serve``
replicas would), one on SQLite. Every level is a durable job; every page is
recorded with its due time and the moment its send started, which gives the
delay. At the end it checks that each level paged exactly once at the fake.

Without ``--database-url`` it uses a fresh PostgreSQL database when one is
reachable at ``$FIREBREAK_TEST_PG`` (the tests' server), else a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

from bot.clock import SystemClock
from bot.db.engine import create_engine, create_sessionmaker, transaction
from bot.db.migrate import upgrade_async
from bot.emulator.pagerduty import PagerDutyFake
from bot.escalation import service as escalation
from bot.escalation.engine import ESCALATION_RETRY, EscalationEngine
from bot.escalation.models import Page, PageOutcome
from bot.incidents import service as incidents
from bot.jobs.models import Job, JobState
from bot.jobs.worker import Worker
from bot.pagers.pagerduty import PagerDutyPager
from bot.playbooks.loader import load_playbooks
from bot.playbooks.models import Severity
from tests.support.databases import PG_ADMIN_DSN, drop_pg_database, new_pg_database

ROUTING_KEY = "b3nchb3nchb3nchb3nchb3nchb3nch00"


def write_playbooks(folder: Path, levels: int, first: int, gap: int) -> None:
    steps = "\n".join(f'    - {{after: {first + n * gap}s, notify: ["pagerduty:default"]}}'
                      for n in range(levels))
    single = '    - {after: 0m, notify: ["pagerduty:default"]}'
    (folder / "escalation.yaml").write_text(f"""\
severities:
  P0: {{name: Critical, meaning: Outage, respond_within: 1d}}
  P1: {{name: High, meaning: Broken, respond_within: 1d}}
  P2: {{name: Medium, meaning: Degraded, respond_within: 1d}}
  P3: {{name: Low, meaning: Cosmetic, respond_within: 1d}}
escalation:
  P0:
{single}
  P1:
{steps}
  P2:
{single}
  P3:
{single}
""")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(delays: list[float]) -> str:
    if not delays:
        return "no pages"
    return (f"median {statistics.median(delays) * 1000:7.1f} ms   p99 {percentile(delays, 0.99) * 1000:7.1f} ms"
            f"   max {max(delays) * 1000:7.1f} ms   ({len(delays):,} pages)")


async def count_levels(sessions, *, pending_only: bool = False) -> int:
    query = select(func.count()).select_from(Job).where(Job.kind == escalation.LEVEL)
    if pending_only:
        query = query.where(Job.state == JobState.PENDING.value)
    async with sessions() as session:
        return await session.scalar(query)


async def open_incident(sessions, clock, title: str) -> None:
    async with transaction(sessions) as session:
        await incidents.open_incident(session=session, severity=Severity.P1, title=title,
                                      reporter_id="U0BENCH00", now=clock.now())


async def run(args: argparse.Namespace, url: str) -> None:
    clock = SystemClock()
    is_pg = url.startswith("postgresql")
    await upgrade_async(url)
    with tempfile.TemporaryDirectory() as folder:
        write_playbooks(Path(folder), args.levels, args.first_after, args.gap)
        playbooks = load_playbooks(folder)
    async with PagerDutyFake(routing_keys={ROUTING_KEY}) as pd, aiohttp.ClientSession() as http:
        pager = PagerDutyPager(http, pd.url, {"default": SecretStr(ROUTING_KEY)}, retry=ESCALATION_RETRY)
        processes = []
        for index in range(args.engines or (2 if is_pg else 1)):
            db = create_engine(url)
            sessions = create_sessionmaker(db)
            engine = EscalationEngine(sessions=sessions, clock=clock, playbooks=playbooks,
                                      slack=AsyncWebClient(base_url="http://127.0.0.1:9/api/"),
                                      pagers={"pagerduty": pager})
            worker = Worker(sessions=sessions, clock=clock, poll_seconds=args.poll,
                            concurrency=args.concurrency, worker_id=f"bench-{index}")
            for kind in (escalation.PLAN, escalation.LEVEL):  # no Slack in this bench
                worker.register(kind, engine.handlers()[kind])
            processes.append((db, sessions, worker))
        sessions = processes[0][1]
        for _, _, worker in processes:
            worker.start()

        print(f"database: {'PostgreSQL' if is_pg else 'SQLite'}, {len(processes)} engine instance(s), "
              f"{args.concurrency} concurrent jobs each, poll {args.poll:g}s")
        print(f"matrix: P1 with {args.levels} levels at "
              f"{', '.join(f'+{args.first_after + n * args.gap}s' for n in range(args.levels))}, "
              "each paging pagerduty:default")
        started = time.monotonic()
        for number in range(args.incidents):
            await open_incident(sessions, clock, f"bench incident {number}")
        while await count_levels(sessions) < args.incidents * args.levels:
            await asyncio.sleep(0.1)  # the plan jobs are still enqueueing levels
        scheduled = await count_levels(sessions)
        pending = await count_levels(sessions, pending_only=True)
        print(f"opened {args.incidents:,} incidents in {time.monotonic() - started:.1f}s: "
              f"{scheduled:,} levels scheduled, {pending:,} of them still pending")

        # Keep opening incidents until every level of the first batch has been sent.
        opened_during = 0
        first_batch = args.incidents
        deadline = time.monotonic() + args.first_after + args.gap * args.levels + 300
        while time.monotonic() < deadline:
            await open_incident(sessions, clock, f"bench incident {first_batch + opened_during}")
            opened_during += 1
            async with sessions() as session:
                done = await session.scalar(select(func.count()).select_from(Page).where(
                    Page.incident_id <= first_batch))
            if done >= first_batch * args.levels:
                break
            await asyncio.sleep(1 / args.open_rate)
        await asyncio.sleep(2)  # let in-flight pages of the newest incidents land
        for _, _, worker in processes:
            await worker.stop()
        elapsed = time.monotonic() - started

        async with sessions() as session:
            pages = list(await session.scalars(select(Page)))
        for db, _, _ in processes:
            await db.dispose()

    first = [(p.sent_at - p.due_at).total_seconds() for p in pages if p.incident_id <= first_batch]
    later = [(p.sent_at - p.due_at).total_seconds() for p in pages if p.incident_id > first_batch]
    failed = sum(p.outcome == PageOutcome.FAILED for p in pages)
    triggers = Counter(r.json["dedup_key"] for r in pd.requests if r.json and r.json.get("event_action") == "trigger")
    per_incident = Counter(p.incident_id for p in pages)
    duplicates = sum(count - 1 for count in Counter((p.incident_id, p.step_key) for p in pages).values())
    missed = sum(args.levels - per_incident[i] for i in range(1, first_batch + 1))
    dues = sorted(p.due_at.timestamp() for p in pages if p.incident_id <= first_batch)
    busiest = max((bisect.bisect_left(dues, d + 10) - i for i, d in enumerate(dues)), default=0) / 10
    print(f"ran {elapsed:.0f}s; {opened_during} more incidents opened meanwhile ({args.open_rate:g}/s); "
          f"levels fell due at up to {busiest:.0f}/s (busiest 10 s)")
    print(f"due → send, the {first_batch * args.levels:,} scheduled levels: {describe(first)}")
    print(f"due → send, levels of incidents opened during the run: {describe(later)}")
    print(f"pages: {len(pages):,} recorded, {sum(triggers.values()):,} triggers at the PagerDuty fake, "
          f"{failed} failed, {duplicates} duplicate, {missed} missed of the scheduled levels")


async def fresh_pg_database() -> str | None:
    try:
        return await new_pg_database("fb_bench")
    except (OSError, asyncpg.PostgresError):
        return None


async def main(args: argparse.Namespace) -> None:
    if args.database_url:
        await run(args, args.database_url)
        return
    name = None if args.sqlite else await fresh_pg_database()
    if name is None:
        with tempfile.TemporaryDirectory() as tmp:
            await run(args, f"sqlite+aiosqlite:///{tmp}/bench.db")
        return
    base = PG_ADMIN_DSN.rpartition("/")[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        await run(args, f"{base}/{name}")
    finally:
        await drop_pg_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=2000)
    parser.add_argument("--levels", type=int, default=5)
    parser.add_argument("--first-after", type=int, default=60, help="seconds to the first level")
    parser.add_argument("--gap", type=int, default=45, help="seconds between levels")
    parser.add_argument("--open-rate", type=float, default=2.0, help="incidents a second during the run")
    parser.add_argument("--engines", type=int, default=0, help="engine instances (default 2 on PostgreSQL)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--poll", type=float, default=0.1, help="worker poll interval when idle")
    parser.add_argument("--database-url")
    parser.add_argument("--sqlite", action="store_true", help="use SQLite even if PostgreSQL is reachable")
    asyncio.run(main(parser.parse_args()))
