"""Ack latency of signed ``/incident open`` and ``/incident note`` against ``firebreak serve``,
next to the floor: a bare Bolt ``AsyncApp`` on aiohttp whose listener only calls ``ack()``.

Run: ``.venv/bin/python bench/ack.py [--duration 30] [--concurrency 1 10 100]
[--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]``

Every phase is a closed loop (N workers, each sending its next request when the previous
ack is in) for ``--duration`` seconds, against fresh processes: ``firebreak serve`` (the
real CLI, configured by environment variables) on a fresh database (a new SQLite file, or
with ``--database-url`` a new PostgreSQL database created on that server and dropped
after), and the fake Slack (the project's emulator, zero latency) in its own process.
``note`` phases first open one incident (INC-1) and note on it. Requests carry the form
fields of ``SlackEmulator.slash_command`` and are signed like Slack signs them; every
answer must be HTTP 200 (non-200s and transport errors are counted). ``refused`` counts
the 200 acks that turn the work down ("overloaded": more than ``WORK_QUEUE_LIMIT``
requests waiting); ``done/s`` is the work the bot finished during the phase (incidents
created, notes on the timeline): an ack only says a request was accepted, and a closed
loop that is answered at once sends far more than Slack ever would.

The floor runs twice per concurrency, with the ``open`` body (its listener does not look
at the text): ``floor-default`` is Bolt's default (``process_before_response=False``: the
ack is returned after Bolt's 10 ms polling loop sees it), ``floor-pbr`` has
``process_before_response=True`` (the listener runs to completion, then the response goes).

Full run: 12 phases (6 Firebreak, 6 floor) x duration + about 9 s of start-up, warm-up and
shut-down each: under 8 minutes at the default 30 s (measured: 469 s). ``--bot-src DIR``
runs the bot from another checkout (e.g. ``git archive <rev> | tar -x -C DIR``) for
before/after figures.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    REPO,
    CommandFields,
    LoadResult,
    Process,
    client_session,
    closed_loop,
    count_rows,
    fmt_ms,
    fresh_database,
    is_postgres,
    percentile,
    post,
    signed_command,
    start_fake_slack,
    start_firebreak,
    start_floor,
    workdir,
)

FLOORS = {"floor-default": False, "floor-pbr": True}
# Work the bot has finished when the phase's time is up (a 200 ack only says it was accepted).
DONE_SQL = {"open": "SELECT count(*) FROM incidents",
            "note": "SELECT count(*) FROM timeline_events WHERE kind = 'note'"}
WARMUP = 10


def command_text(command: str, i: int) -> str:
    return f"open P3 bench incident {i}" if command == "open" else f"note INC-1 bench note {i}"


async def run_phase(target: str, command: str, concurrency: int, args: argparse.Namespace,
                    scratch: str) -> tuple[LoadResult, list[str]]:
    """One phase on fresh processes; returns the load result and the target's error log lines."""
    slack = await start_fake_slack(workdir=scratch)
    server: Process | None = None
    try:
        async with client_session(limit=concurrency + 2) as http:
            fields = CommandFields(http, slack.base_url)
            await fields.prime()
            if target == "firebreak":
                async with fresh_database(args.database_url, scratch, bot_src=args.bot_src) as url:
                    server = await start_firebreak(slack_api_url=slack.base_url + "/api/",
                                                   database_url=url, workdir=scratch,
                                                   bot_src=args.bot_src)
                    result = await drive(server, fields, http, command, concurrency, args, url)
                    server.stop()
            else:
                server = await start_floor(slack_api_url=slack.base_url + "/api/",
                                           process_before_response=FLOORS[target], workdir=scratch)
                result = await drive(server, fields, http, command, concurrency, args)
                server.stop()
            await fields.close()
        return result, server.error_lines()
    finally:
        if server is not None:
            server.stop()
        slack.stop()


async def drive(server: Process, fields: CommandFields, http, command: str, concurrency: int,
                args: argparse.Namespace, database_url: str | None = None) -> LoadResult:
    url = server.base_url + "/slack/events"

    async def make(i: int):
        return signed_command(await fields.take(command_text(command, i)))

    async def send(request):
        return await post(http, url, request)

    if command == "note":
        opened = await send(signed_command(await fields.take("open P3 the incident of the notes")))
        assert opened.status == 200, opened
    for i in range(WARMUP):  # Bolt's auth.test, connection pools, first imports
        await send(await make(-1 - i))
    await asyncio.sleep(1)
    if database_url is None:
        return await closed_loop(make, send, concurrency=concurrency, duration=args.duration)
    before = await count_rows(database_url, DONE_SQL[command])
    result = await closed_loop(make, send, concurrency=concurrency, duration=args.duration)
    result.done = await count_rows(database_url, DONE_SQL[command]) - before
    return result


