"""Chats, their members and their event log.

Each chat keeps ``last_seq``; appending an event bumps it and inserts the event with the
new value in the same transaction, so a chat's log has no gaps and no two events share a
number. The log is what clients resume from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgspec

from protocol.calls import CallInfo
from protocol.messages import (
    Attachment,
    ChatInfo,
    Event,
    Forwarded,
    Member,
    Poll,
    Role,
)
from server.store.engine import Database, Row, Txn

_EVENT_COLUMNS = (
    "chat_id, seq, kind, actor_id, at, client_id, text, member_id, role, title,"
    " target, reply_to, edited_at, deleted, data"
)


class _Data(msgspec.Struct, frozen=True, omit_defaults=True):
    """The parts of an event kept as JSON in ``chat_events.data``."""

    emoji: str | None = None
    mentions: list[int] | None = None
    attachments: list[Attachment] | None = None
    poll: Poll | None = None
    forwarded: Forwarded | None = None
    closed: bool | None = None
    lesson: CallInfo | None = None


_encode_data = msgspec.json.Encoder().encode
_decode_data = msgspec.json.Decoder(_Data).decode
_NO_DATA = _Data()


def _event(row: Row) -> Event:
    data = _decode_data(row[14]) if row[14] else _NO_DATA
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
        target=row[10],
        reply_to=row[11],
        edited_at=row[12],
        deleted=bool(row[13]),
        emoji=data.emoji,
        mentions=data.mentions,
        attachments=data.attachments,
        poll=data.poll,
        forwarded=data.forwarded,
        closed=data.closed,
        lesson=data.lesson,
    )


def _data(event: Event) -> str | None:
    data = _Data(
        emoji=event.emoji,
        mentions=event.mentions,
        attachments=event.attachments,
        poll=event.poll,
        forwarded=event.forwarded,
        closed=event.closed,
        lesson=event.lesson,
    )
    return None if data == _NO_DATA else _encode_data(data).decode()


_CHAT_INFO = """
SELECT c.id, c.kind, c.title, m.role,
       (SELECT count(*) FROM chat_members x WHERE x.chat_id = c.id),
       c.last_seq, m.read_seq,
       (SELECT count(*) FROM chat_events e
         WHERE e.chat_id = c.id AND e.seq > m.read_seq AND e.seq > m.cleared_seq
           AND e.kind = 'message' AND NOT e.deleted AND e.actor_id <> m.account_id),
       c.source IS NOT NULL OR c.in_journal, c.closed, m.muted,
       CASE WHEN c.kind = 'direct' THEN (SELECT y.account_id FROM chat_members y
         WHERE y.chat_id = c.id AND y.account_id <> m.account_id LIMIT 1) END,
       (SELECT e.at FROM chat_events e WHERE e.chat_id = c.id AND e.seq = c.last_seq),
       (SELECT MAX(e.seq) FROM chat_events e WHERE e.chat_id = c.id AND e.kind = 'message'
         AND NOT e.deleted AND e.seq > m.cleared_seq)
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
        system=bool(row[8]),
        closed=bool(row[9]),
        muted=bool(row[10]),
        peer_id=row[11],
        last_at=row[12] or 0,
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
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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
        event.target,
        event.reply_to,
        event.edited_at,
        event.deleted,
        _data(event),
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

    async def events_after(
        self, chat_id: int, after_seq: int, limit: int, floor: int = 0
    ) -> list[Event]:
        """The log after ``after_seq`` (and after ``floor``: a member's cleared history)."""
        async with self._db.read("events_after") as txn:
            rows = await txn.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM chat_events WHERE chat_id = $1 AND seq > $2"
                " ORDER BY seq LIMIT $3",
                chat_id,
                max(after_seq, floor),
                limit,
            )
        return [_event(row) for row in rows]

    async def history(
        self, chat_id: int, before_seq: int | None, limit: int, floor: int = 0
    ) -> tuple[list[Event], bool]:
        """The ``limit`` events before ``before_seq`` (latest when None), oldest first, none
        at or below ``floor``."""
        async with self._db.read("history") as txn:
            rows = await txn.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM chat_events"
                " WHERE chat_id = $1 AND seq < $2 AND seq > $3 ORDER BY seq DESC LIMIT $4",
                chat_id,
                2**63 - 1 if before_seq is None else before_seq,
                floor,
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

    async def chats_with_last(self, account_id: int) -> tuple[list[ChatInfo], list[Event]]:
        """The account's chats, and the latest message of each (for the chat list)."""
        async with self._db.read("chats_with_last") as txn:
            rows = await txn.fetch(
                _CHAT_INFO + " WHERE m.account_id = $1 ORDER BY c.id", account_id
            )
            last: list[Event] = []
            for row in rows:
                if row[13] is not None:
                    found = await txn.fetchrow(
                        f"SELECT {_EVENT_COLUMNS} FROM chat_events WHERE chat_id = $1 AND seq = $2",
                        row[0],
                        row[13],
                    )
                    if found is not None:
                        last.append(_event(found))
        return [_chat_info(row) for row in rows], last

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
                "SELECT m.account_id, m.role, p.last_name, p.first_name, p.middle_name,"
                " m.read_seq, p.sex FROM chat_members m"
                " JOIN profiles p ON p.account_id = m.account_id"
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
                read_seq=row[5],
                sex=row[6],
            )
            for row in rows
        ]

    async def remove_member(
        self, chat_id: int, account_id: int, actor_id: int, now: int
    ) -> Event | None:
        async with self._db.transaction("remove_member") as txn:
            removed = await txn.execute(
                "DELETE FROM chat_members WHERE chat_id = $1 AND account_id = $2",
                chat_id,
                account_id,
            )
            if not removed:
                return None
            return await _append(
                txn, chat_id, "member_removed", actor_id, now, member_id=account_id
            )

    async def set_role(
        self, chat_id: int, account_id: int, role: Role, actor_id: int, now: int
    ) -> Event | None:
        async with self._db.transaction("set_role") as txn:
            changed = await txn.execute(
                "UPDATE chat_members SET role = $3 WHERE chat_id = $1 AND account_id = $2"
                " AND role <> $3",
                chat_id,
                account_id,
                role,
            )
            if not changed:
                return None
            return await _append(
                txn, chat_id, "role_changed", actor_id, now, member_id=account_id, role=role
            )

    async def settings(
        self, chat_id: int, actor_id: int, now: int, title: str | None, closed: bool | None
    ) -> list[Event]:
        events = []
        async with self._db.transaction("chat_settings") as txn:
            if title is not None:
                await txn.execute("UPDATE chats SET title = $2 WHERE id = $1", chat_id, title)
                events.append(await _append(txn, chat_id, "renamed", actor_id, now, title=title))
            if closed is not None:
                await txn.execute("UPDATE chats SET closed = $2 WHERE id = $1", chat_id, closed)
                events.append(await _append(txn, chat_id, "settings", actor_id, now, closed=closed))
        return events

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


