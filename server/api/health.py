"""``GET /healthz``: is this process serving, and on which database."""

from __future__ import annotations

import time

from server.api.router import Router
from server.gateway.http import Request, Response
from server.media.workers import WorkerPool
from server.store import Store


class HealthApi:
    def __init__(self, store: Store, media: WorkerPool, version: str) -> None:
        self._store = store
        self._media = media
        self._version = version
        self._started = time.monotonic()

    def register(self, router: Router) -> None:
        router.add("GET", "/healthz", self.health)

    async def health(self, request: Request) -> Response:
        async with self._store.db.transaction("health") as txn:
            await txn.fetchval("SELECT 1")
        return Response.json(
            {
                "status": "ok",
                "version": self._version,
                "database": self._store.db.dialect,
                "uptime_s": round(time.monotonic() - self._started),
                "media": [
                    {
                        "worker": worker.index,
                        "up": worker.running,
                        "pid": worker.process.pid if worker.process is not None else None,
                        "port": worker.port,
                        "rooms": len(worker.rooms),
                    }
                    for worker in self._media.workers
                ],
            }
        )
