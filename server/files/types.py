"""What a file is, from its bytes (never from its name).

``sniff`` looks at the first bytes only and is pure; ``detect`` reads a stored file and
refines what the first bytes cannot tell: which Office document a ZIP or an OLE2 file is.
Executables and scripts are refused whatever they are called. Containers that may hold
sound, pictures or both (MP4, WebM, Ogg) come back as ``media``: PyAV tells which later.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

# How much of the start of a file ``sniff`` looks at.
HEAD_BYTES = 64 << 10
# A ZIP's table of contents is read only when it is this short (a ZIP can list millions of
# entries in little space, and Python's zipfile keeps an object for each).
ZIP_MAX_ENTRIES = 10_000

Family = Literal["image", "audio", "video", "media", "document"]


@dataclass(frozen=True, slots=True)
class FileType:
    mime: str
    family: Family
    # The usual extension, for a file sent without a name.
    ext: str
    # The FFmpeg demuxer that reads it (audio and video), so that no other is ever tried.
    demuxer: str | None = None


class Refused(Exception):
    """A type we never store (programs and scripts)."""


def _t(mime: str, family: Family, ext: str, demuxer: str | None = None) -> FileType:
    return FileType(mime, family, ext, demuxer)


JPEG = _t("image/jpeg", "image", ".jpg")
PNG = _t("image/png", "image", ".png")
GIF = _t("image/gif", "image", ".gif")
WEBP = _t("image/webp", "image", ".webp")
AVIF = _t("image/avif", "image", ".avif")
HEIC = _t("image/heic", "image", ".heic")
HEIF = _t("image/heif", "image", ".heif")
TIFF = _t("image/tiff", "image", ".tif")
PDF = _t("application/pdf", "document", ".pdf")
RTF = _t("application/rtf", "document", ".rtf")
POSTSCRIPT = _t("application/postscript", "document", ".ps")
ZIP = _t("application/zip", "document", ".zip")
SEVEN_ZIP = _t("application/x-7z-compressed", "document", ".7z")
RAR = _t("application/vnd.rar", "document", ".rar")
GZIP = _t("application/gzip", "document", ".gz")
TAR = _t("application/x-tar", "document", ".tar")
OLE2 = _t("application/x-ole-storage", "document", ".bin")
DOC = _t("application/msword", "document", ".doc")
XLS = _t("application/vnd.ms-excel", "document", ".xls")
PPT = _t("application/vnd.ms-powerpoint", "document", ".ppt")
_OOXML = "application/vnd.openxmlformats-officedocument."
DOCX = _t(_OOXML + "wordprocessingml.document", "document", ".docx")
XLSX = _t(_OOXML + "spreadsheetml.sheet", "document", ".xlsx")
PPTX = _t(_OOXML + "presentationml.presentation", "document", ".pptx")
TEXT = _t("text/plain; charset=utf-8", "document", ".txt")
TEXT_UTF16 = _t("text/plain; charset=utf-16", "document", ".txt")
BINARY = _t("application/octet-stream", "document", ".bin")
MP3 = _t("audio/mpeg", "audio", ".mp3", "mp3")
AAC = _t("audio/aac", "audio", ".aac", "aac")
FLAC = _t("audio/flac", "audio", ".flac", "flac")
WAV = _t("audio/wav", "audio", ".wav", "wav")
OGG_AUDIO = _t("audio/ogg", "audio", ".ogg", "ogg")
OGG = _t("video/ogg", "media", ".ogv", "ogg")
M4A = _t("audio/mp4", "audio", ".m4a", "mov")
MP4 = _t("video/mp4", "media", ".mp4", "mov")
QUICKTIME = _t("video/quicktime", "media", ".mov", "mov")
THREE_GP = _t("video/3gpp", "media", ".3gp", "mov")
WEBM = _t("video/webm", "media", ".webm", "matroska")
MATROSKA = _t("video/x-matroska", "media", ".mkv", "matroska")
AVI = _t("video/x-msvideo", "media", ".avi", "avi")

# OpenDocument (and EPUB, built the same way): a ZIP whose first member, stored, is named
# "mimetype" and holds the type.
ODF: dict[bytes, FileType] = {
    b"application/vnd.oasis.opendocument.text": _t(
        "application/vnd.oasis.opendocument.text", "document", ".odt"
    ),
    b"application/vnd.oasis.opendocument.spreadsheet": _t(
        "application/vnd.oasis.opendocument.spreadsheet", "document", ".ods"
    ),
    b"application/vnd.oasis.opendocument.presentation": _t(
        "application/vnd.oasis.opendocument.presentation", "document", ".odp"
    ),
    b"application/vnd.oasis.opendocument.graphics": _t(
        "application/vnd.oasis.opendocument.graphics", "document", ".odg"
    ),
    b"application/epub+zip": _t("application/epub+zip", "document", ".epub"),
}


# --- executables -----------------------------------------------------------------------

_MACH_O = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")


def _executable(head: bytes) -> str | None:
    """What kind of program this is, or None."""
    if head.startswith(b"\x7fELF"):
        return "an ELF program"
    if head.startswith(_MACH_O):
        return "a Mach-O program"
    if head.startswith(b"\xca\xfe\xba\xbe"):
        # A universal Mach-O binary or a Java class file: both run.
        return "a Mach-O or Java program"
    if head.startswith(b"dex\n"):
        return "an Android program"
    if head.startswith(b"#!"):
        return "a script (#!)"
    if head.startswith(b"\x4c\x00\x00\x00\x01\x14\x02\x00"):
        return "a Windows shortcut"
    if head.startswith(b"MZ"):
        if len(head) >= 64:
            (pe_at,) = struct.unpack_from("<I", head, 0x3C)
            if head[pe_at : pe_at + 4] == b"PE\x00\x00":
                return "a Windows program"
        if _text_type(head, complete=len(head) < HEAD_BYTES) is None:
            return "a DOS or Windows program"
    return None


# --- the first bytes -------------------------------------------------------------------


def sniff(head: bytes, *, complete: bool = False) -> FileType:
    """The type the first bytes of a file show; ``complete`` when ``head`` is all of it.

    ZIP and OLE2 files come back as generic ``ZIP``/``OLE2`` unless the first bytes say
    more; ``detect`` looks inside them.
    """
    refused = _executable(head)
    if refused is not None:
        raise Refused(f"this is {refused}; programs and scripts are not accepted")
    found = _magic(head)
    if found is not None:
        return found
    return _text_type(head, complete=complete) or BINARY


def _magic(head: bytes) -> FileType | None:
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": WEBP, b"WAVE": WAV, b"AVI ": AVI}.get(head[8:12])
    if head[4:8] == b"ftyp":
        return _iso_media(head)
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return QUICKTIME  # QuickTime from before the ftyp box
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if head.find(b"%PDF-", 0, 1024) >= 0:
        return PDF
    if head.startswith(b"{\\rtf"):
        return RTF
    if head.startswith(b"%!PS"):
        return POSTSCRIPT
    if head.startswith(b"PK\x03\x04"):
        if head[30:38] == b"mimetype":
            return ODF.get(head[38:].split(b"PK", 1)[0].strip(), ZIP)
        return ZIP
    if head.startswith(b"PK\x05\x06"):
        return ZIP  # an empty archive
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return SEVEN_ZIP
    if head.startswith(b"Rar!\x1a\x07"):
        return RAR
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head[257:262] == b"ustar":
        return TAR
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return OLE2
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _matroska(head)
    if head.startswith(b"OggS"):
        return _ogg(head)
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"ID3"):
        return _after_id3(head)
    return _mpeg_audio(head)


def _iso_media(head: bytes) -> FileType:
    """An ISO base media file (MP4, MOV, M4A, HEIF, AVIF) by its ftyp brands."""
    (size,) = struct.unpack_from(">I", head, 0)
    box = head[8 : max(16, min(size, 4096))]
    major = box[:4]
    brands = {major, *(box[i : i + 4] for i in range(8, len(box) - 3, 4))}
    if brands & {b"avif", b"avis"}:
        return AVIF
    if brands & {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}:
        return HEIC
    if brands & {b"mif1", b"msf1"}:
        return HEIF
    if major in (b"M4A ", b"M4B ", b"M4P "):
        return M4A
    if major == b"qt  ":
        return QUICKTIME
    if major.startswith((b"3gp", b"3g2")):
        return THREE_GP
    return MP4


def _matroska(head: bytes) -> FileType:
    at = head.find(b"\x42\x82", 4, 64)  # the EBML DocType element; its size is 0x80 | n
    if at >= 0 and at + 3 <= len(head) and head[at + 3 : at + 3 + (head[at + 2] & 0x7F)] == b"webm":
        return WEBM
    return MATROSKA


def _ogg(head: bytes) -> FileType:
    # The first page holds the first packet of the first stream: its header says the codec.
    if len(head) < 27:
        return OGG
    segments = head[26]
    packet = head[27 + segments : 27 + segments + 8]
    if packet.startswith((b"OpusHead", b"\x01vorbis", b"\x7fFLAC", b"Speex   ")):
        return OGG_AUDIO
    return OGG


def _after_id3(head: bytes) -> FileType:
    # ID3v2: "ID3", version (2), flags (1), size (4 bytes of 7 bits), then the audio.
    if len(head) < 10:
        return MP3
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    rest = head[10 + size + (10 if head[5] & 0x10 else 0) :]
    if rest.startswith(b"fLaC"):
        return FLAC
    if rest and _adts(rest):
        return AAC
    return MP3


# Bit rates in kbit/s by (MPEG-1?, layer) and index; sample rates by version and index.
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame_length(header: bytes) -> int | None:
    """The length of the MPEG audio frame starting here, or None if this is not one."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = (header[1] >> 3) & 3
    layer = 4 - ((header[1] >> 1) & 3)  # 1, 2 or 3; 4 is reserved
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 3
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    rate = _RATES[version][rate_index]
    padding = (header[2] >> 1) & 1
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    if layer == 3 and not mpeg1:
        return 72 * bitrate // rate + padding
    return 144 * bitrate // rate + padding


