"""Accounts, educational profiles, sign-in codes and sessions."""

from __future__ import annotations

from dataclasses import dataclass

from server.store.engine import Database, Row


@dataclass(frozen=True, slots=True)
class Profile:
    account_id: int
    last_name: str
    first_name: str
    middle_name: str | None
    birth_date: str
    sex: str


@dataclass(frozen=True, slots=True)
class SignInCode:
    phone: str
    code_hash: str
    expires_at: int
    attempts: int
    sent_at: int
    window_started_at: int
    sent_in_window: int


def _profile(row: Row) -> Profile:
    return Profile(
        account_id=row["account_id"],
        last_name=row["last_name"],
        first_name=row["first_name"],
        middle_name=row["middle_name"],
        birth_date=row["birth_date"],
        sex=row["sex"],
    )


_PROFILE_COLUMNS = "account_id, last_name, first_name, middle_name, birth_date, sex"


class AccountStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_code(self, phone: str) -> SignInCode | None:
        async with self._db.read("get_code") as txn:
            row = await txn.fetchrow(
                "SELECT phone, code_hash, expires_at, attempts, sent_at, window_started_at,"
                " sent_in_window FROM sign_in_codes WHERE phone = $1",
                phone,
            )
        return None if row is None else SignInCode(*(row[i] for i in range(7)))

    async def put_code(self, code: SignInCode) -> None:
        async with self._db.transaction("put_code") as txn:
            await txn.execute(
                "INSERT INTO sign_in_codes (phone, code_hash, expires_at, attempts, sent_at,"
                " window_started_at, sent_in_window) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (phone) DO UPDATE SET code_hash = excluded.code_hash,"
                " expires_at = excluded.expires_at, attempts = excluded.attempts,"
                " sent_at = excluded.sent_at, window_started_at = excluded.window_started_at,"
                " sent_in_window = excluded.sent_in_window",
                code.phone,
                code.code_hash,
                code.expires_at,
                code.attempts,
                code.sent_at,
                code.window_started_at,
                code.sent_in_window,
            )

    async def take_attempt(self, phone: str, max_attempts: int) -> tuple[str, int] | None:
        """Spend one attempt on the phone's live code: (code hash, expires at), or None
        when there is no usable code or its attempts are spent."""
        async with self._db.transaction("take_attempt") as txn:
            row = await txn.fetchrow(
                "UPDATE sign_in_codes SET attempts = attempts + 1"
                " WHERE phone = $1 AND attempts < $2 AND code_hash <> ''"
                " RETURNING code_hash, expires_at",
                phone,
                max_attempts,
            )
        return None if row is None else (row[0], row[1])

    async def delete_code(self, phone: str) -> None:
        async with self._db.transaction("delete_code") as txn:
            await txn.execute("DELETE FROM sign_in_codes WHERE phone = $1", phone)

    async def expire_code(self, phone: str) -> None:
        """Make the code unusable but keep the row, so resend limits still hold."""
        async with self._db.transaction("expire_code") as txn:
            await txn.execute(
                "UPDATE sign_in_codes SET code_hash = '', expires_at = 0 WHERE phone = $1", phone
            )

    async def sign_in(
        self, phone: str, code_hash: str, token_hash: str, now: int
    ) -> tuple[int, bool] | None:
        """Consume the code and open a session; None if the code was used meanwhile.

        Returns (account id, has profile). The account is created on first sign-in.
        """
        async with self._db.transaction("sign_in") as txn:
            used = await txn.execute(
                "UPDATE sign_in_codes SET code_hash = '', expires_at = 0"
                " WHERE phone = $1 AND code_hash = $2 AND expires_at > $3",
                phone,
                code_hash,
                now,
            )
            if used != 1:
                return None
            await txn.execute(
                "INSERT INTO accounts (phone, created_at) VALUES ($1, $2)"
                " ON CONFLICT (phone) DO NOTHING",
                phone,
                now,
            )
            account_id: int = await txn.fetchval("SELECT id FROM accounts WHERE phone = $1", phone)
            await txn.execute(
                "INSERT INTO sessions (token_hash, account_id, created_at, last_seen_at)"
                " VALUES ($1, $2, $3, $3)",
                token_hash,
                account_id,
                now,
            )
            has_profile = await txn.fetchval(
                "SELECT 1 FROM profiles WHERE account_id = $1", account_id
            )
        return account_id, has_profile is not None

    async def create_session(self, account_id: int, token_hash: str, now: int) -> None:
        async with self._db.transaction("create_session") as txn:
            await txn.execute(
                "INSERT INTO sessions (token_hash, account_id, created_at, last_seen_at)"
                " VALUES ($1, $2, $3, $3)",
                token_hash,
                account_id,
                now,
            )

    async def session(self, token_hash: str, now: int, idle_ttl_ms: int) -> tuple[int, bool] | None:
        """(account id, has profile) of a live session; a session idle longer than the TTL
        is ended instead. ``last_seen_at`` moves at most once an hour, so that signing in
        a socket is one read, not a write."""
        async with self._db.read("session") as reader:
            row = await reader.fetchrow(
                "SELECT s.account_id, s.last_seen_at, p.account_id IS NOT NULL"
                " FROM sessions s LEFT JOIN profiles p ON p.account_id = s.account_id"
                " WHERE s.token_hash = $1",
                token_hash,
            )
        if row is None:
            return None
        account_id, last_seen, has_profile = row[0], row[1], bool(row[2])
        if now - last_seen > idle_ttl_ms:
            await self.end_session(token_hash)
            return None
        if now - last_seen > 3_600_000:
            async with self._db.transaction("touch_session") as txn:
                await txn.execute(
                    "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1", token_hash, now
                )
        return account_id, has_profile

    async def end_session(self, token_hash: str) -> None:
        async with self._db.transaction("end_session") as txn:
            await txn.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)

    async def end_all_sessions(self, account_id: int) -> int:
        async with self._db.transaction("end_all_sessions") as txn:
            return await txn.execute("DELETE FROM sessions WHERE account_id = $1", account_id)

    async def create_profile(self, profile: Profile, now: int) -> bool:
        """False when the account has a profile already."""
        async with self._db.transaction("create_profile") as txn:
            created = await txn.execute(
                f"INSERT INTO profiles ({_PROFILE_COLUMNS}, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (account_id) DO NOTHING",
                profile.account_id,
                profile.last_name,
                profile.first_name,
                profile.middle_name,
                profile.birth_date,
                profile.sex,
                now,
            )
        return created == 1

    async def get_profile(self, account_id: int) -> Profile | None:
        async with self._db.read("get_profile") as txn:
            row = await txn.fetchrow(
                f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE account_id = $1", account_id
            )
        return None if row is None else _profile(row)

    async def with_profiles(self, account_ids: list[int]) -> set[int]:
        """Which of these accounts have an educational profile."""
        found: set[int] = set()
        async with self._db.read("with_profiles") as txn:
            for start in range(0, len(account_ids), 500):
                chunk = account_ids[start : start + 500]
                marks = ", ".join(f"${i + 1}" for i in range(len(chunk)))
                rows = await txn.fetch(
                    f"SELECT account_id FROM profiles WHERE account_id IN ({marks})", *chunk
                )
                found.update(row[0] for row in rows)
        return found

    async def create_accounts_with_profiles(
        self, profiles: list[tuple[str, Profile]], tokens: list[str], now: int
    ) -> list[int]:
        """Operator bulk path (load tests): accounts, profiles and one session each."""
        ids: list[int] = []
        async with self._db.transaction("create_accounts_with_profiles") as txn:
            for (phone, profile), token_hash in zip(profiles, tokens, strict=True):
                account_id: int = await txn.fetchval(
                    "INSERT INTO accounts (phone, created_at) VALUES ($1, $2) RETURNING id",
                    phone,
                    now,
                )
                ids.append(account_id)
                await txn.execute(
                    f"INSERT INTO profiles ({_PROFILE_COLUMNS}, created_at, updated_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                    account_id,
                    profile.last_name,
                    profile.first_name,
                    profile.middle_name,
                    profile.birth_date,
                    profile.sex,
                    now,
                )
                await txn.execute(
                    "INSERT INTO sessions (token_hash, account_id, created_at, last_seen_at)"
                    " VALUES ($1, $2, $3, $3)",
                    token_hash,
                    account_id,
                    now,
                )
        return ids
