"""WebSocket bounds: slow readers, liveness pings, request floods and bad frames.

Raw sockets speak the protocol through the sans-IO codec so a test can do what no SDK
client does: never read, never answer a ping, or write bytes that are not a Parta message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
import uvloop

from protocol.client import Client, ClientError, http_request
from protocol.messages import (
    PROTOCOL_VERSION,
    REPLY_ERROR,
    REPLY_OK,
    ChatList,
    ChatListResult,
    ErrorBody,
    decode_body,
    decode_envelope,
    encode_request,
)
from protocol.websocket import (
    CloseReceived,
    Message,
    Opcode,
    Ping,
    Role,
    State,
    WebSocketConnection,
    check_server_handshake_response,
    client_handshake_request,
    encode_frame,
    new_client_key,
)
from tests.integration.conftest import RunningServer, start_server, stop_server

BIG_TEXT = "😀" * 10_000  # the longest text a post may carry: 40 000 bytes of UTF-8


class RawWs:
    """A WebSocket client on a bare non-blocking socket that reads only when told to."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.codec = WebSocketConnection(Role.CLIENT, max_message_size=64 << 20)
        self.received = 0  # bytes read after the handshake
        self.eof = False
        self.backlog: list[Any] = []  # events read but not yet taken by next_message

    @classmethod
    async def open(
        cls, server: RunningServer, token: str | None = None, *, rcvbuf: int | None = None
    ) -> RawWs:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect, so the advertised window is small from the start.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        key = new_client_key()
        extra = [] if token is None else [("Authorization", f"Bearer {token}")]
        host = f"127.0.0.1:{server.port}"
        await loop.sock_sendall(sock, client_handshake_request(host, "/ws", key, extra))
        head = b""
        while not head.endswith(b"\r\n\r\n"):  # byte by byte: leave the frames unread
            byte = await asyncio.wait_for(loop.sock_recv(sock, 1), 5)
            if not byte:
                raise ConnectionError(f"closed during the handshake: {head!r}")
            head += byte
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        check_server_handshake_response(int(lines[0].split()[1]), headers, key)
        return cls(sock)

    async def send(self, payload: bytes) -> None:
        self.codec.send_binary(payload)
        await asyncio.get_running_loop().sock_sendall(self.sock, self.codec.data_to_send())

    async def send_text(self, text: str) -> None:
        self.codec.send_text(text)
        await asyncio.get_running_loop().sock_sendall(self.sock, self.codec.data_to_send())

    async def request(self, request_id: int, request: Any) -> None:
        await self.send(encode_request(request_id, request))

    async def events(self, wait_s: float, *, answer: bool = True) -> list[Any]:
        """Read once (up to ``wait_s``) and return the events; [] on a quiet socket.

        With ``answer`` the codec's replies (pongs, the closing echo) are written back.
        """
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 20), wait_s)
        except TimeoutError:
            return []
        except ConnectionError:
            data = b""
        self.received += len(data)
        if not data:
            self.eof = True
        self.codec.receive_data(data)
        out = self.codec.data_to_send()
        if out and answer and not self.eof:
            with contextlib.suppress(ConnectionError):
                await loop.sock_sendall(self.sock, out)
        return self.codec.events_received()

    async def next_message(self, wait_s: float = 5.0) -> tuple[str, int, Any]:
        """The next data message as (type, request id, raw body), skipping pings."""
        deadline = time.monotonic() + wait_s
        while True:
            while self.backlog:
                event = self.backlog.pop(0)
                if isinstance(event, Message):
                    assert isinstance(event.data, bytes)
                    envelope = decode_envelope(event.data)
                    assert envelope.v == PROTOCOL_VERSION
                    return envelope.type, envelope.id, envelope.body
                assert not isinstance(event, CloseReceived), f"closed: {event}"
            left = deadline - time.monotonic()
            assert left > 0 and not self.eof, "no message arrived"
            self.backlog += await self.events(left)

    async def until_closed(self, wait_s: float) -> tuple[int | None, float]:
        """Read (answering) until the server closes: (close code or None, seconds waited)."""
        started = time.monotonic()
        code = None
        while not self.eof and time.monotonic() - started < wait_s:
            for event in await self.events(wait_s - (time.monotonic() - started)):
                if isinstance(event, CloseReceived):
                    code = event.code
            if self.codec.state is State.CLOSED and code is not None:
                break
        return code, time.monotonic() - started

    def close(self) -> None:
        self.sock.close()


