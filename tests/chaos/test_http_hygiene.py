"""HTTP hygiene of a real ``firebreak serve`` (the web server as it runs in production, with
small timeouts from its settings so that nothing waits 30 s):

- idle connections, and connections whose request line, headers or body stop half-way,
  are closed within ``HTTP_IDLE_TIMEOUT_SECONDS`` / ``HTTP_READ_TIMEOUT_SECONDS``;
- a client that goes away half-way is logged at INFO, without a traceback: nothing at
  ERROR, which would trip log-based alerting.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.chaos.conftest import close_world, open_world

IDLE = 1.0
READ = 1.0
ENOUGH = 6.0  # the longest a close may take on a loaded machine (the default would be minutes)
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def served(database_url, tmp_path):
    world = await open_world(tmp_path, database_url)
    world.extra_env.update(HTTP_IDLE_TIMEOUT_SECONDS=str(IDLE), HTTP_READ_TIMEOUT_SECONDS=str(READ))
    try:
        await world.start_bot()
        yield world
    finally:
        await close_world(world)


async def closed_after(port: int, data: bytes) -> tuple[float, bytes]:
    """Send ``data`` and nothing more; return how long the server took to close, and what it sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        writer.write(data)
        await writer.drain()
        try:
            received = await asyncio.wait_for(reader.read(), timeout=ENOUGH + 10)  # until the server closes
        except TimeoutError:
            raise AssertionError(f"the connection was still open after {ENOUGH + 10:g}s: {data[:60]!r}") from None
        return time.monotonic() - started, received
    finally:
        writer.close()


HEADERS = b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@sqlite_only
async def test_idle_and_half_sent_connections_are_closed(served):
    port = served.bot.port
    cases = {
        "idle, nothing sent": b"",
        "half a request line": b"POST /slack/ev",
        "headers that never end": HEADERS,
        "a body that stops half-way": HEADERS + b"Content-Length: 200\r\n\r\n{\"type\": ",
        "idle after a complete request": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    }
    took = dict(zip(cases, await asyncio.gather(*(closed_after(port, data) for data in cases.values())),
                    strict=True))
    for name, (seconds, _received) in took.items():
        assert seconds < ENOUGH, (name, seconds)
    assert took["a body that stops half-way"][1].startswith(b"HTTP/1.1 408")
    assert took["idle after a complete request"][1].startswith(b"HTTP/1.1 200")
    assert took["idle, nothing sent"][0] >= IDLE * 0.8  # closed by the timeout, not at once
    async with served.http.get(served.bot.url + "/healthz") as resp:
        assert resp.status == 200


@sqlite_only
async def test_clients_going_away_are_logged_at_info_without_a_traceback(served):
    port = served.bot.port
    for _ in range(10):
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HEADERS + b"Content-Length: 500\r\n\r\n{\"type\": \"event_callback\"")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
    await asyncio.sleep(0.5)
    async with served.http.get(served.bot.url + "/healthz") as resp:
        assert resp.status == 200
    log = served.bot.log.read_text(errors="replace")
    assert log.count("the client went away before sending its whole request") == 10, served.bot.tail()
    assert " ERROR " not in log and "Traceback" not in log, served.bot.tail()
