"""The webhook outbox: events for journals, kept until delivered or given up on."""

from __future__ import annotations

from dataclasses import dataclass

from server.store.engine import Database

# The oldest event still waiting for its journal.
_HEAD = (
    "w.delivered_at IS NULL AND NOT w.failed AND w.id = (SELECT MIN(x.id) FROM webhook_outbox x"
    " WHERE x.journal_id = w.journal_id AND x.delivered_at IS NULL AND NOT x.failed)"
)


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    journal_id: str
    event: str
    body: bytes
    created_at: int
    attempts: int


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, journal_id: str, event: str, body: bytes, now: int) -> int:
        async with self._db.transaction("webhook_add") as txn:
            webhook_id: int = await txn.fetchval(
                "INSERT INTO webhook_outbox (journal_id, event, body, created_at, next_at)"
                " VALUES ($1, $2, $3, $4, $4) RETURNING id",
                journal_id,
                event,
                body,
                now,
            )
        return webhook_id

    async def due(self, now: int) -> list[Pending]:
        """Each journal's oldest waiting event, if it is due: a journal gets its events in
        order, so one that fails holds back the ones after it."""
        async with self._db.read("webhooks_due") as reader:
            rows = await reader.fetch(
                "SELECT id, journal_id, event, body, created_at, attempts FROM webhook_outbox w"
                f" WHERE {_HEAD} AND next_at <= $1 ORDER BY id",
                now,
            )
        return [Pending(r[0], r[1], r[2], bytes(r[3]), r[4], r[5]) for r in rows]

    async def next_due(self) -> int | None:
        async with self._db.read("webhook_next") as reader:
            at: int | None = await reader.fetchval(
                f"SELECT MIN(next_at) FROM webhook_outbox w WHERE {_HEAD}"
            )
        return at

    async def delivered(self, webhook_id: int, now: int) -> None:
        async with self._db.transaction("webhook_delivered") as txn:
            await txn.execute(
                "UPDATE webhook_outbox SET delivered_at = $2, attempts = attempts + 1"
                " WHERE id = $1",
                webhook_id,
                now,
            )

    async def retry(self, webhook_id: int, next_at: int | None) -> None:
        """Try again at ``next_at``, or (None) give up."""
        async with self._db.transaction("webhook_retry") as txn:
            await txn.execute(
                "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = $2, failed = $3"
                " WHERE id = $1",
                webhook_id,
                next_at or 0,
                next_at is None,
            )