async def error_reply(ws: RawWs) -> tuple[int, ErrorBody]:
    kind, request_id, body = await ws.next_message()
    assert kind == REPLY_ERROR, kind
    return request_id, decode_body(body, ErrorBody)


async def assert_usable(ws: RawWs, request_id: int = 99) -> None:
    await ws.request(request_id, ChatList())
    kind, got_id, body = await ws.next_message()
    assert (kind, got_id) == (REPLY_OK, request_id)
    decode_body(body, ChatListResult)


async def healthz_seconds(server: RunningServer) -> float:
    started = time.monotonic()
    status, _, _ = await http_request("GET", server.url + "/healthz", timeout_s=5)
    assert status == 200
    return time.monotonic() - started


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field_name} not in /proc/{pid}/status")


def stop_and_check(server: RunningServer) -> str:
    log = stop_server(server)
    assert server.process.returncode == 0, log
    return log


# === bad frames (the shared server) ======================================================


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\xc1\xc1\xc1 not msgpack", id="not-msgpack"),
        pytest.param(b"", id="empty"),
        pytest.param(os.urandom(64), id="random"),
        pytest.param(msgspec.msgpack.encode({"type": "chat.list"}), id="map-not-array"),
        pytest.param(msgspec.msgpack.encode([1, "chat.list"]), id="short-array"),
        pytest.param(msgspec.msgpack.encode([1, "chat.list", -5, {}]), id="negative-id"),
        pytest.param(msgspec.msgpack.encode("chat.list"), id="a-string"),
    ],
)
async def test_garbage_binary_frames_get_bad_message_and_the_socket_stays_usable(
    server: RunningServer, clients: list[Client], payload: bytes
) -> None:
    owner = await server.sign_in()
    clients.append(owner)
    ws = await RawWs.open(server, owner.token)
    try:
        await assert_usable(ws, 1)
        await ws.send(payload)
        request_id, error = await error_reply(ws)
        assert (request_id, error.code) == (0, "bad_message")
        assert error.message
        await ws.send(payload)  # again: nothing is cumulative
        assert (await error_reply(ws))[1].code == "bad_message"
        await assert_usable(ws, 2)
    finally:
        ws.close()


async def test_request_errors_repeat_the_request_id(
    server: RunningServer, clients: list[Client]
) -> None:
    owner = await server.sign_in()
    clients.append(owner)
    ws = await RawWs.open(server, owner.token)
    try:
        await ws.send(msgspec.msgpack.encode([PROTOCOL_VERSION, "chat.explode", 7, {}]))
        assert await error_reply(ws) == (
            7,
            ErrorBody("unknown_type", "unknown message type 'chat.explode'"),
        )
        await ws.send(msgspec.msgpack.encode([PROTOCOL_VERSION + 1, "chat.list", 8, {}]))
        request_id, error = await error_reply(ws)
        assert (request_id, error.code) == (8, "unsupported_version")
        await ws.send(msgspec.msgpack.encode([1, "chat.post", 9, {"chat_id": "one"}]))
        request_id, error = await error_reply(ws)
        assert (request_id, error.code) == (9, "bad_message")
        await ws.send(msgspec.msgpack.encode([1, "chat.post", 10, {"chat_id": 1, "text": ""}]))
        request_id, error = await error_reply(ws)
        assert (request_id, error.code) == (10, "bad_message")
        await assert_usable(ws, 11)
    finally:
        ws.close()


