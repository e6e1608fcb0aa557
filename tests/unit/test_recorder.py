"""The recorder's parts without a network: packets back in order, VP8 frames from real
encoder packets (aiortc's libvpx packetizer), RTP time on the recording clock, the audio
mix, the WebM writer read back with PyAV, and the control requests on an in-memory router.
"""

from __future__ import annotations

import fractions
import itertools
import math
import os
import random
import time
from array import array
from functools import cache
from pathlib import Path

import av
import pytest
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import AudioFrame, VideoFrame
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.micro.sfu_rig import Rig
from protocol.sfu_control import (
    ControlError,
    Done,
    PeerClose,
    RecordingEnded,
    RecordStart,
    RecordStop,
    RoomClose,
)
from sfu.mixer import FRAME_SAMPLES, AudioMixer
from sfu.producer import Encoding, Producer, RtpParams
from sfu.reassembly import ClockMap, SequenceBuffer, Vp8Assembler, Vp8Frame, keyframe_size
from sfu.recorder import Recorder
from sfu.router import Room
from sfu.rtp import parse_rtp, write_header
from sfu.seq import KeyFrameRequester
from sfu.vp8 import Vp8Info, parse_vp8
from sfu.webm import Batch, WebmWriter

# --- VP8 frames from RTP ----------------------------------------------------------------


@cache
def vp8_stream(
    width: int = 320, height: int = 240, count: int = 12
) -> tuple[tuple[bytes, ...], ...]:
    """RTP payloads of ``count`` frames, a keyframe first; noisy, so frames span packets."""
    encoder = get_encoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000))
    rng = random.Random(7)
    frames: list[tuple[bytes, ...]] = []
    for index in range(count):
        frame = VideoFrame(width=width, height=height)
        for plane in frame.planes:
            plane.update(rng.randbytes(plane.buffer_size))
        frame.pts = index * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, _ = encoder.encode(frame)
        frames.append(tuple(payloads))
    return tuple(frames)


def info_of(payload: bytes) -> Vp8Info:
    info = parse_vp8(payload, 0, len(payload))
    assert info is not None
    return info


def whole(payloads: tuple[bytes, ...]) -> bytes:
    return b"".join(p[info_of(p).descriptor_len :] for p in payloads)


Packet = tuple[int, int, bool, bytes]  # sequence, timestamp, marker, payload


def packets_of(frames: tuple[tuple[bytes, ...], ...], first_seq: int = 100) -> list[Packet]:
    out = []
    sequence = first_seq
    for index, payloads in enumerate(frames):
        for n, payload in enumerate(payloads):
            out.append((sequence & 0xFFFF, index * 3000, n == len(payloads) - 1, payload))
            sequence += 1
    return out


def assemble(assembler: Vp8Assembler, packets: list[Packet]) -> list[Vp8Frame]:
    frames: list[Vp8Frame] = []
    for sequence, timestamp, marker, payload in packets:
        info = info_of(payload)
        assembler.push(
            sequence, timestamp, marker, info, payload[info.descriptor_len :], 0.0, frames
        )
    return frames


def test_frames_come_out_as_the_encoder_made_them() -> None:
    stream = vp8_stream()
    assert len(stream[0]) > 1  # the keyframe spans several packets
    frames = assemble(Vp8Assembler(), packets_of(stream, first_seq=65530))  # wraps around
    assert [f.data for f in frames] == [whole(p) for p in stream]
    assert [f.keyframe for f in frames] == [True] + [False] * (len(stream) - 1)
    assert [f.timestamp for f in frames] == [i * 3000 for i in range(len(stream))]
    assert keyframe_size(frames[0].data) == (320, 240)
    assert keyframe_size(frames[1].data) is None


def test_a_lost_packet_drops_frames_until_the_next_keyframe() -> None:
    stream = vp8_stream()
    packets = packets_of(stream)
    lost = len(stream[0]) + len(stream[1]) + 1  # inside frame 2 (if it spans packets) or frame 3
    assembler = Vp8Assembler()
    frames = assemble(assembler, packets[:lost] + packets[lost + 1 :])
    assert [f.timestamp for f in frames] == [0, 3000]  # nothing after the loss decodes
    assert assembler.waiting and assembler.broken == 1
    # The publisher answers the PLI with a keyframe: frames flow again.
    again = vp8_stream(count=2)
    restart = packets_of(again, first_seq=packets[-1][0] + 1)
    frames = assemble(assembler, restart)
    assert [f.keyframe for f in frames] == [True, False] and not assembler.waiting


