"""An incident storm: 1,000 ``/incident open`` in 60 s with Slack retries and a rate-limited
Slack, then checks that exactly one incident, channel and first-level page came of each.

Run: ``.venv/bin/python bench/storm.py [--incidents 1000 --seconds 60]
[--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--only single|replicas]``

Part ``single``: one ``firebreak serve`` on a fresh SQLite database. Part ``replicas``: two
``firebreak serve`` processes on one fresh PostgreSQL database (created on the server of
``--database-url``, dropped after), requests dealt round-robin (a retry goes to the other
process). In both: the opens (``P0 service:api``: level 1 pages ``pagerduty:default``)
are sent evenly over ``--seconds``; 5% of deliveries are sent again as Slack retries (same
body and signature, ``X-Slack-Retry-Num: 1``, ``X-Slack-Retry-Reason: http_timeout``), half
of them while the first is in flight and half after its answer; the fake Slack (the
project's emulator, its own process) answers 429 with ``Retry-After: 1`` to 10% of
``conversations.create`` calls; the PagerDuty fake runs in this process.

Afterwards (waiting at most ``--settle`` seconds for the work after the acks) it checks and
prints: incidents in the database, incident channels at the fake Slack, first-level pages
at the PagerDuty fake (distinct incidents and total requests), the slowest answer (< 3 s),
non-200 answers, acks refusing the work, and ERROR/Traceback lines in the bots' logs.
Exit status 1 if any check fails. Full run: about 3 to 4 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    INCIDENT_CHANNEL,
    CommandFields,
    Process,
    Sample,
    as_retry,
    client_session,
    count_rows,
    delays_ms,
    fake_slack_stats,
    first_page_arrivals,
    fresh_database,
    incidents_by_request,
    latency_line,
    open_loop,
    post,
    signed_command,
    start_fake_slack,
    start_firebreak,
    timed_pagerduty,
    wait_until,
    workdir,
)

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TITLE = re.compile(r"storm incident (\d+)$")
SLACK_DEADLINE_MS = 3000


class RoundRobin:
    def __init__(self, servers: list[Process]) -> None:
        self.urls = [s.base_url + "/slack/events" for s in servers]
        self.next = 0

    def url(self) -> str:
        url = self.urls[self.next % len(self.urls)]
        self.next += 1
        return url


async def send_storm(servers: list[Process], fields: CommandFields, http,
                     args: argparse.Namespace) -> list[list[Sample]]:
    """The deliveries of each open (the first, then its retry if any), by request index."""
    rng = random.Random(args.seed)
    retried = rng.sample(range(args.incidents), round(args.incidents * args.retry_fraction))
    in_flight, after = set(retried[: len(retried) // 2]), set(retried[len(retried) // 2:])
    deal = RoundRobin(servers)

    async def fire(i: int) -> list[Sample]:
        request = signed_command(await fields.take(f"open P0 service:api storm incident {i}"))
        first = asyncio.create_task(post(http, deal.url(), request))
        if i in in_flight:  # Slack gave up waiting and redelivers while the bot still works
            await asyncio.sleep(rng.uniform(0.0, 0.05))
            return [await first, await post(http, deal.url(), as_retry(request))]
        if i in after:  # the answer was lost on the way back: redelivered after it
            done = await first
            await asyncio.sleep(rng.uniform(0.1, 2.0))
            return [done, await post(http, deal.url(), as_retry(request))]
        return [await first]

    return await open_loop(args.incidents, args.seconds, fire)


def count_outcomes(stats: dict, pd) -> dict[str, int]:
    numbers = [int(m.group(1)) for name in stats["channels"] if (m := INCIDENT_CHANNEL.match(name))]
    triggers = [event.get("dedup_key") for _, event in pd.arrivals if event.get("event_action") == "trigger"]
    creates = stats["calls"].get("conversations.create", {})
    return {"channels": len(numbers), "distinct channel incidents": len(set(numbers)),
            "page requests": len(triggers), "paged incidents": len(set(triggers)),
            "conversations.create 429": creates.get("ratelimited", 0),
            "conversations.create total": sum(creates.values())}


async def run_part(name: str, replicas: int, server_url: str | None, args: argparse.Namespace,
                   scratch: str) -> bool:
    slack = await start_fake_slack(workdir=scratch, rate_limits={"conversations.create": args.rate_limit_fraction})
    pd = timed_pagerduty()
    await pd.start()
    servers: list[Process] = []
    try:
        async with fresh_database(server_url, scratch, bot_src=args.bot_src) as url, client_session() as http:
            for n in range(replicas):
                servers.append(await start_firebreak(slack_api_url=slack.base_url + "/api/", database_url=url,
                                                     workdir=scratch, pagerduty_url=pd.url, bot_src=args.bot_src,
                                                     name=f"firebreak{n + 1}"))
            fields = CommandFields(http, slack.base_url, batch=args.incidents + 10)
            await fields.prime()
            deliveries = await send_storm(servers, fields, http, args)
            samples = [sample for per_open in deliveries for sample in per_open]
            await fields.close()

            async def settled() -> bool:
                seen = count_outcomes(await fake_slack_stats(http, slack.base_url), pd)
                return (seen["paged incidents"] >= args.incidents and seen["distinct channel incidents"] >= args.incidents
                        and await count_rows(url, "SELECT count(*) FROM incidents") >= args.incidents)

            sent_at = time.monotonic()
            await wait_until(settled, timeout=args.settle, poll=0.5)
            settle_s = time.monotonic() - sent_at
            await asyncio.sleep(2)  # anything extra (a duplicate) would arrive now
            incidents = await count_rows(url, "SELECT count(*) FROM incidents")
            to_page = delays_ms(first_page_arrivals(pd), await incidents_by_request(url, TITLE),
                                [per_open[0] for per_open in deliveries])
            seen = count_outcomes(await fake_slack_stats(http, slack.base_url), pd)
            for server in servers:
                server.stop()
        errors = [f"{s.name}: {line}" for s in servers for line in s.error_lines()]
    finally:
        for server in servers:
            server.stop()
        await pd.stop()
        slack.stop()

    latencies = [s.latency_ms for s in samples]
    non200 = [s for s in samples if s.status != 200]
    refused = sum(1 for s in samples if b"overloaded" in s.body)
    n = args.incidents
    checks = [
        (f"incidents in the database: {incidents}", incidents == n),
        ((f"incident channels at the fake Slack: {seen['channels']} "
          f"({seen['distinct channel incidents']} distinct incidents)"),
         seen["channels"] == n and seen["distinct channel incidents"] == n),
        ((f"first-level pages at the PagerDuty fake: {seen['paged incidents']} distinct incidents, "
          f"{seen['page requests']} trigger requests"), seen["paged incidents"] == n and seen["page requests"] == n),
        (f"slowest answer: {max(latencies):.0f} ms over {len(samples)} deliveries (< {SLACK_DEADLINE_MS} ms)",
         max(latencies) < SLACK_DEADLINE_MS),
        (f"non-200 answers or transport errors: {len(non200)}", not non200),
        (f"acks refusing the work (overloaded): {refused}", refused == 0),
        (f"ERROR/Traceback lines in the bot log{'s' if replicas > 1 else ''}: {len(errors)}", not errors),
    ]
    db = "PostgreSQL" if server_url else "SQLite"
    print(f"{name}: {replicas} x firebreak serve on {db}; {n} opens in {args.seconds:g} s, "
          f"{len(samples) - n} retries; conversations.create answered 429 "
          f"{seen['conversations.create 429']} times of {seen['conversations.create total']}; "
          f"all work done {settle_s:.1f} s after the last answer")
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {text}")
    print(latency_line("open -> first page", to_page, n))
    for line in errors[:20]:
        print(f"    {line}")
    for sample in non200[:5]:
        print(f"    {sample.status} after {sample.latency_ms:.0f} ms: {sample.body[:200]!r}")
    sys.stdout.flush()
    return all(ok for _, ok in checks)


async def main(args: argparse.Namespace) -> int:
    parts = {"single": (1, None), "replicas": (2, args.database_url)}
    if args.only:
        parts = {args.only: parts[args.only]}
    ok = True
    with workdir(keep=args.keep) as scratch:
        for name, (replicas, server_url) in parts.items():
            ok &= await run_part(name, replicas, server_url, args, scratch)
    print("storm: all checks passed" if ok else "storm: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--retry-fraction", type=float, default=0.05)
    parser.add_argument("--rate-limit-fraction", type=float, default=0.10)
    parser.add_argument("--settle", type=float, default=120, help="seconds to wait for the work after the acks")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--database-url", default=DEFAULT_PG, help="PostgreSQL server of the replicas part")
    parser.add_argument("--only", choices=["single", "replicas"])
    parser.add_argument("--bot-src", help="run the bot from this checkout instead of the working tree")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, SQLite files)")
    sys.exit(asyncio.run(main(parser.parse_args())))
