"""sfu.rtcp: every builder round-trips through the parser; aiortc's parser reads what we
build and we read what aiortc builds; transport-cc against hand-computed vectors (the
draft's chunk examples and a packet sent by Chrome); no input makes the parser raise."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtp import (
    RtcpByePacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.rtcp import (
    Bye,
    Fir,
    Nack,
    Pli,
    ReceiverReport,
    Remb,
    ReportBlock,
    Sdes,
    SdesChunk,
    SenderReport,
    TransportCc,
    TransportCcRecorder,
    Unknown,
    build_bye,
    build_fir,
    build_nack,
    build_pli,
    build_remb,
    build_rr,
    build_sdes_cname,
    build_sr,
    build_transport_cc,
    parse_rtcp,
)
from sfu.rtcp import (
    RtcpPacket as OurPacket,
)

hsettings = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u32 = st.integers(0, 0xFFFFFFFF)
u16 = st.integers(0, 0xFFFF)

report_blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-(2**23), 2**23 - 1),
    highest_seq=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)


def only(data: bytes) -> OurPacket:
    packets = parse_rtcp(data)
    assert len(packets) == 1, packets
    return packets[0]


# -- round trips ------------------------------------------------------------------------


@hsettings
@given(u32, st.integers(0, 2**64 - 1), u32, u32, u32, st.lists(report_blocks, max_size=31))
def test_sr_round_trip(
    ssrc: int, ntp: int, rtp_ts: int, packets: int, octets: int, reports: list[ReportBlock]
) -> None:
    value = SenderReport(ssrc, ntp, rtp_ts, packets, octets, reports)
    assert only(build_sr(ssrc, ntp, rtp_ts, packets, octets, reports)) == value


@hsettings
@given(u32, st.lists(report_blocks, max_size=31))
def test_rr_round_trip(ssrc: int, reports: list[ReportBlock]) -> None:
    assert only(build_rr(ssrc, reports)) == ReceiverReport(ssrc, reports)


@hsettings
@given(u32, u32)
def test_pli_round_trip(sender: int, media: int) -> None:
    assert only(build_pli(sender, media)) == Pli(sender, media)


@hsettings
@given(u32, st.lists(st.tuples(u32, st.integers(0, 255)), max_size=10))
def test_fir_round_trip(sender: int, entries: list[tuple[int, int]]) -> None:
    assert only(build_fir(sender, entries)) == Fir(sender, entries)


@st.composite
def nack_lists(draw: st.DrawFn) -> list[int]:
    """Distinct sequence numbers in stream order (possibly wrapping)."""
    start = draw(u16)
    offsets = draw(st.lists(st.integers(0, 3000), max_size=60, unique=True))
    return [(start + offset) & 0xFFFF for offset in sorted(offsets)]


@hsettings
@given(u32, u32, nack_lists())
def test_nack_round_trip(sender: int, media: int, lost: list[int]) -> None:
    assert only(build_nack(sender, media, lost)) == Nack(sender, media, lost)


def test_nack_compression() -> None:
    data = build_nack(1, 2, [65535, 0, 1, 15, 16, 40])
    assert data[12:] == struct.pack("!HHHHHH", 65535, 0x8003, 16, 0, 40, 0)
    assert only(data) == Nack(1, 2, [65535, 0, 1, 15, 16, 40])
    assert only(build_nack(1, 2, [])) == Nack(1, 2, [])


@hsettings
@given(
    u32,
    st.integers(0, 0x3FFFF),
    st.integers(0, 63),
    st.lists(u32, max_size=255),
)
def test_remb_round_trip(sender: int, mantissa: int, exponent: int, ssrcs: list[int]) -> None:
    bitrate = mantissa << exponent
    assert only(build_remb(sender, bitrate, ssrcs)) == Remb(sender, bitrate, ssrcs)


def test_remb_rounds_large_bitrates_down() -> None:
    value = only(build_remb(1, 1_000_001, [2]))
    assert isinstance(value, Remb)
    assert 1_000_001 - 8 < value.bitrate <= 1_000_001


@hsettings
@given(u32, st.text(max_size=80))
def test_sdes_round_trip(ssrc: int, cname: str) -> None:
    value = only(build_sdes_cname(ssrc, cname))
    assert value == Sdes([SdesChunk(ssrc, [(1, cname.encode())])])
    assert isinstance(value, Sdes)
    assert value.chunks[0].cname == cname


def test_builders_refuse_more_than_31_items() -> None:
    with pytest.raises(ValueError):
        build_rr(1, [BLOCK] * 32)
    with pytest.raises(ValueError):
        build_bye(list(range(32)))


@hsettings
@given(st.lists(u32, max_size=31))
def test_bye_round_trip(ssrcs: list[int]) -> None:
    assert only(build_bye(ssrcs)) == Bye(ssrcs)


@st.composite
def transport_ccs(draw: st.DrawFn) -> TransportCc:
    base = draw(u16)
    count = draw(st.integers(1, 300))
    received = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    packets: list[tuple[int, int | None]] = []
    arrival = 0
    for index, got in enumerate(received):
        if got:
            arrival += 250 * draw(st.one_of(st.integers(0, 255), st.integers(-0x8000, 0x7FFF)))
            packets.append(((base + index) & 0xFFFF, arrival))
        else:
            packets.append(((base + index) & 0xFFFF, None))
    return TransportCc(
        draw(u32),
        draw(u32),
        base,
        draw(st.integers(0, 0xFFFFFF)),
        draw(st.integers(0, 255)),
        packets,
    )


@hsettings
@given(transport_ccs())
def test_transport_cc_round_trip(value: TransportCc) -> None:
    data = build_transport_cc(
        value.sender_ssrc,
        value.media_ssrc,
        value.base_seq,
        value.reference_time,
        value.fb_pkt_count,
        value.packets,
    )
    assert len(data) % 4 == 0
    assert only(data) == value


def test_compound_packets() -> None:
    compound = b"".join(
        (
            build_rr(1, []),
            build_sdes_cname(1, "parta"),
            build_remb(1, 300_000, [5, 6]),
            build_pli(1, 5),
        )
    )
    assert parse_rtcp(compound) == [
        ReceiverReport(1, []),
        Sdes([SdesChunk(1, [(1, b"parta")])]),
        Remb(1, 300_000, [5, 6]),
        Pli(1, 5),
    ]


def test_unknown_packets_are_kept_and_skipped() -> None:
    app = b"\x81\xcc\x00\x02" + b"\x00\x00\x00\x01" + b"NAME"
    sli = b"\x82\xce\x00\x03" + bytes(12)  # PSFB FMT 2 (SLI)
    tmmbr = b"\x83\xcd\x00\x02" + bytes(8)  # RTPFB FMT 3
    afb = b"\x8f\xce\x00\x03" + bytes(8) + b"ABCD"  # application feedback, not REMB
    packets = parse_rtcp(app + sli + tmmbr + afb + build_pli(1, 2))
    assert packets == [
        Unknown(204, 1, app[4:]),
        Unknown(206, 2, bytes(12)),
        Unknown(205, 3, bytes(8)),
        Unknown(206, 15, bytes(8) + b"ABCD"),
        Pli(1, 2),
    ]


def test_padding_bit() -> None:
    pli = bytearray(build_pli(1, 2) + b"\x00\x00\x00\x04")
    pli[0] |= 0x20
    pli[3] += 1
    assert parse_rtcp(bytes(pli)) == [Pli(1, 2)]


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\xc8\x00\x01" + bytes(4),  # SR too short for its sender info
        b"\x81\xc9\x00\x01" + bytes(4),  # RR claiming a block it lacks
        b"\x81\xcd\x00\x01" + bytes(4),  # NACK without media SSRC
        b"\x81\xce\x00\x01" + bytes(4),  # PLI without media SSRC
        b"\x8f\xce\x00\x04" + bytes(8) + b"REMB\x02\x00\x00\x00",  # REMB missing ssrcs
        b"\x81\xca\x00\x02" + bytes(4) + b"\x01\x05ab",  # SDES item overruns
        b"\x81\xca\x00\x01" + bytes(4),  # SDES chunk without its end
        b"\x82\xcb\x00\x01" + bytes(4),  # BYE with 2 sources, room for 1
        b"\xa1\xce\x00\x02" + bytes(8),  # padding count 0
        b"\xa1\xce\x00\x02" + bytes(7) + b"\x09",  # padding longer than the packet
        b"\x8f\xcd\x00\x03" + bytes(12),  # transport-cc without reference time
        # transport-cc: 2 statuses, but only empty runs until the body ends
        b"\x8f\xcd\x00\x05" + bytes(8) + b"\x00\x00\x00\x02" + bytes(8),
        # transport-cc: a run of 3 received, room for only 2 deltas
        b"\x8f\xcd\x00\x05" + bytes(8) + b"\x00\x00\x00\x03" + bytes(4) + b"\x20\x03\x00\x00",
        # transport-cc: a large delta cut short by the padding
        b"\xaf\xcd\x00\x05" + bytes(8) + b"\x00\x00\x00\x01" + bytes(4) + b"\x40\x01\x00\x01",
    ],
)
def test_malformed_packets_are_skipped(data: bytes) -> None:
    assert parse_rtcp(data + build_pli(7, 8)) == [Pli(7, 8)]


def test_transport_cc_status_count_is_capped() -> None:
    # 9 run-length chunks claim 65535 lost packets in 40 bytes: skipped, not expanded.
    huge = tcc(b"\x1f\xff" * 9, base=0, count=65535)
    assert len(huge) == 40
    assert parse_rtcp(huge) == []
    limit = tcc(b"\x10\x00", base=0, count=4096)
    value = only(limit)
    assert isinstance(value, TransportCc) and len(value.packets) == 4096


def test_broken_framing_ends_the_compound() -> None:
    assert parse_rtcp(build_pli(1, 2) + b"\x40\xce\x00\x02" + build_pli(3, 4)) == [Pli(1, 2)]
    assert parse_rtcp(build_pli(1, 2) + b"\x81\xce\x00\x09" + bytes(8)) == [Pli(1, 2)]
    assert parse_rtcp(build_pli(1, 2) + b"\x81\xce") == [Pli(1, 2)]
    assert parse_rtcp(b"") == []


@hsettings
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    parse_rtcp(data)
    parse_rtcp(b"\x80" + data)


@hsettings
@given(
    st.sampled_from([200, 201, 202, 203, 205, 206]),
    st.integers(0, 31),
    st.binary(max_size=120),
    st.booleans(),
)
def test_well_framed_garbage_never_raises(
    packet_type: int, count: int, body: bytes, padded: bool
) -> None:
    body += bytes(-len(body) & 3)
    first = 0x80 | count | (0x20 if padded else 0)
    data = struct.pack("!BBH", first, packet_type, len(body) // 4) + body
    parse_rtcp(data + build_pli(1, 2))


@hsettings
@given(transport_ccs(), st.integers(0, 400), st.integers(0, 255))
def test_corrupted_transport_cc_never_raises(value: TransportCc, at: int, byte: int) -> None:
    data = bytearray(build_transport_cc(1, 2, value.base_seq, 0, 0, value.packets))
    if at < len(data):
        data[at] = byte
    parse_rtcp(bytes(data))
    parse_rtcp(bytes(data[: at % (len(data) + 1)]))


# -- aiortc agrees ----------------------------------------------------------------------

BLOCK = ReportBlock(0x11223344, 12, -3, 0x0001FFFF, 55, 0xAABBCCDD, 0x00010000)
THEIR_BLOCK = RtcpReceiverInfo(
    ssrc=0x11223344,
    fraction_lost=12,
    packets_lost=-3,
    highest_sequence=0x0001FFFF,
    jitter=55,
    lsr=0xAABBCCDD,
    dlsr=0x00010000,
)


def test_aiortc_reads_our_reports() -> None:
    [sr] = RtcpPacket.parse(build_sr(1, 0xE0000000_80000000, 90000, 10, 12000, [BLOCK]))
    assert isinstance(sr, RtcpSrPacket)
    assert sr.ssrc == 1
    assert sr.sender_info == RtcpSenderInfo(0xE0000000_80000000, 90000, 10, 12000)
    assert sr.reports == [THEIR_BLOCK]
    [rr] = RtcpPacket.parse(build_rr(2, [BLOCK, BLOCK]))
    assert isinstance(rr, RtcpRrPacket)
    assert (rr.ssrc, rr.reports) == (2, [THEIR_BLOCK, THEIR_BLOCK])


def test_we_read_aiortc_reports() -> None:
    sr = RtcpSrPacket(ssrc=1, sender_info=RtcpSenderInfo(2**63, 3, 4, 5), reports=[THEIR_BLOCK])
    rr = RtcpRrPacket(ssrc=2, reports=[THEIR_BLOCK])
    assert parse_rtcp(bytes(sr) + bytes(rr)) == [
        SenderReport(1, 2**63, 3, 4, 5, [BLOCK]),
        ReceiverReport(2, [BLOCK]),
    ]


def test_aiortc_reads_our_feedback() -> None:
    packets = RtcpPacket.parse(
        build_pli(1, 2)
        + build_fir(3, [(4, 5), (6, 7)])
        + build_nack(8, 9, [100, 101, 117, 200])
        + build_remb(10, 2_000_000, [11, 12])
    )
    pli, fir, nack, remb = packets
    assert isinstance(pli, RtcpPsfbPacket)
    assert (pli.fmt, pli.ssrc, pli.media_ssrc, pli.fci) == (1, 1, 2, b"")
    assert isinstance(fir, RtcpPsfbPacket)
    assert (fir.fmt, fir.ssrc, fir.media_ssrc) == (4, 3, 0)
    assert fir.fci == struct.pack("!IB3xIB3x", 4, 5, 6, 7)
    assert isinstance(nack, RtcpRtpfbPacket)
    assert (nack.fmt, nack.ssrc, nack.media_ssrc) == (1, 8, 9)
    assert nack.lost == [100, 101, 117, 200]
    assert isinstance(remb, RtcpPsfbPacket)
    assert (remb.fmt, remb.ssrc, remb.media_ssrc) == (15, 10, 0)
    assert unpack_remb_fci(remb.fci) == (2_000_000, [11, 12])


def test_we_read_aiortc_feedback() -> None:
    data = b"".join(
        (
            bytes(RtcpPsfbPacket(fmt=1, ssrc=1, media_ssrc=2)),
            bytes(RtcpPsfbPacket(fmt=4, ssrc=3, media_ssrc=0, fci=struct.pack("!IB3x", 4, 5))),
            bytes(RtcpRtpfbPacket(fmt=1, ssrc=8, media_ssrc=9, lost=[100, 101, 105, 140])),
            bytes(RtcpPsfbPacket(fmt=15, ssrc=10, media_ssrc=0, fci=pack_remb_fci(500_000, [11]))),
            bytes(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=12, items=[(1, b"cname")])])),
            bytes(RtcpByePacket(sources=[13, 14])),
        )
    )
    assert parse_rtcp(data) == [
        Pli(1, 2),
        Fir(3, [(4, 5)]),
        Nack(8, 9, [100, 101, 105, 140]),
        Remb(10, 500_000, [11]),
        Sdes([SdesChunk(12, [(1, b"cname")])]),
        Bye([13, 14]),
    ]


def test_aiortc_reads_our_sdes_and_bye() -> None:
    sdes, bye = RtcpPacket.parse(build_sdes_cname(5, "abc") + build_bye([1, 2]))
    assert isinstance(sdes, RtcpSdesPacket)
    assert sdes.chunks == [RtcpSourceInfo(ssrc=5, items=[(1, b"abc")])]
    assert isinstance(bye, RtcpByePacket)
    assert bye.sources == [1, 2]


# -- transport-cc vectors ---------------------------------------------------------------


def tcc(chunks_and_deltas: bytes, base: int, count: int, reference: int = 0) -> bytes:
    body = struct.pack("!IIHHI", 1, 2, base, count, reference << 8) + chunks_and_deltas
    body += bytes(-len(body) & 3)
    return struct.pack("!BBH", 0x8F, 205, len(body) // 4) + body


def test_draft_run_length_chunk_example() -> None:
    # draft-holmer-...-01 section 3.1.3, example 1: a run of 221 "not received".
    value = only(tcc(b"\x00\xdd", base=10, count=221))
    assert isinstance(value, TransportCc)
    assert value.packets == [((10 + i) & 0xFFFF, None) for i in range(221)]


def test_draft_run_length_chunk_with_reserved_symbol_is_malformed() -> None:
    # Section 3.1.3, example 2 uses the symbol 11, which -01 reserves.
    assert parse_rtcp(tcc(b"\x60\x18", base=0, count=24)) == []


def test_draft_one_bit_status_vector_example() -> None:
    # Section 3.1.4, example 1: 0x9F1C = not received, 5 x received, 3 x not received,
    # 3 x received, 2 x not received; each received packet has a small delta.
    deltas = bytes([4, 1, 1, 2, 3, 255, 0, 10])
    value = only(tcc(b"\x9f\x1c" + deltas, base=65530, count=14, reference=2))
    assert isinstance(value, TransportCc)
    assert value.reference_time == 2
    assert value.packets == [
        (65530, None),
        (65531, 1000),
        (65532, 1250),
        (65533, 1500),
        (65534, 2000),
        (65535, 2750),
        (0, None),
        (1, None),
        (2, None),
        (3, 66500),
        (4, 66500),
        (5, 69000),
        (6, None),
        (7, None),
    ]


def test_two_bit_status_vector_with_large_and_negative_deltas() -> None:
    # Hand-encoded: symbols small, lost, large, large = 01 00 10 10 00 00 00 → 0xD280.
    # Deltas: +4 ticks, +280 ticks (0x0118), -2 ticks (0xFFFE).
    data = bytes.fromhex("8fcd0006 00000001 00000002 fffe0004 00000107 d280 04 0118 fffe 00")
    value = only(data)
    assert value == TransportCc(
        1, 2, 65534, 1, 7, [(65534, 1000), (65535, None), (0, 71000), (1, 70500)]
    )
    assert (
        build_transport_cc(
            1, 2, 65534, 1, 7, [(65534, 1000), (65535, None), (0, 71000), (1, 70500)]
        )
        == data
    )


def test_two_bit_status_vector_with_reserved_symbol_is_malformed() -> None:
    # 11 as the first symbol (0xF000: 11 11 00 ...) and as the last (0xC003).
    assert parse_rtcp(tcc(b"\xf0\x00" + bytes(4), base=0, count=7)) == []
    assert parse_rtcp(tcc(b"\xc0\x03" + bytes(4), base=0, count=7)) == []
    assert parse_rtcp(tcc(b"\xc0\x01\x05", base=0, count=7)) != []  # 01 last: fine


def test_chrome_packet() -> None:
    # A transport-cc packet sent by Chrome (from pion/rtcp's tests): padding bit set, one
    # received packet 37 ms after the reference time.
    data = bytes.fromhex("afcd0005 fa17fa17 43032fa0 00990001 3de80217 20019401")
    assert only(data) == TransportCc(0xFA17FA17, 0x43032FA0, 153, 4057090, 23, [(153, 37000)])


def test_chunk_encoding_choices() -> None:
    # 20 received in a row: one run-length chunk.
    packets: list[tuple[int, int | None]] = [(i, i * 250) for i in range(20)]
    data = build_transport_cc(1, 2, 0, 0, 0, packets)
    assert data[20:22] == b"\x20\x14"
    # Alternating received/lost: one-bit vectors (14 symbols per chunk).
    packets = [(i, i * 250 if i % 2 == 0 else None) for i in range(28)]
    data = build_transport_cc(1, 2, 0, 0, 0, packets)
    assert data[20:24] == b"\xaa\xaa\xaa\xaa"
    assert only(data) == TransportCc(1, 2, 0, 0, 0, packets)


# -- the recorder -----------------------------------------------------------------------


def feedback(recorder: TransportCcRecorder) -> list[TransportCc]:
    values = []
    for data in recorder.build(1, 2):
        value = only(data)
        assert isinstance(value, TransportCc)
        values.append(value)
    return values


def arrivals(values: list[TransportCc]) -> dict[int, int | None]:
    """Sequence → absolute arrival (µs, rounded down to 250), across feedback packets."""
    found: dict[int, int | None] = {}
    for value in values:
        for seq, delta in value.packets:
            found[seq] = None if delta is None else value.reference_time * 64000 + delta
    return found


def test_recorder_reports_arrivals_and_losses() -> None:
    recorder = TransportCcRecorder()
    assert recorder.build(1, 2) == []
    for seq, at in ((10, 1_000_100), (11, 1_005_000), (13, 1_004_000), (14, 9_000_000)):
        recorder.record(seq, at)
    values = feedback(recorder)
    assert len(recorder) == 0
    assert arrivals(values) == {
        10: 1_000_000,
        11: 1_005_000,
        12: None,
        13: 1_004_000,
        14: 9_000_000,
    }
    assert [v.fb_pkt_count for v in values] == list(range(len(values)))
    # The next feedback starts right after the last one, reporting the loss of 15.
    recorder.record(16, 9_010_000)
    recorder.record(14, 9_020_000)  # already reported: ignored
    [value] = feedback(recorder)
    assert value.base_seq == 15
    assert value.packets == [(15, None), (16, 9_010_000 - value.reference_time * 64000)]
    assert value.fb_pkt_count == len(values)


def test_recorder_splits_long_and_wide_feedback() -> None:
    recorder = TransportCcRecorder(max_statuses=100)
    for seq in range(250):
        recorder.record((65500 + seq) & 0xFFFF, 5_000_000 + seq * 1000)
    recorder.record(250 - 36, 30_000_000)  # 25 s later: beyond a 16-bit delta
    values = feedback(recorder)
    assert len(values) >= 4
    assert all(len(v.packets) <= 100 for v in values)
    found = arrivals(values)
    expected: dict[int, int | None] = {
        (65500 + seq) & 0xFFFF: 5_000_000 + seq * 1000 for seq in range(250)
    }
    expected[250 - 36] = 30_000_000
    assert found == expected


def test_recorder_wraps_and_orders() -> None:
    recorder = TransportCcRecorder()
    recorder.record(1, 2_000_000)
    recorder.record(65535, 1_999_000)  # before 1, across the wrap
    recorder.record(0, 2_001_000)
    [value] = feedback(recorder)
    assert value.base_seq == 65535
    assert arrivals([value]) == {65535: 1_999_000, 0: 2_001_000, 1: 2_000_000}


def test_recorder_skips_a_huge_gap() -> None:
    recorder = TransportCcRecorder(max_statuses=50)
    recorder.record(0, 1000)
    [first] = feedback(recorder)
    recorder.record(1000, 2000)  # 999 lost since: too many to list
    [value] = feedback(recorder)
    assert value.base_seq == 1000
    assert value.packets[0][0] == 1000 and first.base_seq == 0


def test_recorder_is_bounded_and_keeps_the_newest() -> None:
    recorder = TransportCcRecorder(max_recorded=100)
    for seq in range(1000):
        recorder.record(seq, seq * 1000)
        assert len(recorder) <= 100
    # Feedback stalled: what is reported is the newest arrivals, each at its own time.
    found = arrivals(feedback(recorder))
    received = {seq: at for seq, at in found.items() if at is not None}
    assert set(range(950, 1000)) <= set(received)
    assert all(received[seq] == seq * 1000 // 250 * 250 for seq in received)


@hsettings
@given(
    u16,
    st.lists(st.tuples(st.integers(0, 5), st.integers(-20_000, 100_000)), max_size=300),
)
def test_recorder_round_trip(start: int, steps: list[tuple[int, int]]) -> None:
    recorder = TransportCcRecorder(max_statuses=120)
    seq = start
    now = 50_000_000
    recorded: dict[int, int] = {}
    for gap, elapsed in steps:
        seq = (seq + gap) & 0xFFFF
        now = max(0, now + elapsed)
        recorder.record(seq, now)
        recorded.setdefault(seq, now)
    values = feedback(recorder)
    found = arrivals(values)
    assert {s: t for s, t in found.items() if t is not None} == {
        s: t // 250 * 250 for s, t in recorded.items()
    }
    for value in values:
        assert len(value.packets) <= 120