def test_a_stream_joined_mid_frame_starts_at_a_keyframe() -> None:
    stream = vp8_stream()
    packets = packets_of(stream)
    start = len(stream[0]) + 1  # the middle of the first delta frame
    assert assemble(Vp8Assembler(), packets[start:]) == []


def test_a_frame_without_a_marker_ends_where_the_next_one_starts() -> None:
    stream = vp8_stream(count=3)
    packets = [(s, t, False, p) for s, t, _, p in packets_of(stream)]
    frames = assemble(Vp8Assembler(), packets)
    assert [f.data for f in frames] == [whole(stream[0]), whole(stream[1])]  # the last waits


@settings(database=None, deadline=None, max_examples=200)
@given(st.data())
def test_whatever_the_network_does_frames_come_out_whole_and_in_order(
    data: st.DataObject,
) -> None:
    """Packets lost, duplicated and reordered (within a tick's window): every frame that
    comes out is one the encoder made, in order, and none follows a broken one before a
    keyframe."""
    stream = vp8_stream(96, 64, 8) + vp8_stream(96, 64, 8)  # a second keyframe halfway
    packets = packets_of(stream, first_seq=data.draw(st.integers(0, 0xFFFF)))
    buffer: SequenceBuffer[Packet] = SequenceBuffer(hold_s=0.05)
    assembler = Vp8Assembler()
    frames: list[Vp8Frame] = []
    now = 0.0
    window = data.draw(st.integers(1, 6))
    lost = data.draw(st.sets(st.integers(0, len(packets) - 1), max_size=4))
    arrived = [p for i, p in enumerate(packets) if i not in lost]
    arrived += data.draw(st.lists(st.sampled_from(packets), max_size=3))  # duplicates
    for start in range(0, len(arrived), window):
        chunk = arrived[start : start + window]
        for packet in data.draw(st.permutations(chunk)):
            buffer.push(packet[0], packet)
        now += 0.02
        for sequence, timestamp, marker, payload in buffer.pop(now):
            info = info_of(payload)
            assembler.push(
                sequence, timestamp, marker, info, payload[info.descriptor_len :], now, frames
            )
    made = {i * 3000: whole(p) for i, p in enumerate(stream)}
    keyframes = {i * 3000 for i, p in enumerate(stream) if info_of(p[0]).is_keyframe}
    timestamps = [f.timestamp for f in frames]
    assert timestamps == sorted(set(timestamps))
    for frame in frames:
        assert frame.data == made[frame.timestamp]
        assert frame.keyframe == (frame.timestamp in keyframes)
    for before, after in itertools.pairwise([None, *frames]):
        if before is None or after.timestamp != before.timestamp + 3000:
            assert after.keyframe  # after a gap, only from a keyframe on
    if not lost:
        assert len(frames) == len(stream)


def test_packets_are_put_back_in_order_and_a_gap_is_given_up_after_the_hold() -> None:
    buffer: SequenceBuffer[int] = SequenceBuffer(hold_s=0.1)
    for sequence in (65534, 0, 65535, 1):  # reordered across the wrap
        buffer.push(sequence, sequence)
    assert buffer.pop(0.0) == [65534, 65535, 0, 1]
    buffer.push(3, 3)
    buffer.push(4, 4)
    assert buffer.pop(1.0) == []  # 2 is missing: wait for it
    buffer.push(2, 2)  # the retransmission
    assert buffer.pop(1.05) == [2, 3, 4]
    buffer.push(6, 6)
    assert buffer.pop(2.0) == []
    assert buffer.pop(2.2) == [6]  # 5 is given up
    buffer.push(5, 5)  # too late now
    buffer.push(7, 7)
    assert buffer.pop(2.3) == [7]


def test_rtp_time_follows_the_stream_and_re_anchors_on_a_jump() -> None:
    clock = ClockMap(resync=9000)
    assert clock.map(4_294_964_296, 1000) == 1000  # anchored where it arrived
    assert clock.map(1000, 1100) == 5000  # 4000 ticks later, across the 32-bit wrap
    assert clock.map(4000, 8500) == 8000  # jitter does not move it
    assert clock.map(900_000, 9000) == 9000  # the sender's clock jumped: anchored again
    assert clock.map(903_000, 12_100) == 12_000


# --- the audio mix ------------------------------------------------------------------------


