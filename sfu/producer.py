"""What a publisher sends: a producer per track, an encoding per RTP stream of it.

An encoding is one simulcast layer (``q``, ``h``, ``f``) or the only stream of a track. It
keeps the last packets for retransmission, notices gaps to NACK, measures its bitrate, and
hands each packet to the consumers on it, synchronously.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sfu.rtp import RtpCache, RtpHeader, decode_audio_level, read_extension
from sfu.seq import NackGenerator
from sfu.vp8 import h264_is_keyframe, parse_vp8

if TYPE_CHECKING:
    from sfu.consumer import Consumer
    from sfu.peer import Peer


@dataclass(frozen=True, slots=True)
class RtpParams:
    """What one side negotiated for one media section (the answer keeps the offer's ids)."""

    mid: str
    kind: str  # "audio" | "video"
    codec: str  # "opus" | "vp8" | "h264"
    payload_type: int
    clock_rate: int
    rtx_payload_type: int = 0  # 0: no RTX
    ext_mid: int = 0
    ext_rid: int = 0
    ext_repaired_rid: int = 0
    ext_abs_send_time: int = 0
    ext_transport_cc: int = 0
    ext_audio_level: int = 0
    nack: bool = False
    pli: bool = False
    remb: bool = False
    transport_cc: bool = False


RATE_WINDOW_S = 1.0


class Encoding:
    __slots__ = (
        "_window_start",
        "_window_temporal",
        "bitrate",
        "bytes",
        "cache",
        "consumers",
        "index",
        "last_packet_at",
        "nack",
        "packets",
        "producer",
        "rid",
        "ssrc",
        "temporal_bitrates",
        "waiting",
    )

    def __init__(self, producer: Producer, index: int, rid: str | None, ssrc: int | None) -> None:
        self.producer = producer
        self.index = index
        self.rid = rid
        self.ssrc = ssrc
        self.cache = RtpCache(1024)
        self.nack = NackGenerator()
        # Consumers forwarding this encoding now, and those switching to it at a keyframe.
        self.consumers: list[Consumer] = []
        self.waiting: list[Consumer] = []
        self.packets = 0
        self.bytes = 0
        self.bitrate = 0
        # The bitrate of VP8 temporal layers 0..n, each with those below it; empty until
        # measured, one entry for a stream without temporal layers.
        self.temporal_bitrates: list[int] = []
        self._window_temporal = [0, 0, 0, 0]  # bytes by temporal layer id
        self._window_start = 0.0
        self.last_packet_at = 0.0

    def receive(self, data: bytes, header: RtpHeader, now: float) -> None:
        """One packet from the publisher, already SRTP-unprotected and parsed."""
        size = len(data)
        self.packets += 1
        self.bytes += size
        self.last_packet_at = now
        sequence = header.sequence
        self.cache.put(sequence, data)
        producer = self.producer
        info = None
        keyframe = False
        level = -1
        tid = 0  # a stream without temporal layers is all base layer
        codec = producer.codec
        if codec == "vp8":
            info = parse_vp8(data, header.payload_start, header.payload_end)
            if info is not None:
                keyframe = info.is_keyframe
                tid = info.tid or 0
        elif codec == "h264":
            keyframe = h264_is_keyframe(data, header.payload_start, header.payload_end)
        elif producer.level_ext:
            raw = read_extension(data, header, producer.level_ext)
            decoded = None if raw is None else decode_audio_level(raw)
            if decoded is not None:
                level = decoded[1]
                producer.peer.room.speakers.level(producer, level, now)
        self._window_temporal[tid] += size
        if producer.params.nack:
            self.nack.received(sequence, int(now * 1000), keyframe)
        if keyframe:
            producer.peer.keyframes.keyframe_received(header.ssrc)
        # Consumers switch to this encoding at a keyframe; audio has none: at any packet
        # (a subscriber paused by a move to another room hears it again when it is back).
        if self.waiting and (keyframe or producer.kind == "audio"):
            for consumer in self.waiting[:]:
                consumer.switch(self, header, info, now)
        # One view of the payload for every consumer to copy from: making and slicing a
        # view costs ~0.1 us, once per packet rather than once per forwarded packet.
        payload = memoryview(data)[header.payload_start : header.payload_end]
        for consumer in self.consumers:
            consumer.forward(data, header, payload, info, level, now)

    def measure(self, now: float) -> None:
        """Called every tick: refresh the bitrate over the last window."""
        if not self._window_start:
            self._window_start = now  # the first window starts now, not at time zero
            return
        elapsed = now - self._window_start
        if elapsed >= RATE_WINDOW_S:
            self.temporal_bitrates = _cumulative(self._window_temporal, elapsed)
            self.bitrate = self.temporal_bitrates[-1]
            self._window_temporal = [0, 0, 0, 0]
            self._window_start = now
        if now - self.last_packet_at > 2 * RATE_WINDOW_S:
            self.bitrate = 0  # the publisher stopped sending this layer
            self.temporal_bitrates = []


def _cumulative(window: list[int], elapsed: float) -> list[int]:
    """Bitrates of temporal layers 0..n, each with those below (n: the highest sent)."""
    top = max((tid for tid, size in enumerate(window) if size), default=0)
    rates = []
    total = 0
    for size in window[: top + 1]:
        total += size
        rates.append(int(total * 8 / elapsed))
    return rates


class Producer:
    __slots__ = (
        "codec",
        "consumers",
        "encodings",
        "kind",
        "level_ext",
        "params",
        "peer",
        "producer_id",
        "source",
    )

    def __init__(
        self,
        producer_id: str,
        peer: Peer,
        source: str,
        params: RtpParams,
        rids: list[str],
        ssrcs: list[int],
    ) -> None:
        self.producer_id = producer_id
        self.peer = peer
        self.source = source
        self.params = params
        self.kind = params.kind
        self.codec = params.codec
        self.level_ext = params.ext_audio_level if params.kind == "audio" else 0
        if rids:
            self.encodings = [Encoding(self, i, rid, None) for i, rid in enumerate(rids)]
        else:
            self.encodings = [Encoding(self, 0, None, ssrcs[0] if ssrcs else None)]
        self.consumers: list[Consumer] = []

    @property
    def simulcast(self) -> bool:
        return len(self.encodings) > 1

    def encoding_for(self, rid: str | None) -> Encoding | None:
        for encoding in self.encodings:
            if encoding.rid == rid:
                return encoding
        return None

    def bitrates(self) -> list[int]:
        return [e.bitrate for e in self.encodings]
