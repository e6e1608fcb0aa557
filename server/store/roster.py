"""A school's roster and timetable, applied as a diff against what is stored.

``apply`` loads the school's current rows, compares them with the plan in Python and
writes only the differences with ``executemany``, all in one transaction: a snapshot
identical to the last one reads and writes nothing else. It returns what changed and
which chats' intended members changed, so membership can follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.domain.roster import Plan
from server.store.engine import Database, Row, Txn

CHUNK = 500


async def fetch_in(txn: Txn, sql: str, values: Sequence[Any], *leading: Any) -> list[Row]:
    """``sql`` with ``{in}`` replaced by a placeholder list, run over ``values`` in chunks."""
    rows: list[Row] = []
    base = len(leading)
    for start in range(0, len(values), CHUNK):
        chunk = values[start : start + CHUNK]
        marks = ", ".join(f"${base + i + 1}" for i in range(len(chunk)))
        rows.extend(await txn.fetch(sql.replace("{in}", marks), *leading, *chunk))
    return rows


@dataclass
class Counts:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, created: int = 0, updated: int = 0, removed: int = 0) -> None:
        for bucket, n in (
            (self.created, created),
            (self.updated, updated),
            (self.removed, removed),
        ):
            bucket[kind] = bucket.get(kind, 0) + n


@dataclass
class Applied:
    school_id: int
    counts: Counts
    # Chats whose intended members changed (membership of accounts must follow).
    chats: set[int]
    # Chats created now: id → (kind, title)
    new_chats: dict[int, tuple[str, str]]


async def _sync_set(
    txn: Txn,
    current: set[tuple[Any, ...]],
    desired: set[tuple[Any, ...]],
    insert: str,
    delete: str,
) -> tuple[int, int]:
    added = desired - current
    gone = current - desired
    if added:
        await txn.executemany(insert, sorted(added))
    if gone:
        await txn.executemany(delete, sorted(gone))
    return len(added), len(gone)


class RosterStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def apply(self, journal_id: str, plan: Plan, now: int) -> Applied:
        counts = Counts()
        async with self._db.transaction("roster_apply") as txn:
            school_id = await self._school(txn, journal_id, plan, counts)
            people = await self._persons(txn, journal_id, plan, counts)
            await self._school_persons(txn, school_id, plan, people, counts)
            subjects = await self._by_ext_id(
                txn,
                "subjects",
                ("name",),
                school_id,
                {e: (name,) for e, name in plan.subjects.items()},
                counts,
            )
            classes = await self._by_ext_id(
                txn,
                "classes",
                ("name", "grade", "teacher_id"),
                school_id,
                {
                    c.id: (
                        c.name,
                        c.grade,
                        people.get(c.class_teacher_id) if c.class_teacher_id else None,
                    )
                    for c in plan.classes.values()
                },
                counts,
            )
            groups = await self._by_ext_id(
                txn,
                "groups",
                ("class_id", "subject_id", "name"),
                school_id,
                {
                    g.id: (
                        classes.get(g.class_id) if g.class_id else None,
                        subjects.get(g.subject_id),
                        g.name,
                    )
                    for g in plan.groups.values()
                },
                counts,
            )
            await self._relations(txn, school_id, plan, people, classes, groups, counts)
            changed, new_chats = await self._chats(
                txn, journal_id, school_id, plan, people, now, counts
            )
        return Applied(school_id, counts, changed, new_chats)

    async def _school(self, txn: Txn, journal_id: str, plan: Plan, counts: Counts) -> int:
        row = await txn.fetchrow(
            "SELECT id, name, timezone FROM schools WHERE journal_id = $1 AND ext_id = $2",
            journal_id,
            plan.school.id,
        )
        if row is None:
            counts.add("schools", created=1)
            school_id: int = await txn.fetchval(
                "INSERT INTO schools (journal_id, ext_id, name, timezone) VALUES ($1, $2, $3, $4)"
                " RETURNING id",
                journal_id,
                plan.school.id,
                plan.school.name,
                plan.school.timezone,
            )
            return school_id
        if (row[1], row[2]) != (plan.school.name, plan.school.timezone):
            counts.add("schools", updated=1)
            await txn.execute(
                "UPDATE schools SET name = $2, timezone = $3 WHERE id = $1",
                row[0],
                plan.school.name,
                plan.school.timezone,
            )
        found: int = row[0]
        return found

    async def _persons(
        self, txn: Txn, journal_id: str, plan: Plan, counts: Counts
    ) -> dict[str, int]:
        ext_ids = sorted(plan.users)
        rows = await fetch_in(
            txn,
            "SELECT id, ext_id, last_name, first_name, middle_name FROM persons"
            " WHERE journal_id = $1 AND ext_id IN ({in})",
            ext_ids,
            journal_id,
        )
        ids = {row[1]: row[0] for row in rows}
        stored = {row[1]: (row[2], row[3], row[4]) for row in rows}
        new = [
            (journal_id, u.id, u.last_name, u.first_name, u.middle_name)
            for u in plan.users.values()
            if u.id not in ids
        ]
        changed = [
            (ids[u.id], u.last_name, u.first_name, u.middle_name)
            for u in plan.users.values()
            if u.id in stored and stored[u.id] != (u.last_name, u.first_name, u.middle_name)
        ]
        if new:
            await txn.executemany(
                "INSERT INTO persons (journal_id, ext_id, last_name, first_name, middle_name)"
                " VALUES ($1, $2, $3, $4, $5)",
                new,
            )
            rows = await fetch_in(
                txn,
                "SELECT id, ext_id FROM persons WHERE journal_id = $1 AND ext_id IN ({in})",
                [row[1] for row in new],
                journal_id,
            )
            ids.update((row[1], row[0]) for row in rows)
        if changed:
            await txn.executemany(
                "UPDATE persons SET last_name = $2, first_name = $3, middle_name = $4"
                " WHERE id = $1",
                changed,
            )
        counts.add("users", created=len(new), updated=len(changed))
        return ids

    async def _school_persons(
        self, txn: Txn, school_id: int, plan: Plan, people: dict[str, int], counts: Counts
    ) -> None:
        rows = await txn.fetch(
            "SELECT person_id, role FROM school_persons WHERE school_id = $1", school_id
        )
        current = {row[0]: row[1] for row in rows}
        desired = {people[u.id]: u.role for u in plan.users.values()}
        added = [(school_id, p, r) for p, r in desired.items() if p not in current]
        gone = [(school_id, p) for p in current if p not in desired]
        retyped = [
            (school_id, p, r) for p, r in desired.items() if p in current and current[p] != r
        ]
        if added:
            await txn.executemany(
                "INSERT INTO school_persons (school_id, person_id, role) VALUES ($1, $2, $3)", added
            )
        if gone:
            await txn.executemany(
                "DELETE FROM school_persons WHERE school_id = $1 AND person_id = $2", gone
            )
        if retyped:
            await txn.executemany(
                "UPDATE school_persons SET role = $3 WHERE school_id = $1 AND person_id = $2",
                retyped,
            )
        counts.add("memberships", created=len(added), updated=len(retyped), removed=len(gone))

    async def _by_ext_id(
        self,
        txn: Txn,
        table: str,
        columns: tuple[str, ...],
        school_id: int,
        desired: dict[str, tuple[Any, ...]],
        counts: Counts,
    ) -> dict[str, int]:
        """Make the school's rows of ``table`` say what the journal says (``desired``: its
        id → the values of ``columns``): insert the new, update the changed, count those
        the journal no longer names (they stay: chats and history refer to them). Returns
        our id by the journal's."""
        names = ", ".join(columns)
        rows = await txn.fetch(
            f"SELECT id, ext_id, {names} FROM {table} WHERE school_id = $1", school_id
        )
        ids = {row[1]: row[0] for row in rows}
        stored = {row[1]: tuple(row[2 + i] for i in range(len(columns))) for row in rows}
        new = [(school_id, e, *values) for e, values in desired.items() if e not in ids]
        changed = [
            (ids[e], *values)
            for e, values in desired.items()
            if e in stored and stored[e] != values
        ]
        if new:
            marks = ", ".join(f"${i}" for i in range(1, len(columns) + 3))
            await txn.executemany(
                f"INSERT INTO {table} (school_id, ext_id, {names}) VALUES ({marks})", new
            )
            rows = await txn.fetch(
                f"SELECT id, ext_id FROM {table} WHERE school_id = $1", school_id
            )
            ids = {row[1]: row[0] for row in rows}
        if changed:
            sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(columns, 2))
            await txn.executemany(f"UPDATE {table} SET {sets} WHERE id = $1", changed)
        gone = [e for e in ids if e not in desired]
        counts.add(table, created=len(new), updated=len(changed), removed=len(gone))
        return ids

    async def _relations(
        self,
        txn: Txn,
        school_id: int,
        plan: Plan,
        people: dict[str, int],
        classes: dict[str, int],
        groups: dict[str, int],
        counts: Counts,
    ) -> None:
        rows = await txn.fetch(
            "SELECT cs.class_id, cs.person_id FROM class_students cs"
            " JOIN classes c ON c.id = cs.class_id WHERE c.school_id = $1",
            school_id,
        )
        desired_cs = {
            (classes[c.id], people[s]) for c in plan.classes.values() for s in c.student_ids
        }
        added, gone = await _sync_set(
            txn,
            {(row[0], row[1]) for row in rows},
            desired_cs,
            "INSERT INTO class_students (class_id, person_id) VALUES ($1, $2)",
            "DELETE FROM class_students WHERE class_id = $1 AND person_id = $2",
        )
        counts.add("enrollments", created=added, removed=gone)
        rows = await txn.fetch(
            "SELECT gm.group_id, gm.person_id, gm.role FROM group_members gm"
            " JOIN groups g ON g.id = gm.group_id WHERE g.school_id = $1",
            school_id,
        )
        desired_gm = {
            (groups[g.id], people[p], role)
            for g in plan.groups.values()
            for role, members in (("student", g.student_ids), ("teacher", g.teacher_ids))
            for p in members
        }
        added, gone = await _sync_set(
            txn,
            {(row[0], row[1], row[2]) for row in rows},
            desired_gm,
            "INSERT INTO group_members (group_id, person_id, role) VALUES ($1, $2, $3)",
            "DELETE FROM group_members WHERE group_id = $1 AND person_id = $2 AND role = $3",
        )
        counts.add("enrollments", created=added, removed=gone)
        rows = await txn.fetch(
            "SELECT school_id, parent_id, student_id FROM parent_links WHERE school_id = $1",
            school_id,
        )
        added, gone = await _sync_set(
            txn,
            {(row[0], row[1], row[2]) for row in rows},
            {(school_id, people[p], people[s]) for p, s in plan.parents},
            "INSERT INTO parent_links (school_id, parent_id, student_id) VALUES ($1, $2, $3)",
            "DELETE FROM parent_links WHERE school_id = $1 AND parent_id = $2 AND student_id = $3",
        )
        counts.add("parents", created=added, removed=gone)

    async def _chats(
        self,
        txn: Txn,
        journal_id: str,
        school_id: int,
        plan: Plan,
        people: dict[str, int],
        now: int,
        counts: Counts,
    ) -> tuple[set[int], dict[int, tuple[str, str]]]:
        rows = await txn.fetch(
            "SELECT id, source, title, in_journal FROM chats"
            " WHERE school_id = $1 AND source IS NOT NULL",
            school_id,
        )
        by_source = {row[1]: (row[0], row[2], bool(row[3])) for row in rows}
        prefix = f"{journal_id}:"
        desired = {prefix + chat.key: chat for chat in plan.chats}
        new_chats: dict[int, tuple[str, str]] = {}
        retitled = []
        for source, chat in desired.items():
            found = by_source.get(source)
            if found is None:
                chat_id: int = await txn.fetchval(
                    "INSERT INTO chats (kind, title, created_at, journal_id, school_id, source,"
                    " in_journal) VALUES ($1, $2, $3, $4, $5, $6, TRUE) RETURNING id",
                    chat.kind,
                    chat.title,
                    now,
                    journal_id,
                    school_id,
                    source,
                )
                by_source[source] = (chat_id, chat.title, True)
                new_chats[chat_id] = (chat.kind, chat.title)
            elif found[1] != chat.title or not found[2]:
                retitled.append((found[0], chat.title))
        if retitled:
            await txn.executemany(
                "UPDATE chats SET title = $2, in_journal = TRUE WHERE id = $1", retitled
            )
        retired = [(v[0],) for s, v in by_source.items() if s not in desired and v[2]]
        if retired:
            # The class or group is gone: its chat stays, with its history, out of the journal.
            await txn.executemany("UPDATE chats SET in_journal = FALSE WHERE id = $1", retired)
        counts.add("chats", created=len(new_chats), updated=len(retitled), removed=len(retired))
        chat_ids = [v[0] for v in by_source.values()]
        rows = await fetch_in(
            txn,
            "SELECT chat_id, person_id, role FROM chat_roster WHERE chat_id IN ({in})",
            chat_ids,
        )
        current = {(row[0], row[1]): row[2] for row in rows}
        wanted = {
            (by_source[source][0], people[ext_id]): role
            for source, chat in desired.items()
            for ext_id, role in chat.members.items()
        }
        added = [(c, p, r) for (c, p), r in wanted.items() if (c, p) not in current]
        gone = [(c, p) for (c, p) in current if (c, p) not in wanted]
        changed = [(c, p, r) for (c, p), r in wanted.items() if current.get((c, p), r) != r]
        if added:
            await txn.executemany(
                "INSERT INTO chat_roster (chat_id, person_id, role) VALUES ($1, $2, $3)", added
            )
        if gone:
            await txn.executemany(
                "DELETE FROM chat_roster WHERE chat_id = $1 AND person_id = $2", gone
            )
        if changed:
            await txn.executemany(
                "UPDATE chat_roster SET role = $3 WHERE chat_id = $1 AND person_id = $2", changed
            )
        counts.add("chat_members", created=len(added), updated=len(changed), removed=len(gone))
        touched = {c for c, *_ in added} | {c for c, _ in gone} | {c for c, *_ in changed}
        return touched, new_chats


