"""The router in memory (bench/micro/sfu_rig.py): simulcast switching driven by a
subscriber's bandwidth feedback and its layer request, always at a keyframe, with the
stream it receives continuous across switches."""

from __future__ import annotations

import itertools
import struct
import time
from typing import Any, cast

from bench.micro.sfu_rig import (
    AUDIO_SSRC,
    KEY,
    LAYER_SSRCS,
    OFFER,
    RECV_AUDIO_MID,
    RECV_VIDEO_MID,
    SFU_KEY,
    Rig,
    Sink,
)
from protocol.sfu_control import Answer, PeerLayer, PeerMove, PeerOffer, RoomCreate
from sfu.consumer import Consumer
from sfu.producer import Producer, RtpParams
from sfu.rtcp import Pli, build_nack, build_remb, parse_rtcp
from sfu.rtp import parse_rtp
from sfu.srtp import SrtpPair, SrtpProfile
from sfu.vp8 import parse_vp8


def remb(rig: Rig, bitrate: int) -> None:
    consumer = rig.subscribers[0].consumers[rig.video.producer_id]
    rig.rtcp_from_subscriber(0, build_remb(0xABC, bitrate, [consumer.ssrc]))


def flowing(rig: Rig) -> Consumer:
    """The first subscriber's video consumer, with room to spare and every layer flowing."""
    remb(rig, 5_000_000)
    for rid in "qhf":
        rig.feed(rig.video_packet(rid, keyframe=True))
    return rig.subscribers[0].consumers[rig.video.producer_id]


def settle(rig: Rig) -> None:
    """Run the router's periodic work as if the allocation interval had passed."""
    rig.router._last_allocation = 0.0
    rig.router.tick(time.monotonic())


def test_falling_bandwidth_switches_down_at_a_keyframe_and_a_bigger_tile_switches_up() -> None:
    rig = Rig(1)
    consumer = rig.subscribers[0].consumers[rig.video.producer_id]
    rig.sinks[0].kept = []
    remb(rig, 5_000_000)
    for rid in "qhf":
        rig.feed(rig.video_packet(rid, keyframe=True))
    settle(rig)
    assert consumer.target is not None and consumer.target.rid == "f"
    rig.feed(rig.video_packet("f", keyframe=True))
    assert consumer.layer == "high"

    remb(rig, 400_000)  # the subscriber's link got worse
    settle(rig)
    assert consumer.target is not None and consumer.target.rid == "q"
    for _ in range(3):  # no keyframe on q yet: f keeps flowing
        rig.feed(rig.video_packet("q"))
        rig.feed(rig.video_packet("f"))
    assert consumer.layer == "high"
    rig.feed(rig.video_packet("q", keyframe=True))
    assert consumer.layer == "low"
    rig.feed(rig.video_packet("f"))  # f is no longer forwarded
    rig.feed(rig.video_packet("q"))

    remb(rig, 5_000_000)
    rig.router.handle(PeerLayer(peer_id="sub0", producer_id=rig.video.producer_id, layer="medium"))
    assert consumer.target is not None and consumer.target.rid == "h"  # the tile grew
    rig.feed(rig.video_packet("h", keyframe=True))
    assert consumer.layer == "medium"

    received = [parse_rtp(p) for p in rig.sinks[0].rtp()]
    video = [h for h in received if h is not None and h.ssrc == consumer.ssrc]
    assert len(video) == 1 + 3 + 1 + 1 + 1  # f key, 3 f, q key, q, h key
    sequences = [h.sequence for h in video]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    timestamps = [h.timestamp for h in video]
    assert timestamps == sorted(timestamps)


def test_a_subscriber_that_asks_for_off_gets_no_video_but_keeps_audio() -> None:
    rig = Rig(1)
    consumer = rig.subscribers[0].consumers[rig.video.producer_id]
    rig.router.handle(PeerLayer(peer_id="sub0", producer_id=rig.video.producer_id, layer="off"))
    for rid in "qhf":
        rig.feed(rig.video_packet(rid, keyframe=True))
    assert consumer.layer == "off"
    audio = rig.subscribers[0].consumers[rig.audio.producer_id]
    assert audio.current is not None  # audio is never paused by the allocator


def test_too_little_bandwidth_pauses_video_but_audio_keeps_flowing() -> None:
    rig = Rig(1)
    video = rig.subscribers[0].consumers[rig.video.producer_id]
    audio = rig.subscribers[0].consumers[rig.audio.producer_id]
    rig.sinks[0].kept = []
    remb(rig, 60_000)  # less than even the lowest video layer
    for rid in "qhf":
        rig.feed(rig.video_packet(rid, keyframe=True))
    settle(rig)
    assert video.layer == "off"
    for _ in range(5):
        rig.feed(rig.audio_packet())
        rig.feed(rig.video_packet("q", keyframe=True))
    ssrcs = [h.ssrc for h in map(parse_rtp, rig.sinks[0].rtp()) if h is not None]
    assert ssrcs.count(audio.ssrc) == 5 and video.ssrc not in ssrcs


