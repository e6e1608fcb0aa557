"""Webhooks to journals (DESIGN.md): ``POST {event, at, data}`` to the journal's webhook URL,
signed with HMAC-SHA256 of the body under the journal's signing secret, kept in the outbox
and retried with backoff for 24 hours until the journal answers 2xx."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
from typing import Any

import orjson

from protocol.client import http_request
from server.domain.clock import Clock
from server.store import Store
from server.store.webhooks import Pending

logger = logging.getLogger("parta.webhooks")

GIVE_UP_AFTER_MS = 24 * 3600 * 1000
FIRST_RETRY_MS = 2_000
LONGEST_RETRY_MS = 3600 * 1000
IDLE_CHECK_S = 60.0


def rfc3339(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def next_attempt(pending: Pending, now: int) -> int | None:
    """When to try again after ``pending.attempts + 1`` failures, or None to give up."""
    delay: int = min(FIRST_RETRY_MS * 2**pending.attempts, LONGEST_RETRY_MS)
    if now + delay > pending.created_at + GIVE_UP_AFTER_MS:
        return None
    return now + delay


class JournalWebhooks:
    def __init__(self, store: Store, clock: Clock, timeout_s: float = 10.0) -> None:
        self._store = store
        self._clock = clock
        self._timeout_s = timeout_s
        self._wake = asyncio.Event()

    async def send(self, journal_id: str, event: str, data: dict[str, Any]) -> None:
        """Queue an event for a journal that has a webhook URL (durably, before returning)."""
        journal = await self._store.journals.get(journal_id)
        if journal is None or not journal.webhook_url:
            return
        now = self._clock()
        body = orjson.dumps({"event": event, "at": rfc3339(now), "data": data})
        await self._store.webhooks.add(journal_id, event, body, now)
        self._wake.set()

    async def run(self) -> None:
        """Deliver what is due, then sleep until the next is (or something new arrives)."""
        while True:
            self._wake.clear()
            for pending in await self._store.webhooks.due(self._clock()):
                await self._deliver(pending)
            upcoming = await self._store.webhooks.next_due()
            wait = IDLE_CHECK_S
            if upcoming is not None:
                wait = min(wait, max(0.0, (upcoming - self._clock()) / 1000))
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    async def _deliver(self, pending: Pending) -> None:
        journal = await self._store.journals.get(pending.journal_id)
        if journal is None or not journal.webhook_url:
            await self._store.webhooks.retry(pending.id, None)
            return
        try:
            status, _, _ = await http_request(
                "POST",
                journal.webhook_url,
                body=pending.body,
                headers={
                    "Content-Type": "application/json",
                    "X-Parta-Event": pending.event,
                    "X-Parta-Signature": signature(journal.signing_secret, pending.body),
                },
                timeout_s=self._timeout_s,
            )
        except (OSError, TimeoutError, ValueError) as exc:
            status = 0
            logger.info(
                "webhook failed",
                extra={"journal": journal.id, "event": pending.event, "error": str(exc)},
            )
        now = self._clock()
        if 200 <= status < 300:
            await self._store.webhooks.delivered(pending.id, now)
            return
        retry_at = next_attempt(pending, now)
        if retry_at is None:
            logger.warning(
                "webhook given up", extra={"journal": journal.id, "event": pending.event}
            )
        await self._store.webhooks.retry(pending.id, retry_at)
