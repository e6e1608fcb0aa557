"""An SFU router in memory: one publisher, N subscribers, real SDP, real SRTP, no sockets.

Peers are negotiated from a real Chromium offer (three simulcast RIDs, audio) and then
marked connected with SRTP keys we know, so packets can be fed straight into the router
and what it sends is collected. Used by the per-packet micro-benchmark and the router's
unit tests (tests/unit/test_router.py).
"""

from __future__ import annotations

import struct
from pathlib import Path

from pylibsrtp import Policy, Session

from protocol.sfu_control import PeerCreate, PeerOffer, ProducerInfo, RoomCreate
from sfu.dtls import Certificate
from sfu.peer import Peer
from sfu.router import Router
from sfu.rtp import parse_rtp
from sfu.srtp import SrtpPair, SrtpProfile

OFFER = (
    Path(__file__).resolve().parents[2]
    / "tests"
    / "fixtures"
    / "sdp"
    / "chromium-156-pubsub-offer.sdp"
).read_text()
# The fixture's header extension ids (Chromium's usual ones) and sections.
EXT_LEVEL, EXT_ABS, EXT_TWCC, EXT_MID, EXT_RID, EXT_REPAIRED_RID = 1, 2, 3, 4, 10, 11
AUDIO_MID, VIDEO_MID, RECV_VIDEO_MID, RECV_AUDIO_MID = "0", "1", "2", "3"
VP8_PT, RTX_PT, OPUS_PT = 96, 97, 111
LAYER_SSRCS = {"q": 0x1000_0001, "h": 0x1000_0002, "f": 0x1000_0003}
AUDIO_SSRC = 982045160  # announced with a=ssrc in the fixture
KEY = bytes(range(28))  # AEAD_AES_128_GCM: 16-byte key + 12-byte salt, browser → SFU
SFU_KEY = bytes(range(100, 128))  # SFU → browser


def vp8_payload(
    picture_id: int,
    tl0: int,
    keyframe: bool,
    start: bool,
    size: int,
    tid: int = 0,
    sync: bool = False,
) -> bytes:
    """A VP8 payload descriptor (X, I with a 15-bit picture id, L, T: ``tid`` and the layer
    sync bit) and a payload."""
    first = 0x80 | (0x10 if start else 0)  # X, S (PID 0)
    tid_y = (tid << 6) | (0x20 if sync else 0)
    descriptor = bytes([first, 0xE0]) + struct.pack("!H", 0x8000 | picture_id) + bytes([tl0, tid_y])
    header = bytes([0x00 if keyframe else 0x01]) if start else b"\x00"
    return descriptor + header + bytes(size - len(descriptor) - 1)


