"""sfu.rtp: headers and extensions read like aiortc reads them, rewrites round-trip, the
retransmission cache, and no input makes the parser raise.

Packets are built with aiortc's ``RtpPacket`` and ``HeaderExtensionsMap`` (an independent
writer) using the extension ids Chromium offers."""

from __future__ import annotations

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.rtp import (
    EXT_ABS_SEND_TIME,
    EXT_AUDIO_LEVEL,
    EXT_MID,
    EXT_REPAIRED_RID,
    EXT_RID,
    EXT_TRANSPORT_CC,
    ExtensionPacker,
    RtpCache,
    RtpHeader,
    decode_abs_send_time,
    decode_audio_level,
    decode_mid,
    decode_rid,
    decode_transport_seq,
    encode_abs_send_time,
    encode_audio_level,
    encode_extensions,
    encode_mid,
    encode_rid,
    encode_transport_seq,
    is_rtcp,
    parse_rtp,
    read_extension,
    read_extensions,
    rewrite,
    rewrite_into,
    write_header,
)

hsettings = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

AUDIO_LEVEL, ABS_SEND_TIME, TRANSPORT_CC, MID, RID, REPAIRED_RID = 1, 2, 3, 4, 10, 11


def chromium_map() -> HeaderExtensionsMap:
    extensions_map = HeaderExtensionsMap()
    extensions_map.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=AUDIO_LEVEL, uri=EXT_AUDIO_LEVEL),
                RTCRtpHeaderExtensionParameters(id=ABS_SEND_TIME, uri=EXT_ABS_SEND_TIME),
                RTCRtpHeaderExtensionParameters(id=TRANSPORT_CC, uri=EXT_TRANSPORT_CC),
                RTCRtpHeaderExtensionParameters(id=MID, uri=EXT_MID),
                RTCRtpHeaderExtensionParameters(id=RID, uri=EXT_RID),
                RTCRtpHeaderExtensionParameters(id=REPAIRED_RID, uri=EXT_REPAIRED_RID),
            ]
        )
    )
    return extensions_map


CHROMIUM = chromium_map()


def video_packet(
    *, payload: bytes = b"\x90\x80\x81\x23" + bytes(range(256)) * 4, padding: int = 0
) -> RtpPacket:
    packet = RtpPacket(
        payload_type=96,
        marker=1,
        sequence_number=65535,
        timestamp=0xFFFFFFF0,
        ssrc=0x1234ABCD,
        payload=payload,
    )
    packet.extensions.mid = "0"
    packet.extensions.rtp_stream_id = "h"
    packet.extensions.abs_send_time = 0x123456
    packet.extensions.transport_sequence_number = 4321
    packet.padding_size = padding
    return packet


def parsed(data: bytes) -> RtpHeader:
    header = parse_rtp(data)
    assert header is not None
    return header


# -- parsing ----------------------------------------------------------------------------


def test_parse_reads_what_aiortc_wrote() -> None:
    packet = video_packet()
    data = packet.serialize(CHROMIUM)
    header = parsed(data)
    assert header.payload_type == 96
    assert header.marker is True
    assert header.sequence == 65535
    assert header.timestamp == 0xFFFFFFF0
    assert header.ssrc == 0x1234ABCD
    assert header.csrc_count == 0
    assert header.extension_profile == 0xBEDE
    assert header.extensions_start == 16
    assert data[header.payload_start : header.payload_end] == packet.payload
    assert header.payload_end == len(data)


def test_parse_agrees_with_aiortc_on_extensions() -> None:
    data = video_packet().serialize(CHROMIUM)
    header = parsed(data)
    theirs = RtpPacket.parse(data, CHROMIUM).extensions
    assert decode_mid(read_extension(data, header, MID) or b"") == theirs.mid == "0"
    assert decode_rid(read_extension(data, header, RID) or b"") == theirs.rtp_stream_id
    send_time = decode_abs_send_time(read_extension(data, header, ABS_SEND_TIME) or b"")
    assert theirs.abs_send_time is not None
    assert send_time == theirs.abs_send_time / 2**18
    tseq = decode_transport_seq(read_extension(data, header, TRANSPORT_CC) or b"")
    assert tseq == theirs.transport_sequence_number == 4321
    assert read_extension(data, header, AUDIO_LEVEL) is None
    assert read_extensions(data, header) == {
        MID: b"0",
        RID: b"h",
        ABS_SEND_TIME: b"\x12\x34\x56",
        TRANSPORT_CC: (4321).to_bytes(2, "big"),
    }


