"""The HTTP gateway against abuse, and the sign-in rules end to end over real sockets.

Malformed and oversized input is written byte for byte on raw connections; everything else
goes through the SDK's ``http_request``. Every abusive case ends by showing that the server
still answers a normal request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from protocol.client import http_request
from tests.integration.conftest import RunningServer, start_server, stop_cleanly, stop_server

PROBLEM = "application/problem+json"
HEADER_CAP = 16 << 10  # PARTA_HTTP_HEADER_BYTES default
BODY_CAP = 1 << 20  # PARTA_HTTP_BODY_BYTES default

# Not the prefix ``RunningServer.sign_in`` uses, so the two never hand out the same phone.
_numbers = itertools.count(1)


def new_phone() -> str:
    return f"+7916{os.getpid() % 1000:03d}{next(_numbers):04d}"


# --- raw HTTP ---------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


def parse_replies(data: bytes) -> list[Reply]:
    """Split what the server wrote into responses (it always sends Content-Length)."""
    replies = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {data[:200]!r}"
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 "), lines[0]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        assert len(rest) >= length, "truncated response body"
        replies.append(Reply(int(lines[0].split(" ", 2)[1]), headers, rest[:length]))
        data = rest[length:]
    return replies


class _Collector(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.first_byte: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data
        if not self.first_byte.done():
            self.first_byte.set_result(None)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        # A reset after the server's answer is fine: it refused a body we were still sending.
        if not self.lost.done():
            self.lost.set_result(None)


@dataclass
class Exchange:
    replies: list[Reply]
    closed: bool  # the server closed the connection
    sent: int  # bytes we managed to write before it did


async def exchange(
    server: RunningServer, *parts: bytes, pause_s: float = 0.0, wait_s: float = 5.0
) -> Exchange:
    """Write ``parts`` (stopping once the server answers or hangs up) and collect what it sends
    until it closes the connection or ``wait_s`` passes."""
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_connection(_Collector, "127.0.0.1", server.port)
    sent = 0
    try:
        for part in parts:
            if peer.lost.done() or peer.first_byte.done():
                break
            transport.write(part)
            sent += len(part)
            await asyncio.sleep(pause_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(peer.lost), wait_s)
        return Exchange(parse_replies(bytes(peer.data)), peer.lost.done(), sent)
    finally:
        transport.abort()


def raw_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_problem(reply: Reply, status: int, code: str) -> dict[str, Any]:
    assert reply.status == status, reply
    assert reply.headers["content-type"] == PROBLEM, reply.headers
    problem: dict[str, Any] = reply.json()
    assert {"type", "title", "status", "code", "detail"} <= problem.keys(), problem
    assert (problem["status"], problem["code"]) == (status, code), problem
    assert problem["type"].endswith(f"/{code}"), problem
    assert isinstance(problem["detail"], str) and problem["detail"], problem
    return problem


async def assert_healthy(server: RunningServer) -> None:
    started = time.monotonic()
    status, headers, body = await http_request("GET", server.url + "/healthz", timeout_s=5)
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert orjson.loads(body)["status"] == "ok"
    assert time.monotonic() - started < 2, "the server answered /healthz slowly"


# --- JSON API helpers -------------------------------------------------------------------


async def call(
    server: RunningServer,
    method: str,
    path: str,
    payload: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    sent = dict(headers or {})
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    if body is None:
        body = b"" if payload is None else orjson.dumps(payload)
    if body:
        sent.setdefault("content-type", "application/json")
    status, got, raw = await http_request(
        method, server.url + path, body=body, headers=sent, timeout_s=10
    )
    return Reply(status, got, raw)


async def sign_in(server: RunningServer, phone: str | None = None) -> tuple[str, Reply]:
    """A fresh session (a new account unless ``phone`` is given): (token, verify reply)."""
    phone = phone or new_phone()
    sent = await call(server, "POST", "/api/v1/auth/code", {"phone": phone})
    assert sent.status == 200, sent
    verified = await call(
        server, "POST", "/api/v1/auth/verify", {"phone": phone, "code": server.code_for(phone)}
    )
    assert verified.status == 200, verified
    return verified.json()["token"], verified


VALID_PROFILE = {
    "last_name": "Соколова",
    "first_name": "Анна",
    "middle_name": "Петровна",
    "birth_date": "2011-09-01",
    "sex": "female",
}


# --- a second server: behind a public https address, resend cooldown off ---------------

PUBLIC_ORIGIN = "https://school.example"


@pytest.fixture(scope="module")
def public_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Reached at ``PUBLIC_ORIGIN`` by browsers; several sessions of one account possible."""
    running = start_server(
        tmp_path_factory.mktemp("parta-public"),
        "--public-url",
        PUBLIC_ORIGIN,
        env={"PARTA_CODE_RESEND_AFTER_S": "0"},
    )
    # The "listening" line names the public address; the tests talk to the socket.
    direct = RunningServer(
        f"http://127.0.0.1:{running.port}", running.port, running.data_dir, running.process
    )
    yield direct
    log = stop_server(running)
    assert running.process.returncode == 0, log
    assert "Traceback" not in log, log