def _adts(head: bytes) -> bool:
    return len(head) >= 7 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


def _adts_frame_length(header: bytes) -> int | None:
    if not _adts(header):
        return None
    return ((header[3] & 3) << 11) | (header[4] << 3) | (header[5] >> 5)


def _frames_chain(head: bytes, frame_length: Callable[[bytes], int | None]) -> bool:
    """Three frames follow one another from the first byte (or the file ends first)."""
    at = 0
    for _ in range(3):
        if at >= len(head):
            return at > 0
        length = frame_length(head[at : at + 8])
        if length is None or length < 7:
            return False
        at += length
    return True


def _mpeg_audio(head: bytes) -> FileType | None:
    """A raw MP3 or AAC (ADTS) stream: a chain of frames from the first byte."""
    if _frames_chain(head, _adts_frame_length):
        return AAC
    if _frames_chain(head, _mpeg_frame_length):
        return MP3
    return None


# --- text ------------------------------------------------------------------------------

_CONTROLS = frozenset(range(32)) - {9, 10, 12, 13, 27}


def _text_type(head: bytes, *, complete: bool) -> FileType | None:
    """UTF-8 (or UTF-16 with a byte order mark) text with hardly any control characters."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        body = head[2 : len(head) - (len(head) % 2)]
        try:
            text = body.decode("utf-16-le" if head[0] == 0xFF else "utf-16-be")
        except UnicodeDecodeError:
            return None
        return TEXT_UTF16 if _few_controls(text) else None
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The head may end inside a character; anything else is not UTF-8.
        if complete or exc.start < len(head) - 3 or exc.reason != "unexpected end of data":
            return None
        text = head[: exc.start].decode("utf-8")
    return TEXT if _few_controls(text) else None


def _few_controls(text: str) -> bool:
    controls = sum(1 for ch in text if ord(ch) in _CONTROLS)
    return controls * 200 <= len(text)


# --- looking inside --------------------------------------------------------------------


def detect(path: Path) -> FileType:
    """The type of a stored file (blocking: run it in a thread)."""
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
        complete = not f.read(1)
        found = sniff(head, complete=complete)
        if found is ZIP:
            return _zip_type(path)
        if found is OLE2:
            return _ole2_type(f, head)
    return found


def _zip_entries(path: Path) -> int | None:
    """How many entries the ZIP's end record announces, or None if it cannot be found."""
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - (66 << 10)))
        tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    (entries,) = struct.unpack_from("<H", tail, at + 10)
    if entries == 0xFFFF:
        return None  # ZIP64: a very large archive, not an Office document
    return int(entries)


