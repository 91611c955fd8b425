"""Time from a signed ``/incident open`` request to (a) the first PagerDuty Events API request
and (b) the incident card's ``chat.postMessage``, over 500 incidents, on SQLite and PostgreSQL.

Run: ``.venv/bin/python bench/open_to_page.py [--incidents 500] [--rate 5]
[--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--only sqlite|postgres]``

One run does both databases (``--only`` picks one): for each, ``firebreak serve`` (the real
CLI, its own process) on a fresh database, with the fake Slack and the PagerDuty fake in
this process, each noting ``time.perf_counter()`` when a request arrives. The incidents are
``P0`` on service ``api``: level 1 of P0 in ``playbooks/escalation.yaml`` notifies
``oncall:backend`` and ``pagerduty:default`` (routing key from
``PAGERDUTY_ROUTING_KEY_DEFAULT``). Opens are sent in an open loop at ``--rate`` per second
(a slow answer does not hold back the next open), so 500 take 100 s per database; then
the bench waits (at most 120 s) for every page and card. This process only sends 5
requests a second and answers the bot's calls; its CPU use is printed to show that it is
not the bottleneck. Full run: about 4 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    GENERAL,
    INCIDENT_CHANNEL,
    REPORTER,
    client_session,
    delays_ms,
    first_page_arrivals,
    fresh_database,
    incidents_by_request,
    latency_line,
    open_loop,
    post,
    signed_command,
    start_firebreak,
    timed_fakes,
    wait_until,
    workdir,
)

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TITLE = re.compile(r"bench outage (\d+)$")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def card_posts(emu) -> dict[int, float]:
    """Incident number -> arrival of the chat.postMessage of its card (the message the bot pinned)."""
    channels = {c.id: int(m.group(1)) for c in emu.workspace.channels.values()
                if (m := INCIDENT_CHANNEL.match(c.name))}
    pinned = {(params.get("channel"), params.get("timestamp"))
              for _, method, params, answer in emu.arrivals if method == "pins.add" and answer.get("ok")}
    found: dict[int, float] = {}
    for t, method, params, answer in emu.arrivals:
        channel = params.get("channel")
        if (method == "chat.postMessage" and answer.get("ok") and channel in channels
                and (channel, answer.get("ts")) in pinned):
            found.setdefault(channels[channel], t)
    return found


async def run_database(server_url: str | None, args: argparse.Namespace, scratch: str) -> dict:
    emu, pd = timed_fakes()
    await emu.start()
    await pd.start()
    server = None
    try:
        async with fresh_database(server_url, scratch, bot_src=args.bot_src) as url:
            server = await start_firebreak(slack_api_url=emu.api_url, database_url=url, workdir=scratch,
                                           pagerduty_url=pd.url, bot_src=args.bot_src)
            async with client_session() as http:
                target = server.base_url + "/slack/events"

                async def fire(i: int):
                    fields = emu.slash_command(REPORTER, GENERAL, "/incident",
                                               f"open P0 service:api bench outage {i}")
                    return await post(http, target, signed_command(fields))

                cpu0, wall0 = cpu_seconds(), time.perf_counter()
                sent = await open_loop(args.incidents, args.incidents / args.rate, fire)
                load_cpu = (cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
                await wait_until(lambda: len(first_page_arrivals(pd)) >= args.incidents
                                 and len(card_posts(emu)) >= args.incidents, timeout=120, poll=0.5)
            titles = await incidents_by_request(url, TITLE)
            server.stop()
        return {"acks": [s.latency_ms for s in sent], "non200": sum(s.status != 200 for s in sent),
                "to_page": delays_ms(first_page_arrivals(pd), titles, sent),
                "to_card": delays_ms(card_posts(emu), titles, sent), "incidents": len(titles),
                "load_cpu": load_cpu, "errors": server.error_lines()}
    finally:
        if server is not None:
            server.stop()
        await pd.stop()
        await emu.stop()


async def main(args: argparse.Namespace) -> int:
    targets = {"sqlite": None, "postgres": args.database_url}
    if args.only:
        targets = {args.only: targets[args.only]}
    failed = False
    with workdir(keep=args.keep) as scratch:
        for name, server_url in targets.items():
            r = await run_database(server_url, args, scratch)
            print(f"{name}: {args.incidents} × /incident open P0 service:api at {args.rate:g}/s "
                  f"(bench process CPU during the load: {r['load_cpu'] * 100:.0f}% of a core)")
            print(latency_line("open -> first page", r["to_page"], args.incidents))
            print(latency_line("open -> card posted", r["to_card"], args.incidents))
            print(latency_line("ack", r["acks"], args.incidents))
            print(f"  incidents in the database: {r['incidents']}; non-200 acks: {r['non200']}; "
                  f"ERROR/Traceback lines in the bot's log: {len(r['errors'])}", flush=True)
            for bad in r["errors"][:5]:
                print(f"    {bad}")
            failed |= (r["non200"] > 0 or len(r["to_page"]) < args.incidents
                       or len(r["to_card"]) < args.incidents)
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=500)
    parser.add_argument("--rate", type=float, default=5, help="opens per second (default 5)")
    parser.add_argument("--database-url", default=DEFAULT_PG, help=f"PostgreSQL server (default {DEFAULT_PG}); "
                        "a new database is created there and dropped after")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--bot-src", help="run the bot from this checkout instead of the working tree")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, SQLite files)")
    sys.exit(asyncio.run(main(parser.parse_args())))
