"""Who may reach whom: invite links, direct chats, blocks, and reports to moderators."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.messages import Event, Role
from server.store.chats import _append
from server.store.engine import Database, IntegrityError


@dataclass(frozen=True, slots=True)
class Invite:
    id: str  # the start of the token's hash: enough to name it, useless to join with
    chat_id: int
    expires_at: int
    uses: int
    revoked: bool


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    chat_id: int
    seq: int
    reporter_id: int
    reason: str
    status: str
    resolution: str | None
    created_at: int


INVITE_ID_LENGTH = 12


class SafetyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- invites ------------------------------------------------------------------------

    async def create_invite(
        self, token_hash: str, chat_id: int, created_by: int, now: int, expires_at: int
    ) -> Invite:
        async with self._db.transaction("create_invite") as txn:
            await txn.execute(
                "INSERT INTO invites (token_hash, chat_id, created_by, created_at, expires_at)"
                " VALUES ($1, $2, $3, $4, $5)",
                token_hash,
                chat_id,
                created_by,
                now,
                expires_at,
            )
        return Invite(token_hash[:INVITE_ID_LENGTH], chat_id, expires_at, 0, False)

    async def invites(self, chat_id: int) -> list[Invite]:
        async with self._db.read("invites") as reader:
            rows = await reader.fetch(
                "SELECT token_hash, expires_at, uses, revoked FROM invites WHERE chat_id = $1"
                " ORDER BY created_at DESC",
                chat_id,
            )
        return [Invite(r[0][:INVITE_ID_LENGTH], chat_id, r[1], r[2], bool(r[3])) for r in rows]

    async def revoke_invite(self, chat_id: int, invite_id: str) -> bool:
        async with self._db.transaction("revoke_invite") as txn:
            changed = await txn.execute(
                "UPDATE invites SET revoked = TRUE WHERE chat_id = $1 AND token_hash LIKE $2",
                chat_id,
                invite_id.replace("%", "").replace("_", "") + "%",
            )
        return changed > 0

    async def invite_target(self, token_hash: str, now: int) -> tuple[str, int] | str:
        """The invite's chat (title, member count), or why not: "unknown", "expired",
        "revoked"."""
        async with self._db.read("invite_target") as reader:
            row = await reader.fetchrow(
                "SELECT i.expires_at, i.revoked, c.title,"
                " (SELECT count(*) FROM chat_members m WHERE m.chat_id = c.id)"
                " FROM invites i JOIN chats c ON c.id = i.chat_id WHERE i.token_hash = $1",
                token_hash,
            )
        if row is None:
            return "unknown"
        if row[1]:
            return "revoked"
        if row[0] <= now:
            return "expired"
        return row[2], row[3]

    async def use_invite(
        self, token_hash: str, account_id: int, now: int
    ) -> tuple[int, Event | None] | str:
        """Join the invite's chat: (chat id, the join event or None if already a member),
        or why not: "unknown", "expired", "revoked"."""
        async with self._db.transaction("use_invite") as txn:
            row = await txn.fetchrow(
                "SELECT chat_id, expires_at, revoked FROM invites WHERE token_hash = $1",
                token_hash,
            )
            if row is None:
                return "unknown"
            chat_id, expires_at, revoked = row[0], row[1], bool(row[2])
            if revoked:
                return "revoked"
            if expires_at <= now:
                return "expired"
            added = await txn.execute(
                "INSERT INTO chat_members (chat_id, account_id, role, joined_at)"
                " VALUES ($1, $2, 'member', $3) ON CONFLICT (chat_id, account_id) DO NOTHING",
                chat_id,
                account_id,
                now,
            )
            if not added:
                return chat_id, None
            await txn.execute(
                "UPDATE invites SET uses = uses + 1 WHERE token_hash = $1", token_hash
            )
            event = await _append(
                txn, chat_id, "member_added", account_id, now, member_id=account_id, role="member"
            )
        return chat_id, event

    # --- direct chats ---------------------------------------------------------------------

    async def share_a_chat(self, a: int, b: int) -> bool:
        async with self._db.read("share_a_chat") as reader:
            found = await reader.fetchval(
                "SELECT 1 FROM chat_members x JOIN chat_members y ON y.chat_id = x.chat_id"
                " JOIN chats c ON c.id = x.chat_id"
                " WHERE x.account_id = $1 AND y.account_id = $2 AND c.kind <> 'direct' LIMIT 1",
                a,
                b,
            )
        return found is not None

    async def direct(self, a: int, b: int, now: int) -> tuple[int, Event | None]:
        """The one direct chat of a pair: (its id, its created event when made now)."""
        key = f"{min(a, b)}:{max(a, b)}"
        try:
            async with self._db.transaction("open_direct") as txn:
                existing = await txn.fetchval("SELECT id FROM chats WHERE direct_key = $1", key)
                if existing is not None:
                    return existing, None
                chat_id: int = await txn.fetchval(
                    "INSERT INTO chats (kind, title, created_by, created_at, direct_key)"
                    " VALUES ('direct', '', $1, $2, $3) RETURNING id",
                    a,
                    now,
                    key,
                )
                members: list[tuple[int, int, Role, int]] = [
                    (chat_id, a, "member", now),
                    (chat_id, b, "member", now),
                ]
                await txn.executemany(
                    "INSERT INTO chat_members (chat_id, account_id, role, joined_at)"
                    " VALUES ($1, $2, $3, $4)",
                    members,
                )
                event = await _append(txn, chat_id, "created", a, now, title="")
        except IntegrityError:
            # The other side opened it at the same moment: theirs is ours.
            async with self._db.read("direct_exists") as reader:
                found: int = await reader.fetchval(
                    "SELECT id FROM chats WHERE direct_key = $1", key
                )
            return found, None
        return chat_id, event

    # --- blocks ------------------------------------------------------------------------------

    async def block(self, account_id: int, blocked_id: int, on: bool, now: int) -> None:
        async with self._db.transaction("block") as txn:
            if on:
                await txn.execute(
                    "INSERT INTO blocks (account_id, blocked_id, at) VALUES ($1, $2, $3)"
                    " ON CONFLICT DO NOTHING",
                    account_id,
                    blocked_id,
                    now,
                )
            else:
                await txn.execute(
                    "DELETE FROM blocks WHERE account_id = $1 AND blocked_id = $2",
                    account_id,
                    blocked_id,
                )

    async def blocked_between(self, a: int, b: int) -> bool:
        """Either of the two blocked the other."""
        async with self._db.read("blocked_between") as reader:
            found = await reader.fetchval(
                "SELECT 1 FROM blocks WHERE (account_id = $1 AND blocked_id = $2)"
                " OR (account_id = $2 AND blocked_id = $1)",
                a,
                b,
            )
        return found is not None

    # --- reports ---------------------------------------------------------------------------

    async def report(self, chat_id: int, seq: int, reporter_id: int, reason: str, now: int) -> int:
        async with self._db.transaction("report") as txn:
            report_id: int = await txn.fetchval(
                "INSERT INTO reports (chat_id, seq, reporter_id, reason, status, created_at)"
                " VALUES ($1, $2, $3, $4, 'open', $5) RETURNING id",
                chat_id,
                seq,
                reporter_id,
                reason,
                now,
            )
        return report_id

    async def get_report(self, report_id: int) -> Report | None:
        async with self._db.read("get_report") as reader:
            row = await reader.fetchrow(
                "SELECT id, chat_id, seq, reporter_id, reason, status, resolution, created_at"
                " FROM reports WHERE id = $1",
                report_id,
            )
        return None if row is None else Report(*(row[i] for i in range(8)))

    async def open_reports(self, account_id: int, chat_id: int | None) -> list[Report]:
        """Open reports in chats this account administers, or in its school's chats where it
        is staff (teacher or staff of the chat's school, by the journal's roster)."""
        async with self._db.read("open_reports") as reader:
            rows = await reader.fetch(
                "SELECT r.id, r.chat_id, r.seq, r.reporter_id, r.reason, r.status, r.resolution,"
                " r.created_at FROM reports r JOIN chats c ON c.id = r.chat_id"
                " WHERE r.status = 'open' AND ($2 = 0 OR r.chat_id = $2) AND ("
                "  EXISTS (SELECT 1 FROM chat_members m WHERE m.chat_id = r.chat_id"
                "          AND m.account_id = $1 AND m.role IN ('owner', 'admin'))"
                "  OR EXISTS (SELECT 1 FROM account_links l JOIN school_persons sp"
                "          ON sp.person_id = l.person_id WHERE l.account_id = $1"
                "          AND sp.school_id = c.school_id AND sp.role IN ('teacher', 'staff')))"
                " ORDER BY r.created_at",
                account_id,
                chat_id or 0,
            )
        return [Report(*(row[i] for i in range(8))) for row in rows]

    async def resolve(self, report_id: int, resolution: str, by: int, now: int) -> bool:
        async with self._db.transaction("resolve_report") as txn:
            changed = await txn.execute(
                "UPDATE reports SET status = 'resolved', resolution = $2, resolved_by = $3,"
                " resolved_at = $4 WHERE id = $1 AND status = 'open'",
                report_id,
                resolution,
                by,
                now,
            )
        return changed == 1