def _zip_type(path: Path) -> FileType:
    entries = _zip_entries(path)
    if entries is None or entries > ZIP_MAX_ENTRIES:
        return ZIP
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return ZIP
    top = {name.split("/", 1)[0] for name in names}
    if "AndroidManifest.xml" in top and "classes.dex" in top:
        raise Refused("this is an Android app; programs are not accepted")
    if "META-INF" in top and any(name.endswith(".class") for name in names):
        raise Refused("this is a Java program; programs are not accepted")
    if "[Content_Types].xml" in top:
        for folder, office in (("word", DOCX), ("xl", XLSX), ("ppt", PPTX)):
            if folder in top:
                return office
    return ZIP


# The compound file's root entry names what made it; MSI installers are programs.
_MSI_CLSIDS = frozenset(
    {
        bytes.fromhex("84100c000000000000c0000000000046"),
        bytes.fromhex("86100c000000000000c0000000000046"),
        bytes.fromhex("82100c000000000000c0000000000046"),
    }
)
_OLE_STREAMS = (
    ("WordDocument", DOC),
    ("Workbook", XLS),
    ("Book", XLS),
    ("PowerPoint Document", PPT),
)


def _ole2_type(f: BinaryIO, head: bytes) -> FileType:
    """A legacy Office file by the stream names in its first directory sector."""
    if len(head) < 512:
        return OLE2
    (shift,) = struct.unpack_from("<H", head, 0x1E)
    (first_dir,) = struct.unpack_from("<I", head, 0x30)
    if shift not in (9, 12) or first_dir >= 0xFFFFFFFA:
        return OLE2
    sector = 1 << shift
    f.seek((first_dir + 1) * sector)
    directory = f.read(sector)
    names: set[str] = set()
    for at in range(0, len(directory) - 127, 128):
        entry = directory[at : at + 128]
        (length,) = struct.unpack_from("<H", entry, 0x40)
        if 2 <= length <= 64:
            names.add(entry[: length - 2].decode("utf-16-le", "replace"))
        if at == 0 and entry[0x50:0x60] in _MSI_CLSIDS:
            raise Refused("this is a Windows installer; programs are not accepted")
    for stream, office in _OLE_STREAMS:
        if stream in names:
            return office
    return OLE2
