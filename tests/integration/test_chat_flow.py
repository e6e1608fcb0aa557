"""Two people exchange messages through a real server; a dropped socket resumes gap-free."""

from __future__ import annotations

import asyncio

import pytest

from protocol.client import Client, ClientError
from tests.integration.conftest import RunningServer


async def test_a_posts_b_receives_in_real_time(
    server: RunningServer, clients: list[Client]
) -> None:
    alice = await server.sign_in("Смирнова", "Алиса")
    bob = await server.sign_in("Петров", "Борис", sex="male")
    clients += [alice, bob]
    await alice.connect()
    await bob.connect()
    assert bob.account_id is not None
    chat = await alice.create_chat("7А класс", [bob.account_id])
    joined = await bob.next_event(5)
    assert (joined.chat_id, joined.kind) == (chat.id, "created")

    posted = await alice.post(chat.id, "Привет, Борис!")
    got = await bob.next_event(5)
    assert (got.kind, got.text, got.seq, got.actor_id) == (
        "message",
        "Привет, Борис!",
        posted.seq,
        alice.account_id,
    )
    # Who is in the chat, with what the web client needs to word "закрепила" or "закрепил".
    names = {m.account_id: (m.last_name, m.sex) for m in await bob.members(chat.id)}
    assert names == {alice.account_id: ("Смирнова", "female"), bob.account_id: ("Петров", "male")}


async def test_dropped_socket_gets_every_missed_message_once_in_order(
    server: RunningServer, clients: list[Client]
) -> None:
    alice = await server.sign_in()
    bob = await server.sign_in()
    clients += [alice, bob]
    await alice.connect()
    await bob.connect()
    assert bob.account_id is not None
    chat = await alice.create_chat("Кружок", [bob.account_id])
    await bob.next_event(5)
    received: list[str] = []
    bob.on_event = lambda e: received.append(e.text or "") if e.kind == "message" else None

    async def keep_posting() -> None:
        for i in range(60):
            await alice.post(chat.id, f"m{i}")
            if i == 20:
                bob.drop()  # the network fails mid-stream
            await asyncio.sleep(0.002)

    await keep_posting()
    assert not bob.connected
    assert len(received) <= 21, "messages after the drop must come from the resume"
    await bob.connect()  # resumes from the last seq it saw
    for _ in range(100):
        if len(received) >= 60:
            break
        await asyncio.sleep(0.05)
    assert received == [f"m{i}" for i in range(60)]


async def test_retried_post_is_stored_once(server: RunningServer, clients: list[Client]) -> None:
    alice = await server.sign_in()
    clients.append(alice)
    await alice.connect()
    chat = await alice.create_chat("Заметки")
    first = await alice.post(chat.id, "один раз", client_id="fixed-id-1")
    again = await alice.post(chat.id, "один раз", client_id="fixed-id-1")
    assert again.duplicate and again.seq == first.seq
    history = await alice.history(chat.id)
    assert [e.text for e in history.events if e.kind == "message"] == ["один раз"]


async def test_non_member_cannot_read_or_post(server: RunningServer, clients: list[Client]) -> None:
    alice = await server.sign_in()
    mallory = await server.sign_in()
    clients += [alice, mallory]
    await alice.connect()
    await mallory.connect()
    chat = await alice.create_chat("Закрытый")
    with pytest.raises(ClientError) as post_error:
        await mallory.post(chat.id, "я тоже тут", retry=False)
    assert post_error.value.code == "not_member"
    with pytest.raises(ClientError) as read_error:
        await mallory.history(chat.id)
    assert read_error.value.code == "not_member"
