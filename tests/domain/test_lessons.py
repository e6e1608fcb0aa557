"""Lessons on both databases with a clock the test sets: the timetable rules, publishing,
going live, one live lesson per teacher, ending, attendance and the journal's webhooks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import msgspec
import orjson
import pytest

from protocol.errors import ErrorCode
from server.domain.errors import DomainError
from server.domain.journals import ScheduleIn
from server.domain.lesson_rules import attendance
from server.domain.lessons import LessonIn, LessonPatch, LessonService
from server.domain.webhooks import JournalWebhooks, signature
from server.store.journals import Journal
from server.store.lessons import Lesson, Stay
from tests.domain.school import roster
from tests.domain.world import LINK_URL, World

MSK = dt.timezone(dt.timedelta(hours=3))
# Tuesday 1 December 2026, 10:00 in Moscow.
NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=MSK)


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=MSK)


def slot(ext: str, group: str, teacher: str, start: dt.datetime) -> dict[str, str]:
    return {
        "id": ext,
        "group_id": group,
        "teacher_id": teacher,
        "starts_at": start.isoformat(),
        "ends_at": (start + dt.timedelta(minutes=45)).isoformat(),
    }


TIMETABLE = [
    slot("past", "g-math-7a", "t1", at(1, 8, 30)),  # ended 9:15
    slot("now", "g-math-7a", "t1", at(1, 9, 30)),  # 9:30-10:15, on now
    slot("later", "g-math-7a", "t1", at(1, 12)),
    slot("tomorrow", "g-math-7a", "t1", at(2, 9)),
    slot("phys", "g-phys-7", "t2", at(1, 11)),  # another group's
]


@dataclass
class School:
    world: World
    journal: Journal
    lessons: LessonService
    teacher: int
    student: int
    math: int  # the subject chat of the math group
    klass: int  # 7А's class chat

    def at(self, moment: dt.datetime) -> None:
        self.world.now[0] = ms(moment)

    async def schedule(self, chat_id: int, acting: str = "t1", **fields: object) -> Lesson:
        body = msgspec.convert(fields, LessonIn)
        return await self.lessons.schedule(self.journal, acting, chat_id, body)

    async def refused(self, chat_id: int, code: ErrorCode, **fields: object) -> DomainError:
        with pytest.raises(DomainError) as refused:
            await self.schedule(chat_id, **fields)
        assert refused.value.code is code, refused.value.message
        return refused.value


@pytest.fixture
async def school(world: World) -> School:
    credentials = await world.journals.add(
        "77", "Москва", "Журнал", LINK_URL, "http://127.0.0.1:9/h"
    )
    journal = await world.journals.authenticate(credentials.api_token)
    await world.journals.put_roster(journal, roster())
    schedule = {"school_id": "1", "from": "2026-11-30", "to": "2026-12-06", "lessons": TIMETABLE}
    await world.journals.put_schedule(journal, msgspec.convert(schedule, ScheduleIn))
    teacher = await world.account("Учитель")
    student = await world.account("Ученик")
    await world.link(credentials, "t1", teacher)
    await world.link(credentials, "s1", student)
    titles = {c.title: c.id for c in await world.chats.chats(teacher)}
    clock = lambda: world.now[0]  # noqa: E731
    lessons = LessonService(
        world.store,
        world.chats,
        world.journals,
        JournalWebhooks(world.store, clock),
        clock,
        "https://parta.example",
        early_start_ms=15 * 60_000,
    )
    made = School(
        world, journal, lessons, teacher, student, titles["Математика 7А"], titles["7А класс"]
    )
    made.at(NOW)
    return made


async def test_a_subject_chat_takes_its_groups_slots_that_have_not_ended(school: School) -> None:
    now = await school.schedule(school.math, lesson_id="now")
    assert (now.starts_at, now.ends_at) == (
        ms(at(1, 9, 30)),
        ms(at(1, 9, 30) + dt.timedelta(minutes=45)),
    )
    assert now.title == "Математика 7А" and now.state == "scheduled"
    later = await school.schedule(school.math, starts_at=at(1, 12).isoformat(), title="Дроби")
    assert later.starts_at == ms(at(1, 12)) and later.title == "Дроби"
    # Nothing chosen: the next slot not over, which is the one on now.
    assert (await school.schedule(school.math)).starts_at == ms(at(1, 9, 30))
    for refused in (
        {"lesson_id": "past"},
        {"lesson_id": "phys"},  # another group's
        {"lesson_id": "nope"},
        {"starts_at": at(1, 12, 5).isoformat()},  # not a slot's start
        {"starts_at": at(1, 8, 30).isoformat()},  # a slot that ended
    ):
        error = await school.refused(school.math, ErrorCode.SLOT_NOT_AVAILABLE, **refused)
        assert error.errors and error.errors[0].field in ("lesson_id", "starts_at")
    # Once the clock passes a slot's end, it is gone.
    school.at(at(1, 10, 16))
    await school.refused(school.math, ErrorCode.SLOT_NOT_AVAILABLE, lesson_id="now")


async def test_other_chats_take_future_days_only_in_the_schools_time_zone(school: School) -> None:
    await school.refused(
        school.klass, ErrorCode.SLOT_NOT_AVAILABLE, starts_at=at(1, 18).isoformat()
    )  # later today
    await school.refused(school.klass, ErrorCode.SLOT_NOT_AVAILABLE, starts_at=at(1, 8).isoformat())
    await school.refused(school.klass, ErrorCode.VALIDATION_FAILED)  # when?
    meeting = await school.schedule(
        school.klass, starts_at=at(2, 18).isoformat(), duration_minutes=60, title="Собрание"
    )
    assert meeting.ends_at - meeting.starts_at == 3_600_000
    # 23:30 in Moscow is 20:30 UTC: 00:30 Moscow is already tomorrow there.
    school.at(at(1, 23, 30))
    await school.schedule(school.klass, starts_at=at(2, 0, 30).isoformat())
    await school.refused(
        school.klass, ErrorCode.SLOT_NOT_AVAILABLE, starts_at=at(1, 23, 50).isoformat()
    )
    # A time without an offset is refused rather than guessed.
    with pytest.raises(DomainError) as naive:
        await school.schedule(school.klass, starts_at="2026-12-03T10:00:00")
    assert naive.value.code is ErrorCode.VALIDATION_FAILED


async def test_only_teachers_of_the_chat_schedule_and_manage(school: School) -> None:
    with pytest.raises(DomainError) as student:
        await school.schedule(school.math, acting="s1", lesson_id="later")
    assert student.value.code is ErrorCode.FORBIDDEN
    with pytest.raises(DomainError) as other_teacher:
        await school.schedule(school.math, acting="t2", lesson_id="later")
    assert other_teacher.value.code is ErrorCode.FORBIDDEN
    lesson = await school.schedule(school.math, lesson_id="later")
    with pytest.raises(DomainError) as foreign:
        await school.lessons.publish(school.journal, "t2", lesson.id)
    assert foreign.value.code is ErrorCode.FORBIDDEN


async def test_edit_follows_the_rules_and_moves_the_card(school: School) -> None:
    lesson = await school.schedule(school.math, lesson_id="later")
    edited = await school.lessons.edit(
        school.journal, "t1", lesson.id, LessonPatch(lesson_id="tomorrow", title="Повторение")
    )
    assert (edited.starts_at, edited.title) == (ms(at(2, 9)), "Повторение")
    with pytest.raises(DomainError) as refused:
        await school.lessons.edit(school.journal, "t1", lesson.id, LessonPatch(lesson_id="past"))
    assert refused.value.code is ErrorCode.SLOT_NOT_AVAILABLE
    published = await school.lessons.publish(school.journal, "t1", lesson.id)
    assert published.state == "published" and published.card_seq is not None
    card = await school.world.store.messages.message(school.math, published.card_seq)
    assert card is not None and card.lesson is not None and card.lesson.title == "Повторение"
    events = school.world.recorder.events
    await school.lessons.edit(school.journal, "t1", lesson.id, LessonPatch(title="Контрольная"))
    update = events[-1]
    assert update.kind == "lesson_updated" and update.target == published.card_seq
    assert update.lesson is not None and update.lesson.title == "Контрольная"
    # The card in history shows the lesson as it stands now.
    [shown] = [
        e
        for e in (await school.world.chats.history(school.student, school.math, None, 50))[0]
        if e.seq == published.card_seq
    ]
    assert shown.lesson is not None and shown.lesson.title == "Контрольная"
    await school.lessons.delete(school.journal, "t1", lesson.id)
    assert events[-1].lesson is not None and events[-1].lesson.state == "cancelled"
    with pytest.raises(DomainError):
        await school.lessons.info(school.journal, "t1", lesson.id)


async def test_the_host_starts_a_published_lesson_and_one_lesson_at_a_time(
    school: School,
) -> None:
    first = await school.schedule(school.math, lesson_id="now")
    second = await school.schedule(school.klass, starts_at=at(2, 9).isoformat())
    with pytest.raises(DomainError) as unpublished:
        await school.lessons.start(first)
    assert unpublished.value.code is ErrorCode.LESSON_NOT_STARTED
    first = await school.lessons.publish(school.journal, "t1", first.id)
    live = await school.lessons.start(first)
    assert live.state == "live" and live.started_at == ms(NOW)
    second = await school.lessons.publish(school.journal, "t1", second.id)
    # Too early for tomorrow's lesson; and once it may start, the live one is in the way.
    with pytest.raises(DomainError) as early:
        await school.lessons.start(second)
    assert early.value.code is ErrorCode.LESSON_NOT_STARTED
    school.at(at(2, 8, 50))
    with pytest.raises(DomainError) as busy:
        await school.lessons.start(second)
    assert busy.value.code is ErrorCode.ANOTHER_LESSON_LIVE
    assert "Математика 7А" in busy.value.message
    ended = await school.lessons.end_from_journal(school.journal, "t1", first.id)
    assert ended.state == "ended" and ended.end_reason == "journal"
    assert (await school.lessons.start(second)).state == "live"
    with pytest.raises(DomainError) as over:
        await school.lessons.edit(school.journal, "t1", first.id, LessonPatch(title="x"))
    assert over.value.code is ErrorCode.CONFLICT


async def test_ending_sends_webhooks_with_attendance(school: School) -> None:
    lesson = await school.schedule(school.math, lesson_id="now")
    lesson = await school.lessons.publish(school.journal, "t1", lesson.id)
    lesson = await school.lessons.start(lesson)
    await school.lessons.entered(lesson, school.teacher)
    await school.lessons.entered(lesson, school.student)
    school.at(NOW + dt.timedelta(minutes=10))
    await school.lessons.exited(lesson, school.student)
    school.at(NOW + dt.timedelta(minutes=11))  # a reconnect a minute later
    await school.lessons.entered(lesson, school.student)
    school.at(NOW + dt.timedelta(minutes=40))
    await school.lessons.end(lesson, "host")
    outbox = school.world.store.webhooks
    events = {}
    while due := await outbox.due(school.world.now[0]):  # one at a time, in order
        [pending] = due
        events[pending.event] = orjson.loads(pending.body)
        await outbox.delivered(pending.id, school.world.now[0])
    assert list(events) == ["call.started", "call.ended", "call.attendance"]
    assert events["call.started"]["data"]["lesson_id"] == "now"
    assert events["call.ended"]["data"]["reason"] == "host"
    present = {a["user_id"]: a for a in events["call.attendance"]["data"]["attendance"]}
    assert present["s1"]["presences"] == 1 and present["s1"]["seconds"] == 40 * 60
    assert present["t1"]["seconds"] == 40 * 60
    assert signature("k", b"{}").startswith("sha256=")


def test_attendance_joins_reconnects_and_counts_separate_stays() -> None:
    minute = 60_000
    stays = [
        Stay(1, 0, 10 * minute),
        Stay(1, 11 * minute, 20 * minute),  # back within two minutes: the same presence
        Stay(1, 30 * minute, None),  # back after ten: a second one, still there at the end
        Stay(2, 5 * minute, 6 * minute),
    ]
    first, second = attendance(stays, ended_at=40 * minute)
    assert (first.presences, first.seconds) == (2, 30 * 60)
    assert (first.first_joined_at, first.last_left_at) == (0, 40 * minute)
    assert (second.presences, second.seconds) == (1, 60)
