"""Lessons as the journal drives them: schedule, edit, publish, delete, end, join URLs and
attendance (DESIGN.md, "Journal API"); and the state changes the call room asks for
(the host's first join makes a lesson live; an empty or long-over lesson ends).

The journal acts for a teacher (``?as=``). The teacher who schedules a lesson is its
host; the chat's teachers (its owner and admins by the roster) may manage it too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from protocol.calls import CallState
from protocol.errors import ErrorCode
from protocol.messages import Event, Title
from server.domain import lesson_rules
from server.domain.chats import ChatService
from server.domain.clock import Clock
from server.domain.errors import DomainError
from server.domain.journals import JournalService
from server.domain.roster import ExtId
from server.domain.webhooks import JournalWebhooks, rfc3339
from server.store import Store
from server.store.journals import Journal, Person
from server.store.lessons import ChatPlace, Lesson

logger = logging.getLogger("parta.lessons")

Minutes = Annotated[int, msgspec.Meta(ge=5, le=480)]
TICKET_TTL_MS = 5 * 60_000


class LessonIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A lesson to schedule. Subject chats: ``lesson_id`` (a timetable lesson) or a
    ``starts_at`` equal to a slot's start, else the next slot; other chats: ``starts_at``."""

    title: Title | None = None
    lesson_id: ExtId | None = None
    starts_at: dt.datetime | None = None
    duration_minutes: Minutes = 45


class LessonPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    title: Title | None = None
    lesson_id: ExtId | None = None
    starts_at: dt.datetime | None = None
    duration_minutes: Minutes | None = None


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "starts_at needs a time zone offset")
    return moment


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def ticket_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LessonService:
    def __init__(
        self,
        store: Store,
        chats: ChatService,
        journals: JournalService,
        webhooks: JournalWebhooks,
        clock: Clock,
        base_url: str,
        early_start_ms: int,
    ) -> None:
        self._store = store
        self._chats = chats
        self._journals = journals
        self._webhooks = webhooks
        self._clock = clock
        self._base_url = base_url
        self.early_start_ms = early_start_ms
        # The call room hears of lessons that end, to send everyone home.
        self.on_finish: list[Callable[[Lesson], None]] = []

    # --- what the journal asks -----------------------------------------------------------------

    async def _place(self, journal: Journal, chat_id: int) -> ChatPlace:
        place = await self._store.lessons.place(chat_id)
        if place is None or place.journal_id not in (None, journal.id) or place.kind == "direct":
            raise DomainError(ErrorCode.NOT_FOUND, f"no chat {chat_id} for this journal")
        return place

    async def _in_chat(self, person: Person, chat_id: int) -> bool:
        if await self._store.journal_chats.roster_role(chat_id, person.id) is not None:
            return True
        account = await self._store.journals.linked_account(person.id)
        return account is not None and (
            await self._store.messages.member_state(chat_id, account) is not None
        )

    async def _teacher_of(self, journal: Journal, acting: str | None, chat_id: int) -> Person:
        teacher = await self._journals.acting(journal, acting)
        if not await self._in_chat(teacher, chat_id):
            raise DomainError(ErrorCode.FORBIDDEN, "lessons are scheduled by teachers of the chat")
        return teacher

    async def _lesson(self, journal: Journal, lesson_id: int) -> Lesson:
        lesson = await self._store.lessons.get(lesson_id)
        if lesson is None or lesson.journal_id != journal.id:
            raise DomainError(ErrorCode.NOT_FOUND, f"no lesson {lesson_id} in this journal")
        return lesson

    async def _managed(self, journal: Journal, acting: str | None, lesson_id: int) -> Lesson:
        lesson = await self._lesson(journal, lesson_id)
        teacher = await self._journals.acting(journal, acting)
        if teacher.id != lesson.creator_person_id:
            role = await self._store.journal_chats.roster_role(lesson.chat_id, teacher.id)
            if role not in ("owner", "admin"):
                raise DomainError(
                    ErrorCode.FORBIDDEN, "only the lesson's teacher and the chat's admins may"
                )
        return lesson

    async def _when(
        self,
        place: ChatPlace,
        teacher: Person,
        lesson_id: str | None,
        starts_at: dt.datetime | None,
        minutes: int,
    ) -> lesson_rules.When:
        now = self._clock()
        if place.kind == "subject" and place.school_id is not None:
            if lesson_id is not None:
                slot = await self._store.lessons.slot(place.school_id, lesson_id)
                return lesson_rules.in_slot(slot, place.group_ids, now, "lesson_id")
            open_slots = await self._store.lessons.slots(place.group_ids, now)
            if starts_at is None:
                slot = open_slots[0] if open_slots else None
                return lesson_rules.in_slot(slot, place.group_ids, now, "lesson_id")
            slot = lesson_rules.slot_starting(open_slots, _ms(starts_at))
            return lesson_rules.in_slot(slot, place.group_ids, now, "starts_at")
        if starts_at is None:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "say when: starts_at")
        zone = place.timezone or await self._store.lessons.person_timezone(teacher.id)
        return lesson_rules.on_future_day(starts_at, minutes, zone, now)

    async def schedule(
        self, journal: Journal, acting: str | None, chat_id: int, lesson: LessonIn
    ) -> Lesson:
        place = await self._place(journal, chat_id)
        teacher = await self._teacher_of(journal, acting, chat_id)
        when = await self._when(
            place, teacher, lesson.lesson_id, _aware(lesson.starts_at), lesson.duration_minutes
        )
        info = await self._chats_title(chat_id)
        return await self._store.lessons.create(
            chat_id,
            journal.id,
            teacher.id,
            lesson.title or info,
            when.starts_at,
            when.ends_at,
            when.slot_id,
            self._clock(),
        )

    async def _chats_title(self, chat_id: int) -> str:
        meta = await self._store.journal_chats.meta(chat_id)
        return meta.title if meta is not None else "Урок"

    async def edit(
        self, journal: Journal, acting: str | None, lesson_id: int, patch: LessonPatch
    ) -> Lesson:
        lesson = await self._managed(journal, acting, lesson_id)
        if lesson.state not in ("scheduled", "published"):
            raise DomainError(ErrorCode.CONFLICT, f"a {lesson.state} lesson is not edited")
        starts_at, ends_at, slot_id = lesson.starts_at, lesson.ends_at, lesson.slot_id
        if patch.lesson_id is not None or patch.starts_at is not None or patch.duration_minutes:
            place = await self._place(journal, lesson.chat_id)
            teacher = await self._journals.person(journal, acting or "")
            minutes = patch.duration_minutes or (lesson.ends_at - lesson.starts_at) // 60_000
            start = _aware(patch.starts_at)
            if start is None and place.kind != "subject":
                start = dt.datetime.fromtimestamp(lesson.starts_at / 1000, dt.UTC)
            when = await self._when(place, teacher, patch.lesson_id, start, minutes)
            starts_at, ends_at, slot_id = when.starts_at, when.ends_at, when.slot_id
        updated, card = await self._store.lessons.update(
            lesson_id, patch.title or lesson.title, starts_at, ends_at, slot_id, self._clock()
        )
        self._notify(card)
        return updated

    async def publish(self, journal: Journal, acting: str | None, lesson_id: int) -> Lesson:
        lesson = await self._managed(journal, acting, lesson_id)
        if lesson.state != "scheduled":
            return lesson  # publishing twice is harmless
        actor = await self._store.journals.linked_account(lesson.creator_person_id)
        published, card = await self._store.lessons.publish(lesson_id, actor or 0, self._clock())
        self._notify(card)
        return published

    async def delete(self, journal: Journal, acting: str | None, lesson_id: int) -> None:
        lesson = await self._managed(journal, acting, lesson_id)
        if lesson.state == "live":
            raise DomainError(ErrorCode.CONFLICT, "the lesson is live: end it first")
        if lesson.state in ("scheduled", "published"):
            await self._finish(lesson, "cancelled", "deleted", delete=True)
        else:
            await self._store.lessons.finish(
                lesson_id, lesson.state, lesson.end_reason or "", self._clock(), delete=True
            )

    async def end_from_journal(
        self, journal: Journal, acting: str | None, lesson_id: int
    ) -> Lesson:
        lesson = await self._managed(journal, acting, lesson_id)
        if lesson.state not in ("published", "live"):
            raise DomainError(ErrorCode.CONFLICT, f"a {lesson.state} lesson cannot be ended")
        return await self._finish(lesson, "ended", "journal")

    async def info(self, journal: Journal, acting: str | None, lesson_id: int) -> Lesson:
        lesson = await self._lesson(journal, lesson_id)
        person = await self._journals.person(journal, acting or "")
        if not await self._in_chat(person, lesson.chat_id):
            raise DomainError(ErrorCode.FORBIDDEN, "not a member of the lesson's chat")
        return lesson

    async def slots(
        self, journal: Journal, acting: str | None, chat_id: int
    ) -> list[dict[str, Any]]:
        """The timetable slots a subject chat's lesson may take now (for the journal's form)."""
        place = await self._place(journal, chat_id)
        await self._teacher_of(journal, acting, chat_id)
        if place.kind != "subject":
            return []
        return [
            {
                "lesson_id": s.ext_id,
                "starts_at": rfc3339(s.starts_at),
                "ends_at": rfc3339(s.ends_at),
            }
            for s in await self._store.lessons.slots(place.group_ids, self._clock())
        ]

    async def join_url(
        self, journal: Journal, acting: str | None, lesson_id: int
    ) -> dict[str, str]:
        """The single-use URL behind the journal's headphones icon: it signs that linked
        person into the web client, straight into the lesson."""
        lesson = await self.info(journal, acting, lesson_id)
        person = await self._journals.person(journal, acting or "")
        account = await self._store.journals.linked_account(person.id)
        if account is None:
            raise DomainError(ErrorCode.CONFLICT, "this person has not linked a profile yet")
        if lesson.state in ("ended", "cancelled"):
            raise DomainError(ErrorCode.LESSON_ENDED, "the lesson is over")
        token = secrets.token_urlsafe(24)
        expires = self._clock() + TICKET_TTL_MS
        await self._store.lessons.add_ticket(ticket_hash(token), lesson_id, account, expires)
        return {
            "url": f"{self._base_url}/api/v1/calls/{lesson_id}/enter?ticket={token}",
            "expires_at": rfc3339(expires),
        }

    async def use_ticket(self, lesson_id: int, token: str) -> int:
        account = await self._store.lessons.use_ticket(ticket_hash(token), lesson_id, self._clock())
        if account is None:
            raise DomainError(ErrorCode.NOT_FOUND, "this join link is used or expired")
        return account

    async def attendance(
        self, journal: Journal, acting: str | None, lesson_id: int
    ) -> list[dict[str, Any]]:
        lesson = await self._managed(journal, acting, lesson_id)
        return await self._attendance(lesson)

    async def _attendance(self, lesson: Lesson) -> list[dict[str, Any]]:
        stays = await self._store.lessons.stays(lesson.id)
        people = lesson_rules.attendance(stays, lesson.ended_at or self._clock())
        persons = await self._store.lessons.persons_of(
            lesson.journal_id, [p.account_id for p in people]
        )
        return [
            {
                "user_id": persons.get(p.account_id),
                "account_id": p.account_id,
                "joined_at": rfc3339(p.first_joined_at),
                "left_at": rfc3339(p.last_left_at),
                "seconds": p.seconds,
                "presences": p.presences,
            }
            for p in people
        ]

    # --- what the call room asks -----------------------------------------------------------------

    async def for_member(self, account_id: int, lesson_id: int) -> Lesson:
        lesson = await self._store.lessons.get(lesson_id)
        if lesson is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no lesson {lesson_id}")
        await self._chats.chat_info(account_id, lesson.chat_id)  # members only
        return lesson

    async def start(self, lesson: Lesson) -> Lesson:
        """The host's first join: published → live, unless another of theirs is live."""
        if lesson.state == "scheduled":
            raise DomainError(ErrorCode.LESSON_NOT_STARTED, "the lesson is not published yet")
        if lesson.state == "published" and self._clock() < lesson.starts_at - self.early_start_ms:
            raise DomainError(ErrorCode.LESSON_NOT_STARTED, "it is too early to start the lesson")
        live, card, other = await self._store.lessons.go_live(lesson.id, self._clock())
        if other is not None:
            raise DomainError(
                ErrorCode.ANOTHER_LESSON_LIVE,
                f"your lesson «{other.title}» (id {other.id}) is still live: end it first",
            )
        if card is not None:
            self._notify(card)
            await self._webhooks.send(
                live.journal_id,
                "call.started",
                {**await self._webhook_data(live), "started_at": rfc3339(live.started_at or 0)},
            )
        return live

    async def end(self, lesson: Lesson, reason: str) -> Lesson:
        """From the call: the host's red button, an empty room, a lesson long over."""
        current = await self._store.lessons.get(lesson.id)
        if current is None or current.state != "live":
            return current or lesson
        return await self._finish(current, "ended", reason)

    async def entered(self, lesson: Lesson, account_id: int) -> None:
        await self._store.lessons.enter(lesson.id, account_id, self._clock())

    async def exited(self, lesson: Lesson, account_id: int) -> None:
        await self._store.lessons.exit(lesson.id, account_id, self._clock())

    # --- shared --------------------------------------------------------------------------------

    async def _finish(
        self, lesson: Lesson, state: CallState, reason: str, *, delete: bool = False
    ) -> Lesson:
        was_live = lesson.state == "live"
        finished, card = await self._store.lessons.finish(
            lesson.id,
            state,
            reason,
            self._clock(),
            delete=delete,
        )
        self._notify(card)
        for listener in self.on_finish:
            listener(finished)
        if was_live:
            data = await self._webhook_data(finished)
            ended = {"ended_at": rfc3339(finished.ended_at or 0), "reason": reason}
            await self._webhooks.send(finished.journal_id, "call.ended", {**data, **ended})
            await self._webhooks.send(
                finished.journal_id,
                "call.attendance",
                {**data, "attendance": await self._attendance(finished)},
            )
        return finished

    async def _webhook_data(self, lesson: Lesson) -> dict[str, Any]:
        slot = await self._store.lessons.slot_ext_id(lesson.slot_id) if lesson.slot_id else None
        return {"call_id": lesson.id, "chat_id": lesson.chat_id, "lesson_id": slot}

    async def recording_ready(self, lesson: Lesson, file_id: int, seconds: float) -> None:
        await self._webhooks.send(
            lesson.journal_id,
            "call.recording_ready",
            {
                **await self._webhook_data(lesson),
                "file_id": file_id,
                "url": f"{self._base_url}/api/v1/files/{file_id}",
                "duration_s": round(seconds, 1),
            },
        )

    def _notify(self, event: Event | None) -> None:
        if event is not None:
            self._chats.notify_event(event)
