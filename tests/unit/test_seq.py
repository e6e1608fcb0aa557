"""sfu.seq: sequence, timestamp and picture id mapping across layer switches and drops;
NACK generation; keyframe request throttling."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.seq import (
    KeyFrameRequester,
    NackGenerator,
    PictureIdMapper,
    SeqManager,
    TimestampMapper,
    seq_newer,
)

hsettings = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- SeqManager -------------------------------------------------------------------------


def test_first_input_maps_to_itself_or_to_the_initial_output() -> None:
    seq = SeqManager()
    assert [seq.input(x) for x in (100, 101, 102)] == [100, 101, 102]
    seq = SeqManager(initial_output=5000)
    assert [seq.input(x) for x in (100, 101, 102)] == [5000, 5001, 5002]
    assert seq.max_output == 5002


def test_wraparound() -> None:
    seq = SeqManager(initial_output=65534)
    assert [seq.input(x) for x in (10, 11, 12, 13)] == [65534, 65535, 0, 1]
    seq = SeqManager(initial_output=3)
    assert [seq.input(x) for x in (65534, 65535, 0, 1)] == [3, 4, 5, 6]


def test_sync_continues_from_the_last_output() -> None:
    seq = SeqManager(initial_output=1000)
    assert [seq.input(x) for x in (1, 2, 3)] == [1000, 1001, 1002]
    seq.sync(40000)  # switched to another layer
    assert [seq.input(x) for x in (40000, 40001)] == [1003, 1004]
    seq.sync(7)
    assert seq.input(7) == 1005


def test_sync_before_any_input() -> None:
    seq = SeqManager(initial_output=10)
    seq.sync(500)
    assert seq.input(500) == 10
    seq = SeqManager()
    seq.sync(500)
    assert seq.input(500) == 500


def test_drops_close_the_gap() -> None:
    seq = SeqManager(initial_output=0)
    assert seq.input(10) == 0
    seq.drop(11)
    seq.drop(12)
    assert seq.input(13) == 1
    seq.drop(14)
    assert seq.input(15) == 2
    assert seq.input(11) is None  # a dropped input is not forwarded later


def test_first_packet_dropped() -> None:
    seq = SeqManager(initial_output=0)
    seq.drop(10)
    assert seq.input(11) == 0


def test_out_of_order_around_a_drop() -> None:
    seq = SeqManager(initial_output=0)
    assert seq.input(1) == 0
    seq.drop(3)  # 3 arrives before 2
    assert seq.input(2) == 1
    assert seq.input(4) == 2
    seq.drop(6)
    assert seq.input(7) == 4  # 5 not yet seen: its place stays open
    assert seq.input(5) == 3


def test_a_late_drop_leaves_a_hole() -> None:
    seq = SeqManager(initial_output=0)
    assert seq.input(1) == 0
    assert seq.input(3) == 2  # 2 not seen yet
    seq.drop(2)  # too late: 3 already took the output after it
    assert seq.input(4) == 3


def test_inputs_before_the_sync_point_are_not_forwarded() -> None:
    seq = SeqManager(initial_output=1000)
    assert seq.input(10) == 1000
    assert seq.input(11) == 1001
    seq.sync(40000)
    assert seq.input(40000) == 1002
    assert seq.input(39999) is None  # would collide with 1001
    assert seq.input(40001) == 1003
    seq.sync(2)  # across the wrap
    assert seq.input(65535) is None
    assert seq.input(2) == 1004


def test_drops_across_wraparound() -> None:
    seq = SeqManager(initial_output=100)
    assert seq.input(65534) == 100
    seq.drop(65535)
    seq.drop(0)
    assert seq.input(1) == 101
    seq.drop(2)
    assert seq.input(65535) is None
    assert seq.input(3) == 102


def test_dropped_inputs_are_bounded() -> None:
    seq = SeqManager(initial_output=0)
    output = None
    for x in range(0, 200_000, 2):  # every other packet dropped, wrapping three times
        output = seq.input(x & 0xFFFF)
        seq.drop((x + 1) & 0xFFFF)
    assert output == (200_000 // 2 - 1) & 0xFFFF
    assert len(seq._dropped) <= 1001  # a test may look inside


def test_seq_newer() -> None:
    assert seq_newer(1, 0)
    assert seq_newer(0, 65535)
    assert not seq_newer(65535, 0)
    assert not seq_newer(5, 5)
    assert seq_newer(0, 127, bits=7)


layer_events = st.lists(
    st.one_of(
        st.tuples(st.just("packet"), st.booleans()),  # (forward it?)
        st.tuples(st.just("switch"), st.integers(0, 2)),
    ),
    max_size=300,
)


@hsettings
@given(
    st.lists(st.integers(0, 0xFFFF), min_size=3, max_size=3),
    st.integers(0, 0xFFFF),
    layer_events,
)
def test_output_is_continuous_across_switches_and_drops(
    starts: list[int], initial: int, events: list[tuple[str, object]]
) -> None:
    """Packets arrive in order; a switch syncs on the new layer's next packet; each
    forwarded packet's output is the previous one + 1."""
    seq = SeqManager(initial_output=initial)
    next_seq = list(starts)
    current = 0
    pending_sync = True
    last: int | None = None
    for kind, value in events:
        if kind == "switch":
            assert isinstance(value, int)
            current = value
            pending_sync = True
            continue
        for layer in range(3):  # every layer moves on; only the current one is seen
            next_seq[layer] = (next_seq[layer] + 1) & 0xFFFF
        x = next_seq[current]
        if pending_sync:
            seq.sync(x)
            pending_sync = False
        if value:
            output = seq.input(x)
            assert output == (initial if last is None else (last + 1) & 0xFFFF)
            last = output
        else:
            seq.drop(x)


