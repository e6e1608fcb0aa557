"""SIGTERM: stop accepting, close every WebSocket with 1001, finish HTTP requests, exit 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from protocol.client import Client
from protocol.messages import ChatList, encode_request
from protocol.websocket import (
    CloseReceived,
    Message,
    Role,
    WebSocketConnection,
    check_server_handshake_response,
    client_handshake_request,
    new_client_key,
)
from tests.integration.conftest import RunningServer, start_server, stop_server

SHUTDOWN_TIMEOUT_S = 5.0


async def open_raw_ws(
    server: RunningServer, token: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, WebSocketConnection]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    key = new_client_key()
    writer.write(
        client_handshake_request(
            f"127.0.0.1:{server.port}", "/ws", key, [("Authorization", f"Bearer {token}")]
        )
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    check_server_handshake_response(int(lines[0].split()[1]), headers, key)
    codec = WebSocketConnection(Role.CLIENT)
    # One round trip, so the socket is authenticated before the server is told to stop.
    codec.send_binary(encode_request(1, ChatList()))
    writer.write(codec.data_to_send())
    while True:
        codec.receive_data(await asyncio.wait_for(reader.read(65536), 5))
        if any(isinstance(e, Message) for e in codec.events_received()):
            return reader, writer, codec


async def close_code_of(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, codec: WebSocketConnection
) -> int | None:
    """Read until the server closes; echo its close frame like a polite client."""
    code = None
    while True:
        try:
            data = await reader.read(65536)
        except ConnectionError:
            data = b""
        codec.receive_data(data)
        for event in codec.events_received():
            if isinstance(event, CloseReceived):
                code = event.code
        out = codec.data_to_send()
        if out:
            writer.write(out)
        if not data:
            writer.close()
            return code


async def refuses_connections(port: int, within_s: float = 5.0) -> bool:
    """True once nothing accepts on ``port`` (the listener was closed)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return True
        writer.close()
        await asyncio.sleep(0.02)
    return False


def assert_clean_exit(server: RunningServer, log: str) -> None:
    assert server.process.returncode == 0, log
    assert "Traceback" not in log, log
    assert "shutting down" in log, log
    assert "shutdown timed out" not in log, log


async def wait_exit(server: RunningServer) -> str:
    _, log = await asyncio.to_thread(server.process.communicate, timeout=SHUTDOWN_TIMEOUT_S + 5)
    return log


