"""Shared machinery of the process-level benchmarks (``ack.py``, ``open_to_page.py``, ``storm.py``).

* processes: ``firebreak serve`` (the real CLI, configured by environment variables),
  the bare-Bolt floor app and the fake Slack, each a subprocess started with a
  readiness wait on ``/healthz`` and stopped with SIGTERM (SIGKILL after a grace period);
* databases: a fresh SQLite file or a fresh PostgreSQL database per phase;
* requests signed exactly as Slack signs them (``tests/support/signing.py``);
* load loops (closed loop of N workers, open loop at a fixed rate) and percentiles;
* in-process fakes that timestamp arrivals (``perf_counter``).

This file is also the runner of the helper processes (not a benchmark)::

    python bench/harness.py fake-slack --port P [--rate-limit conversations.create=0.1]
    python bench/harness.py floor --port P --slack-api-url URL [--process-before-response]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.signing import sign

SIGNING_SECRET = "bench-signing-secret-0123456789"
BOT_TOKEN = "xoxb-bench-token-0123456789"
PD_ROUTING_KEY = "R0UT1NGKEYBENCH0000000000000000A"  # 32 characters, like PagerDuty's
REPORTER = "U024BE7LH"  # ava, first in the sample rotation
GENERAL = "C0GENERAL"
ANNOUNCE = "C0ANNOUNCE"
ERROR_LINE = re.compile(r"\bERROR\b|Traceback")
INCIDENT_CHANNEL = re.compile(r"^inc-(\d+)(?:-|$)")  # the channel of INC-<n>: inc-<n>-<title words>
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d")
PYTHON = sys.executable


# -- numbers --------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Sample:
    started: float  # perf_counter when the request was sent
    latency_ms: float
    status: int  # HTTP status, 0 for a transport error
    body: bytes = b""  # the answer (an ack is usually empty), first 300 bytes


@dataclass
class LoadResult:
    samples: list[Sample]
    elapsed: float
    done: int | None = None  # work items the target finished by the end (if it can tell)

    @property
    def ok(self) -> list[float]:
        return [s.latency_ms for s in self.samples if s.status == 200]

    @property
    def accepted(self) -> list[float]:
        """Latencies of the 200 answers that took the work on (not refused)."""
        return [s.latency_ms for s in self.samples if s.status == 200 and b"overloaded" not in s.body]

    @property
    def failures(self) -> int:
        return sum(1 for s in self.samples if s.status != 200)

    @property
    def refused(self) -> int:
        """200 answers that say the bot is overloaded (nothing was done)."""
        return sum(1 for s in self.samples if s.status == 200 and b"overloaded" in s.body)

    @property
    def throughput(self) -> float:
        return len(self.samples) / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> dict[str, float]:
        lat = self.ok or [float("nan")]
        return {"n": len(self.samples), "failures": self.failures, "refused": self.refused,
                "median": percentile(lat, 0.5), "p99": percentile(lat, 0.99), "max": max(lat),
                "throughput": self.throughput}


def fmt_ms(value: float) -> str:
    return f"{value:8.2f}"


def latency_line(label: str, values: list[float], expected: int) -> str:
    """``label  median … p99 … max … (n/expected)`` for a list of delays in ms."""
    if not values:
        return f"  {label:<22} none of {expected} arrived"
    return (f"  {label:<22} median {fmt_ms(percentile(values, 0.5))} ms   p99 {fmt_ms(percentile(values, 0.99))} ms"
            f"   max {fmt_ms(max(values))} ms   ({len(values)}/{expected})")


# -- processes ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process whose stderr and stdout go to a log file; ready when ``/healthz`` answers 200."""

    def __init__(self, name: str, argv: list[str], *, port: int, env: dict[str, str] | None = None,
                 cwd: str | None = None, log_dir: str | None = None) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.log_path = Path(log_dir or tempfile.gettempdir()) / f"{name}-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, *, timeout: float = 30) -> Process:
        self.proc = await asyncio.to_thread(self._spawn)  # fork and exec off the event loop
        await self.wait_ready(timeout=timeout)
        return self

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self.log_path, "wb") as log:
            return subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    async def wait_ready(self, *, timeout: float = 30) -> None:
        import aiohttp

        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
                try:
                    async with http.get(self.base_url + "/healthz",
                                        timeout=aiohttp.ClientTimeout(total=1)) as resp:
                        if resp.status == 200:
                            return
                except (TimeoutError, aiohttp.ClientError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_text()[-3000:]}")
                await asyncio.sleep(0.05)

    def stop(self, *, grace: float = 15) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def error_lines(self) -> list[str]:
        """Log records (a line with a time stamp and its continuation lines, e.g. a
        traceback) that say ERROR or Traceback; each is one string."""
        records: list[list[str]] = []
        for line in self.log_text().splitlines():
            if RECORD_START.match(line) or not records:
                records.append([line])
            else:
                records[-1].append(line)
        return ["\n".join(r) for r in records if any(ERROR_LINE.search(line) for line in r)]