def test_sources_are_summed_and_clipped_and_silence_fills_the_gaps() -> None:
    mixer = AudioMixer()
    mixer.add(0, [1000] * FRAME_SAMPLES)
    mixer.add(480, [30_000] * FRAME_SAMPLES)  # half into frame 0, half into frame 1
    mixer.add(FRAME_SAMPLES, [-200] * 10)
    frames = mixer.pull(3 * FRAME_SAMPLES + 5)
    assert [first for first, _ in frames] == [0, FRAME_SAMPLES, 2 * FRAME_SAMPLES]
    zero, one, two = (array("h", pcm) for _, pcm in frames)
    assert zero[:480] == array("h", [1000] * 480) and set(zero[480:]) == {31_000}
    assert one[:10] == array("h", [29_800] * 10) and set(one[10:480]) == {30_000}
    assert set(one[480:]) == {0}
    assert two == array("h", bytes(2 * FRAME_SAMPLES))  # nobody spoke
    mixer.add(3 * FRAME_SAMPLES, [20_000] * FRAME_SAMPLES)
    mixer.add(3 * FRAME_SAMPLES, [20_000] * FRAME_SAMPLES)
    mixer.add(3 * FRAME_SAMPLES, [-30_000] * 5)
    ((_, pcm),) = mixer.pull(4 * FRAME_SAMPLES)
    loud = array("h", pcm)
    assert loud[:5] == array("h", [10_000] * 5) and set(loud[5:]) == {32767}


def test_late_audio_is_dropped_and_far_future_audio_is_bounded() -> None:
    mixer = AudioMixer(horizon_s=0.1)  # 5 frames ahead
    mixer.pull(2 * FRAME_SAMPLES)
    mixer.add(FRAME_SAMPLES, [100] * 2 * FRAME_SAMPLES)  # its first half is too late
    mixer.add(100 * FRAME_SAMPLES, [100] * FRAME_SAMPLES)  # beyond the horizon
    frames = mixer.pull(200 * FRAME_SAMPLES)
    assert len(frames) == 198
    assert set(array("h", frames[0][1])) == {100}
    assert all(pcm == bytes(2 * FRAME_SAMPLES) for _, pcm in frames[1:])


# --- the WebM file ----------------------------------------------------------------------------


def opus_tone(frequency: float, count: int) -> list[bytes]:
    """``count`` 20 ms Opus packets of a tone, as a browser would send them."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = 48000
    encoder.layout = "stereo"
    encoder.format = "s16"
    packets: list[bytes] = []
    for index in range(count):
        frame = AudioFrame(format="s16", layout="stereo", samples=960)
        samples = array("h")
        for n in range(960):
            value = int(8000 * math.sin(2 * math.pi * frequency * (index * 960 + n) / 48000))
            samples.extend((value, value))
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = 48000
        frame.pts = index * 960
        packets.extend(bytes(p) for p in encoder.encode(frame))
    return packets


def level(frame: AudioFrame) -> float:
    data = memoryview(frame.planes[0]).cast("f")[: frame.samples]
    return math.sqrt(sum(x * x for x in data) / max(1, len(data)))


def test_the_writer_makes_a_webm_file_that_decodes(tmp_path: Path) -> None:
    """Two sources' audio mixed, then video of two sizes (a switch), for 2 s."""
    path = str(tmp_path / "r.webm")
    writer = WebmWriter(path)
    small, large = vp8_stream(320, 240, 30), vp8_stream(640, 480, 30)
    tones = {"a": opus_tone(440, 100), "b": opus_tone(660, 50)}  # b leaves after 1 s
    for tick in range(100):  # 20 ms each
        batch = Batch(until=(tick + 1) * 960)
        batch.audio = [(s, tick * 960, p[tick], 30) for s, p in tones.items() if tick < len(p)]
        if tick == 50:
            batch.ended = ["b"]
        if tick % 2 == 0:  # video at 25 fps, switching to a larger source at 1 s
            source = small if tick < 50 else large
            index = tick // 2 if tick < 50 else tick // 2 - 25
            frame = Vp8Frame(whole(source[index]), 0, index == 0, 0.0)
            frame.pts = tick * 1800
            batch.video = [frame]
        writer.write(batch)
    writer.write(Batch(until=2 * 48000, final=True))
    writer.close()
    assert writer.video_frames == 50 and writer.audio_frames == 100
    assert writer.duration_s == pytest.approx(2.0)

    with av.open(path) as container:
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(2.0, abs=0.05)
        video = list(container.decode(video=0))
    assert len(video) == 50
    assert {(f.width, f.height) for f in video} == {(320, 240), (640, 480)}
    assert video[0].time == 0 and video[-1].time == pytest.approx(1.96)
    with av.open(path) as container:
        audio = list(container.decode(audio=0))
    assert sum(f.samples for f in audio) / 48000 == pytest.approx(2.0, abs=0.05)
    assert level(audio[25]) > 0.1  # both tones
    assert level(audio[75]) > 0.05  # one


