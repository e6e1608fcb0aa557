"""Attachments over HTTP: uploads streamed into a chat; downloads with ranges and ETags.

``POST /api/v1/chats/{chat_id}/files?kind=…&name=…`` takes the file as the raw body and
answers 201 with its metadata. ``GET /api/v1/files/{file_id}`` and ``…/thumbnail`` serve
it to members of its chat only (anyone else gets 404). The gateway's responses are held in
memory, so a response carries at most ``PART_MAX_BYTES`` of a range and a whole file only
up to ``WHOLE_MAX_BYTES``; larger files are fetched in ranges.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import quote

from protocol.errors import ErrorCode
from server.api.problems import problem
from server.api.router import Router
from server.api.sessions import require_account
from server.config import Settings
from server.domain.auth import AuthService
from server.domain.errors import DomainError
from server.files.service import FileService, UnsupportedContent
from server.gateway.body import BodyTooLarge
from server.gateway.http import Request, Response
from server.store.files import FileRecord

# What one response holds in memory (see the module docstring).
WHOLE_MAX_BYTES = 64 << 20
PART_MAX_BYTES = 16 << 20
THUMBNAIL_MAX_BYTES = 1 << 20

UNSATISFIABLE: Final = "unsatisfiable"
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")

ReadBlob = Callable[[int, int], Awaitable[bytes]]


def byte_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One ``Range: bytes=…`` as (first, last) inclusive; ``UNSATISFIABLE``; or None when
    the header is to be ignored (not bytes, several ranges, malformed)."""
    match = _RANGE.match(header.strip())
    if match is None or not (match[1] or match[2]):
        return None
    if match[1]:
        first = int(match[1])
        last = int(match[2]) if match[2] else size - 1
        if match[2] and last < first:
            return None
        if first >= size:
            return UNSATISFIABLE
        return first, min(last, size - 1)
    suffix = int(match[2])
    if suffix == 0:
        return UNSATISFIABLE
    return max(0, size - suffix), size - 1


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    tags = [tag.strip() for tag in header.split(",")]
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in tags)


def content_disposition(disposition: str, name: str) -> str:
    """``attachment``/``inline`` with the name as RFC 6266 wants it: an ASCII fallback and
    the exact name percent-encoded in UTF-8."""
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\%' else "_" for ch in name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _rfc3339(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def file_json(record: FileRecord) -> dict[str, object]:
    data: dict[str, object] = {
        "id": record.id,
        "chat_id": record.chat_id,
        "uploader_id": record.uploader_id,
        "kind": record.kind,
        "mime": record.mime,
        "size": record.size,
        "name": record.name,
        "sha256": record.sha256,
        "created_at": _rfc3339(record.created_at),
        "thumbnail": record.thumb_sha256 is not None,
    }
    optional = {"width": record.width, "height": record.height, "duration_ms": record.duration_ms}
    data.update({key: value for key, value in optional.items() if value is not None})
    if record.waveform is not None:
        data["waveform"] = list(record.waveform)
    return data


def _path_id(request: Request, name: str) -> int:
    raw = request.params.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else -1