def firebreak_env(*, port: int, slack_api_url: str, database_url: str,
                  pagerduty_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url, "DATABASE_URL": database_url,
        "PLAYBOOKS_DIR": str(REPO / "playbooks"), "PORT": str(port), "HOST": "127.0.0.1",
        "ANNOUNCE_CHANNEL": ANNOUNCE, "DISPLAY_TIMEZONE": "America/New_York",
        "PAGERDUTY_ROUTING_KEY_DEFAULT": PD_ROUTING_KEY, "LOG_LEVEL": "INFO",
    }
    if pagerduty_url:
        env["PAGERDUTY_EVENTS_URL"] = pagerduty_url
    env.update({k.upper(): v for k, v in extra.items()})
    return env


def _bot_env(env: dict[str, str], bot_src: str | None) -> dict[str, str]:
    """Run the code in ``bot_src`` (a checkout of another commit) instead of this tree."""
    if bot_src:
        env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [bot_src, os.environ.get("PYTHONPATH")]))}
    return env


def firebreak_cli() -> list[str]:
    """The ``firebreak`` console script of this interpreter's environment."""
    script = Path(PYTHON).with_name("firebreak")
    return [str(script)] if script.exists() else [PYTHON, "-m", "bot.cli"]


def migrate(database_url: str, *, bot_src: str | None = None, workdir: str) -> None:
    """``firebreak db upgrade`` (``serve`` migrates only SQLite itself)."""
    env = _bot_env({**os.environ, "DATABASE_URL": database_url}, bot_src)
    done = subprocess.run([*firebreak_cli(), "db", "upgrade"], env=env, cwd=workdir,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"firebreak db upgrade failed:\n{done.stdout}{done.stderr}")


async def start_firebreak(*, slack_api_url: str, database_url: str, workdir: str,
                          pagerduty_url: str | None = None, bot_src: str | None = None,
                          name: str = "firebreak", **extra: str) -> Process:
    port = free_port()
    env = _bot_env(firebreak_env(port=port, slack_api_url=slack_api_url, database_url=database_url,
                                 pagerduty_url=pagerduty_url, **extra), bot_src)
    # cwd is a scratch directory so that no ``.env`` of the checkout is read.
    return await Process(name, [*firebreak_cli(), "serve"], port=port, env=env, cwd=workdir,
                         log_dir=workdir).start()


async def start_floor(*, slack_api_url: str, process_before_response: bool, workdir: str) -> Process:
    port = free_port()
    argv = [PYTHON, str(Path(__file__).resolve()), "floor", "--port", str(port),
            "--slack-api-url", slack_api_url]
    if process_before_response:
        argv.append("--process-before-response")
    name = "floor-pbr" if process_before_response else "floor-default"
    return await Process(name, argv, port=port, cwd=workdir, log_dir=workdir).start()