@pytest.fixture
def dedicated(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path, env={"PARTA_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S)})
    yield server
    if server.process.poll() is None:  # a failed test left it running
        stop_server(server)


# --- a stand-in SMS gateway that holds the request until told to answer ---------------


class HeldGateway:
    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.bodies: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        self.bodies.append(await reader.readexactly(length))
        self.arrived.set()
        await self.release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture
async def held_gateway() -> AsyncIterator[HeldGateway]:
    gateway = HeldGateway()
    listener = await asyncio.start_server(gateway.handle, "127.0.0.1", 0)
    gateway.port = listener.sockets[0].getsockname()[1]
    yield gateway
    gateway.release.set()
    listener.close()
    await listener.wait_closed()


# === tests ===============================================================================


async def test_sigterm_closes_every_websocket_with_1001_and_exits_0(
    dedicated: RunningServer,
) -> None:
    server = dedicated
    alice = await server.sign_in("Смирнова", "Алиса")
    bob = await server.sign_in("Петров", "Борис")
    writers: list[asyncio.StreamWriter] = []
    try:
        await alice.connect()
        await bob.connect()
        assert bob.account_id is not None
        chat = await alice.create_chat("Перед выключением", [bob.account_id])
        await alice.post(chat.id, "до свидания")
        raw = await open_raw_ws(server, alice.token or "")
        writers.append(raw[1])
        # An idle kept-alive HTTP connection is closed too.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writers.append(writer)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in head

        started = time.monotonic()
        stopping = asyncio.create_task(asyncio.to_thread(stop_server, server))
        raw_code = await asyncio.wait_for(close_code_of(*raw), SHUTDOWN_TIMEOUT_S)
        log = await stopping
        took = time.monotonic() - started

        assert raw_code == 1001
        for client in (alice, bob):
            for _ in range(100):
                if not client.connected:
                    break
                await asyncio.sleep(0.02)
            assert client.close_code == 1001, client.close_code
        assert_clean_exit(server, log)
        assert took < SHUTDOWN_TIMEOUT_S, f"shutdown took {took:.1f} s: someone was waited out"
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(reader.read(), 5)  # EOF: closed by the server
        assert reader.at_eof()
        assert await refuses_connections(server.port, within_s=1)
    finally:
        for writer in writers:
            writer.close()
        await alice.close()
        await bob.close()


async def test_a_request_in_flight_during_shutdown_is_still_answered(
    tmp_path: Path, held_gateway: HeldGateway
) -> None:
    server = start_server(
        tmp_path,
        "--sms-webhook-url",
        f"http://127.0.0.1:{held_gateway.port}/sms",
        env={"PARTA_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S)},
    )
    try:
        phone = f"+7917{os.getpid() % 1000:03d}0001"
        client = Client(server.url)
        in_flight = asyncio.create_task(client.request_code(phone))
        try:
            # The server is now waiting on the SMS gateway inside the request.
            await asyncio.wait_for(held_gateway.arrived.wait(), 5)
            server.process.terminate()
            # Shutdown has begun: the listener is closed while the request is still open.
            assert await refuses_connections(server.port)
            assert not in_flight.done()
            held_gateway.release.set()
            sent = await asyncio.wait_for(asyncio.shield(in_flight), 5)
        finally:
            in_flight.cancel()
            await asyncio.gather(in_flight, return_exceptions=True)
        assert sent["phone"] == phone
        assert orjson.loads(held_gateway.bodies[0])["phone"] == phone
        log = await wait_exit(server)
        assert_clean_exit(server, log)
    finally:
        if server.process.poll() is None:
            stop_server(server)


async def test_a_request_whose_body_is_still_arriving_is_answered(
    dedicated: RunningServer,
) -> None:
    server = dedicated
    body = orjson.dumps({"phone": f"+7917{os.getpid() % 1000:03d}0002"})
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            b"POST /api/v1/auth/code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        await writer.drain()
        await asyncio.sleep(0.1)
        server.process.terminate()
        assert await refuses_connections(server.port)
        with contextlib.suppress(ConnectionError):
            writer.write(body[5:])
        try:
            answer = await asyncio.wait_for(reader.read(), 5)
        except ConnectionError:
            answer = b""
        assert answer.startswith(b"HTTP/1.1 200 "), answer
    finally:
        writer.close()
    log = await wait_exit(server)
    assert_clean_exit(server, log)


async def test_sigterm_with_a_busy_chat_still_exits_cleanly(dedicated: RunningServer) -> None:
    """Posts racing the shutdown: each either completes or fails with a lost connection."""
    server = dedicated
    people = [await server.sign_in() for _ in range(3)]
    try:
        for person in people:
            await person.connect()
        ids = [p.account_id for p in people[1:] if p.account_id is not None]
        chat = await people[0].create_chat("Шумный", ids)

        async def chatter(person: Client) -> int:
            done = 0
            with contextlib.suppress(Exception):
                while True:
                    await person.post(chat.id, "ещё", retry=False)
                    done += 1
            return done

        talking = [asyncio.create_task(chatter(p)) for p in people]
        await asyncio.sleep(0.2)
        log = await asyncio.to_thread(stop_server, server)
        counts = await asyncio.wait_for(asyncio.gather(*talking), 5)
        assert all(n > 0 for n in counts), counts
        assert all(p.close_code == 1001 for p in people), [p.close_code for p in people]
        assert_clean_exit(server, log)
    finally:
        for person in people:
            await person.close()
