"""Attachments end to end on a real server: uploads streamed into a chat, downloads with
ranges and ETags, members only, and bad uploads that leave nothing in the blob directory.

Uploads go through the SDK's ``http_request``; truncated and oversized bodies are written
on raw sockets. Every bad upload is followed by a look at the blob directory and a normal
request that still works.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from PIL import Image

from protocol.client import Client, http_request
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.unit.test_file_types import (
    ELF,
    make_image,
    make_pdf,
    make_png_bomb,
    make_video,
    make_voice,
)

PHOTO_LIMIT = 200_000
PART_MAX = 16 << 20
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose photos may be at most ``PHOTO_LIMIT`` bytes."""
    running = start_server(
        tmp_path_factory.mktemp("parta"), env={"PARTA_PHOTO_BYTES": str(PHOTO_LIMIT)}
    )
    yield running
    log = stop_server(running)
    assert running.process.returncode == 0, log
    assert "Traceback" not in log, log


@dataclass
class Room:
    """Alice and Bob share a chat; Carol is in none of theirs."""

    server: RunningServer
    alice: Client
    bob: Client
    carol: Client
    chat_id: int


@pytest.fixture
async def room(server: RunningServer, clients: list[Client]) -> Room:
    alice = await server.sign_in("Смирнова", "Алиса")
    bob = await server.sign_in("Петров", "Борис")
    carol = await server.sign_in("Кузнецова", "Карина")
    clients += [alice, bob, carol]
    await alice.connect()
    assert bob.account_id is not None
    chat = await alice.create_chat("7А: файлы", [bob.account_id])
    return Room(server, alice, bob, carol, chat.id)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def _auth(client: Client) -> dict[str, str]:
    return {"authorization": f"Bearer {client.token}"}


async def upload(
    room: Room,
    data: bytes,
    kind: str,
    name: str | None = None,
    *,
    client: Client | None = None,
    chat_id: int | None = None,
) -> Reply:
    query = f"kind={kind}" + ("" if name is None else f"&name={quote(name, safe='')}")
    url = f"{room.server.url}/api/v1/chats/{chat_id or room.chat_id}/files?{query}"
    status, headers, body = await http_request(
        "POST",
        url,
        body=data,
        headers={**_auth(client or room.alice), "content-type": "application/octet-stream"},
    )
    return Reply(status, headers, body)


async def uploaded(room: Room, data: bytes, kind: str, name: str | None = None) -> dict[str, Any]:
    reply = await upload(room, data, kind, name)
    assert reply.status == 201, reply.body
    meta: dict[str, Any] = reply.json()
    assert reply.headers["location"] == f"/api/v1/files/{meta['id']}"
    return meta


async def download(
    room: Room,
    file_id: int,
    suffix: str = "",
    headers: dict[str, str] | None = None,
    *,
    client: Client | None = None,
) -> Reply:
    status, got, body = await http_request(
        "GET",
        f"{room.server.url}/api/v1/files/{file_id}{suffix}",
        headers={**_auth(client or room.bob), **(headers or {})},
    )
    return Reply(status, got, body)


def blobs(server: RunningServer) -> list[str]:
    """Every file under the blob directory, temporary ones included."""
    root = server.data_dir / "blobs"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def settled(server: RunningServer, expected: list[str]) -> list[str]:
    """The blob listing once the server has finished with an aborted upload."""
    for _ in range(100):
        now = blobs(server)
        if now == expected:
            break
        await asyncio.sleep(0.05)
    return now


async def still_serves(room: Room, file_id: int) -> None:
    reply = await download(room, file_id)
    assert reply.status == 200