def test_a_room_without_video_still_gets_a_file_and_muted_microphones_are_not_mixed(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "audio.webm")
    writer = WebmWriter(path)
    loud = opus_tone(1000, 10)
    for tick in range(10):
        batch = Batch(until=(tick + 1) * 960)
        batch.audio = [("muted", tick * 960, loud[tick], 127)]  # its level says silence
        writer.write(batch)
    writer.write(Batch(until=10 * 960, final=True))
    writer.close()
    with av.open(path) as container:
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(0.2, abs=0.05)
        assert [s.type for s in container.streams] == ["video", "audio"]
        assert all(level(f) < 0.001 for f in container.decode(audio=0))


# --- control requests on the in-memory router -------------------------------------------------


def test_record_start_and_stop_on_a_router(tmp_path: Path) -> None:
    rig = Rig(1)
    router = rig.router
    for rid in "qhf":
        rig.feed(rig.video_packet(rid, keyframe=True))
    path = str(tmp_path / "room.webm")
    assert router.handle(RecordStart(room_id="room", path=path)) == Done()
    with pytest.raises(ControlError) as conflict:
        router.handle(RecordStart(room_id="room", path=path))
    assert conflict.value.code == "conflict"
    recorder = router.rooms["room"].recorder
    assert recorder is not None
    rig.feed(rig.video_packet("f", keyframe=True))  # the recorder starts on the top layer
    for _ in range(10):
        rig.feed(rig.audio_packet())
        rig.feed(rig.video_packet("f"))
        rig.feed(rig.video_packet("q"))
    router.tick(time.monotonic() + 0.2)
    assert rig.sinks[0].count > 0  # the subscriber is served as before
    finished = router.handle(RecordStop(room_id="room"))
    assert not isinstance(finished, Done)
    result = finished.result(timeout=10)  # type: ignore[union-attr]
    assert isinstance(result, RecordingEnded)
    assert (result.room_id, result.path, result.reason) == ("room", path, "stopped")
    assert result.size == os.path.getsize(path) > 0
    with av.open(path) as container:
        video = container.streams.video[0]
        assert (video.width, video.height) == (640, 360)  # the rig's frames carry no size
        assert len([p for p in container.demux(video) if p.size]) == 11
    assert router.rooms["room"].recorder is None
    with pytest.raises(ControlError) as not_recording:
        router.handle(RecordStop(room_id="room"))
    assert not_recording.value.code == "not_found"


def test_an_empty_recording_is_still_a_webm_file(tmp_path: Path) -> None:
    rig = Rig(0)
    path = str(tmp_path / "empty.webm")
    rig.router.handle(RecordStart(room_id="room", path=path))
    finished = rig.router.handle(RecordStop(room_id="room"))
    result = finished.result(timeout=10)  # type: ignore[union-attr]
    assert result.size > 0 and result.error == ""
    with av.open(path) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]


def test_bad_paths_are_refused(tmp_path: Path) -> None:
    router = Rig(0).router
    (tmp_path / "taken.webm").write_bytes(b"")
    for path in (
        "relative.webm",
        str(tmp_path / "missing" / "x.webm"),
        str(tmp_path / "taken.webm"),
    ):
        with pytest.raises(ControlError) as refused:
            router.handle(RecordStart(room_id="room", path=path))
        assert refused.value.code == "bad_path"
    with pytest.raises(ControlError) as missing:
        router.handle(RecordStart(room_id="nowhere", path=str(tmp_path / "x.webm")))
    assert missing.value.code == "not_found"


def test_a_recording_outlives_its_publisher_and_ends_with_its_room(tmp_path: Path) -> None:
    rig = Rig(1)
    events: list[tuple[str, object]] = []
    rig.router._emit = lambda type_, body: events.append((type_, body))
    path = str(tmp_path / "room.webm")
    rig.router.handle(RecordStart(room_id="room", path=path))
    rig.feed(rig.audio_packet())
    rig.router.tick(time.monotonic())
    rig.router.handle(PeerClose(peer_id="pub"))  # the only publisher drops out
    rig.router.tick(time.monotonic())
    assert rig.router.rooms["room"].recorder is not None
    rig.router.handle(RoomClose(room_id="room"))
    deadline = time.monotonic() + 10
    while not any(e[0] == "recording.ended" for e in events) and time.monotonic() < deadline:
        time.sleep(0.01)
        rig.router.tick(time.monotonic())
    [(_, body)] = [e for e in events if e[0] == "recording.ended"]
    assert isinstance(body, RecordingEnded) and body.reason == "room_closed"
    assert body.size == os.path.getsize(path)