@hsettings
@given(
    st.integers(0, 0xFFFF),
    st.lists(st.booleans(), min_size=1, max_size=400),
    st.randoms(use_true_random=False),
)
def test_reordered_arrivals_keep_order_and_never_collide(
    start: int, forwarded: list[bool], rnd: random.Random
) -> None:
    """With arrivals shuffled a little, forwarded packets keep their relative order and
    never share an output; when no drop arrives after a higher forwarded packet, the
    outputs are exactly consecutive."""
    order = list(range(len(forwarded)))
    for i in range(len(order) - 1):  # swap neighbours now and then
        if rnd.random() < 0.3:
            order[i], order[i + 1] = order[i + 1], order[i]
    seq = SeqManager(initial_output=0)
    seq.sync(start)  # the consumer starts at the stream's first packet (a keyframe)
    outputs: dict[int, int] = {}
    highest_forwarded = -1
    late_drop = False
    for index in order:
        x = (start + index) & 0xFFFF
        if forwarded[index]:
            output = seq.input(x)
            assert output is not None
            outputs[index] = output
            highest_forwarded = max(highest_forwarded, index)
        else:
            late_drop |= index < highest_forwarded
            seq.drop(x)
    ranked = [outputs[i] for i in sorted(outputs)]
    base = ranked[0] if ranked else 0
    unwrapped = [(o - base) & 0xFFFF for o in ranked]
    assert unwrapped == sorted(set(unwrapped))
    if not late_drop:
        assert unwrapped == list(range(len(unwrapped)))


# -- TimestampMapper --------------------------------------------------------------------


def test_timestamps_first_input_and_wrap() -> None:
    ts = TimestampMapper()
    assert ts.input(1000) == 1000
    ts = TimestampMapper(initial_output=0xFFFFFF00)
    assert ts.input(5) == 0xFFFFFF00
    assert ts.input(5 + 0x200) == 0x100
    assert ts.last_output == 0x100


def test_timestamps_continue_with_elapsed_time_on_a_switch() -> None:
    ts = TimestampMapper(initial_output=90000)
    assert ts.input(123) == 90000
    assert ts.input(123 + 3000) == 93000
    ts.sync(4_000_000_000, elapsed_ms=20, clock_rate=90000)
    assert ts.input(4_000_000_000) == 93000 + 1800
    assert ts.input(4_000_000_000 + 3000) == 93000 + 1800 + 3000
    ts.sync(7, elapsed_ms=0, clock_rate=90000)  # no time at all: still moves on
    assert ts.input(7) == 93000 + 1800 + 3000 + 1


def test_timestamp_sync_before_any_input() -> None:
    ts = TimestampMapper(initial_output=50)
    ts.sync(1000, elapsed_ms=500, clock_rate=48000)
    assert ts.input(1000) == 50


