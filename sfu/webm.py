"""Writing a recording: VP8 frames muxed as they came, audio decoded, mixed and encoded to
Opus, in a WebM file (PyAV).

``WebmWriter`` is the synchronous core: batches in, a file out. ``WriterThread`` runs it
beside the event loop, since decoding, encoding and disk writes take longer than a packet
callback may (PyAV releases the GIL inside FFmpeg calls).

The file's header carries the video size, so it is written when the first keyframe comes
(its size is in the keyframe) or, for a room without video, after ``VIDEO_WAIT_S`` with
a placeholder size. Until then audio waits in the mixer. Later keyframes may change the
size: VP8 carries it in every keyframe and decoders follow it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from fractions import Fraction

import av
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.codec.context import CodecContext
from av.container import OutputContainer
from av.stream import Stream

from protocol.sfu_control import RecordingEnded, RecordingReason
from sfu.mixer import FRAME_SAMPLES, SAMPLE_RATE, AudioMixer
from sfu.reassembly import Vp8Frame, keyframe_size

__all__ = ["AUDIO_LATENCY", "VIDEO_CLOCK", "Batch", "WebmWriter", "WriterThread"]

logger = logging.getLogger("parta.sfu")

VIDEO_CLOCK = 90_000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK)
AUDIO_TIME_BASE = Fraction(1, SAMPLE_RATE)
# How long the mix waits for late audio before a frame is final.
AUDIO_LATENCY = SAMPLE_RATE // 2
VIDEO_WAIT_S = 2.0
PLACEHOLDER_SIZE = (640, 360)
AUDIO_BITRATE = 48_000
# Quieter than this (by the sender's audio-level extension) is not worth mixing.
QUIET_DBOV = 70


@dataclass(slots=True)
class Batch:
    """What one tick of the recorder hands to the writer."""

    until: int  # the recording clock now, in 48 kHz samples
    video: list[Vp8Frame] = field(default_factory=list)
    # (source id, first sample on the recording clock, Opus payload, level in -dBov or -1)
    audio: list[tuple[str, int, bytes, int]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)  # sources that are gone for good
    final: bool = False


class _Decoder:
    """One source's Opus to 48 kHz mono 16-bit PCM (libopus downmixes by itself)."""

    __slots__ = ("_codec", "_resampler")

    def __init__(self) -> None:
        codec = CodecContext.create("libopus", "r")
        codec.layout = "mono"
        codec.sample_rate = SAMPLE_RATE
        self._codec = codec
        self._resampler: AudioResampler | None = None

    def decode(self, payload: bytes) -> list[memoryview]:
        pcm: list[memoryview] = []
        for frame in self._codec.decode(av.Packet(payload)):
            frames = [frame]
            if frame.format.name != "s16" or frame.layout.nb_channels != 1:
                if self._resampler is None:
                    self._resampler = AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
                frames = self._resampler.resample(frame)
            pcm.extend(memoryview(out.planes[0]).cast("h")[: out.samples] for out in frames)
        return pcm