async def raw(server: RunningServer, data: bytes) -> bytes:
    """Write bytes on a fresh connection; read the answer until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(data)
        await writer.drain()
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            answer = await asyncio.wait_for(reader.read(), 10)
        return answer
    finally:
        writer.close()


def upload_head(room: Room, kind: str, extra: str, client: Client | None = None) -> bytes:
    token = (client or room.alice).token
    return (
        f"POST /api/v1/chats/{room.chat_id}/files?kind={kind}&name=x HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n{extra}\r\n"
    ).encode()


def status_of(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body) if body else {}


# --- uploads that work -----------------------------------------------------------------


async def test_photo_with_size_and_a_thumbnail_to_download(room: Room) -> None:
    data = make_image("JPEG", (1600, 1200))
    meta = await uploaded(room, data, "photo", "Доска после урока.jpg")
    assert {k: meta[k] for k in ("kind", "mime", "size", "name", "width", "height")} == {
        "kind": "photo",
        "mime": "image/jpeg",
        "size": len(data),
        "name": "Доска после урока.jpg",
        "width": 1600,
        "height": 1200,
    }
    assert meta["thumbnail"] is True
    assert meta["chat_id"] == room.chat_id and meta["uploader_id"] == room.alice.account_id
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert "duration_ms" not in meta and "waveform" not in meta

    full = await download(room, meta["id"])
    assert full.status == 200 and full.body == data
    assert full.headers["content-type"] == "image/jpeg"
    assert full.headers["content-disposition"].startswith("inline;")
    assert full.headers["x-content-type-options"] == "nosniff"
    assert full.headers["etag"] == f'"{meta["sha256"]}"'

    thumb = await download(room, meta["id"], "/thumbnail")
    assert thumb.status == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["content-disposition"].startswith("inline;")
    with Image.open(io.BytesIO(thumb.body)) as image:
        assert image.format == "JPEG" and image.size == (320, 240)


async def test_voice_message_has_a_length_and_a_waveform(room: Room, tmp_path: Path) -> None:
    for name in ("voice.ogg", "voice.webm"):
        data = make_voice(tmp_path / name, 3.0, loud_after=1.5).read_bytes()
        meta = await uploaded(room, data, "voice")
        assert meta["kind"] == "voice"
        assert meta["mime"] == ("audio/ogg" if name.endswith(".ogg") else "audio/webm")
        assert meta["name"] == "voice" + Path(name).suffix  # none sent: named by its type
        assert abs(meta["duration_ms"] - 3000) <= 300
        waveform = meta["waveform"]
        assert len(waveform) == 64 and all(0 <= v <= 255 for v in waveform)
        assert max(waveform[:28]) < max(waveform[36:])
        assert meta["thumbnail"] is False
        got = await download(room, meta["id"])
        assert got.body == data and got.headers["content-type"] == meta["mime"]


async def test_video_has_a_length_and_a_first_frame(room: Room, tmp_path: Path) -> None:
    data = make_video(tmp_path / "clip.webm", "webm", "libvpx", 2.0).read_bytes()
    meta = await uploaded(room, data, "video", "опыт.webm")
    assert (meta["mime"], meta["width"], meta["height"]) == ("video/webm", 160, 120)
    assert abs(meta["duration_ms"] - 2000) <= 200
    assert meta["thumbnail"] is True
    thumb = await download(room, meta["id"], "/thumbnail")
    assert thumb.status == 200 and thumb.headers["content-type"] == "image/jpeg"


async def test_pdf_document_served_by_its_type_not_its_name(room: Room) -> None:
    data = make_pdf()
    meta = await uploaded(room, data, "document", "Контрольная работа.jpg")
    assert (meta["mime"], meta["kind"], meta["thumbnail"]) == ("application/pdf", "document", False)
    got = await download(room, meta["id"])
    assert got.status == 200 and got.body == data
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == (
        'attachment; filename="___________ ______.jpg";'
        " filename*=UTF-8''%D0%9A%D0%BE%D0%BD%D1%82%D1%80%D0%BE%D0%BB%D1%8C%D0%BD%D0%B0%D1%8F"
        "%20%D1%80%D0%B0%D0%B1%D0%BE%D1%82%D0%B0.jpg"
    )
    assert (await download(room, meta["id"], "/thumbnail")).status == 404


async def test_the_session_cookie_works_too(room: Room) -> None:
    meta = await uploaded(room, b"cookie\n", "document", "c.txt")
    status, _, body = await http_request(
        "GET",
        f"{room.server.url}/api/v1/files/{meta['id']}",
        headers={"cookie": f"parta_session={room.alice.token}"},
    )
    assert (status, body) == (200, b"cookie\n")


async def test_identical_content_is_stored_once(room: Room) -> None:
    data = secrets.token_bytes(5000)
    first = await uploaded(room, data, "document", "a.bin")
    second = await uploaded(room, data, "document", "b.bin")
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    sha = first["sha256"]
    assert [b for b in blobs(room.server) if b.endswith(sha)] == [f"{sha[:2]}/{sha[2:4]}/{sha}"]
    assert (await download(room, second["id"])).headers["content-disposition"].endswith("b.bin")


# --- downloads ---------------------------------------------------------------------------


async def test_ranges(room: Room) -> None:
    data = secrets.token_bytes(10_000)
    meta = await uploaded(room, data, "document", "data.bin")
    file_id, size = meta["id"], len(data)

    async def ranged(value: str, **extra: str) -> Reply:
        return await download(room, file_id, headers={"range": value, **extra})

    first = await ranged("bytes=0-99")
    assert (first.status, first.body) == (206, data[:100])
    assert first.headers["content-range"] == f"bytes 0-99/{size}"
    assert first.headers["accept-ranges"] == "bytes"
    assert first.headers["content-type"] == "application/octet-stream"

    suffix = await ranged("bytes=-300")
    assert (suffix.status, suffix.body) == (206, data[-300:])
    assert suffix.headers["content-range"] == f"bytes {size - 300}-{size - 1}/{size}"

    middle = await ranged("bytes=4000-4999")
    assert (middle.status, middle.body) == (206, data[4000:5000])

    open_ended = await ranged("bytes=9000-")
    assert (open_ended.status, open_ended.body) == (206, data[9000:])
    past_end = await ranged("bytes=9990-20000")
    assert (past_end.status, past_end.body) == (206, data[9990:])
    whole_suffix = await ranged("bytes=-999999")
    assert (whole_suffix.status, whole_suffix.body) == (206, data)

    for unsatisfiable in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0"):
        refused = await ranged(unsatisfiable)
        assert refused.status == 416, unsatisfiable
        assert refused.headers["content-range"] == f"bytes */{size}"
        assert refused.headers["content-type"] == PROBLEM

    # Ignored, as RFC 9110 lets a server do: the whole file.
    for ignored in ("bytes=5-1", "bytes=0-1,5-6", "items=0-1", "bytes=x-y"):
        reply = await ranged(ignored)
        assert (reply.status, reply.body) == (200, data), ignored
    # If-Range with another validator: the whole file.
    changed = await ranged("bytes=0-9", **{"if-range": '"something-else"'})
    assert (changed.status, changed.body) == (200, data)
    same = await ranged("bytes=0-9", **{"if-range": f'"{meta["sha256"]}"'})
    assert (same.status, same.body) == (206, data[:10])


async def test_etag_and_if_none_match(room: Room) -> None:
    meta = await uploaded(room, make_pdf(), "document", "a.pdf")
    etag = f'"{meta["sha256"]}"'
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        reply = await download(room, meta["id"], headers={"if-none-match": header})
        assert (reply.status, reply.body) == (304, b""), header
        assert reply.headers["etag"] == etag
    reply = await download(room, meta["id"], headers={"if-none-match": '"other"'})
    assert reply.status == 200


async def test_a_range_answer_holds_at_most_16_mib(room: Room) -> None:
    data = secrets.token_bytes(PART_MAX + (1 << 20))
    meta = await uploaded(room, data, "document", "big.bin")
    whole = await download(room, meta["id"])
    assert whole.status == 200 and len(whole.body) == len(data)
    part = await download(room, meta["id"], headers={"range": "bytes=0-"})
    assert part.status == 206
    assert part.headers["content-range"] == f"bytes 0-{PART_MAX - 1}/{len(data)}"
    assert part.body == data[:PART_MAX]
    rest = await download(room, meta["id"], headers={"range": f"bytes={PART_MAX}-"})
    assert rest.body == data[PART_MAX:]


async def test_only_members_see_files(room: Room) -> None:
    meta = await uploaded(room, make_image("PNG", (64, 64)), "photo", "p.png")
    for suffix in ("", "/thumbnail"):
        outsider = await download(room, meta["id"], suffix, client=room.carol)
        assert outsider.status == 404 and outsider.headers["content-type"] == PROBLEM
        assert orjson.loads(outsider.body)["code"] == "not_found"
        # The same answer as for a file that does not exist.
        missing = await download(room, 987_654_321, suffix)
        assert missing.status == 404
    assert (await download(room, meta["id"], client=room.bob)).status == 200
    status, _, _ = await http_request("GET", f"{room.server.url}/api/v1/files/{meta['id']}")
    assert status == 401


# --- uploads that are refused ------------------------------------------------------------


async def test_a_non_member_cannot_upload(room: Room) -> None:
    before = blobs(room.server)
    reply = await upload(room, b"hello\n", "document", "x.txt", client=room.carol)
    assert reply.status == 403 and reply.json()["code"] == "not_member"
    assert reply.headers.get("connection") == "close"
    reply = await upload(room, b"hello\n", "document", "x.txt", chat_id=987_654)
    assert reply.status == 403 and reply.json()["code"] == "not_member"
    status, _, _ = await http_request(
        "POST", f"{room.server.url}/api/v1/chats/{room.chat_id}/files?kind=document", body=b"x"
    )
    assert status == 401
    assert await settled(room.server, before) == before


async def test_bad_uploads_leave_nothing_behind(room: Room) -> None:
    good = await uploaded(room, b"a normal file\n", "document", "ok.txt")
    cases: list[tuple[bytes, str, str | None, int, str, str | None]] = [
        (b"just some text\n", "photo", "p.jpg", 415, "unsupported_type", "kind"),
        (make_pdf(), "voice", None, 415, "unsupported_type", "kind"),
        (ELF, "document", "tool", 415, "unsupported_type", "file"),
        (b"#!/bin/sh\necho hi\n", "document", "notes.txt", 415, "unsupported_type", "file"),
        (make_png_bomb(), "photo", "bomb.png", 422, "validation_failed", "file"),
        (make_image("PNG")[:400], "photo", "cut.png", 415, "unsupported_type", "file"),
        (b"", "document", "empty.txt", 422, "validation_failed", "file"),
        (b"x", "sticker", None, 422, "validation_failed", "kind"),
        (b"x", "document", "../x", 422, "validation_failed", "name"),
        (b"x", "document", "a/b", 422, "validation_failed", "name"),
        (b"x", "document", "C:\\x", 422, "validation_failed", "name"),
        (b"x", "document", "a\x00b", 422, "validation_failed", "name"),
        (b"x", "document", "a\nb", 422, "validation_failed", "name"),
        (b"x", "document", "setup.exe", 422, "validation_failed", "name"),
        (secrets.token_bytes(PHOTO_LIMIT + 1), "photo", "big.jpg", 413, "body_too_large", None),
    ]
    for data, kind, name, status, code, field in cases:
        before = blobs(room.server)
        reply = await upload(room, data, kind, name)
        assert reply.status == status, (kind, name, reply.body)
        problem = reply.json()
        assert reply.headers["content-type"] == PROBLEM
        assert problem["code"] == code
        if field is not None:
            assert [e["field"] for e in problem["errors"]] == [field], problem
        assert await settled(room.server, before) == before, (kind, name)
        await still_serves(room, good["id"])


async def test_over_the_limit_without_a_length_leaves_nothing_behind(room: Room) -> None:
    good = await uploaded(room, b"a normal file\n", "document", "ok.txt")
    before = blobs(room.server)
    # Chunked: no length to refuse up front, so the count stops it.
    body = secrets.token_bytes(PHOTO_LIMIT + 1000)
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 50_000]), body[i : i + 50_000])
        for i in range(0, len(body), 50_000)
    )
    answer = await raw(
        room.server,
        upload_head(room, "photo", "Transfer-Encoding: chunked\r\n") + chunks + b"0\r\n\r\n",
    )
    status, problem = status_of(answer)
    assert (status, problem["code"]) == (413, "body_too_large")
    assert await settled(room.server, before) == before
    # With a length over the limit: refused from the headers alone, before any body.
    answer = await raw(room.server, upload_head(room, "photo", "Content-Length: 300000\r\n"))
    assert status_of(answer)[0] == 413
    await still_serves(room, good["id"])


@pytest.mark.parametrize(("declared", "sent"), [(100_000, 1000), (3 << 20, (3 << 20) // 2)])
async def test_a_truncated_upload_leaves_nothing_behind(
    room: Room, declared: int, sent: int
) -> None:
    good = await uploaded(room, b"a normal file\n", "document", "ok.txt")
    before = blobs(room.server)
    _, writer = await asyncio.open_connection("127.0.0.1", room.server.port)
    writer.write(upload_head(room, "document", f"Content-Length: {declared}\r\n"))
    writer.write(secrets.token_bytes(sent))
    await writer.drain()
    if sent > 1 << 20:
        # Past the first megabyte the upload is on disk, in a temporary file.
        for _ in range(100):
            if len(blobs(room.server)) > len(before):
                break
            await asyncio.sleep(0.02)
        assert [b.split("/")[0] for b in blobs(room.server) if b not in before] == ["tmp"]
    writer.close()  # the client goes away mid-body
    assert await settled(room.server, before) == before
    await still_serves(room, good["id"])


async def test_a_client_gone_after_the_whole_body_leaves_no_temporary_file(room: Room) -> None:
    good = await uploaded(room, b"a normal file\n", "document", "ok.txt")
    before = blobs(room.server)
    data = secrets.token_bytes(2 << 20)
    _, writer = await asyncio.open_connection("127.0.0.1", room.server.port)
    writer.write(upload_head(room, "document", f"Content-Length: {len(data)}\r\n") + data)
    await writer.drain()
    writer.close()  # without waiting for the answer
    sha = hashlib.sha256(data).hexdigest()
    stored = [*before, f"{sha[:2]}/{sha[2:4]}/{sha}"]
    for _ in range(100):
        now = blobs(room.server)
        if now in (before, sorted(stored)):
            break
        await asyncio.sleep(0.05)
    # Stored whole (the commit outlives the connection) or not at all; never half.
    assert now in (before, sorted(stored))
    await still_serves(room, good["id"])
