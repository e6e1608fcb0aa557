"""Chats and their log: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from server.store import Store
from server.store.accounts import Profile


async def people(store: Store, n: int) -> list[int]:
    return await store.accounts.create_accounts_with_profiles(
        [
            (f"+9990000{i:05d}", Profile(0, f"Фамилия{i}", "Имя", None, "2010-01-01", "male"))
            for i in range(n)
        ],
        [f"token-{i}" for i in range(n)],
        1,
    )


async def test_create_chat_logs_created_and_lists_for_members(store: Store) -> None:
    a, b, c = await people(store, 3)
    chat_id, created = await store.chats.create(
        "manual", "7Б", a, [(a, "owner"), (b, "member")], 10
    )
    assert (created.seq, created.kind, created.title, created.actor_id) == (1, "created", "7Б", a)
    [info] = await store.chats.chats_of(b)
    assert (info.id, info.title, info.role, info.member_count, info.last_seq) == (
        chat_id,
        "7Б",
        "member",
        2,
        1,
    )
    assert await store.chats.chats_of(c) == []
    assert await store.chats.role_of(chat_id, a) == "owner"
    assert await store.chats.role_of(chat_id, c) is None
    assert [m.account_id for m in await store.chats.members(chat_id)] == sorted([a, b])


async def test_posts_get_gap_free_sequence_numbers_under_concurrency(store: Store) -> None:
    a, b = await people(store, 2)
    chat_id, _ = await store.chats.create("manual", "x", a, [(a, "owner"), (b, "member")], 1)
    results = await asyncio.gather(
        *(store.chats.post(chat_id, (a, b)[i % 2], f"c{i}", f"m{i}", 2) for i in range(40))
    )
    seqs = sorted(event.seq for event, _ in results)
    assert seqs == list(range(2, 42))
    events = await store.chats.events_after(chat_id, 0, 100)
    assert [e.seq for e in events] == list(range(1, 42))


async def test_retry_with_the_same_client_id_returns_the_first(store: Store) -> None:
    (a,) = await people(store, 1)
    chat_id, _ = await store.chats.create("manual", "x", a, [(a, "owner")], 1)
    first, dup1 = await store.chats.post(chat_id, a, "same", "hello", 2)
    again, dup2 = await store.chats.post(chat_id, a, "same", "hello again", 3)
    assert (dup1, dup2) == (False, True)
    assert again == first
    assert [e.text for e in await store.chats.events_after(chat_id, 1, 10)] == ["hello"]


async def test_history_pages_backwards_and_resume_pages_forwards(store: Store) -> None:
    (a,) = await people(store, 1)
    chat_id, _ = await store.chats.create("manual", "x", a, [(a, "owner")], 1)
    for i in range(10):
        await store.chats.post(chat_id, a, f"c{i}", f"m{i}", 2)
    page, more = await store.chats.history(chat_id, None, 4)
    assert ([e.seq for e in page], more) == ([8, 9, 10, 11], True)
    page, more = await store.chats.history(chat_id, 8, 4)
    assert ([e.seq for e in page], more) == ([4, 5, 6, 7], True)
    page, more = await store.chats.history(chat_id, 4, 4)
    assert ([e.seq for e in page], more) == ([1, 2, 3], False)
    assert [e.seq for e in await store.chats.events_after(chat_id, 5, 3)] == [6, 7, 8]


async def test_adding_a_member_twice_logs_once(store: Store) -> None:
    a, b = await people(store, 2)
    chat_id, _ = await store.chats.create("manual", "x", a, [(a, "owner")], 1)
    event = await store.chats.add_member(chat_id, b, "admin", a, 5)
    assert event is not None and (event.kind, event.member_id, event.role) == (
        "member_added",
        b,
        "admin",
    )
    assert await store.chats.add_member(chat_id, b, "member", a, 6) is None
    assert await store.chats.role_of(chat_id, b) == "admin"
    assert await store.chats.chat_ids_of(b) == [chat_id]


@pytest.mark.parametrize("marker", [3, 100])
async def test_read_markers_count_unread_and_never_move_back(store: Store, marker: int) -> None:
    a, b = await people(store, 2)
    chat_id, _ = await store.chats.create("manual", "x", a, [(a, "owner"), (b, "member")], 1)
    for i in range(4):
        await store.chats.post(chat_id, a, f"c{i}", f"m{i}", 2)  # seqs 2..5
    await store.chats.post(chat_id, b, "own", "mine", 3)  # seq 6: b's own, never unread
    await store.chats.mark_read(chat_id, b, marker)
    info = await store.chats.chat_info(chat_id, b)
    assert info is not None
    if marker == 3:
        assert (info.read_seq, info.unread) == (3, 2)
        await store.chats.mark_read(chat_id, b, 2)  # backwards: ignored
        info = await store.chats.chat_info(chat_id, b)
        assert info is not None and info.read_seq == 3
    else:  # past the end of the log: ignored
        assert (info.read_seq, info.unread) == (0, 4)


async def test_the_chat_list_carries_each_chats_last_message_and_time(store: Store) -> None:
    a, b = await people(store, 2)
    chat_id, _ = await store.chats.create("manual", "x", a, [(a, "owner"), (b, "member")], 1)
    empty, _ = await store.chats.create("manual", "y", a, [(a, "owner")], 2)
    first, _ = await store.chats.post(chat_id, a, "c1", "Первое", 3)
    second, _ = await store.chats.post(chat_id, b, "c2", "Второе", 4)
    infos, last = await store.chats.chats_with_last(a)
    assert {i.id: i.last_at for i in infos} == {chat_id: 4, empty: 2}
    assert [(e.chat_id, e.text) for e in last] == [(chat_id, "Второе")]
    # A message deleted for everyone is no preview; the change still dates the chat.
    await store.messages.delete(chat_id, second.seq, b, 5)
    infos, last = await store.chats.chats_with_last(a)
    assert [e.seq for e in last] == [first.seq]
    assert {i.id: i.last_at for i in infos}[chat_id] == 5
    # After clearing one's history there is nothing to preview, for that person only.
    await store.messages.clear(chat_id, a)
    assert (await store.chats.chats_with_last(a))[1] == []
    assert [e.seq for e in (await store.chats.chats_with_last(b))[1]] == [first.seq]