# === malformed HTTP ======================================================================


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="no-method"),
        pytest.param(b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", id="bad-version"),
        pytest.param(b"GET /he althz HTTP/1.1\r\nHost: x\r\n\r\n", id="space-in-target"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", id="tls-hello"),
        pytest.param(b"GET /healthz HTTP/1.1\nHost: x\n\n", id="bare-lf"),
    ],
)
async def test_malformed_request_line_gets_400_and_the_connection_is_closed(
    server: RunningServer, data: bytes
) -> None:
    result = await exchange(server, data)
    assert len(result.replies) == 1, result
    (reply,) = result.replies
    problem = assert_problem(reply, 400, "bad_message")
    assert "malformed HTTP request" in problem["detail"]
    assert reply.closes and result.closed
    await assert_healthy(server)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", id="no-colon"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", id="space-before-colon"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nBad\x01Name: x\r\n\r\n", id="control-in-name"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nX: a\x00b\r\n\r\n", id="nul-in-value"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", id="obs-fold"),
        pytest.param(
            b"POST /api/v1/auth/code HTTP/1.1\r\nContent-Length: abc\r\n\r\n", id="bad-length"
        ),
        pytest.param(
            b"POST /api/v1/auth/code HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
            id="two-lengths",
        ),
        pytest.param(
            b"POST /api/v1/auth/code HTTP/1.1\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            id="length-and-chunked",
        ),
        pytest.param(
            b"POST /api/v1/auth/code HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            id="bad-chunk-size",
        ),
    ],
)
async def test_malformed_headers_get_400_and_the_connection_is_closed(
    server: RunningServer, data: bytes
) -> None:
    result = await exchange(server, data)
    assert len(result.replies) == 1, result
    assert_problem(result.replies[0], 400, "bad_message")
    assert result.replies[0].closes and result.closed
    await assert_healthy(server)


