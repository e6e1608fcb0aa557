"""A world of services over one store, with a clock the test moves: for domain tests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest

from protocol.messages import ChatInfo, Event
from server.domain.chats import ChatService
from server.domain.journals import Credentials, JournalService
from server.domain.linking import LinkingService
from server.domain.messages import MessageService
from server.store import Store
from server.store.accounts import Profile
from server.store.journals import Journal

LINK_URL = "https://journal.example/link"


@dataclass
class Recorder:
    events: list[Event] = field(default_factory=list)
    joined: list[tuple[int, ChatInfo]] = field(default_factory=list)
    left: list[tuple[int, int]] = field(default_factory=list)


class Notifier:
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    def chat_event(self, event: Event) -> None:
        self.r.events.append(event)

    def joined(self, account_id: int, chat: ChatInfo) -> None:
        self.r.joined.append((account_id, chat))

    def left(self, account_id: int, chat_id: int) -> None:
        self.r.left.append((account_id, chat_id))

    def signal(self, chat_id: int, push_type: str, body: object) -> None:
        pass


@dataclass
class World:
    store: Store
    chats: ChatService
    journals: JournalService
    linking: LinkingService
    messages: MessageService
    recorder: Recorder
    now: list[int]

    async def journal(self, name: str = "Журнал") -> tuple[Journal, Credentials]:
        credentials = await self.journals.add("77", "Москва", name, LINK_URL, None)
        journal = await self.journals.authenticate(credentials.api_token)
        return journal, credentials

    async def account(self, name: str) -> int:
        [account_id] = await self.store.accounts.create_accounts_with_profiles(
            [
                (
                    f"+7999{abs(hash(name)) % 10**7:07d}",
                    Profile(0, name, "Тест", None, "2010-01-01", "male"),
                )
            ],
            [f"token-{name}"],
            1,
        )
        return account_id

    def assertion(self, credentials: Credentials, sub: str, **claims: Any) -> str:
        key = claims.pop("key", credentials.signing_secret)
        now = self.now[0] // 1000
        payload = {
            "iss": credentials.journal_id,
            "sub": sub,
            "aud": "parta",
            "exp": now + 300,
            "jti": f"jti-{sub}-{time.monotonic_ns()}",
            "return_url": "https://journal.example/done",
        } | claims
        return jwt.encode(payload, key, algorithm="HS256")

    async def link(self, credentials: Credentials, sub: str, account_id: int) -> None:
        pending = await self.linking.land(self.assertion(credentials, sub), None, None)
        await self.linking.confirm(pending, account_id)

    async def titles(self, account_id: int) -> set[str]:
        return {c.title for c in await self.chats.chats(account_id)}


@pytest.fixture
def world(store: Store) -> World:
    recorder = Recorder()
    now = [1_800_000_000_000]
    clock = lambda: now[0]  # noqa: E731
    chats = ChatService(store, Notifier(recorder), clock)
    return World(
        store,
        chats,
        JournalService(store, chats, clock),
        LinkingService(store, chats, b"s" * 32, clock),
        MessageService(store, Notifier(recorder), clock, edit_window_s=3600),
        recorder,
        now,
    )
