"""The database enforces one active rollback per service (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from bot.db.engine import create_engine, create_sessionmaker, transaction
from bot.db.migrate import alembic_config
from bot.rollback.models import ACTIVE_STATES, ONE_ACTIVE_INDEX, Rollback, RollbackStatus

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def _row(service: str, state: RollbackStatus) -> Rollback:
    return Rollback(service=service, provider="render", state=state, requested_by="U1", requested_at=T0,
                    expires_at=T0, current_id="dep-2", target_id="dep-1", plan={}, updated_at=T0)


async def test_one_active_rollback_per_service_is_a_database_rule(database_url):
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    try:
        async with transaction(sessions) as session:
            session.add(_row("api", RollbackStatus.SUCCEEDED))
            session.add(_row("api", RollbackStatus.FAILED))
            session.add(_row("api", RollbackStatus.PREVIEW))
            session.add(_row("web", RollbackStatus.ROLLING_BACK))
        for state in sorted(ACTIVE_STATES):
            with pytest.raises(IntegrityError):
                async with transaction(sessions) as session:
                    session.add(_row("api", state))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_migration_creates_the_partial_index_and_downgrades(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("rollbacks"))
        index = next(i for i in indexes if i["name"] == ONE_ACTIVE_INDEX)
        assert index["unique"] and index["column_names"] == ["service"]
        assert "preview" in str(index.get("dialect_options", {}).get("sqlite_where", ""))
    finally:
        await engine.dispose()
    config = alembic_config(database_url)
    import asyncio

    await asyncio.to_thread(command.downgrade, config, "0004_rollback@-1")
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "rollbacks" not in tables and "incidents" in tables
    finally:
        await engine.dispose()
