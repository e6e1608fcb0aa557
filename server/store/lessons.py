"""Lessons (calls of a chat): their schedule and state, the lesson card in the chat, who
was there, the whiteboard, and the single-use tickets behind the journal's join URL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import orjson

from protocol.calls import BoardOp, CallInfo, CallState
from protocol.messages import Event
from server.store.chats import _append
from server.store.engine import Database, Row, Txn

_LESSON = (
    "c.id, c.chat_id, c.journal_id, c.creator_person_id, c.title, c.starts_at, c.ends_at,"
    " c.slot_id, c.state, c.card_seq, c.started_at, c.ended_at, c.end_reason,"
    " (SELECT l.account_id FROM account_links l WHERE l.person_id = c.creator_person_id)"
)

_encode_op = msgspec.msgpack.Encoder().encode
_decode_op = msgspec.msgpack.Decoder(BoardOp).decode


@dataclass(frozen=True, slots=True)
class Lesson:
    id: int
    chat_id: int
    journal_id: str
    creator_person_id: int
    title: str
    starts_at: int
    ends_at: int
    slot_id: int | None
    state: CallState
    card_seq: int | None
    started_at: int | None
    ended_at: int | None
    end_reason: str | None
    host_account_id: int | None  # the creator's linked account, if any

    def info(self, recording: bool = False) -> CallInfo:
        return CallInfo(
            id=self.id,
            chat_id=self.chat_id,
            title=self.title,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            state=self.state,
            host_id=self.host_account_id,
            recording=recording,
        )


def _lesson(row: Row) -> Lesson:
    return Lesson(
        id=row[0],
        chat_id=row[1],
        journal_id=row[2],
        creator_person_id=row[3],
        title=row[4],
        starts_at=row[5],
        ends_at=row[6],
        slot_id=row[7],
        state=row[8],
        card_seq=row[9],
        started_at=row[10],
        ended_at=row[11],
        end_reason=row[12],
        host_account_id=row[13],
    )


async def cards_in(reader: Txn, chat_id: int, low: int, high: int) -> dict[int, CallInfo]:
    """The lessons behind the card messages in a range of a chat, as they stand now."""
    rows = await reader.fetch(
        f"SELECT {_LESSON} FROM calls c WHERE c.chat_id = $1 AND c.card_seq >= $2"
        " AND c.card_seq <= $3",
        chat_id,
        low,
        high,
    )
    return {r[9]: _lesson(r).info() for r in rows}


@dataclass(frozen=True, slots=True)
class ChatPlace:
    """What the rules need to know about the chat a lesson goes into."""

    chat_id: int
    kind: str
    journal_id: str | None
    school_id: int | None
    timezone: str | None
    # A subject chat's teaching groups (their timetable is where its lessons go).
    group_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SlotRow:
    id: int
    ext_id: str
    group_id: int
    starts_at: int
    ends_at: int


@dataclass(frozen=True, slots=True)
class Stay:
    account_id: int
    joined_at: int
    left_at: int | None


class LessonStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- where a lesson goes -----------------------------------------------------------------

    async def place(self, chat_id: int) -> ChatPlace | None:
        async with self._db.read("lesson_place") as reader:
            row = await reader.fetchrow(
                "SELECT c.kind, c.journal_id, c.school_id, s.timezone, c.source, c.ext_scope"
                " FROM chats c LEFT JOIN schools s ON s.id = c.school_id WHERE c.id = $1",
                chat_id,
            )
            if row is None:
                return None
            kind: str = row[0]
            school_id: int | None = row[2]
            groups: list[Row] = []
            if kind == "subject" and school_id is not None:
                groups = await self._subject_groups(reader, school_id, row[4], row[5])
        return ChatPlace(
            chat_id, kind, row[1], school_id, row[3], tuple(sorted(r[0] for r in groups))
        )

    async def _subject_groups(
        self, reader: Txn, school_id: int, source: str | None, scope: str | None
    ) -> list[Row]:
        """A roster subject chat is one group ("<school>:group:<id>"); a subject chat made
        in the journal is what the teacher chose (``ext_scope``, see JournalChatStore)."""
        chosen: dict[str, object] = orjson.loads(scope) if scope else {}
        if source and ":group:" in source:
            chosen = {"group": source.rsplit(":group:", 1)[1]}
        where = ["g.school_id = $1"]
        args: list[object] = [school_id]
        for key, column in (
            ("group", "g.ext_id"),
            ("subject", "s.ext_id"),
            ("class", "k.ext_id"),
            ("parallel", "k.grade"),
        ):
            if chosen.get(key) is not None:
                args.append(chosen[key])
                where.append(f"{column} = ${len(args)}")
        if len(args) == 1:
            return []  # nothing chosen: no timetable to follow
        return await reader.fetch(
            "SELECT g.id FROM groups g LEFT JOIN subjects s ON s.id = g.subject_id"
            " LEFT JOIN classes k ON k.id = g.class_id WHERE " + " AND ".join(where),
            *args,
        )

    async def slot(self, school_id: int, ext_id: str) -> SlotRow | None:
        async with self._db.read("lesson_slot") as reader:
            row = await reader.fetchrow(
                "SELECT id, ext_id, group_id, starts_at, ends_at FROM timetable"
                " WHERE school_id = $1 AND ext_id = $2",
                school_id,
                ext_id,
            )
        return None if row is None else SlotRow(row[0], row[1], row[2], row[3], row[4])

    async def slots(self, group_ids: Sequence[int], after: int, limit: int = 50) -> list[SlotRow]:
        """The groups' timetable slots that end after ``after``, soonest first."""
        if not group_ids:
            return []
        marks = ", ".join(f"${i + 3}" for i in range(len(group_ids)))
        async with self._db.read("lesson_slots") as reader:
            rows = await reader.fetch(
                "SELECT id, ext_id, group_id, starts_at, ends_at FROM timetable"
                f" WHERE ends_at > $1 AND group_id IN ({marks}) ORDER BY starts_at LIMIT $2",
                after,
                limit,
                *group_ids,
            )
        return [SlotRow(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def slot_ext_id(self, slot_id: int) -> str | None:
        async with self._db.read("slot_ext_id") as reader:
            ext_id: str | None = await reader.fetchval(
                "SELECT ext_id FROM timetable WHERE id = $1", slot_id
            )
        return ext_id

    async def persons_of(self, journal_id: str, account_ids: Sequence[int]) -> dict[int, str]:
        """The journal's user ids of these accounts (for attendance)."""
        if not account_ids:
            return {}
        marks = ", ".join(f"${i + 2}" for i in range(len(account_ids)))
        async with self._db.read("persons_of_accounts") as reader:
            rows = await reader.fetch(
                "SELECT l.account_id, p.ext_id FROM account_links l"
                " JOIN persons p ON p.id = l.person_id"
                f" WHERE l.journal_id = $1 AND l.account_id IN ({marks})",
                journal_id,
                *account_ids,
            )
        return {r[0]: r[1] for r in rows}

    async def person_timezone(self, person_id: int) -> str | None:
        async with self._db.read("person_timezone") as reader:
            zone: str | None = await reader.fetchval(
                "SELECT s.timezone FROM school_persons sp JOIN schools s ON s.id = sp.school_id"
                " WHERE sp.person_id = $1 ORDER BY s.id LIMIT 1",
                person_id,
            )
        return zone

    # --- lessons -----------------------------------------------------------------------------

    async def create(
        self,
        chat_id: int,
        journal_id: str,
        creator_person_id: int,
        title: str,
        starts_at: int,
        ends_at: int,
        slot_id: int | None,
        now: int,
    ) -> Lesson:
        async with self._db.transaction("create_lesson") as txn:
            lesson_id: int = await txn.fetchval(
                "INSERT INTO calls (chat_id, journal_id, creator_person_id, title, starts_at,"
                " ends_at, slot_id, state, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8) RETURNING id",
                chat_id,
                journal_id,
                creator_person_id,
                title,
                starts_at,
                ends_at,
                slot_id,
                now,
            )
            return await self._get(txn, lesson_id)

    async def _get(self, txn: Txn, lesson_id: int) -> Lesson:
        row = await txn.fetchrow(f"SELECT {_LESSON} FROM calls c WHERE c.id = $1", lesson_id)
        assert row is not None
        return _lesson(row)

    async def get(self, lesson_id: int) -> Lesson | None:
        async with self._db.read("lesson") as reader:
            row = await reader.fetchrow(
                f"SELECT {_LESSON} FROM calls c WHERE c.id = $1 AND NOT c.deleted", lesson_id
            )
        return None if row is None else _lesson(row)

    async def of_chats(self, chat_ids: Sequence[int], after: int) -> dict[int, Lesson]:
        """Each chat's live lesson, else its next published or scheduled one."""
        if not chat_ids:
            return {}
        marks = ", ".join(f"${i + 2}" for i in range(len(chat_ids)))
        async with self._db.read("lessons_of_chats") as reader:
            rows = await reader.fetch(
                f"SELECT {_LESSON} FROM calls c WHERE NOT c.deleted AND c.chat_id IN ({marks})"
                " AND (c.state = 'live' OR (c.state IN ('scheduled', 'published')"
                " AND c.ends_at > $1)) ORDER BY c.starts_at",
                after,
                *chat_ids,
            )
        found: dict[int, Lesson] = {}
        for lesson in map(_lesson, rows):
            have = found.get(lesson.chat_id)
            if have is None or (lesson.state == "live" and have.state != "live"):
                found[lesson.chat_id] = lesson
        return found

    async def live(self) -> list[Lesson]:
        async with self._db.read("live_lessons") as reader:
            rows = await reader.fetch(f"SELECT {_LESSON} FROM calls c WHERE c.state = 'live'")
        return [_lesson(r) for r in rows]

    async def live_of(self, creator_person_id: int) -> Lesson | None:
        async with self._db.read("live_lesson_of") as reader:
            row = await reader.fetchrow(
                f"SELECT {_LESSON} FROM calls c WHERE c.creator_person_id = $1"
                " AND c.state = 'live' LIMIT 1",
                creator_person_id,
            )
        return None if row is None else _lesson(row)

    async def _card_update(self, txn: Txn, lesson: Lesson, actor: int, now: int) -> Event | None:
        """The lesson card follows the lesson: an event that says so, for live clients."""
        if lesson.card_seq is None:
            return None
        return await _append(
            txn, lesson.chat_id, "lesson_updated", actor, now, target=lesson.card_seq,
            lesson=lesson.info(),
        )  # fmt: skip

    async def update(
        self,
        lesson_id: int,
        title: str,
        starts_at: int,
        ends_at: int,
        slot_id: int | None,
        now: int,
    ) -> tuple[Lesson, Event | None]:
        async with self._db.transaction("update_lesson") as txn:
            await txn.execute(
                "UPDATE calls SET title = $2, starts_at = $3, ends_at = $4, slot_id = $5"
                " WHERE id = $1",
                lesson_id,
                title,
                starts_at,
                ends_at,
                slot_id,
            )
            lesson = await self._get(txn, lesson_id)
            return lesson, await self._card_update(txn, lesson, 0, now)

    async def publish(self, lesson_id: int, actor: int, now: int) -> tuple[Lesson, Event | None]:
        """Scheduled → published, with the lesson card posted into the chat."""
        async with self._db.transaction("publish_lesson") as txn:
            changed = await txn.execute(
                "UPDATE calls SET state = 'published' WHERE id = $1 AND state = 'scheduled'",
                lesson_id,
            )
            lesson = await self._get(txn, lesson_id)
            if not changed:
                return lesson, None
            card = await _append(
                txn, lesson.chat_id, "message", actor, now, text=lesson.title,
                lesson=lesson.info(),
            )  # fmt: skip
            await txn.execute("UPDATE calls SET card_seq = $2 WHERE id = $1", lesson_id, card.seq)
            return await self._get(txn, lesson_id), card

    async def go_live(self, lesson_id: int, now: int) -> tuple[Lesson, Event | None, Lesson | None]:
        """Published → live, unless the same teacher has another lesson live (returned)."""
        async with self._db.transaction("start_lesson") as txn:
            lesson = await self._get(txn, lesson_id)
            if lesson.state != "published":
                return lesson, None, None
            row = await txn.fetchrow(
                f"SELECT {_LESSON} FROM calls c WHERE c.creator_person_id = $1"
                " AND c.state = 'live' AND c.id <> $2 LIMIT 1",
                lesson.creator_person_id,
                lesson_id,
            )
            if row is not None:
                return lesson, None, _lesson(row)
            await txn.execute(
                "UPDATE calls SET state = 'live', started_at = $2 WHERE id = $1", lesson_id, now
            )
            lesson = await self._get(txn, lesson_id)
            return lesson, await self._card_update(txn, lesson, 0, now), None

    async def finish(
        self, lesson_id: int, state: CallState, reason: str, now: int, *, delete: bool = False
    ) -> tuple[Lesson, Event | None]:
        """Live or published → ended, or scheduled/published → cancelled (deleted)."""
        async with self._db.transaction("finish_lesson") as txn:
            await txn.execute(
                "UPDATE calls SET state = $2, ended_at = $3, end_reason = $4, deleted = $5"
                " WHERE id = $1",
                lesson_id,
                state,
                now,
                reason,
                delete,
            )
            await txn.execute(
                "UPDATE call_presence SET left_at = $2 WHERE call_id = $1 AND left_at IS NULL",
                lesson_id,
                now,
            )
            lesson = await self._get(txn, lesson_id)
            return lesson, await self._card_update(txn, lesson, 0, now)

    # --- presence (attendance) -----------------------------------------------------------------

    async def enter(self, lesson_id: int, account_id: int, now: int) -> None:
        async with self._db.transaction("lesson_enter") as txn:
            await txn.execute(
                "INSERT INTO call_presence (call_id, account_id, joined_at) VALUES ($1, $2, $3)",
                lesson_id,
                account_id,
                now,
            )

    async def exit(self, lesson_id: int, account_id: int, now: int) -> None:
        async with self._db.transaction("lesson_exit") as txn:
            await txn.execute(
                "UPDATE call_presence SET left_at = $3"
                " WHERE call_id = $1 AND account_id = $2 AND left_at IS NULL",
                lesson_id,
                account_id,
                now,
            )

    async def stays(self, lesson_id: int) -> list[Stay]:
        async with self._db.read("lesson_stays") as reader:
            rows = await reader.fetch(
                "SELECT account_id, joined_at, left_at FROM call_presence WHERE call_id = $1"
                " ORDER BY account_id, joined_at",
                lesson_id,
            )
        return [Stay(r[0], r[1], r[2]) for r in rows]

    # --- the whiteboard ------------------------------------------------------------------------

    async def board_add(self, lesson_id: int, ops: Sequence[BoardOp]) -> list[BoardOp]:
        """Store new operations in order; ones already stored (a retry) are left out."""
        async with self._db.transaction("board_add") as txn:
            position: int = await txn.fetchval(
                "SELECT COALESCE(MAX(position), 0) FROM board_ops WHERE call_id = $1", lesson_id
            )
            known = {
                r[0]
                for r in await txn.fetch(
                    "SELECT op_id FROM board_ops WHERE call_id = $1 AND op_id IN ("
                    + ", ".join(f"${i + 2}" for i in range(len(ops)))
                    + ")",
                    lesson_id,
                    *[op.id for op in ops],
                )
            }
            fresh = []
            for op in ops:
                if op.id in known:
                    continue
                known.add(op.id)
                position += 1
                fresh.append(op)
                await txn.execute(
                    "INSERT INTO board_ops (call_id, op_id, position, body)"
                    " VALUES ($1, $2, $3, $4)",
                    lesson_id,
                    op.id,
                    position,
                    _encode_op(op),
                )
            return fresh

    async def board(self, lesson_id: int) -> list[BoardOp]:
        async with self._db.read("board") as reader:
            rows = await reader.fetch(
                "SELECT body FROM board_ops WHERE call_id = $1 ORDER BY position", lesson_id
            )
        return [_decode_op(bytes(r[0])) for r in rows]

    async def board_size(self, lesson_id: int) -> int:
        async with self._db.read("board_size") as reader:
            count: int = await reader.fetchval(
                "SELECT count(*) FROM board_ops WHERE call_id = $1", lesson_id
            )
        return count

    # --- join tickets --------------------------------------------------------------------------

    async def add_ticket(
        self, token_hash: str, lesson_id: int, account_id: int, expires_at: int
    ) -> None:
        async with self._db.transaction("add_join_ticket") as txn:
            await txn.execute(
                "DELETE FROM join_tickets WHERE expires_at < $1 AND call_id = $2",
                expires_at - 86_400_000,
                lesson_id,
            )
            await txn.execute(
                "INSERT INTO join_tickets (token_hash, call_id, account_id, expires_at)"
                " VALUES ($1, $2, $3, $4)",
                token_hash,
                lesson_id,
                account_id,
                expires_at,
            )

    async def use_ticket(self, token_hash: str, lesson_id: int, now: int) -> int | None:
        """The ticket's account, once: a second use, another lesson or a late use find none."""
        async with self._db.transaction("use_join_ticket") as txn:
            account_id: int | None = await txn.fetchval(
                "UPDATE join_tickets SET used = TRUE WHERE token_hash = $1 AND call_id = $2"
                " AND NOT used AND expires_at > $3 RETURNING account_id",
                token_hash,
                lesson_id,
                now,
            )
        return account_id
