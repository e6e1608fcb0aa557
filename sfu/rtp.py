"""RTP on the hot path: parse a header once, read and write header extensions, rewrite a
packet for a subscriber, and keep recent packets for retransmission.

Everything here works on the original ``bytes`` with offsets (RFC 3550 section 5.1, header
extensions after RFC 8285): ``parse_rtp`` returns one small slotted view and never raises;
``rewrite_into`` writes the outgoing packet into the buffer it is protected in. Nothing here
logs or allocates per-packet dictionaries.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence

__all__ = [
    "EXT_ABS_SEND_TIME",
    "EXT_AUDIO_LEVEL",
    "EXT_MID",
    "EXT_REPAIRED_RID",
    "EXT_RID",
    "EXT_TRANSPORT_CC",
    "ExtensionPacker",
    "RtpCache",
    "RtpHeader",
    "copy_payload_into",
    "decode_abs_send_time",
    "decode_audio_level",
    "decode_mid",
    "decode_rid",
    "decode_transport_seq",
    "encode_abs_send_time",
    "encode_audio_level",
    "encode_extensions",
    "encode_mid",
    "encode_rid",
    "encode_transport_seq",
    "is_rtcp",
    "parse_rtp",
    "read_extension",
    "read_extensions",
    "rewrite",
    "rewrite_into",
    "write_header",
]

# Header extension URIs as negotiated in SDP (``a=extmap``).
EXT_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
EXT_RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
EXT_REPAIRED_RID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
EXT_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
EXT_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
EXT_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

_FIXED = struct.Struct("!BBHII")
_PACK_FIXED_INTO = _FIXED.pack_into
_PROFILE = struct.Struct("!HH")

ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE = 0x1000  # the low 4 bits ("appbits") are free for the application


class RtpHeader:
    """Where things are in one RTP packet; offsets index the ``bytes`` it was parsed from."""

    __slots__ = (
        "csrc_count",
        "extension_profile",
        "extensions_end",
        "extensions_start",
        "marker",
        "payload_end",
        "payload_start",
        "payload_type",
        "sequence",
        "ssrc",
        "timestamp",
    )

    def __init__(
        self,
        payload_type: int,
        marker: bool,
        sequence: int,
        timestamp: int,
        ssrc: int,
        csrc_count: int,
        extension_profile: int,
        extensions_start: int,
        extensions_end: int,
        payload_start: int,
        payload_end: int,
    ) -> None:
        self.payload_type = payload_type
        self.marker = marker
        self.sequence = sequence
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrc_count = csrc_count
        self.extension_profile = extension_profile
        self.extensions_start = extensions_start
        self.extensions_end = extensions_end
        self.payload_start = payload_start
        self.payload_end = payload_end

    def __repr__(self) -> str:
        return (
            f"RtpHeader(pt={self.payload_type}, marker={self.marker}, seq={self.sequence}, "
            f"ts={self.timestamp}, ssrc={self.ssrc}, payload={self.payload_start}:"
            f"{self.payload_end})"
        )


def parse_rtp(data: bytes) -> RtpHeader | None:
    """The header of one RTP packet, or None if it is not a well-formed one."""
    size = len(data)
    if size < 12:
        return None
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
    if first & 0xC0 != 0x80:
        return None
    csrc_count = first & 0x0F
    pos = 12 + 4 * csrc_count
    if first & 0x10:
        if size < pos + 4:
            return None
        profile, words = _PROFILE.unpack_from(data, pos)
        extensions_start = pos + 4
        pos = extensions_start + 4 * words
    else:
        profile = 0
        extensions_start = pos
    if pos > size:
        return None
    end = size
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or padding > size - pos:
            return None
        end -= padding
    return RtpHeader(
        second & 0x7F,
        second > 0x7F,
        sequence,
        timestamp,
        ssrc,
        csrc_count,
        profile,
        extensions_start,
        pos,
        pos,
        end,
    )


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: packet types 192-223 are RTCP (payload types 64-95 with M)."""
    return len(data) > 1 and 64 <= (data[1] & 0x7F) <= 95


