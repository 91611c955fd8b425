"""Who asked for the incident lock, who got it, and when transactions ended, by asyncio task.

A race test holds a transaction open (a page stopped at the fake provider), starts
a second task that needs the same lock, and must know that the second task is
really waiting for it before it lets the first one go on: a sleep cannot tell
"waiting" from "slow". :class:`LockLog` listens to the engine's own events (it
changes nothing in the code under test) and records, per task, when a statement
that takes the lock was sent (``asked``), when it returned (``got``) and when
the transaction committed or rolled back (``ended``). The statements that lock:
``SELECT … FOR UPDATE`` without ``SKIP LOCKED`` on PostgreSQL, and on SQLite
``BEGIN IMMEDIATE`` (every transaction takes the database's write lock first).

A task that *asked* while another task's transaction that *got* the lock had not
*ended* cannot *get* it before that one ends: the database guarantees it. So
``await log.asked(after=log.mark())`` is the gate, and ``log.waited(...)`` the order
to assert.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class Entry:
    what: str  # "asked" | "got" | "ended"
    task: asyncio.Task | None


def _locks(statement: str) -> bool:
    upper = statement.upper()
    if upper.startswith("BEGIN IMMEDIATE"):
        return True
    return "FOR UPDATE" in upper and "SKIP LOCKED" not in upper


class LockLog:
    def __init__(self, *engines: AsyncEngine) -> None:
        """Listen to ``engines`` (two "processes" on one database: both engines)."""
        self.entries: list[Entry] = []
        listeners = {"before_cursor_execute": self._before, "after_cursor_execute": self._after,
                     "commit": self._ended, "rollback": self._ended}
        for engine in engines:
            for name, listener in listeners.items():
                event.listen(engine.sync_engine, name, listener)

    def _record(self, what: str) -> None:
        self.entries.append(Entry(what, asyncio.current_task()))

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if _locks(statement):
            self._record("asked")

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if _locks(statement):
            self._record("got")

    def _ended(self, conn) -> None:
        self._record("ended")

    def mark(self) -> int:
        """The current position: pass it as ``after`` to look only at what comes next."""
        return len(self.entries)

    def _holding(self, before: int) -> set[asyncio.Task | None]:
        holding: set[asyncio.Task | None] = set()
        for entry in self.entries[:before]:
            if entry.what == "got":
                holding.add(entry.task)
            elif entry.what == "ended":
                holding.discard(entry.task)
        return holding

    def _find(self, what: str, task: asyncio.Task | None, after: int) -> int | None:
        for position in range(after + 1, len(self.entries)):
            entry = self.entries[position]
            if entry.what == what and entry.task is task:
                return position
        return None

    def _first_waiter(self, after: int) -> int | None:
        for position in range(after, len(self.entries)):
            entry = self.entries[position]
            if entry.what == "asked" and entry.task not in self._holding(position):
                return position
        return None

    async def asked(self, *, after: int, timeout: float = 10) -> int:
        """Wait until a task that does not hold the lock asks for it, after position ``after``
        (fail after ``timeout`` s); the position of that request."""
        deadline = time.monotonic() + timeout
        while (position := self._first_waiter(after)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"nobody asked for the lock in {timeout:g}s: {self.entries[after:]}")
            await asyncio.sleep(0.005)
        return position

    def waited(self, asked: int) -> None:
        """Assert that the request at position ``asked`` came while another task's transaction
        held the lock, and was granted only after that transaction ended."""
        waiter = self.entries[asked].task
        holding = self._holding(asked) - {waiter}
        assert holding, f"nobody held the lock at request {asked}: {self.entries}"
        got = self._find("got", waiter, asked)
        assert got is not None, f"request {asked} was never granted: {self.entries}"
        ended = [self._find("ended", holder, asked) for holder in holding]
        assert all(e is not None for e in ended) and max(ended) < got, (
            f"request {asked} was granted while the lock was held: {self.entries}")
