"""Journals on both databases: roster reconciliation, chats that build themselves,
linking both ways, chats made from the journal, isolation between journals."""

from __future__ import annotations

import msgspec
import pytest

from protocol.errors import ErrorCode
from protocol.messages import ChatPost
from server.domain.errors import DomainError
from server.domain.journals import (
    JournalChatIn,
    JournalChatPatch,
    ScheduleIn,
)
from server.domain.linking import LinkRefused
from tests.domain.school import roster, school
from tests.domain.world import LINK_URL, World


async def test_roster_reconciles_idempotently_and_counts_changes(world: World) -> None:
    journal, _ = await world.journal()
    first = await world.journals.put_roster(journal, roster())
    assert first.created["users"] == 7 and first.created["classes"] == 2
    assert first.created["chats"] == 1 + 2 * 2 + 2  # colleagues, 2×(class, parents), 2 groups
    again = await world.journals.put_roster(journal, roster())
    assert not any(again.created.values()) and not any(again.updated.values())
    assert not any(again.removed.values())
    regions = await world.journals.regions()
    assert regions == [
        {"code": "77", "name": "Москва", "journals": [{"id": journal.id, "name": "Журнал"}]}
    ]


async def test_a_bad_roster_names_every_bad_row(world: World) -> None:
    journal, _ = await world.journal()
    data = school()
    data["classes"][0]["class_teacher_id"] = "nobody"
    data["groups"][1]["subject_id"] = "chem"
    data["parents"].append({"parent_id": "s1", "student_id": "s2"})
    data["users"].append(dict(data["users"][0]))  # duplicate t1
    data["school"]["timezone"] = "Mars/Olympus"
    with pytest.raises(DomainError) as refused:
        await world.journals.put_roster(journal, roster(data))
    fields = {e.field for e in refused.value.errors}
    assert {
        "classes[0].class_teacher_id",
        "groups[1].subject_id",
        "parents[2].parent_id",
        "users[7].id",
        "school.timezone",
    } <= fields
    assert await world.store.journals.person(journal.id, "t1") is None  # nothing stored


async def test_people_find_their_chats_when_they_link(world: World) -> None:
    journal, credentials = await world.journal()
    await world.journals.put_roster(journal, roster())
    teacher = await world.account("Учитель")
    student = await world.account("Ученик")
    parent = await world.account("Родитель")
    await world.link(credentials, "t1", teacher)
    assert await world.titles(teacher) == {
        "Коллеги — Школа № 17",
        "7А класс",
        "Родители 7А",
        "Математика 7А",
    }
    await world.link(credentials, "s1", student)
    assert await world.titles(student) == {"7А класс", "Математика 7А", "Физика 7 (сборная)"}
    await world.link(credentials, "p1", parent)
    assert await world.titles(parent) == {"Родители 7А", "Родители 7Б"}  # two children
    joined = {(a, c.title) for a, c in world.recorder.joined}
    assert (student, "7А класс") in joined
    class_chat = await _chat_id(world, teacher, "7А класс")
    roles = {m.account_id: m.role for m in await world.chats.members(teacher, class_chat)}
    assert roles[teacher] == "admin" and roles[student] == "member"


async def _chat_id(world: World, account_id: int, title: str) -> int:
    return next(c.id for c in await world.chats.chats(account_id) if c.title == title)


async def test_a_student_moved_to_another_class_changes_chats_and_keeps_messages(
    world: World,
) -> None:
    journal, credentials = await world.journal()
    await world.journals.put_roster(journal, roster())
    student = await world.account("Ученик")
    await world.link(credentials, "s2", student)
    old_class = await _chat_id(world, student, "7А класс")
    await world.messages.post(
        student, ChatPost(chat_id=old_class, client_id="m1", text="Всем привет")
    )
    moved = school()
    moved["classes"][0]["student_ids"] = ["s1"]
    moved["classes"][1]["student_ids"] = ["s3", "s2"]
    moved["groups"][0]["student_ids"] = ["s1"]
    counts = await world.journals.put_roster(journal, roster(moved))
    assert counts.created["enrollments"] == 1 and counts.removed["enrollments"] == 2
    assert await world.titles(student) == {"7Б класс"}
    assert (student, old_class) in world.recorder.left
    teacher = await world.account("Учитель")
    await world.link(credentials, "t1", teacher)
    history, _ = await world.chats.history(teacher, old_class, None, 50)
    assert [e.text for e in history if e.kind == "message"] == ["Всем привет"]  # messages stay


async def test_a_person_removed_from_the_roster_leaves_its_chats(world: World) -> None:
    journal, credentials = await world.journal()
    await world.journals.put_roster(journal, roster())
    staff = await world.account("Сотрудник")
    await world.link(credentials, "st", staff)
    assert await world.titles(staff) == {"Коллеги — Школа № 17"}
    data = school()
    data["users"] = [u for u in data["users"] if u["id"] != "st"]
    await world.journals.put_roster(journal, roster(data))
    assert await world.titles(staff) == set()