# -- header extensions ---------------------------------------------------------------------


def read_extension(data: bytes, header: RtpHeader, ext_id: int) -> bytes | None:
    """The value of extension ``ext_id``, or None if absent or the block is malformed."""
    pos = header.extensions_start
    end = header.extensions_end
    profile = header.extension_profile
    if profile == ONE_BYTE_PROFILE:
        while pos < end:
            byte = data[pos]
            if byte == 0:  # padding
                pos += 1
                continue
            x_id = byte >> 4
            if x_id == 15:  # reserved: stop processing (RFC 8285 section 4.2)
                return None
            start = pos + 1
            pos = start + (byte & 0x0F) + 1
            if pos > end:
                return None
            if x_id == ext_id:
                return data[start:pos]
        return None
    if profile & 0xFFF0 == TWO_BYTE_PROFILE:
        while pos < end:
            x_id = data[pos]
            if x_id == 0:
                pos += 1
                continue
            if pos + 2 > end:
                return None
            start = pos + 2
            pos = start + data[pos + 1]
            if pos > end:
                return None
            if x_id == ext_id:
                return data[start:pos]
    return None


def read_extensions(data: bytes, header: RtpHeader) -> dict[int, bytes]:
    """Every extension element by id (for the first packet of a stream, not per packet).

    A malformed block yields the elements before the fault; of repeated ids, the first
    counts (as in ``read_extension``)."""
    found: dict[int, bytes] = {}
    pos = header.extensions_start
    end = header.extensions_end
    profile = header.extension_profile
    if profile == ONE_BYTE_PROFILE:
        while pos < end:
            byte = data[pos]
            if byte == 0:
                pos += 1
                continue
            if byte >> 4 == 15:
                break
            start = pos + 1
            pos = start + (byte & 0x0F) + 1
            if pos > end:
                break
            found.setdefault(byte >> 4, data[start:pos])
    elif profile & 0xFFF0 == TWO_BYTE_PROFILE:
        while pos < end:
            x_id = data[pos]
            if x_id == 0:
                pos += 1
                continue
            if pos + 2 > end:
                break
            start = pos + 2
            pos = start + data[pos + 1]
            if pos > end:
                break
            found.setdefault(x_id, data[start:pos])
    return found


_BYTES = [bytes((i,)) for i in range(256)]
_PADDING = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")
# A one-byte block holds at most 14 elements of 17 bytes: 60 words.
_ONE_BYTE_WORDS = [_PROFILE.pack(ONE_BYTE_PROFILE, words) for words in range(61)]


def _append_extensions(parts: list[bytes], extensions: Sequence[tuple[int, bytes]]) -> None:
    """Append an extension block (profile and length, elements, padding) to ``parts``."""
    start = len(parts)
    parts.append(b"")
    size = 0
    for x_id, value in extensions:
        length = len(value)
        if 0 < x_id < 15 and 0 < length <= 16:
            parts.append(_BYTES[(x_id << 4) | (length - 1)])
            parts.append(value)
            size += 1 + length
        else:
            break
    else:
        padding = -size & 3
        parts[start] = _ONE_BYTE_WORDS[(size + padding) >> 2]
        parts.append(_PADDING[padding])
        return
    del parts[start + 1 :]
    size = 0
    for x_id, value in extensions:
        parts.append(bytes((x_id, len(value))))
        parts.append(value)
        size += 2 + len(value)
    padding = -size & 3
    parts[start] = _PROFILE.pack(TWO_BYTE_PROFILE, (size + padding) >> 2)
    parts.append(_PADDING[padding])


def encode_extensions(extensions: Sequence[tuple[int, bytes]]) -> bytes:
    """The extension block (profile, length, elements, zero padding), or b"" if none.

    One-byte elements when every id is 1-14 and every value 1-16 bytes, else two-byte ones
    (ids 1-255, values up to 255 bytes)."""
    if not extensions:
        return b""
    parts: list[bytes] = []
    _append_extensions(parts, extensions)
    return b"".join(parts)


