"""Attachments' types come from their bytes: real samples made here (Pillow, PyAV, zipfile,
by hand), programs refused, renamed files recognised, and media facts that hold up.

The ``make_*`` helpers are also what the integration tests upload.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import zipfile
import zlib
from array import array
from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, features

from server.domain.errors import DomainError
from server.files import media
from server.files.media import MediaRefused, av_facts, image_facts
from server.files.service import UnsupportedContent, analyse, clean_name
from server.files.types import HEAD_BYTES, Refused, detect, sniff

# --- samples ---------------------------------------------------------------------------


def tone(seconds: float, rate: int = 48_000, *, loud_after: float = 0.0) -> array[int]:
    """A 440 Hz tone, mono s16: quiet until ``loud_after`` seconds, then loud."""
    return array(
        "h",
        (
            int((9000 if i / rate >= loud_after else 250) * math.sin(2 * math.pi * 440 * i / rate))
            for i in range(int(seconds * rate))
        ),
    )


def make_audio(
    path: Path,
    container: str,
    codec: str,
    seconds: float = 1.0,
    *,
    rate: int = 48_000,
    loud_after: float = 0.0,
    container_options: dict[str, str] | None = None,
) -> Path:
    samples = tone(seconds, rate, loud_after=loud_after)
    with av.open(str(path), "w", format=container, container_options=container_options) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        for at in range(0, len(samples), 960):
            chunk = samples[at : at + 960]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk))
            frame.planes[0].update(chunk.tobytes())
            frame.rate = rate
            frame.pts = at
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def make_voice(path: Path, seconds: float = 3.0, *, loud_after: float = 0.0) -> Path:
    """What a browser's MediaRecorder sends: Opus, here in Ogg (or WebM by the suffix)."""
    container = "webm" if path.suffix == ".webm" else "ogg"
    return make_audio(path, container, "libopus", seconds, loud_after=loud_after)


