"""The database engine interface: what the store's queries run on.

Queries are written once, in PostgreSQL's dialect with ``$1``-style parameters; each engine
adapts what differs (parameter style, identity columns, binary type) so that dialect
checks never spread through the queries. Every transaction has a name, for logs and
for the slow-transaction warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

logger = logging.getLogger("parta.store")

Dialect = Literal["sqlite", "postgres"]


class Row(Protocol):
    """A result row: ``sqlite3.Row`` and ``asyncpg.Record`` both read by column name."""

    def __getitem__(self, key: str | int, /) -> Any: ...


class Txn(Protocol):
    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...


class Database(Protocol):
    @property
    def dialect(self) -> Dialect: ...

    @property
    def migration_tokens(self) -> Mapping[str, str]:
        """What ``{{name}}`` placeholders in migrations become in this dialect."""
        ...

    @property
    def migration_lock(self) -> str | None:
        """A statement that keeps two servers starting at once from both migrating."""
        ...

    def transaction(self, name: str) -> AbstractAsyncContextManager[Txn]:
        """One transaction: committed when the block exits normally, rolled back otherwise."""
        ...

    def read(self, name: str) -> AbstractAsyncContextManager[Txn]:
        """Reads that each see committed data (one statement, one snapshot), running
        alongside transactions. Use ``transaction`` when several reads must agree."""
        ...

    async def close(self) -> None: ...


class IntegrityError(Exception):
    """A constraint refused a write (unique key, foreign key): the same on both engines."""


SLOW_TRANSACTION_SECONDS = 0.5


def log_if_slow(name: str, started: float) -> None:
    """Warn about a transaction that held the database longer than it should."""
    elapsed = time.monotonic() - started
    if elapsed > SLOW_TRANSACTION_SECONDS:
        logger.warning("slow transaction", extra={"txn": name, "seconds": round(elapsed, 3)})
