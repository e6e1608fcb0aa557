"""The messenger's rules on both databases: message life, polls, invites, direct chats and
safety, moderation, and everything travelling on the chat's one sequence."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from protocol.errors import ErrorCode
from protocol.messages import ChatPost, Event, PollSpec
from server.domain.chats import ChatService
from server.domain.errors import DomainError
from server.domain.members import MemberService
from server.domain.messages import MessageService
from server.store import Store
from server.store.accounts import Profile
from tests.domain.world import Notifier, Recorder


@dataclass
class Messenger:
    store: Store
    chats: ChatService
    messages: MessageService
    members: MemberService
    recorder: Recorder
    now: list[int]
    posted: int = 0

    async def people(self, *names: str) -> list[int]:
        return await self.store.accounts.create_accounts_with_profiles(
            [
                (
                    f"+9992{abs(hash(n)) % 10**6:06d}",
                    Profile(0, n, "Тест", None, "2010-01-01", "male"),
                )
                for n in names
            ],
            [f"tok-{n}" for n in names],
            1,
        )

    async def post(self, actor: int, chat_id: int, text: str = "текст", **extra: object) -> Event:
        self.posted += 1
        request = ChatPost(chat_id=chat_id, client_id=f"c{self.posted}", text=text, **extra)  # type: ignore[arg-type]
        return (await self.messages.post(actor, request))[0]

    async def shown(self, actor: int, chat_id: int) -> list[Event]:
        events, _ = await self.chats.history(actor, chat_id, None, 200)
        return [e for e in events if e.kind == "message"]


@pytest.fixture
def app(store: Store) -> Messenger:
    recorder = Recorder()
    now = [1_800_000_000_000]
    clock = lambda: now[0]  # noqa: E731
    notifier = Notifier(recorder)
    chats = ChatService(store, notifier, clock)
    messages = MessageService(store, notifier, clock, edit_window_s=600)
    return Messenger(
        store, chats, messages, MemberService(store, chats, messages, clock), recorder, now
    )


async def expect(code: ErrorCode, awaitable: object) -> None:
    with pytest.raises(DomainError) as refused:
        await awaitable  # type: ignore[misc]
    assert refused.value.code is code, refused.value.message


async def test_reply_edit_delete_react_pin_and_mentions(app: Messenger) -> None:
    anna, boris, chat_outsider = await app.people("Анна", "Борис", "Посторонний")
    chat = (await app.chats.create(anna, "Класс", [boris])).id
    first = await app.post(anna, chat, "Завтра контрольная")
    reply = await app.post(
        boris, chat, "@Анна по какой теме?", reply_to=first.seq, mentions=[anna, chat_outsider]
    )
    assert reply.reply_to == first.seq and reply.mentions == [anna]  # only members are mentioned
    await app.messages.edit(anna, chat, first.seq, "Завтра самостоятельная")
    await expect(ErrorCode.FORBIDDEN, app.messages.edit(boris, chat, first.seq, "взлом"))
    app.now[0] += 601_000
    await expect(ErrorCode.FORBIDDEN, app.messages.edit(anna, chat, first.seq, "поздно"))
    await app.messages.react(boris, chat, first.seq, "👍", True)
    app.now[0] += 1
    await app.messages.react(anna, chat, first.seq, "👍", True)
    await app.messages.react(anna, chat, first.seq, "👍", True)  # twice: one reaction
    await app.messages.pin(anna, chat, first.seq, True)
    shown = await app.shown(boris, chat)
    assert shown[0].text == "Завтра самостоятельная" and shown[0].edited_at
    assert shown[0].reactions and shown[0].reactions[0].accounts == [boris, anna]
    assert shown[0].pinned
    await app.messages.delete(boris, chat, reply.seq)  # his own
    await expect(ErrorCode.FORBIDDEN, app.messages.delete(boris, chat, first.seq))
    shown = await app.shown(anna, chat)
    assert shown[1].deleted and shown[1].text is None
    await expect(ErrorCode.VALIDATION_FAILED, app.post(anna, chat, "   "))


async def test_polls_single_multiple_anonymous_and_closing(app: Messenger) -> None:
    anna, boris, vera = await app.people("Анна", "Борис", "Вера")
    chat = (await app.chats.create(anna, "Класс", [boris, vera])).id
    single = await app.post(anna, chat, "", poll=PollSpec(question="Когда?", options=["Пн", "Вт"]))
    await app.messages.vote(boris, chat, single.seq, [1])
    await expect(ErrorCode.VALIDATION_FAILED, app.messages.vote(vera, chat, single.seq, [0, 1]))
    await expect(ErrorCode.VALIDATION_FAILED, app.messages.vote(vera, chat, single.seq, [5]))
    await app.messages.vote(vera, chat, single.seq, [1])
    await app.messages.vote(boris, chat, single.seq, [0])  # changed his mind
    last = app.recorder.events[-1]
    assert last.kind == "poll_vote" and last.poll is not None
    assert last.poll.votes == [1, 1] and last.poll.voters == [[boris], [vera]]
    secret = await app.post(
        anna,
        chat,
        "",
        poll=PollSpec(
            question="Анонимно", options=["Да", "Нет", "Не знаю"], multiple=True, anonymous=True
        ),
    )
    await app.messages.vote(boris, chat, secret.seq, [0, 2])
    vote = app.recorder.events[-1]
    assert vote.actor_id == 0 and vote.poll is not None and vote.poll.voters is None
    assert vote.poll.votes == [1, 0, 1]
    await expect(ErrorCode.FORBIDDEN, app.messages.close_poll(boris, chat, single.seq))
    await app.messages.close_poll(anna, chat, single.seq)
    await expect(ErrorCode.CONFLICT, app.messages.vote(vera, chat, single.seq, [0]))
    [shown_single, shown_secret] = await app.shown(vera, chat)
    assert (
        shown_single.poll is not None
        and shown_single.poll.closed
        and shown_single.poll.votes == [1, 1]
    )
    assert shown_secret.poll is not None and shown_secret.poll.voters is None


async def test_invites_expire_and_can_be_revoked_and_closed_chats_limit_them(
    app: Messenger,
) -> None:
    anna, boris, vera, gleb = await app.people("Анна", "Борис", "Вера", "Глеб")
    chat = (await app.chats.create(anna, "Кружок", [boris])).id
    invite = await app.members.create_invite(boris, chat, 3600)  # open chat: members invite
    assert invite.token
    # Where it leads, before joining: the title and how many are there.
    assert await app.members.preview(invite.token) == ("Кружок", 2)
    await expect(ErrorCode.NOT_FOUND, app.members.preview("no-such-token"))
    joined = await app.members.join(vera, invite.token)
    assert joined.id == chat and joined.role == "member"
    await app.members.settings(anna, chat, None, True)  # now closed
    await expect(ErrorCode.FORBIDDEN, app.members.create_invite(boris, chat, 3600))
    second = await app.members.create_invite(anna, chat, 3600)
    await app.members.revoke_invite(anna, chat, second.id)
    assert second.token
    await expect(ErrorCode.NOT_FOUND, app.members.join(gleb, second.token))
    await expect(ErrorCode.NOT_FOUND, app.members.preview(second.token))
    third = await app.members.create_invite(anna, chat, 60)
    app.now[0] += 61_000
    assert third.token
    await expect(ErrorCode.NOT_FOUND, app.members.join(gleb, third.token))
    listed = {i.id: i for i in await app.members.invites(anna, chat)}
    assert listed[invite.id].uses == 1 and listed[second.id].revoked
    assert all(i.token is None for i in listed.values())  # secrets are shown once


async def test_direct_chats_only_between_people_who_share_a_chat_and_blocks(app: Messenger) -> None:
    teacher, student, stranger = await app.people("Учитель", "Ученик", "Незнакомец")
    await app.chats.create(teacher, "Класс", [student])
    await expect(ErrorCode.FORBIDDEN, app.members.direct(stranger, student))
    direct = await app.members.direct(student, teacher)
    again = await app.members.direct(teacher, student)
    assert direct.id == again.id and direct.kind == "direct" and direct.peer_id == teacher
    await app.post(student, direct.id, "Здравствуйте")
    await app.members.block(teacher, student, True)
    await expect(ErrorCode.FORBIDDEN, app.post(student, direct.id, "Ответьте"))
    await expect(ErrorCode.FORBIDDEN, app.members.direct(student, teacher))
    await app.members.block(teacher, student, False)
    await app.post(student, direct.id, "Спасибо")


async def test_reports_reach_admins_who_act_on_them(app: Messenger) -> None:
    anna, boris, vera = await app.people("Анна", "Борис", "Вера")
    chat = (await app.chats.create(anna, "Класс", [boris, vera])).id
    rude = await app.post(boris, chat, "грубость")
    await app.members.report(vera, chat, rude.seq, "оскорбление")
    assert await app.members.reports(vera, None) == []  # not an admin
    [report] = await app.members.reports(anna, None)
    assert report.message is not None and report.message.text == "грубость"
    await expect(ErrorCode.FORBIDDEN, app.members.resolve(vera, report.id, "dismiss", 60))
    await app.members.resolve(anna, report.id, "silence_member", 30)
    await expect(ErrorCode.FORBIDDEN, app.post(boris, chat, "ещё"))
    app.now[0] += 31 * 60_000
    second = await app.post(boris, chat, "снова грубость")
    await app.members.report(vera, chat, second.seq, "опять")
    [report] = await app.members.reports(anna, chat)
    await app.members.resolve(anna, report.id, "remove_message", 0)
    assert (await app.shown(anna, chat))[-1].deleted
    third = await app.post(boris, chat, "и ещё")
    await app.members.report(vera, chat, third.seq, "хватит")
    [report] = await app.members.reports(anna, chat)
    await app.members.resolve(anna, report.id, "remove_member", 0)
    await expect(ErrorCode.NOT_MEMBER, app.post(boris, chat, "?"))


async def test_clear_history_for_oneself_mute_and_leaving(app: Messenger) -> None:
    anna, boris = await app.people("Анна", "Борис")
    chat = (await app.chats.create(anna, "Класс", [boris])).id
    await app.post(anna, chat, "старое")
    await app.members.clear(boris, chat)
    assert await app.shown(boris, chat) == []
    assert [e.text for e in await app.shown(anna, chat)] == ["старое"]  # others keep theirs
    await app.post(anna, chat, "новое")
    assert [e.text for e in await app.shown(boris, chat)] == ["новое"]
    assert [
        e.text for e in await app.chats.events_after(boris, chat, 0) if e.kind == "message"
    ] == ["новое"]
    await app.members.mute(boris, chat, True)
    assert (await app.chats.chat_info(boris, chat)).muted
    await app.members.leave(boris, chat)
    assert (boris, chat) in app.recorder.left


async def test_every_change_travels_on_the_chat_sequence(app: Messenger) -> None:
    anna, boris, vera = await app.people("Анна", "Борис", "Вера")
    chat = (await app.chats.create(anna, "Класс", [boris])).id
    message = await app.post(anna, chat, "один")
    await app.messages.edit(anna, chat, message.seq, "один!")
    await app.messages.react(boris, chat, message.seq, "🔥", True)
    await app.messages.pin(anna, chat, message.seq, True)
    await app.chats.add_member(anna, chat, vera, "member")
    await app.members.set_role(anna, chat, vera, "admin")
    poll = await app.post(boris, chat, "", poll=PollSpec(question="?", options=["а", "б"]))
    await app.messages.vote(vera, chat, poll.seq, [0])
    await app.messages.delete(anna, chat, message.seq)
    log = await app.chats.events_after(boris, chat, 0)
    assert [e.seq for e in log] == list(range(1, len(log) + 1))  # gap-free
    assert [e.kind for e in log] == [
        "created", "message", "edited", "reaction_added", "pinned", "member_added",
        "role_changed", "message", "poll_vote", "deleted",
    ]  # fmt: skip
    assert [e.seq for e in app.recorder.events if e.chat_id == chat] == [e.seq for e in log]


async def test_search_finds_word_forms_in_ones_own_chats_only(app: Messenger) -> None:
    anna, boris, vera = await app.people("Анна", "Борис", "Вера")
    ours = (await app.chats.create(anna, "Класс", [boris])).id
    theirs = (await app.chats.create(vera, "Чужой", [])).id
    await app.post(anna, ours, "Завтра контрольная по математике")
    lesson = await app.post(boris, ours, "Уроки отменили из-за карантина")
    await app.post(vera, theirs, "Контрольную перенесли")
    found = await app.messages.search(boris, "контрольной", None, 10)
    assert [e.text for e in found] == ["Завтра контрольная по математике"]
    assert [e.seq for e in await app.messages.search(anna, "урок", ours, 10)] == [lesson.seq]
    await app.messages.edit(boris, ours, lesson.seq, "Занятия отменили")
    assert await app.messages.search(anna, "урок", None, 10) == []
    assert len(await app.messages.search(anna, "занятие", None, 10)) == 1
    await app.messages.delete(boris, ours, lesson.seq)
    assert await app.messages.search(anna, "занятие", None, 10) == []
    await expect(ErrorCode.NOT_MEMBER, app.messages.search(anna, "контрольная", theirs, 10))
