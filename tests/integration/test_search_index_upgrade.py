"""Messages indexed for search before migration 0007 can still be edited out and deleted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from server.store.migrate import load_migrations, migrate
from server.store.search import SqliteSearch
from server.store.sqlite import SqliteDatabase


async def test_messages_indexed_before_the_rowid_keys_leave_search_when_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = SqliteDatabase(tmp_path / "parta.db")
    try:
        every = load_migrations("sqlite")
        with monkeypatch.context() as before:
            # ``server.store`` exports the function ``migrate`` under the module's name.
            module = sys.modules[migrate.__module__]
            before.setattr(module, "load_migrations", lambda _: [m for m in every if m.version < 7])
            await migrate(db)
        async with db.transaction("old_rows") as txn:
            # As 0005 indexed them: rowids in insertion order.
            for chat_id, seq, stems in ((3, 5, "урок"), (4, 5, "урок"), (3, 6, "контрольн")):
                await txn.execute(
                    "INSERT INTO message_search (stems, chat_id, seq) VALUES ($1, $2, $3)",
                    stems,
                    chat_id,
                    seq,
                )
        assert await migrate(db) == [7]
        search = SqliteSearch()
        async with db.transaction("delete") as txn:
            await search.remove(txn, 3, 5)
            await search.index(txn, 3, 6, "Занятия отменили")
        async with db.read("left") as reader:
            rows = await reader.fetch(
                "SELECT chat_id, seq, stems FROM message_search ORDER BY chat_id, seq"
            )
        assert [tuple(r) for r in rows] == [(3, 6, "занят отмен"), (4, 5, "урок")]
    finally:
        await db.close()
