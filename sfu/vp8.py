"""Codec payload headers the SFU must read or rewrite: the VP8 payload descriptor (RFC 7741
section 4.2) and H.264 keyframe detection (RFC 6184).

Like ``sfu.rtp``, these work on the original packet bytes with offsets and never raise.
"""

from __future__ import annotations

import struct

__all__ = [
    "Vp8Info",
    "h264_is_keyframe",
    "parse_vp8",
    "patch_vp8_descriptor",
    "rewrite_vp8",
    "vp8_descriptor",
]

# X byte, I|L|T|K byte, picture id (15 or 7 bits), TL0PICIDX when present
_HEAD_15 = struct.Struct("!BBH")
_HEAD_15_TL0 = struct.Struct("!BBHB")
_HEAD_7 = struct.Struct("!BBB")
_HEAD_7_TL0 = struct.Struct("!BBBB")
_BYTES = [bytes((i,)) for i in range(256)]
_PACK_U16_INTO = struct.Struct("!H").pack_into


class Vp8Info:
    """The VP8 payload descriptor of one packet.

    ``descriptor_len`` bytes from the payload start are the descriptor; the VP8 payload
    (header) follows. ``picture_id_15bit`` tells the M bit, kept when rewriting.
    """

    __slots__ = (
        "descriptor_len",
        "is_keyframe",
        "key_index",
        "layer_sync",
        "partition_id",
        "picture_id",
        "picture_id_15bit",
        "start_of_partition",
        "tid",
        "tl0picidx",
    )

    def __init__(
        self,
        picture_id: int | None,
        picture_id_15bit: bool,
        tl0picidx: int | None,
        tid: int | None,
        layer_sync: bool,
        key_index: int | None,
        start_of_partition: bool,
        partition_id: int,
        descriptor_len: int,
        is_keyframe: bool,
    ) -> None:
        self.picture_id = picture_id
        self.picture_id_15bit = picture_id_15bit
        self.tl0picidx = tl0picidx
        self.tid = tid
        self.layer_sync = layer_sync
        self.key_index = key_index
        self.start_of_partition = start_of_partition
        self.partition_id = partition_id
        self.descriptor_len = descriptor_len
        self.is_keyframe = is_keyframe

    def __repr__(self) -> str:
        return (
            f"Vp8Info(picture_id={self.picture_id}, tl0picidx={self.tl0picidx}, "
            f"tid={self.tid}, S={int(self.start_of_partition)}, PID={self.partition_id}, "
            f"keyframe={self.is_keyframe})"
        )


def parse_vp8(data: bytes, start: int, end: int) -> Vp8Info | None:
    """The descriptor of the VP8 payload ``data[start:end]``, or None if it is truncated.

    A keyframe is the first packet of partition 0 whose VP8 payload header has P = 0.
    """
    if start >= end:
        return None
    first = data[start]
    pos = start + 1
    picture_id: int | None = None
    picture_id_15bit = False
    tl0picidx: int | None = None
    tid: int | None = None
    layer_sync = False
    key_index: int | None = None
    if first & 0x80:  # X: extended control bits follow
        if pos >= end:
            return None
        ext = data[pos]
        pos += 1
        if ext & 0x80:  # I: picture id
            if pos >= end:
                return None
            high = data[pos]
            if high & 0x80:  # M: 15 bits
                if pos + 2 > end:
                    return None
                picture_id = ((high & 0x7F) << 8) | data[pos + 1]
                picture_id_15bit = True
                pos += 2
            else:
                picture_id = high
                pos += 1
        if ext & 0x40:  # L: TL0PICIDX
            if pos >= end:
                return None
            tl0picidx = data[pos]
            pos += 1
        if ext & 0x30:  # T or K: one byte TID|Y|KEYIDX
            if pos >= end:
                return None
            byte = data[pos]
            pos += 1
            if ext & 0x20:
                tid = byte >> 6
                layer_sync = bool(byte & 0x20)
            if ext & 0x10:
                key_index = byte & 0x1F
    start_of_partition = bool(first & 0x10)
    partition_id = first & 0x07
    is_keyframe = start_of_partition and partition_id == 0 and pos < end and not data[pos] & 0x01
    return Vp8Info(
        picture_id,
        picture_id_15bit,
        tl0picidx,
        tid,
        layer_sync,
        key_index,
        start_of_partition,
        partition_id,
        pos - start,
        is_keyframe,
    )


