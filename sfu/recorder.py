"""Recording a room: one video (the screen share, else the active speaker's camera, at the
top layer it is sent in) muxed without re-encoding, and everyone's audio mixed.

The recorder listens like a subscriber that never sends: a tap sits in an encoding's
consumer list, so the producer hands it every packet from the same loop that forwards
to subscribers, and a room that does not record pays nothing. A tap only keeps the
packet; every 0.1 s the worker's tick puts packets in order, assembles VP8 frames,
maps RTP time onto the recording clock, and hands a batch to the writer thread
(``sfu.webm``), which decodes, mixes, encodes and writes.

The recording clock is the worker's monotonic clock since the start. Each stream is
anchored where its first packet arrived and then follows its own timestamps
(``ClockMap``), so switching between speakers or layers neither jumps nor stalls the file.
A switch of the recorded video waits for a keyframe of the new source (asked for with a
PLI, as a subscriber's layer switch does) and keeps recording the old one until then.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol, cast

from protocol.sfu_control import RecordingEnded, RecordingReason
from sfu.mixer import SAMPLE_RATE
from sfu.reassembly import ClockMap, SequenceBuffer, Vp8Assembler, Vp8Frame
from sfu.rtp import RtpHeader
from sfu.vp8 import Vp8Info
from sfu.webm import VIDEO_CLOCK, Batch

if TYPE_CHECKING:
    from sfu.consumer import Consumer
    from sfu.producer import Encoding, Producer
    from sfu.router import Room

__all__ = ["Recorder", "Writer"]

WORK_EVERY_S = 0.1
# Packets a tap keeps between two rounds of work (0.1 s of a 4 Mbit/s video is ~40).
MAX_PACKETS = 2048
# Batches the writer may fall behind by before video is dropped (audio is small).
MAX_BACKLOG = 50
LIVE_S = 1.5  # an encoding that sent nothing for this long is not live
AUDIO_RESYNC = SAMPLE_RATE * 3 // 10
VIDEO_RESYNC = VIDEO_CLOCK
MIN_STEP = VIDEO_CLOCK // 1000  # 1 ms, the WebM timestamp unit

VideoItem = tuple[bytes, RtpHeader, Vp8Info | None, float]


class Writer(Protocol):
    """Where batches go: ``sfu.webm.WriterThread`` (or, in tests, anything that keeps them)."""

    @property
    def error(self) -> str: ...

    @property
    def backlog(self) -> int: ...

    def submit(self, batch: Batch) -> None: ...

    def finish(self, batch: Batch, reason: RecordingReason) -> Future[RecordingEnded]: ...


class _AudioTap:
    """Keeps one audio encoding's packets for the next tick."""

    __slots__ = ("clock", "encoding", "packets", "producer_id")

    def __init__(self, encoding: Encoding) -> None:
        self.encoding = encoding
        self.producer_id = encoding.producer.producer_id
        self.packets: list[tuple[bytes, RtpHeader, int, float]] = []
        self.clock = ClockMap(AUDIO_RESYNC)
        encoding.consumers.append(cast("Consumer", self))

    def forward(
        self,
        data: bytes,
        header: RtpHeader,
        payload: memoryview,
        info: Vp8Info | None,
        level: int,
        now: float,
    ) -> None:
        packets = self.packets
        if len(packets) < MAX_PACKETS:
            packets.append((data, header, level, now))

    def detach(self) -> None:
        _discard(self.encoding.consumers, self)


class _VideoTap:
    """Keeps the recorded video's packets; switches source at a keyframe of the target,
    like a simulcast consumer. ``None`` in ``packets`` marks where a new source begins."""

    __slots__ = ("current", "packets", "target")

    def __init__(self) -> None:
        self.current: Encoding | None = None
        self.target: Encoding | None = None
        self.packets: list[VideoItem | None] = []

    def forward(
        self,
        data: bytes,
        header: RtpHeader,
        payload: memoryview,
        info: Vp8Info | None,
        level: int,
        now: float,
    ) -> None:
        packets = self.packets
        if len(packets) < MAX_PACKETS:
            packets.append((data, header, info, now))

    def retarget(self, encoding: Encoding | None, now: float) -> None:
        if encoding is self.target:
            return
        previous = self.target
        if previous is not None and previous is not self.current:
            _discard(previous.waiting, self)
        self.target = encoding
        if encoding is None:
            self.detach()
        elif encoding is not self.current:
            encoding.waiting.append(cast("Consumer", self))
            _request_keyframe(encoding, now)

    def switch(
        self, encoding: Encoding, header: RtpHeader, info: Vp8Info | None, now: float
    ) -> None:
        """A keyframe of the target arrived (called before it is forwarded to us)."""
        _discard(encoding.waiting, self)
        if encoding is not self.target:
            return
        self.detach()
        self.current = encoding
        encoding.consumers.append(cast("Consumer", self))
        self.packets.append(None)

    def detach(self) -> None:
        """Stop recording the current source (it left the room) before the next one comes."""
        if self.current is not None:
            _discard(self.current.consumers, self)
            self.current = None

    def close(self) -> None:
        self.retarget(None, 0.0)


def _discard(consumers: list[Consumer], tap: object) -> None:
    consumer = cast("Consumer", tap)
    if consumer in consumers:
        consumers.remove(consumer)


def _request_keyframe(encoding: Encoding, now: float) -> None:
    # The publisher's own throttled PLI path, the one subscribers' layer switches use.
    encoding.producer.peer.request_keyframe(encoding, now)


def _live(encoding: Encoding, now: float) -> bool:
    return encoding.last_packet_at > 0 and now - encoding.last_packet_at < LIVE_S