async def start_fake_slack(*, workdir: str, rate_limits: dict[str, float] | None = None) -> Process:
    port = free_port()
    argv = [PYTHON, str(Path(__file__).resolve()), "fake-slack", "--port", str(port)]
    for method, fraction in (rate_limits or {}).items():
        argv += ["--rate-limit", f"{method}={fraction}"]
    return await Process("fake-slack", argv, port=port, cwd=workdir, log_dir=workdir).start()


# -- databases ------------------------------------------------------------------------------

def is_postgres(url: str | None) -> bool:
    return bool(url) and url.startswith("postgresql")


def _admin_dsn(server_url: str) -> str:
    return re.sub(r"^postgresql(\+\w+)?://", "postgresql://", server_url)


@asynccontextmanager
async def fresh_database(server_url: str | None, workdir: str, *, bot_src: str | None = None):
    """Yield the URL of an empty, migrated database: a new SQLite file, or a new database
    on the PostgreSQL server of ``server_url`` (dropped afterwards)."""
    if not is_postgres(server_url):
        path = Path(workdir) / f"bench-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate(url, bot_src=bot_src, workdir=workdir)
        yield url
        return
    from tests.support.databases import drop_pg_database, new_pg_database

    admin = _admin_dsn(server_url)
    name = await new_pg_database("fb_bench", admin_dsn=admin)
    base = admin.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        await asyncio.to_thread(migrate, url, bot_src=bot_src, workdir=workdir)
        yield url
    finally:
        await drop_pg_database(name, admin_dsn=admin)


async def fetch_rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one query, on a short-lived engine of its own."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(text(sql))).all()]
    finally:
        await engine.dispose()


async def count_rows(database_url: str, sql: str) -> int:
    return int((await fetch_rows(database_url, sql))[0][0])


@contextmanager
def workdir(keep: bool = False) -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="fb-bench-")
    try:
        yield path
    finally:
        if not keep:
            import shutil

            shutil.rmtree(path, ignore_errors=True)


# -- Slack requests -------------------------------------------------------------------------

@dataclass
class SlackRequest:
    body: bytes
    headers: dict[str, str]


def signed_command(fields: dict[str, str], *, timestamp: int | None = None) -> SlackRequest:
    """The POST Slack sends for a slash command: form-encoded fields, signed with the secret."""
    body = urlencode(fields)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SIGNING_SECRET, body, timestamp)}
    return SlackRequest(body.encode(), headers)


def as_retry(request: SlackRequest, *, retry_num: int = 1, reason: str = "http_timeout") -> SlackRequest:
    """Slack's redelivery of ``request``: the same body and signature, with its retry headers."""
    return SlackRequest(request.body, {**request.headers, "X-Slack-Retry-Num": str(retry_num),
                                       "X-Slack-Retry-Reason": reason})


class CommandFields:
    """Slash-command form fields (with live response URLs) from a fake Slack in another
    process, fetched in batches ahead of need so that the load loop never waits for them."""

    def __init__(self, http: Any, fake_slack_url: str, *, command: str = "/incident",
                 user: str = REPORTER, channel: str = GENERAL, batch: int = 2000) -> None:
        self.http = http
        self.url = fake_slack_url + "/bench/slash"
        self.query = {"command": command, "user": user, "channel": channel}
        self.batch = batch
        self._pool: list[dict[str, str]] = []
        self._refill: asyncio.Task[None] | None = None

    async def _fetch(self) -> None:
        async with self.http.post(self.url, json={**self.query, "n": self.batch}) as resp:
            resp.raise_for_status()
            self._pool.extend(await resp.json())

    async def prime(self) -> None:
        await self._fetch()

    async def take(self, text: str) -> dict[str, str]:
        if len(self._pool) < self.batch // 2 and (self._refill is None or self._refill.done()):
            self._refill = asyncio.create_task(self._fetch())
        while not self._pool:
            await asyncio.shield(self._refill)  # type: ignore[arg-type]
        return {**self._pool.pop(), "text": text}

    async def close(self) -> None:
        if self._refill is not None and not self._refill.done():
            self._refill.cancel()
            await asyncio.gather(self._refill, return_exceptions=True)