async def test_a_text_frame_closes_with_1003(server: RunningServer, clients: list[Client]) -> None:
    owner = await server.sign_in()
    clients.append(owner)
    ws = await RawWs.open(server, owner.token)
    try:
        await assert_usable(ws, 1)
        await ws.send_text('[1, "chat.list", 2, {}]')
        code, _ = await ws.until_closed(5)
        assert code == 1003
    finally:
        ws.close()
    assert await healthz_seconds(server) < 1


async def test_an_unauthenticated_request_closes_with_4401(server: RunningServer) -> None:
    ws = await RawWs.open(server)
    try:
        await ws.request(1, ChatList())
        code, _ = await ws.until_closed(5)
        assert code == 4401
    finally:
        ws.close()


async def test_a_non_member_cannot_post(server: RunningServer, clients: list[Client]) -> None:
    owner = await server.sign_in()
    stranger = await server.sign_in()
    clients += [owner, stranger]
    await owner.connect()
    chat = await owner.create_chat("Только свои")
    await owner.post(chat.id, "первое")
    ws = await RawWs.open(server, stranger.token)
    try:
        await ws.send(
            msgspec.msgpack.encode(
                [1, "chat.post", 5, {"chat_id": chat.id, "client_id": "x1", "text": "я здесь"}]
            )
        )
        request_id, error = await error_reply(ws)
        assert (request_id, error.code) == (5, "not_member")
        await assert_usable(ws, 6)
    finally:
        ws.close()
    await stranger.connect()
    with pytest.raises(ClientError) as refused:
        await stranger.post(chat.id, "и я", retry=False)
    assert refused.value.code == "not_member"
    texts = [e.text for e in (await owner.history(chat.id)).events if e.kind == "message"]
    assert texts == ["первое"]


# === a flood of requests from a peer that reads nothing ==================================


async def test_a_flooding_peer_is_no_longer_read_and_others_are_served(
    server: RunningServer, clients: list[Client]
) -> None:
    owner = await server.sign_in()
    clients.append(owner)
    await owner.connect()
    chat = await owner.create_chat("История")
    for i in range(20):
        await owner.post(chat.id, f"{i} " + "ж" * 1000)
    # Each request asks for ~40 KB of history and is padded to 60 KB itself (unknown fields
    # are ignored): a server that kept reading would pile up replies without end.
    payload = msgspec.msgpack.encode(
        [1, "chat.history", 1, {"chat_id": chat.id, "limit": 200, "pad": "p" * 60_000}]
    )
    frame = encode_frame(Opcode.BINARY, payload, mask=os.urandom(4))
    pid = server.process.pid
    before = rss_kib(pid)
    flooder = await RawWs.open(server, owner.token, rcvbuf=4096)
    sent = 0
    unsent = memoryview(b"")
    blocked_since: float | None = None
    cut = False
    try:
        started = time.monotonic()
        while time.monotonic() - started < 5 and sent < 256 << 20:
            unsent = unsent or memoryview(frame)
            try:
                n = flooder.sock.send(unsent)
            except BlockingIOError:
                blocked_since = blocked_since or time.monotonic()
                if time.monotonic() - blocked_since > 0.6:
                    break  # nothing more went in for a good while
                await asyncio.sleep(0.02)
                continue
            except ConnectionError:
                cut = True  # closed for being too slow: bounded as well
                break
            sent += n
            unsent = unsent[n:]
            blocked_since = None
        # Kernel buffers and a bounded inbox take some megabytes; then nothing more goes in.
        assert sent < 64 << 20, f"the server kept reading: {sent} bytes taken"
        assert cut or (blocked_since is not None and time.monotonic() - blocked_since > 0.5)
        # Meanwhile everyone else is served at once.
        assert await healthz_seconds(server) < 1
        t0 = time.monotonic()
        await owner.list_chats()
        await owner.post(chat.id, "я не жду")
        assert time.monotonic() - t0 < 1
        grown = rss_kib(pid, "VmHWM") - before
        assert grown < 100 << 10, f"server memory grew by {grown} KiB"
    finally:
        flooder.sock.close()
    assert await healthz_seconds(server) < 1


