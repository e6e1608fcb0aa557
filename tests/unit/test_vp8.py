"""sfu.vp8: the VP8 payload descriptor and H.264 keyframe detection, checked against
aiortc's descriptor code and against real encoder output (libvpx and x264 through aiortc)."""

from __future__ import annotations

import fractions
import random
from functools import cache

import pytest
from aiortc.codecs import get_encoder
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import VideoFrame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.vp8 import (
    Vp8Info,
    h264_is_keyframe,
    parse_vp8,
    patch_vp8_descriptor,
    rewrite_vp8,
    vp8_descriptor,
)

hsettings = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def encoded_frames(mime_type: str) -> tuple[tuple[bytes, ...], ...]:
    """Three frames (a keyframe, then two delta frames) as RTP payloads. The picture is
    noise, so that even a loaded machine's encoder makes a keyframe of several packets."""
    encoder = get_encoder(RTCRtpCodecParameters(mimeType=mime_type, clockRate=90000))
    noise = random.Random(7)
    frames = []
    for index in range(3):
        frame = VideoFrame(width=320, height=240)
        for plane in frame.planes:
            plane.update(noise.randbytes(plane.buffer_size))
        frame.pts = index * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, _ = encoder.encode(frame)
        frames.append(tuple(payloads))
    return tuple(frames)


def info_of(payload: bytes, start: int = 0) -> Vp8Info:
    info = parse_vp8(payload, start, len(payload))
    assert info is not None
    return info


# -- VP8 --------------------------------------------------------------------------------


def test_libvpx_output() -> None:
    frames = encoded_frames("video/VP8")
    keyframe, *delta_frames = frames
    assert len(keyframe) > 1
    first = info_of(keyframe[0])
    assert first.is_keyframe
    assert first.start_of_partition and first.partition_id == 0
    assert first.picture_id_15bit
    for payload in keyframe[1:]:
        assert not info_of(payload).is_keyframe
    for frame in delta_frames:
        assert not any(info_of(p).is_keyframe for p in frame)
    picture_ids = [info_of(frame[0]).picture_id or 0 for frame in frames]
    assert picture_ids == [(picture_ids[0] + i) & 0x7FFF for i in range(3)]
    for frame in frames:
        for payload in frame:
            theirs, rest = VpxPayloadDescriptor.parse(payload)
            ours = info_of(payload)
            assert ours.picture_id == theirs.picture_id
            assert ours.start_of_partition == bool(theirs.partition_start)
            assert ours.partition_id == theirs.partition_id
            assert payload[ours.descriptor_len :] == rest


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        # X=0: one byte. S=1 PID=0.
        (
            VpxPayloadDescriptor(partition_start=1, partition_id=0),
            {
                "picture_id": None,
                "tl0picidx": None,
                "tid": None,
                "key_index": None,
                "descriptor_len": 1,
            },
        ),
        # 15-bit picture id, TL0PICIDX, TID 2 with Y, KEYIDX 5.
        (
            VpxPayloadDescriptor(
                partition_start=0,
                partition_id=3,
                picture_id=0x1234,
                tl0picidx=200,
                tid=(2, 1),
                keyidx=5,
            ),
            {
                "picture_id": 0x1234,
                "tl0picidx": 200,
                "tid": 2,
                "layer_sync": True,
                "key_index": 5,
                "descriptor_len": 6,
                "start_of_partition": False,
                "partition_id": 3,
            },
        ),
        # Only T: the TID/Y/KEYIDX byte is present, KEYIDX is not meaningful.
        (
            VpxPayloadDescriptor(partition_start=1, partition_id=0, tid=(1, 0)),
            {
                "picture_id": None,
                "tl0picidx": None,
                "tid": 1,
                "layer_sync": False,
                "key_index": None,
            },
        ),
        # Only K.
        (
            VpxPayloadDescriptor(partition_start=1, partition_id=0, keyidx=31),
            {"tid": None, "key_index": 31, "descriptor_len": 3},
        ),
    ],
)
def test_descriptors_written_by_aiortc(
    descriptor: VpxPayloadDescriptor, expected: dict[str, object]
) -> None:
    payload = bytes(descriptor) + b"\x10\x02\x00\x9d\x01\x2a"
    info = info_of(payload)
    for name, value in expected.items():
        assert getattr(info, name) == value, name
    assert payload[info.descriptor_len :] == b"\x10\x02\x00\x9d\x01\x2a"


