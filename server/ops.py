"""Operator commands that work on the store directly (never reachable over HTTP)."""

from __future__ import annotations

import argparse
import secrets
from typing import Any

from protocol.messages import ChatInfo, Event, Role
from server.config import Settings
from server.domain.chats import ChatService
from server.domain.clock import system_clock
from server.domain.journals import JournalService
from server.security import hash_token, new_token
from server.store import open_database, open_store
from server.store.accounts import Profile
from server.store.migrate import migrate


async def migrate_command(settings: Settings) -> list[int]:
    db = await open_database(settings.db, settings.data_dir)
    try:
        return await migrate(db)
    finally:
        await db.close()


async def journal_command(settings: Settings, args: argparse.Namespace) -> dict[str, str]:
    """``parta journals add|rotate``: credentials to hand to the journal's operators."""
    store = await open_store(settings.db, settings.data_dir)
    try:
        journals = JournalService(
            store, ChatService(store, SilentNotifier(), system_clock), system_clock
        )
        if args.journal_command == "add":
            credentials = await journals.add(
                args.region_code, args.region_name, args.name, args.link_url, args.webhook_url
            )
        else:
            credentials = await journals.rotate(args.journal_id)
    finally:
        await store.close()
    return {
        "journal_id": credentials.journal_id,
        "api_token": credentials.api_token,
        "signing_secret": credentials.signing_secret,
    }


class SilentNotifier:
    """Operator commands run without connections: there is nobody to tell."""

    def chat_event(self, event: Event) -> None:
        pass

    def joined(self, account_id: int, chat: ChatInfo) -> None:
        pass

    def left(self, account_id: int, chat_id: int) -> None:
        pass


async def loadtest_users(settings: Settings, count: int, chats: int) -> dict[str, Any]:
    """N synthetic people (phones under +999, no real country) with a session each."""
    store = await open_store(settings.db, settings.data_dir)
    try:
        now = system_clock()
        batch = secrets.randbelow(10**6)
        people = [
            (
                f"+999{batch:06d}{i:06d}",
                Profile(0, f"Нагрузка{i}", "Тест", None, "2000-01-01", "female"),
            )
            for i in range(count)
        ]
        tokens = [new_token() for _ in range(count)]
        ids = await store.accounts.create_accounts_with_profiles(
            people, [hash_token(t) for t in tokens], now
        )
        made = []
        for c in range(chats):
            member_ids = ids[c::chats]
            if not member_ids:
                continue
            members: list[tuple[int, Role]] = [(member_ids[0], "owner")]
            members += [(a, "member") for a in member_ids[1:]]
            chat_id, _ = await store.chats.create(
                "manual", f"Нагрузка {c + 1}", member_ids[0], members, now
            )
            made.append({"chat_id": chat_id, "member_ids": member_ids})
        return {
            "users": [
                {"account_id": a, "token": t, "phone": p[0]}
                for a, t, p in zip(ids, tokens, people, strict=True)
            ],
            "chats": made,
        }
    finally:
        await store.close()
