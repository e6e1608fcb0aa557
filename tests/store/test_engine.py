"""The engine contract: both databases behave the same for what the store relies on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.store import IntegrityError, Store, open_store
from server.store.migrate import migrate
from server.store.sqlite import SqliteDatabase
from tests.databases import fresh_pg_database


async def test_commit_is_visible_and_rollback_is_not(store: Store) -> None:
    now = 1
    async with store.db.transaction("t") as txn:
        await txn.execute("INSERT INTO accounts (phone, created_at) VALUES ($1, $2)", "+1", now)
    with pytest.raises(RuntimeError):
        async with store.db.transaction("t") as txn:
            await txn.execute("INSERT INTO accounts (phone, created_at) VALUES ($1, $2)", "+2", now)
            raise RuntimeError("boom")
    async with store.db.transaction("t") as txn:
        phones = [row["phone"] for row in await txn.fetch("SELECT phone FROM accounts")]
    assert phones == ["+1"]


async def test_unique_violation_is_integrity_error_and_rolls_back(store: Store) -> None:
    async with store.db.transaction("t") as txn:
        await txn.execute("INSERT INTO accounts (phone, created_at) VALUES ($1, 1)", "+1")
    with pytest.raises(IntegrityError):
        async with store.db.transaction("t") as txn:
            await txn.execute("INSERT INTO accounts (phone, created_at) VALUES ($1, 1)", "+3")
            await txn.execute("INSERT INTO accounts (phone, created_at) VALUES ($1, 1)", "+1")
    async with store.db.transaction("t") as txn:
        assert await txn.fetchval("SELECT count(*) FROM accounts") == 1


async def test_execute_counts_rows_and_parameters_repeat(store: Store) -> None:
    async with store.db.transaction("t") as txn:
        await txn.executemany(
            "INSERT INTO accounts (phone, created_at) VALUES ($1, $2)",
            [("+1", 5), ("+2", 5), ("+3", 7)],
        )
        changed = await txn.execute(
            "UPDATE accounts SET created_at = $1 WHERE created_at = $2 OR created_at = $1", 10, 5
        )
        assert changed == 2
        assert await txn.fetchval("SELECT count(*) FROM accounts WHERE created_at = $1", 10) == 2
        assert await txn.fetchrow("SELECT id FROM accounts WHERE phone = $1", "nobody") is None


async def test_concurrent_transactions_do_not_interleave(store: Store) -> None:
    async with store.db.transaction("t") as txn:
        await txn.execute("INSERT INTO chats (kind, title, created_at) VALUES ('manual', 'x', 1)")

    async def bump() -> None:
        async with store.db.transaction("bump") as txn:
            await txn.fetchval("UPDATE chats SET last_seq = last_seq + 1 RETURNING last_seq")

    await asyncio.gather(*(bump() for _ in range(50)))
    async with store.db.transaction("t") as txn:
        assert await txn.fetchval("SELECT last_seq FROM chats") == 50


async def test_cancelled_transaction_leaves_the_database_usable(store: Store) -> None:
    started = asyncio.Event()

    async def stuck() -> None:
        async with store.db.transaction("stuck") as txn:
            await txn.execute("INSERT INTO accounts (phone, created_at) VALUES ('+9', 1)")
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(stuck())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with store.db.transaction("after") as txn:
        assert await txn.fetchval("SELECT count(*) FROM accounts") == 0


async def test_postgres_connections_go_back_to_the_pool_holding_no_advisory_lock(
    tmp_path: Path,
) -> None:
    # The pool no longer resets sessions on release (server/store/postgres.py): a lock taken
    # for the session instead of the transaction would stay held, and the next migration or
    # any other taker of it would wait forever.
    store = await open_store(await fresh_pg_database(), tmp_path)  # migrations take the lock
    try:
        async with store.db.transaction("t") as txn:
            held = await txn.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
            )
        assert held == 0
        # And a migration run on the same pool again does not wait for one.
        await asyncio.wait_for(migrate(store.db), 10)
    finally:
        await store.close()


# --- SQLite's group commit (server/store/sqlite.py) ------------------------------------


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    store = await open_store(None, tmp_path)
    assert isinstance(store.db, SqliteDatabase)
    try:
        yield store.db
    finally:
        await store.close()


async def _insert_account(db: SqliteDatabase, phone: str, fail: bool = False) -> None:
    async with db.transaction("t") as txn:
        await txn.execute("INSERT INTO accounts (phone, created_at) VALUES ($1, 1)", phone)
        if fail:
            raise RuntimeError("boom")


async def _phones(db: SqliteDatabase) -> list[str]:
    async with db.read("t") as txn:
        return [r["phone"] for r in await txn.fetch("SELECT phone FROM accounts ORDER BY id")]


async def test_sqlite_commits_a_burst_of_transactions_with_fewer_fsyncs(
    sqlite_db: SqliteDatabase,
) -> None:
    before = sqlite_db.commits
    await asyncio.gather(*(_insert_account(sqlite_db, f"+{n}") for n in range(100)))
    # Every caller came back only once its row was durable, and the rows are all there.
    assert await _phones(sqlite_db) == [f"+{n}" for n in range(100)]
    assert 1 < sqlite_db.commits - before < 100


async def test_sqlite_a_failed_transaction_in_a_group_takes_only_its_own_writes(
    sqlite_db: SqliteDatabase,
) -> None:
    results = await asyncio.gather(
        *(_insert_account(sqlite_db, f"+{n}", fail=n % 3 == 1) for n in range(30)),
        _insert_account(sqlite_db, "+0"),  # a unique violation inside the group
        return_exceptions=True,
    )
    failed = [n for n, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [n for n in range(30) if n % 3 == 1] + [30]
    assert isinstance(results[30], IntegrityError)
    assert await _phones(sqlite_db) == [f"+{n}" for n in range(30) if n % 3 != 1]


async def test_sqlite_a_group_whose_commit_fails_fails_every_caller(
    sqlite_db: SqliteDatabase,
) -> None:
    # A deferred foreign key is checked at COMMIT: the one way to make a COMMIT refuse.
    async with sqlite_db.transaction("ddl") as txn:
        await txn.execute("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
        await txn.execute(
            "CREATE TABLE children (parent INTEGER REFERENCES parents (id)"
            " DEFERRABLE INITIALLY DEFERRED)"
        )

    async def orphan() -> None:
        async with sqlite_db.transaction("orphan") as txn:
            await txn.execute("INSERT INTO children (parent) VALUES (42)")

    results = await asyncio.gather(
        *(_insert_account(sqlite_db, f"+{n}") for n in range(5)),
        orphan(),
        *(_insert_account(sqlite_db, f"+{n}") for n in range(5, 10)),
        return_exceptions=True,
    )
    # Whoever shared the orphan's COMMIT was told it failed; nobody told "done" lost a row.
    done = [f"+{n}" for n, r in zip(range(11), results, strict=True) if r is None and n < 5]
    done += [f"+{n - 1}" for n, r in zip(range(11), results, strict=True) if r is None and n > 5]
    assert isinstance(results[5], IntegrityError)
    assert await _phones(sqlite_db) == done
    assert len(done) < 10
    await _insert_account(sqlite_db, "+after")  # and the writer goes on
    assert (await _phones(sqlite_db))[-1] == "+after"