# === slow readers ========================================================================


@dataclass
class SlowReaderRun:
    close_code: int | None = None
    slow_bytes: int = 0  # what the slow reader got before the close frame
    pushed_bytes: int = 0
    posted: list[int] = field(default_factory=list)
    normal_seqs: list[int] = field(default_factory=list)
    log: str = ""


async def _slow_reader_scenario(
    server: RunningServer, posts: int, read_after_s: float
) -> SlowReaderRun:
    """Bob posts big messages to a chat with Carol (SDK) and Alice (a raw socket that does not
    read); after ``read_after_s`` Alice reads everything she was sent."""
    run = SlowReaderRun()
    alice = await server.sign_in()
    bob = await server.sign_in()
    carol = await server.sign_in()
    try:
        await bob.connect()
        await carol.connect()
        assert alice.account_id is not None and carol.account_id is not None
        chat = await bob.create_chat("Большие сообщения", [alice.account_id, carol.account_id])
        ws = await RawWs.open(server, alice.token, rcvbuf=4096)
        try:
            await assert_usable(ws, 1)  # authenticated and subscribed: from now on, no reads
            for _ in range(posts):
                posted = await bob.post(chat.id, BIG_TEXT, retry=False)
                run.posted.append(posted.seq)
            run.pushed_bytes = posts * len(BIG_TEXT.encode())
            pushed_at = time.monotonic()
            while len(run.normal_seqs) < posts:
                event = await carol.next_event(10)
                if event.kind == "message":
                    assert event.text == BIG_TEXT
                    run.normal_seqs.append(event.seq)
            await asyncio.sleep(max(0.0, read_after_s - (time.monotonic() - pushed_at)))
            code, _ = await ws.until_closed(10)
            run.close_code = code
            run.slow_bytes = ws.received
        finally:
            ws.close()
    finally:
        for client in (alice, bob, carol):
            await client.close()
    return run


@pytest.fixture(scope="module")
def over_the_hard_cap(tmp_path_factory: pytest.TempPathFactory) -> SlowReaderRun:
    """One run past the hard cap: 200 posts of 40 KB (8 MB) against a 256 KiB cap."""
    server = start_server(
        tmp_path_factory.mktemp("parta-hardcap"),
        env={
            "PARTA_WS_SEND_HIGH_WATER": str(16 << 10),
            "PARTA_WS_SEND_HARD_CAP": str(256 << 10),
            "PARTA_WS_SLOW_READER_S": "60",  # only the hard cap acts here
            "PARTA_WS_PING_INTERVAL_S": "2",
            "PARTA_SHUTDOWN_TIMEOUT_S": "3",
        },
    )
    loop_errors: list[dict[str, Any]] = []
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.get_loop().set_exception_handler(lambda _, context: loop_errors.append(context))
            run = runner.run(_slow_reader_scenario(server, posts=200, read_after_s=0.2))
    finally:
        run_log = stop_and_check(server)
    assert not loop_errors, loop_errors
    run.log = run_log
    return run


def test_a_reader_past_the_hard_cap_is_closed_with_4408(over_the_hard_cap: SlowReaderRun) -> None:
    run = over_the_hard_cap
    assert run.close_code == 4408
    # Cut off: it got what the kernel's buffers and the cap held (about 3 MB here), not all
    # of the 8 MB that was posted after it stopped reading.
    assert run.slow_bytes < run.pushed_bytes - (1 << 20), (run.slow_bytes, run.pushed_bytes)


def test_the_others_in_the_chat_keep_receiving_every_message(
    over_the_hard_cap: SlowReaderRun,
) -> None:
    run = over_the_hard_cap
    assert len(run.posted) == 200
    assert run.normal_seqs == run.posted


