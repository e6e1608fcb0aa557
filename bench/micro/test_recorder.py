"""What recording a room adds to forwarding: VP8 packets from the publisher to 10
subscribers, with the room not recording, with the recorder alone (its batches dropped),
and with the recorder and its writer thread.

A round is 0.1 s of a ~2 Mbit/s stream: 25 packets (5 frames of 5 packets) and, when
recording, one round of the recorder's work (it runs every 0.1 s of the worker's tick):
order, assemble and hand over what its tap kept. Per packet on the event loop is a
round's median / 25; the recorder's share is the difference from "off". With the writer
thread, the difference also holds the CPU (and GIL) the writer takes meanwhile, which a
busy machine shows in the loop's time.

The recorder's round alone is measured apart, and so is the writer thread's own work
(decode, mix, encode, mux) per second of recording, by the speakers mixed.

Measure CPU time (it counts the writer thread too, and a busy machine disturbs it less):
uv run pytest bench/micro/test_recorder.py --benchmark-enable --benchmark-only \
    --benchmark-timer=time.process_time
"""

from __future__ import annotations

import math
import random
import time
from array import array
from concurrent.futures import Future
from fractions import Fraction
from pathlib import Path

import av
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench.micro.sfu_rig import Rig
from protocol.sfu_control import RecordingEnded, RecordingReason, RecordStart, RecordStop
from sfu.mixer import FRAME_SAMPLES, SAMPLE_RATE
from sfu.reassembly import Vp8Frame
from sfu.recorder import WORK_EVERY_S, Recorder
from sfu.rtcp import build_remb
from sfu.webm import Batch, WebmWriter

SUBSCRIBERS = 10
PACKETS_PER_FRAME = 5
PACKETS_PER_ROUND = 25


class _Dropped:
    """A writer that drops what it is given: the recorder's share alone, without the
    writer thread competing for the CPU and the GIL."""

    error = ""
    backlog = 0

    def submit(self, batch: Batch) -> None:
        pass

    def finish(self, batch: Batch, reason: RecordingReason) -> Future[RecordingEnded]:
        done: Future[RecordingEnded] = Future()
        done.set_result(RecordingEnded(room_id="", path="", duration_s=0, size=0, reason=reason))
        return done


@pytest.mark.parametrize("recording", ["off", "recorder", "recorder+writer"])
def test_forward_video_for_a_tenth_of_a_second(
    benchmark: BenchmarkFixture, recording: str, tmp_path: Path
) -> None:
    rig = Rig(SUBSCRIBERS)
    for n, peer in enumerate(rig.subscribers):
        ssrc = peer.consumers[rig.video.producer_id].ssrc
        rig.rtcp_from_subscriber(n, build_remb(0xABC, 10_000_000, [ssrc]))
    for rid in "qhf":
        rig.feed(rig.video_packet(rid, keyframe=True))
    rig.router._last_allocation = 0.0
    rig.router.tick(time.monotonic())
    room = rig.router.rooms["room"]
    if recording == "recorder":
        room.recorder = Recorder(room, _Dropped(), time.monotonic())
    elif recording == "recorder+writer":
        rig.router.handle(RecordStart(room_id="room", path=str(tmp_path / "bench.webm")))
    rig.feed(rig.video_packet("f", keyframe=True))  # subscribers and recorder start here
    recorder = room.recorder
    rounds = 2000
    packets = iter(
        [
            rig.video_packet("f", start=n % PACKETS_PER_FRAME == 0)
            for n in range(PACKETS_PER_ROUND * (rounds + 100))
        ]
    )
    feed = rig.feed
    clock = [time.monotonic()]

    def one_round() -> None:
        for _ in range(PACKETS_PER_ROUND):
            feed(next(packets))
        if recorder is not None:
            clock[0] += WORK_EVERY_S
            recorder.tick(clock[0])

    before = sum(s.count for s in rig.sinks)
    benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=100)
    # Every round reached every subscriber (one round when benchmarks are disabled).
    assert sum(s.count for s in rig.sinks) - before >= SUBSCRIBERS * PACKETS_PER_ROUND
    benchmark.extra_info["subscribers"] = SUBSCRIBERS
    benchmark.extra_info["packets_per_round"] = PACKETS_PER_ROUND
    if recording == "recorder+writer":
        finished = rig.router.handle(RecordStop(room_id="room"))
        assert not isinstance(finished, RecordingEnded)
        result = finished.result(timeout=30)  # type: ignore[union-attr]
        assert result.error == "" and result.size > 0