async def test_garbage_after_an_answered_request_on_a_kept_alive_connection(
    server: RunningServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(raw_request("GET", "/healthz"))
        first = await read_reply(reader)
        assert first.status == 200 and not first.closes
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        second = await read_reply(reader)
        assert_problem(second, 400, "bad_message")
        assert second.closes
        assert await asyncio.wait_for(reader.read(), 5) == b"", "the connection must be closed"
    finally:
        writer.close()
    await assert_healthy(server)


async def test_requests_pipelined_before_a_malformed_one_are_answered_first(
    server: RunningServer,
) -> None:
    result = await exchange(server, raw_request("GET", "/healthz") + b"GARBAGE\r\n\r\n")
    assert [r.status for r in result.replies] == [200, 400], result
    assert result.closed


# === size caps ===========================================================================


async def _oversized_headers(server: RunningServer) -> Exchange:
    big = "a" * (HEADER_CAP + 1024)
    return await exchange(server, raw_request("GET", "/healthz", headers={"X-Big": big}))


async def _oversized_content_length(server: RunningServer) -> Exchange:
    # Only the head: a server that waited for the body would never answer.
    head = raw_request("POST", "/api/v1/auth/code")
    head = head.replace(b"Content-Length: 0", f"Content-Length: {BODY_CAP + 1}".encode())
    return await exchange(server, head, wait_s=3)


async def _oversized_chunked(server: RunningServer) -> Exchange:
    head = (
        b"POST /api/v1/auth/code HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"  # 64 KiB each
    chunks = [chunk] * (2 * BODY_CAP // 0x10000)  # twice the cap in all
    return await exchange(server, head, *chunks, b"0\r\n\r\n", pause_s=0.001)


async def test_oversized_requests_are_refused_early_and_the_server_stays_up(
    server: RunningServer,
) -> None:
    """Whatever the status, an oversized request is refused without buffering it all."""
    headers = await _oversized_headers(server)
    length = await _oversized_content_length(server)
    chunked = await _oversized_chunked(server)
    for result in (headers, length, chunked):
        assert len(result.replies) == 1, result
        reply = result.replies[0]
        assert 400 <= reply.status < 500 and reply.headers["content-type"] == PROBLEM
        assert reply.closes and result.closed
    # The declared length alone was enough: no body was ever sent.
    assert length.sent < 200
    # The chunked body was cut off well before all of it was written.
    assert chunked.sent < 2 * BODY_CAP
    await assert_healthy(server)


async def test_headers_over_the_cap_get_431(server: RunningServer) -> None:
    result = await _oversized_headers(server)
    assert len(result.replies) == 1
    assert result.replies[0].status == 431
    assert result.replies[0].headers["content-type"] == PROBLEM
    assert result.closed
    await assert_healthy(server)


async def test_content_length_over_the_cap_gets_413_without_sending_the_body(
    server: RunningServer,
) -> None:
    result = await _oversized_content_length(server)
    assert result.sent < 200 and result.closed
    assert_problem(result.replies[0], 413, "body_too_large")
    await assert_healthy(server)


async def test_chunked_body_over_the_cap_gets_413(server: RunningServer) -> None:
    result = await _oversized_chunked(server)
    assert result.closed
    assert_problem(result.replies[0], 413, "body_too_large")
    await assert_healthy(server)


async def test_a_body_just_under_the_cap_is_read_and_parsed(server: RunningServer) -> None:
    padding = " " * (BODY_CAP - 100)
    body = f'{{"phone": "not a phone"{padding}}}'.encode()
    assert len(body) <= BODY_CAP
    reply = await call(server, "POST", "/api/v1/auth/code", body=body)
    assert_problem(reply, 422, "invalid_phone")


# === JSON bodies =========================================================================


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{phone: 1}", id="unquoted-key"),
        pytest.param(b'{"phone": "+79160000000"', id="truncated"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"", id="empty"),
        pytest.param(b"phone=+79160000000", id="form-encoded"),
    ],
)
async def test_bad_json_gets_400_bad_json(server: RunningServer, body: bytes) -> None:
    reply = await call(server, "POST", "/api/v1/auth/code", body=body)
    assert_problem(reply, 400, "bad_json")
    await assert_healthy(server)


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/v1/auth/code", {"phone": 79160000000}, "phone"),
        ("/api/v1/auth/code", {"phone": None}, "phone"),
        ("/api/v1/auth/code", {"phone": ["+79160000000"]}, "phone"),
        ("/api/v1/auth/code", {"phone": "9" * 101}, "phone"),
        ("/api/v1/auth/verify", {"phone": "+79160000000", "code": 123456}, "code"),
    ],
)
async def test_wrong_types_get_422_naming_the_field(
    server: RunningServer, path: str, payload: dict[str, Any], field: str
) -> None:
    problem = assert_problem(await call(server, "POST", path, payload), 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == [field], problem
    assert all(e["message"] for e in problem["errors"])
    await assert_healthy(server)


async def test_a_body_that_is_not_an_object_gets_422(server: RunningServer) -> None:
    for payload in ([], "phone", 42):
        reply = await call(server, "POST", "/api/v1/auth/code", payload)
        problem = assert_problem(reply, 422, "validation_failed")
        assert problem["errors"], problem
    await assert_healthy(server)


async def test_missing_fields_get_422_naming_the_field(server: RunningServer) -> None:
    reply = await call(server, "POST", "/api/v1/auth/verify", {"phone": "+79160000000"})
    problem = assert_problem(reply, 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["code"], problem


async def test_missing_fields_get_422_mentioning_the_field(server: RunningServer) -> None:
    reply = await call(server, "POST", "/api/v1/auth/verify", {"phone": "+79160000000"})
    problem = assert_problem(reply, 422, "validation_failed")
    assert "`code`" in problem["detail"]
    assert len(problem["errors"]) == 1
    await assert_healthy(server)


# === routing =============================================================================


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nothing-here"),
        ("POST", "/api/v1/auth/nothing"),
        ("GET", "/api/v1/"),
        ("GET", "/api/v1/profile/extra"),
    ],
)
async def test_unknown_path_gets_404(server: RunningServer, method: str, path: str) -> None:
    reply = await call(server, method, path, {} if method == "POST" else None)
    assert_problem(reply, 404, "not_found")
    await assert_healthy(server)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/profile", "GET, POST"),
        ("GET", "/api/v1/auth/code", "POST"),
        ("PUT", "/api/v1/auth/verify", "POST"),
        ("POST", "/healthz", "GET"),
    ],
)
async def test_wrong_method_gets_405(
    server: RunningServer, method: str, path: str, allowed: str
) -> None:
    problem = assert_problem(await call(server, method, path), 405, "method_not_allowed")
    assert allowed in problem["detail"]
    await assert_healthy(server)


