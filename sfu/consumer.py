"""What a subscriber receives: a consumer per remote track, rewriting as it forwards.

A consumer has its own SSRC, sequence numbers, timestamps and (VP8) picture ids, so that
switching between a producer's simulcast encodings, pausing and resuming look to the
browser like one continuous stream. A video consumer keeps preferred → target → current
layers (after mediasoup's ``SimulcastConsumer``): the allocator sets the target, and the
switch happens only at a keyframe of the target encoding, which it asks the publisher for.

Within an encoding, VP8 frames of temporal layers above ``temporal_target`` are dropped
(their sequence numbers and picture ids closed up, so the browser sees no loss). Going down
takes effect at the next frame; going up at the next frame of the new layer that the
publisher marks as a layer sync (it refers only to the base layer, which we forwarded), or
at a keyframe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfu.producer import Encoding, Producer, RtpParams
from sfu.rtp import ExtensionPacker, RtpHeader, parse_rtp
from sfu.seq import PictureIdMapper, SeqManager, TimestampMapper
from sfu.srtp import RETRANSMIT_WINDOW
from sfu.vp8 import Vp8Info, parse_vp8

if TYPE_CHECKING:
    from sfu.peer import Peer

LAYERS = ("low", "medium", "high")
# The highest VP8 temporal layer id (two bits): forward every temporal layer.
TEMPORAL_ALL = 3
_SENT_RING = RETRANSMIT_WINDOW  # what the send session can protect again


class Consumer:
    __slots__ = (
        "_last_forward_at",
        "_sent",
        "bytes",
        "current",
        "packer",
        "packets",
        "params",
        "peer",
        "pictures",
        "preferred",
        "producer",
        "sequences",
        "ssrc",
        "target",
        "temporal",
        "temporal_target",
        "timestamps",
    )

    def __init__(self, peer: Peer, producer: Producer, params: RtpParams, ssrc: int) -> None:
        self.peer = peer
        self.producer = producer
        self.params = params
        self.ssrc = ssrc
        self.sequences = SeqManager()
        self.timestamps = TimestampMapper()
        self.pictures = PictureIdMapper() if producer.codec == "vp8" else None
        self.packer = _packer(params, producer.kind)
        # Index of the layer the subscriber wants (its tile size); -1 is "off".
        self.preferred = len(LAYERS) - 1
        self.current: Encoding | None = None
        self.target: Encoding | None = None
        # The highest VP8 temporal layer forwarded now, and the one the allocator chose.
        self.temporal = self.temporal_target = TEMPORAL_ALL
        # out seq → what is needed to send that packet again on a NACK: (out seq, encoding
        # index, in seq, timestamp, picture id, TL0PICIDX). Only ints, so the garbage
        # collector stops tracking these tuples young instead of walking them in every
        # full collection.
        self._sent: list[tuple[int, int, int, int, int, int] | None] = [None] * _SENT_RING
        self._last_forward_at = 0.0
        self.packets = 0
        self.bytes = 0
        producer.consumers.append(self)
        if producer.kind == "audio":
            # Audio has no keyframes: it flows from the first packet.
            self._attach(producer.encodings[0])

    # --- choosing what to forward ------------------------------------------------------

    def retarget(self, encoding: Encoding | None, now: float, temporal: int = TEMPORAL_ALL) -> None:
        """The allocator's choice: forward ``encoding`` (None pauses) from its next keyframe,
        its temporal layers up to ``temporal``."""
        self.temporal_target = temporal
        if encoding is self.target:
            return
        previous = self.target
        if previous is not None and previous is not self.current and self in previous.waiting:
            previous.waiting.remove(self)
        self.target = encoding
        if encoding is None:
            self._detach()
            return
        if encoding is self.current:
            return
        encoding.waiting.append(self)
        if self.producer.kind == "video":  # audio switches at its next packet
            self.peer.request_keyframe(encoding, now)

    def switch(
        self, encoding: Encoding, header: RtpHeader, info: Vp8Info | None, now: float
    ) -> None:
        """A keyframe arrived on the target: continue every counter from where we were."""
        encoding.waiting.remove(self)
        if encoding is not self.target:
            return
        self._detach()
        elapsed_ms = (now - self._last_forward_at) * 1000 if self._last_forward_at else 0.0
        self.sequences.sync(header.sequence)
        self.timestamps.sync(header.timestamp, elapsed_ms, self.producer.params.clock_rate)
        if self.pictures is not None and info is not None:
            self.pictures.sync(info.picture_id, info.tl0picidx)
        self.temporal = self.temporal_target  # a keyframe depends on nothing before it
        self._attach(encoding)

    def _attach(self, encoding: Encoding) -> None:
        self.current = encoding
        self.target = encoding
        encoding.consumers.append(self)

    def _detach(self) -> None:
        if self.current is not None:
            self.current.consumers.remove(self)
            self.current = None

    def close(self) -> None:
        self.retarget(None, 0.0)
        if self in self.producer.consumers:
            self.producer.consumers.remove(self)

    @property
    def layer(self) -> str:
        if self.current is None:
            return "off"
        if self.producer.kind == "audio" or not self.producer.simulcast:
            return "on"
        return LAYERS[min(self.current.index, len(LAYERS) - 1)]

    # --- the hot path ---------------------------------------------------------------------

    def forward(
        self,
        data: bytes,
        header: RtpHeader,
        payload: memoryview,
        info: Vp8Info | None,
        level: int,
        now: float,
    ) -> None:
        """Forward one packet of the encoding we are on; ``payload`` (padding left out) and
        ``level``, its audio level in -dBov (-1: none), are read once for all consumers."""
        # Every temporal layer forwarded and none to change: two comparisons a packet.
        if (
            info is not None
            and (tid := info.tid) is not None
            and (tid > self.temporal or self.temporal != self.temporal_target)
            and not self._temporal_layer(tid, header, info)
        ):
            return
        sequence = self.sequences.input(header.sequence)
        if sequence is None:
            return  # dropped, or older than the switch: not part of this stream
        timestamp = self.timestamps.input(header.timestamp)
        picture_id = tl0 = -1
        pictures = self.pictures
        if pictures is not None and info is not None:
            input_picture_id = info.picture_id
            if input_picture_id is not None:
                mapped = pictures.picture_id(input_picture_id)
                if mapped is not None:
                    picture_id = mapped
                if info.tl0picidx is not None:
                    tl0 = pictures.tl0picidx(info.tl0picidx)
        encoding = self.current
        assert encoding is not None  # only encodings we are on call forward()
        self._sent[sequence % _SENT_RING] = (
            sequence,
            encoding.index,
            header.sequence,
            timestamp,
            picture_id,
            tl0,
        )
        self._last_forward_at = now
        self.packets += 1
        self.peer.send_media(
            self, data, header, payload, sequence, timestamp, info, picture_id, tl0, level, now
        )

    def _temporal_layer(self, tid: int, header: RtpHeader, info: Vp8Info) -> bool:
        """Whether to forward a packet of temporal layer ``tid`` while the temporal layer
        changes or is above what is forwarded; a packet not forwarded is dropped here."""
        if info.start_of_partition and info.partition_id == 0:  # a frame begins
            target = self.temporal_target
            if target < self.temporal:
                self.temporal = target
            elif self.temporal < tid <= target and info.layer_sync:
                self.temporal = tid
        if tid <= self.temporal:
            return True
        self.sequences.drop(header.sequence)
        if self.pictures is not None and info.picture_id is not None:
            self.pictures.drop(info.picture_id)
        return False

    def retransmit(self, sequence: int, now: float) -> None:
        """A NACK from the subscriber: send that packet again, exactly as before."""
        entry = self._sent[sequence % _SENT_RING]
        if entry is None or entry[0] != sequence:
            return
        _, index, input_sequence, timestamp, picture_id, tl0 = entry
        data = self.producer.encodings[index].cache.get(input_sequence)
        if data is None:
            return
        header = parse_rtp(data)
        if header is None:
            return
        info = None
        if picture_id >= 0 or tl0 >= 0:
            info = parse_vp8(data, header.payload_start, header.payload_end)
        payload = memoryview(data)[header.payload_start : header.payload_end]
        self.peer.send_media(
            self, data, header, payload, sequence, timestamp, info, picture_id, tl0, -1, now
        )


def _packer(params: RtpParams, kind: str) -> ExtensionPacker | None:
    """One precompiled extension block per consumer, when its ids fit the one-byte form."""
    ids = (
        params.ext_mid,
        params.ext_abs_send_time,
        params.ext_transport_cc,
        params.ext_audio_level,
    )
    if not all(0 <= i <= 14 for i in ids) or len(params.mid) > 16:
        return None
    return ExtensionPacker(
        mid_id=params.ext_mid,
        mid=params.mid,
        abs_send_time_id=params.ext_abs_send_time,
        transport_cc_id=params.ext_transport_cc,
        audio_level_id=params.ext_audio_level if kind == "audio" else None,
    )
