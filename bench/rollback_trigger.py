"""Confirm → trigger latency of ``/rollback``, per provider, on loopback.

For each provider: ``/rollback <service>`` posts a preview; the clock starts when the
signed Confirm click leaves for the bot (``POST /slack/events``) and stops when the
provider's fake receives the rollback request (Render ``POST …/rollback``, Railway
``deploymentRollback``, Vercel ``POST /v9/projects/…/rollback/…``, Heroku
``POST /apps/…/releases``, GitHub ``POST …/dispatches``). In between: the ack, the
owner check (``usergroups.users.list``), the confirm transaction (row lock, P2 incident
opened, trigger job enqueued), the trigger job (re-reading what is live, recording
the attempt) — then the request. Each rollback is then followed to its end before
the next starts (one per service at a time).

Run: ``.venv/bin/python bench/rollback_trigger.py [--rollbacks 10] [--postgres]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.db.migrate import upgrade_async
from bot.emulator.providers import RecordedRequest
from bot.slack.ids import ActionId
from tests.rollback.conftest import AVA, PROVIDER_OF, SERVICES, start_world, stop_world

ZERO = {"P0": 0, "P1": 0, "P2": 0, "P3": 0}


TRIGGERS = {
    "api": lambda r: r.path.endswith("/rollback"),
    "worker": lambda r: "deploymentRollback" in r.text,
    "web": lambda r: "/rollback/" in r.path,
    "billing": lambda r: r.path.endswith("/releases"),
    "shop": lambda r: r.path.endswith("/dispatches"),
}


def is_trigger(service: str, request: RecordedRequest) -> bool:
    return request.method == "POST" and TRIGGERS[service](request)


def preview_channel(reply: str) -> str:
    """Where the bot says it posted the preview: "posted here" or "posted in <#C…>"."""
    return reply.split("posted in <#", 1)[1].split(">", 1)[0] if "posted in <#" in reply else "C0GENERAL"


async def bench_service(service: str, rollbacks: int, postgres: bool, tmp: Path) -> list[float]:
    from tests.support.databases import create_pg_database, drop_pg_database, pg_url

    name = await create_pg_database() if postgres else None
    url = pg_url(name) if name else f"sqlite+aiosqlite:///{tmp / service}.db"
    try:
        return await _bench(service, rollbacks, url, tmp)
    finally:
        if name:
            await drop_pg_database(name)


async def _bench(service: str, rollbacks: int, url: str, tmp: Path) -> list[float]:
    await upgrade_async(url)
    world = await start_world(url, tmp / service, approvals=ZERO)
    arrivals: list[float] = []
    fake = world.fake(service)
    inner = fake.validator

    def record(request: RecordedRequest) -> list[str]:
        if is_trigger(service, request):
            arrivals.append(time.perf_counter())
        return list(inner(request)) if inner else []

    fake.validator = record
    latencies = []
    try:
        await world.command("list")  # warm up: connections, Bolt's auth.test, provider clients
        previous = None
        for _ in range(rollbacks):
            # back and forth: each rollback targets the deploy the previous one replaced
            reply = await world.command(f"{service} to {previous}" if previous else service)
            assert "Rollback preview" in reply, reply
            preview = world.preview(preview_channel(reply))
            before = len(arrivals)
            started = time.perf_counter()
            sent = await world.bed.click(user=AVA, channel=preview.channel_id, message_ts=preview.ts,
                                         action_id=ActionId.ROLLBACK_CONFIRM)
            assert sent.status == 200
            await world.bed.wait_for(lambda before=before: len(arrivals) > before, timeout=30)
            latencies.append((arrivals[before] - started) * 1000)
            finished = await world.drive(max_steps=200)
            previous = finished.current_id
    finally:
        await stop_world(world)
    return latencies


async def main(rollbacks: int, postgres: bool) -> None:
    print(f"Confirm click → provider trigger request, {rollbacks} rollbacks per provider "
          f"({'PostgreSQL' if postgres else 'SQLite'}; loopback; the fakes answer at once)")
    with tempfile.TemporaryDirectory() as tmp:
        for service in SERVICES:
            latencies = await bench_service(service, rollbacks, postgres, Path(tmp))
            print(f"  {PROVIDER_OF[service]:<15} median {statistics.median(latencies):7.1f} ms   "
                  f"min {min(latencies):7.1f} ms   max {max(latencies):7.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rollbacks", type=int, default=10)
    parser.add_argument("--postgres", action="store_true",
                        help="a fresh database per provider at $FIREBREAK_TEST_PG instead of SQLite")
    args = parser.parse_args()
    asyncio.run(main(args.rollbacks, args.postgres))