def test_seven_bit_picture_id() -> None:
    payload = b"\x90\x80\x05\x00"  # X, S; I; M=0, picture id 5; VP8 header P=0
    info = info_of(payload)
    assert (info.picture_id, info.picture_id_15bit, info.descriptor_len) == (5, False, 3)
    assert info.is_keyframe
    assert VpxPayloadDescriptor.parse(payload)[0].picture_id == 5


def test_keyframe_rules() -> None:
    assert info_of(b"\x10\x00").is_keyframe  # S=1, PID=0, P=0
    assert not info_of(b"\x10\x01").is_keyframe  # P=1: interframe
    assert not info_of(b"\x00\x00").is_keyframe  # not the start of a partition
    assert not info_of(b"\x11\x00").is_keyframe  # partition 1
    assert not info_of(b"\x10").is_keyframe  # no payload header byte
    assert info_of(b"\x18\x00").partition_id == 0  # bit 3 is reserved, not part of PID


def test_offset_payload() -> None:
    data = b"RTPHEADER" + b"\x90\xc0\x81\x02\x07" + b"\x00rest"
    info = parse_vp8(data, 9, len(data))
    assert info is not None
    assert (info.picture_id, info.tl0picidx, info.descriptor_len) == (0x102, 7, 5)
    assert info.is_keyframe


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x80", b"\x80\x80", b"\x80\x80\x80", b"\x80\x40", b"\x80\x20", b"\x80\x10"],
)
def test_truncated_descriptors_are_none(payload: bytes) -> None:
    assert parse_vp8(payload, 0, len(payload)) is None


def test_end_bounds_the_descriptor() -> None:
    data = b"\x80\x80\x81\x02"
    assert parse_vp8(data, 0, 3) is None
    assert parse_vp8(data, 0, 4) is not None


def test_rewrite_15_bit() -> None:
    descriptor = VpxPayloadDescriptor(
        partition_start=1, partition_id=0, picture_id=0x7FFF, tl0picidx=255, tid=(1, 1)
    )
    payload = b"HDR" + bytes(descriptor) + b"\x00frame data" + b"\x00\x00\x03"
    info = parse_vp8(payload, 3, len(payload) - 3)
    assert info is not None
    out = rewrite_vp8(payload, 3, info, 0x1234, 17, end=len(payload) - 3)
    theirs, rest = VpxPayloadDescriptor.parse(out)
    assert (theirs.picture_id, theirs.tl0picidx, theirs.tid) == (0x1234, 17, (1, 1))
    assert rest == b"\x00frame data"
    again = info_of(out)
    assert again.picture_id_15bit and again.descriptor_len == info.descriptor_len
    assert again.is_keyframe


def test_rewrite_7_bit_keeps_its_form() -> None:
    payload = b"\x90\xc0\x05\x09\x00rest"
    out = rewrite_vp8(payload, 0, info_of(payload), 300, 256 + 4)
    info = info_of(out)
    assert (info.picture_id, info.picture_id_15bit, info.tl0picidx) == (300 % 128, False, 4)
    assert out[info.descriptor_len :] == b"\x00rest"
    short = b"\x90\x80\x05\x00rest"
    assert rewrite_vp8(short, 0, info_of(short), 300, 4) == b"\x90\x80\x2c\x00rest"
    assert vp8_descriptor(short, 0, info_of(short), None, 4) == b"\x90\x80\x05"


def test_rewrite_leaves_absent_or_unchanged_fields() -> None:
    payload = b"\x90\x40\x09\x00rest"  # TL0PICIDX only
    info = info_of(payload)
    assert rewrite_vp8(payload, 0, info, 77, None) == payload
    assert rewrite_vp8(payload, 0, info, None, 10) == b"\x90\x40\x0a\x00rest"
    plain = b"\x10\x00rest"
    assert rewrite_vp8(plain, 0, info_of(plain), 5, 5) == plain


