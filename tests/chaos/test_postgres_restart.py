"""PostgreSQL stopped (``pg_ctl stop -m immediate``) and started again under a running bot.

The cluster is private to this test (``initdb`` in a temporary folder, its own port
on 127.0.0.1): the shared server other tests use is never touched. Without the
PostgreSQL binaries the test skips (a failure in CI: tests/support/isolation.py).

While PostgreSQL is down, ``/incident open`` and ``/incident note`` are still
acked at once and answered with the ephemeral DATABASE_DOWN message, and
``/readyz`` answers 503. When it is back, the same process (never restarted)
serves the same requests, the timeline written before the outage is intact, and
the jobs continue: a level that fell due during the outage pages once, the new
incident gets its channel and card.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, select

from bot.db.migrate import upgrade_async
from bot.incidents.models import Incident
from handlers.common import DATABASE_DOWN
from tests.chaos.conftest import (
    LEVEL_2_AFTER,
    PD_FIRST,
    PD_SECOND,
    close_world,
    free_port,
    open_world,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)


def _unavailable(reason: str) -> None:
    pytest.skip(f"no private PostgreSQL cluster for the restart test: {reason}")


def _bindir() -> Path | None:
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10,
                                   check=True)
            candidates.append(found.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2])
                         if p.split("/")[-2].isdigit() else 0, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


class PrivateCluster:
    """``initdb`` + ``pg_ctl`` in a temporary folder (as the ``postgres`` user when run as root)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="fb-chaos-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.running = False
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/firebreak"

    async def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        # In a thread: the fakes in this process keep answering the bot meanwhile.
        return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True,
                                       timeout=timeout)

    async def init(self) -> None:
        if self.as_postgres:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                _unavailable("running as root and there is no 'postgres' user to run initdb as")
            os.chown(self.root, account.pw_uid, account.pw_gid)
        done = await self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                               "-E", "UTF8", "--no-sync", "--no-instructions")
        if done.returncode != 0:
            _unavailable(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -h 127.0.0.1 -c fsync=off -c max_connections=60"
        done = await self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                               "-o", options, "-w", "-t", "30", "start")
        assert done.returncode == 0, f"pg_ctl start failed: {done.stderr}\n{self.log()}"
        self.running = True

    async def stop(self) -> None:
        done = await self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        assert done.returncode == 0, f"pg_ctl stop failed: {done.stderr}"
        self.running = False

    def log(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    async def destroy(self) -> None:
        if self.running:
            await self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
async def cluster():
    bindir = _bindir()
    if bindir is None:
        _unavailable("initdb and pg_ctl not found (install PostgreSQL, or put its bin folder on PATH)")
    found = PrivateCluster(bindir)
    try:
        await found.init()
        await found.start()
        admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{found.port}/postgres", timeout=10)
        try:
            await admin.execute('CREATE DATABASE "firebreak"')
        finally:
            await admin.close()
        await upgrade_async(found.url)
        yield found
    finally:
        await found.destroy()


async def test_postgres_restarted_under_the_bot(cluster, tmp_path):
    world = await open_world(tmp_path, cluster.url)
    try:
        await _scenario(world, cluster)
    finally:
        await close_world(world)
    assert not world.slack.violations, world.slack.violations


async def _scenario(world, cluster: PrivateCluster) -> None:
    await world.start_bot()
    bot = world.bot
    reply = await world.run("open P1 disk is filling up service:api")
    assert "INC-1 opened" in reply and "failed" not in reply, reply
    assert "Noted on the timeline of INC-1" in await world.run("note INC-1 before the outage")
    await wait_for(lambda: world.pd_triggers(PD_FIRST), what="level 1 paged")

    async def provisioned(number: int):
        found = await world.incident(number)
        return found if found is not None and found.is_provisioned else None

    incident = await wait_for(lambda: provisioned(1), what="INC-1's channel and card")
    before = [(e.id, e.kind, e.text) for e in await world.timeline(1)]

    await cluster.stop()
    outage_started = time.monotonic()

    # Requests while the database is down: acked at once, told clearly, nothing half-done.
    acks: list[float] = []
    for round_ in range(3):
        opened = await world.command(f"open P2 opened during the outage {round_}")
        noted = await world.command(f"note INC-1 written during the outage {round_}")
        for sent in (opened, noted):
            assert sent.status == 200, (sent.status, sent.body)
            acks.append(sent.seconds)
            assert await world.reply(sent) == DATABASE_DOWN
    async with world.http.get(bot.url + "/readyz") as resp:
        ready_status, ready_body = resp.status, await resp.json()
    assert ready_status == 503 and ready_body["status"] == "not ready", ready_body
    async with world.http.get(bot.url + "/healthz") as resp:
        assert resp.status == 200  # the process itself is fine: only readiness fails
    print(f"\nack latency while PostgreSQL was down ({len(acks)} requests): "
          f"median {statistics.median(acks) * 1000:.0f} ms, max {max(acks) * 1000:.0f} ms")
    assert max(acks) < 3.0, acks

    # Level 2 falls due while the database is down (real time: the bot runs on the system clock).
    due = incident.opened_at.timestamp() + LEVEL_2_AFTER
    await asyncio.sleep(max(0.0, due - time.time() + 0.3))
    restarting_at = datetime.now(UTC)
    await cluster.start()
    print(f"PostgreSQL was down for {time.monotonic() - outage_started:.1f} s")

    async def ready() -> bool:
        async with world.http.get(bot.url + "/readyz") as resp:
            return resp.status == 200

    await wait_for(ready, what="/readyz to say ready again")
    assert bot.alive and world.bots == [bot]  # the same process throughout

    # The same requests now succeed, and the jobs carry on.
    reply = await world.run("open P2 opened after the outage")
    assert "INC-2 opened" in reply and "failed" not in reply, reply
    assert "Noted on the timeline of INC-1" in await world.run("note INC-1 written after the outage")
    await wait_for(lambda: world.pd_triggers(PD_SECOND), what="level 2, due during the outage, paged")

    await wait_for(lambda: provisioned(2), what="INC-2's channel and card")
    await world.settle()  # nothing running or due, the bot stopped: what the fakes saw is final

    after = await world.timeline(1)
    assert [(e.id, e.kind, e.text) for e in after][: len(before)] == before  # nothing lost
    notes = [e.text for e in after if e.kind == "note"]
    assert notes == ["before the outage", "written after the outage"], notes
    assert (await world.query(select(func.count()).select_from(Incident))) == [2]
    [level_two] = [r for r in world.pd.requests
                   if (r.json or {}).get("routing_key") == PD_SECOND and r.json.get("event_action") == "trigger"]
    assert level_two.received_at > restarting_at  # paged once, and only once the database was back
    assert sorted(t["dedup_key"] for t in world.pd_triggers(PD_FIRST)) == [
        "firebreak-INC-1", "firebreak-INC-2"]
    assert len(world.incident_channels(2)) == 1