async def post(http: Any, url: str, request: SlackRequest, *, timeout: float = 30) -> Sample:
    import aiohttp

    started = time.perf_counter()
    try:
        async with http.post(url, data=request.body, headers=request.headers,
                             timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            body = await resp.read()
            status = resp.status
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        status, body = 0, repr(exc).encode()
    return Sample(started, (time.perf_counter() - started) * 1000, status, body[:300])


def client_session(limit: int = 0) -> Any:
    import aiohttp

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))


async def closed_loop(make: Callable[[int], Awaitable[SlackRequest]], send: Callable[[SlackRequest], Awaitable[Sample]],
                      *, concurrency: int, duration: float) -> LoadResult:
    """``concurrency`` workers, each sending its next request when the previous answer is in,
    until ``duration`` seconds have passed (requests in flight then are completed and counted)."""
    samples: list[Sample] = []
    counter = iter(range(10**9))
    start = time.perf_counter()
    deadline = start + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            request = await make(next(counter))
            samples.append(await send(request))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(samples, time.perf_counter() - start)


async def open_loop(count: int, duration: float, fire: Callable[[int], Awaitable[Any]]) -> list[Any]:
    """Start ``fire(i)`` for i in 0..count-1 at evenly spaced times over ``duration`` seconds
    (open loop: a slow answer does not delay the next request); returns their results."""
    start = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = start + i * duration / count - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i)))
    return await asyncio.gather(*tasks)