@hsettings
@given(
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 0x7FFF)),
    st.one_of(st.none(), st.integers(0, 255)),
    st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(0, 1))),
    st.one_of(st.none(), st.integers(0, 31)),
    st.integers(0, 0x7FFF),
    st.integers(0, 255),
    st.binary(max_size=20),
)
def test_rewrite_agrees_with_aiortc(
    start: bool,
    picture_id: int | None,
    tl0picidx: int | None,
    tid: tuple[int, int] | None,
    keyidx: int | None,
    new_picture_id: int,
    new_tl0picidx: int,
    rest: bytes,
) -> None:
    descriptor = VpxPayloadDescriptor(int(start), 0, picture_id, tl0picidx, tid, keyidx)
    payload = bytes(descriptor) + rest
    info = info_of(payload)
    out = rewrite_vp8(payload, 0, info, new_picture_id, new_tl0picidx)
    theirs, their_rest = VpxPayloadDescriptor.parse(out)
    assert their_rest == rest
    assert theirs.picture_id == (None if picture_id is None else new_picture_id)
    assert theirs.tl0picidx == (None if tl0picidx is None else new_tl0picidx)
    assert theirs.tid == tid
    assert info_of(out).key_index == keyidx
    assert out == vp8_descriptor(payload, 0, info, new_picture_id, new_tl0picidx) + rest
    assert vp8_descriptor(payload, 0, info, None, None) == payload[: info.descriptor_len]
    only_tl0 = vp8_descriptor(payload, 0, info, None, new_tl0picidx)
    assert VpxPayloadDescriptor.parse(only_tl0)[0].picture_id == picture_id
    # The send path patches a copied payload in place: the same bytes.
    for new in ((new_picture_id, new_tl0picidx), (-1, new_tl0picidx), (new_picture_id, -1)):
        patched = bytearray(payload)
        patch_vp8_descriptor(memoryview(patched), 0, info, *new)
        assert patched == rewrite_vp8(payload, 0, info, *(None if v < 0 else v for v in new))


@hsettings
@given(st.binary(max_size=12), st.integers(0, 12), st.integers(0, 12))
def test_arbitrary_bytes_never_raise(data: bytes, start: int, end: int) -> None:
    end = min(end, len(data))
    info = parse_vp8(data, start, end)
    if info is not None:
        assert start + info.descriptor_len <= end
        rewrite_vp8(data, start, info, 1, 1, end=end)
    h264_is_keyframe(data, start, end)


# -- H.264 ------------------------------------------------------------------------------


def test_x264_output() -> None:
    keyframe, *delta_frames = encoded_frames("video/H264")
    assert keyframe[0][0] & 0x1F == 24  # STAP-A with SPS and PPS
    assert h264_is_keyframe(keyframe[0], 0, len(keyframe[0]))
    fragments = [p for p in keyframe if p[0] & 0x1F == 28]
    assert fragments
    # x264 may cut the IDR picture into several slices: each starts a run of fragments.
    starts = [bool(p[1] & 0x80) for p in fragments]
    assert starts[0] and not all(starts)
    assert [h264_is_keyframe(p, 0, len(p)) for p in fragments] == starts
    for frame in delta_frames:
        assert not any(h264_is_keyframe(p, 0, len(p)) for p in frame)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x65\x88", True),  # IDR slice
        (b"\x67\x42", True),  # SPS
        (b"\x68\xce", False),  # PPS
        (b"\x41\x9a", False),  # non-IDR slice
        (b"\x78\x00\x02\x68\xce\x00\x02\x65\x88", True),  # STAP-A: PPS, IDR
        (b"\x78\x00\x02\x68\xce\x00\x02\x41\x9a", False),  # STAP-A: PPS, non-IDR
        (b"\x78\x00\x09\x65", False),  # STAP-A with a truncated unit
        (b"\x78\x00\x00\x00\x01\x65", False),  # STAP-A with a zero-length unit
        (b"\x7c\x85\x88", True),  # FU-A start of an IDR
        (b"\x7c\x05\x88", False),  # FU-A continuation of an IDR
        (b"\x7c\x45\x88", False),  # FU-A end of an IDR
        (b"\x7c\x81\x88", False),  # FU-A start of a non-IDR slice
        (b"\x7c", False),  # FU-A without its header
        (b"", False),
    ],
)
def test_h264_keyframes(payload: bytes, expected: bool) -> None:
    assert h264_is_keyframe(b"xx" + payload + b"\x65", 2, 2 + len(payload)) is expected