def test_a_nack_from_the_subscriber_is_answered_with_the_same_packet() -> None:
    rig = Rig(1)
    video = flowing(rig)
    rig.router.handle(PeerLayer(peer_id="sub0", producer_id=rig.video.producer_id, layer="low"))
    rig.feed(rig.video_packet("q", keyframe=True))
    assert video.layer == "low"
    for _ in range(4):
        rig.feed(rig.video_packet("q"))
    rig.sinks[0].kept = []
    sent = [parse_rtp(p) for p in rig.sinks[0].rtp()]
    assert sent == []
    first = video.sequences.max_output - 3
    rig.rtcp_from_subscriber(0, build_nack(0xABC, video.ssrc, [first, first + 2]))
    again = [h for h in map(parse_rtp, rig.sinks[0].rtp()) if h is not None]
    assert [(h.ssrc, h.sequence) for h in again] == [(video.ssrc, first), (video.ssrc, first + 2)]


def test_moving_a_peer_to_another_room_stops_what_it_receives_from_the_first() -> None:
    rig = Rig(1)
    video = rig.subscribers[0].consumers[rig.video.producer_id]
    remb(rig, 5_000_000)
    rig.feed(rig.video_packet("q", keyframe=True))
    settle(rig)
    rig.router.handle(RoomCreate(room_id="breakout-1"))
    rig.router.handle(PeerMove(peer_id="sub0", room_id="breakout-1"))
    before = rig.sinks[0].count
    for rid in "qhf":
        rig.feed(rig.video_packet(rid, keyframe=True))
    rig.feed(rig.audio_packet())
    assert rig.sinks[0].count == before  # nothing from the main room
    assert video.layer == "off" and rig.subscribers[0].state == "connected"
    rig.router.handle(PeerMove(peer_id="sub0", room_id="room"))  # back, same transport
    settle(rig)
    rig.feed(rig.video_packet("f", keyframe=True))
    assert video.layer == "high"


def test_a_receiving_section_no_longer_subscribed_goes_inactive_and_gets_nothing() -> None:
    # A client keeps its receiving sections when a track leaves its room (it may reuse them):
    # offering again without naming the track must end what that section received.
    rig = Rig(1)
    rig.sinks[0].kept = []
    answer = rig.router.handle(
        PeerOffer(peer_id="sub0", sdp=OFFER, subscriptions={RECV_VIDEO_MID: rig.video.producer_id})
    )
    assert isinstance(answer, Answer)
    audio_section = answer.sdp.split(f"a=mid:{RECV_AUDIO_MID}\r\n")[1].split("m=")[0]
    assert "a=inactive" in audio_section and "a=ssrc:" not in audio_section
    assert rig.audio.producer_id not in rig.subscribers[0].consumers
    for _ in range(3):
        rig.feed(rig.audio_packet())
    assert rig.sinks[0].rtp() == []


def test_audio_is_heard_again_when_the_peer_comes_back_to_the_room() -> None:
    rig = Rig(1)
    audio = rig.subscribers[0].consumers[rig.audio.producer_id]
    rig.sinks[0].kept = []
    to_publisher = rig.publisher._send
    assert isinstance(to_publisher, Sink)
    to_publisher.kept = []
    rig.feed(rig.audio_packet())
    rig.router.handle(RoomCreate(room_id="breakout-1"))
    rig.router.handle(PeerMove(peer_id="sub0", room_id="breakout-1"))
    for _ in range(3):
        rig.feed(rig.audio_packet())  # said in the main room while the peer is away
    rig.router.handle(PeerMove(peer_id="sub0", room_id="room"))  # its subscription kept
    for _ in range(2):
        rig.feed(rig.audio_packet())
    heard = [h for h in map(parse_rtp, rig.sinks[0].rtp()) if h is not None]
    assert [h.ssrc for h in heard] == [audio.ssrc] * 3
    first = heard[0].sequence
    assert [h.sequence for h in heard] == [first, first + 1, first + 2]  # no gap to conceal
    # Audio has no keyframes: nobody asks the publisher for one on its audio stream.
    session = SrtpPair.from_keys(SrtpProfile.AEAD_AES_128_GCM, SFU_KEY, KEY)
    feedback = [session.unprotect_rtcp(p) for p in to_publisher.kept]
    assert None not in feedback
    plis = [p for plain in feedback if plain for p in parse_rtcp(plain) if isinstance(p, Pli)]
    assert AUDIO_SSRC not in {p.media_ssrc for p in plis}