async def test_two_journals_with_the_same_ids_never_meet(world: World) -> None:
    first, first_credentials = await world.journal("Первый")
    second, second_credentials = await world.journal("Второй")
    await world.journals.put_roster(first, roster())
    other = school()
    other["school"]["name"] = "Другая школа"
    await world.journals.put_roster(second, roster(other))
    one, two = await world.account("Один"), await world.account("Два")
    await world.link(first_credentials, "t1", one)
    await world.link(second_credentials, "t1", two)
    assert "Коллеги — Школа № 17" in await world.titles(one)
    assert "Коллеги — Другая школа" in await world.titles(two)
    assert not await world.titles(one) & {"Коллеги — Другая школа"}
    chat = await _chat_id(world, one, "Коллеги — Школа № 17")
    with pytest.raises(DomainError):  # the second journal cannot touch the first one's chat
        await world.journals.delete_chat(second, "t1", chat)
    listed = await world.journals.chats_of(second, "t1")
    assert chat not in {c["id"] for c in listed}


async def test_assertions_that_must_be_refused(world: World) -> None:
    journal, credentials = await world.journal()
    await world.journals.put_roster(journal, roster())
    now = world.now[0] // 1000
    bad = {
        "forged": world.assertion(
            credentials, "t1", key="a-forger-does-not-know-the-secret-0123456789"
        ),
        "expired": world.assertion(credentials, "t1", exp=now - 120),
        "too long": world.assertion(credentials, "t1", exp=now + 3600),
        "wrong audience": world.assertion(credentials, "t1", aud="someone-else"),
        "unknown journal": world.assertion(credentials, "t1", iss="j-unknown"),
        "foreign return_url": world.assertion(
            credentials, "t1", return_url="https://evil.example/steal"
        ),
        "unknown user": world.assertion(credentials, "nobody"),
        "garbage": "not.a.jwt",
    }
    for case, assertion in bad.items():
        with pytest.raises(LinkRefused):
            await world.linking.land(assertion, None, None)
            pytest.fail(case)
    account = await world.account("Учитель")
    assert (
        await world.store.journals.linked_account(
            (await world.store.journals.person(journal.id, "t1")).id  # type: ignore[union-attr]
        )
        is None
    )
    assert await world.titles(account) == set()


async def test_reloading_the_landing_works_and_only_confirming_consumes(world: World) -> None:
    journal, credentials = await world.journal()
    await world.journals.put_roster(journal, roster())
    assertion = world.assertion(credentials, "t1")
    first = await world.linking.land(assertion, None, None)
    second = await world.linking.land(assertion, None, None)  # a reload: still fine
    account = await world.account("Учитель")
    assert await world.linking.confirm(second, account) == "https://journal.example/done"
    with pytest.raises(DomainError) as replay:
        await world.linking.confirm(first, account)
    assert replay.value.code is ErrorCode.CONFLICT
    with pytest.raises(LinkRefused):
        await world.linking.land(assertion, None, None)  # consumed now


async def test_one_account_per_journal_and_one_profile_per_account(world: World) -> None:
    journal, credentials = await world.journal()
    await world.journals.put_roster(journal, roster())
    anna, boris = await world.account("Анна"), await world.account("Борис")
    await world.link(credentials, "t1", anna)
    with pytest.raises(DomainError):  # t1 is Anna's
        await world.link(credentials, "t1", boris)
    with pytest.raises(DomainError):  # Anna has t1 in this journal already
        await world.link(credentials, "t2", anna)
    [(linked_journal, person, linked_at)] = await world.linking.links(anna)
    assert (linked_journal.id, person.ext_id, linked_at) == (journal.id, "t1", world.now[0])
    await world.linking.unlink(anna, journal.id)
    assert await world.titles(anna) == set()
    await world.link(credentials, "t1", boris)
    assert "7А класс" in await world.titles(boris)


async def test_linking_started_in_parta_needs_its_state_back(world: World) -> None:
    journal, credentials = await world.journal()
    await world.journals.put_roster(journal, roster())
    url, state = await world.linking.start(journal.id, "https://parta.example/api/v1/link")
    assert url.startswith(LINK_URL + "?state=")
    assertion = world.assertion(credentials, "t1")
    with pytest.raises(LinkRefused):
        await world.linking.land(assertion, state, "another-state")
    with pytest.raises(LinkRefused):
        await world.linking.land(assertion, "forged.state", "forged.state")
    with pytest.raises(LinkRefused):  # a state came back, but this browser has no cookie
        await world.linking.land(assertion, state, None)
    assert await world.linking.land(assertion, state, state)
    # A linking someone gave up on leaves its cookie behind: the journal's own button
    # (no state comes back) still works in that browser.
    other = world.assertion(credentials, "t2")
    assert await world.linking.land(other, None, state)


async def test_system_chats_cannot_be_edited_by_hand(world: World) -> None:
    journal, credentials = await world.journal()
    await world.journals.put_roster(journal, roster())
    teacher, stranger = await world.account("Учитель"), await world.account("Чужой")
    await world.link(credentials, "t1", teacher)
    class_chat = await _chat_id(world, teacher, "7А класс")
    with pytest.raises(DomainError) as refused:
        await world.chats.add_member(teacher, class_chat, stranger, "member")
    assert refused.value.code is ErrorCode.FORBIDDEN
    with pytest.raises(DomainError):
        await world.journals.update_chat(journal, "t1", class_chat, JournalChatPatch(title="Новое"))


