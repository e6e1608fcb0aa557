"""The two engines for tests: SQLite in a temporary file, PostgreSQL in a fresh database.

PostgreSQL runs on 127.0.0.1:5432 on every machine; each test run creates its own
database (dropped at exit) and each test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from server.store import Store, open_store

DATABASES = ["sqlite", "postgres"]
PG_SERVER = os.environ.get("PARTA_TEST_PG", "postgresql://postgres@127.0.0.1:5432")

_run_db: str | None = None
_migrated = False


def _admin_dsn() -> str:
    return f"{PG_SERVER}/postgres"


async def _create_database(name: str) -> None:
    conn = await asyncpg.connect(_admin_dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect(_admin_dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def fresh_pg_database() -> str:
    """A new, empty database; dropped when the test process exits."""
    name = f"parta_test_{os.getpid()}_{secrets.token_hex(4)}"
    await _create_database(name)
    atexit.register(lambda: asyncio.run(_drop_database(name)))
    return f"{PG_SERVER}/{name}"


async def _run_database() -> str:
    global _run_db
    if _run_db is None:
        _run_db = await fresh_pg_database()
    return _run_db


async def _truncate(store: Store) -> None:
    async with store.db.transaction("truncate") as txn:
        rows = await txn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'schema_migrations'"
        )
        if rows:
            names = ", ".join(f'"{row[0]}"' for row in rows)
            await txn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@asynccontextmanager
async def open_test_store(engine: str, tmp_path: Path) -> AsyncIterator[Store]:
    global _migrated
    if engine == "sqlite":
        store = await open_store(None, tmp_path)
    else:
        store = await open_store(await _run_database(), tmp_path, run_migrations=not _migrated)
        _migrated = True
        await _truncate(store)
    try:
        yield store
    finally:
        await store.close()