def describe_code(bot_src: str | None) -> str:
    if bot_src:
        return f"bot code from {bot_src}"
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "bot", "handlers"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"bot code at {rev}" + (" (+ uncommitted changes in bot/ or handlers/)" if dirty else "")


async def main(args: argparse.Namespace) -> int:
    db = "PostgreSQL" if is_postgres(args.database_url) else "SQLite"
    print(f"ack latency: {args.duration:g} s per phase, closed loop, {db}, {describe_code(args.bot_src)}",
          flush=True)
    phases = []
    for c in args.concurrency:
        phases += [(floor, "open", c) for floor in FLOORS]
        phases += [("firebreak", command, c) for command in args.commands]
    results: dict[tuple[str, str, int], dict[str, float]] = {}
    errors: dict[tuple[str, str, int], list[str]] = {}
    header = (f"{'target':<14}{'command':<8}{'conc':>5}{'requests':>9}{'non-200':>8}"
              f"{'refused':>8}{'median ms':>10}{'p99 ms':>9}{'max ms':>9}{'req/s':>9}{'done/s':>8}"
              f"{'log err':>8}")
    print(header, flush=True)
    with workdir(keep=args.keep) as scratch:
        for target, command, c in phases:
            result, bad = await run_phase(target, command, c, args, scratch)
            s = result.summary()
            done = "-" if result.done is None else f"{result.done / result.elapsed:.0f}"
            results[target, command, c] = s
            errors[target, command, c] = bad
            print(f"{target:<14}{command:<8}{c:>5}{s['n']:>9}{s['failures']:>8}{s['refused']:>8}"
                  f"{fmt_ms(s['median']):>10}{fmt_ms(s['p99']):>9}{fmt_ms(s['max']):>9}"
                  f"{s['throughput']:>9.0f}{done:>8}{len(bad):>8}", flush=True)
            if s["refused"] and result.accepted:
                kept = result.accepted
                print(f"{'  (accepted)':<27}{len(kept):>9}{'':>16}{fmt_ms(percentile(kept, 0.5)):>10}"
                      f"{fmt_ms(percentile(kept, 0.99)):>9}{fmt_ms(max(kept)):>9}", flush=True)
    print("\nFirebreak / floor (floor-default: Bolt defaults, ack via the 10 ms polling loop;"
          " floor-pbr: process_before_response=True)")
    print(f"{'command':<8}{'conc':>5}{'median/default':>16}{'p99/default':>13}"
          f"{'median/pbr':>12}{'p99/pbr':>9}{'refused':>9}")
    for c in args.concurrency:
        for command in args.commands:
            fb = results["firebreak", command, c]
            d, p = results["floor-default", "open", c], results["floor-pbr", "open", c]
            print(f"{command:<8}{c:>5}{fb['median'] / d['median']:>16.2f}{fb['p99'] / d['p99']:>13.2f}"
                  f"{fb['median'] / p['median']:>12.2f}{fb['p99'] / p['p99']:>9.2f}"
                  f"{fb['refused'] / max(fb['n'], 1):>9.0%}")
    failed = sum(s["failures"] for s in results.values())
    worst = max(s["max"] for s in results.values())
    refused = sum(s["refused"] for s in results.values())
    print(f"\nnon-200 or failed requests: {failed}; acks refusing the work (overloaded): {refused}; "
          f"slowest ack: {worst:.1f} ms")
    for key, records in errors.items():
        for record in records[:2]:
            print(f"log of {'/'.join(map(str, key))} ({len(records)} error records):\n{record}")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=30, help="seconds per phase (default 30)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--commands", nargs="+", choices=["open", "note"], default=["open", "note"])
    parser.add_argument("--database-url", help="a PostgreSQL server URL: each phase gets a new database there")
    parser.add_argument("--bot-src", help="run the bot from this checkout instead of the working tree")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, SQLite files)")
    started = time.monotonic()
    code = asyncio.run(main(parser.parse_args()))
    print(f"(total {time.monotonic() - started:.0f} s)")
    sys.exit(code)
