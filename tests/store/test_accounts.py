"""Accounts, codes, sessions and profiles: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from server.store import Store
from server.store.accounts import Profile, SignInCode

DAY = 86_400_000


def code(phone: str, code_hash: str = "h1", now: int = 1_000) -> SignInCode:
    return SignInCode(phone, code_hash, now + 300_000, 0, now, now, 1)


async def test_codes_are_replaced_and_attempts_are_bounded(store: Store) -> None:
    await store.accounts.put_code(code("+79990000001", "first"))
    await store.accounts.put_code(code("+79990000001", "second"))
    stored = await store.accounts.get_code("+79990000001")
    assert stored is not None and stored.code_hash == "second"
    taken = [await store.accounts.take_attempt("+79990000001", 3) for _ in range(4)]
    assert taken[:3] == [("second", 301_000)] * 3
    assert taken[3] is None
    assert await store.accounts.take_attempt("+79990000002", 3) is None


async def test_sign_in_consumes_the_code_once_and_creates_the_account_once(store: Store) -> None:
    phone = "+79990000003"
    await store.accounts.put_code(code(phone, "abc"))
    first, second = await asyncio.gather(
        store.accounts.sign_in(phone, "abc", "token-1", 2_000),
        store.accounts.sign_in(phone, "abc", "token-2", 2_000),
    )
    assert [first is None, second is None].count(True) == 1  # only one wins the code
    winner = first or second
    assert winner is not None and winner[1] is False
    await store.accounts.put_code(code(phone, "def"))
    again = await store.accounts.sign_in(phone, "def", "token-3", 3_000)
    assert again is not None and again[0] == winner[0]  # same phone, same account
    assert await store.accounts.sign_in(phone, "def", "token-4", 4_000) is None  # used
    expired = code(phone, "ghi")
    await store.accounts.put_code(expired)
    assert await store.accounts.sign_in(phone, "ghi", "token-5", expired.expires_at) is None


async def test_sessions_expire_when_idle_and_end_one_or_all(store: Store) -> None:
    await store.accounts.put_code(code("+79990000004", "x"))
    signed = await store.accounts.sign_in("+79990000004", "x", "t1", 10_000)
    assert signed is not None
    account_id = signed[0]
    await store.accounts.create_session(account_id, "t2", 10_000)
    await store.accounts.create_session(account_id, "t3", 10_000)
    assert await store.accounts.session("t1", 10_000 + DAY, 2 * DAY) == (account_id, False)
    # Used a day later, so still alive two days after its creation.
    assert await store.accounts.session("t1", 10_000 + 2 * DAY + 1, 2 * DAY) is not None
    assert await store.accounts.session("t2", 10_000 + 2 * DAY + 1, 2 * DAY) is None
    assert await store.accounts.session("t2", 0, 2 * DAY) is None  # it was ended
    await store.accounts.end_session("t1")
    assert await store.accounts.session("t1", 10_000, DAY) is None
    assert await store.accounts.end_all_sessions(account_id) == 1
    assert await store.accounts.session("t3", 10_000, DAY) is None


async def test_a_profile_is_created_once_and_reported_with_the_session(store: Store) -> None:
    await store.accounts.put_code(code("+79990000005", "x"))
    signed = await store.accounts.sign_in("+79990000005", "x", "t", 1)
    assert signed is not None
    account_id = signed[0]
    profile = Profile(account_id, "Кузнецова", "Анна", None, "2011-02-03", "female")
    assert await store.accounts.create_profile(profile, 5)
    assert not await store.accounts.create_profile(profile, 6)
    assert await store.accounts.get_profile(account_id) == profile
    assert await store.accounts.session("t", 2, DAY) == (account_id, True)
    assert await store.accounts.with_profiles([account_id, account_id + 100]) == {account_id}


async def test_bulk_load_test_accounts(store: Store) -> None:
    people = [
        (f"+99900000000{i}", Profile(0, f"Тест{i}", "Т", None, "2000-01-01", "male"))
        for i in range(3)
    ]
    ids = await store.accounts.create_accounts_with_profiles(people, ["a", "b", "c"], 1)
    assert len(set(ids)) == 3
    assert await store.accounts.session("b", 2, DAY) == (ids[1], True)
