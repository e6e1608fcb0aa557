"""From RTP packets back to media for the recorder: packets in sequence order again, whole
VP8 frames (RFC 7741), and RTP timestamps on the recording's clock.

Sans-IO like the rest of the media path: packets and arrival times in, frames out. The
recorder runs these in the worker's tick, not per packet.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from sfu.vp8 import Vp8Info

__all__ = ["ClockMap", "SequenceBuffer", "Vp8Assembler", "Vp8Frame", "keyframe_size"]

T = TypeVar("T")


class SequenceBuffer(Generic[T]):
    """One stream's packets back in sequence order.

    A missing packet is waited for (a retransmission, or plain reordering) for ``hold_s``
    after the gap was seen, or until ``capacity`` packets are held behind it; then it is
    given up and the packets after it are released, the gap visible in their numbers.
    """

    __slots__ = ("_capacity", "_gap_since", "_held", "_highest", "_hold_s", "_next")

    def __init__(self, hold_s: float = 0.25, capacity: int = 512) -> None:
        self._hold_s = hold_s
        self._capacity = capacity
        self._held: dict[int, T] = {}  # extended sequence number → item
        self._highest: int | None = None
        self._next: int | None = None
        self._gap_since = 0.0

    def push(self, sequence: int, item: T) -> None:
        highest = self._highest
        if highest is None:
            extended = sequence
        else:
            extended = highest + ((sequence - highest + 0x8000) & 0xFFFF) - 0x8000
        if self._next is not None and extended < self._next:
            return  # too late: what it belonged to is gone
        if highest is None or extended > highest:
            self._highest = extended
        if len(self._held) < self._capacity * 2:  # a hard cap, whatever the sender does
            self._held[extended] = item

    def pop(self, now: float) -> list[T]:
        """What can go on now, in order."""
        held = self._held
        out: list[T] = []
        if not held:
            return out
        expected = min(held) if self._next is None else self._next
        while held:
            if expected in held:
                out.append(held.pop(expected))
                expected += 1
                self._gap_since = 0.0
                continue
            if not self._gap_since:
                self._gap_since = now
            if now - self._gap_since < self._hold_s and len(held) < self._capacity:
                break
            expected = min(held)  # give the missing ones up
            self._gap_since = 0.0
        self._next = expected
        return out


class Vp8Frame:
    """One whole VP8 frame as the encoder made it (payload descriptors removed)."""

    __slots__ = ("arrival", "data", "keyframe", "pts", "timestamp")

    def __init__(self, data: bytes, timestamp: int, keyframe: bool, arrival: float) -> None:
        self.data = data
        self.timestamp = timestamp  # RTP, 90 kHz
        self.keyframe = keyframe
        self.arrival = arrival  # when its first packet came
        self.pts = 0  # on the recording clock, set by the recorder

    def __repr__(self) -> str:
        return f"Vp8Frame({len(self.data)} bytes, ts={self.timestamp}, key={self.keyframe})"


def keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 section 9.1): a 3-byte frame
    tag, the start code 9d 01 2a, then two 16-bit little-endian fields whose top 2 bits
    are a scaling hint."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = (frame[6] | frame[7] << 8) & 0x3FFF
    height = (frame[8] | frame[9] << 8) & 0x3FFF
    return (width, height) if width and height else None


class Vp8Assembler:
    """Packets of one VP8 stream, in sequence order, to whole frames.

    A frame starts with the packet that starts partition 0 and ends with the marker bit (or
    when the next frame starts right after it). A lost packet breaks its frame and, since
    later frames refer to it, everything up to the next keyframe: ``waiting`` says so, and
    the recorder asks the publisher for one.
    """

    __slots__ = ("_arrival", "_keyframe", "_next", "_parts", "_timestamp", "broken", "waiting")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._timestamp = 0
        self._keyframe = False
        self._arrival = 0.0
        self._next: int | None = None
        self.waiting = True
        self.broken = 0  # frames given up because a packet was lost

    def reset(self) -> None:
        """A new source: nothing carries over, and it must start at a keyframe."""
        self._parts = []
        self._next = None
        self.waiting = True

    def push(
        self,
        sequence: int,
        timestamp: int,
        marker: bool,
        info: Vp8Info,
        payload: bytes,
        arrival: float,
        out: list[Vp8Frame],
    ) -> None:
        """One packet; ``payload`` is what follows its descriptor. Whole frames go to ``out``."""
        if self._next is not None and sequence != self._next:
            self._lost()
        self._next = (sequence + 1) & 0xFFFF
        if info.start_of_partition and info.partition_id == 0:
            if self._parts:
                # The last frame's marker packet was the one before this: it is whole.
                self._finish(out)
            if self.waiting and not info.is_keyframe:
                return
            self.waiting = False
            self._parts = [payload]
            self._timestamp = timestamp
            self._keyframe = info.is_keyframe
            self._arrival = arrival
        elif self._parts:
            if timestamp != self._timestamp:
                self._lost()  # a new frame without its first packet
                return
            self._parts.append(payload)
        else:
            return  # the rest of a frame we are not collecting
        if marker:
            self._finish(out)

    def _finish(self, out: list[Vp8Frame]) -> None:
        out.append(Vp8Frame(b"".join(self._parts), self._timestamp, self._keyframe, self._arrival))
        self._parts = []

    def _lost(self) -> None:
        if self._parts:
            self.broken += 1
            self._parts = []
        self.waiting = True


class ClockMap:
    """One RTP stream's timestamps on the recording clock (both at ``rate`` Hz).

    The stream is anchored where its first packet arrived, and then follows its own
    timestamps, so jitter does not reach the file. If it drifts from the arrival times by
    more than ``resync`` ticks (the sender restarted its clock, or paused), it is anchored
    again.
    """

    __slots__ = ("_base", "_base_ext", "_ext", "_last", "_resync")

    def __init__(self, resync: int) -> None:
        self._resync = resync
        self._last: int | None = None  # last RTP timestamp seen
        self._ext = 0  # the same, unwrapped
        self._base = 0  # recording time of the anchor
        self._base_ext = 0  # unwrapped RTP time of the anchor

    def map(self, timestamp: int, arrival: int) -> int:
        """The recording time of ``timestamp``; ``arrival`` is when its packet came, in ticks
        of the recording clock."""
        last = self._last
        if last is None:
            self._ext = timestamp
            self._base, self._base_ext = arrival, timestamp
        else:
            self._ext += ((timestamp - last + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000
        self._last = timestamp
        position = self._base + self._ext - self._base_ext
        if abs(position - arrival) > self._resync:
            self._base, self._base_ext = arrival, self._ext
            position = arrival
        return position