def test_short_of_bandwidth_a_subscriber_gets_fewer_frames_of_the_same_layer_without_gaps() -> None:
    rig = Rig(1)
    consumer = flowing(rig)
    settle(rig)
    rig.feed(rig.video_packet("f", keyframe=True))
    assert consumer.layer == "high"
    rig.sinks[0].kept = []
    # Chrome's VP8 has three temporal layers: frames T0 T2 T1 T2, each here of two packets.
    pattern = (0, 2, 1, 2)

    def frames(count: int, sync: bool = False) -> None:
        for index in range(count):
            tid = pattern[index % 4]
            rig.feed(rig.video_packet("f", tid=tid, sync=sync and tid > 0))
            rig.feed(rig.video_packet("f", tid=tid, start=False))

    frames(4)
    encodings = consumer.producer.encodings
    ladder = ([60_000, 100_000, 150_000], [200_000, 330_000, 500_000], [600_000, 10**6, 15 * 10**5])
    for encoding, rates in zip(encodings, ladder, strict=True):
        encoding.temporal_bitrates = rates
        encoding.bitrate = rates[-1]
    remb(rig, 1_200_000)  # enough for the top encoding at half its frame rate
    settle(rig)
    assert consumer.target is encodings[2] and consumer.temporal_target == 1
    frames(8)  # the T2 frames are no longer forwarded
    remb(rig, 5_000_000)
    settle(rig)
    frames(4)  # T2 comes back only at a frame the publisher marks as a layer sync
    frames(4, sync=True)

    received = [h for h in map(parse_rtp, rig.sinks[0].rtp()) if h is not None]
    video = [(h, p) for h, p in zip(received, rig.sinks[0].rtp(), strict=True)]
    video = [(h, p) for h, p in video if h.ssrc == consumer.ssrc]
    # All four; T0 and T1 of eight; T0 and T1 of four (no sync yet); from the sync on, all.
    assert len(video) == 2 * (4 + 4 + 2 + 4)
    sequences = [h.sequence for h, _ in video]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    descriptors = [parse_vp8(p, h.payload_start, h.payload_end) for h, p in video]
    pictures = [d.picture_id for d in descriptors[::2] if d is not None]
    assert pictures == list(range(pictures[0], pictures[0] + len(pictures)))
    tl0s = [d.tl0picidx for d in descriptors[::2] if d is not None]
    assert all(b - a in (0, 1) for a, b in itertools.pairwise(tl0s))


def test_an_encoding_measures_each_temporal_layer_with_those_below_it() -> None:
    rig = Rig(1)
    consumer = rig.subscribers[0].consumers[rig.video.producer_id]
    encoding = consumer.producer.encodings[0]
    start = time.monotonic()
    encoding.measure(start)
    for index in range(40):  # T0 T2 T1 T2 of 1,100 bytes of payload each
        rig.feed(rig.video_packet("q", tid=(0, 2, 1, 2)[index % 4]))
    encoding.measure(start + 1.0)
    t0, t1, t2 = encoding.temporal_bitrates
    assert t1 == 2 * t0 and t2 == 4 * t0 and t2 == encoding.bitrate
    assert 40 * 1100 * 8 < encoding.bitrate < 40 * 1300 * 8


def test_a_packet_the_publisher_sends_again_on_its_rtx_stream_fills_the_subscribers_gap() -> None:
    rig = Rig(1)
    consumer = flowing(rig)
    rig.router.handle(PeerLayer(peer_id="sub0", producer_id=rig.video.producer_id, layer="low"))
    rig.feed(rig.video_packet("q", keyframe=True))
    rig.sinks[0].kept = []
    rig.feed(rig.rtx_packet("q", b""))  # a bandwidth probe: padding only, nothing to forward
    rig.feed(rig.video_packet("q", size=500))
    arrived_plain = rig.last_plain
    rig.video_packet("q", size=700)  # never arrives
    lost_plain = rig.last_plain
    rig.feed(rig.video_packet("q", size=900))
    rig.feed(rig.rtx_packet("q", lost_plain))  # after our NACK: the same packet, wrapped
    rig.feed(rig.rtx_packet("q", lost_plain))  # again: already here
    rig.feed(rig.rtx_packet("q", arrived_plain))  # a probe made of a packet sent before

    video = [h for h in map(parse_rtp, rig.sinks[0].rtp()) if h is not None]
    video = [h for h in video if h.ssrc == consumer.ssrc]
    # In order of arrival: the one before, the one after, then the repaired one between;
    # nothing twice.
    first = video[0].sequence
    assert [h.sequence - first for h in video] == [0, 2, 1]
    sizes = [h.payload_end - h.payload_start for h in video]
    assert sizes == [500, 900, 700]
    publisher = rig.router.peers["pub"]
    assert publisher.rtx_by_ssrc[LAYER_SSRCS["q"] + 0x100] is consumer.current
    assert publisher.by_ssrc[LAYER_SSRCS["q"]] is consumer.current


def test_a_stream_without_temporal_layers_is_measured_as_one() -> None:
    # H.264 (or VP8 without the T bit): everything counts as the base layer.
    params = RtpParams(mid="1", kind="video", codec="h264", payload_type=102, clock_rate=90000)
    encoding = Producer("p", cast(Any, None), "camera", params, [], [1234]).encodings[0]
    encoding.measure(10.0)
    for sequence in range(50):
        packet = struct.pack("!BBHII", 0x80, 102, sequence, sequence * 3000, 1234)
        packet += b"\x41" + bytes(999)  # a non-IDR slice
        header = parse_rtp(packet)
        assert header is not None
        encoding.receive(packet, header, 10.5)
    encoding.measure(11.0)
    assert encoding.temporal_bitrates == [encoding.bitrate] == [50 * 1012 * 8]
