"""What is in a picture, a sound or a film: size, length, a thumbnail, a waveform.

Every function here blocks (Pillow, FFmpeg): call them in a thread. Each bounds its own
work: an image's size is read from its header and refused before anything is decoded
when it has too many pixels; a JPEG is decoded at a reduced scale for its thumbnail; a
video gives one frame and its length from the container (or from packet timestamps,
which are read without decoding); a voice message is decoded for its waveform, but past
``WAVEFORM_MAX_PACKETS`` only a short run of packets per bar is.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.container
import av.stream
from PIL import Image, features

THUMBNAIL_PX = 320
WAVEFORM_BARS = 64
# Opus packets are 20 ms: ten minutes of speech decoded at most, however long the message.
WAVEFORM_MAX_PACKETS = 30_000
# Packets decoded, but not measured, where decoding resumes after skipping some.
WAVEFORM_WARM_UP = 2
# Reading a container's packets (timestamps, no decoding) stops here.
SCAN_MAX_PACKETS = 2_000_000
# Packets read looking for a video's first picture.
FIRST_FRAME_MAX_PACKETS = 300
# The loudest bar is drawn full height, unless the whole message is quieter than this.
QUIET_PEAK = 1024

_ORIENTATION_TAG = 0x0112
# EXIF orientation → the transposition that shows the picture upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class MediaRefused(Exception):
    """The content cannot serve as what it was sent as."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.message = message
        # A decompression bomb (too many pixels), rather than something undecodable.
        self.too_large = too_large


@dataclass(frozen=True, slots=True)
class Thumbnail:
    data: bytes
    mime: str


@dataclass(frozen=True, slots=True)
class ImageFacts:
    width: int
    height: int
    thumbnail: Thumbnail


@dataclass(frozen=True, slots=True)
class AvFacts:
    video_codec: str | None
    audio_codec: str | None
    duration_ms: int | None
    width: int | None = None
    height: int | None = None
    thumbnail: Thumbnail | None = None
    waveform: tuple[int, ...] | None = None


def photo_formats() -> dict[str, str]:
    """The image types we decode (MIME type → Pillow format)."""
    formats = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
    if features.check("avif"):
        formats["image/avif"] = "AVIF"
    return formats


# --- pictures ---------------------------------------------------------------------------


def image_facts(path: Path, mime: str, max_pixels: int) -> ImageFacts:
    """Size (as shown, EXIF orientation applied) and a thumbnail of a picture."""
    pillow_format = photo_formats().get(mime)
    if pillow_format is None:
        raise MediaRefused(f"{mime} is not a picture we can show")
    try:
        with Image.open(path, formats=[pillow_format]) as im:
            # Only the header has been read: refuse a bomb before decoding a pixel.
            width, height = im.size
            if width * height > max_pixels:
                raise _too_many_pixels(width, height, max_pixels)
            orientation = im.getexif().get(_ORIENTATION_TAG, 1)
            im.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))  # JPEGs decode at a reduced scale
            thumbnail = _encode_thumbnail(_upright(im, orientation))
    except MediaRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard, above even a generous configured limit.
        raise MediaRefused(
            f"the picture has more pixels than the {max_pixels:,} allowed", too_large=True
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise MediaRefused(f"the picture cannot be decoded ({exc})") from None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return ImageFacts(width, height, thumbnail)


def _too_many_pixels(width: int, height: int, max_pixels: int) -> MediaRefused:
    return MediaRefused(
        f"the picture is {width}×{height} = {width * height:,} pixels;"
        f" at most {max_pixels:,} are allowed",
        too_large=True,
    )


def _upright(im: Image.Image, orientation: object) -> Image.Image:
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return im if method is None else im.transpose(method)


def _encode_thumbnail(im: Image.Image) -> Thumbnail:
    """JPEG, or WebP when the picture has transparency."""
    if im.width > THUMBNAIL_PX or im.height > THUMBNAIL_PX:
        im = im.copy()
        im.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    out = io.BytesIO()
    transparent = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if transparent:
        im.convert("RGBA").save(out, "WEBP", quality=80)
        return Thumbnail(out.getvalue(), "image/webp")
    im.convert("RGB").save(out, "JPEG", quality=80, optimize=True)
    return Thumbnail(out.getvalue(), "image/jpeg")


# --- sound and film -----------------------------------------------------------------------


def av_facts(
    path: Path,
    demuxer: str,
    *,
    max_pixels: int,
    thumbnail: bool = False,
    waveform: bool = False,
) -> AvFacts:
    """Codecs, length, picture size, and on request a thumbnail (the first picture) and a
    voice message's waveform. ``demuxer`` is the one container format tried."""
    try:
        with _open(path, demuxer) as container:
            video = _video_stream(container)
            audio = next(iter(container.streams.audio), None)
            if video is None and audio is None:
                raise MediaRefused("it holds neither sound nor pictures")
            main = video if video is not None else audio
            assert main is not None
            main_index = main.index
            audio_index = None if audio is None else audio.index
            video_codec = None if video is None else video.codec_context.name
            audio_codec = None if audio is None else audio.codec_context.name
            duration_ms = _declared_duration_ms(container, main)
            width = height = 0
            picture = None
            if video is not None:
                width, height = video.codec_context.width, video.codec_context.height
                if thumbnail and 0 < width * height <= max_pixels:
                    picture, rotation = _first_picture(container, video)
                    if rotation % 180:
                        width, height = height, width
        if duration_ms is None:
            duration_ms = _scanned_duration_ms(path, demuxer, main_index)
        bars = None
        if waveform and audio_index is not None:
            bars = voice_waveform(path, demuxer, audio_index)
    except MediaRefused:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError, MemoryError) as exc:
        raise MediaRefused(f"it cannot be read as sound or video ({exc})") from None
    return AvFacts(
        video_codec=video_codec,
        audio_codec=audio_codec,
        duration_ms=duration_ms,
        width=width or None,
        height=height or None,
        thumbnail=picture,
        waveform=bars,
    )