def make_video(
    path: Path, container: str, codec: str, seconds: float = 1.0, size: tuple[int, int] = (160, 120)
) -> Path:
    fps = 10
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(int(seconds * fps)):
            image = Image.new("RGB", size, (i * 20 % 256, 0, 100))
            image.paste("white", (0, 0, size[0] // 4, size[1] // 4))  # top left, to see turns
            frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def make_image(
    fmt: str, size: tuple[int, int] = (640, 480), *, mode: str = "RGB", orientation: int = 1
) -> bytes:
    image = Image.new(mode, size, "red" if mode != "1" else 1)
    # A mark in the top left corner, to see which way round a thumbnail is.
    image.paste("blue" if mode != "1" else 0, (0, 0, size[0] // 4, size[1] // 4))
    out = io.BytesIO()
    extra = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        extra["exif"] = exif.tobytes()
    image.save(out, fmt, **extra)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A 1-bit PNG of ``width``×``height`` black pixels: tiny on disk, huge decoded. Built
    row by row into the compressor, so making it costs little."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def make_pdf() -> bytes:
    """A one-page PDF written by hand."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def make_office(folder: str) -> bytes:
    """A docx/xlsx/pptx-shaped archive: [Content_Types].xml and the application's folder."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr(f"{folder}/document.xml", "<document/>")
    return out.getvalue()


def make_odf(mimetype: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", "<office:document-content/>", zipfile.ZIP_DEFLATED)
    return out.getvalue()


def make_zip(names: list[str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            archive.writestr(name, b"x")
    return out.getvalue()


def make_ole2(stream: str, clsid: bytes = b"\x00" * 16) -> bytes:
    """A compound file (legacy Office) with a root entry and one named stream."""
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<I", header, 0x30, 0)  # the directory starts at sector 0

    def entry(name: str, kind: int, clsid: bytes = b"\x00" * 16) -> bytes:
        raw = bytearray(128)
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        raw[: len(encoded)] = encoded
        struct.pack_into("<HB", raw, 0x40, len(encoded), kind)
        raw[0x50:0x60] = clsid
        return bytes(raw)

    directory = entry("Root Entry", 5, clsid) + entry(stream, 2) + bytes(256)
    return bytes(header) + directory


ELF = b"\x7fELF\x02\x01\x01" + bytes(57)
PE = b"MZ" + bytes(58) + struct.pack("<I", 64) + b"PE\x00\x00" + bytes(64)
MACH_O = b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + bytes(24)
MSI_CLSID = bytes.fromhex("84100c000000000000c0000000000046")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- detection -------------------------------------------------------------------------


IMAGES = [
    ("JPEG", "image/jpeg"),
    ("PNG", "image/png"),
    ("GIF", "image/gif"),
    ("WEBP", "image/webp"),
]
if features.check("avif"):
    IMAGES.append(("AVIF", "image/avif"))


@pytest.mark.parametrize(("fmt", "mime"), IMAGES)
def test_pictures_by_their_bytes(tmp_path: Path, fmt: str, mime: str) -> None:
    found = detect(write(tmp_path, "picture", make_image(fmt)))
    assert (found.mime, found.family) == (mime, "image")


def test_tiff_is_a_picture_we_do_not_show(tmp_path: Path) -> None:
    path = write(tmp_path, "scan.tif", make_image("TIFF"))
    assert detect(path).mime == "image/tiff"
    with pytest.raises(UnsupportedContent) as refused:
        analyse(path, "photo", 50_000_000)
    assert refused.value.errors[0].field == "kind"
    assert analyse(path, "document", 50_000_000).mime == "image/tiff"


def test_heif_and_avif_by_their_brands() -> None:
    def ftyp(major: bytes, *compatible: bytes) -> bytes:
        body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
        return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + bytes(16)

    assert sniff(ftyp(b"heic", b"mif1", b"heic")).mime == "image/heic"
    assert sniff(ftyp(b"mif1", b"mif1")).mime == "image/heif"
    assert sniff(ftyp(b"avif", b"mif1", b"avif")).mime == "image/avif"
    assert sniff(ftyp(b"isom", b"isom", b"avc1")).mime == "video/mp4"
    assert sniff(ftyp(b"M4A ", b"M4A ", b"isom")).mime == "audio/mp4"
    assert sniff(ftyp(b"qt  ", b"qt  ")).mime == "video/quicktime"


AUDIO = [
    ("voice.ogg", "ogg", "libopus", 48_000, {}, "audio/ogg"),
    ("voice.webm", "webm", "libopus", 48_000, {}, "video/webm"),
    ("song.mp3", "mp3", "libmp3lame", 44_100, {}, "audio/mpeg"),
    ("bare.mp3", "mp3", "libmp3lame", 44_100, {"id3v2_version": "0"}, "audio/mpeg"),
    ("song.m4a", "ipod", "aac", 48_000, {}, "audio/mp4"),
    ("song.aac", "adts", "aac", 48_000, {}, "audio/aac"),
    ("song.wav", "wav", "pcm_s16le", 48_000, {}, "audio/wav"),
    ("song.flac", "flac", "flac", 48_000, {}, "audio/flac"),
]


@pytest.mark.parametrize(("name", "container", "codec", "rate", "options", "mime"), AUDIO)
def test_sound_by_its_bytes_and_its_length(
    tmp_path: Path,
    name: str,
    container: str,
    codec: str,
    rate: int,
    options: dict[str, str],
    mime: str,
) -> None:
    path = make_audio(tmp_path / name, container, codec, 2.0, rate=rate, container_options=options)
    found = detect(path)
    assert found.mime == mime
    assert found.demuxer is not None
    facts = av_facts(path, found.demuxer, max_pixels=1)
    assert facts.video_codec is None and facts.audio_codec
    assert facts.duration_ms is not None and abs(facts.duration_ms - 2000) < 100


def test_a_bare_mp3_starts_with_frames_not_a_tag(tmp_path: Path) -> None:
    path = make_audio(
        tmp_path / "bare.mp3",
        "mp3",
        "libmp3lame",
        rate=44_100,
        container_options={"id3v2_version": "0"},
    )
    assert path.read_bytes()[:2] == b"\xff\xfb"


@pytest.mark.parametrize(
    ("name", "container", "codec", "mime"),
    [
        ("clip.webm", "webm", "libvpx", "video/webm"),
        ("clip.mp4", "mp4", "libx264", "video/mp4"),
        ("clip.mov", "mov", "mpeg4", "video/quicktime"),
        ("clip.mkv", "matroska", "mpeg4", "video/x-matroska"),
    ],
)
def test_video_by_its_bytes_with_a_first_frame_thumbnail(
    tmp_path: Path, name: str, container: str, codec: str, mime: str
) -> None:
    path = make_video(tmp_path / name, container, codec)
    analysis = analyse(path, "video", 50_000_000)
    assert analysis.mime == mime
    assert (analysis.width, analysis.height) == (160, 120)
    assert analysis.duration_ms is not None and abs(analysis.duration_ms - 1000) < 150
    assert analysis.thumbnail is not None
    with Image.open(io.BytesIO(analysis.thumbnail.data)) as thumb:
        assert thumb.size == (160, 120)


def test_a_video_turned_by_its_container_is_measured_upright(tmp_path: Path) -> None:
    """Phones store portrait video as landscape frames plus a display matrix."""
    data = make_video(tmp_path / "clip.mp4", "mp4", "libx264").read_bytes()
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    quarter = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)
    at = data.rindex(identity)  # the track header's, after the movie header's
    path = write(tmp_path, "portrait.mp4", data[:at] + quarter + data[at + 36 :])
    analysis = analyse(path, "video", 50_000_000)
    assert (analysis.width, analysis.height) == (120, 160)
    assert analysis.thumbnail is not None
    with Image.open(io.BytesIO(analysis.thumbnail.data)) as thumb:
        gray = thumb.convert("L")
        assert gray.size == (120, 160)
        # The white mark, top left in the stored frames, is top right once turned.
        assert gray.getpixel((115, 5)) > 200 and gray.getpixel((5, 5)) < 60


DOCUMENTS = [
    (make_pdf(), "application/pdf"),
    (
        make_office("word"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    (make_office("xl"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (
        make_office("ppt"),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    (
        make_odf("application/vnd.oasis.opendocument.text"),
        "application/vnd.oasis.opendocument.text",
    ),
    (
        make_odf("application/vnd.oasis.opendocument.spreadsheet"),
        "application/vnd.oasis.opendocument.spreadsheet",
    ),
    (make_zip(["a.txt", "b/c.txt"]), "application/zip"),
    (make_ole2("WordDocument"), "application/msword"),
    (make_ole2("Workbook"), "application/vnd.ms-excel"),
    (make_ole2("PowerPoint Document"), "application/vnd.ms-powerpoint"),
    (b"{\\rtf1\\ansi Hello}", "application/rtf"),
    (b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24), "application/x-7z-compressed"),
    (b"Rar!\x1a\x07\x01\x00" + bytes(24), "application/vnd.rar"),
    (gzip.compress(b"hello"), "application/gzip"),
    ("Домашнее задание: упр. 5\n".encode() * 10, "text/plain; charset=utf-8"),
    ("\ufeffCSV;с BOM\n1;2\n".encode(), "text/plain; charset=utf-8"),
    (b"\xff\xfe" + "Привет".encode("utf-16-le"), "text/plain; charset=utf-16"),
    (b"MZ is a fine start for a text\n", "text/plain; charset=utf-8"),
    (bytes(range(256)) * 4, "application/octet-stream"),
]


@pytest.mark.parametrize(("data", "mime"), DOCUMENTS)
def test_documents_by_their_bytes(tmp_path: Path, data: bytes, mime: str) -> None:
    path = write(tmp_path, "upload", data)
    assert detect(path).mime == mime
    assert analyse(path, "document", 50_000_000).mime == mime


def test_text_cut_inside_a_character_is_still_text() -> None:
    text = "щ" * (HEAD_BYTES // 2 + 1)
    head = text.encode()[: HEAD_BYTES - 1]  # ends on half a character
    assert sniff(head).mime == "text/plain; charset=utf-8"
    assert sniff(head, complete=True).mime == "application/octet-stream"


@pytest.mark.parametrize(
    "data",
    [
        ELF,
        PE,
        MACH_O,
        b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(24),
        b"#!/bin/sh\nrm -rf ~\n",
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(48),
        make_zip(["META-INF/MANIFEST.MF", "app/Main.class"]),
        make_zip(["AndroidManifest.xml", "classes.dex"]),
        make_ole2("\x05SummaryInformation", MSI_CLSID),
    ],
)
def test_programs_are_refused_whatever_the_kind(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, "homework.pdf", data)
    with pytest.raises(Refused):
        detect(path)
    with pytest.raises(UnsupportedContent) as refused:
        analyse(path, "document", 50_000_000)
    assert "not accepted" in refused.value.message


def test_renamed_files_are_what_their_bytes_say(tmp_path: Path) -> None:
    assert detect(write(tmp_path, "report.pdf", make_image("PNG"))).mime == "image/png"
    assert detect(write(tmp_path, "photo.jpg", b"just some words\n")).family == "document"
    fake = write(tmp_path, "photo.jpg", b"just some words\n")
    with pytest.raises(UnsupportedContent) as refused:
        analyse(fake, "photo", 50_000_000)
    assert refused.value.errors[0].field == "kind"
    assert "text/plain" in refused.value.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_a_type_or_a_refusal(data: bytes) -> None:
    try:
        found = sniff(data)
    except Refused:
        return
    assert found.mime


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([b"OggS", b"ID3", b"\x1a\x45\xdf\xa3", b"PK\x03\x04", b"\xff\xfb"]))
def test_magic_followed_by_garbage_never_crashes(prefix: bytes) -> None:
    for cut in range(len(prefix), 80):
        sniff(prefix + bytes(range(cut - len(prefix))))


# --- media facts -----------------------------------------------------------------------


def test_photo_size_and_thumbnail(tmp_path: Path) -> None:
    path = write(tmp_path, "p.jpg", make_image("JPEG", (1600, 1200)))
    analysis = analyse(path, "photo", 50_000_000)
    assert (analysis.mime, analysis.width, analysis.height) == ("image/jpeg", 1600, 1200)
    assert analysis.thumbnail is not None and analysis.thumbnail.mime == "image/jpeg"
    with Image.open(io.BytesIO(analysis.thumbnail.data)) as thumb:
        assert thumb.size == (320, 240)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 400×200 landscape, to be shown rotated a quarter turn: 200×400 portrait.
    path = write(tmp_path, "p.jpg", make_image("JPEG", (400, 200), orientation=6))
    facts = image_facts(path, "image/jpeg", 50_000_000)
    assert (facts.width, facts.height) == (200, 400)
    with Image.open(io.BytesIO(facts.thumbnail.data)) as thumb:
        assert thumb.size == (160, 320)
        # The blue corner mark was top left; a quarter turn clockwise puts it top right.
        assert thumb.convert("RGB").getpixel((150, 5))[2] > 200


def test_transparent_pictures_get_a_webp_thumbnail(tmp_path: Path) -> None:
    path = write(tmp_path, "p.png", make_image("PNG", (100, 100), mode="RGBA"))
    facts = image_facts(path, "image/png", 50_000_000)
    assert facts.thumbnail.mime == "image/webp"


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = make_png_bomb()
    assert len(bomb) < 200_000
    path = write(tmp_path, "bomb.png", bomb)
    with pytest.raises(MediaRefused) as refused:
        image_facts(path, "image/png", 50_000_000)
    assert refused.value.too_large
    # Under Pillow's own guard but over ours.
    path = write(tmp_path, "big.png", make_png_bomb(4000, 4000))
    with pytest.raises(MediaRefused) as refused:
        image_facts(path, "image/png", 10_000_000)
    assert refused.value.too_large
    assert "4000×4000" in refused.value.message


def test_a_broken_picture_is_not_a_photo(tmp_path: Path) -> None:
    path = write(tmp_path, "cut.png", make_image("PNG")[:300])
    with pytest.raises(UnsupportedContent):
        analyse(path, "photo", 50_000_000)


def test_voice_message_length_and_waveform(tmp_path: Path) -> None:
    path = make_voice(tmp_path / "voice.ogg", 4.0, loud_after=2.0)
    analysis = analyse(path, "voice", 50_000_000)
    assert analysis.mime == "audio/ogg"
    assert analysis.duration_ms is not None and abs(analysis.duration_ms - 4000) < 400
    waveform = analysis.waveform
    assert waveform is not None and len(waveform) == 64
    assert all(0 <= level <= 255 for level in waveform)
    # Quiet first half, loud second half.
    assert max(waveform[2:30]) < 40 and min(waveform[34:62]) > 200


def test_safari_voice_is_aac_in_mp4(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "voice.mp4", "mp4", "aac", 2.0, loud_after=1.0)
    analysis = analyse(path, "voice", 50_000_000)
    assert analysis.mime == "audio/mp4"
    assert analysis.waveform is not None and analysis.waveform[5] < analysis.waveform[60]


def test_a_long_voice_message_is_decoded_only_in_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = 0
    real_decode = av.Packet.decode

    def counting(packet: av.Packet) -> list[av.frame.Frame]:
        nonlocal decoded
        decoded += 1
        return real_decode(packet)

    path = make_voice(tmp_path / "voice.ogg", 8.0, loud_after=4.0)  # 400 packets of 20 ms
    monkeypatch.setattr(media, "WAVEFORM_MAX_PACKETS", 192)  # runs of 3 packets a bar
    monkeypatch.setattr(av.Packet, "decode", counting)
    waveform = media.voice_waveform(path, "ogg", 0)
    assert decoded <= 192
    assert len(waveform) == 64
    assert max(waveform[2:30]) < 40 and min(waveform[34:62]) > 200


def test_webm_without_a_duration_is_measured_from_its_packets(tmp_path: Path) -> None:
    # MediaRecorder writes WebM as a live stream: no duration in the header.
    path = make_audio(
        tmp_path / "voice.webm", "webm", "libopus", 3.0, container_options={"live": "1"}
    )
    with av.open(str(path)) as container:
        assert container.duration is None
    analysis = analyse(path, "voice", 50_000_000)
    assert analysis.mime == "audio/webm"
    assert analysis.duration_ms is not None and abs(analysis.duration_ms - 3000) < 300
    assert analysis.waveform is not None


def test_kinds_must_fit_the_content(tmp_path: Path) -> None:
    song = make_audio(tmp_path / "song.mp3", "mp3", "libmp3lame", rate=44_100)
    clip = make_video(tmp_path / "clip.webm", "webm", "libvpx")
    pdf = write(tmp_path, "doc.pdf", make_pdf())
    for path, kind, why in [
        (song, "voice", "Opus or AAC"),
        (song, "video", "no pictures"),
        (clip, "audio", "has pictures"),
        (clip, "voice", "has pictures"),
        (pdf, "audio", "sound or video"),
        (pdf, "photo", "a photo must be a picture"),
    ]:
        with pytest.raises(UnsupportedContent) as refused:
            analyse(path, kind, 50_000_000)  # type: ignore[arg-type]
        assert why in refused.value.message, (path.name, kind)
    assert analyse(song, "audio", 50_000_000).mime == "audio/mpeg"
    assert analyse(clip, "document", 50_000_000).mime == "video/webm"


def test_an_undecodable_container_is_not_sound(tmp_path: Path) -> None:
    path = write(tmp_path, "x.ogg", b"OggS" + bytes(200))
    with pytest.raises(UnsupportedContent):
        analyse(path, "audio", 50_000_000)


# --- names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "a/b",
        "C:\\x",
        "C:x",
        "..",
        "a\x00b",
        "tab\there",
        "line\nbreak",
        "\x7fdel",
        "photo\u202egpj.exe",
        "setup.exe",
        "run.BAT",
        "script.ps1",
        "x" * 256,
        "ы" * 128,
    ],
)
def test_names_that_are_paths_or_programs_are_refused(name: str) -> None:
    with pytest.raises(DomainError) as refused:
        clean_name(name)
    assert refused.value.errors[0].field == "name"


def test_names_are_kept_as_sent() -> None:
    assert clean_name(None) is None
    assert clean_name("   ") is None
    assert clean_name("  Контрольная №2.docx ") == "Контрольная №2.docx"
    assert clean_name("e\u0301.txt") == "\u00e9.txt"  # NFC
    assert clean_name("Lesson 3: notes.pdf") == "Lesson 3: notes.pdf"
    assert clean_name("👨‍👩‍👧 family.jpg") == "👨‍👩‍👧 family.jpg"