def write_header(
    payload_type: int,
    marker: bool,
    sequence: int,
    timestamp: int,
    ssrc: int,
    extensions: Sequence[tuple[int, bytes]],
) -> bytes:
    """A fresh RTP header (no CSRC, no padding) with the given extension elements."""
    parts = [
        _FIXED.pack(
            0x90 if extensions else 0x80,
            (0x80 if marker else 0) | payload_type,
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
    ]
    if extensions:
        _append_extensions(parts, extensions)
    return b"".join(parts)


def rewrite(
    data: bytes,
    header: RtpHeader,
    *,
    ssrc: int,
    sequence: int,
    timestamp: int,
    payload_type: int,
    extensions: Sequence[tuple[int, bytes]] | bytes,
    payload: bytes | None = None,
    descriptor: bytes | None = None,
) -> bytes:
    """A new packet from ``data``: new SSRC, sequence, timestamp, payload type and extension
    block; marker and CSRCs kept; padding dropped.

    ``extensions`` is a list of elements, or an encoded block (from ``encode_extensions``
    or ``ExtensionPacker.pack``).

    The payload is kept, or replaced by ``payload``, or has its first ``len(descriptor)``
    bytes replaced by ``descriptor`` (a rewritten payload descriptor, e.g. from
    ``sfu.vp8.vp8_descriptor``).
    """
    block = extensions if isinstance(extensions, bytes) else encode_extensions(extensions)
    body = len(payload) if payload is not None else header.payload_end - header.payload_start
    out = bytearray(12 + 4 * header.csrc_count + len(block) + body)
    rewrite_into(
        memoryview(out),
        data,
        header,
        ssrc=ssrc,
        sequence=sequence,
        timestamp=timestamp,
        payload_type=payload_type,
        extensions=block,
        payload=payload,
        descriptor=descriptor,
    )
    return bytes(out)


def rewrite_into(
    out: memoryview,
    data: bytes,
    header: RtpHeader,
    ssrc: int,
    sequence: int,
    timestamp: int,
    payload_type: int,
    extensions: bytes,
    payload: bytes | None = None,
    descriptor: bytes | None = None,
) -> int:
    """``rewrite`` into the start of ``out`` (the send path writes into
    ``SrtpPair.out``, saving a copy), with an encoded extension block: the packet's length.
    Arguments may be positional: keywords cost a little on a call made per packet.

    Raises ``ValueError`` if the packet does not fit in ``out``.
    """
    csrc_count = header.csrc_count
    _PACK_FIXED_INTO(
        out,
        0,
        (0x90 if extensions else 0x80) | csrc_count,
        (0x80 if header.marker else 0) | payload_type,
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )
    pos = 12 + 4 * csrc_count
    if csrc_count:
        out[12:pos] = data[12:pos]
    end = pos + len(extensions)
    out[pos:end] = extensions
    pos = end
    if payload is not None:
        end = pos + len(payload)
        out[pos:end] = payload
        return end
    if descriptor is not None:
        end = pos + len(descriptor)
        out[pos:end] = descriptor
        return copy_payload_into(out, end, data, header, len(descriptor))
    return copy_payload_into(out, pos, data, header)


def copy_payload_into(
    out: memoryview, pos: int, data: bytes, header: RtpHeader, skip: int = 0
) -> int:
    """Copy the payload of ``data`` (padding left out), but its first ``skip`` bytes, to
    ``out[pos:]``: where it ends. Raises ``ValueError`` if it does not fit."""
    start = header.payload_start + skip
    end = pos + header.payload_end - start
    # A slice assignment of another length than the target's raises: it does not fit.
    out[pos:end] = memoryview(data)[start : header.payload_end]
    return end


# -- values of the extensions we use ----------------------------------------------------


def encode_mid(mid: str) -> bytes:
    return mid.encode("ascii")


def decode_mid(value: bytes) -> str | None:
    """The MID (RFC 9143), or None if empty or not ASCII."""
    if not value or not value.isascii():
        return None
    return value.decode("ascii")


def encode_rid(rid: str) -> bytes:
    return rid.encode("ascii")


def decode_rid(value: bytes) -> str | None:
    """The RtpStreamId (RFC 8852), or None if empty or not ASCII."""
    if not value or not value.isascii():
        return None
    return value.decode("ascii")


def encode_abs_send_time(seconds: float) -> bytes:
    """abs-send-time: seconds as 6.18 fixed point, wrapping every 64 s."""
    return (int(seconds * 262144.0) & 0xFFFFFF).to_bytes(3, "big")


def decode_abs_send_time(value: bytes) -> float | None:
    """Seconds in [0, 64), or None if the value is not 3 bytes."""
    if len(value) != 3:
        return None
    return int.from_bytes(value, "big") / 262144.0


def encode_transport_seq(sequence: int) -> bytes:
    return (sequence & 0xFFFF).to_bytes(2, "big")


def decode_transport_seq(value: bytes) -> int | None:
    if len(value) != 2:
        return None
    return int.from_bytes(value, "big")


def encode_audio_level(voice: bool, level: int) -> bytes:
    """RFC 6464: the V flag and the level in -dBov (0 loudest, 127 silence)."""
    return bytes(((0x80 if voice else 0) | (min(max(level, 0), 127)),))


def decode_audio_level(value: bytes) -> tuple[bool, int] | None:
    """(voice activity, level in -dBov), or None if the value is empty."""
    if not value:
        return None
    byte = value[0]
    return byte > 0x7F, byte & 0x7F


class ExtensionPacker:
    """The extension block a consumer puts on every packet, packed by one precompiled
    ``struct`` call (several times faster than ``encode_extensions``).

    One-byte form: the MID (fixed per consumer), abs-send-time, the transport-wide
    sequence number and, if ``audio_level_id`` is given, the audio level. Ids must be
    1-14. An id of 0 means "not negotiated": that element's bytes are written as zeros,
    which receivers skip as padding (RFC 8285 section 4.2), so no per-packet branching.
    """

    __slots__ = (
        "_abs",
        "_abs_mask",
        "_audio",
        "_head",
        "_header_size",
        "_level",
        "_pack",
        "_pack_header_into",
        "_tseq",
        "_tseq_mask",
    )

    def __init__(
        self,
        *,
        mid_id: int,
        mid: str,
        abs_send_time_id: int,
        transport_cc_id: int,
        audio_level_id: int | None = None,
    ) -> None:
        for x_id in (mid_id, abs_send_time_id, transport_cc_id, audio_level_id or 0):
            if not 0 <= x_id <= 14:
                raise ValueError("one-byte header extension ids are 1-14")
        value = encode_mid(mid) if mid_id else b""
        if len(value) > 16:
            raise ValueError("a MID in a one-byte element is at most 16 bytes")
        mid_element = _BYTES[(mid_id << 4) | (len(value) - 1)] + value if value else b""
        self._audio = audio_level_id is not None
        size = len(mid_element) + 4 + 3 + (2 if self._audio else 0)
        padding = -size & 3
        self._head = _ONE_BYTE_WORDS[(size + padding) >> 2] + mid_element
        audio = "H" if self._audio else ""
        block = f"{len(self._head)}sIBH{audio}{padding}x"
        self._pack = struct.Struct(f"!{block}").pack
        # The fixed header (its first two bytes as one H) and the block in one call.
        header = struct.Struct(f"!HHII{block}")
        self._pack_header_into = header.pack_into
        self._header_size = header.size
        # abs-send-time: element header byte (length 3 → 2) and the 24-bit value in a word.
        self._abs = (abs_send_time_id << 28) | (2 << 24) if abs_send_time_id else 0
        self._abs_mask = 0xFFFFFF if abs_send_time_id else 0
        self._tseq = (transport_cc_id << 4) | 1 if transport_cc_id else 0
        self._tseq_mask = 0xFFFF if transport_cc_id else 0
        self._level = audio_level_id << 12 if audio_level_id else 0

    def pack(
        self, transport_seq: int, send_time: float, voice: bool = False, level: int = 127
    ) -> bytes:
        """The block for one packet: ``send_time`` in seconds (any epoch); for audio, the
        voice activity flag and ``level`` in -dBov (0-127)."""
        abs_word = self._abs | (int(send_time * 262144.0) & self._abs_mask)
        tseq = transport_seq & self._tseq_mask
        if self._audio:
            level_word = self._level | (0x80 if voice else 0) | (level & 0x7F)
            return self._pack(
                self._head, abs_word, self._tseq, tseq, level_word if self._level else 0
            )
        return self._pack(self._head, abs_word, self._tseq, tseq)

    def pack_header_into(
        self,
        out: memoryview,
        marker_payload_type: int,
        sequence: int,
        timestamp: int,
        ssrc: int,
        transport_seq: int,
        send_time: float,
        voice: bool = False,
        level: int = 127,
    ) -> int:
        """A whole RTP header with this block, written at the start of ``out`` (version 2,
        no padding, no CSRC; ``marker_payload_type`` is its second byte): its length.

        One ``struct`` call for what ``rewrite_into`` writes in three; the payload follows
        at the returned offset."""
        abs_word = self._abs | (int(send_time * 262144.0) & self._abs_mask)
        tseq = transport_seq & self._tseq_mask
        first = 0x9000 | marker_payload_type
        sequence &= 0xFFFF
        if self._audio:
            level_word = self._level | (0x80 if voice else 0) | (level & 0x7F)
            self._pack_header_into(
                out,
                0,
                first,
                sequence,
                timestamp,
                ssrc,
                self._head,
                abs_word,
                self._tseq,
                tseq,
                level_word if self._level else 0,
            )
        else:
            self._pack_header_into(
                out, 0, first, sequence, timestamp, ssrc, self._head, abs_word, self._tseq, tseq
            )
        return self._header_size


# -- retransmission cache -------------------------------------------------------------------


class RtpCache:
    """The last ``size`` packets of one stream by sequence number, for answering NACKs.

    A ring indexed by ``sequence & (size - 1)``; each slot remembers its sequence number, so
    an overwritten or never-stored packet reads as None. Slots skipped by a forward jump are
    cleared, so a packet 65536 sequence numbers old is never mistaken for a current one.
    """

    __slots__ = ("_data", "_highest", "_mask", "_sequences")

    def __init__(self, size: int = 1024) -> None:
        if size <= 0 or size & (size - 1) or size > 32768:
            raise ValueError("size must be a power of two up to 32768")
        self._mask = size - 1
        # An array: the garbage collector does not walk it (the packets' list it must).
        self._sequences = array("l", [-1]) * size
        self._data: list[bytes | None] = [None] * size
        self._highest = -1

    def put(self, sequence: int, data: bytes) -> None:
        mask = self._mask
        highest = self._highest
        if highest >= 0:
            delta = (sequence - highest) & 0xFFFF
            if delta == 0:
                pass
            elif delta < 0x8000:
                # Forward: forget what sat in the slots of the sequence numbers jumped over.
                if delta > 1:
                    sequences = self._sequences
                    items = self._data
                    for skipped in range(highest + 1, highest + min(delta, mask + 2)):
                        index = skipped & mask
                        sequences[index] = -1
                        items[index] = None
                self._highest = sequence
            elif 0x10000 - delta > mask:
                return  # too old: its slot belongs to a newer packet
        else:
            self._highest = sequence
        index = sequence & mask
        self._sequences[index] = sequence
        self._data[index] = data

    def get(self, sequence: int) -> bytes | None:
        index = sequence & self._mask
        if self._sequences[index] != sequence:
            return None
        return self._data[index]

    def clear(self) -> None:
        size = self._mask + 1
        self._sequences = array("l", [-1]) * size
        self._data = [None] * size
        self._highest = -1