def _declared_size(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    return int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None


class FilesApi:
    def __init__(self, files: FileService, settings: Settings, auth: AuthService) -> None:
        self._auth = auth
        self._settings = settings
        self.files = files

    def register(self, router: Router) -> None:
        router.add(
            "POST",
            "/api/v1/chats/{chat_id}/files",
            self.upload,
            stream_limit=self.files.max_upload_bytes,
        )
        router.add("GET", "/api/v1/files/{file_id}", self.download)
        router.add("GET", "/api/v1/files/{file_id}/thumbnail", self.thumbnail)

    # --- upload ---------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        stream = request.stream
        assert stream is not None, "registered with a stream limit"
        # Refusals before this point answer without reading the body; the gateway closes.
        account_id = await require_account(request, self._auth, self._settings)
        upload = await self.files.begin(
            account_id,
            _path_id(request, "chat_id"),
            request.query_value("kind"),
            request.query_value("name"),
            _declared_size(request),
        )
        try:
            stored = await self.files.receive(upload, stream.read)
        except UnsupportedContent as exc:
            errors = [{"field": e.field, "message": e.message} for e in exc.errors]
            return problem(exc.status, exc.code, exc.message, errors=errors)
        except BodyTooLarge as exc:
            return problem(413, ErrorCode.BODY_TOO_LARGE, str(exc))
        except ConnectionResetError:
            # The client went away mid-body: nobody reads this answer.
            return problem(400, ErrorCode.BAD_MESSAGE, "the upload was cut short")
        return Response.json(
            file_json(stored), status=201, headers=[("Location", f"/api/v1/files/{stored.id}")]
        )

    # --- download -------------------------------------------------------------------------

    async def download(self, request: Request) -> Response:
        account_id = await require_account(request, self._auth, self._settings)
        record = await self.files.file_for(account_id, _path_id(request, "file_id"))
        sha256 = record.sha256

        async def read(start: int, length: int) -> bytes:
            return await self.files.read(sha256, start, length)

        disposition = "inline" if record.kind == "photo" else "attachment"
        return await _serve(
            request,
            etag=f'"{sha256}"',
            size=record.size,
            mime=record.mime,
            disposition=content_disposition(disposition, record.name),
            read=read,
        )

    async def thumbnail(self, request: Request) -> Response:
        account_id = await require_account(request, self._auth, self._settings)
        file_id = _path_id(request, "file_id")
        record = await self.files.file_for(account_id, file_id)
        if record.thumb_sha256 is None or record.thumb_mime is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"file {file_id} has no thumbnail")
        data = await self.files.read(record.thumb_sha256, 0, THUMBNAIL_MAX_BYTES)

        async def read(start: int, length: int) -> bytes:
            return data[start : start + length]

        ext = ".webp" if record.thumb_mime == "image/webp" else ".jpg"
        stem = record.name.rsplit(".", 1)[0] if "." in record.name else record.name
        return await _serve(
            request,
            etag=f'"{record.thumb_sha256}"',
            size=len(data),
            mime=record.thumb_mime,
            disposition=content_disposition("inline", f"{stem}.thumbnail{ext}"),
            read=read,
        )


async def _serve(
    request: Request, *, etag: str, size: int, mime: str, disposition: str, read: ReadBlob
) -> Response:
    """200, 206, 304 or 416 for a GET of stored bytes (the gateway adds nosniff)."""
    cache = [
        ("ETag", etag),
        # Members only, and membership can end: browsers may keep it a while, proxies not.
        ("Cache-Control", "private, max-age=3600"),
    ]
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(304, headers=cache)
    headers = [
        *cache,
        ("Accept-Ranges", "bytes"),
        ("Content-Disposition", disposition),
        # Opened directly, nothing in it runs.
        ("Content-Security-Policy", "default-src 'none'; sandbox"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
    ]
    wanted = None
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if range_header is not None and (if_range is None or if_range.strip() == etag):
        wanted = byte_range(range_header, size)
    if wanted == UNSATISFIABLE:
        return problem(
            416,
            ErrorCode.RANGE_NOT_SATISFIABLE,
            f"the file has {size} bytes; that range is outside it",
            errors=[{"field": "range", "message": "outside the file"}],
            headers=[("Content-Range", f"bytes */{size}"), ("Accept-Ranges", "bytes")],
        )
    if isinstance(wanted, tuple):
        first, last = wanted
        last = min(last, first + PART_MAX_BYTES - 1)
        body = await read(first, last - first + 1)
        headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        return Response(206, body, mime, headers)
    if size > WHOLE_MAX_BYTES:
        return problem(
            413,
            ErrorCode.BODY_TOO_LARGE,
            f"this file is larger than {WHOLE_MAX_BYTES >> 20} MiB: fetch it in ranges"
            f" (Range: bytes=…) of up to {PART_MAX_BYTES >> 20} MiB",
            headers=[("Accept-Ranges", "bytes")],
        )
    return Response(200, await read(0, size), mime, headers)