@hsettings
@given(
    st.lists(st.integers(0, 0xFFFFFFFF), min_size=3, max_size=3),
    st.integers(0, 0xFFFFFFFF),
    st.lists(
        st.one_of(
            st.tuples(st.just("packet"), st.integers(0, 6000)),  # ts step of that layer
            st.tuples(st.just("switch"), st.integers(0, 2)),
            st.tuples(st.just("wait"), st.integers(0, 5000)),  # ms
        ),
        max_size=300,
    ),
)
def test_timestamps_never_go_back(
    starts: list[int], initial: int, events: list[tuple[str, int]]
) -> None:
    ts = TimestampMapper(initial_output=initial)
    next_ts = list(starts)
    current = 0
    pending_sync = True
    elapsed = 0
    last: int | None = None
    for kind, value in events:
        if kind == "switch":
            current = value
            pending_sync = True
        elif kind == "wait":
            elapsed += value
        else:
            for layer in range(3):
                next_ts[layer] = (next_ts[layer] + value) & 0xFFFFFFFF
            x = next_ts[current]
            if pending_sync:
                ts.sync(x, elapsed, 90000)
                pending_sync = False
                switched = True
            else:
                switched = False
            output = ts.input(x)
            if last is None:
                assert output == initial
            else:
                step = (output - last) & 0xFFFFFFFF
                assert step < 0x80000000
                if switched:
                    assert step >= max(1, elapsed * 90)
            last = output
            elapsed = 0


# -- PictureIdMapper --------------------------------------------------------------------


def test_picture_ids_wrap_at_15_bits() -> None:
    mapper = PictureIdMapper(initial_picture_id=0x7FFF, initial_tl0picidx=255)
    assert mapper.picture_id(3) == 0x7FFF
    assert mapper.picture_id(4) == 0
    assert mapper.tl0picidx(9) == 255
    assert mapper.tl0picidx(10) == 0


def test_picture_ids_close_dropped_frames() -> None:
    mapper = PictureIdMapper(initial_picture_id=100, initial_tl0picidx=0)
    assert mapper.picture_id(10) == 100
    assert mapper.picture_id(10) == 100  # another packet of the same frame
    mapper.drop(11)
    mapper.drop(11)
    assert mapper.picture_id(12) == 101
    assert mapper.picture_id(11) is None
    assert mapper.tl0picidx(3) == 0
    mapper.sync(5000, 77)
    assert mapper.picture_id(5000) == 102
    assert mapper.tl0picidx(77) == 1


def test_seven_bit_picture_ids() -> None:
    mapper = PictureIdMapper(initial_picture_id=0, picture_id_bits=7)
    assert [mapper.picture_id(x) for x in (126, 127, 0, 1)] == [0, 1, 2, 3]


@hsettings
@given(
    st.lists(st.integers(0, 0x7FFF), min_size=3, max_size=3),
    st.lists(st.integers(0, 255), min_size=3, max_size=3),
    st.lists(
        st.one_of(
            st.tuples(st.just("frame"), st.integers(1, 4)),  # packets in the frame
            st.tuples(st.just("switch"), st.integers(0, 2)),
            st.tuples(st.just("max_tid"), st.integers(0, 2)),
        ),
        max_size=200,
    ),
)
def test_picture_ids_are_continuous(
    pictures: list[int], tl0s: list[int], events: list[tuple[str, int]]
) -> None:
    """Three simulcast layers with L1T3 temporal structure (TIDs 0, 2, 1, 2, ...); the
    consumer forwards frames up to ``max_tid`` and switches to a target layer at its next
    base layer frame."""
    mapper = PictureIdMapper(initial_picture_id=0, initial_tl0picidx=0)
    next_picture = list(pictures)
    tl0 = list(tl0s)
    frame_index = 0
    current = target = 0
    max_tid = 2
    started = False
    last_picture: int | None = None
    last_tl0: int | None = None
    for kind, value in events:
        if kind == "switch":
            target = value
            continue
        if kind == "max_tid":
            max_tid = value
            continue
        tid = (0, 2, 1, 2)[frame_index % 4]
        frame_index += 1
        for layer in range(3):
            next_picture[layer] = (next_picture[layer] + 1) & 0x7FFF
            if tid == 0:
                tl0[layer] = (tl0[layer] + 1) & 0xFF
        if tid == 0 and (target != current or not started):
            current, started = target, True
            mapper.sync(next_picture[current], tl0[current])
        if not started:
            continue
        picture_id, tl0picidx = next_picture[current], tl0[current]
        if tid > max_tid:
            for _ in range(value):
                mapper.drop(picture_id)
            continue
        for packet in range(value):
            out_picture = mapper.picture_id(picture_id)
            out_tl0 = mapper.tl0picidx(tl0picidx)
            if last_picture is None or last_tl0 is None:
                assert (out_picture, out_tl0) == (0, 0)
            elif packet > 0:  # later packets of the same frame
                assert (out_picture, out_tl0) == (last_picture, last_tl0)
            else:  # a new frame: the next picture id; the next TL0PICIDX if a base frame
                assert out_picture == (last_picture + 1) & 0x7FFF
                assert out_tl0 == (last_tl0 + (tid == 0)) & 0xFF
            assert out_picture is not None
            last_picture, last_tl0 = out_picture, out_tl0