def extensions(mid: str, rid: str | None, transport_seq: int, rid_ext: int = EXT_RID) -> bytes:
    elements = [(EXT_MID, mid.encode()), (EXT_TWCC, struct.pack("!H", transport_seq & 0xFFFF))]
    if rid is not None:
        elements.append((rid_ext, rid.encode()))
    body = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in elements)
    body += bytes(-len(body) % 4)
    return struct.pack("!HH", 0xBEDE, len(body) // 4) + body


def rtp(
    pt: int, seq: int, ts: int, ssrc: int, exts: bytes, payload: bytes, marker: bool = False
) -> bytes:
    return (
        struct.pack("!BBHII", 0x90, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts, ssrc)
        + exts
        + payload
    )


class Sink:
    """Where a peer's protected packets go (instead of a socket); keeps them if asked.

    Each is copied into a slot, as the worker's send batch does (``sfu.udp_batch``), so the
    micro-benchmark's per-packet path includes that copy."""

    __slots__ = ("count", "kept", "slot")

    def __init__(self) -> None:
        self.count = 0
        self.kept: list[bytes] | None = None
        self.slot = memoryview(bytearray(2048))

    def __call__(self, data: bytes | memoryview) -> None:
        self.count += 1
        self.slot[: len(data)] = data
        if self.kept is not None:
            self.kept.append(bytes(data))

    def rtp(self) -> list[bytes]:
        """What was kept, SRTP removed, RTP only (RTCP left out)."""
        session = Session(
            Policy(SFU_KEY, Policy.SSRC_ANY_INBOUND, srtp_profile=SrtpProfile.AEAD_AES_128_GCM)
        )
        return [session.unprotect(p) for p in self.kept or () if not 64 <= (p[1] & 0x7F) <= 95]


class Rig:
    def __init__(self, subscribers: int) -> None:
        self.router = Router(0, Certificate.generate(), "127.0.0.1", 40000, lambda *_: None)
        self.router.handle(RoomCreate(room_id="room"))
        self.router.handle(PeerCreate(room_id="room", peer_id="pub"))
        answer = self.router.handle(
            PeerOffer(peer_id="pub", sdp=OFFER, sources={AUDIO_MID: "mic", VIDEO_MID: "camera"})
        )
        self.video: ProducerInfo = next(p for p in answer.producers if p.kind == "video")  # type: ignore[attr-defined]
        self.audio: ProducerInfo = next(p for p in answer.producers if p.kind == "audio")  # type: ignore[attr-defined]
        self.publisher = self._connect("pub", ("10.0.0.1", 5000))
        # Protects what the "browser" sends with the key the publisher's peer unprotects with.
        self._client = Session(
            Policy(KEY, Policy.SSRC_ANY_OUTBOUND, srtp_profile=SrtpProfile.AEAD_AES_128_GCM)
        )
        self.subscribers: list[Peer] = []
        self.sinks: list[Sink] = []
        for n in range(subscribers):
            peer_id = f"sub{n}"
            self.router.handle(PeerCreate(room_id="room", peer_id=peer_id))
            self.router.handle(
                PeerOffer(
                    peer_id=peer_id,
                    sdp=OFFER,
                    subscriptions={
                        RECV_VIDEO_MID: self.video.producer_id,
                        RECV_AUDIO_MID: self.audio.producer_id,
                    },
                )
            )
            peer = self._connect(peer_id, ("10.0.1.1", 6000 + n))
            self.subscribers.append(peer)
        self._subscriber_sessions: dict[int, Session] = {}
        self._audio_seq = 500
        self._seq = dict.fromkeys(LAYER_SSRCS, 1000)
        self._picture = 100
        self._tl0 = 100
        self._rtx_seq = 3000
        self.last_plain = b""
        self._transport_seq = 0

    def _connect(self, peer_id: str, addr: tuple[str, int]) -> Peer:
        peer = self.router.peers[peer_id]
        peer.srtp = SrtpPair.from_keys(SrtpProfile.AEAD_AES_128_GCM, KEY, SFU_KEY)
        sink = Sink()
        if peer_id != "pub":
            self.sinks.append(sink)
        peer._send = sink
        peer.state = "connected"
        self.router.by_path[addr] = peer
        return peer

    def video_packet(
        self,
        rid: str,
        *,
        keyframe: bool = False,
        start: bool = True,
        size: int = 1100,
        tid: int = 0,
        sync: bool = False,
    ) -> bytes:
        """One protected VP8 packet of a layer, as the publisher's browser would send it;
        ``start``: the first of a frame, of temporal layer ``tid``."""
        self._seq[rid] += 1
        self._transport_seq += 1
        if start:
            self._picture = (self._picture + 1) & 0x7FFF
            if tid == 0:
                self._tl0 = (self._tl0 + 1) & 0xFF
        plain = rtp(
            VP8_PT,
            self._seq[rid],
            self._picture * 3000,
            LAYER_SSRCS[rid],
            extensions(VIDEO_MID, rid, self._transport_seq),
            vp8_payload(self._picture, self._tl0, keyframe, start, size, tid, sync),
            marker=True,
        )
        self.last_plain = plain
        protected: bytes = self._client.protect(plain)
        return protected

    def rtx_packet(self, rid: str, plain: bytes) -> bytes:
        """A retransmission of ``plain`` (a packet of layer ``rid``) as Chrome sends it: on
        the layer's RTX stream (RFC 4588), with the repaired RID; ``b""``: a padding probe."""
        self._rtx_seq += 1
        self._transport_seq += 1
        payload = b"\0" * 200  # padding only, as a bandwidth probe
        timestamp = 0
        if plain:
            header = parse_rtp(plain)
            assert header is not None
            payload = plain[2:4] + plain[header.payload_start :]
            timestamp = header.timestamp
        exts = extensions(VIDEO_MID, rid, self._transport_seq, EXT_REPAIRED_RID)
        packet = rtp(RTX_PT, self._rtx_seq, timestamp, LAYER_SSRCS[rid] + 0x100, exts, payload)
        if not plain:  # the P bit, and the padding's length in its last byte
            packet = bytes((packet[0] | 0x20,)) + packet[1:-1] + bytes((200,))
        protected: bytes = self._client.protect(packet)
        return protected

    def audio_packet(self, level: int = 30) -> bytes:
        """One protected Opus-like packet with an audio level (-dBov)."""
        self._audio_seq += 1
        self._transport_seq += 1
        body = struct.pack("!BB", (EXT_LEVEL << 4) | 0, 0x80 | level)
        body += struct.pack("!BH", (EXT_TWCC << 4) | 1, self._transport_seq & 0xFFFF)
        body += bytes([(EXT_MID << 4) | 0]) + AUDIO_MID.encode()
        body += bytes(-len(body) % 4)
        exts = struct.pack("!HH", 0xBEDE, len(body) // 4) + body
        plain = rtp(OPUS_PT, self._audio_seq, self._audio_seq * 960, AUDIO_SSRC, exts, bytes(80))
        protected: bytes = self._client.protect(plain)
        return protected

    def feed(self, packet: bytes) -> None:
        self.router.datagram(packet, ("10.0.0.1", 5000))

    def rtcp_from_subscriber(self, index: int, packet: bytes) -> None:
        """A subscriber's browser sends RTCP (REMB, NACK, PLI) to the SFU."""
        session = self._subscriber_sessions.setdefault(
            index,
            Session(
                Policy(KEY, Policy.SSRC_ANY_OUTBOUND, srtp_profile=SrtpProfile.AEAD_AES_128_GCM)
            ),
        )
        self.router.datagram(session.protect_rtcp(packet), ("10.0.1.1", 6000 + index))
