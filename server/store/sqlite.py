"""The embedded engine: stdlib ``sqlite3`` on dedicated threads, in WAL mode.

Two threads, two connections. The writer runs transactions one at a time (SQLite has one
writer; an asyncio lock keeps a transaction's statements together on its connection). The
reader runs single-statement reads concurrently with them, which WAL allows, so a chat
history page never waits behind a roster sync. The event loop never blocks: it queues a job
for a thread and awaits a future that the thread resolves with ``call_soon_threadsafe``. A
transaction's BEGIN travels with its first statement and a read needs no BEGIN at all, so
a read costs one thread hop and a write transaction one per statement plus the commit.

Group commit: a COMMIT is an fsync (``synchronous = FULL``), and one fsync per transaction
made the writer the chat's limit (posts queued behind each other's fsync). When other
transactions are already waiting for the writer, a finished transaction does not commit:
it is released as a savepoint inside the open SQLite transaction, and the next one runs on
top of it; the last of the burst (or one that finds the group at ``GROUP_MAX`` or older
than ``GROUP_MAX_S``) commits them all with one fsync. Each caller leaves ``transaction()``
only once its work is durable, as before; if the COMMIT fails, every transaction of the
group fails. A transaction that fails alone is rolled back to its savepoint. The price: a
transaction that left its commit to a long one behind it (a whole roster) is acknowledged
when that one ends, as one that came a moment later and queued behind it always was.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, Final

from server.store.engine import Dialect, IntegrityError, Row, Txn, log_if_slow

_PARAM = re.compile(r"\$(\d+)")
_STOP: Final = object()

# What a job asks of its thread.
_EXECUTE, _EXECUTEMANY, _FETCH, _FETCHROW, _COMMIT, _ROLLBACK, _RELEASE, _UNDO = range(8)

# A group commits at the latest after this many transactions or this long after it began:
# the first transaction of a busy burst waits no longer than that for its fsync.
GROUP_MAX: Final = 32
GROUP_MAX_S: Final = 0.005
_SAVEPOINT: Final = "SAVEPOINT txn"


@functools.lru_cache(maxsize=1024)
def _translate(sql: str) -> str:
    # SQLite understands numbered parameters as ?NNN.
    return _PARAM.sub(r"?\1", sql)


def _connect(path: str, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before we acknowledge it, even across a power cut.
        conn.execute("PRAGMA synchronous = FULL")
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _run(conn: sqlite3.Connection, begin: str | None, op: int, sql: str, args: Any) -> Any:
    if begin is not None:
        conn.execute(begin)
    if op == _FETCH:
        return conn.execute(_translate(sql), args).fetchall()
    if op == _FETCHROW:
        return conn.execute(_translate(sql), args).fetchone()
    if op == _EXECUTE:
        return conn.execute(_translate(sql), args).rowcount
    if op == _EXECUTEMANY:
        return conn.executemany(_translate(sql), args).rowcount
    if op == _COMMIT:
        conn.execute("COMMIT")
    elif op == _RELEASE:
        conn.execute("RELEASE txn")
    elif op == _UNDO:  # one transaction of a group: only its own writes
        conn.execute("ROLLBACK TO txn")
        conn.execute("RELEASE txn")
    elif conn.in_transaction:  # _ROLLBACK
        conn.execute("ROLLBACK")
    return None


class _Thread:
    """One connection and the thread that owns it, fed by a FIFO of jobs."""

    def __init__(self, path: str, name: str, *, readonly: bool) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._conn = _connect(path, readonly=readonly)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn = self._conn
        while True:
            job = self._jobs.get()
            if job is _STOP:
                conn.close()
                return
            fut, loop, begin, op, sql, args = job
            try:
                result = _run(conn, begin, op, sql, args)
            except sqlite3.IntegrityError as exc:
                loop.call_soon_threadsafe(_fail, fut, IntegrityError(str(exc)))
            except BaseException as exc:
                loop.call_soon_threadsafe(_fail, fut, exc)
            else:
                loop.call_soon_threadsafe(_succeed, fut, result)

    def call(
        self, begin: str | None, op: int, sql: str = "", args: Any = ()
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((fut, loop, begin, op, sql, args))
        return fut

    def stop(self) -> None:
        self._jobs.put(_STOP)
        self._thread.join()


class _SqliteTxn:
    __slots__ = ("_begin", "_thread", "began")

    def __init__(self, thread: _Thread, begin: str | None) -> None:
        self._thread = thread
        # Sent along with the first statement, then never again.
        self._begin = begin
        self.began = False

    def _call(self, op: int, sql: str, args: Any) -> asyncio.Future[Any]:
        begin, self._begin = self._begin, None
        if begin is not None:
            self.began = True
        return self._thread.call(begin, op, sql, args)

    async def execute(self, sql: str, *args: Any) -> int:
        rowcount: int = await self._call(_EXECUTE, sql, args)
        return rowcount

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self._call(_EXECUTEMANY, sql, list(args))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        rows: list[Row] = await self._call(_FETCH, sql, args)
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._call(_FETCHROW, sql, args)
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
        self._lock = asyncio.Lock()
        self._writer = _Thread(self.path, "sqlite-writer", readonly=False)
        self._reader = _Thread(self.path, "sqlite-reader", readonly=True)
        self._closed = False
        # Transactions waiting for the lock: while there are some, a finished one leaves
        # its commit to them.
        self._queued = 0
        # The open group: its transactions' futures (resolved at its COMMIT), when it began.
        self._group: list[asyncio.Future[None]] = []
        self._group_began = 0.0
        self.commits = 0

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[Txn]:
        if self._closed:
            raise RuntimeError("database is closed")
        self._queued += 1
        try:
            await self._lock.acquire()
        finally:
            self._queued -= 1
        started = time.monotonic()
        durable: asyncio.Future[None] | None = None
        try:
            grouped = bool(self._group)
            txn = _SqliteTxn(self._writer, _SAVEPOINT if grouped else "BEGIN IMMEDIATE")
            try:
                yield txn
            except BaseException:
                # The jobs queue is FIFO, so this runs after any statement still in flight.
                if txn.began:
                    await asyncio.shield(self._writer.call(None, _UNDO if grouped else _ROLLBACK))
                raise
            if txn.began:
                if grouped:
                    await asyncio.shield(self._writer.call(None, _RELEASE))
                else:
                    self._group_began = time.monotonic()
                durable = asyncio.get_running_loop().create_future()
                self._group.append(durable)
        finally:
            try:
                if self._group and (
                    not self._queued
                    or len(self._group) >= GROUP_MAX
                    or time.monotonic() - self._group_began >= GROUP_MAX_S
                ):
                    await asyncio.shield(self._commit())
            finally:
                self._lock.release()
        if durable is not None:
            await durable
        log_if_slow(name, started)

    async def _commit(self) -> None:
        """COMMIT the open group (holding the lock): one fsync for all its transactions."""
        group, self._group = self._group, []
        try:
            await self._writer.call(None, _COMMIT)
        except BaseException as exc:
            try:
                await self._writer.call(None, _ROLLBACK)
            finally:
                for fut in group:
                    _fail(fut, exc)
            return
        self.commits += 1
        for fut in group:
            _succeed(fut, None)

    @asynccontextmanager
    async def read(self, name: str) -> AsyncIterator[Txn]:
        if self._closed:
            raise RuntimeError("database is closed")
        yield _SqliteTxn(self._reader, None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._reader.stop)
            await loop.run_in_executor(None, self._writer.stop)


def _succeed(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.cancelled():
        fut.set_exception(exc)
