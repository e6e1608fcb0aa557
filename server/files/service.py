"""Attachments: who may send and fetch them, and what a file must be to be sent as a kind.

An upload is checked before its body is read (the sender is a member, the kind and the name
make sense, the declared size fits), streamed into a temporary blob while counted, then
recognised by its bytes, measured (pictures, sound, film) in a worker thread, and only then
committed: metadata first, then the blob moved into place, both shielded from a client that
hangs up at that moment. Whatever fails before leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from protocol.errors import ErrorCode
from server.config import Limits
from server.domain.chats import ChatService
from server.domain.clock import Clock
from server.domain.errors import DomainError, FieldError
from server.files.blobs import BlobStore, BlobWriter
from server.files.media import (
    AvFacts,
    MediaRefused,
    Thumbnail,
    av_facts,
    image_facts,
    photo_formats,
)
from server.files.types import Refused, detect
from server.store.engine import IntegrityError
from server.store.files import FileRecord, FileStore

logger = logging.getLogger("parta.files")

Kind = Literal["photo", "document", "audio", "video", "voice"]
KINDS: tuple[Kind, ...] = get_args(Kind)

# Files measured at once (each in a thread): decoding is CPU work.
ANALYSERS = 2
NAME_MAX_BYTES = 255

# Voice messages are what browsers record: Opus (in Ogg or WebM), or AAC in MP4 (Safari).
VOICE_CODECS = frozenset({"opus", "libopus", "aac", "aac_fixed", "libfdk_aac"})
# A film container that turned out to hold only sound.
AUDIO_ONLY_MIME = {
    "video/mp4": "audio/mp4",
    "video/quicktime": "audio/mp4",
    "video/3gpp": "audio/3gpp",
    "video/webm": "audio/webm",
    "video/x-matroska": "audio/x-matroska",
    "video/ogg": "audio/ogg",
}
# Names that run when opened, whatever is inside.
EXECUTABLE_EXTENSIONS = frozenset(
    {
        ".apk", ".app", ".appimage", ".bat", ".cmd", ".com", ".command", ".cpl", ".deb",
        ".dll", ".dmg", ".exe", ".hta", ".jar", ".js", ".jse", ".lnk", ".msi", ".msp",
        ".pif", ".pkg", ".ps1", ".psm1", ".reg", ".rpm", ".run", ".scr", ".sh", ".sys",
        ".vbe", ".vbs", ".wsf", ".wsh",
    }
)  # fmt: skip
# Right-to-left and other direction overrides: they make "gpj.exe" look like "exe.jpg".
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsupportedContent(DomainError):
    """The bytes are not something we take, or not what the declared kind needs (415)."""

    status = 415

    def __init__(self, field: str, message: str) -> None:
        super().__init__(ErrorCode.UNSUPPORTED_TYPE, message, errors=(FieldError(field, message),))


def _invalid(field: str, message: str) -> DomainError:
    return DomainError(ErrorCode.VALIDATION_FAILED, message, errors=(FieldError(field, message),))


def parse_kind(raw: str | None) -> Kind:
    for kind in KINDS:
        if raw == kind:
            return kind
    raise _invalid("kind", f"kind must be one of {', '.join(KINDS)}")


def clean_name(raw: str | None) -> str | None:
    """A file name as sent (NFC, trimmed), or None when none was given; never a path."""
    if raw is None:
        return None
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        return None
    if "/" in name or "\\" in name or _DRIVE.match(name) or name in (".", ".."):
        raise _invalid("name", "a file name cannot contain a path (/, \\ or a drive)")
    if any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in name):
        raise _invalid("name", "a file name cannot contain control characters")
    if len(name.encode("utf-8")) > NAME_MAX_BYTES:
        raise _invalid("name", f"a file name is at most {NAME_MAX_BYTES} bytes (UTF-8)")
    _, dot, ext = name.rpartition(".")
    if dot and f".{ext.lower().rstrip(' .')}" in EXECUTABLE_EXTENSIONS:
        raise _invalid("name", f"programs and scripts (.{ext}) are not accepted")
    return name


@dataclass(frozen=True, slots=True)
class Upload:
    """An upload that passed the checks made before its body is read."""

    account_id: int
    chat_id: int
    kind: Kind
    name: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class Analysis:
    mime: str
    ext: str
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    waveform: tuple[int, ...] | None = None
    thumbnail: Thumbnail | None = None


def analyse(path: Path, kind: Kind, max_pixels: int) -> Analysis:
    """What the file is and whether it can be sent as ``kind`` (blocking: run in a thread)."""
    try:
        found = detect(path)
    except Refused as exc:
        raise UnsupportedContent("file", str(exc)) from None
    if kind == "document":
        return Analysis(found.mime, found.ext)
    try:
        if kind == "photo":
            pictures = photo_formats()
            if found.mime not in pictures:
                names = ", ".join(fmt for fmt in pictures.values())
                raise UnsupportedContent(
                    "kind", f"a photo must be a picture ({names}); this is {found.mime}"
                )
            image = image_facts(path, found.mime, max_pixels)
            return Analysis(
                found.mime, found.ext, image.width, image.height, thumbnail=image.thumbnail
            )
        if found.demuxer is None:
            raise UnsupportedContent(
                "kind", f"{kind} must be a sound or video file; this is {found.mime}"
            )
        facts = av_facts(
            path,
            found.demuxer,
            max_pixels=max_pixels,
            thumbnail=kind == "video",
            waveform=kind == "voice",
        )
    except MediaRefused as exc:
        if exc.too_large:
            raise _invalid("file", exc.message) from None
        raise UnsupportedContent("file", f"this is not a usable {kind}: {exc.message}") from None
    _fits(kind, facts)
    mime = found.mime if facts.video_codec else AUDIO_ONLY_MIME.get(found.mime, found.mime)
    return Analysis(
        mime,
        found.ext,
        facts.width,
        facts.height,
        facts.duration_ms,
        facts.waveform,
        facts.thumbnail,
    )


def _fits(kind: Kind, facts: AvFacts) -> None:
    if kind == "video" and facts.video_codec is None:
        raise UnsupportedContent("kind", "this has no pictures: send it as audio")
    if kind in ("audio", "voice") and facts.video_codec is not None:
        raise UnsupportedContent("kind", "this has pictures: send it as a video")
    if kind in ("audio", "voice") and facts.audio_codec is None:
        raise UnsupportedContent("kind", f"this has no sound to send as {kind}")
    if kind == "voice" and facts.audio_codec not in VOICE_CODECS:
        raise UnsupportedContent(
            "kind", f"a voice message is Opus or AAC sound; this is {facts.audio_codec}"
        )


class FileService:
    def __init__(
        self,
        files: FileStore,
        blobs: BlobStore,
        chats: ChatService,
        limits: Limits,
        clock: Clock,
    ) -> None:
        self._files = files
        self._blobs = blobs
        self._chats = chats
        self._limits = limits
        self._clock = clock
        self._analysing = asyncio.Semaphore(ANALYSERS)
        # Commits finishing after their client hung up.
        self._committing: set[asyncio.Task[FileRecord]] = set()

    def limit(self, kind: Kind) -> int:
        limits = self._limits
        return {
            "photo": limits.photo_bytes,
            "document": limits.document_bytes,
            "audio": limits.audio_bytes,
            "video": limits.video_bytes,
            "voice": limits.voice_bytes,
        }[kind]

    @property
    def max_upload_bytes(self) -> int:
        return max(self.limit(kind) for kind in KINDS)

    # --- upload -------------------------------------------------------------------------

    async def begin(
        self,
        account_id: int,
        chat_id: int,
        kind: str | None,
        name: str | None,
        declared_size: int | None,
    ) -> Upload:
        """Everything checked before the body is read; raises what refuses it."""
        await self._chats.may_post(account_id, chat_id)  # not_member, silenced
        checked_kind = parse_kind(kind)
        checked_name = clean_name(name)
        limit = self.limit(checked_kind)
        if declared_size is not None and declared_size > limit:
            raise _too_large(checked_kind, limit)
        return Upload(account_id, chat_id, checked_kind, checked_name, limit)

    async def receive(self, upload: Upload, read: Callable[[], Awaitable[bytes]]) -> FileRecord:
        """Take the body (``read`` gives chunks, b"" at the end) and store the file."""
        writer = self._blobs.writer()
        thumb: BlobWriter | None = None
        committing: asyncio.Task[FileRecord] | None = None
        try:
            while chunk := await read():
                if writer.size + len(chunk) > upload.limit:
                    raise _too_large(upload.kind, upload.limit)
                await writer.write(chunk)
            await writer.finish()
            if writer.size == 0:
                raise _invalid("file", "the file is empty")
            async with self._analysing:
                analysis = await asyncio.to_thread(
                    analyse, writer.temp_path, upload.kind, self._limits.image_pixels
                )
            if analysis.thumbnail is not None:
                thumb = await self._blobs.stage(analysis.thumbnail.data)
            # Still allowed after however long the upload took?
            await self._chats.may_post(upload.account_id, upload.chat_id)
            record = FileRecord(
                id=0,
                chat_id=upload.chat_id,
                uploader_id=upload.account_id,
                sha256=writer.sha256,
                size=writer.size,
                mime=analysis.mime,
                kind=upload.kind,
                name=upload.name or f"{upload.kind}{analysis.ext}",
                created_at=self._clock(),
                width=analysis.width,
                height=analysis.height,
                duration_ms=analysis.duration_ms,
                waveform=analysis.waveform,
                thumb_sha256=None if thumb is None else thumb.sha256,
                thumb_mime=None if analysis.thumbnail is None else analysis.thumbnail.mime,
            )
            committing = asyncio.ensure_future(self._commit(record, writer, thumb))
            self._committing.add(committing)
            committing.add_done_callback(self._committing.discard)
            return await asyncio.shield(committing)
        finally:
            if committing is None:
                await writer.discard()
                if thumb is not None:
                    await thumb.discard()

    async def _commit(
        self, record: FileRecord, writer: BlobWriter, thumb: BlobWriter | None
    ) -> FileRecord:
        """Metadata, then the blobs into place; a failure in between takes the row back."""
        try:
            try:
                stored = await self._files.insert(record)
            except IntegrityError:
                raise DomainError(ErrorCode.NOT_FOUND, "the chat is gone") from None
            try:
                if thumb is not None:
                    await thumb.commit()
                await writer.commit()
            except BaseException:
                await self._files.delete(stored.id)
                raise
            logger.info(
                "file stored",
                extra={
                    "file_id": stored.id,
                    "chat_id": stored.chat_id,
                    "kind": stored.kind,
                    "mime": stored.mime,
                    "size": stored.size,
                },
            )
            return stored
        finally:
            await writer.discard()
            if thumb is not None:
                await thumb.discard()

    # --- download -----------------------------------------------------------------------

    async def file_for(self, account_id: int, file_id: int) -> FileRecord:
        """A file the account may fetch; anyone else learns nothing, not even that it exists."""
        record = await self._files.get(file_id)
        if record is not None:
            try:
                await self._chats.chat_info(account_id, record.chat_id)
            except DomainError as exc:
                if exc.code != ErrorCode.NOT_MEMBER:
                    raise
            else:
                return record
        raise DomainError(ErrorCode.NOT_FOUND, f"no file {file_id}")

    async def read(self, sha256: str, start: int, length: int) -> bytes:
        return await self._blobs.read(sha256, start, length)


def _too_large(kind: Kind, limit: int) -> DomainError:
    return DomainError(ErrorCode.BODY_TOO_LARGE, f"a {kind} is at most {limit:,} bytes")