# -- NackGenerator ----------------------------------------------------------------------


def test_nack_first_right_away_then_once_per_rtt() -> None:
    nack = NackGenerator()
    for seq in (1, 2, 5):
        assert nack.received(seq, now_ms=0) is False
    assert len(nack) == 2
    assert nack.due(0, rtt_ms=100) == [3, 4]
    assert nack.due(50, rtt_ms=100) == []
    nack.received(3, now_ms=60)  # retransmission arrives
    assert nack.due(100, rtt_ms=100) == [4]
    assert nack.due(150, rtt_ms=100) == []


def test_nack_gives_up_after_max_tries() -> None:
    nack = NackGenerator(max_tries=3, max_age_ms=10_000)
    nack.received(1, 0)
    nack.received(3, 0)
    sent = [t for t in range(0, 1000, 20) if nack.due(t, rtt_ms=20)]
    assert sent == [0, 20, 40]
    assert len(nack) == 0


def test_nack_forgets_old_packets() -> None:
    nack = NackGenerator(max_age_ms=1000)
    nack.received(1, 0)
    nack.received(3, 0)
    assert nack.due(0, 400) == [2]
    assert nack.due(900, 400) == [2]
    assert nack.due(1001, 400) == []
    assert len(nack) == 0


def test_nack_wraparound_and_reordering() -> None:
    nack = NackGenerator()
    nack.received(65534, 0)
    nack.received(1, 0)
    assert nack.due(0, 50) == [65535, 0]
    nack.received(0, 10)
    nack.received(0, 10)  # duplicate
    assert nack.due(60, 50) == [65535]


def test_nack_too_many_missing_clears_to_the_last_keyframe() -> None:
    nack = NackGenerator(max_missing=100)
    nack.received(0, 0)
    nack.received(60, 0, is_keyframe=True)  # 59 missing
    assert nack.received(120, 0) is False  # 59 + 59 > 100: forget those before 60
    assert len(nack) == 59
    assert nack.due(0, 50)[0] == 61


def test_nack_too_many_missing_without_keyframe_asks_for_one() -> None:
    nack = NackGenerator(max_missing=100)
    nack.received(0, 0)
    nack.received(60, 0)
    assert nack.received(120, 0) is True
    assert len(nack) == 0
    assert nack.received(1000, 0) is True  # one huge gap
    assert len(nack) == 0
    nack.reset()
    assert nack.received(5, 0) is False


def test_nack_keyframe_history_is_bounded() -> None:
    nack = NackGenerator()
    for seq in range(100):
        nack.received(seq, 0, is_keyframe=True)
    assert len(nack._keyframes) <= 16


@hsettings
@given(st.lists(st.integers(0, 30), max_size=200), st.integers(0, 0xFFFF))
def test_nack_asks_only_for_what_is_missing(steps: list[int], start: int) -> None:
    nack = NackGenerator(max_missing=10_000)
    received = set()
    seq = start
    now = 0
    for step in steps:
        seq = (seq + step) & 0xFFFF
        nack.received(seq, now)
        received.add(seq)
        now += 5
        for missing in nack.due(now, 20):
            assert missing not in received


# -- KeyFrameRequester ------------------------------------------------------------------


def test_keyframe_requests_are_throttled_per_ssrc() -> None:
    requester = KeyFrameRequester(interval_ms=300)
    assert requester.request(1, 0) is True
    assert requester.request(1, 100) is False
    assert requester.request(2, 100) is True
    assert requester.request(1, 300) is True
    assert requester.pending(1)
    requester.keyframe_received(1)
    assert not requester.pending(1)
    assert requester.request(1, 310) is True  # a new need after the keyframe came


def test_unanswered_keyframe_requests_are_repeated() -> None:
    requester = KeyFrameRequester(interval_ms=300, retry_ms=1000)
    requester.request(1, 0)
    requester.request(2, 500)
    assert requester.due(999) == []
    assert requester.due(1000) == [1]
    assert requester.due(1500) == [2]
    requester.keyframe_received(1)
    requester.forget(2)
    assert requester.due(5000) == []