async def test_405_carries_an_allow_header(server: RunningServer) -> None:
    reply = await call(server, "DELETE", "/api/v1/profile")
    assert reply.status == 405
    assert reply.headers.get("allow") == "GET, POST"


# === connections =========================================================================


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    """One response from a kept-alive connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    (reply,) = parse_replies(head + body)
    return reply


async def test_keep_alive_serves_two_requests_on_one_connection(server: RunningServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(raw_request("GET", "/healthz"))
        first = await read_reply(reader)
        assert first.status == 200 and not first.closes
        writer.write(raw_request("POST", "/api/v1/auth/code", b'{"phone": "nope"}'))
        second = await read_reply(reader)
        assert_problem(second, 422, "invalid_phone")
        assert not second.closes
        # Still open: a third request on the same socket.
        writer.write(raw_request("GET", "/healthz", headers={"Connection": "close"}))
        third = await read_reply(reader)
        assert third.status == 200 and third.closes
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_three_pipelined_requests_are_answered_in_order(server: RunningServer) -> None:
    phone = new_phone()
    # The first request is the slowest to serve (a write and an SMS), the others are quick.
    burst = (
        raw_request("POST", "/api/v1/auth/code", orjson.dumps({"phone": phone}))
        + raw_request("GET", "/api/v1/second")
        + raw_request("GET", "/healthz", headers={"Connection": "close"})
    )
    result = await exchange(server, burst)
    assert [r.status for r in result.replies] == [200, 404, 200], result
    first, second, third = result.replies
    assert first.json()["phone"] == phone
    assert second.json()["detail"] == "nothing at /api/v1/second"
    assert third.json()["status"] == "ok" and third.closes
    assert not first.closes and not second.closes
    assert result.closed


# === sign-in =============================================================================


@pytest.mark.parametrize("phone", ["12345", "hello", "+7 999 000", "", "+1 555 0100"])
async def test_invalid_phone_gets_422_invalid_phone(server: RunningServer, phone: str) -> None:
    reply = await call(server, "POST", "/api/v1/auth/code", {"phone": phone})
    assert_problem(reply, 422, "invalid_phone")
    await assert_healthy(server)


async def test_a_second_code_within_the_cooldown_gets_429_with_retry_after(
    server: RunningServer,
) -> None:
    phone = new_phone()
    first = await call(server, "POST", "/api/v1/auth/code", {"phone": phone})
    assert first.status == 200
    assert first.json()["resend_after"] == 60 and first.json()["expires_in"] == 300
    # The same number written differently is the same phone.
    national = "8" + phone.removeprefix("+7")
    for written in (phone, national):
        again = await call(server, "POST", "/api/v1/auth/code", {"phone": written})
        assert_problem(again, 429, "resend_too_soon")
        assert 55 <= int(again.headers["retry-after"]) <= 60, again.headers
    # The first code still works.
    verified = await call(
        server, "POST", "/api/v1/auth/verify", {"phone": phone, "code": server.code_for(phone)}
    )
    assert verified.status == 200
    await assert_healthy(server)


async def test_five_wrong_codes_spend_the_code(server: RunningServer) -> None:
    phone = new_phone()
    assert (await call(server, "POST", "/api/v1/auth/code", {"phone": phone})).status == 200
    right = server.code_for(phone)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        reply = await call(server, "POST", "/api/v1/auth/verify", {"phone": phone, "code": wrong})
        assert_problem(reply, 400, "code_invalid")
    reply = await call(server, "POST", "/api/v1/auth/verify", {"phone": phone, "code": right})
    assert_problem(reply, 429, "too_many_attempts")
    await assert_healthy(server)


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "１２３４５６"])
async def test_a_code_that_is_not_six_ascii_digits_is_invalid(
    server: RunningServer, code: str
) -> None:
    reply = await call(server, "POST", "/api/v1/auth/verify", {"phone": new_phone(), "code": code})
    assert_problem(reply, 400, "code_invalid")


async def test_a_used_code_cannot_be_used_again(server: RunningServer) -> None:
    phone = new_phone()
    token, _ = await sign_in(server, phone)
    again = await call(
        server, "POST", "/api/v1/auth/verify", {"phone": phone, "code": server.code_for(phone)}
    )
    assert_problem(again, 400, "code_invalid")
    assert "token" not in again.json()
    # A code belongs to its phone.
    other = new_phone()
    assert (await call(server, "POST", "/api/v1/auth/code", {"phone": other})).status == 200
    stolen = await call(
        server, "POST", "/api/v1/auth/verify", {"phone": phone, "code": server.code_for(other)}
    )
    assert_problem(stolen, 400, "code_invalid")
    assert (await call(server, "GET", "/api/v1/profile", token=token)).status == 403
    await assert_healthy(server)


async def test_verify_answers_a_token_and_a_session_cookie(server: RunningServer) -> None:
    token, verified = await sign_in(server)
    data = verified.json()
    assert set(data) == {"token", "account_id", "has_profile"}
    assert data["has_profile"] is False and data["account_id"] >= 1
    cookie = verified.headers["set-cookie"]
    attributes = [part.strip() for part in cookie.split(";")]
    assert attributes[0] == f"parta_session={token}"
    assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= set(attributes)
    assert "Secure" not in attributes  # plain http in this test


# === sessions ============================================================================


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="none"),
        pytest.param("Bearer " + secrets.token_urlsafe(32), id="unknown"),
        pytest.param("Bearer garbage", id="garbage"),
        pytest.param("Bearer " + "x" * 5000, id="huge"),
        pytest.param("Bearer ", id="empty"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic"),
        pytest.param("Bearer ' OR 1=1 --", id="sql"),
    ],
)
async def test_bad_tokens_get_401(server: RunningServer, authorization: str | None) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    reply = await call(server, "GET", "/api/v1/profile", headers=headers)
    assert_problem(reply, 401, "unauthenticated")
    cookie = await call(
        server, "GET", "/api/v1/profile", headers={"cookie": "parta_session=garbage"}
    )
    assert_problem(cookie, 401, "unauthenticated")
    await assert_healthy(server)


async def test_a_token_ended_by_logout_gets_401(server: RunningServer) -> None:
    token, _ = await sign_in(server)
    assert (await call(server, "POST", "/api/v1/profile", VALID_PROFILE, token=token)).status == 201
    assert (await call(server, "GET", "/api/v1/profile", token=token)).status == 200
    out = await call(server, "POST", "/api/v1/auth/logout", token=token)
    assert out.status == 204 and out.body == b""
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert out.headers["set-cookie"].startswith("parta_session=;")
    assert_problem(
        await call(server, "GET", "/api/v1/profile", token=token), 401, "unauthenticated"
    )
    # Logging out again needs a live session.
    again = await call(server, "POST", "/api/v1/auth/logout", token=token)
    assert_problem(again, 401, "unauthenticated")
    await assert_healthy(server)


async def test_logout_ends_that_session_only_and_all_ends_every_one(
    public_server: RunningServer,
) -> None:
    server = public_server
    phone = new_phone()
    first, verified = await sign_in(server, phone)
    second, again = await sign_in(server, phone)
    assert first != second
    assert verified.json()["account_id"] == again.json()["account_id"]
    assert (await call(server, "POST", "/api/v1/profile", VALID_PROFILE, token=first)).status == 201

    assert (await call(server, "POST", "/api/v1/auth/logout", token=first)).status == 204
    assert (await call(server, "GET", "/api/v1/profile", token=first)).status == 401
    assert (await call(server, "GET", "/api/v1/profile", token=second)).status == 200

    third, _ = await sign_in(server, phone)
    other, _ = await sign_in(server)  # someone else's session is not touched
    assert (await call(server, "GET", "/api/v1/profile", token=third)).status == 200
    out = await call(server, "POST", "/api/v1/auth/logout?all=1", token=second)
    assert out.status == 204
    for token in (second, third):
        reply = await call(server, "GET", "/api/v1/profile", token=token)
        assert_problem(reply, 401, "unauthenticated")
    assert (await call(server, "GET", "/api/v1/profile", token=other)).status == 403
    await assert_healthy(server)


async def test_the_session_cookie_authenticates_and_refuses_cross_origin_writes(
    public_server: RunningServer,
) -> None:
    server = public_server
    token, verified = await sign_in(server)
    # Served over https: the cookie is Secure.
    attributes = [part.strip() for part in verified.headers["set-cookie"].split(";")]
    assert attributes[0] == f"parta_session={token}"
    assert {"HttpOnly", "SameSite=Lax", "Secure"} <= set(attributes)
    cookie = {"cookie": f"theme=dark; parta_session={token}"}
    evil = {**cookie, "origin": "http://evil.example"}
    own = {**cookie, "origin": PUBLIC_ORIGIN}

    # Authenticated by the cookie alone: no profile yet.
    missing = await call(server, "GET", "/api/v1/profile", headers=cookie)
    assert_problem(missing, 403, "profile_required")
    # Another site's page posting with the cookie riding along is refused, and has no effect.
    for origin in ("http://evil.example", "https://school.example.evil.example", "null"):
        forged = await call(
            server, "POST", "/api/v1/profile", VALID_PROFILE, headers={**cookie, "origin": origin}
        )
        assert_problem(forged, 403, "forbidden")
    missing = await call(server, "GET", "/api/v1/profile", headers=cookie)
    assert_problem(missing, 403, "profile_required")
    forged_logout = await call(server, "POST", "/api/v1/auth/logout?all=1", headers=evil)
    assert_problem(forged_logout, 403, "forbidden")

    # Our own origin may write with it.
    created = await call(server, "POST", "/api/v1/profile", VALID_PROFILE, headers=own)
    assert created.status == 201, created
    got = await call(server, "GET", "/api/v1/profile", headers=cookie)
    assert got.status == 200 and got.json()["first_name"] == "Анна"
    # The session survived the forged logout.
    assert (await call(server, "GET", "/api/v1/profile", token=token)).status == 200
    await assert_healthy(server)


async def test_the_session_cookie_works_from_the_announced_origin(server: RunningServer) -> None:
    """With ``--port 0`` the origin is the bound port's, the one the server announced."""
    token, _ = await sign_in(server)
    own = {"cookie": f"parta_session={token}", "origin": server.url}
    created = await call(server, "POST", "/api/v1/profile", VALID_PROFILE, headers=own)
    assert created.status == 201, created


