"""The router: rooms and peers of one worker, the control requests, and the datagram demux.

A datagram arrives with its source (``(host, port)`` for UDP, ``(host, port, connection)``
for ICE-TCP). Its first byte says what it is (RFC 7983): STUN goes to ICE, DTLS to the
peer's handshake, RTP/RTCP to its SRTP session and on to producers and consumers. All of it
runs synchronously; the tick does the periodic work.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from protocol.sfu_control import (
    ActiveSpeaker,
    Answer,
    Body,
    Candidate,
    ControlError,
    Done,
    PeerClose,
    PeerCreate,
    PeerLayer,
    PeerMove,
    PeerOffer,
    PeerState,
    PeerStats,
    RecordingEnded,
    RecordingReason,
    RecordStart,
    RecordStop,
    Request,
    RoomClose,
    RoomCreate,
    Stats,
    StatsResult,
    TransportInfo,
)
from sfu.allocator import (
    PAUSED,
    PRIORITY_OTHER,
    PRIORITY_SCREEN,
    PRIORITY_SPEAKER,
    Demand,
    allocate,
    held_back,
)
from sfu.consumer import LAYERS, TEMPORAL_ALL
from sfu.dtls import Certificate
from sfu.ice import new_credentials, stun_local_ufrag
from sfu.negotiate import negotiate
from sfu.peer import LADDER_BPS, Peer, Send
from sfu.producer import Encoding, Producer
from sfu.rtcp import build_bye
from sfu.speaker import SpeakerDetector

if TYPE_CHECKING:
    from sfu.recorder import Recorder

logger = logging.getLogger("parta.sfu")

Emit = Callable[[str, Body], None]
# Most requests are answered at once; record.stop when its file is written.
Reply = Body | Future[RecordingEnded]
ALLOCATE_EVERY_S = 0.5


class Room:
    __slots__ = ("peers", "recorder", "room_id", "speakers")

    def __init__(self, room_id: str) -> None:
        self.room_id = room_id
        self.peers: dict[str, Peer] = {}
        self.speakers = SpeakerDetector()
        self.recorder: Recorder | None = None


class Router:
    def __init__(
        self, worker: int, certificate: Certificate, announce: str, port: int, emit: Emit
    ) -> None:
        self.worker = worker
        self.certificate = certificate
        self.announce = announce
        self.port = port
        self._emit = emit
        self.rooms: dict[str, Room] = {}
        self.peers: dict[str, Peer] = {}
        self.by_ufrag: dict[str, Peer] = {}
        self.by_path: dict[Any, Peer] = {}
        self.producers: dict[str, Producer] = {}
        # Makes the send function for a UDP address (the worker's socket).
        self.udp_sender: Callable[[tuple[str, int]], Send] | None = None
        self._next_id = 0
        self._last_allocation = 0.0
        # Recordings that ended without a record.stop: an event goes out when written.
        self._ending: list[Future[RecordingEnded]] = []

    # --- sending --------------------------------------------------------------------------

    def sender(self, source: Any) -> Send:
        if len(source) == 3:
            send: Send = source[2].send
            return send
        assert self.udp_sender is not None
        return self.udp_sender(source)

    def send_to(self, source: Any, data: bytes) -> None:
        self.sender(source)(data)

    # --- datagrams ------------------------------------------------------------------------

    def datagram(self, data: bytes, source: Any) -> None:
        if not data:
            return
        first = data[0]
        if 127 < first < 192:
            peer = self.by_path.get(source)
            if peer is not None:
                peer.srtp_data(data, time.monotonic())
        elif first < 4:
            self._stun(data, source)
        elif 19 < first < 64:
            peer = self.by_path.get(source)
            if peer is not None:
                peer.dtls_data(data, time.monotonic())

    def _stun(self, data: bytes, source: Any) -> None:
        peer = self.by_path.get(source)
        if peer is None:
            ufrag = stun_local_ufrag(data)
            found = self.by_ufrag.get(ufrag) if ufrag else None
            if found is None:
                return
            peer = found
        peer.stun(data, source, time.monotonic())
        if source in peer.ice.valid:
            self.by_path[source] = peer

    def path_closed(self, source: Any) -> None:
        """An ICE-TCP connection went away."""
        peer = self.by_path.pop(source, None)
        if peer is not None:
            peer.ice.discard(source)

    # --- control --------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        if isinstance(request, RoomCreate):
            self.rooms.setdefault(request.room_id, Room(request.room_id))
            return Done()
        if isinstance(request, RoomClose):
            room = self.rooms.pop(request.room_id, None)
            if room is not None:
                self._end_recording(room, "room_closed")
                for peer in list(room.peers.values()):
                    self._close_peer(peer)
            return Done()
        if isinstance(request, PeerCreate):
            return self._create_peer(request)
        if isinstance(request, PeerOffer):
            return self._offer(request)
        if isinstance(request, PeerClose):
            closing = self.peers.get(request.peer_id)
            if closing is not None:
                self._close_peer(closing)
            return Done()
        if isinstance(request, PeerLayer):
            consumer = self._peer(request.peer_id).consumers.get(request.producer_id)
            if consumer is None:
                raise ControlError("not_found", f"no consumer of {request.producer_id}")
            consumer.preferred = PAUSED if request.layer == "off" else LAYERS.index(request.layer)
            self._allocate(consumer.peer, time.monotonic())
            return Done()
        if isinstance(request, PeerMove):
            return self._move(self._peer(request.peer_id), request.room_id)
        if isinstance(request, Stats):
            return self._stats(request.room_id)
        if isinstance(request, RecordStart):
            return self._record_start(request)
        if isinstance(request, RecordStop):
            room = self._room(request.room_id)
            recorder = room.recorder
            if recorder is None:
                raise ControlError("not_found", f"room {request.room_id} does not record")
            room.recorder = None
            return recorder.stop(time.monotonic(), "stopped")
        raise ControlError("unknown_type", f"unsupported request {request.type}")

    def _peer(self, peer_id: str) -> Peer:
        peer = self.peers.get(peer_id)
        if peer is None:
            raise ControlError("not_found", f"no peer {peer_id}")
        return peer

    def _room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            raise ControlError("not_found", f"no room {room_id}")
        return room

    def new_id(self, prefix: str) -> str:
        self._next_id += 1
        return f"{prefix}{self.worker}-{self._next_id}"

    def _create_peer(self, request: PeerCreate) -> TransportInfo:
        room = self._room(request.room_id)
        if request.peer_id in self.peers:
            raise ControlError("conflict", f"peer {request.peer_id} exists")
        peer = Peer(self, room, request.peer_id, self.certificate, time.monotonic())
        self.peers[peer.peer_id] = peer
        room.peers[peer.peer_id] = peer
        self.by_ufrag[peer.ice.local_ufrag] = peer
        algorithm, value = self.certificate.fingerprint
        return TransportInfo(
            ice_ufrag=peer.ice.local_ufrag,
            ice_pwd=peer.ice.local_pwd,
            fingerprint=f"{algorithm} {value}",
            candidates=[
                Candidate(protocol="udp", address=self.announce, port=self.port),
                Candidate(protocol="tcp", address=self.announce, port=self.port),
            ],
        )

    def _offer(self, request: PeerOffer) -> Answer:
        peer = self._peer(request.peer_id)
        answer = negotiate(self, peer, request)
        self._allocate(peer, time.monotonic())
        return answer

    def restart_ice(self, peer: Peer) -> None:
        self.by_ufrag.pop(peer.ice.local_ufrag, None)
        ufrag, pwd = new_credentials()
        peer.ice.restart(ufrag, pwd)
        self.by_ufrag[ufrag] = peer

    def _close_peer(self, peer: Peer) -> None:
        peer.close()
        self.peers.pop(peer.peer_id, None)
        peer.room.peers.pop(peer.peer_id, None)
        self.by_ufrag.pop(peer.ice.local_ufrag, None)
        for path in [p for p, owner in self.by_path.items() if owner is peer]:
            del self.by_path[path]
        for producer in list(peer.producers.values()):
            self.close_producer(producer)
        for consumer in peer.consumers.values():
            consumer.close()

    def close_producer(self, producer: Producer) -> None:
        """A track ended: its consumers stop (their sections go inactive at the next offer)."""
        peer = producer.peer
        peer.producers.pop(producer.producer_id, None)
        self.producers.pop(producer.producer_id, None)
        peer.room.speakers.forget(producer)
        for encoding in producer.encodings:
            if encoding.ssrc is not None:
                peer.by_ssrc.pop(encoding.ssrc, None)
                peer.keyframes.forget(encoding.ssrc)
        for key in [k for k, e in peer.by_mid_rid.items() if e.producer is producer]:
            del peer.by_mid_rid[key]
        for ssrc in [s for s, e in peer.rtx_by_ssrc.items() if e.producer is producer]:
            del peer.rtx_by_ssrc[ssrc]
        for consumer in list(producer.consumers):
            consumer.close()
            subscriber = consumer.peer
            # BYE ends the track in the subscriber's browser before it renegotiates.
            subscriber.send_rtcp(build_bye([consumer.ssrc]))
            subscriber.consumers.pop(producer.producer_id, None)
            subscriber.consumer_by_ssrc.pop(consumer.ssrc, None)
            for mid in [m for m, c in subscriber.consumer_mids.items() if c is consumer]:
                del subscriber.consumer_mids[mid]

    def _move(self, peer: Peer, room_id: str) -> Done:
        """Breakout rooms: the peer keeps its transport; whom it hears and sees changes."""
        target = self._room(room_id)
        old = peer.room
        if target is old:
            return Done()
        old.peers.pop(peer.peer_id, None)
        for producer in peer.producers.values():
            old.speakers.forget(producer)
        target.peers[peer.peer_id] = peer
        peer.room = target
        now = time.monotonic()
        # Consumers across rooms stop now; the server renegotiates the new ones.
        for consumer in peer.consumers.values():
            if consumer.producer.peer.room is not target:
                consumer.retarget(None, now)
        for other in old.peers.values():
            self._allocate(other, now)
        for other in target.peers.values():
            self._allocate(other, now)
        return Done()

    def _record_start(self, request: RecordStart) -> Done:
        room = self._room(request.room_id)
        if room.recorder is not None:
            raise ControlError("conflict", f"room {request.room_id} records already")
        if not os.path.isabs(request.path):
            raise ControlError("bad_path", "the recording path must be absolute")
        # PyAV loads only when a room records: it would add ~0.15 s to every worker's start.
        from sfu.recorder import Recorder
        from sfu.webm import WebmWriter, WriterThread

        try:
            writer = WebmWriter(request.path)
        except (OSError, ValueError) as exc:
            raise ControlError("bad_path", f"cannot write {request.path}: {exc}") from None
        room.recorder = Recorder(room, WriterThread(writer, room.room_id), time.monotonic())
        return Done()

    def _end_recording(self, room: Room, reason: RecordingReason) -> None:
        recorder, room.recorder = room.recorder, None
        if recorder is not None:
            self._ending.append(recorder.stop(time.monotonic(), reason))

    def _stats(self, room_id: str | None) -> StatsResult:
        peers = [
            PeerStats(
                peer_id=p.peer_id,
                room_id=p.room.room_id,
                state=p.state,
                packets_in=p.packets_in,
                packets_out=p.packets_out,
                bytes_in=p.bytes_in,
                bytes_out=p.bytes_out,
                estimate_bps=p.estimator.current(time.monotonic()),
                consumers={pid: c.layer for pid, c in p.consumers.items()},
            )
            for p in self.peers.values()
            if room_id is None or p.room.room_id == room_id
        ]
        return StatsResult(
            worker=self.worker,
            rooms=len(self.rooms),
            peers=peers,
            packets_in=sum(p.packets_in for p in self.peers.values()),
            packets_out=sum(p.packets_out for p in self.peers.values()),
            cpu_s=time.process_time(),
        )

    # --- events -----------------------------------------------------------------------------

    def peer_state(self, peer: Peer, state: str, reason: str = "") -> None:
        self._emit("peer.state", PeerState(peer_id=peer.peer_id, state=state, reason=reason))  # type: ignore[arg-type]

    # --- periodic ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        for peer in list(self.peers.values()):
            if peer.state != "failed":
                peer.tick(now)
        if now - self._last_allocation >= ALLOCATE_EVERY_S:
            self._last_allocation = now
            for peer in self.peers.values():
                if peer.consumers:
                    self._allocate(peer, now)
        for room in self.rooms.values():
            speaker = room.speakers.update(now)
            if speaker is not None:
                self._emit(
                    "speaker", ActiveSpeaker(room_id=room.room_id, peer_id=speaker.peer.peer_id)
                )
            recorder = room.recorder
            if recorder is not None:
                if recorder.error:
                    self._end_recording(room, "error")
                else:
                    recorder.tick(now)
        if self._ending:
            for ending in [f for f in self._ending if f.done()]:
                self._ending.remove(ending)
                self._emit("recording.ended", ending.result())

    def _allocate(self, peer: Peer, now: float) -> None:
        """Choose the layer of every video track this peer receives, within its estimate."""
        budget = peer.estimator.current(now)
        demands = []
        encodings: dict[str, list[Encoding]] = {}
        speaker = peer.room.speakers.current
        for producer_id, consumer in peer.consumers.items():
            producer = consumer.producer
            if producer.peer.room is not peer.room:
                consumer.retarget(None, now)
                continue
            if producer.kind == "audio":
                if consumer.current is None:
                    consumer.retarget(producer.encodings[0], now)
                budget -= producer.encodings[0].bitrate
                continue
            rates = [
                e.temporal_bitrates
                if e.bitrate
                else ((LADDER_BPS[min(e.index, 2)],) if now - e.last_packet_at < 2 else ())
                for e in producer.encodings
            ]
            if producer.source == "screen":
                priority = PRIORITY_SCREEN
            elif speaker is not None and speaker.peer is producer.peer:
                priority = PRIORITY_SPEAKER
            else:
                priority = PRIORITY_OTHER
            demands.append(Demand(producer_id, priority, consumer.preferred, rates))
            encodings[producer_id] = producer.encodings
        chosen = allocate(budget, demands)
        peer.estimator.probing = held_back(demands, chosen)
        for producer_id, layer in chosen.items():
            consumer = peer.consumers[producer_id]
            if layer is None:
                consumer.retarget(None, now)
                continue
            spatial, temporal = layer
            encoding = encodings[producer_id][spatial]
            if temporal >= len(encoding.temporal_bitrates) - 1:
                temporal = TEMPORAL_ALL  # the top one: forward a new one too when it comes
            consumer.retarget(encoding, now, temporal)

    def close(self) -> list[Future[RecordingEnded]]:
        """Close every peer and finish every recording; the futures resolve when the files
        are written (the worker waits for them before it exits)."""
        for room in self.rooms.values():
            self._end_recording(room, "shutdown")
        ending, self._ending = self._ending, []
        for peer in list(self.peers.values()):
            self._close_peer(peer)
        return ending