class WebmWriter:
    def __init__(self, path: str) -> None:
        # Created here (FFmpeg opens it only with the first packet), so a bad path fails the
        # request that asked for it; never over an existing file.
        with open(path, "xb"):
            pass
        self._container: OutputContainer = av.open(path, "w", format="webm")
        self.path = path
        self._video: Stream | None = None
        self._audio: AudioStream | None = None
        self._mixer = AudioMixer()
        self._decoders: dict[str, _Decoder] = {}
        self._last_pts = -1
        self.video_frames = 0
        self.audio_frames = 0
        self.bad_packets = 0

    @property
    def duration_s(self) -> float:
        """How much recording time the file covers so far."""
        video = self._last_pts / VIDEO_CLOCK if self._last_pts >= 0 else 0.0
        return max(video, self._mixer.position / SAMPLE_RATE)

    def write(self, batch: Batch) -> None:
        mixer = self._mixer
        for source, position, payload, level in batch.audio:
            decoder = self._decoders.get(source)
            if decoder is None:
                decoder = self._decoders[source] = _Decoder()
            try:
                decoded = decoder.decode(payload)  # always, to keep the decoder's state
            except (av.FFmpegError, ValueError):
                self.bad_packets += 1  # a corrupt packet from one publisher is its silence
                continue
            if level > QUIET_DBOV:
                continue  # a muted or silent microphone: adding it is most of the mix's cost
            for pcm in decoded:
                mixer.add(position, pcm)
                position += len(pcm)
        for source in batch.ended:
            self._decoders.pop(source, None)
        if self._audio is None:
            first = next((f for f in batch.video if f.keyframe), None)
            if first is not None:
                self._start(keyframe_size(first.data) or PLACEHOLDER_SIZE)
            elif batch.until >= VIDEO_WAIT_S * SAMPLE_RATE or batch.final:
                self._start(PLACEHOLDER_SIZE)
            else:
                return
        for frame in batch.video:
            self._mux_video(frame)
        self._mix(batch.until if batch.final else batch.until - AUDIO_LATENCY)

    def _start(self, size: tuple[int, int]) -> None:
        container = self._container
        self._video = container.add_mux_stream("vp8", width=size[0], height=size[1])
        audio = container.add_stream("libopus", rate=SAMPLE_RATE)
        audio.layout = "mono"
        audio.bit_rate = AUDIO_BITRATE
        self._audio = audio

    def _mux_video(self, frame: Vp8Frame) -> None:
        if frame.pts <= self._last_pts:
            return  # the recorder keeps pts increasing; a muxer would refuse this one
        packet = av.Packet(frame.data)
        packet.stream = self._video  # type: ignore[assignment]
        packet.time_base = VIDEO_TIME_BASE
        packet.pts = packet.dts = frame.pts
        packet.is_keyframe = frame.keyframe
        self._container.mux(packet)
        self._last_pts = frame.pts
        self.video_frames += 1

    def _mix(self, until: int) -> None:
        audio = self._audio
        assert audio is not None
        for first, pcm in self._mixer.pull(until):
            frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
            frame.planes[0].update(pcm)
            frame.sample_rate = SAMPLE_RATE
            frame.pts = first
            frame.time_base = AUDIO_TIME_BASE
            self._container.mux(audio.encode(frame))
            self.audio_frames += 1

    def close(self) -> None:
        """Finish the file: the encoder's last packets and the trailer (duration, cues)."""
        try:
            if self._audio is None:
                self._start(PLACEHOLDER_SIZE)
            if not self.audio_frames and not self.video_frames:
                self._mix(FRAME_SAMPLES)  # stopped at once: 20 ms of silence keeps it a file
            assert self._audio is not None
            self._container.mux(self._audio.encode(None))
        finally:
            self._container.close()


class WriterThread:
    """A ``WebmWriter`` on its own thread: the loop hands it batches and never waits."""

    def __init__(self, writer: WebmWriter, room_id: str) -> None:
        self._writer = writer
        self._room_id = room_id
        self._queue: queue.SimpleQueue[tuple[Batch, RecordingReason] | Batch] = queue.SimpleQueue()
        self.error = ""  # set by the thread when writing failed; the recorder then stops
        self.done: Future[RecordingEnded] = Future()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{room_id}", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def submit(self, batch: Batch) -> None:
        self._queue.put(batch)

    def finish(self, batch: Batch, reason: RecordingReason) -> Future[RecordingEnded]:
        batch.final = True
        self._queue.put((batch, reason))
        return self.done

    def _run(self) -> None:
        writer = self._writer
        reason: RecordingReason = "error"
        try:
            while True:
                item = self._queue.get()
                if isinstance(item, tuple):
                    batch, reason = item
                    writer.write(batch)
                    break
                writer.write(item)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            logger.exception("recording failed", extra={"room": self._room_id})
        try:
            writer.close()
        except Exception as exc:
            self.error = self.error or f"{type(exc).__name__}: {exc}"
            logger.exception("recording could not be finished", extra={"room": self._room_id})
        try:
            size = os.path.getsize(writer.path)
        except OSError:
            size = 0
        self.done.set_result(
            RecordingEnded(
                room_id=self._room_id,
                path=writer.path,
                duration_s=round(writer.duration_s, 3),
                size=size,
                reason="error" if self.error else reason,
                error=self.error,
            )
        )
