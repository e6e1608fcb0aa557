"""RFC 4571 framing: any split point, the buffer cap, zero-length frames."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.framing import MAX_FRAME, FrameReader, frame

hsettings = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PACKETS = [b"\x00\x01stun", b"\x16" * 300, b"\x80" + bytes(1199), b"x"]


def test_frame_prefixes_the_length() -> None:
    assert frame(b"abc") == b"\x00\x03abc"
    assert frame(b"") == b"\x00\x00"
    assert frame(bytes(MAX_FRAME))[:2] == b"\xff\xff"
    with pytest.raises(ValueError):
        frame(bytes(MAX_FRAME + 1))


def test_whole_stream_at_once() -> None:
    reader = FrameReader()
    assert reader.feed(b"".join(map(frame, PACKETS))) == PACKETS
    assert reader.buffered == 0 and not reader.failed


def test_byte_by_byte() -> None:
    reader = FrameReader()
    stream = b"".join(map(frame, PACKETS))
    out: list[bytes] = []
    for i in range(len(stream)):
        out += reader.feed(stream[i : i + 1])
    assert out == PACKETS
    assert reader.buffered == 0


@pytest.mark.parametrize("cut", range(12))
def test_every_split_of_a_small_stream(cut: int) -> None:
    stream = frame(b"hello") + frame(b"") + frame(b"!")
    reader = FrameReader()
    assert reader.feed(stream[:cut]) + reader.feed(stream[cut:]) == [b"hello", b"!"]


@hsettings
@given(
    st.lists(st.binary(max_size=2000), max_size=12),
    st.lists(st.integers(0, 30000), max_size=10),
)
def test_any_split_points(packets: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(map(frame, packets))
    points = sorted({min(c, len(stream)) for c in cuts})
    reader = FrameReader()
    out: list[bytes] = []
    start = 0
    for point in [*points, len(stream)]:
        out += reader.feed(stream[start:point])
        start = point
    assert out == [p for p in packets if p]  # zero-length frames are skipped
    assert reader.buffered == 0 and not reader.failed


def test_zero_length_frames_are_skipped() -> None:
    reader = FrameReader()
    assert reader.feed(b"\x00\x00\x00\x00" + frame(b"a") + b"\x00\x00") == [b"a"]
    assert reader.buffered == 0


def test_incomplete_frame_stays_buffered() -> None:
    reader = FrameReader()
    assert reader.feed(frame(b"abcdef")[:5]) == []
    assert reader.buffered == 5
    assert reader.feed(b"def" + b"\x00") == [b"abcdef"]
    assert reader.buffered == 1


def test_largest_frame_fits_the_default_cap() -> None:
    reader = FrameReader()
    big = bytes(range(256)) * 255 + bytes(MAX_FRAME - 256 * 255)
    stream = frame(big)
    assert reader.feed(stream[:40000]) == []
    assert reader.buffered == 40000
    assert reader.feed(stream[40000:]) == [big]


def test_a_frame_over_the_cap_fails_the_reader_at_once() -> None:
    reader = FrameReader(max_frame=1500)
    assert reader.feed(frame(b"ok") + b"\x05\xdd") == [b"ok"]  # 1501 announced
    assert reader.failed and reader.buffered == 0
    assert reader.feed(frame(b"more")) == []


def test_cap_holds_for_a_complete_oversized_frame_too() -> None:
    reader = FrameReader(max_frame=4)
    assert reader.feed(frame(b"1234") + frame(b"12345") + frame(b"x")) == [b"1234"]
    assert reader.failed


def test_buffer_never_exceeds_the_cap() -> None:
    reader = FrameReader(max_frame=100)
    stream = b"".join(frame(bytes([i]) * 100) for i in range(50))
    for i in range(0, len(stream), 37):
        reader.feed(stream[i : i + 37])
        assert reader.buffered <= 2 + 100
    assert not reader.failed


@pytest.mark.parametrize("max_frame", [0, MAX_FRAME + 1])
def test_bad_cap_is_refused(max_frame: int) -> None:
    with pytest.raises(ValueError):
        FrameReader(max_frame)
