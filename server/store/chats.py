"""Chats, their members and their event log.

Each chat keeps ``last_seq``; appending an event bumps it and inserts the event with the
new value in the same transaction, so a chat's log has no gaps and no two events share a
number. The log is what clients resume from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from protocol.messages import ChatInfo, Event, Member, Role
from server.store.engine import Database, Row, Txn

_EVENT_COLUMNS = "chat_id, seq, kind, actor_id, at, client_id, text, member_id, role, title"


def _event(row: Row) -> Event:
    return Event(
        chat_id=row[0],
        seq=row[1],
        kind=row[2],
        actor_id=row[3],
        at=row[4],
        client_id=row[5],
        text=row[6],
        member_id=row[7],
        role=row[8],
        title=row[9],
    )


_CHAT_INFO = """
SELECT c.id, c.kind, c.title, m.role,
       (SELECT count(*) FROM chat_members x WHERE x.chat_id = c.id),
       c.last_seq, m.read_seq,
       (SELECT count(*) FROM chat_events e
         WHERE e.chat_id = c.id AND e.seq > m.read_seq AND e.kind = 'message'
           AND e.actor_id <> m.account_id)
FROM chat_members m JOIN chats c ON c.id = m.chat_id
"""


def _chat_info(row: Row) -> ChatInfo:
    return ChatInfo(
        id=row[0],
        kind=row[1],
        title=row[2],
        role=row[3],
        member_count=row[4],
        last_seq=row[5],
        read_seq=row[6],
        unread=row[7],
    )


async def _append(
    txn: Txn, chat_id: int, kind: str, actor_id: int, at: int, **fields: Any
) -> Event:
    seq: int = await txn.fetchval(
        "UPDATE chats SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq", chat_id
    )
    event = Event(chat_id=chat_id, seq=seq, kind=kind, actor_id=actor_id, at=at, **fields)
    await txn.execute(
        f"INSERT INTO chat_events ({_EVENT_COLUMNS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        chat_id,
        seq,
        kind,
        actor_id,
        at,
        event.client_id,
        event.text,
        event.member_id,
        event.role,
        event.title,
    )
    return event


class ChatStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        kind: str,
        title: str,
        created_by: int,
        members: Sequence[tuple[int, Role]],
        now: int,
    ) -> tuple[int, Event]:
        """Create a chat with its first members; returns its id and its ``created`` event."""
        async with self._db.transaction("create_chat") as txn:
            chat_id: int = await txn.fetchval(
                "INSERT INTO chats (kind, title, created_by, created_at) VALUES ($1, $2, $3, $4)"
                " RETURNING id",
                kind,
                title,
                created_by,
                now,
            )
            await txn.executemany(
                "INSERT INTO chat_members (chat_id, account_id, role, joined_at)"
                " VALUES ($1, $2, $3, $4)",
                [(chat_id, account_id, role, now) for account_id, role in members],
            )
            event = await _append(txn, chat_id, "created", created_by, now, title=title)
        return chat_id, event

    async def add_member(
        self, chat_id: int, account_id: int, role: Role, actor_id: int, now: int
    ) -> Event | None:
        """Add a member and log it; None when they are a member already."""
        async with self._db.transaction("add_member") as txn:
            added = await txn.execute(
                "INSERT INTO chat_members (chat_id, account_id, role, joined_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (chat_id, account_id) DO NOTHING",
                chat_id,
                account_id,
                role,
                now,
            )
            if not added:
                return None
            return await _append(
                txn, chat_id, "member_added", actor_id, now, member_id=account_id, role=role
            )

    async def role_of(self, chat_id: int, account_id: int) -> Role | None:
        async with self._db.read("role_of") as txn:
            role = await txn.fetchval(
                "SELECT role FROM chat_members WHERE chat_id = $1 AND account_id = $2",
                chat_id,
                account_id,
            )
        return cast(Role | None, role)

    async def post(
        self, chat_id: int, actor_id: int, client_id: str, text: str, now: int
    ) -> tuple[Event, bool]:
        """Append a message; a retry with the same client id returns the first (duplicate)."""
        async with self._db.transaction("post_message") as txn:
            row = await txn.fetchrow(
                f"SELECT {_EVENT_COLUMNS} FROM chat_events WHERE actor_id = $1 AND client_id = $2",
                actor_id,
                client_id,
            )
            if row is not None:
                return _event(row), True
            event = await _append(
                txn, chat_id, "message", actor_id, now, client_id=client_id, text=text
            )
        return event, False

    async def events_after(self, chat_id: int, after_seq: int, limit: int) -> list[Event]:
        async with self._db.read("events_after") as txn:
            rows = await txn.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM chat_events WHERE chat_id = $1 AND seq > $2"
                " ORDER BY seq LIMIT $3",
                chat_id,
                after_seq,
                limit,
            )
        return [_event(row) for row in rows]

    async def history(
        self, chat_id: int, before_seq: int | None, limit: int
    ) -> tuple[list[Event], bool]:
        """The ``limit`` events before ``before_seq`` (latest when None), oldest first."""
        async with self._db.read("history") as txn:
            rows = await txn.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM chat_events WHERE chat_id = $1 AND seq < $2"
                " ORDER BY seq DESC LIMIT $3",
                chat_id,
                2**63 - 1 if before_seq is None else before_seq,
                limit + 1,
            )
        has_more = len(rows) > limit
        return [_event(row) for row in reversed(rows[:limit])], has_more

    async def chats_of(self, account_id: int) -> list[ChatInfo]:
        async with self._db.read("chats_of") as txn:
            rows = await txn.fetch(
                _CHAT_INFO + " WHERE m.account_id = $1 ORDER BY c.id", account_id
            )
        return [_chat_info(row) for row in rows]

    async def chat_info(self, chat_id: int, account_id: int) -> ChatInfo | None:
        async with self._db.read("chat_info") as txn:
            row = await txn.fetchrow(
                _CHAT_INFO + " WHERE m.account_id = $1 AND m.chat_id = $2", account_id, chat_id
            )
        return None if row is None else _chat_info(row)

    async def chat_ids_of(self, account_id: int) -> list[int]:
        async with self._db.read("chat_ids_of") as txn:
            rows = await txn.fetch(
                "SELECT chat_id FROM chat_members WHERE account_id = $1", account_id
            )
        return [row[0] for row in rows]

    async def members(self, chat_id: int) -> list[Member]:
        async with self._db.read("chat_members") as txn:
            rows = await txn.fetch(
                "SELECT m.account_id, m.role, p.last_name, p.first_name, p.middle_name"
                " FROM chat_members m JOIN profiles p ON p.account_id = m.account_id"
                " WHERE m.chat_id = $1 ORDER BY p.last_name, p.first_name, m.account_id",
                chat_id,
            )
        return [
            Member(
                account_id=row[0],
                role=row[1],
                last_name=row[2],
                first_name=row[3],
                middle_name=row[4],
            )
            for row in rows
        ]

    async def mark_read(self, chat_id: int, account_id: int, seq: int) -> None:
        """Move the read marker forward (never back, never past the log's end)."""
        async with self._db.transaction("mark_read") as txn:
            await txn.execute(
                "UPDATE chat_members SET read_seq = $3"
                " WHERE chat_id = $1 AND account_id = $2 AND read_seq < $3"
                " AND $3 <= (SELECT last_seq FROM chats WHERE id = $1)",
                chat_id,
                account_id,
                seq,
            )