async def wait_until(condition: Callable[[], Any], *, timeout: float, poll: float = 0.05) -> Any:
    """Poll ``condition`` (a function, or a coroutine function) until it is truthy or
    ``timeout`` seconds have passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(poll)


# -- in-process fakes that timestamp arrivals -----------------------------------------------

def timed_fakes() -> tuple[Any, Any]:
    """A SlackEmulator and a PagerDutyFake (:func:`timed_pagerduty`) that note
    ``perf_counter()`` at each arrival: ``emu.arrivals`` is a list of
    ``(t, method, params, answer)``."""
    from bot.emulator import SlackEmulator

    class TimedSlack(SlackEmulator):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.arrivals: list[tuple[float, str, dict[str, Any], dict[str, Any]]] = []

        async def _dispatch(self, method: str, token: str | None, params: dict[str, Any]):  # type: ignore[override]
            arrived = time.perf_counter()
            status, body, headers = await super()._dispatch(method, token, params)
            self.arrivals.append((arrived, method, params, body))
            return status, body, headers

    return TimedSlack(bot_token=BOT_TOKEN), timed_pagerduty()


def timed_pagerduty() -> Any:
    """The project's PagerDutyFake (routing key :data:`PD_ROUTING_KEY`); ``pd.arrivals`` is a
    list of ``(perf_counter at arrival, event)``."""
    from aiohttp import web

    from bot.emulator.pagerduty import PagerDutyFake

    class TimedPagerDuty(PagerDutyFake):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.arrivals: list[tuple[float, dict[str, Any]]] = []

        async def _enqueue(self, request: web.Request) -> web.Response:
            arrived = time.perf_counter()
            with suppress(ValueError):
                self.arrivals.append((arrived, json.loads(await request.text())))
            return await super()._enqueue(request)

    return TimedPagerDuty(routing_keys={PD_ROUTING_KEY})


def first_page_arrivals(pd: Any) -> dict[int, float]:
    """Incident number -> ``perf_counter`` when its first PagerDuty request arrived
    (the ``dedup_key`` is ``firebreak-INC-<n>``)."""
    found: dict[int, float] = {}
    for t, event in pd.arrivals:
        key = str(event.get("dedup_key", ""))
        if key.startswith("firebreak-INC-"):
            found.setdefault(int(key.rsplit("-", 1)[1]), t)
    return found


async def incidents_by_request(database_url: str, title: re.Pattern[str]) -> dict[int, int]:
    """Incident number -> index of the bench request that opened it, read from the
    title (``title`` has one group: the index)."""
    rows = await fetch_rows(database_url, "SELECT number, title FROM incidents")
    return {number: int(m.group(1)) for number, text in rows if (m := title.search(text))}


def delays_ms(arrivals: dict[int, float], opened_by: dict[int, int], sent: list[Any]) -> list[float]:
    """For each incident with an arrival: arrival - the time its request was sent, in ms."""
    return [(arrivals[n] - sent[i].started) * 1000 for n, i in opened_by.items() if n in arrivals]


async def fake_slack_stats(http: Any, fake_slack_url: str) -> dict[str, Any]:
    async with http.get(fake_slack_url + "/bench/stats") as resp:
        return await resp.json()


def emulator_stats(emu: Any) -> dict[str, Any]:
    """What the storm checks: calls per method and outcome, and the incident channels."""
    calls: dict[str, dict[str, int]] = {}
    for call in emu.calls:
        outcome = "ok" if call.ok else (call.error or str(call.status))
        calls.setdefault(call.method, {}).setdefault(outcome, 0)
        calls[call.method][outcome] += 1
    channels = [c.name for c in emu.workspace.channels.values()]
    return {"calls": calls, "channels": channels}


# -- helper processes -----------------------------------------------------------------------

def run_fake_slack(args: argparse.Namespace) -> None:
    """The project's SlackEmulator at zero latency, plus two bench endpoints:
    ``POST /bench/slash`` (n slash-command form fields with live response URLs) and
    ``GET /bench/stats`` (see :func:`emulator_stats`)."""
    from aiohttp import web

    from bot.emulator import SlackEmulator

    emu = SlackEmulator(bot_token=BOT_TOKEN)
    for rule in args.rate_limit:
        method, _, fraction = rule.partition("=")
        emu.rate_limit_fraction(method, float(fraction), retry_after=args.retry_after, seed=args.seed)

    async def slash(request: web.Request) -> web.Response:
        q = await request.json()
        fields = [emu.slash_command(q["user"], q["channel"], q["command"]) for _ in range(int(q["n"]))]
        return web.json_response(fields)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(emulator_stats(emu))

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    emu.app.router.add_post("/bench/slash", slash)
    emu.app.router.add_get("/bench/stats", stats)
    emu.app.router.add_get("/healthz", healthz)
    emu.base_url = f"http://127.0.0.1:{args.port}"
    web.run_app(emu.app, host="127.0.0.1", port=args.port, print=None, access_log=None)


def run_floor(args: argparse.Namespace) -> None:
    """The floor: a bare Bolt AsyncApp on aiohttp (served like ``handlers/app.py`` serves
    Firebreak) whose ``/incident`` listener only calls ``ack()``."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    bolt = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=args.slack_api_url),
                    signing_secret=SIGNING_SECRET,
                    process_before_response=args.process_before_response)

    @bolt.command("/incident")
    async def incident(ack: Any) -> None:
        await ack()

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    fake = sub.add_parser("fake-slack", help="the Slack emulator as its own process")
    fake.add_argument("--port", type=int, required=True)
    fake.add_argument("--rate-limit", action="append", default=[], metavar="METHOD=FRACTION")
    fake.add_argument("--retry-after", type=int, default=1)
    fake.add_argument("--seed", type=int, default=6)
    fake.set_defaults(func=run_fake_slack)
    floor = sub.add_parser("floor", help="the bare Bolt app whose listener only acks")
    floor.add_argument("--port", type=int, required=True)
    floor.add_argument("--slack-api-url", required=True)
    floor.add_argument("--process-before-response", action="store_true")
    floor.set_defaults(func=run_floor)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
