"""WebRTC tests: real aiortc peers against real SFU worker processes, on loopback only.

``./dev test`` runs this folder inside a network namespace that has only loopback; the
fixtures also keep aiortc's ICE on 127.0.0.1 and without STUN servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from protocol.sfu_control import (
    Answer,
    Body,
    PeerCreate,
    PeerOffer,
    ProducerInfo,
    TransportInfo,
)
from server.media.workers import WorkerConfig, WorkerPool
from tests.integration.conftest import stop_cleanly
from tests.integration.journal import JournalServer, start_journal_server


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice skips loopback by default; here it is the only address there is.
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda **_: ["127.0.0.1"])


@dataclass
class Sfu:
    pool: WorkerPool
    events: list[tuple[int, Body]] = field(default_factory=list)
    lost: list[tuple[int, set[str]]] = field(default_factory=list)

    async def peer(self, room_id: str, peer_id: str) -> TransportInfo:
        worker = await self.pool.place(room_id)
        info: TransportInfo = await worker.request(PeerCreate(room_id=room_id, peer_id=peer_id))
        return info

    async def offer(
        self,
        room_id: str,
        peer_id: str,
        pc: RTCPeerConnection,
        *,
        sources: dict[str, str] | None = None,
        subscriptions: dict[str, str] | None = None,
    ) -> Answer:
        """Offer from an aiortc peer, answer from the SFU, applied to the peer."""
        await pc.setLocalDescription(await pc.createOffer())
        worker = self.pool.worker_for(room_id)
        assert worker is not None
        answer: Answer = await worker.request(
            PeerOffer(
                peer_id=peer_id,
                sdp=pc.localDescription.sdp,
                sources=sources or {},  # type: ignore[arg-type]
                subscriptions=subscriptions or {},
            )
        )
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        return answer


@pytest.fixture
async def sfu() -> AsyncIterator[Sfu]:
    holder: list[Sfu] = []
    pool = WorkerPool(
        WorkerConfig(count=1),
        on_event=lambda worker, event: holder[0].events.append((worker, event)),
        on_lost=lambda worker, rooms: holder[0].lost.append((worker, rooms)),
    )
    holder.append(Sfu(pool))
    await pool.start()
    try:
        yield holder[0]
    finally:
        await pool.stop()


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[JournalServer]:
    """A server with one SFU worker and a journal; a traceback in its log fails the test."""
    running = start_journal_server(tmp_path, sfu_workers=1)
    yield running
    await running.close()
    stop_cleanly(running.server)


@pytest.fixture
async def peers() -> AsyncIterator[list[RTCPeerConnection]]:
    """aiortc peer connections, closed at the end."""
    made: list[RTCPeerConnection] = []
    yield made
    await asyncio.gather(*(pc.close() for pc in made))


def new_pc(made: list[RTCPeerConnection]) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    made.append(pc)
    return pc


def producer_of(answer: Answer, kind: str) -> ProducerInfo:
    return next(p for p in answer.producers if p.kind == kind)
