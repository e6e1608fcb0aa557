"""RFC 6455 conformance of the gateway, over raw TCP sockets against a real server process.

The ground of the Autobahn TestSuite's groups 1-7, adapted to a server that answers binary
msgpack requests instead of echoing: (1) framing and payload lengths, (2) ping/pong,
(3) reserved bits, (4) reserved opcodes, (5) fragmentation, (6) UTF-8 handling of text
messages (which this server refuses with 1003 when they are valid), (7) the closing
handshake; then masking, the message size limit, handshake rejections, authentication,
liveness pings and the graceful shutdown.

Frames are built by hand here (not with ``protocol.websocket``), so that invalid frames can
be sent, and every frame the server sends is checked: unmasked, RSV bits clear, a known
opcode, control frames final and at most 125 bytes. After each connection the server fails,
another connection must still be served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from protocol.errors import CloseCode as AppCloseCode
from protocol.messages import (
    Auth,
    AuthOk,
    ChatCreate,
    ChatCreated,
    ChatHistory,
    ChatList,
    ChatListResult,
    ChatPost,
    Envelope,
    ErrorBody,
    HistoryResult,
    Request,
    decode_body,
    decode_envelope,
    encode_request,
)
from protocol.websocket import accept_key, new_client_key
from tests.integration.conftest import RunningServer, start_server, stop_server

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
KNOWN_OPCODES = {CONT, TEXT, BINARY, CLOSE, PING, PONG}

PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
NO_STATUS = 1005
INVALID_DATA = 1007
MESSAGE_TOO_BIG = 1009
GOING_AWAY = 1001
UNAUTHENTICATED = int(AppCloseCode.UNAUTHENTICATED)

SMALL_LIMIT = 4096  # PARTA_WS_MESSAGE_BYTES of the ``small_server``
AUTH_TIMEOUT_S = 0.5  # PARTA_WS_AUTH_TIMEOUT_S of the ``timer_server``
PING_INTERVAL_S = 0.4  # PARTA_WS_PING_INTERVAL_S of the ``timer_server``

READ_TIMEOUT_S = 5.0


# --- servers and accounts -----------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    token: str
    account_id: int


def sign_in(server: RunningServer) -> Account:
    """Sign in a new account with a profile (blocking; run on a thread of its own so it does
    not touch the event loop that pytest-asyncio set up for the tests)."""
    result: list[Account] = []

    async def run() -> None:
        client = await server.sign_in()
        assert client.token is not None and client.account_id is not None
        result.append(Account(client.token, client.account_id))

    thread = threading.Thread(target=asyncio.run, args=(run(),))
    thread.start()
    thread.join(30)
    assert result, "sign-in failed"
    return result[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_fixed_port_server(data_dir: Path, env: dict[str, str] | None = None) -> RunningServer:
    """A server on a port chosen before it starts, so its public origin is its real origin."""
    return start_server(data_dir, "--port", str(free_port()), env=env)


def stop_cleanly(running: RunningServer) -> None:
    log = stop_server(running)
    assert running.process.returncode == 0, log
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def account(server: RunningServer) -> Account:
    return sign_in(server)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("parta-small"), env={"PARTA_WS_MESSAGE_BYTES": str(SMALL_LIMIT)}
    )
    yield running
    stop_cleanly(running)


@pytest.fixture(scope="module")
def small_account(small_server: RunningServer) -> Account:
    return sign_in(small_server)


@pytest.fixture(scope="module")
def timer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_fixed_port_server(
        tmp_path_factory.mktemp("parta-timers"),
        env={
            "PARTA_WS_AUTH_TIMEOUT_S": str(AUTH_TIMEOUT_S),
            "PARTA_WS_PING_INTERVAL_S": str(PING_INTERVAL_S),
        },
    )
    yield running
    stop_cleanly(running)


@pytest.fixture(scope="module")
def timer_account(timer_server: RunningServer) -> Account:
    return sign_in(timer_server)


# --- frames -------------------------------------------------------------------------------


def mask_bytes(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    length: int | None = None,
) -> bytes:
    """One client frame, valid or not: any opcode, RSV bits, mask bit, declared length."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    mask_bit = 0x80 if masked else 0
    if n < 126:
        header = struct.pack("!BB", b0, mask_bit | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", b0, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", b0, mask_bit | 127, n)
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + mask_bytes(payload, key)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def request_bytes(request_id: int, request: Request) -> bytes:
    return encode_request(request_id, request)


def chat_list(request_id: int) -> bytes:
    return encode_request(request_id, ChatList())


def padded_chat_list(request_id: int, size: int) -> bytes:
    """A valid ``chat.list`` request of exactly ``size`` bytes: unknown body fields are
    ignored (docs/protocol.md), so an unknown ``pad`` field sets the length."""

    def build(n: int) -> bytes:
        return msgspec.msgpack.encode([1, "chat.list", request_id, {"pad": "x" * n}])

    base = len(build(0))
    for n in range(max(0, size - base - 8), size - base + 1):
        data = build(n)
        if len(data) == size:
            return data
    raise ValueError(f"no padded request of {size} bytes")


@dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes
    length_bits: int  # 7, 16 or 64: how the server encoded the payload length


