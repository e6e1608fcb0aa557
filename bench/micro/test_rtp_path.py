"""The RTP forwarding path without the crypto and the socket: parse a 1200-byte VP8 packet
with three header extensions, read its payload descriptor, and rewrite it for one
subscriber (SSRC, sequence number, timestamp, extensions, picture id, TL0PICIDX).

Run: uv run pytest bench/micro/test_rtp_path.py --benchmark-enable --benchmark-only
"""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

from sfu.rtp import (
    ExtensionPacker,
    copy_payload_into,
    encode_abs_send_time,
    encode_transport_seq,
    parse_rtp,
    read_extension,
    rewrite,
    write_header,
)
from sfu.seq import PictureIdMapper, SeqManager, TimestampMapper
from sfu.vp8 import parse_vp8, patch_vp8_descriptor, vp8_descriptor

MID, ABS_SEND_TIME, TRANSPORT_CC = 4, 2, 3  # the ids Chromium offers

HEADER = write_header(
    96,
    False,
    41000,
    3_000_000_000,
    0x1234ABCD,
    [(MID, b"0"), (ABS_SEND_TIME, encode_abs_send_time(12.5)), (TRANSPORT_CC, b"\x10\x01")],
)
# X, S, PID 0; I L T; 15-bit picture id 0x1234; TL0PICIDX 7; TID 0, Y; then a VP8 keyframe
DESCRIPTOR = b"\x90\xe0\x92\x34\x07\x20"
PACKET = HEADER + DESCRIPTOR + b"\x50" + bytes(1200 - len(HEADER) - len(DESCRIPTOR) - 1)
assert len(PACKET) == 1200


def test_parse_rtp(benchmark: BenchmarkFixture) -> None:
    header = benchmark(parse_rtp, PACKET)
    assert header is not None and header.sequence == 41000


def test_read_transport_seq(benchmark: BenchmarkFixture) -> None:
    header = parse_rtp(PACKET)
    assert header is not None
    assert benchmark(read_extension, PACKET, header, TRANSPORT_CC) == b"\x10\x01"


def test_parse_vp8(benchmark: BenchmarkFixture) -> None:
    header = parse_rtp(PACKET)
    assert header is not None
    info = benchmark(parse_vp8, PACKET, header.payload_start, header.payload_end)
    assert info is not None and info.is_keyframe and info.picture_id == 0x1234


def test_rewrite(benchmark: BenchmarkFixture) -> None:
    """New SSRC, sequence number, timestamp and extensions, picture id and TL0PICIDX."""
    header = parse_rtp(PACKET)
    assert header is not None
    info = parse_vp8(PACKET, header.payload_start, header.payload_end)
    assert info is not None

    def run() -> bytes:
        return rewrite(
            PACKET,
            header,
            ssrc=0xCAFEBABE,
            sequence=7,
            timestamp=90000,
            payload_type=96,
            extensions=[
                (MID, b"3"),
                (ABS_SEND_TIME, encode_abs_send_time(1.25)),
                (TRANSPORT_CC, encode_transport_seq(501)),
            ],
            descriptor=vp8_descriptor(PACKET, header.payload_start, info, 300, 9),
        )

    out = benchmark(run)
    assert len(out) == 1200
    again = parse_rtp(out)
    assert again is not None and again.ssrc == 0xCAFEBABE


def test_rewrite_packed(benchmark: BenchmarkFixture) -> None:
    """The same as the send path does it, into the buffer the packet is protected in:
    header and extension block in one ``ExtensionPacker`` call, the payload copied after
    it, picture id and TL0PICIDX patched there."""
    header = parse_rtp(PACKET)
    assert header is not None
    info = parse_vp8(PACKET, header.payload_start, header.payload_end)
    assert info is not None
    packer = ExtensionPacker(
        mid_id=MID, mid="3", abs_send_time_id=ABS_SEND_TIME, transport_cc_id=TRANSPORT_CC
    )
    out = memoryview(bytearray(1500))

    def run() -> int:
        pos = packer.pack_header_into(out, 96, 7, 90000, 0xCAFEBABE, 501, 1.25)
        size = copy_payload_into(out, pos, PACKET, header)
        patch_vp8_descriptor(out, pos, info, 300, 9)
        return size

    assert benchmark(run) == 1200


def test_forward_one_packet(benchmark: BenchmarkFixture) -> None:
    """Everything done per packet before SRTP: parse, descriptor, the three mappers and
    the rewrite as in ``test_rewrite_packed`` (parse and descriptor are shared by all
    consumers)."""
    seq = SeqManager(initial_output=0)
    timestamps = TimestampMapper(initial_output=0)
    pictures = PictureIdMapper(initial_picture_id=0, initial_tl0picidx=0)
    packer = ExtensionPacker(
        mid_id=MID, mid="3", abs_send_time_id=ABS_SEND_TIME, transport_cc_id=TRANSPORT_CC
    )
    transport_seq = 0
    out = memoryview(bytearray(1500))

    def run() -> int:
        nonlocal transport_seq
        header = parse_rtp(PACKET)
        assert header is not None
        info = parse_vp8(PACKET, header.payload_start, header.payload_end)
        assert info is not None and info.picture_id is not None and info.tl0picidx is not None
        sequence = seq.input(header.sequence)
        picture_id = pictures.picture_id(info.picture_id)
        assert sequence is not None and picture_id is not None
        transport_seq += 1
        pos = packer.pack_header_into(
            out, 96, sequence, timestamps.input(header.timestamp), 0xCAFEBABE, transport_seq, 1.25
        )
        size = copy_payload_into(out, pos, PACKET, header)
        patch_vp8_descriptor(out, pos, info, picture_id, pictures.tl0picidx(info.tl0picidx))
        return size

    assert benchmark(run) == 1200