async def test_chats_made_from_the_journal(world: World) -> None:
    journal, credentials = await world.journal()
    await world.journals.put_roster(journal, roster())
    teacher, student, other = (
        await world.account("Учитель"),
        await world.account("Ученик"),
        await world.account("Учитель2"),
    )
    await world.link(credentials, "t1", teacher)
    await world.link(credentials, "s1", student)
    spec = msgspec.convert(
        {
            "kind": "subject",
            "school_id": "1",
            "subject_id": "math",
            "class_id": "7a",
            "members": [{"user_id": "s1"}, {"user_id": "s2"}, {"user_id": "t2", "admin": True}],
        },
        JournalChatIn,
    )
    with pytest.raises(DomainError) as not_teacher:
        await world.journals.create_chat(journal, "s1", spec)
    assert not_teacher.value.code is ErrorCode.FORBIDDEN
    chat_id = await world.journals.create_chat(journal, "t1", spec)
    assert "Математика 7А" in {c.title for c in await world.chats.chats(student) if c.id == chat_id}
    listed = {c["id"]: c for c in await world.journals.chats_of(journal, "s2")}
    assert listed[chat_id]["member_count"] == 4  # s2 is pending until linked
    await world.link(credentials, "t2", other)
    roles = {m.account_id: m.role for m in await world.chats.members(teacher, chat_id)}
    assert roles == {teacher: "owner", student: "member", other: "admin"}
    with pytest.raises(DomainError):  # a subject chat keeps its title
        await world.journals.update_chat(journal, "t1", chat_id, JournalChatPatch(title="X"))
    await world.journals.update_chat(
        journal,
        "t2",
        chat_id,
        JournalChatPatch(members=[]),  # t2 is an admin: allowed
    )
    assert {m.account_id for m in await world.chats.members(teacher, chat_id)} == {teacher}
    await world.journals.delete_chat(journal, "t1", chat_id)
    assert chat_id not in {c["id"] for c in await world.journals.chats_of(journal, "t1")}
    assert chat_id in {c.id for c in await world.chats.chats(teacher)}  # stays for its creator


async def test_schedule_is_validated_and_replaces_a_range(world: World) -> None:
    journal, _ = await world.journal()
    await world.journals.put_roster(journal, roster())

    def lesson(ext: str, group: str, teacher: str, start: str, end: str) -> dict[str, str]:
        return {
            "id": ext,
            "group_id": group,
            "teacher_id": teacher,
            "starts_at": start,
            "ends_at": end,
        }

    good = msgspec.convert(
        {
            "school_id": "1",
            "from": "2026-12-01",
            "to": "2026-12-05",
            "lessons": [
                lesson(
                    "l1",
                    "g-math-7a",
                    "t1",
                    "2026-12-01T09:00:00+03:00",
                    "2026-12-01T09:45:00+03:00",
                ),
                lesson(
                    "l2", "g-phys-7", "t2", "2026-12-01T09:00:00+03:00", "2026-12-01T09:45:00+03:00"
                ),
            ],
        },
        ScheduleIn,
    )
    assert await world.journals.put_schedule(journal, good) == {"removed": 0, "created": 2}
    assert await world.journals.put_schedule(journal, good) == {"removed": 2, "created": 2}
    bad = msgspec.convert(
        {
            "school_id": "1",
            "from": "2026-12-01",
            "to": "2026-12-05",
            "lessons": [
                lesson(
                    "b1",
                    "g-math-7a",
                    "t1",
                    "2026-12-02T10:00:00+03:00",
                    "2026-12-02T09:00:00+03:00",
                ),
                lesson(
                    "b2", "nope", "t1", "2026-12-02T11:00:00+03:00", "2026-12-02T11:45:00+03:00"
                ),
                lesson(
                    "b3",
                    "g-math-7a",
                    "s1",
                    "2026-12-02T12:00:00+03:00",
                    "2026-12-02T12:45:00+03:00",
                ),
                lesson(
                    "b4",
                    "g-math-7a",
                    "t1",
                    "2026-12-03T09:00:00+03:00",
                    "2026-12-03T10:00:00+03:00",
                ),
                lesson(
                    "b5",
                    "g-math-7a",
                    "t1",
                    "2026-12-03T09:30:00+03:00",
                    "2026-12-03T10:30:00+03:00",
                ),
                lesson(
                    "b6",
                    "g-math-7a",
                    "t1",
                    "2026-12-09T09:00:00+03:00",
                    "2026-12-09T09:45:00+03:00",
                ),
            ],
        },
        ScheduleIn,
    )
    with pytest.raises(DomainError) as refused:
        await world.journals.put_schedule(journal, bad)
    fields = {e.field for e in refused.value.errors}
    assert {
        "lessons[0].ends_at",
        "lessons[1].group_id",
        "lessons[2].teacher_id",
        "lessons[4]",
        "lessons[5].starts_at",
    } <= fields