class Recorder:
    def __init__(self, room: Room, writer: Writer, now: float) -> None:
        self.room = room
        self.started_at = now
        self._writer = writer
        self._audio: dict[Producer, _AudioTap] = {}
        self._video = _VideoTap()
        self._order: SequenceBuffer[VideoItem] = SequenceBuffer()
        self._assembler = Vp8Assembler()
        self._video_clock = ClockMap(VIDEO_RESYNC)
        self._last_pts = -MIN_STEP
        self._ended: list[str] = []
        self._finished: Future[RecordingEnded] | None = None
        self._last_work = float("-inf")
        self.tick(now)

    @property
    def error(self) -> str:
        """Why writing failed (empty while it works): the router then ends the recording."""
        return self._writer.error

    # --- every tick ---------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Called every worker tick; works every ``WORK_EVERY_S``: fewer, larger batches
        wake the writer thread less (the mix waits half a second for late audio anyway)."""
        if now - self._last_work < WORK_EVERY_S:
            return
        self._last_work = now
        self._follow(now)
        video = self._video
        if video.target is not None and video.target is not video.current:
            # Still waiting for the new source's keyframe (PLIs are throttled per stream).
            _request_keyframe(video.target, now)
        batch = Batch(until=round((now - self.started_at) * SAMPLE_RATE))
        self._collect(batch, now)
        self._writer.submit(batch)

    def _follow(self, now: float) -> None:
        """Tap the room's audio, and choose the video, as people come, go and speak."""
        audio: list[Producer] = []
        screens: list[Producer] = []
        cameras: list[Producer] = []
        for peer in self.room.peers.values():
            for producer in peer.producers.values():
                if producer.kind == "audio":
                    if producer.codec == "opus":
                        audio.append(producer)
                elif producer.codec == "vp8":
                    (screens if producer.source == "screen" else cameras).append(producer)
        taps = self._audio
        for producer in audio:
            if producer not in taps:
                taps[producer] = _AudioTap(producer.encodings[0])
        if len(taps) != len(audio):
            for producer in [p for p in taps if p not in audio]:
                tap = taps.pop(producer)
                tap.detach()
                self._ended.append(tap.producer_id)
        video = self._video
        if video.current is not None and video.current.producer not in screens + cameras:
            video.detach()  # moved to a breakout room or gone: not a frame more of it
        video.retarget(self._choose_video(screens, cameras, now), now)

    def _choose_video(
        self, screens: list[Producer], cameras: list[Producer], now: float
    ) -> Encoding | None:
        current = self._video.target.producer if self._video.target is not None else None
        speaker = self.room.speakers.current
        for candidates in (screens, cameras):
            live = [p for p in candidates if any(_live(e, now) for e in p.encodings)]
            if not live:
                continue
            if candidates is cameras and speaker is not None:
                spoken = [p for p in live if p.peer is speaker.peer]
                if spoken:
                    return _top(spoken[0], now)
            return _top(current if current in live else live[0], now)
        # Nothing is sending video now: keep what we have, it may come back.
        return self._video.target

    def _collect(self, batch: Batch, now: float) -> None:
        started = self.started_at
        for tap in self._audio.values():
            packets, tap.packets = tap.packets, []
            clock = tap.clock
            for data, header, level, arrival in packets:
                position = clock.map(header.timestamp, round((arrival - started) * SAMPLE_RATE))
                payload = data[header.payload_start : header.payload_end]
                batch.audio.append((tap.producer_id, position, payload, level))
        batch.ended, self._ended = self._ended, []
        video = self._video
        items, video.packets = video.packets, []
        order = self._order
        for item in items:
            if item is None:
                self._new_source()
                order = self._order
            else:
                order.push(item[1].sequence, item)
        frames: list[Vp8Frame] = []
        assembler = self._assembler
        for data, header, info, arrival in order.pop(now):
            if info is not None:
                payload = data[header.payload_start + info.descriptor_len : header.payload_end]
                assembler.push(
                    header.sequence, header.timestamp, header.marker, info, payload, arrival, frames
                )
        if assembler.waiting and items and video.current is not None:
            _request_keyframe(video.current, now)  # a packet was lost: start over at a keyframe
        if self._writer.backlog > MAX_BACKLOG:
            assembler.reset()  # the disk is too slow: drop video, keep the audio going
            return
        for frame in frames:
            arrival = round((frame.arrival - started) * VIDEO_CLOCK)
            pts = self._video_clock.map(frame.timestamp, arrival)
            # Increasing across switches and re-anchoring, in whole WebM ticks.
            frame.pts = max(pts, self._last_pts + MIN_STEP)
            self._last_pts = frame.pts
        batch.video = frames

    def _new_source(self) -> None:
        self._order = SequenceBuffer()
        self._assembler.reset()
        self._video_clock = ClockMap(VIDEO_RESYNC)

    # --- the end ------------------------------------------------------------------------

    def stop(self, now: float, reason: RecordingReason) -> Future[RecordingEnded]:
        """Stop listening and finish the file; the future resolves when it is written."""
        if self._finished is not None:
            return self._finished
        batch = Batch(until=round((now - self.started_at) * SAMPLE_RATE))
        self._collect(batch, now)
        for tap in self._audio.values():
            tap.detach()
        self._audio.clear()
        self._video.close()
        self._finished = self._writer.finish(batch, reason)
        return self._finished


def _top(producer: Producer, now: float) -> Encoding:
    """The best layer the publisher is sending now (what subscribers ask for decides which
    layers Chrome keeps sending; the recorder takes the top of those)."""
    for encoding in reversed(producer.encodings):
        if _live(encoding, now):
            return encoding
    return producer.encodings[-1]
