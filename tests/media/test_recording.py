"""Recording a room in a real worker: two aiortc participants publish camera and mic, one
drops out halfway, and the file is read back with PyAV: duration within 10% of the wall
time, video frames and audio present. (The 20 s recording the issue asks for is the
lesson's, posted to its chat: tests/media/test_lesson_recording.py.)"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamError, MediaStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame

from protocol.sfu_control import (
    ActiveSpeaker,
    Done,
    PeerClose,
    RecordingEnded,
    RecordStart,
    RecordStop,
    Stats,
    StatsResult,
)
from tests.media.conftest import Sfu, new_pc

RECORD_S = 10.5
RATE = 48000


class Tone(MediaStreamTrack):
    """A sine at ``frequency``, 20 ms a frame, paced like aiortc's own tracks."""

    kind = "audio"

    def __init__(self, frequency: int, amplitude: float) -> None:
        super().__init__()
        # One second of whole cycles, played round and round.
        self._second = array(
            "h",
            (
                int(amplitude * 32767 * math.sin(2 * math.pi * frequency * n / RATE))
                for n in range(RATE)
            ),
        ).tobytes()
        self._samples = int(AUDIO_PTIME * RATE)
        self._sent = 0
        self._start = 0.0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._sent:
            await asyncio.sleep(max(0.0, self._start + self._sent / RATE - time.time()))
        else:
            self._start = time.time()
        offset = (self._sent % RATE) * 2
        frame = AudioFrame(format="s16", layout="mono", samples=self._samples)
        frame.planes[0].update(self._second[offset : offset + self._samples * 2])
        frame.pts = self._sent
        frame.sample_rate = RATE
        frame.time_base = Fraction(1, RATE)
        self._sent += self._samples
        return frame


class Camera(VideoStreamTrack):
    """aiortc's test picture at a size of our choosing (to tell the two cameras apart)."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self._size = (width, height)

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self._size[0], height=self._size[1])
        frame.pts = pts
        frame.time_base = time_base
        return frame


@dataclass
class Contents:
    duration_s: float
    video: list[tuple[float, int, int]]  # time, width, height
    audio_s: float
    rms_by_second: dict[int, float]


def read_back(path: Path) -> Contents:
    with av.open(str(path)) as container:
        assert container.duration is not None
        duration = container.duration / av.time_base
        video = [(f.time or 0.0, f.width, f.height) for f in container.decode(video=0)]
    sums: dict[int, list[float]] = {}
    samples = 0
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            samples += frame.samples
            values = memoryview(frame.planes[0]).cast("f")[: frame.samples]
            entry = sums.setdefault(int(frame.time or 0.0), [0.0, 0])
            entry[0] += sum(x * x for x in values)
            entry[1] += frame.samples
    rms = {second: math.sqrt(total / count) for second, (total, count) in sums.items()}
    return Contents(duration, video, samples / RATE, rms)


async def until(condition: Callable[[], Awaitable[bool]], within_s: float = 10) -> None:
    deadline = time.monotonic() + within_s
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_a_lesson_is_recorded_while_a_participant_drops_out(
    sfu: Sfu, peers: list[RTCPeerConnection], tmp_path: Path
) -> None:
    room = "room-rec"
    pcs: dict[str, RTCPeerConnection] = {}
    # Bob is louder: the active speaker, so his camera is the one recorded until he leaves.
    for name, size, frequency, amplitude in (
        ("alice", (320, 240), 440, 0.1),
        ("bob", (640, 480), 660, 0.5),
    ):
        await sfu.peer(room, name)
        pc = new_pc(peers)
        pc.addTrack(Camera(*size))
        pc.addTrack(Tone(frequency, amplitude))
        await sfu.offer(room, name, pc)
        pcs[name] = pc
    worker = sfu.pool.worker_for(room)
    assert worker is not None

    async def both_sending_bob_speaking() -> bool:
        stats: StatsResult = await worker.request(Stats(room_id=room))
        speakers = [e.peer_id for _, e in sfu.events if isinstance(e, ActiveSpeaker)]
        return all(p.packets_in > 100 for p in stats.peers) and speakers[-1:] == ["bob"]

    await until(both_sending_bob_speaking)

    path = tmp_path / "lesson.webm"
    started = time.monotonic()
    assert await worker.request(RecordStart(room_id=room, path=str(path))) == Done()
    await asyncio.sleep(RECORD_S / 2)
    await worker.request(PeerClose(peer_id="bob"))
    await pcs["bob"].close()
    left_at = time.monotonic() - started
    await asyncio.sleep(started + RECORD_S - time.monotonic())
    result: RecordingEnded = await worker.request(RecordStop(room_id=room))
    wall = time.monotonic() - started

    assert result.reason == "stopped" and result.error == ""
    assert result.size == path.stat().st_size > 0
    assert abs(result.duration_s - wall) < 0.1 * wall
    contents = await asyncio.to_thread(read_back, path)
    assert abs(contents.duration_s - wall) < 0.1 * wall, (contents.duration_s, wall)
    assert abs(contents.audio_s - wall) < 0.1 * wall, (contents.audio_s, wall)

    # Video all along: Bob's camera while he spoke, Alice's after he left.
    times = [t for t, _, _ in contents.video]
    assert len(times) > 10 * wall, len(times)
    assert times[0] < 2 and times[-1] > wall - 2
    assert max(b - a for a, b in itertools.pairwise(times)) < 2
    sizes_before = {(w, h) for t, w, h in contents.video if 1 < t < left_at - 1}
    sizes_after = {(w, h) for t, w, h in contents.video if t > left_at + 2}
    assert sizes_before == {(640, 480)} and sizes_after == {(320, 240)}

    # Audio all along, and not silence: both tones, then Alice's alone.
    seconds = int(wall)
    assert all(contents.rms_by_second.get(s, 0) > 0.01 for s in range(1, seconds - 1))
    before = contents.rms_by_second[int(left_at) - 2]
    after = contents.rms_by_second[int(left_at) + 3]
    assert before > 2 * after > 0.02, (before, after)
    assert not [e for _, e in sfu.events if isinstance(e, RecordingEnded)]