class Closed(Exception):
    """The server's close frame arrived where something else was expected."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"server closed with {code} {reason!r}")
        self.code = code
        self.reason = reason


def parse_close(payload: bytes) -> tuple[int, str]:
    assert len(payload) != 1, "a server close frame with a 1-byte payload"
    if not payload:
        return NO_STATUS, ""
    code = struct.unpack("!H", payload[:2])[0]
    assert 1000 <= code <= 4999 and code not in (1004, 1005, 1006, 1015), code
    return code, payload[2:].decode("utf-8")


class RawWs:
    """A hand-made WebSocket client: sends whatever bytes it is given, checks what it reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, *data: bytes) -> None:
        """Write all of ``data`` in one TCP write."""
        self.writer.write(b"".join(data))
        await self.writer.drain()

    async def send_in_pieces(self, data: bytes, sizes: Iterator[int], pause_s: float) -> None:
        """Write ``data`` in pieces of the given sizes, pausing between them so the server
        reads them separately."""
        pos = 0
        while pos < len(data):
            step = next(sizes)
            self.writer.write(data[pos : pos + step])
            await self.writer.drain()
            pos += step
            await asyncio.sleep(pause_s)

    async def request(self, request_id: int, request: Request) -> Envelope:
        await self.send(frame(BINARY, request_bytes(request_id, request)))
        return (await self.reply())[1]

    async def reply(self, timeout_s: float = READ_TIMEOUT_S) -> tuple[Frame, Envelope]:
        """The next reply (``ok`` or ``error``), skipping pushes (``chat``, ``event``)."""
        while True:
            got = await self.next_data(timeout_s)
            envelope = decode_envelope(got.payload)
            if envelope.type in ("ok", "error"):
                return got, envelope
            assert (envelope.type, envelope.id) in (("chat", 0), ("event", 0)), envelope

    async def read_frame(self, timeout_s: float = READ_TIMEOUT_S) -> Frame:
        return await asyncio.wait_for(self._read_frame(), timeout_s)

    async def _read_frame(self) -> Frame:
        b0, b1 = await self.reader.readexactly(2)
        assert b1 & 0x80 == 0, "the server masked a frame"
        assert b0 & 0x70 == 0, "the server set RSV bits"
        opcode = b0 & 0x0F
        assert opcode in KNOWN_OPCODES, f"the server sent opcode {opcode}"
        n = b1 & 0x7F
        bits = 7
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            bits = 16
            assert n >= 126, "non-minimal 16-bit length"
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            bits = 64
            assert 1 << 16 <= n < 1 << 63, "non-minimal or invalid 64-bit length"
        if opcode >= CLOSE:
            assert b0 & 0x80 and n <= 125, "invalid control frame from the server"
        payload = await self.reader.readexactly(n)
        return Frame(bool(b0 & 0x80), opcode, payload, bits)

    async def next_data(self, timeout_s: float = READ_TIMEOUT_S) -> Frame:
        """The next data frame; server pings are answered, a close frame raises ``Closed``."""
        while True:
            got = await self.read_frame(timeout_s)
            if got.opcode == PING:
                await self.send(frame(PONG, got.payload))
                continue
            if got.opcode == CLOSE:
                raise Closed(*parse_close(got.payload))
            assert got.opcode == BINARY and got.fin, f"unexpected frame {got}"
            return got

    async def recv(self, timeout_s: float = READ_TIMEOUT_S) -> Envelope:
        return decode_envelope((await self.next_data(timeout_s)).payload)

    async def next_control(self, timeout_s: float = READ_TIMEOUT_S) -> Frame:
        got = await self.read_frame(timeout_s)
        if got.opcode == CLOSE:
            raise Closed(*parse_close(got.payload))
        return got

    async def expect_close(
        self, code: int, *, answer: bool = True, timeout_s: float = READ_TIMEOUT_S
    ) -> str:
        """The next frames are server pings at most, then a close frame with ``code``.

        Answers with a close frame (as a client should), unless ``answer`` is false, and
        returns the reason."""
        while True:
            got = await self.read_frame(timeout_s)
            if got.opcode == PING:
                continue
            assert got.opcode == CLOSE, f"expected a close frame with {code}, got {got}"
            received, reason = parse_close(got.payload)
            assert received == code, f"closed with {received} {reason!r}, expected {code}"
            if answer:
                with contextlib.suppress(ConnectionError):
                    await self.send(frame(CLOSE, got.payload[:2]))
            return reason

    async def expect_eof(self, timeout_s: float = 2.0) -> None:
        """The server closes the TCP connection (and sends nothing more)."""
        try:
            data = await asyncio.wait_for(self.reader.read(1), timeout_s)
        except ConnectionResetError:
            return
        assert data == b"", f"more data after the end: {data!r}"

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def read_http_response(
    reader: asyncio.StreamReader,
) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await asyncio.wait_for(
            reader.readexactly(int(headers["content-length"])), READ_TIMEOUT_S
        )
    return status, headers, body


def handshake_bytes(
    port: int,
    *,
    method: str = "GET",
    path: str = "/ws",
    key: str | None = None,
    version: str = "13",
    subprotocol: str | None = "parta.v1",
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key or new_client_key()}",
        f"Sec-WebSocket-Version: {version}",
    ]
    if subprotocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