def test_parse_removes_padding() -> None:
    packet = video_packet(padding=7)
    data = packet.serialize(CHROMIUM)
    header = parsed(data)
    assert header.payload_end == len(data) - 7
    assert data[header.payload_start : header.payload_end] == packet.payload


def test_parse_csrcs() -> None:
    packet = video_packet(payload=b"abc")
    packet.csrc = [1, 2, 3]
    data = packet.serialize(CHROMIUM)
    header = parsed(data)
    assert header.csrc_count == 3
    assert header.extensions_start == 12 + 12 + 4
    assert data[header.payload_start :] == b"abc"


def test_parse_two_byte_extensions() -> None:
    data = write_header(111, False, 7, 8, 9, [(1, b""), (200, b"x" * 20)]) + b"opus"
    header = parsed(data)
    assert header.extension_profile == 0x1000
    assert read_extension(data, header, 1) == b""
    assert read_extension(data, header, 200) == b"x" * 20
    assert read_extension(data, header, 2) is None
    assert read_extensions(data, header) == {1: b"", 200: b"x" * 20}
    assert data[header.payload_start :] == b"opus"
    theirs = RtpPacket.parse(data)
    assert theirs.payload == b"opus"


def test_no_extensions() -> None:
    data = RtpPacket(payload_type=0, sequence_number=1, payload=b"pcmu").serialize()
    header = parsed(data)
    assert header.extension_profile == 0
    assert header.extensions_start == header.extensions_end == header.payload_start == 12
    assert read_extension(data, header, 1) is None
    assert read_extensions(data, header) == {}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80" * 11,  # too short
        b"\x40" + bytes(11),  # version 1
        b"\x82" + bytes(11) + bytes(4),  # 2 CSRCs, room for 1
        b"\x90" + bytes(11) + b"\xbe\xde",  # extension header truncated
        b"\x90" + bytes(11) + b"\xbe\xde\x00\x02" + bytes(4),  # extension words truncated
        b"\xa0" + bytes(11) + b"\x00",  # padding count 0
        b"\xa0" + bytes(11) + b"\x05",  # padding longer than the payload
    ],
)
def test_malformed_packets_are_none(data: bytes) -> None:
    assert parse_rtp(data) is None


def test_padding_may_fill_the_whole_payload() -> None:
    header = parsed(b"\xa0" + bytes(11) + b"\x00\x00\x03")
    assert header.payload_start == header.payload_end == 12


def test_malformed_extension_block_reads_safely() -> None:
    # One-byte element claiming 16 bytes in a 4-byte block; a reserved id 15 stops reading.
    data = b"\x90" + bytes(11) + b"\xbe\xde\x00\x01" + b"\x1f\x00\x00\x00"
    header = parsed(data)
    assert read_extension(data, header, 1) is None
    assert read_extensions(data, header) == {}
    data = b"\x90" + bytes(11) + b"\xbe\xde\x00\x01" + b"\x10\xaa\xf0\x00"
    header = parsed(data)
    assert read_extension(data, header, 1) == b"\xaa"
    assert read_extensions(data, header) == {1: b"\xaa"}
    data = b"\x90" + bytes(11) + b"\x10\x00\x00\x01" + b"\x05\x09\x00\x00"
    header = parsed(data)
    assert read_extension(data, header, 5) is None
    assert read_extensions(data, header) == {}
    data = b"\x90" + bytes(11) + b"\x12\x34\x00\x01" + b"\x10\xaa\x00\x00"  # unknown profile
    assert read_extension(data, parsed(data), 1) is None


@hsettings
@given(st.binary(max_size=80))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    header = parse_rtp(data)
    if header is not None:
        assert 12 <= header.extensions_start <= header.extensions_end
        assert header.extensions_end == header.payload_start <= header.payload_end <= len(data)
        read_extensions(data, header)
        for ext_id in range(16):
            read_extension(data, header, ext_id)


