"""Ack latency of ``/incident open`` on loopback, and the Slack calls one open makes.

Run: ``.venv/bin/python bench/open_ack.py [--requests 200] [--database-url URL]``
The bot runs in this process behind a real HTTP server; the fake Slack answers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.db.migrate import upgrade_async
from tests.support.bed import start_bed, stop_bed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(requests: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        await upgrade_async(url)
        bed = await start_bed(url)
        try:
            await bed.run_command("list")  # warm up (Bolt's auth.test, connections)
            latencies = []
            for i in range(requests):
                started = time.perf_counter()
                sent = await bed.command(f"open P3 bench incident {i}")
                latencies.append((time.perf_counter() - started) * 1000)
                assert sent.status == 200
                await bed.reply(sent)
            calls = Counter(c.method for c in bed.emu.calls if c.method != "auth.test")
        finally:
            await stop_bed(bed)
    print(f"/incident open ack latency over {requests} requests ({url.split(':')[0]}):")
    print(f"  median {statistics.median(latencies):.2f} ms   p99 {percentile(latencies, 0.99):.2f} ms"
          f"   max {max(latencies):.2f} ms")
    per_open = {method: count / requests for method, count in sorted(calls.items())}
    print(f"Slack calls per open: {sum(per_open.values()):.0f} -> {per_open}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.database_url))