def test_cutting_a_slow_reader_logs_no_error(over_the_hard_cap: SlowReaderRun) -> None:
    assert "Traceback" not in over_the_hard_cap.log, over_the_hard_cap.log


async def test_a_reader_stuck_above_high_water_is_closed_by_the_sweep(tmp_path: Path) -> None:
    server = start_server(
        tmp_path,
        env={
            "PARTA_WS_SEND_HIGH_WATER": str(16 << 10),
            "PARTA_WS_SEND_HARD_CAP": str(1 << 30),  # never reached: the sweep must act
            "PARTA_WS_SLOW_READER_S": "0.1",
            "PARTA_WS_PING_INTERVAL_S": "1.5",
            "PARTA_SHUTDOWN_TIMEOUT_S": "3",
        },
    )
    try:
        # 6 MB: more than the kernel buffers take, so the server's own buffer stays above
        # the high-water mark. The sweep (every 1.5 s) closes it after 0.1 s of that, well
        # before the 3.75 s of silence after which it would just drop the socket.
        run = await _slow_reader_scenario(server, posts=150, read_after_s=1.8)
        assert run.close_code == 4408
        assert run.normal_seqs == run.posted and len(run.posted) == 150
    finally:
        log = stop_and_check(server)
    assert "Traceback" not in log, log


# === pings ===============================================================================

PING_S = 0.2


@pytest.fixture(scope="module")
def pinging_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("parta-ping"),
        env={
            "PARTA_WS_PING_INTERVAL_S": str(PING_S),
            "PARTA_WS_AUTH_TIMEOUT_S": "0.3",
            "PARTA_SHUTDOWN_TIMEOUT_S": "2",
        },
    )
    yield running
    log = stop_and_check(running)
    assert "Traceback" not in log, log


async def test_pings_arrive_at_the_configured_interval(pinging_server: RunningServer) -> None:
    server = pinging_server
    person = await server.sign_in()
    try:
        await person.connect()  # the SDK answers pings too
        ws = await RawWs.open(server, person.token)
        try:
            pings: list[float] = []
            started = time.monotonic()
            while time.monotonic() - started < 8 * PING_S:
                for event in await ws.events(PING_S):
                    assert not isinstance(event, CloseReceived)
                    if isinstance(event, Ping):
                        pings.append(time.monotonic())
            assert not ws.eof, "a peer that answers pings must stay connected"
            assert len(pings) >= 5, pings
            gaps = sorted(b - a for a, b in itertools.pairwise(pings))
            median = gaps[len(gaps) // 2]
            assert 0.5 * PING_S <= median <= 1.6 * PING_S, gaps
            await assert_usable(ws)
        finally:
            ws.close()
        # The SDK client stayed connected through all those pings.
        assert person.connected
        await person.list_chats()
    finally:
        await person.close()


async def test_a_peer_that_never_answers_pings_is_dropped(pinging_server: RunningServer) -> None:
    server = pinging_server
    person = await server.sign_in()
    try:
        ws = await RawWs.open(server, person.token)
        try:
            opened = time.monotonic()
            pings = 0
            while not ws.eof and time.monotonic() - opened < 10 * PING_S:
                events = await ws.events(PING_S, answer=False)  # read, never write
                pings += sum(isinstance(e, Ping) for e in events)
                assert not any(isinstance(e, CloseReceived) for e in events)
            silent_for = time.monotonic() - opened
            assert ws.eof, "a silent peer must be dropped"
            assert pings >= 2
            # Dropped at the first sweep after 2.5 intervals of silence.
            assert 2.4 * PING_S <= silent_for <= 4.5 * PING_S, silent_for
        finally:
            ws.close()
    finally:
        await person.close()


async def test_a_socket_that_does_not_authenticate_in_time_is_closed_with_4401(
    pinging_server: RunningServer,
) -> None:
    ws = await RawWs.open(pinging_server)
    try:
        code, waited = await ws.until_closed(5)
        assert code == 4401
        assert 0.25 <= waited <= 2, waited
    finally:
        ws.close()