def vp8_descriptor(
    data: bytes, start: int, info: Vp8Info, picture_id: int | None, tl0picidx: int | None
) -> bytes:
    """The payload descriptor at ``data[start:]`` with its picture id and TL0PICIDX
    replaced, for ``sfu.rtp.rewrite(..., descriptor=...)``.

    A field is replaced only if the descriptor has it and the new value is not None; the
    picture id keeps its 7- or 15-bit form (a 7-bit one is stored modulo 128), so the
    descriptor length never changes.
    """
    end = start + info.descriptor_len
    if info.picture_id is None or picture_id is None:
        if info.tl0picidx is None or tl0picidx is None:
            return data[start:end]
        pos = start + 2 if info.picture_id is None else start + 3 + info.picture_id_15bit
        return data[start:pos] + _BYTES[tl0picidx & 0xFF] + data[pos + 1 : end]
    if info.picture_id_15bit:
        if info.tl0picidx is None or tl0picidx is None:
            head = _HEAD_15.pack(data[start], data[start + 1], 0x8000 | (picture_id & 0x7FFF))
            return head + data[start + 4 : end]
        head = _HEAD_15_TL0.pack(
            data[start], data[start + 1], 0x8000 | (picture_id & 0x7FFF), tl0picidx & 0xFF
        )
        return head + data[start + 5 : end]
    if info.tl0picidx is None or tl0picidx is None:
        return _HEAD_7.pack(data[start], data[start + 1], picture_id & 0x7F) + data[start + 3 : end]
    head = _HEAD_7_TL0.pack(data[start], data[start + 1], picture_id & 0x7F, tl0picidx & 0xFF)
    return head + data[start + 4 : end]


def patch_vp8_descriptor(
    out: memoryview, start: int, info: Vp8Info, picture_id: int, tl0picidx: int
) -> None:
    """Replace the picture id and TL0PICIDX of the descriptor already copied to
    ``out[start:]`` (what ``vp8_descriptor`` does, in place; -1 leaves a field as it is)."""
    pos = start + 2
    if info.picture_id is not None:
        if info.picture_id_15bit:
            if picture_id >= 0:
                _PACK_U16_INTO(out, pos, 0x8000 | (picture_id & 0x7FFF))
            pos += 2
        else:
            if picture_id >= 0:
                out[pos] = picture_id & 0x7F
            pos += 1
    if tl0picidx >= 0 and info.tl0picidx is not None:
        out[pos] = tl0picidx & 0xFF


def rewrite_vp8(
    data: bytes,
    start: int,
    info: Vp8Info,
    picture_id: int | None,
    tl0picidx: int | None,
    end: int | None = None,
) -> bytes:
    """The payload ``data[start:end]`` with its descriptor rewritten (see ``vp8_descriptor``);
    ``end`` defaults to the end of ``data``."""
    return b"".join(
        (
            vp8_descriptor(data, start, info, picture_id, tl0picidx),
            data[start + info.descriptor_len : len(data) if end is None else end],
        )
    )


def h264_is_keyframe(data: bytes, start: int, end: int) -> bool:
    """Whether the H.264 payload ``data[start:end]`` carries an IDR slice or an SPS: as a
    single NAL unit, inside a STAP-A, or as the first fragment of an FU-A."""
    if start >= end:
        return False
    nal_type = data[start] & 0x1F
    if nal_type == 5 or nal_type == 7:
        return True
    if nal_type == 24:  # STAP-A: 16-bit size, NAL unit, ...
        pos = start + 1
        while pos + 2 < end:
            size = (data[pos] << 8) | data[pos + 1]
            pos += 2
            if size == 0 or pos + size > end:
                return False
            inner = data[pos] & 0x1F
            if inner == 5 or inner == 7:
                return True
            pos += size
        return False
    if nal_type == 28:  # FU-A: FU indicator, FU header (S|E|R|type)
        if start + 1 >= end:
            return False
        fu_header = data[start + 1]
        inner = fu_header & 0x1F
        return bool(fu_header & 0x80) and (inner == 5 or inner == 7)
    return False
