"""The embedded engine: stdlib ``sqlite3`` on one dedicated thread, in WAL mode.

SQLite allows one writer at a time, so transactions are serialised by an asyncio lock and
every statement of a transaction runs on the same thread and connection. The event loop
never blocks on the database: it hands a job to the thread and awaits a future that the
thread resolves with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

from server.store.engine import Dialect, IntegrityError, Row, Txn, log_if_slow

T = TypeVar("T")

_PARAM = re.compile(r"\$(\d+)")
_STOP: Final = object()


@functools.lru_cache(maxsize=1024)
def _translate(sql: str) -> str:
    # SQLite understands numbered parameters as ?NNN.
    return _PARAM.sub(r"?\1", sql)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    for pragma in (
        "journal_mode = WAL",
        # FULL: a commit is on disk before we acknowledge it, even across a power cut.
        "synchronous = FULL",
        "foreign_keys = ON",
        "busy_timeout = 5000",
    ):
        conn.execute(f"PRAGMA {pragma}")
    return conn


class _SqliteTxn:
    __slots__ = ("_db",)

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._db.call(lambda c: c.execute(_translate(sql), args).rowcount)

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        rows = list(args)
        await self._db.call(lambda c: c.executemany(_translate(sql), rows))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._db.call(lambda c: c.execute(_translate(sql), args).fetchall())

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._db.call(lambda c: c.execute(_translate(sql), args).fetchone())
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]


class SqliteDatabase:
    dialect: ClassVar[Dialect] = "sqlite"
    # BEGIN IMMEDIATE already takes the write lock.
    migration_lock: ClassVar[str | None] = None
    migration_tokens: ClassVar[dict[str, str]] = {
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "blob": "BLOB",
    }

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = asyncio.Lock()
        self._conn = _connect(self.path)
        self._thread = threading.Thread(target=self._serve, name="sqlite", daemon=True)
        self._thread.start()
        self._closed = False

    def _serve(self) -> None:
        conn = self._conn
        while True:
            job = self._jobs.get()
            if job is _STOP:
                conn.close()
                return
            fn, fut, loop = job
            try:
                result = fn(conn)
            except sqlite3.IntegrityError as exc:
                loop.call_soon_threadsafe(_fail, fut, IntegrityError(str(exc)))
            except BaseException as exc:
                loop.call_soon_threadsafe(_fail, fut, exc)
            else:
                loop.call_soon_threadsafe(_succeed, fut, result)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the database thread and return its result."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, fut, loop))
        return await fut

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[Txn]:
        if self._closed:
            raise RuntimeError("database is closed")
        async with self._lock:
            started = time.monotonic()
            try:
                await self.call(_begin)
                yield _SqliteTxn(self)
                await asyncio.shield(self.call(_commit))
            except BaseException:
                # The jobs queue is FIFO, so this runs after any statement still in flight.
                await asyncio.shield(self.call(_rollback))
                raise
            log_if_slow(name, started)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            self._jobs.put(_STOP)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)


def _succeed(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.cancelled():
        fut.set_exception(exc)


def _begin(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")


def _commit(conn: sqlite3.Connection) -> None:
    conn.execute("COMMIT")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