@dataclass(frozen=True, slots=True)
class ChatMeta:
    id: int
    kind: str
    title: str
    source: str | None
    journal_id: str | None
    school_id: int | None
    in_journal: bool
    creator_person_id: int | None
    closed: bool = False

    @property
    def system(self) -> bool:
        """Made by the roster: no renaming, deleting or editing members by hand."""
        return self.source is not None

    @property
    def sort(self) -> str:
        """How the permission table sees it (``server.domain.permissions``)."""
        if self.kind == "direct":
            return "direct"
        if self.source is not None:
            return "system"
        if self.in_journal:
            return "journal"
        return "closed" if self.closed else "manual"


@dataclass(frozen=True, slots=True)
class MembershipChange:
    change: str  # "joined" | "left" | "role"
    account_id: int
    event: Event


@dataclass(frozen=True, slots=True)
class PersonChat:
    id: int
    kind: str
    title: str
    member_count: int
    unread: int


_META = "id, kind, title, source, journal_id, school_id, in_journal, creator_person_id, closed"


class JournalChatStore:
    """The chats a journal's data makes or a journal asks for, and who belongs in them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def meta(self, chat_id: int) -> ChatMeta | None:
        async with self._db.read("chat_meta") as reader:
            row = await reader.fetchrow(f"SELECT {_META} FROM chats WHERE id = $1", chat_id)
        if row is None:
            return None
        return ChatMeta(
            row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7], bool(row[8])
        )

    async def sync(self, chat_ids: Sequence[int], now: int) -> list[MembershipChange]:
        """Make each chat's members the linked accounts of its roster: join, leave, re-role.
        Members someone added by hand are left alone."""
        changes: list[MembershipChange] = []
        ids = sorted(set(chat_ids))
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            marks = ", ".join(f"${i + 1}" for i in range(len(chunk)))
            async with self._db.transaction("sync_roster_members") as txn:
                desired_rows = await txn.fetch(
                    "SELECT cr.chat_id, l.account_id, cr.role FROM chat_roster cr"
                    " JOIN account_links l ON l.person_id = cr.person_id"
                    f" WHERE cr.chat_id IN ({marks})",
                    *chunk,
                )
                current_rows = await txn.fetch(
                    "SELECT chat_id, account_id, role, source FROM chat_members"
                    f" WHERE chat_id IN ({marks})",
                    *chunk,
                )
                desired = {(r[0], r[1]): r[2] for r in desired_rows}
                current = {(r[0], r[1]): (r[2], r[3]) for r in current_rows}
                for (chat_id, account_id), role in sorted(desired.items()):
                    have = current.get((chat_id, account_id))
                    if have is None:
                        await txn.execute(
                            "INSERT INTO chat_members (chat_id, account_id, role, joined_at,"
                            " source) VALUES ($1, $2, $3, $4, 'roster')",
                            chat_id,
                            account_id,
                            role,
                            now,
                        )
                        event = await _append(
                            txn, chat_id, "member_added", 0, now, member_id=account_id, role=role
                        )
                        changes.append(MembershipChange("joined", account_id, event))
                    elif have != (role, "roster"):
                        await txn.execute(
                            "UPDATE chat_members SET role = $3, source = 'roster'"
                            " WHERE chat_id = $1 AND account_id = $2",
                            chat_id,
                            account_id,
                            role,
                        )
                        if have[0] != role:
                            event = await _append(
                                txn,
                                chat_id,
                                "role_changed",
                                0,
                                now,
                                member_id=account_id,
                                role=role,
                            )
                            changes.append(MembershipChange("role", account_id, event))
                for (chat_id, account_id), (_, source) in sorted(current.items()):
                    if source != "roster" or (chat_id, account_id) in desired:
                        continue
                    await txn.execute(
                        "DELETE FROM chat_members WHERE chat_id = $1 AND account_id = $2",
                        chat_id,
                        account_id,
                    )
                    event = await _append(
                        txn, chat_id, "member_removed", 0, now, member_id=account_id
                    )
                    changes.append(MembershipChange("left", account_id, event))
        return changes

    async def roster_role(self, chat_id: int, person_id: int) -> str | None:
        async with self._db.read("roster_role") as reader:
            role: str | None = await reader.fetchval(
                "SELECT role FROM chat_roster WHERE chat_id = $1 AND person_id = $2",
                chat_id,
                person_id,
            )
        return role

    async def roster_chats_of(self, person_id: int) -> list[int]:
        async with self._db.read("roster_chats_of") as reader:
            rows = await reader.fetch(
                "SELECT chat_id FROM chat_roster WHERE person_id = $1", person_id
            )
        return [row[0] for row in rows]

    async def create(
        self,
        kind: str,
        title: str,
        journal_id: str,
        school_id: int | None,
        creator_person_id: int,
        roster: dict[int, str],
        now: int,
        scope: str | None = None,
    ) -> int:
        """``scope``: what a subject chat was made for (JSON: group, class, parallel, subject
        as the journal named them): its lessons follow that part of the timetable."""
        async with self._db.transaction("create_journal_chat") as txn:
            chat_id: int = await txn.fetchval(
                "INSERT INTO chats (kind, title, created_at, journal_id, school_id,"
                " creator_person_id, in_journal, ext_scope)"
                " VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7) RETURNING id",
                kind,
                title,
                now,
                journal_id,
                school_id,
                creator_person_id,
                scope,
            )
            await txn.executemany(
                "INSERT INTO chat_roster (chat_id, person_id, role) VALUES ($1, $2, $3)",
                [(chat_id, p, r) for p, r in roster.items()],
            )
            await _append(txn, chat_id, "created", 0, now, title=title)
        return chat_id

    async def set_roster(self, chat_id: int, roster: dict[int, str]) -> None:
        async with self._db.transaction("set_chat_roster") as txn:
            rows = await txn.fetch(
                "SELECT person_id, role FROM chat_roster WHERE chat_id = $1", chat_id
            )
            current = {row[0]: row[1] for row in rows}
            gone = [(chat_id, p) for p in current if p not in roster]
            if gone:
                await txn.executemany(
                    "DELETE FROM chat_roster WHERE chat_id = $1 AND person_id = $2", gone
                )
            upserts = [(chat_id, p, r) for p, r in roster.items() if current.get(p) != r]
            if upserts:
                await txn.executemany(
                    "INSERT INTO chat_roster (chat_id, person_id, role) VALUES ($1, $2, $3)"
                    " ON CONFLICT (chat_id, person_id) DO UPDATE SET role = excluded.role",
                    upserts,
                )

    async def retitle(self, chat_id: int, title: str, now: int) -> Event:
        async with self._db.transaction("retitle_chat") as txn:
            await txn.execute("UPDATE chats SET title = $2 WHERE id = $1", chat_id, title)
            return await _append(txn, chat_id, "renamed", 0, now, title=title)

    async def leave_journal(self, chat_id: int, keep_person: int | None) -> None:
        """The journal deleted the chat: out of the journal, its roster emptied but for
        its creator, who keeps it (and its history) in the messenger."""
        async with self._db.transaction("leave_journal") as txn:
            await txn.execute("UPDATE chats SET in_journal = FALSE WHERE id = $1", chat_id)
            await txn.execute(
                "DELETE FROM chat_roster WHERE chat_id = $1 AND person_id <> $2",
                chat_id,
                keep_person if keep_person is not None else -1,
            )

    async def chats_of_person(
        self, journal_id: str, person_id: int, account_id: int | None
    ) -> list[PersonChat]:
        """A person's chats as their journal shows them: the journal's chats they belong
        to (linked or not yet), with unread counts once linked."""
        async with self._db.read("chats_of_person") as reader:
            rows = await reader.fetch(
                "SELECT c.id, c.kind, c.title,"
                " (SELECT count(*) FROM chat_roster x WHERE x.chat_id = c.id),"
                " COALESCE((SELECT count(*) FROM chat_events e JOIN chat_members m"
                "   ON m.chat_id = e.chat_id AND m.account_id = $3"
                "   WHERE e.chat_id = c.id AND e.seq > m.read_seq AND e.kind = 'message'"
                "   AND e.actor_id <> $3), 0)"
                " FROM chat_roster r JOIN chats c ON c.id = r.chat_id"
                " WHERE r.person_id = $1 AND c.journal_id = $2 AND c.in_journal"
                " ORDER BY CASE WHEN c.source IS NULL THEN 1 ELSE 0 END, c.title, c.id",
                person_id,
                journal_id,
                account_id if account_id is not None else -1,
            )
        return [PersonChat(r[0], r[1], r[2], r[3], r[4]) for r in rows]