Connect = Callable[..., Awaitable[RawWs]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``await connect(server, token=..., headers=..., then=...)``: an open WebSocket whose
    101 response has been checked. ``then`` is written in the same TCP write as the
    handshake. Every socket is closed at the end of the test."""
    opened: list[RawWs] = []

    async def open_ws(
        server: RunningServer,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        then: bytes = b"",
    ) -> RawWs:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        ws = RawWs(reader, writer)
        opened.append(ws)
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        key = new_client_key()
        await ws.send(handshake_bytes(server.port, key=key, headers=all_headers), then)
        status, response_headers, _ = await read_http_response(reader)
        assert status == 101, status
        assert response_headers["upgrade"].lower() == "websocket"
        assert response_headers["connection"].lower() == "upgrade"
        assert response_headers["sec-websocket-accept"] == accept_key(key)
        assert response_headers["sec-websocket-protocol"] == "parta.v1"
        assert "sec-websocket-extensions" not in response_headers
        return ws

    yield open_ws
    for ws in opened:
        await ws.close()


def assert_ok(envelope: Envelope, request_id: int) -> None:
    if envelope.type == "error":
        error = decode_body(envelope.body, ErrorBody)
        pytest.fail(f"request {request_id} failed: {error.code}: {error.message}")
    assert (envelope.type, envelope.id) == ("ok", request_id)


def assert_error(envelope: Envelope, request_id: int, code: str) -> None:
    assert (envelope.type, envelope.id) == ("error", request_id)
    assert decode_body(envelope.body, ErrorBody).code == code


async def assert_serving(connect: Connect, server: RunningServer, account: Account) -> None:
    """Another connection to the same server still works, and closes cleanly."""
    ws = await connect(server, token=account.token)
    reply = await ws.request(7, ChatList())
    assert_ok(reply, 7)
    decode_body(reply.body, ChatListResult)
    await ws.send(frame(CLOSE, close_payload(1000)))
    await ws.expect_close(1000, answer=False)
    await ws.expect_eof()


async def assert_fails(
    connect: Connect,
    server: RunningServer,
    account: Account,
    code: int,
    *frames: bytes,
    pieces: bool = False,
) -> None:
    """Send ``frames`` (in one write, or one write each with ``pieces``) on an authenticated
    connection; the server must close with ``code`` and nothing else; then the server still
    serves another connection."""
    ws = await connect(server, token=account.token)
    if pieces:
        # The server may fail the connection before everything is written: stop writing
        # then (writing on could make its TCP answer with a reset).
        closing = asyncio.ensure_future(ws.expect_close(code))
        for data in frames:
            if closing.done():
                break
            with contextlib.suppress(ConnectionError):
                await ws.send(data)
            await asyncio.sleep(0.005)
        await closing
    else:
        await ws.send(*frames)
        await ws.expect_close(code)
    await ws.close()
    await assert_serving(connect, server, account)


# --- 1. Framing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "length_bits"),
    [(125, 7), (126, 16), (127, 16), (65535, 16), (65536, 64), (300_000, 64)],
)
async def test_binary_requests_of_every_length_encoding(
    server: RunningServer, account: Account, connect: Connect, size: int, length_bits: int
) -> None:
    data = padded_chat_list(3, size)
    sent = frame(BINARY, data)
    assert sent[1] & 0x7F == {7: size, 16: 126, 64: 127}[length_bits]
    ws = await connect(server, token=account.token)
    await ws.send(sent)
    reply = await ws.recv()
    assert_ok(reply, 3)
    decode_body(reply.body, ChatListResult)


async def test_empty_binary_message_is_a_bad_message_and_the_connection_stays_open(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(frame(BINARY, b""))
    assert_error(await ws.recv(), 0, "bad_message")
    assert_ok(await ws.request(2, ChatList()), 2)


async def test_long_chat_title_request_uses_a_16_bit_length(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    title = "Я" * 200  # the title limit: 400 bytes of UTF-8
    data = request_bytes(5, ChatCreate(title=title))
    assert 126 <= len(data) < 1 << 16
    ws = await connect(server, token=account.token)
    reply = await ws.request(5, ChatCreate(title=title))
    assert_ok(reply, 5)
    assert decode_body(reply.body, ChatCreated).chat.title == title


async def test_server_frames_use_16_and_64_bit_lengths_when_needed(
    server: RunningServer, connect: Connect
) -> None:
    owner = sign_in(server)
    ws = await connect(server, token=owner.token)
    created = await ws.request(1, ChatCreate(title="Длинные сообщения " + "ж" * 150))
    assert_ok(created, 1)
    chat_id = decode_body(created.body, ChatCreated).chat.id
    for i in range(7):
        text = f"{i}" + "ё" * 5000  # 10 001 bytes of UTF-8
        assert_ok(
            await ws.request(10 + i, ChatPost(chat_id=chat_id, client_id=f"c{i}", text=text)),
            10 + i,
        )
    await ws.send(frame(BINARY, request_bytes(30, ChatList())))
    listed, envelope = await ws.reply()
    assert_ok(envelope, 30)
    assert listed.length_bits == 16
    await ws.send(frame(BINARY, request_bytes(31, ChatHistory(chat_id=chat_id))))
    history, envelope = await ws.reply()
    assert_ok(envelope, 31)
    assert history.length_bits == 64
    events = decode_body(envelope.body, HistoryResult).events
    assert [(e.text or "")[:1] for e in events if e.kind == "message"] == list("0123456")


async def test_several_requests_in_one_write_are_answered_in_order(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(*(frame(BINARY, chat_list(i)) for i in range(1, 21)))
    for i in range(1, 21):
        assert_ok(await ws.recv(), i)


async def test_handshake_and_first_requests_in_one_write(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(
        server, token=account.token, then=frame(BINARY, chat_list(1)) + frame(PING, b"early")
    )
    assert (await ws.next_control()).payload == b"early"  # the pong is written at once
    assert_ok(await ws.recv(), 1)


async def test_request_written_byte_by_byte(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    data = frame(BINARY, padded_chat_list(4, 130))  # 16-bit length and mask split too
    await ws.send_in_pieces(data, iter(lambda: 1, 0), 0.001)
    assert_ok(await ws.recv(), 4)


async def test_large_request_written_in_odd_sized_pieces(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    data = frame(BINARY, padded_chat_list(6, 200_003))
    rng = random.Random(6455)
    await ws.send_in_pieces(data, iter(lambda: rng.randint(1, 9000), 0), 0.0005)
    assert_ok(await ws.recv(), 6)


# --- 2. Pings and pongs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [b"", b"Hello, world!", bytes(range(256))[:125], "Привет".encode()],
    ids=["empty", "text", "binary-125", "utf8"],
)
async def test_ping_is_answered_with_the_same_payload(
    server: RunningServer, account: Account, connect: Connect, payload: bytes
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(frame(PING, payload))
    pong = await ws.next_control()
    assert (pong.opcode, pong.payload) == (PONG, payload)
    assert_ok(await ws.request(1, ChatList()), 1)


async def test_125_byte_ping_written_byte_by_byte(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    payload = os.urandom(125)
    await ws.send_in_pieces(frame(PING, payload), iter(lambda: 1, 0), 0.0005)
    pong = await ws.next_control()
    assert (pong.opcode, pong.payload) == (PONG, payload)


async def test_ten_pings_get_ten_pongs_in_order(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(*(frame(PING, f"ping {i}".encode()) for i in range(10)))
    for i in range(10):
        pong = await ws.next_control()
        assert (pong.opcode, pong.payload) == (PONG, f"ping {i}".encode())


async def test_ping_of_126_bytes_fails_the_connection(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    await assert_fails(connect, server, account, PROTOCOL_ERROR, frame(PING, b"x" * 126))


@pytest.mark.parametrize("payload", [b"", b"unsolicited"], ids=["empty", "payload"])
async def test_unsolicited_pong_is_ignored(
    server: RunningServer, account: Account, connect: Connect, payload: bytes
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(frame(PONG, payload), frame(BINARY, chat_list(1)))
    assert_ok(await ws.recv(), 1)  # the first frame back: nothing answers the pong
    await ws.send(frame(PING, b"after"))
    pong = await ws.next_control()
    assert (pong.opcode, pong.payload) == (PONG, b"after")


# --- 3. Reserved bits ---------------------------------------------------------------------


@pytest.mark.parametrize("rsv", range(1, 8))
@pytest.mark.parametrize("opcode", [BINARY, PING, CLOSE], ids=["binary", "ping", "close"])
async def test_reserved_bits_fail_the_connection(
    server: RunningServer, account: Account, connect: Connect, opcode: int, rsv: int
) -> None:
    payload = {BINARY: chat_list(1), PING: b"rsv", CLOSE: close_payload(1000)}[opcode]
    await assert_fails(connect, server, account, PROTOCOL_ERROR, frame(opcode, payload, rsv=rsv))


async def test_reserved_bits_after_an_answered_request_then_ping(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    assert_ok(await ws.request(1, ChatList()), 1)
    # Nothing after the broken frame is processed: no reply, no pong before the close.
    await ws.send(
        frame(BINARY, chat_list(2), rsv=2), frame(PING, b"p"), frame(BINARY, chat_list(3))
    )
    await ws.expect_close(PROTOCOL_ERROR)
    await ws.close()
    await assert_serving(connect, server, account)


# --- 4. Reserved opcodes ------------------------------------------------------------------


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
@pytest.mark.parametrize("payload", [b"", b"\x93\x01\x02\x03"], ids=["empty", "payload"])
async def test_reserved_opcodes_fail_the_connection(
    server: RunningServer, account: Account, connect: Connect, opcode: int, payload: bytes
) -> None:
    await assert_fails(
        connect, server, account, PROTOCOL_ERROR, frame(opcode, payload), frame(PING, b"p")
    )


async def test_reserved_opcode_after_an_answered_request(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    assert_ok(await ws.request(1, ChatList()), 1)
    await ws.send(frame(5, b""), frame(PING, b"p"))
    await ws.expect_close(PROTOCOL_ERROR)


# --- 5. Fragmentation ---------------------------------------------------------------------


def fragments(opcode: int, payload: bytes, sizes: list[int]) -> list[bytes]:
    """``payload`` as a fragmented message: pieces of the given sizes (0 allowed), the rest
    in the final frame."""
    frames = []
    pos = 0
    for i, size in enumerate(sizes):
        frames.append(frame(opcode if i == 0 else CONT, payload[pos : pos + size], fin=False))
        pos += size
    frames.append(frame(CONT if sizes else opcode, payload[pos:]))
    return frames


@pytest.mark.parametrize(
    "sizes",
    [[10], [1, 2, 3], [0, 5, 0], [1] * 40, [3000] * 20],
    ids=["2-fragments", "4-fragments", "empty-fragments", "byte-fragments", "large-fragments"],
)
async def test_fragmented_request_is_reassembled(
    server: RunningServer, account: Account, connect: Connect, sizes: list[int]
) -> None:
    data = padded_chat_list(9, 70_000)
    ws = await connect(server, token=account.token)
    await ws.send(*fragments(BINARY, data, sizes))
    assert_ok(await ws.recv(), 9)


async def test_fragmented_request_with_a_final_empty_fragment(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    data = chat_list(9)
    ws = await connect(server, token=account.token)
    await ws.send(frame(BINARY, data, fin=False), frame(CONT, b"", fin=True))
    assert_ok(await ws.recv(), 9)


async def test_pings_between_fragments_are_answered_at_once(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    data = padded_chat_list(8, 300)
    ws = await connect(server, token=account.token)
    await ws.send(frame(BINARY, data[:100], fin=False), frame(PING, b"one"))
    assert (await ws.next_control()).payload == b"one"  # before the message is complete
    await ws.send(frame(CONT, data[100:200], fin=False), frame(PING, b"two"))
    assert (await ws.next_control()).payload == b"two"
    await ws.send(frame(PONG, b"ignored"), frame(CONT, data[200:]))
    assert_ok(await ws.recv(), 8)


@pytest.mark.parametrize("fin", [True, False], ids=["final", "not-final"])
async def test_continuation_without_a_message_fails(
    server: RunningServer, account: Account, connect: Connect, fin: bool
) -> None:
    await assert_fails(connect, server, account, PROTOCOL_ERROR, frame(CONT, chat_list(1), fin=fin))


async def test_continuation_after_a_complete_message_fails(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(*fragments(BINARY, chat_list(1), [4]))
    assert_ok(await ws.recv(), 1)
    await ws.send(frame(CONT, b"stray"))
    await ws.expect_close(PROTOCOL_ERROR)


@pytest.mark.parametrize("opcode", [BINARY, TEXT], ids=["binary", "text"])
async def test_new_data_frame_inside_a_fragmented_message_fails(
    server: RunningServer, account: Account, connect: Connect, opcode: int
) -> None:
    data = chat_list(1)
    await assert_fails(
        connect,
        server,
        account,
        PROTOCOL_ERROR,
        frame(BINARY, data[:3], fin=False),
        frame(opcode, data),
        frame(CONT, data[3:]),
    )


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE], ids=["ping", "pong", "close"])
async def test_fragmented_control_frame_fails(
    server: RunningServer, account: Account, connect: Connect, opcode: int
) -> None:
    payload = close_payload(1000) if opcode == CLOSE else b"frag"
    await assert_fails(
        connect,
        server,
        account,
        PROTOCOL_ERROR,
        frame(opcode, payload, fin=False),
        frame(CONT, b"ment"),
    )


# --- 6. UTF-8 and text messages -----------------------------------------------------------

VALID_TEXT = [
    b"",
    b"Hello",
    "κόσμε".encode(),
    "Привет, 7А!".encode(),
    "\U0001d11e \U0010ffff \ufffd".encode(),
]

# Each is invalid as soon as it is complete, so the failure must come before the message ends.
INVALID_UTF8 = [
    "κόσμε".encode() + b"\xed\xa0\x80edited",  # UTF-16 surrogate, Autobahn 6.4.1
    b"\x80",  # lone continuation bytes
    b"\xbf",
    b"\xc0\xaf",  # overlong "/"
    b"\xc1\xbf",
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xc0\x80",  # overlong NUL
    b"\xed\xa0\x80",  # surrogates
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"\xf8\x88\x80\x80\x80",  # 5-byte form
    b"\xfe",
    b"\xff",
    b"\xce\xba\xce\x20",  # a start byte followed by ASCII
    b"\xed\xa0",  # the start of a surrogate: already invalid after two bytes
]

# Valid text cut in the middle of its last code point: invalid only once the message ends.
TRUNCATED_UTF8 = [
    b"\xce",
    "κόσμ".encode() + b"\xce",
    b"\xe2\x82",
    b"Hello \xf0\x9d\x84",
]


@pytest.mark.parametrize("text", VALID_TEXT, ids=range(len(VALID_TEXT)))
async def test_valid_text_message_is_refused_with_1003(
    server: RunningServer, account: Account, connect: Connect, text: bytes
) -> None:
    await assert_fails(connect, server, account, UNSUPPORTED_DATA, frame(TEXT, text))


async def test_valid_text_fragmented_inside_code_points_is_refused_with_1003(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    text = "κόσμε \U0001d11e".encode()
    await assert_fails(
        connect, server, account, UNSUPPORTED_DATA, *fragments(TEXT, text, [1] * (len(text) - 1))
    )


async def test_text_message_after_an_answered_request_is_refused_with_1003(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    assert_ok(await ws.request(1, ChatList()), 1)
    await ws.send(frame(TEXT, b'[1, "chat.list", 2, {}]'))
    reason = await ws.expect_close(UNSUPPORTED_DATA)
    assert "binary" in reason


def invalid_text_frames(mode: str, data: bytes) -> list[bytes]:
    """Text carrying ``data``, as the writes to make (one write each)."""
    if mode == "whole":
        return [frame(TEXT, data)]
    if mode == "fragments":  # every byte a fragment of its own
        return fragments(TEXT, data, [1] * (len(data) - 1))
    if mode == "unfinished-message":  # never finished: the server must not wait for the end
        return [frame(TEXT, b"ok " + data, fin=False)]
    assert mode == "unfinished-frame"
    # The header promises 1000 bytes more than are ever sent: the payload is checked as it
    # streams in. Header, mask and "ok " in one write, the invalid bytes in another.
    head = frame(TEXT, b"ok " + data, length=len(data) + 1003)
    assert len(head) == 4 + 4 + 3 + len(data)
    return [head[:11], head[11:]]


@pytest.mark.parametrize("data", INVALID_UTF8, ids=range(len(INVALID_UTF8)))
@pytest.mark.parametrize("mode", ["whole", "fragments", "unfinished-message", "unfinished-frame"])
async def test_invalid_utf8_fails_with_1007(
    server: RunningServer, account: Account, connect: Connect, mode: str, data: bytes
) -> None:
    frames = invalid_text_frames(mode, data)
    await assert_fails(connect, server, account, INVALID_DATA, *frames, pieces=True)


@pytest.mark.parametrize("data", TRUNCATED_UTF8, ids=range(len(TRUNCATED_UTF8)))
@pytest.mark.parametrize("mode", ["whole", "fragments", "empty-final-fragment"])
async def test_text_ending_inside_a_code_point_fails_with_1007(
    server: RunningServer, account: Account, connect: Connect, mode: str, data: bytes
) -> None:
    if mode == "empty-final-fragment":
        frames = [frame(TEXT, data, fin=False), frame(CONT, b"")]
    else:
        frames = invalid_text_frames(mode, data)
    await assert_fails(connect, server, account, INVALID_DATA, *frames)


# --- 7. Closing handshake -----------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        1000,
        1001,
        1002,
        1003,
        1007,
        1008,
        1009,
        1010,
        1011,
        1012,
        1013,
        1014,
        3000,
        3999,
        4000,
        4999,
    ],
)
async def test_close_with_a_valid_code_is_echoed_then_tcp_closes(
    server: RunningServer, account: Account, connect: Connect, code: int
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(frame(CLOSE, close_payload(code, b"bye")))
    reason = await ws.expect_close(code, answer=False)
    assert reason in ("", "bye")  # the code must be echoed; the reason may be
    await ws.expect_eof()
    await assert_serving(connect, server, account)


@pytest.mark.parametrize("reason", [b"", "До свидания".encode(), b"r" * 123])
async def test_close_reasons_up_to_123_bytes_are_accepted(
    server: RunningServer, account: Account, connect: Connect, reason: bytes
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(frame(CLOSE, close_payload(1000, reason)))
    await ws.expect_close(1000, answer=False)
    await ws.expect_eof()


async def test_close_reason_of_124_bytes_is_a_too_long_control_frame(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    await assert_fails(
        connect, server, account, PROTOCOL_ERROR, frame(CLOSE, close_payload(1000, b"r" * 124))
    )


async def test_close_without_payload_is_echoed_without_payload(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(frame(CLOSE, b""))
    echo = await ws.read_frame()
    assert (echo.opcode, echo.payload) == (CLOSE, b"")
    assert parse_close(echo.payload) == (NO_STATUS, "")
    await ws.expect_eof()
    await assert_serving(connect, server, account)


async def test_close_with_a_one_byte_payload_fails(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    await assert_fails(connect, server, account, PROTOCOL_ERROR, frame(CLOSE, b"\x03"))


@pytest.mark.parametrize(
    "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
)
async def test_close_with_an_invalid_code_fails(
    server: RunningServer, account: Account, connect: Connect, code: int
) -> None:
    await assert_fails(connect, server, account, PROTOCOL_ERROR, frame(CLOSE, close_payload(code)))


@pytest.mark.parametrize(
    "reason", [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", b"\xff", b"\xce"]
)
async def test_close_reason_with_invalid_utf8_fails_with_1007(
    server: RunningServer, account: Account, connect: Connect, reason: bytes
) -> None:
    await assert_fails(
        connect, server, account, INVALID_DATA, frame(CLOSE, close_payload(1000, reason))
    )


async def test_frames_after_close_are_ignored(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(
        frame(CLOSE, close_payload(1000)),
        frame(BINARY, chat_list(1)),
        frame(PING, b"late"),
        frame(CLOSE, close_payload(3001)),
        frame(TEXT, b"\xff"),
    )
    await ws.expect_close(1000, answer=False)  # one echo: no reply, no pong, no 1007
    await ws.expect_eof()
    await assert_serving(connect, server, account)


async def test_frames_sent_after_the_close_echo_are_ignored(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(frame(CLOSE, close_payload(1000)))
    await ws.expect_close(1000, answer=False)
    with contextlib.suppress(ConnectionError):
        await ws.send(frame(BINARY, chat_list(1)), frame(PING, b"late"))
    await ws.expect_eof()  # no reply, no pong


async def test_server_close_then_our_echo_ends_tcp_promptly(
    server: RunningServer, connect: Connect
) -> None:
    ws = await connect(server)
    await ws.send(frame(BINARY, chat_list(1)))  # not auth: the server closes with 4401
    await ws.expect_close(UNAUTHENTICATED)  # and we answer with a close frame
    await ws.expect_eof(2.0)


async def test_failed_connection_is_closed_promptly_after_our_close_reply(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(frame(TEXT, b"text"))
    await ws.expect_close(UNSUPPORTED_DATA)  # answered with a close frame
    await ws.expect_eof(1.5)


# --- Masking, lengths and the message size limit ------------------------------------------


@pytest.mark.parametrize("opcode", [BINARY, PING, CLOSE], ids=["binary", "ping", "close"])
async def test_unmasked_client_frame_fails(
    server: RunningServer, account: Account, connect: Connect, opcode: int
) -> None:
    payload = {BINARY: chat_list(1), PING: b"p", CLOSE: close_payload(1000)}[opcode]
    await assert_fails(
        connect, server, account, PROTOCOL_ERROR, frame(opcode, payload, masked=False)
    )


async def test_unmasked_continuation_fails(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    data = chat_list(1)
    await assert_fails(
        connect,
        server,
        account,
        PROTOCOL_ERROR,
        frame(BINARY, data[:2], fin=False),
        frame(CONT, data[2:], masked=False),
    )


async def test_64_bit_length_with_the_high_bit_set_fails(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    header = struct.pack("!BBQ", 0x80 | BINARY, 0x80 | 127, 1 << 63) + os.urandom(4)
    await assert_fails(connect, server, account, PROTOCOL_ERROR, header)


async def test_message_at_the_size_limit_is_served(
    small_server: RunningServer, small_account: Account, connect: Connect
) -> None:
    ws = await connect(small_server, token=small_account.token)
    await ws.send(frame(BINARY, padded_chat_list(1, SMALL_LIMIT)))
    assert_ok(await ws.recv(), 1)
    await ws.send(*fragments(BINARY, padded_chat_list(2, SMALL_LIMIT), [1000, 1000, 1000]))
    assert_ok(await ws.recv(), 2)


@pytest.mark.parametrize(
    "frames",
    [
        [frame(BINARY, padded_chat_list(1, SMALL_LIMIT + 1))],
        [frame(TEXT, b"t" * (SMALL_LIMIT + 1))],
        fragments(BINARY, padded_chat_list(1, 6000), [2000, 2000]),
        # Only the header of a huge frame: refused from the header, not after the payload.
        [struct.pack("!BBQ", 0x80 | BINARY, 0x80 | 127, 1 << 40) + os.urandom(4)],
        [frame(BINARY, b"", fin=False), frame(CONT, b"", length=SMALL_LIMIT + 1)[:8]],
    ],
    ids=["one-frame", "text", "fragments", "huge-header", "continuation-header"],
)
async def test_message_over_the_size_limit_fails_with_1009(
    small_server: RunningServer, small_account: Account, connect: Connect, frames: list[bytes]
) -> None:
    await assert_fails(connect, small_server, small_account, MESSAGE_TOO_BIG, *frames)


async def test_control_frames_do_not_count_towards_the_size_limit(
    small_server: RunningServer, small_account: Account, connect: Connect
) -> None:
    data = padded_chat_list(3, SMALL_LIMIT)
    ws = await connect(small_server, token=small_account.token)
    await ws.send(
        frame(BINARY, data[:2000], fin=False),
        frame(PING, b"p" * 125),
        frame(CONT, data[2000:]),
    )
    assert (await ws.next_control()).payload == b"p" * 125
    assert_ok(await ws.recv(), 3)


# --- Opening handshake --------------------------------------------------------------------


async def refused_handshake(server: RunningServer, request: bytes) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request)
        status, headers, body = await read_http_response(reader)
        assert headers["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["status"] == status
        assert headers.get("connection", "").lower() == "close"
        assert await asyncio.wait_for(reader.read(), READ_TIMEOUT_S) == b""
        return status, {**problem, "_headers": headers}
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"version": "8"}, 426, "bad_message"),
        ({"version": "14"}, 426, "bad_message"),
        ({"subprotocol": None}, 400, "bad_message"),
        ({"subprotocol": "parta.v2"}, 400, "bad_message"),
        ({"subprotocol": "PARTA.V1"}, 400, "bad_message"),
        ({"key": "c2hvcnQ="}, 400, "bad_message"),
        ({"path": "/wss"}, 404, "not_found"),
        ({"path": "/api/v1/ws"}, 404, "not_found"),
        ({"method": "POST"}, 405, "bad_message"),
    ],
    ids=[
        "version-8",
        "version-14",
        "no-subprotocol",
        "other-subprotocol",
        "subprotocol-case",
        "short-key",
        "other-path",
        "api-path",
        "post",
    ],
)
async def test_handshake_rejections_are_problem_json(
    server: RunningServer,
    account: Account,
    connect: Connect,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    got, problem = await refused_handshake(server, handshake_bytes(server.port, **kwargs))
    assert (got, problem["code"]) == (status, code)
    if status == 426:
        assert problem["_headers"]["sec-websocket-version"] == "13"
    if status == 405:
        assert problem["_headers"]["allow"] == "GET"
    await assert_serving(connect, server, account)


async def test_subprotocol_among_several_offered_is_selected(
    server: RunningServer, account: Account
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            handshake_bytes(
                server.port,
                subprotocol="chat, parta.v1, x",
                headers={"Authorization": f"Bearer {account.token}"},
            )
        )
        status, headers, _ = await read_http_response(reader)
        assert status == 101
        assert headers["sec-websocket-protocol"] == "parta.v1"
    finally:
        writer.close()


# --- Authentication -----------------------------------------------------------------------


async def test_bearer_header_authenticates_without_a_reply(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    assert_ok(await ws.request(1, ChatList()), 1)  # the first frame is the reply


async def test_auth_message_first_gets_auth_ok(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server)
    reply = await ws.request(1, Auth(token=account.token))
    assert_ok(reply, 1)
    assert decode_body(reply.body, AuthOk) == AuthOk(
        account_id=account.account_id, has_profile=True
    )
    assert_ok(await ws.request(2, ChatList()), 2)


async def test_second_auth_is_an_error_and_the_connection_stays_open(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(server, token=account.token)
    assert_error(await ws.request(1, Auth(token=account.token)), 1, "already_authenticated")
    assert_ok(await ws.request(2, ChatList()), 2)


@pytest.mark.parametrize(
    ("first", "headers"),
    [
        (chat_list(1), {}),
        (b"\x00garbage", {}),
        (b"", {}),
        (request_bytes(1, Auth(token="not-a-token")), {}),
        (chat_list(1), {"Authorization": "Bearer not-a-token"}),
        (chat_list(1), {"Authorization": "Basic dXNlcjpwYXNz"}),
    ],
    ids=["request", "garbage", "empty", "bad-token", "bad-bearer", "basic-auth"],
)
async def test_unauthenticated_connection_is_closed_with_4401(
    server: RunningServer,
    account: Account,
    connect: Connect,
    first: bytes,
    headers: dict[str, str],
) -> None:
    ws = await connect(server, headers=headers)
    await ws.send(frame(BINARY, first), frame(BINARY, chat_list(2)))
    await ws.expect_close(UNAUTHENTICATED)  # no reply to either request before it
    await ws.expect_eof()
    await assert_serving(connect, server, account)


async def test_no_auth_within_the_time_limit_is_closed_with_4401(
    timer_server: RunningServer, timer_account: Account, connect: Connect
) -> None:
    ws = await connect(timer_server)
    started = asyncio.get_running_loop().time()
    await ws.expect_close(UNAUTHENTICATED)
    elapsed = asyncio.get_running_loop().time() - started
    assert AUTH_TIMEOUT_S * 0.8 < elapsed < AUTH_TIMEOUT_S + 1.5
    await ws.expect_eof()
    await assert_serving(connect, timer_server, timer_account)


async def test_auth_message_within_the_time_limit_keeps_the_connection(
    timer_server: RunningServer, timer_account: Account, connect: Connect
) -> None:
    ws = await connect(timer_server)
    await asyncio.sleep(AUTH_TIMEOUT_S / 3)
    assert_ok(await ws.request(1, Auth(token=timer_account.token)), 1)
    await asyncio.sleep(AUTH_TIMEOUT_S * 1.5)
    assert_ok(await ws.request(2, ChatList()), 2)


async def test_session_cookie_with_the_server_origin_authenticates(
    timer_server: RunningServer, timer_account: Account, connect: Connect
) -> None:
    ws = await connect(
        timer_server,
        headers={"Origin": timer_server.url, "Cookie": f"parta_session={timer_account.token}"},
    )
    assert_ok(await ws.request(1, ChatList()), 1)


@pytest.mark.parametrize(
    "origin", ["http://evil.example", None, "null", "http://127.0.0.1"], ids=str
)
async def test_session_cookie_from_another_origin_does_not_authenticate(
    timer_server: RunningServer, timer_account: Account, connect: Connect, origin: str | None
) -> None:
    headers = {"Cookie": f"parta_session={timer_account.token}"}
    if origin is not None:
        headers["Origin"] = origin
    ws = await connect(timer_server, headers=headers)
    await ws.expect_close(UNAUTHENTICATED)  # after the auth timeout, nothing sent
    await ws.expect_eof()
    await assert_serving(connect, timer_server, timer_account)


async def test_session_cookie_works_on_a_server_started_on_port_0(
    server: RunningServer, account: Account, connect: Connect
) -> None:
    ws = await connect(
        server, headers={"Origin": server.url, "Cookie": f"parta_session={account.token}"}
    )
    assert_ok(await ws.request(1, ChatList()), 1)


# --- Wrong but well-formed requests -------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ([1, "chat.nope", 4, {}], "unknown_type"),
        ([2, "chat.list", 4, {}], "unsupported_version"),
        ([1, "chat.create", 4, {"title": 5}], "bad_message"),
        ([1, "chat.create", 4, {"title": "x" * 201}], "bad_message"),
        ([1, "chat.members", 4, {}], "bad_message"),
    ],
    ids=["unknown-type", "version-2", "wrong-type", "too-long", "missing-field"],
)
async def test_wrong_requests_get_an_error_and_the_connection_stays_open(
    server: RunningServer, account: Account, connect: Connect, message: list[Any], code: str
) -> None:
    ws = await connect(server, token=account.token)
    await ws.send(frame(BINARY, msgspec.msgpack.encode(message)))
    assert_error(await ws.recv(), 4, code)
    assert_ok(await ws.request(5, ChatList()), 5)


# --- Liveness and shutdown ----------------------------------------------------------------


async def test_server_pings_keep_answering_clients_and_cut_silent_ones(
    timer_server: RunningServer, timer_account: Account, connect: Connect
) -> None:
    answering = await connect(timer_server, token=timer_account.token)
    silent = await connect(timer_server, token=timer_account.token)

    async def answer_pings() -> int:
        pings = 0
        deadline = asyncio.get_running_loop().time() + PING_INTERVAL_S * 4
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            with contextlib.suppress(TimeoutError):
                got = await answering.read_frame(left)
                assert (got.opcode, got.payload) == (PING, b"")
                pings += 1
                await answering.send(frame(PONG, b""))
        return pings

    async def stay_silent() -> list[Frame]:
        seen = []
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionResetError):
            while True:
                seen.append(await silent.read_frame(PING_INTERVAL_S * 6))
        return seen

    pings, silent_frames = await asyncio.gather(answer_pings(), stay_silent())
    assert pings >= 2
    # The silent connection was pinged, then cut.
    assert silent_frames and silent_frames[0].opcode == PING
    assert all(f.opcode in (PING, CLOSE) for f in silent_frames)
    assert_ok(await answering.request(1, ChatList()), 1)


async def test_shutdown_closes_connections_with_1001(tmp_path: Path, connect: Connect) -> None:
    running = start_server(tmp_path)
    try:
        user = sign_in(running)
        ws = await connect(running, token=user.token)
        assert_ok(await ws.request(1, ChatList()), 1)
        stopping = asyncio.create_task(asyncio.to_thread(stop_server, running))
        await ws.expect_close(GOING_AWAY)
        await ws.expect_eof()
        log = await stopping
    finally:
        if running.process.poll() is None:
            stop_server(running)
    assert running.process.returncode == 0, log
    assert "Traceback" not in log, log