# === the educational profile =============================================================


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        pytest.param({"first_name": ""}, ["first_name"], id="empty-first-name"),
        pytest.param({"last_name": "   "}, ["last_name"], id="blank-last-name"),
        pytest.param({"last_name": "Соколова2"}, ["last_name"], id="digit-in-name"),
        pytest.param({"first_name": "-Анна"}, ["first_name"], id="starts-with-hyphen"),
        pytest.param({"middle_name": "П."}, ["middle_name"], id="dot-in-middle-name"),
        pytest.param({"first_name": "А" * 61}, ["first_name"], id="name-too-long"),
        pytest.param({"birth_date": "2999-01-01"}, ["birth_date"], id="born-in-the-future"),
        pytest.param({"birth_date": "1899-12-31"}, ["birth_date"], id="born-too-long-ago"),
        pytest.param({"birth_date": "2011-02-30"}, ["birth_date"], id="no-such-day"),
        pytest.param({"birth_date": "01.09.2011"}, ["birth_date"], id="dotted-date"),
        pytest.param({"sex": "other"}, ["sex"], id="sex-other"),
        pytest.param({"sex": "Female"}, ["sex"], id="sex-capitalised"),
        pytest.param(
            {"last_name": "", "first_name": "Анна7", "birth_date": "2999-01-01", "sex": "x"},
            ["last_name", "first_name", "birth_date", "sex"],
            id="everything-wrong",
        ),
    ],
)
async def test_profile_validation_names_each_wrong_field(
    server: RunningServer, changes: dict[str, str], fields: list[str]
) -> None:
    token, _ = await sign_in(server)
    reply = await call(server, "POST", "/api/v1/profile", {**VALID_PROFILE, **changes}, token=token)
    problem = assert_problem(reply, 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == fields, problem
    assert all(isinstance(e["message"], str) and e["message"] for e in problem["errors"])
    # Nothing was stored.
    missing = await call(server, "GET", "/api/v1/profile", token=token)
    assert_problem(missing, 403, "profile_required")
    await assert_healthy(server)


async def test_profile_needs_a_session(server: RunningServer) -> None:
    reply = await call(server, "POST", "/api/v1/profile", VALID_PROFILE)
    assert_problem(reply, 401, "unauthenticated")


async def test_creating_a_profile_twice_gets_409(server: RunningServer) -> None:
    token, _ = await sign_in(server)
    created = await call(
        server,
        "POST",
        "/api/v1/profile",
        {**VALID_PROFILE, "last_name": "  Римская-Корсакова ", "middle_name": None},
        token=token,
    )
    assert created.status == 201, created
    stored = created.json()
    assert stored["last_name"] == "Римская-Корсакова" and stored["middle_name"] is None
    second = await call(
        server, "POST", "/api/v1/profile", {**VALID_PROFILE, "first_name": "Ольга"}, token=token
    )
    assert_problem(second, 409, "profile_exists")
    got = await call(server, "GET", "/api/v1/profile", token=token)
    assert got.json() == stored
    await assert_healthy(server)


async def test_birth_date_is_stored_as_yyyy_mm_dd(server: RunningServer) -> None:
    token, _ = await sign_in(server)
    reply = await call(
        server, "POST", "/api/v1/profile", {**VALID_PROFILE, "birth_date": "20110901"}, token=token
    )
    if reply.status == 201:
        assert reply.json()["birth_date"] == "2011-09-01"
    else:
        problem = assert_problem(reply, 422, "validation_failed")
        assert [e["field"] for e in problem["errors"]] == ["birth_date"]


# === per-address limits ==================================================================


async def test_per_address_limits_on_codes_and_verifies(tmp_path: Path) -> None:
    server = start_server(
        tmp_path,
        env={"PARTA_CODES_PER_IP_PER_HOUR": "2", "PARTA_VERIFIES_PER_IP_PER_MINUTE": "3"},
    )
    try:
        phones = [new_phone() for _ in range(3)]
        for phone in phones[:2]:
            assert (await call(server, "POST", "/api/v1/auth/code", {"phone": phone})).status == 200
        third = await call(server, "POST", "/api/v1/auth/code", {"phone": phones[2]})
        assert_problem(third, 429, "rate_limited")
        assert 1 <= int(third.headers["retry-after"]) <= 3600

        right_code = server.code_for(phones[0])
        wrong_code = f"{(int(right_code) + 1) % 1_000_000:06d}"
        for _ in range(3):
            wrong = await call(
                server, "POST", "/api/v1/auth/verify", {"phone": phones[0], "code": wrong_code}
            )
            assert wrong.status in (400, 429) and wrong.json()["code"] != "rate_limited"
        # Even the right code is refused now: the address is over its limit.
        right = await call(
            server,
            "POST",
            "/api/v1/auth/verify",
            {"phone": phones[1], "code": server.code_for(phones[1])},
        )
        assert_problem(right, 429, "rate_limited")
        assert 1 <= int(right.headers["retry-after"]) <= 60
        await assert_healthy(server)
    finally:
        log = stop_server(server)
    assert server.process.returncode == 0, log
    assert "Traceback" not in log, log


async def test_behind_a_trusted_proxy_each_client_has_its_own_sign_in_limit(
    tmp_path: Path,
) -> None:
    # TLS ends at the district's reverse proxy, so every request comes from its address.
    server = start_server(
        tmp_path, "--trusted-proxy", "127.0.0.1", env={"PARTA_CODES_PER_IP_PER_HOUR": "2"}
    )
    try:

        async def code_from(client: str) -> Reply:
            return await call(
                server,
                "POST",
                "/api/v1/auth/code",
                {"phone": new_phone()},
                headers={"x-forwarded-for": client},
            )

        for _ in range(2):
            assert (await code_from("203.0.113.7")).status == 200
        assert_problem(await code_from("203.0.113.7"), 429, "rate_limited")
        # Another school's address is not held back by the first one's attempts,
        assert (await code_from("198.51.100.2")).status == 200
        # and a client cannot name a fresh address for itself left of the proxy's entry.
        assert_problem(await code_from("192.0.2.1, 203.0.113.7"), 429, "rate_limited")
    finally:
        stop_cleanly(server)


async def test_without_a_trusted_proxy_x_forwarded_for_changes_nothing(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"PARTA_CODES_PER_IP_PER_HOUR": "2"})
    try:
        for n in range(3):
            reply = await call(
                server,
                "POST",
                "/api/v1/auth/code",
                {"phone": new_phone()},
                headers={"x-forwarded-for": f"203.0.113.{n}"},
            )
            assert reply.status == (200 if n < 2 else 429)
    finally:
        stop_cleanly(server)


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--trusted-proxy", "proxy.school.ru"], {}, "--trusted-proxy"),
        ([], {"PARTA_TRUSTED_PROXIES": "10.0.0.1,10.0.0.300"}, "PARTA_TRUSTED_PROXIES"),
    ],
)
def test_a_trusted_proxy_that_is_not_an_address_stops_the_start(
    tmp_path: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )
    assert done.returncode == 2
    assert named in done.stderr and "not an IP address or network" in done.stderr