@hsettings
@given(
    st.binary(max_size=60), st.sampled_from([0x90, 0x91, 0xB0]), st.sampled_from([0xBEDE, 0x1000])
)
def test_arbitrary_extension_blocks_never_raise(block: bytes, first: int, profile: int) -> None:
    block += bytes(-len(block) & 3)
    data = (
        bytes((first, 96))
        + bytes(10)
        + bytes(4 * (first & 0x0F))
        + profile.to_bytes(2, "big")
        + (len(block) // 4).to_bytes(2, "big")
        + block
        + b"\x01"
    )
    header = parsed(data)
    elements = read_extensions(data, header)
    for ext_id in range(256):
        assert read_extension(data, header, ext_id) == elements.get(ext_id)


def test_is_rtcp() -> None:
    assert is_rtcp(b"\x80\xc8")  # SR
    assert is_rtcp(b"\x81\xcd")  # RTPFB
    assert is_rtcp(b"\x80\xdf")  # 223, the top of the RTCP range
    assert not is_rtcp(b"\x80\x60")  # payload type 96
    assert not is_rtcp(b"\x80\xe0")  # 96 with the marker bit
    assert not is_rtcp(b"\x80\x6f")  # 111
    assert not is_rtcp(b"\x80")


# -- writing ----------------------------------------------------------------------------


def test_write_header_one_byte_form_parsed_by_aiortc() -> None:
    header = write_header(
        96,
        True,
        0x10000 + 5,  # wraps
        2**32 + 9,
        0xDEADBEEF,
        [
            (MID, encode_mid("1")),
            (ABS_SEND_TIME, encode_abs_send_time(1.5)),
            (TRANSPORT_CC, encode_transport_seq(70000)),
            (AUDIO_LEVEL, encode_audio_level(True, 30)),
        ],
    )
    assert len(header) % 4 == 0
    assert header[12:14] == b"\xbe\xde"
    theirs = RtpPacket.parse(header + b"payload", CHROMIUM)
    assert (theirs.payload_type, theirs.marker) == (96, 1)
    assert (theirs.sequence_number, theirs.timestamp, theirs.ssrc) == (5, 9, 0xDEADBEEF)
    assert theirs.extensions.mid == "1"
    assert theirs.extensions.abs_send_time == int(1.5 * 2**18)
    assert theirs.extensions.transport_sequence_number == 70000 - 65536
    assert theirs.extensions.audio_level == (True, 30)
    assert theirs.payload == b"payload"


def test_write_header_two_byte_form_when_needed() -> None:
    long_value = b"v" * 17
    for extensions in ([(15, b"a")], [(1, long_value)], [(1, b"")]):
        header = write_header(96, False, 1, 2, 3, extensions)
        assert header[12:14] == b"\x10\x00"
        assert len(header) % 4 == 0
        theirs = RtpPacket.parse(header)
        assert (theirs.sequence_number, theirs.timestamp, theirs.ssrc) == (1, 2, 3)
        data = header
        assert read_extensions(data, parsed(data)) == dict(extensions)


def test_write_header_without_extensions_is_twelve_bytes() -> None:
    header = write_header(0, False, 1, 2, 3, [])
    assert header == b"\x80\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03"
    assert encode_extensions([]) == b""


@hsettings
@given(
    st.lists(
        st.tuples(st.integers(1, 255), st.binary(max_size=40)),
        max_size=6,
        unique_by=lambda item: item[0],
    )
)
def test_extensions_round_trip(extensions: list[tuple[int, bytes]]) -> None:
    data = write_header(96, False, 1, 2, 3, extensions) + b"\x01\x02"
    header = parsed(data)
    assert read_extensions(data, header) == dict(extensions)
    for ext_id, value in extensions:
        assert read_extension(data, header, ext_id) == value
    assert data[header.payload_start :] == b"\x01\x02"


def test_rewrite_round_trips_through_aiortc() -> None:
    original = video_packet(padding=5)
    data = original.serialize(CHROMIUM)
    header = parsed(data)
    out = rewrite(
        data,
        header,
        ssrc=0xCAFEBABE,
        sequence=17,
        timestamp=123456,
        payload_type=100,
        extensions=[(MID, b"7"), (TRANSPORT_CC, encode_transport_seq(9))],
    )
    theirs = RtpPacket.parse(out, CHROMIUM)
    assert (theirs.ssrc, theirs.sequence_number, theirs.timestamp) == (0xCAFEBABE, 17, 123456)
    assert (theirs.payload_type, theirs.marker) == (100, 1)
    assert theirs.extensions.mid == "7"
    assert theirs.extensions.transport_sequence_number == 9
    assert theirs.extensions.rtp_stream_id is None
    assert theirs.padding_size == 0
    assert theirs.payload == original.payload
    # Rewriting back gives the original packet, padding aside.
    again = parsed(out)
    back = rewrite(
        out,
        again,
        ssrc=0x1234ABCD,
        sequence=65535,
        timestamp=0xFFFFFFF0,
        payload_type=96,
        extensions=[
            (MID, b"0"),
            (ABS_SEND_TIME, b"\x12\x34\x56"),
            (TRANSPORT_CC, encode_transport_seq(4321)),
            (RID, b"h"),
        ],
    )
    unpadded = video_packet()
    assert RtpPacket.parse(back, CHROMIUM).extensions == unpadded.extensions
    assert back[header.payload_start :] == original.payload


def test_rewrite_replaces_payload_and_keeps_csrcs() -> None:
    packet = video_packet(payload=b"old")
    packet.csrc = [11, 22]
    data = packet.serialize(CHROMIUM)
    out = rewrite(
        data,
        parsed(data),
        ssrc=1,
        sequence=2,
        timestamp=3,
        payload_type=96,
        extensions=[],
        payload=b"new payload",
    )
    theirs = RtpPacket.parse(out)
    assert theirs.csrc == [11, 22]
    assert theirs.payload == b"new payload"
    assert out[0] & 0x10 == 0  # no extension block


def test_rewrite_replaces_the_payload_descriptor() -> None:
    packet = video_packet(payload=b"\x90\x80\x81\x23" + b"frame", padding=3)
    data = packet.serialize(CHROMIUM)
    out = rewrite(
        data,
        parsed(data),
        ssrc=1,
        sequence=2,
        timestamp=3,
        payload_type=96,
        extensions=[(MID, b"1")],
        descriptor=b"\x90\x80\x85\x00",
    )
    assert RtpPacket.parse(out, CHROMIUM).payload == b"\x90\x80\x85\x00frame"


def test_rewrite_into_a_buffer_leaves_what_follows_and_refuses_what_does_not_fit() -> None:
    data = video_packet(payload=b"payload").serialize(CHROMIUM)
    header = parsed(data)
    block = encode_extensions([(MID, b"1")])
    expected = rewrite(
        data, header, ssrc=1, sequence=2, timestamp=3, payload_type=96, extensions=block
    )

    def into(out: bytearray) -> int:
        return rewrite_into(
            memoryview(out),
            data,
            header,
            ssrc=1,
            sequence=2,
            timestamp=3,
            payload_type=96,
            extensions=block,
        )

    out = bytearray(b"\xff" * (len(expected) + 4))
    assert into(out) == len(expected)
    assert out == expected + b"\xff" * 4
    with pytest.raises(ValueError):
        into(bytearray(len(expected) - 1))


# -- the packer -------------------------------------------------------------------------


@hsettings
@given(st.integers(0, 0xFFFF), st.floats(0, 1e6), st.text("0123456789abc", min_size=1, max_size=16))
def test_packer_matches_encode_extensions(tseq: int, send_time: float, mid: str) -> None:
    packer = ExtensionPacker(
        mid_id=MID, mid=mid, abs_send_time_id=ABS_SEND_TIME, transport_cc_id=TRANSPORT_CC
    )
    expected = encode_extensions(
        [
            (MID, encode_mid(mid)),
            (ABS_SEND_TIME, encode_abs_send_time(send_time)),
            (TRANSPORT_CC, encode_transport_seq(tseq)),
        ]
    )
    assert packer.pack(tseq, send_time) == expected


@hsettings
@given(
    st.integers(0, 0xFFFF),
    st.floats(0, 1e6),
    st.booleans(),
    st.integers(0, 127),
    st.booleans(),
    st.integers(0, 0xFFFFFFFF),
)
def test_packer_writes_the_header_rewrite_writes(
    tseq: int, send_time: float, audio: bool, level: int, marker: bool, timestamp: int
) -> None:
    packer = ExtensionPacker(
        mid_id=MID,
        mid="1",
        abs_send_time_id=ABS_SEND_TIME,
        transport_cc_id=TRANSPORT_CC,
        audio_level_id=AUDIO_LEVEL if audio else None,
    )
    data = RtpPacket(payload_type=111, marker=int(marker), payload=b"opus").serialize()
    header = parsed(data)
    block = packer.pack(tseq, send_time, True, level)
    expected = rewrite(
        data,
        header,
        ssrc=5,
        sequence=70000,
        timestamp=timestamp,
        payload_type=111,
        extensions=block,
    )
    out = bytearray(len(expected))
    size = packer.pack_header_into(
        memoryview(out), header.marker << 7 | 111, 70000, timestamp, 5, tseq, send_time, True, level
    )
    assert size == len(expected) - len(b"opus")
    assert out[:size] == expected[:size]


def test_packer_block_read_by_aiortc() -> None:
    packer = ExtensionPacker(
        mid_id=MID,
        mid="audio",
        abs_send_time_id=ABS_SEND_TIME,
        transport_cc_id=TRANSPORT_CC,
        audio_level_id=AUDIO_LEVEL,
    )
    data = RtpPacket(payload_type=111, payload=b"opus").serialize()
    out = rewrite(
        data,
        parsed(data),
        ssrc=5,
        sequence=6,
        timestamp=7,
        payload_type=111,
        extensions=packer.pack(70000, 2.5, voice=True, level=40),
    )
    theirs = RtpPacket.parse(out, CHROMIUM)
    assert theirs.extensions.mid == "audio"
    assert theirs.extensions.abs_send_time == int(2.5 * 2**18)
    assert theirs.extensions.transport_sequence_number == 70000 - 65536
    assert theirs.extensions.audio_level == (True, 40)
    assert theirs.payload == b"opus"


def test_packer_writes_padding_for_extensions_not_negotiated() -> None:
    packer = ExtensionPacker(mid_id=MID, mid="1", abs_send_time_id=0, transport_cc_id=0)
    block = packer.pack(5, 1.0)
    data = write_header(96, False, 1, 2, 3, []) + b""
    data = bytes([data[0] | 0x10]) + data[1:] + block + b"x"
    header = parsed(data)
    assert read_extensions(data, header) == {MID: b"1"}
    assert RtpPacket.parse(data, CHROMIUM).extensions.mid == "1"
    silent = ExtensionPacker(
        mid_id=0, mid="", abs_send_time_id=0, transport_cc_id=TRANSPORT_CC, audio_level_id=0
    )
    data = bytes([data[0]]) + data[1:12] + silent.pack(9, 0.0) + b"x"
    assert read_extensions(data, parsed(data)) == {TRANSPORT_CC: b"\x00\x09"}


def test_packer_checks_ids() -> None:
    with pytest.raises(ValueError):
        ExtensionPacker(mid_id=15, mid="0", abs_send_time_id=2, transport_cc_id=3)
    with pytest.raises(ValueError):
        ExtensionPacker(mid_id=4, mid="x" * 17, abs_send_time_id=2, transport_cc_id=3)


# -- extension values -------------------------------------------------------------------


def test_extension_values() -> None:
    assert encode_mid("audio") == b"audio"
    assert decode_mid(b"") is None
    assert decode_mid("й".encode()) is None
    assert encode_rid("q") == b"q"
    assert decode_rid(b"q") == "q"
    assert decode_rid(b"\xff") is None
    assert encode_abs_send_time(0.0) == b"\x00\x00\x00"
    assert encode_abs_send_time(64.0) == b"\x00\x00\x00"  # wraps every 64 s
    assert encode_abs_send_time(1.0) == b"\x04\x00\x00"
    assert decode_abs_send_time(b"\x04\x00\x00") == 1.0
    assert decode_abs_send_time(b"\x04\x00") is None
    assert encode_transport_seq(65536 + 3) == b"\x00\x03"
    assert decode_transport_seq(b"\x01\x00") == 256
    assert decode_transport_seq(b"\x01") is None
    assert encode_audio_level(True, 127) == b"\xff"
    assert encode_audio_level(False, 200) == b"\x7f"
    assert decode_audio_level(b"\x9e") == (True, 30)
    assert decode_audio_level(b"") is None


@hsettings
@given(st.floats(0, 63.99))
def test_abs_send_time_resolution(seconds: float) -> None:
    decoded = decode_abs_send_time(encode_abs_send_time(seconds))
    assert decoded is not None
    assert 0 <= seconds - decoded < 2**-18


# -- retransmission cache ---------------------------------------------------------------


def test_cache_stores_and_overwrites() -> None:
    cache = RtpCache(8)
    for seq in range(10):
        cache.put(seq, bytes([seq]))
    assert cache.get(1) is None  # overwritten by 9
    assert cache.get(2) == b"\x02"
    assert cache.get(9) == b"\x09"
    assert cache.get(10) is None  # never stored


def test_cache_wraps_around() -> None:
    cache = RtpCache(16)
    for seq in range(65530, 65546):
        cache.put(seq & 0xFFFF, seq.to_bytes(4, "big"))
    for seq in range(65530, 65546):
        assert cache.get(seq & 0xFFFF) == seq.to_bytes(4, "big")
    assert cache.get(65529) is None


def test_cache_forgets_slots_jumped_over() -> None:
    cache = RtpCache(16)
    cache.put(100, b"a")
    cache.put(101, b"b")
    cache.put(100 + 16 * 3, b"c")  # the slots of 101..147 now belong to no stored packet
    assert cache.get(100) is None
    assert cache.get(101) is None
    cache.put(5, b"d")  # a long way forward (wrapping): everything is cleared
    cache.put(5 + 32768 + 1, b"e")
    assert cache.get(148) is None


def test_cache_takes_late_packets_within_its_window_only() -> None:
    cache = RtpCache(16)
    cache.put(1000, b"new")
    cache.put(990, b"late")
    assert cache.get(990) == b"late"
    cache.put(1000 - 16, b"too late")  # would take 1000's slot
    assert cache.get(1000) == b"new"
    assert cache.get(1000 - 16) is None


def test_cache_never_returns_a_stale_wrapped_packet() -> None:
    cache = RtpCache(16)
    cache.put(7, b"old")
    for seq in range(8, 65536 + 6):
        if seq % 1000 == 0:
            cache.put(seq & 0xFFFF, b"x")  # sparse: most packets lost
    cache.put(6, b"y")
    assert cache.get(7) is None


def test_cache_size_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError):
        RtpCache(1000)
    RtpCache(32768).clear()


@hsettings
@given(st.lists(st.integers(0, 0xFFFF), max_size=200), st.sampled_from([4, 64, 1024]))
def test_cache_returns_only_what_was_stored(sequences: list[int], size: int) -> None:
    cache = RtpCache(size)
    stored: dict[int, set[bytes]] = {}
    for i, seq in enumerate(sequences):
        value = i.to_bytes(2, "big")
        cache.put(seq, value)
        stored.setdefault(seq, set()).add(value)
    for seq in range(0x10000):
        got = cache.get(seq)
        assert got is None or got in stored[seq]


@hsettings
@given(st.integers(0, 0xFFFF), st.lists(st.integers(1, 40), max_size=100))
def test_cache_in_order_packets_are_kept(start: int, steps: list[int]) -> None:
    cache = RtpCache(64)
    seq = start
    history = []
    for step in steps:
        seq = (seq + step) & 0xFFFF
        cache.put(seq, seq.to_bytes(2, "big"))
        history.append(seq)
    for seq in history:
        if (history[-1] - seq) & 0xFFFF < 64:
            assert cache.get(seq) == seq.to_bytes(2, "big")