def _open(path: Path, demuxer: str) -> av.container.InputContainer:
    # Naming the demuxer keeps FFmpeg from guessing (a playlist format would open URLs).
    return av.open(str(path), format=demuxer, metadata_errors="ignore")


def _video_stream(container: av.container.InputContainer) -> Any:
    """The first real video stream (an MP3's cover art is a "video" stream too)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _declared_duration_ms(container: av.container.InputContainer, stream: Any) -> int | None:
    if container.duration is not None and container.duration > 0:
        return int(container.duration // 1000)  # AV_TIME_BASE is microseconds
    if stream.duration and stream.time_base:
        return int(stream.duration * stream.time_base * 1000)
    return None


def _packets(path: Path, demuxer: str, index: int) -> Iterator[Any]:
    """The stream's packets with data, in order (no decoding), at most
    ``SCAN_MAX_PACKETS`` of them."""
    with _open(path, demuxer) as container:
        stream = container.streams[index]
        packets = (packet for packet in container.demux(stream) if packet.size)
        yield from itertools.islice(packets, SCAN_MAX_PACKETS)


def _scanned_duration_ms(path: Path, demuxer: str, index: int) -> int | None:
    """The length from packet timestamps, for containers that do not say it (a
    browser's MediaRecorder writes WebM without a duration)."""
    first = end = None
    time_base = None
    for packet in _packets(path, demuxer, index):
        if packet.pts is None:
            continue
        time_base = packet.time_base
        first = packet.pts if first is None else min(first, packet.pts)
        stop = packet.pts + (packet.duration or 0)
        end = stop if end is None else max(end, stop)
    if first is None or end is None or time_base is None:
        return None
    return int((end - first) * time_base * 1000)


def _first_picture(
    container: av.container.InputContainer, stream: Any
) -> tuple[Thumbnail | None, int]:
    """The first picture, upright, and the rotation the container asks for."""
    for frame in _first_frames(container, stream):
        rotation = int(frame.rotation or 0)
        image = frame.to_image()
        if rotation:
            # FFmpeg's display rotation is counterclockwise, like Pillow's.
            image = image.rotate(rotation, expand=True)
        return _encode_thumbnail(image), rotation
    return None, 0


def _first_frames(container: av.container.InputContainer, stream: Any) -> Iterator[Any]:
    for packet in itertools.islice(container.demux(stream), FIRST_FRAME_MAX_PACKETS):
        yield from packet.decode()
    # A decoder that holds frames back (B-frames) gives them up when flushed.
    with contextlib.suppress(av.FFmpegError):
        yield from stream.codec_context.decode(None)


def voice_waveform(
    path: Path, demuxer: str, index: int, bars: int = WAVEFORM_BARS
) -> tuple[int, ...]:
    """``bars`` peak levels (0-255), the loudest full height, over the whole recording.

    Up to ``WAVEFORM_MAX_PACKETS`` packets every packet is decoded. Past that, each bar is
    measured on a run of consecutive packets at its start; the first packets of a run only
    bring the decoder back in step (Opus predicts from the packet before) and are not
    measured."""
    count = sum(1 for _ in _packets(path, demuxer, index))
    if count == 0:
        return (0,) * bars
    sampled = count > WAVEFORM_MAX_PACKETS
    run = max(WAVEFORM_WARM_UP + 1, WAVEFORM_MAX_PACKETS // bars)
    peaks = [-1] * bars
    resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
    bar, in_bar = -1, 0
    for n, packet in enumerate(_packets(path, demuxer, index)):
        now = min(bars - 1, n * bars // count)
        bar, in_bar = (bar, in_bar + 1) if now == bar else (now, 1)
        if sampled and in_bar > run:
            continue
        frames = packet.decode()
        if sampled and in_bar <= WAVEFORM_WARM_UP:
            continue
        for frame in frames:
            for out in resampler.resample(frame):
                samples = array("h", bytes(out.planes[0])[: out.samples * 2])
                if samples:
                    peaks[bar] = max(peaks[bar], max(samples), -min(samples))
    # Bars no packet fell into (a short message) take their left neighbour's level.
    for i in range(bars):
        if peaks[i] < 0:
            peaks[i] = peaks[i - 1] if i else 0
    top = max(max(peaks), QUIET_PEAK)
    return tuple(min(255, round(255 * peak / top)) for peak in peaks)