@dataclass(frozen=True, slots=True)
class SchoolRef:
    id: int
    timezone: str


@dataclass(frozen=True, slots=True)
class Slot:
    """A timetable lesson: a group's slot with its teacher (times in ms since the epoch)."""

    ext_id: str
    group_id: int
    teacher_id: int
    starts_at: int
    ends_at: int


class TimetableStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def school(self, journal_id: str, ext_id: str) -> SchoolRef | None:
        async with self._db.read("school") as reader:
            row = await reader.fetchrow(
                "SELECT id, timezone FROM schools WHERE journal_id = $1 AND ext_id = $2",
                journal_id,
                ext_id,
            )
        return None if row is None else SchoolRef(row[0], row[1])

    async def label(self, school_id: int, table: str, ext_id: str) -> str | None:
        """The name of a subject, class or group of the school."""
        assert table in ("subjects", "classes", "groups")
        async with self._db.read("label") as reader:
            name: str | None = await reader.fetchval(
                f"SELECT name FROM {table} WHERE school_id = $1 AND ext_id = $2", school_id, ext_id
            )
        return name

    async def refs(
        self, school_id: int, group_ext_ids: list[str], teacher_ext_ids: list[str], journal_id: str
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Ids of the school's groups and of its teachers/staff named by ext id."""
        async with self._db.read("timetable_refs") as reader:
            groups = await fetch_in(
                reader,
                "SELECT ext_id, id FROM groups WHERE school_id = $1 AND ext_id IN ({in})",
                sorted(set(group_ext_ids)),
                school_id,
            )
            teachers = await fetch_in(
                reader,
                "SELECT p.ext_id, p.id FROM persons p JOIN school_persons sp"
                " ON sp.person_id = p.id AND sp.school_id = $1"
                " WHERE sp.role IN ('teacher', 'staff') AND p.journal_id = $2"
                " AND p.ext_id IN ({in})",
                sorted(set(teacher_ext_ids)),
                school_id,
                journal_id,
            )
        return {r[0]: r[1] for r in groups}, {r[0]: r[1] for r in teachers}

    async def replace(
        self, school_id: int, start: int, end: int, slots: list[Slot]
    ) -> tuple[int, int]:
        """Replace the school's lessons starting in [start, end); (removed, created)."""
        async with self._db.transaction("replace_timetable") as txn:
            removed = await txn.execute(
                "DELETE FROM timetable WHERE school_id = $1 AND starts_at >= $2 AND starts_at < $3",
                school_id,
                start,
                end,
            )
            # The same lesson id moved out of the range is the one being sent now.
            await fetch_in(
                txn,
                "DELETE FROM timetable WHERE school_id = $1 AND ext_id IN ({in}) RETURNING id",
                [s.ext_id for s in slots],
                school_id,
            )
            await txn.executemany(
                "INSERT INTO timetable (school_id, ext_id, group_id, teacher_id, starts_at,"
                " ends_at) VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (school_id, s.ext_id, s.group_id, s.teacher_id, s.starts_at, s.ends_at)
                    for s in slots
                ],
            )
        return removed, len(slots)
