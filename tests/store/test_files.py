"""Attachments' metadata: the same round trip on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest

from server.store import IntegrityError, Store
from server.store.accounts import Profile
from server.store.files import FileRecord

SHA = "ab" * 32


async def chat_with_member(store: Store) -> tuple[int, int]:
    [account] = await store.accounts.create_accounts_with_profiles(
        [("+79990000001", Profile(0, "Иванова", "Мария", None, "2010-05-17", "female"))],
        ["token-1"],
        1,
    )
    chat_id, _ = await store.chats.create("manual", "7А", account, [(account, "owner")], 10)
    return chat_id, account


async def test_metadata_round_trip(store: Store) -> None:
    chat_id, account = await chat_with_member(store)
    voice = FileRecord(
        id=0,
        chat_id=chat_id,
        uploader_id=account,
        sha256=SHA,
        size=12_345,
        mime="audio/ogg",
        kind="voice",
        name="Голосовое 😀.ogg",
        created_at=1_795_000_000_123,
        duration_ms=4_006,
        waveform=(0, 12, 255, 128),
    )
    stored = await store.files.insert(voice)
    assert stored.id > 0
    assert stored == dataclasses.replace(voice, id=stored.id)
    assert await store.files.get(stored.id) == stored

    photo = dataclasses.replace(
        voice,
        sha256="cd" * 32,
        mime="image/jpeg",
        kind="photo",
        name="фото.jpg",
        duration_ms=None,
        waveform=None,
        width=4000,
        height=3000,
        thumb_sha256="ef" * 32,
        thumb_mime="image/jpeg",
    )
    again = await store.files.insert(photo)
    assert again.id != stored.id
    assert await store.files.get(again.id) == dataclasses.replace(photo, id=again.id)
    # Large files: sizes past 2 GiB fit.
    big = await store.files.insert(dataclasses.replace(voice, size=5 << 30))
    fetched = await store.files.get(big.id)
    assert fetched is not None and fetched.size == 5 << 30


async def test_same_content_twice_is_two_files(store: Store) -> None:
    chat_id, account = await chat_with_member(store)
    record = FileRecord(0, chat_id, account, SHA, 3, "text/plain", "document", "a.txt", 1)
    first = await store.files.insert(record)
    second = await store.files.insert(dataclasses.replace(record, name="b.txt"))
    assert first.id != second.id and first.sha256 == second.sha256


async def test_missing_and_deleted(store: Store) -> None:
    chat_id, account = await chat_with_member(store)
    assert await store.files.get(12345) is None
    stored = await store.files.insert(
        FileRecord(0, chat_id, account, SHA, 3, "text/plain", "document", "a.txt", 1)
    )
    assert await store.files.delete(stored.id)
    assert await store.files.get(stored.id) is None
    assert not await store.files.delete(stored.id)


async def test_a_file_belongs_to_an_existing_chat(store: Store) -> None:
    _, account = await chat_with_member(store)
    with pytest.raises(IntegrityError):
        await store.files.insert(
            FileRecord(0, 999_999, account, SHA, 3, "text/plain", "document", "a.txt", 1)
        )
