"""Numbered migrations, run at start and by ``parta migrate``.

``migrations/NNNN_name.sql`` serves both engines; ``{{id}}`` and ``{{blob}}`` become each
dialect's identity column and binary type. Where the dialects truly differ, a migration
ships as ``NNNN_name.sqlite.sql`` and ``NNNN_name.postgres.sql`` instead. Each migration
runs in one transaction together with its row in ``schema_migrations``.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from importlib import resources

from server.store.engine import Database

logger = logging.getLogger("parta.store")

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.sql$")
_TOKEN = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    found: dict[int, Migration] = {}
    for entry in resources.files("server.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        version, name, only = int(match[1]), match[2], match[3]
        if only is not None and only != dialect:
            continue
        if version in found:
            if found[version].name != name:
                # Two migrations with one number: one of them would silently never run.
                raise ValueError(
                    f"migration {version:04d} is both {found[version].name} and {name}"
                )
            if only is None:
                continue  # a dialect-specific file wins over the shared one
        found[version] = Migration(version, name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def split_statements(sql: str) -> list[str]:
    # Migrations end each statement with ";" at the end of a line; no procedural bodies.
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";").strip()]


async def migrate(db: Database) -> list[int]:
    """Apply every migration not yet applied; returns the versions applied now."""
    async with db.transaction("migrations_table") as txn:
        await txn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        )
    applied: list[int] = []
    for migration in load_migrations(db.dialect):
        async with db.transaction(f"migration_{migration.version:04d}") as txn:
            if db.migration_lock:
                await txn.execute(db.migration_lock)
            done = await txn.fetchval(
                "SELECT 1 FROM schema_migrations WHERE version = $1", migration.version
            )
            if done:
                continue
            sql = _TOKEN.sub(lambda m: db.migration_tokens[m[1]], migration.sql)
            for statement in split_statements(sql):
                await txn.execute(statement.rstrip(";"))
            await txn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                int(time.time() * 1000),
            )
        applied.append(migration.version)
        logger.info("migrated", extra={"version": migration.version, "migration": migration.name})
    return applied
