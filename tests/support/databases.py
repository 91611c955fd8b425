"""Databases for tests: a fresh SQLite file, or a fresh PostgreSQL database per test.

PostgreSQL is at ``$FIREBREAK_TEST_PG`` (default 127.0.0.1:5432, trust auth). When it
is unreachable its tests skip with a message saying why; in CI (``CI=true``) a skip
fails the run (tests/support/isolation.py).
"""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest

PG_ADMIN_DSN = os.environ.get("FIREBREAK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_server_dsn(database: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


async def new_pg_database(prefix: str = "fb_test", *, admin_dsn: str = PG_ADMIN_DSN) -> str:
    """Create an empty database and return its name (raises if PostgreSQL is unreachable)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def create_pg_database() -> str:
    """A fresh database for a test: skips if PostgreSQL is unreachable (a failure in CI)."""
    try:
        return await new_pg_database()
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN} ({exc}); set FIREBREAK_TEST_PG")


async def drop_pg_database(name: str, *, admin_dsn: str = PG_ADMIN_DSN) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def pg_url(name: str) -> str:
    return _pg_server_dsn(name).replace("postgresql://", "postgresql+asyncpg://", 1)