# --- which video is recorded ---------------------------------------------------------------


class Publisher:
    """Just what a producer needs of its peer, and the PLIs it was asked for."""

    def __init__(self, room: Room, peer_id: str) -> None:
        self.peer_id = peer_id
        self.room = room
        self.producers: dict[str, Producer] = {}
        self.keyframes = KeyFrameRequester()
        self.plis: list[str] = []
        self._sequence: dict[int, int] = {}
        room.peers[peer_id] = self  # type: ignore[assignment]

    def request_keyframe(self, encoding: Encoding, now: float) -> None:
        self.plis.append(encoding.producer.producer_id)

    def track(self, source: str, kind: str = "video") -> Producer:
        codec = "vp8" if kind == "video" else "opus"
        params = RtpParams(mid=source, kind=kind, codec=codec, payload_type=96, clock_rate=90000)
        producer_id = f"{self.peer_id}-{source}"
        producer = Producer(producer_id, self, source, params, [], [len(self.producers) + 1])  # type: ignore[arg-type]
        self.producers[producer_id] = producer
        return producer

    def send(self, producer: Producer, now: float, keyframe: bool = False) -> None:
        """One single-packet VP8 frame whose payload names its producer."""
        encoding = producer.encodings[0]
        ssrc = encoding.ssrc or 0
        sequence = self._sequence[ssrc] = self._sequence.get(ssrc, 0) + 1
        payload = b"\x10" + (b"\x00" if keyframe else b"\x01") + producer.producer_id.encode()
        data = write_header(96, True, sequence, sequence * 3000, ssrc, []) + payload
        header = parse_rtp(data)
        assert header is not None
        encoding.receive(data, header, now)


class Kept:
    """A writer that keeps the recorder's batches."""

    error = ""
    backlog = 0

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    def submit(self, batch: Batch) -> None:
        self.batches.append(batch)

    def frames(self) -> list[str]:
        """Which producer each recorded frame came from, and take them."""
        names = [f.data[1:].decode() for b in self.batches for f in b.video]
        self.batches.clear()
        return names


def test_the_recorded_video_follows_the_speaker_and_a_screen_share_first() -> None:
    room = Room("r")
    alice, bob = Publisher(room, "alice"), Publisher(room, "bob")
    alice_camera, bob_camera = alice.track("camera"), bob.track("camera")
    bob_mic = bob.track("mic", "audio")
    now = 100.0
    for publisher, camera in ((alice, alice_camera), (bob, bob_camera)):
        publisher.send(camera, now)
    kept = Kept()
    recorder = Recorder(room, kept, now)  # type: ignore[arg-type]

    def step(*sends: tuple[Publisher, Producer, bool]) -> list[str]:
        nonlocal now
        now += 0.125  # the recorder works every 0.1 s
        for publisher, camera, keyframe in sends:
            publisher.send(camera, now, keyframe)
        recorder.tick(now)
        return kept.frames()

    # Nobody spoke yet: the first camera, from its first keyframe (asked for).
    assert set(alice.plis) == {"alice-camera"}
    assert step((alice, alice_camera, False)) == []
    assert step((alice, alice_camera, True), (alice, alice_camera, False)) == ["alice-camera"] * 2

    # Bob speaks: his camera is asked for a keyframe; Alice's is recorded until it comes.
    room.speakers.current = bob_mic
    assert step((alice, alice_camera, False), (bob, bob_camera, False)) == ["alice-camera"]
    assert set(bob.plis) == {"bob-camera"}
    assert step((bob, bob_camera, True), (alice, alice_camera, False)) == ["bob-camera"]

    # A screen share goes before any camera, and when it ends the speaker's camera is back.
    screen = alice.track("screen")
    alice.send(screen, now)
    assert step((bob, bob_camera, False), (alice, screen, True)) == ["bob-camera"]
    assert step((alice, screen, True), (bob, bob_camera, False)) == ["alice-screen"]
    del alice.producers[screen.producer_id]
    assert step((bob, bob_camera, False)) == []
    assert step((bob, bob_camera, True)) == ["bob-camera"]

    # Bob drops out: Alice's camera again, at a keyframe.
    del bob.producers[bob_camera.producer_id]
    room.speakers.forget(bob_mic)
    del room.peers["bob"]
    assert step((alice, alice_camera, False)) == []
    assert step((alice, alice_camera, True)) == ["alice-camera"]
    pts = [f.pts for b in kept.batches for f in b.video]
    assert pts == sorted(pts)
