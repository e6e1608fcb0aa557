"""The authorisation matrix: every action, tried by every role in every sort of chat,
through the real services, on both databases. The expected table is written out here, on
its own, so that a change in the rules has to be a change in this table too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from protocol.messages import ChatPost, PollSpec
from server.domain.chats import ChatService
from server.domain.errors import DomainError
from server.domain.journals import JournalChatIn, JournalService
from server.domain.linking import LinkingService
from server.domain.members import MemberService
from server.domain.messages import MessageService
from server.store import Store
from server.store.accounts import Profile
from tests.domain.school import roster
from tests.domain.world import LINK_URL, Notifier, Recorder

ROLES = ("owner", "admin", "member", "outsider")
SORTS = ("manual", "closed", "direct", "system", "journal")
# One row per action; a column per sort of chat (in SORTS order); in each column one letter
# for the owner, the admin and a member: Y allowed, N refused. Outsiders may do nothing.
# Direct chats have only members; roster ("system") chats have no owner.
TABLE = """
post             YYY YYY YYY YYY YYY
edit_own         YYY YYY YYY YYY YYY
delete_own       YYY YYY YYY YYY YYY
delete_any       YYN YYN NNN YYN YYN
react            YYY YYY YYY YYY YYY
pin              YYN YYN YYY YYN YYN
vote             YYY YYY YYY YYY YYY
close_any_poll   YYN YYN NNN YYN YYN
add_member       YYY YYN NNN NNN NNN
invite           YYY YYN NNN NNN NNN
rename           YYY YYN NNN NNN NNN
set_closed       YYN YYN NNN NNN NNN
clear            YYY YYY YYY YYY YYY
mute             YYY YYY YYY YYY YYY
report           YYY YYY YYY YYY YYY
resolve_report   YYN YYN NNN YYN YYN
set_role         YYN YYN NNN NNN NNN
remove_member    YYN YYN NNN NNN NNN
leave            YYY YYY YYY NNN NNN
"""
EXPECTED = {
    action: {sort: tuple(c == "Y" for c in cells) for sort, cells in zip(SORTS, row, strict=True)}
    for action, *row in (line.split() for line in TABLE.strip().splitlines())
}
# In this order, so the actions that change membership come last.
ACTIONS = tuple(EXPECTED)


def expected(action: str, sort: str, role: str) -> bool:
    if role == "outsider":
        return False
    return EXPECTED[action][sort][("owner", "admin", "member").index(role)]


def applicable(sort: str, role: str) -> bool:
    return not (sort == "direct" and role in ("owner", "admin")) and not (
        sort == "system" and role == "owner"
    )


@dataclass
class Scene:
    store: Store
    chats: ChatService
    messages: MessageService
    members: MemberService
    chat_id: int
    actor: int
    other: int  # another plain member: author of what the actor acts on, target of removals
    newcomer: int  # someone with a profile who is in no chat
    counter: int = 0

    async def message(self, author: int, poll: bool = False) -> int:
        self.counter += 1
        request = ChatPost(
            chat_id=self.chat_id,
            client_id=f"c{author}-{self.counter}",
            text="текст",
            poll=PollSpec(question="Когда?", options=["Сегодня", "Завтра"]) if poll else None,
        )
        return (await self.messages.post(author, request))[0].seq


async def _accounts(store: Store, n: int) -> list[int]:
    return await store.accounts.create_accounts_with_profiles(
        [
            (f"+9991{i:06d}", Profile(0, f"Фамилия{i}", "Имя", None, "2010-01-01", "male"))
            for i in range(n)
        ],
        [f"t{i}" for i in range(n)],
        1,
    )


async def build(store: Store, sort: str, role: str) -> Scene:
    recorder = Recorder()
    clock = lambda: 1_800_000_000_000  # noqa: E731
    notifier = Notifier(recorder)
    chats = ChatService(store, notifier, clock)
    messages = MessageService(store, notifier, clock, edit_window_s=3600)
    members = MemberService(store, chats, messages, clock)
    owner, admin, member, other, outsider, newcomer = await _accounts(store, 6)
    actor = {"owner": owner, "admin": admin, "member": member, "outsider": outsider}[role]
    if sort in ("manual", "closed"):
        chat_id = (await chats.create(owner, "Кружок", [member, other])).id
        await chats.add_member(owner, chat_id, admin, "admin")
        if sort == "closed":
            await members.settings(owner, chat_id, None, True)
    elif sort == "direct":
        shared = (await chats.create(outsider, "Общий", [member, other])).id
        chat_id = (await members.direct(member, other)).id
        assert shared
    else:
        journals = JournalService(store, chats, clock)
        linking = LinkingService(store, chats, b"k" * 32, clock)
        credentials = await journals.add("77", "Москва", "Журнал", LINK_URL, None)
        journal = await journals.authenticate(credentials.api_token)
        await journals.put_roster(journal, roster())
        links = {"t1": admin, "s1": member, "s2": other}
        if sort == "journal":
            links = {"t1": owner, "t2": admin, "s1": member, "s2": other}
        for sub, account in links.items():
            import jwt

            assertion = jwt.encode(
                {"iss": journal.id, "sub": sub, "aud": "parta", "exp": 1_800_000_300,
                 "jti": f"{sub}-{account}", "return_url": "https://journal.example/x"},
                credentials.signing_secret,
                algorithm="HS256",
            )  # fmt: skip
            await linking.confirm(await linking.land(assertion, None, None), account)
        if sort == "system":
            chat_id = next(c.id for c in await chats.chats(admin) if c.title == "7А класс")
        else:
            chosen = [{"user_id": "t2", "admin": True}, {"user_id": "s1"}, {"user_id": "s2"}]
            spec = msgspec.convert(
                {"kind": "custom", "school_id": "1", "title": "Проект", "members": chosen},
                JournalChatIn,
            )
            chat_id = await journals.create_chat(journal, "t1", spec)
    return Scene(store, chats, messages, members, chat_id, actor, other, newcomer)


async def act(scene: Scene, action: str) -> None:
    m, ms, chat, actor = scene.messages, scene.members, scene.chat_id, scene.actor
    author = actor if action in ("edit_own", "delete_own") else scene.other
    needs_message = action in ("edit_own", "delete_own", "delete_any", "react", "pin", "report")
    seq = await scene.message(author) if needs_message else 0
    poll = (
        await scene.message(scene.other, poll=True) if action in ("vote", "close_any_poll") else 0
    )
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "post": lambda: m.post(actor, ChatPost(chat_id=chat, client_id=f"p{actor}", text="привет")),
        "edit_own": lambda: m.edit(actor, chat, seq, "исправлено"),
        "delete_own": lambda: m.delete(actor, chat, seq),
        "delete_any": lambda: m.delete(actor, chat, seq),
        "react": lambda: m.react(actor, chat, seq, "👍", True),
        "pin": lambda: m.pin(actor, chat, seq, True),
        "vote": lambda: m.vote(actor, chat, poll, [1]),
        "close_any_poll": lambda: m.close_poll(actor, chat, poll),
        "add_member": lambda: scene.chats.add_member(actor, chat, scene.newcomer, "member"),
        "invite": lambda: ms.create_invite(actor, chat, 3600),
        "rename": lambda: ms.settings(actor, chat, "Новое имя", None),
        "set_closed": lambda: ms.settings(actor, chat, None, True),
        "clear": lambda: ms.clear(actor, chat),
        "mute": lambda: ms.mute(actor, chat, True),
        "report": lambda: ms.report(actor, chat, seq, "грубость"),
        "resolve_report": lambda: _resolve(scene),
        "set_role": lambda: ms.set_role(actor, chat, scene.other, "admin"),
        "remove_member": lambda: ms.remove(actor, chat, scene.other),
        "leave": lambda: ms.leave(actor, chat),
    }
    await calls[action]()


async def _resolve(scene: Scene) -> None:
    seq = await scene.message(scene.other)
    await scene.members.report(scene.other, scene.chat_id, seq, "спам")
    await scene.members.resolve(scene.actor, await _last_report(scene), "dismiss", 60)


async def _last_report(scene: Scene) -> int:
    """The report just made (the actor may not be allowed to list it: that is the point)."""
    async with scene.store.db.read("report_id") as reader:
        found: int = await reader.fetchval("SELECT max(id) FROM reports")
    return found


CASES = [(s, r) for s in SORTS for r in ROLES if applicable(s, r)]


@pytest.mark.parametrize(("sort", "role"), CASES, ids=[f"{s}-{r}" for s, r in CASES])
async def test_every_action_for_every_role_and_sort(store: Store, sort: str, role: str) -> None:
    scene = await build(store, sort, role)
    wrong = []
    for action in ACTIONS:
        try:
            await act(scene, action)
        except DomainError as refused:
            if expected(action, sort, role):
                wrong.append(f"{action}: refused ({refused.code}: {refused.message})")
        else:
            if not expected(action, sort, role):
                wrong.append(f"{action}: allowed")
    assert not wrong, f"{sort}/{role}: " + "; ".join(wrong)