def test_recorder_round(benchmark: BenchmarkFixture) -> None:
    """The recorder's work alone for 0.1 s of that stream (25 packets kept by its tap):
    order, assemble 5 frames, time them, hand the batch over (to a writer that drops it)."""
    rig = Rig(SUBSCRIBERS)
    for rid in "qhf":
        rig.feed(rig.video_packet(rid, keyframe=True))
    room = rig.router.rooms["room"]
    clock = [time.monotonic()]
    recorder = room.recorder = Recorder(room, _Dropped(), clock[0])
    rig.feed(rig.video_packet("f", keyframe=True))
    packets = iter(
        [
            rig.video_packet("f", start=n % PACKETS_PER_FRAME == 0)
            for n in range(PACKETS_PER_ROUND * 2200)
        ]
    )

    def keep_a_round() -> tuple[tuple[float], dict[str, object]]:
        for _ in range(PACKETS_PER_ROUND):
            rig.feed(next(packets))
        clock[0] += WORK_EVERY_S
        return (clock[0],), {}

    benchmark.pedantic(recorder.tick, setup=keep_a_round, rounds=2000, warmup_rounds=100)
    benchmark.extra_info["packets_per_round"] = PACKETS_PER_ROUND


def _opus_packets(count: int) -> list[bytes]:
    """20 ms Opus packets of a stereo tone, as a browser sends them."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = SAMPLE_RATE
    encoder.layout = "stereo"
    encoder.format = "s16"
    packets: list[bytes] = []
    for index in range(count):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=FRAME_SAMPLES)
        samples = array(
            "h",
            (
                int(6000 * math.sin(2 * math.pi * 440 * (index * FRAME_SAMPLES + n // 2) / 48000))
                for n in range(2 * FRAME_SAMPLES)
            ),
        )
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = SAMPLE_RATE
        frame.pts = index * FRAME_SAMPLES
        packets.extend(bytes(p) for p in encoder.encode(frame))
    return packets


def _vp8_frames(count: int) -> list[bytes]:
    """640x480 VP8 frames of noise (large ones, like a busy camera), a keyframe first."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 640, 480, "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.bit_rate = 1_500_000
    encoder.options = {"deadline": "realtime", "cpu-used": "8"}
    rng = random.Random(1)
    frames: list[bytes] = []
    for index in range(count):
        frame = av.VideoFrame(640, 480, "yuv420p")
        for plane in frame.planes:
            plane.update(rng.randbytes(plane.buffer_size))
        frame.pts = index
        frames.extend(bytes(p) for p in encoder.encode(frame))
    return frames


@pytest.mark.parametrize("speakers", [2, 10])
def test_write_one_second_of_a_room(
    benchmark: BenchmarkFixture, speakers: int, tmp_path: Path
) -> None:
    """The writer thread's work for 1 s of recording: 30 video frames muxed and every
    speaker's 50 Opus packets decoded and mixed, 50 frames of the mix encoded."""
    opus = _opus_packets(50)
    vp8 = _vp8_frames(30)
    writer = WebmWriter(str(tmp_path / "bench.webm"))
    second = [0]

    def one_second() -> None:
        base = second[0]
        second[0] += 1
        for part in range(10):  # the recorder hands over every 0.1 s
            first = base * 50 + part * 5
            batch = Batch(until=(first + 5) * FRAME_SAMPLES)
            batch.audio = [
                (f"s{s}", (first + k) * FRAME_SAMPLES, opus[(part * 5 + k) % 50], 30)
                for s in range(speakers)
                for k in range(5)
            ]
            for k in range(3):
                index = base * 30 + part * 3 + k
                frame = Vp8Frame(vp8[index % 30], 0, index % 30 == 0, 0.0)
                frame.pts = index * 3000
                batch.video.append(frame)
            writer.write(batch)

    benchmark.pedantic(one_second, rounds=20, iterations=1, warmup_rounds=1)
    writer.close()
    benchmark.extra_info["speakers"] = speakers
