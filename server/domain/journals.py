"""Journals: who they are, what they push (roster, timetable), what they may change.

A journal authenticates with its API token and may act for one of its teachers or staff
(``as``). Every id it sends is its own and is looked up within that journal only.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import zoneinfo
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
import orjson

from protocol.errors import ErrorCode
from server.domain.chats import ChatService
from server.domain.clock import Clock
from server.domain.errors import DomainError, FieldError
from server.domain.roster import ExtId, RosterIn, validate
from server.domain.webhooks import rfc3339
from server.security import hash_token, new_token
from server.store import Store
from server.store.journals import Journal, Person
from server.store.lessons import Lesson
from server.store.roster import Counts, Slot


@dataclass(frozen=True, slots=True)
class Credentials:
    journal_id: str
    api_token: str
    signing_secret: str


# RFC 3339 with an offset (DESIGN.md: "times are RFC 3339 with an offset").
Moment = Annotated[dt.datetime, msgspec.Meta(tz=True)]


class LessonIn(msgspec.Struct, frozen=True):
    id: ExtId
    group_id: ExtId
    teacher_id: ExtId
    starts_at: Moment
    ends_at: Moment


class ScheduleIn(msgspec.Struct, frozen=True):
    school_id: ExtId
    from_: dt.date = msgspec.field(name="from")
    to: dt.date = msgspec.field(name="to")
    lessons: Annotated[list[LessonIn], msgspec.Meta(max_length=20_000)] = []


Audience = Literal["all", "students", "parents", "staff"]
ChatKind = Literal["subject", "custom"]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class ChatMemberIn(msgspec.Struct, frozen=True):
    user_id: ExtId
    admin: bool = False


class JournalChatIn(msgspec.Struct, frozen=True):
    """A chat a teacher makes from the journal (``as`` = the teacher)."""

    kind: ChatKind
    school_id: ExtId
    members: Annotated[list[ChatMemberIn], msgspec.Meta(max_length=2000)]
    title: Title | None = None
    # What the teacher chose it for: shown in the title of a subject chat.
    parallel: Annotated[int, msgspec.Meta(ge=0, le=13)] | None = None
    class_id: ExtId | None = None
    subject_id: ExtId | None = None
    group_id: ExtId | None = None


class JournalChatPatch(msgspec.Struct, frozen=True):
    title: Title | None = None
    members: Annotated[list[ChatMemberIn], msgspec.Meta(max_length=2000)] | None = None


def _scope(chat: JournalChatIn) -> str:
    """What a subject chat was made for, as the lesson rules look it up (LessonStore)."""
    chosen = {
        "group": chat.group_id,
        "class": chat.class_id,
        "parallel": chat.parallel,
        "subject": chat.subject_id,
    }
    return orjson.dumps({k: v for k, v in chosen.items() if v is not None}).decode()


def _ms(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times need an offset")
    return int(moment.timestamp() * 1000)


class JournalService:
    def __init__(self, store: Store, chats: ChatService, clock: Clock) -> None:
        self._store = store
        self._chats = chats
        self._clock = clock

    # --- registry -------------------------------------------------------------------------

    async def add(
        self, region_code: str, region_name: str, name: str, link_url: str, webhook_url: str | None
    ) -> Credentials:
        journal = Journal(
            id=f"j{secrets.token_hex(4)}",
            region_code=region_code,
            region_name=region_name,
            name=name,
            link_url=link_url,
            webhook_url=webhook_url,
            signing_secret=secrets.token_urlsafe(32),
        )
        token = "pj_" + new_token()
        await self._store.journals.add(journal, hash_token(token), self._clock())
        return Credentials(journal.id, token, journal.signing_secret)

    async def rotate(self, journal_id: str) -> Credentials:
        token, secret = "pj_" + new_token(), secrets.token_urlsafe(32)
        if not await self._store.journals.rotate(journal_id, hash_token(token), secret):
            raise DomainError(ErrorCode.NOT_FOUND, f"no journal {journal_id!r}")
        return Credentials(journal_id, token, secret)

    async def authenticate(self, token: str | None) -> Journal:
        journal = None if not token else await self._store.journals.by_token(hash_token(token))
        if journal is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "a journal API token is required")
        return journal

    async def regions(self) -> list[dict[str, object]]:
        regions: dict[str, dict[str, object]] = {}
        for journal in await self._store.journals.all():
            region = regions.setdefault(
                journal.region_code,
                {"code": journal.region_code, "name": journal.region_name, "journals": []},
            )
            region["journals"].append({"id": journal.id, "name": journal.name})  # type: ignore[attr-defined]
        return list(regions.values())

    # --- roster and timetable --------------------------------------------------------------

    async def put_roster(self, journal: Journal, roster: RosterIn) -> Counts:
        plan = validate(roster)
        applied = await self._store.roster.apply(journal.id, plan, self._clock())
        await self._chats.sync_roster(sorted(applied.chats))
        return applied.counts

    async def put_schedule(self, journal: Journal, schedule: ScheduleIn) -> dict[str, int]:
        school = await self._store.timetable.school(journal.id, schedule.school_id)
        if school is None:
            raise DomainError(
                ErrorCode.NOT_FOUND, f"no school {schedule.school_id!r}: send its roster first"
            )
        if schedule.to < schedule.from_:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "'to' is before 'from'")
        if not (schedule.from_.year >= 2000 and schedule.to.year <= 2200):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "dates between 2000 and 2200")
        if (schedule.to - schedule.from_).days > 400:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "at most a school year per request")
        zone = zoneinfo.ZoneInfo(school.timezone)
        start = _ms(dt.datetime.combine(schedule.from_, dt.time(), zone))
        end = _ms(dt.datetime.combine(schedule.to + dt.timedelta(days=1), dt.time(), zone))
        groups, teachers = await self._store.timetable.refs(
            school.id,
            [lesson.group_id for lesson in schedule.lessons],
            [lesson.teacher_id for lesson in schedule.lessons],
            journal.id,
        )
        errors: list[FieldError] = []
        slots: list[tuple[int, Slot]] = []  # (index in the request, slot)
        seen: set[str] = set()
        for i, lesson in enumerate(schedule.lessons):
            path = f"lessons[{i}]"
            found = len(errors)
            try:
                starts, ends = _ms(lesson.starts_at), _ms(lesson.ends_at)
            except ValueError:
                errors.append(FieldError(path, "starts_at and ends_at need a UTC offset"))
                continue
            if ends <= starts:
                errors.append(FieldError(f"{path}.ends_at", "a lesson ends after it starts"))
            if not start <= starts < end:
                errors.append(FieldError(f"{path}.starts_at", "outside the from/to range"))
            if lesson.group_id not in groups:
                errors.append(FieldError(f"{path}.group_id", f"unknown group {lesson.group_id!r}"))
            if lesson.teacher_id not in teachers:
                errors.append(
                    FieldError(f"{path}.teacher_id", f"unknown teacher {lesson.teacher_id!r}")
                )
            if lesson.id in seen:
                errors.append(FieldError(f"{path}.id", f"duplicate lesson id {lesson.id!r}"))
            seen.add(lesson.id)
            if len(errors) == found:
                group, teacher = groups[lesson.group_id], teachers[lesson.teacher_id]
                slots.append((i, Slot(lesson.id, group, teacher, starts, ends)))
        by_teacher: dict[int, list[tuple[int, int, int]]] = {}
        for i, slot in slots:
            by_teacher.setdefault(slot.teacher_id, []).append((slot.starts_at, slot.ends_at, i))
        for lessons in by_teacher.values():
            lessons.sort()
            for (_, prev_end, _), (next_start, _, index) in itertools.pairwise(lessons):
                if next_start < prev_end:
                    teacher_ext = schedule.lessons[index].teacher_id
                    errors.append(
                        FieldError(
                            f"lessons[{index}]", f"overlaps a lesson of teacher {teacher_ext!r}"
                        )
                    )
        if errors:
            raise DomainError(
                ErrorCode.VALIDATION_FAILED,
                f"the schedule has {len(errors)} problem(s)",
                errors=tuple(errors[:200]),
            )
        removed, created = await self._store.timetable.replace(
            school.id, start, end, [slot for _, slot in slots]
        )
        return {"removed": removed, "created": created}

    # --- people ------------------------------------------------------------------------------

    async def person(self, journal: Journal, ext_id: str) -> Person:
        person = await self._store.journals.person(journal.id, ext_id)
        if person is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no user {ext_id!r} in this journal")
        return person

    async def acting(self, journal: Journal, ext_id: str | None) -> Person:
        """The teacher or staff member the journal acts for (``?as=``)."""
        if not ext_id:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "say who acts: ?as=<user id>")
        person = await self.person(journal, ext_id)
        if not any(role in ("teacher", "staff") for _, role in person.schools):
            raise DomainError(ErrorCode.FORBIDDEN, "only teachers and staff manage chats")
        return person

    async def chats_of(self, journal: Journal, ext_id: str) -> list[dict[str, object]]:
        person = await self.person(journal, ext_id)
        account = await self._store.journals.linked_account(person.id)
        chats = await self._store.journal_chats.chats_of_person(journal.id, person.id, account)
        lessons = await self._store.lessons.of_chats([c.id for c in chats], self._clock())
        return [
            {
                "id": c.id,
                "title": c.title,
                "kind": c.kind,
                "member_count": c.member_count,
                "unread_count": c.unread,
                "lesson": lesson_json(lessons[c.id]) if c.id in lessons else None,
            }
            for c in chats
        ]

    # --- chats made from the journal ---------------------------------------------------------

    async def _members(
        self, journal: Journal, school_id: int, members: list[ChatMemberIn], field_name: str
    ) -> dict[int, str]:
        chosen: dict[int, str] = {}
        errors = []
        for i, member in enumerate(members):
            person = await self._store.journals.person(journal.id, member.user_id)
            if person is None or not person.schools:
                errors.append(
                    FieldError(f"{field_name}[{i}].user_id", f"unknown user {member.user_id!r}")
                )
                continue
            chosen[person.id] = "admin" if member.admin else "member"
        if errors:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "unknown members", errors=tuple(errors))
        return chosen

    async def create_chat(
        self, journal: Journal, acting_ext: str | None, chat: JournalChatIn
    ) -> int:
        creator = await self.acting(journal, acting_ext)
        school = await self._store.timetable.school(journal.id, chat.school_id)
        if school is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no school {chat.school_id!r}")
        if chat.kind == "custom" and not chat.title:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "a custom chat needs a title")
        title = chat.title or await self._subject_title(school.id, chat)
        roster = await self._members(journal, school.id, chat.members, "members")
        roster[creator.id] = "owner"
        chat_id = await self._store.journal_chats.create(
            chat.kind, title, journal.id, school.id, creator.id, roster, self._clock(),
            _scope(chat) if chat.kind == "subject" else None,
        )  # fmt: skip
        await self._chats.sync_roster([chat_id])
        return chat_id

    async def _managed(
        self, journal: Journal, acting_ext: str | None, chat_id: int
    ) -> tuple[Person, int]:
        actor = await self.acting(journal, acting_ext)
        meta = await self._store.journal_chats.meta(chat_id)
        if meta is None or meta.journal_id != journal.id or not meta.in_journal:
            raise DomainError(ErrorCode.NOT_FOUND, f"no chat {chat_id} in this journal")
        if meta.system:
            raise DomainError(
                ErrorCode.FORBIDDEN,
                "chats made from the roster follow the roster; they are not edited",
            )
        if meta.creator_person_id != actor.id:
            roster_role = await self._store.journal_chats.roster_role(chat_id, actor.id)
            if roster_role not in ("owner", "admin"):
                raise DomainError(
                    ErrorCode.FORBIDDEN, "only the chat's creator and admins change it"
                )
        return actor, meta.creator_person_id or actor.id

    async def update_chat(
        self, journal: Journal, acting_ext: str | None, chat_id: int, patch: JournalChatPatch
    ) -> None:
        _, creator = await self._managed(journal, acting_ext, chat_id)
        meta = await self._store.journal_chats.meta(chat_id)
        assert meta is not None
        if patch.title is not None and patch.title != meta.title:
            if meta.kind != "custom":
                raise DomainError(ErrorCode.FORBIDDEN, "only custom chats are renamed")
            event = await self._store.journal_chats.retitle(chat_id, patch.title, self._clock())
            self._chats.notify_event(event)
        if patch.members is not None:
            roster = await self._members(journal, meta.school_id or 0, patch.members, "members")
            roster[creator] = "owner"
            await self._store.journal_chats.set_roster(chat_id, roster)
            await self._chats.sync_roster([chat_id])

    async def delete_chat(self, journal: Journal, acting_ext: str | None, chat_id: int) -> None:
        _, creator = await self._managed(journal, acting_ext, chat_id)
        await self._store.journal_chats.leave_journal(chat_id, creator)
        await self._chats.sync_roster([chat_id])

    async def _subject_title(self, school_id: int, chat: JournalChatIn) -> str:
        """ "Математика 7А", "Физика 8 классы": from what the teacher chose."""
        labels = self._store.timetable.label
        parts = [
            await labels(school_id, "subjects", chat.subject_id) if chat.subject_id else None,
            await labels(school_id, "classes", chat.class_id) if chat.class_id else None,
            await labels(school_id, "groups", chat.group_id) if chat.group_id else None,
        ]
        if chat.parallel is not None and not chat.class_id:
            parts.append(f"{chat.parallel} классы")
        return " ".join(p for p in parts if p) or "Предметный чат"


def lesson_json(lesson: Lesson) -> dict[str, Any]:
    """A lesson in the Journal API."""
    return {
        "id": lesson.id,
        "chat_id": lesson.chat_id,
        "title": lesson.title,
        "starts_at": rfc3339(lesson.starts_at),
        "ends_at": rfc3339(lesson.ends_at),
        "state": lesson.state,
        "started_at": rfc3339(lesson.started_at) if lesson.started_at else None,
        "ended_at": rfc3339(lesson.ended_at) if lesson.ended_at else None,
    }
