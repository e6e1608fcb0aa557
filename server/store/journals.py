"""Journals, the link between a person in a journal and an account, and pending links."""

from __future__ import annotations

from dataclasses import dataclass

from server.store.engine import Database, IntegrityError, Row


@dataclass(frozen=True, slots=True)
class Journal:
    id: str
    region_code: str
    region_name: str
    name: str
    link_url: str
    webhook_url: str | None
    signing_secret: str


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    journal_id: str
    ext_id: str
    last_name: str
    first_name: str
    middle_name: str | None
    # (school name, role) for each school of the journal that lists the person
    schools: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PendingLink:
    id: str
    journal_id: str
    ext_user_id: str
    jti: str
    return_url: str
    expires_at: int


_JOURNAL = "id, region_code, region_name, name, link_url, webhook_url, signing_secret"


def _person(row: Row, schools: tuple[tuple[str, str], ...] = ()) -> Person:
    return Person(row[0], row[1], row[2], row[3], row[4], row[5], schools)


def _journal(row: Row) -> Journal:
    return Journal(*(row[i] for i in range(7)))


class JournalStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, journal: Journal, token_hash: str, now: int) -> None:
        async with self._db.transaction("add_journal") as txn:
            await txn.execute(
                f"INSERT INTO journals ({_JOURNAL}, token_hash, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                journal.id,
                journal.region_code,
                journal.region_name,
                journal.name,
                journal.link_url,
                journal.webhook_url,
                journal.signing_secret,
                token_hash,
                now,
            )

    async def rotate(self, journal_id: str, token_hash: str, signing_secret: str) -> bool:
        async with self._db.transaction("rotate_journal") as txn:
            changed = await txn.execute(
                "UPDATE journals SET token_hash = $2, signing_secret = $3 WHERE id = $1",
                journal_id,
                token_hash,
                signing_secret,
            )
        return changed == 1

    async def by_token(self, token_hash: str) -> Journal | None:
        async with self._db.read("journal_by_token") as reader:
            row = await reader.fetchrow(
                f"SELECT {_JOURNAL} FROM journals WHERE token_hash = $1", token_hash
            )
        return None if row is None else _journal(row)

    async def get(self, journal_id: str) -> Journal | None:
        async with self._db.read("journal") as reader:
            row = await reader.fetchrow(
                f"SELECT {_JOURNAL} FROM journals WHERE id = $1", journal_id
            )
        return None if row is None else _journal(row)

    async def all(self) -> list[Journal]:
        async with self._db.read("journals") as reader:
            rows = await reader.fetch(
                f"SELECT {_JOURNAL} FROM journals ORDER BY region_name, name, id"
            )
        return [_journal(row) for row in rows]

    # --- people as journals know them -------------------------------------------------

    async def person(self, journal_id: str, ext_id: str) -> Person | None:
        async with self._db.read("person") as reader:
            row = await reader.fetchrow(
                "SELECT id, journal_id, ext_id, last_name, first_name, middle_name FROM persons"
                " WHERE journal_id = $1 AND ext_id = $2",
                journal_id,
                ext_id,
            )
            if row is None:
                return None
            schools = await reader.fetch(
                "SELECT s.name, sp.role FROM school_persons sp"
                " JOIN schools s ON s.id = sp.school_id"
                " WHERE sp.person_id = $1 ORDER BY s.name",
                row[0],
            )
        return _person(row, tuple((s[0], s[1]) for s in schools))

    async def linked_account(self, person_id: int) -> int | None:
        async with self._db.read("linked_account") as reader:
            account_id: int | None = await reader.fetchval(
                "SELECT account_id FROM account_links WHERE person_id = $1", person_id
            )
        return account_id

    async def links_of(self, account_id: int) -> list[tuple[Journal, Person, int]]:
        """The account's links: the journal, the person there, and when (ms) it linked."""
        async with self._db.read("links_of") as reader:
            rows = await reader.fetch(
                f"SELECT p.id, p.journal_id, p.ext_id, p.last_name, p.first_name, p.middle_name,"
                f" {', '.join('j.' + c for c in _JOURNAL.split(', '))}, l.linked_at"
                " FROM account_links l JOIN persons p ON p.id = l.person_id"
                " JOIN journals j ON j.id = l.journal_id WHERE l.account_id = $1 ORDER BY j.name",
                account_id,
            )
        return [(Journal(*(row[i] for i in range(6, 13))), _person(row), row[13]) for row in rows]

    # --- linking ------------------------------------------------------------------------

    async def add_pending(self, pending: PendingLink, now: int) -> None:
        async with self._db.transaction("add_pending_link") as txn:
            await txn.execute("DELETE FROM pending_links WHERE expires_at < $1", now)
            await txn.execute(
                "INSERT INTO pending_links (id, journal_id, ext_user_id, jti, return_url,"
                " expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                pending.id,
                pending.journal_id,
                pending.ext_user_id,
                pending.jti,
                pending.return_url,
                pending.expires_at,
                now,
            )

    async def pending(self, pending_id: str) -> PendingLink | None:
        async with self._db.read("pending_link") as reader:
            row = await reader.fetchrow(
                "SELECT id, journal_id, ext_user_id, jti, return_url, expires_at"
                " FROM pending_links WHERE id = $1",
                pending_id,
            )
        return None if row is None else PendingLink(*(row[i] for i in range(6)))

    async def jti_used(self, journal_id: str, jti: str) -> bool:
        async with self._db.read("jti_used") as reader:
            used = await reader.fetchval(
                "SELECT 1 FROM used_assertions WHERE journal_id = $1 AND jti = $2",
                journal_id,
                jti,
            )
        return used is not None

    async def link(
        self, pending: PendingLink, person_id: int, account_id: int, now: int
    ) -> str | None:
        """Consume the assertion and store the link, atomically; or say why not:
        ``"used"`` (the assertion was consumed already), ``"person"`` (that journal account
        is linked to another profile), ``"account"`` (this profile is linked to another
        account of that journal). Linking the same pair again is fine."""
        async with self._db.transaction("link_account") as txn:
            try:
                await txn.execute(
                    "INSERT INTO used_assertions (journal_id, jti, expires_at) VALUES ($1, $2, $3)",
                    pending.journal_id,
                    pending.jti,
                    pending.expires_at,
                )
            except IntegrityError:
                return "used"
            existing = await txn.fetchval(
                "SELECT account_id FROM account_links WHERE person_id = $1", person_id
            )
            if existing is not None and existing != account_id:
                return "person"
            other = await txn.fetchval(
                "SELECT person_id FROM account_links WHERE journal_id = $1 AND account_id = $2",
                pending.journal_id,
                account_id,
            )
            if other is not None and other != person_id:
                return "account"
            if existing is None:
                await txn.execute(
                    "INSERT INTO account_links (person_id, journal_id, account_id, linked_at)"
                    " VALUES ($1, $2, $3, $4)",
                    person_id,
                    pending.journal_id,
                    account_id,
                    now,
                )
            await txn.execute("DELETE FROM pending_links WHERE id = $1", pending.id)
        return None

    async def unlink(self, account_id: int, journal_id: str) -> int | None:
        """Remove the account's link to that journal; the person it was linked to."""
        async with self._db.transaction("unlink_account") as txn:
            person_id: int | None = await txn.fetchval(
                "DELETE FROM account_links WHERE account_id = $1 AND journal_id = $2"
                " RETURNING person_id",
                account_id,
                journal_id,
            )
        return person_id
