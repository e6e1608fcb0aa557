"""RFC 4571 framing for ICE-TCP (RFC 6544): each packet behind a 2-byte big-endian length.

STUN, DTLS and SRTP packets travel over the passive TCP candidate framed this way; once
unframed they are demultiplexed exactly like UDP datagrams. Sans-IO: ``FrameReader.feed``
takes whatever ``data_received`` got, at any split point, and returns the complete packets.

A peer that breaks the framing never makes ``feed`` raise: the reader is marked ``failed``,
returns nothing more, and the driver closes the connection.
"""

from __future__ import annotations

__all__ = ["MAX_FRAME", "FrameReader", "frame"]

MAX_FRAME = 0xFFFF  # what a 2-byte length can say


def frame(data: bytes | memoryview) -> bytes:
    """``data`` with its length prefix; raises ``ValueError`` beyond 65,535 bytes."""
    size = len(data)
    if size > MAX_FRAME:
        raise ValueError(f"a {size}-byte packet does not fit an RFC 4571 frame")
    return size.to_bytes(2, "big") + data


class FrameReader:
    """Reassembles frames from a TCP byte stream.

    At most ``2 + max_frame`` bytes stay buffered between calls: an incomplete frame that
    announces more than ``max_frame`` bytes fails the reader at once rather than being
    waited for. Zero-length frames carry nothing and are skipped.
    """

    __slots__ = ("_buffer", "failed", "max_frame")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        if not 0 < max_frame <= MAX_FRAME:
            raise ValueError("max_frame must be between 1 and 65535")
        self.max_frame = max_frame
        self.failed = False
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame waiting for the rest."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The frames completed by ``data``, in order (possibly none)."""
        if self.failed:
            return []
        buffer = self._buffer
        source: bytes | bytearray
        if buffer:
            buffer += data
            source = buffer
        else:
            source = data  # the common case: parse the chunk in place, copy only the tail
        frames: list[bytes] = []
        size = len(source)
        pos = 0
        with memoryview(source) as view:
            while size - pos >= 2:
                length = view[pos] << 8 | view[pos + 1]
                if length > self.max_frame:
                    self._fail()
                    return frames
                end = pos + 2 + length
                if end > size:
                    break
                if length:
                    frames.append(bytes(view[pos + 2 : end]))
                pos = end
        if source is buffer:
            del buffer[:pos]
        elif pos < size:
            buffer += data[pos:]
        return frames

    def _fail(self) -> None:
        self.failed = True
        self._buffer.clear()
