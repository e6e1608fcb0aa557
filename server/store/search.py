"""Searching one's messages: SQLite FTS5 over Snowball stems, PostgreSQL's Russian text
search. Both stem Russian ("урок", "уроки", "уроков" find each other); the difference
between the engines stays in this module."""

from __future__ import annotations

import re
from typing import Protocol

import Stemmer

from server.store.engine import Dialect, Txn

_WORD = re.compile(r"\w+", re.UNICODE)
_CYRILLIC = re.compile(r"[а-яё]")
_russian = Stemmer.Stemmer("russian")
_english = Stemmer.Stemmer("english")
MAX_TERMS = 12


def stems(text: str) -> list[str]:
    """Lower-cased Snowball stems of the words in ``text`` (Russian or English)."""
    words = _WORD.findall(text.lower().replace("ё", "е"))
    return [
        (_russian if _CYRILLIC.search(word) else _english).stemWord(word)
        for word in words
        if not word.isdigit() or len(word) > 1
    ]


class SearchIndex(Protocol):
    async def index(self, txn: Txn, chat_id: int, seq: int, text: str | None) -> None: ...

    async def remove(self, txn: Txn, chat_id: int, seq: int) -> None: ...

    async def find(
        self, txn: Txn, account_id: int, query: str, chat_id: int | None, limit: int
    ) -> list[tuple[int, int]]:
        """(chat id, seq) of the account's messages that match, best first."""
        ...


def _rowid(chat_id: int, seq: int) -> int:
    """A message's row in the SQLite index (migration 0007): FTS5 finds a row by its rowid
    only; by the unindexed chat_id and seq columns it reads the whole table."""
    return chat_id << 32 | seq


class SqliteSearch:
    async def index(self, txn: Txn, chat_id: int, seq: int, text: str | None) -> None:
        await self.remove(txn, chat_id, seq)
        if text:
            await txn.execute(
                "INSERT INTO message_search (rowid, stems, chat_id, seq) VALUES ($1, $2, $3, $4)",
                _rowid(chat_id, seq),
                " ".join(stems(text)),
                chat_id,
                seq,
            )

    async def remove(self, txn: Txn, chat_id: int, seq: int) -> None:
        await txn.execute("DELETE FROM message_search WHERE rowid = $1", _rowid(chat_id, seq))

    async def find(
        self, txn: Txn, account_id: int, query: str, chat_id: int | None, limit: int
    ) -> list[tuple[int, int]]:
        terms = list(dict.fromkeys(stems(query)))[:MAX_TERMS]
        if not terms:
            return []
        # Each stem quoted (no FTS syntax from users), with a prefix match for the last one.
        match = " ".join(f'"{t}"' for t in terms[:-1]) + f' "{terms[-1]}"*'
        rows = await txn.fetch(
            "SELECT s.chat_id, s.seq FROM message_search s"
            " JOIN chat_members m ON m.chat_id = s.chat_id AND m.account_id = $2"
            " WHERE message_search MATCH $1 AND s.seq > m.cleared_seq"
            " AND ($3 = 0 OR s.chat_id = $3) ORDER BY rank LIMIT $4",
            match.strip(),
            account_id,
            chat_id or 0,
            limit,
        )
        return [(row[0], row[1]) for row in rows]


class PostgresSearch:
    async def index(self, txn: Txn, chat_id: int, seq: int, text: str | None) -> None:
        pass  # an expression index follows the text by itself

    async def remove(self, txn: Txn, chat_id: int, seq: int) -> None:
        pass

    async def find(
        self, txn: Txn, account_id: int, query: str, chat_id: int | None, limit: int
    ) -> list[tuple[int, int]]:
        rows = await txn.fetch(
            "SELECT e.chat_id, e.seq FROM chat_events e"
            " JOIN chat_members m ON m.chat_id = e.chat_id AND m.account_id = $2"
            " WHERE e.kind = 'message' AND NOT e.deleted AND e.seq > m.cleared_seq"
            " AND to_tsvector('russian', coalesce(e.text, '')) @@ plainto_tsquery('russian', $1)"
            " AND ($3 = 0 OR e.chat_id = $3)"
            " ORDER BY ts_rank(to_tsvector('russian', coalesce(e.text, '')),"
            " plainto_tsquery('russian', $1)) DESC, e.at DESC LIMIT $4",
            query,
            account_id,
            chat_id or 0,
            limit,
        )
        return [(row[0], row[1]) for row in rows]


def search_index(dialect: Dialect) -> SearchIndex:
    return SqliteSearch() if dialect == "sqlite" else PostgresSearch()
