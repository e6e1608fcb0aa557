"""Interoperability with a WebSocket implementation we did not write: the ``websockets``
library's asyncio client against a real server process.

It offers permessage-deflate by default (the server must decline it), masks with its own
keys, fragments when given an iterable, answers the server's pings by itself and checks
every frame the server sends; any protocol slip on our side fails its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.frames import Frame, Opcode

from protocol.client import Client
from protocol.messages import (
    Auth,
    AuthOk,
    ChatHistory,
    ChatList,
    ChatListResult,
    Envelope,
    ErrorBody,
    Event,
    HistoryResult,
    Request,
    decode_body,
    decode_envelope,
    encode_request,
)
from tests.integration.conftest import RunningServer, start_server, stop_server

PING_INTERVAL_S = 0.25  # PARTA_WS_PING_INTERVAL_S of the ``pinging_server``


def ws_url(server: RunningServer, path: str = "/ws") -> str:
    return server.url.replace("http://", "ws://", 1) + path


def open_ws(server: RunningServer, token: str | None = None, **kwargs: Any) -> connect:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return connect(
        ws_url(server),
        subprotocols=["parta.v1"],  # type: ignore[list-item]
        additional_headers=headers,
        proxy=None,
        open_timeout=5,
        close_timeout=5,
        **kwargs,
    )


async def call(ws: ClientConnection, request_id: int, request: Request) -> Envelope:
    """Send a request and return its reply, skipping pushes."""
    await ws.send(encode_request(request_id, request))
    while True:
        data = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(data, bytes), "the server sent a text message"
        envelope = decode_envelope(data)
        if envelope.type in ("ok", "error"):
            assert envelope.id == request_id
            return envelope


def ok_body(envelope: Envelope, cls: type[Any]) -> Any:
    if envelope.type == "error":
        error = decode_body(envelope.body, ErrorBody)
        pytest.fail(f"request failed: {error.code}: {error.message}")
    return decode_body(envelope.body, cls)


async def signed_in(server: RunningServer, clients: list[Client]) -> Client:
    client = await server.sign_in()
    clients.append(client)
    assert client.token is not None and client.account_id is not None
    return client


async def test_bearer_header_then_binary_requests(
    server: RunningServer, clients: list[Client]
) -> None:
    user = await signed_in(server, clients)
    async with open_ws(server, user.token) as ws:
        assert ws.subprotocol == "parta.v1"
        # websockets offered permessage-deflate; the server speaks no extension.
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        for request_id in (1, 2, 3):
            ok_body(await call(ws, request_id, ChatList()), ChatListResult)


async def test_auth_by_first_message(server: RunningServer, clients: list[Client]) -> None:
    user = await signed_in(server, clients)
    assert user.token is not None
    async with open_ws(server) as ws:
        ok = ok_body(await call(ws, 1, Auth(token=user.token)), AuthOk)
        assert ok == AuthOk(account_id=user.account_id, has_profile=True)
        ok_body(await call(ws, 2, ChatList()), ChatListResult)


async def test_ping_from_the_client_gets_a_pong(
    server: RunningServer, clients: list[Client]
) -> None:
    user = await signed_in(server, clients)
    async with open_ws(server, user.token) as ws:
        for data in (b"parta", b"", bytes(range(125))):
            pong = await ws.ping(data)
            latency = await asyncio.wait_for(pong, 5)
            assert latency >= 0
        ok_body(await call(ws, 1, ChatList()), ChatListResult)


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1000, "done"), (4000, "app")])
async def test_clean_close_is_echoed(
    server: RunningServer, clients: list[Client], code: int, reason: str
) -> None:
    user = await signed_in(server, clients)
    async with open_ws(server, user.token) as ws:
        ok_body(await call(ws, 1, ChatList()), ChatListResult)
        started = asyncio.get_running_loop().time()
        await ws.close(code, reason)
        assert asyncio.get_running_loop().time() - started < 2  # the server closed TCP first
        assert ws.close_code == code  # the code the server echoed
        assert ws.close_exc.rcvd is not None and ws.close_exc.rcvd.code == code


async def test_fragmented_message_from_an_iterable(
    server: RunningServer, clients: list[Client]
) -> None:
    user = await signed_in(server, clients)
    data = encode_request(5, ChatList())
    async with open_ws(server, user.token) as ws:
        await ws.send([data[:1], data[1:4], b"", data[4:]])
        reply = decode_envelope(await asyncio.wait_for(ws.recv(), 5))
        assert (reply.type, reply.id) == ("ok", 5)


async def test_large_messages_in_both_directions(
    server: RunningServer, clients: list[Client]
) -> None:
    user = await signed_in(server, clients)
    assert user.account_id is not None
    async with open_ws(server, user.token) as ws:
        # 900 kB of an unknown field: ignored, but carried with a 64-bit length.
        padded = msgspec.msgpack.encode([1, "chat.list", 9, {"pad": "x" * 900_000}])
        await ws.send(padded)
        reply = decode_envelope(await asyncio.wait_for(ws.recv(), 5))
        assert (reply.type, reply.id) == ("ok", 9)
    # A history of seven 10 kB messages makes a reply of more than 64 KiB.
    owner = await signed_in(server, clients)
    await owner.connect()
    chat = await owner.create_chat("Длинная история", [user.account_id])
    for i in range(7):
        await owner.post(chat.id, f"{i}" + "ё" * 5000)
    async with open_ws(server, user.token) as ws:
        history = ok_body(await call(ws, 1, ChatHistory(chat_id=chat.id)), HistoryResult)
        texts = [e.text for e in history.events if e.kind == "message"]
        assert [(t or "")[:1] for t in texts] == list("0123456")
        assert len(msgspec.msgpack.encode(history)) > 65536


async def test_live_chat_event_pushed_to_a_websockets_client(
    server: RunningServer, clients: list[Client]
) -> None:
    alice = await signed_in(server, clients)
    bob = await signed_in(server, clients)
    assert bob.account_id is not None
    await alice.connect()
    async with open_ws(server, bob.token) as ws:
        ok_body(await call(ws, 1, ChatList()), ChatListResult)  # authenticated and subscribed
        chat = await alice.create_chat("Живой чат", [bob.account_id])
        posted = await alice.post(chat.id, "Привет из SDK")
        pushed: list[Event] = []
        while not any(e.kind == "message" for e in pushed):
            data = await asyncio.wait_for(ws.recv(), 5)
            envelope = decode_envelope(data)
            assert envelope.id == 0 and envelope.type in ("event", "chat")
            if envelope.type == "event":
                pushed.append(decode_body(envelope.body, Event))
        message = pushed[-1]
        assert (message.chat_id, message.seq, message.text, message.actor_id) == (
            chat.id,
            posted.seq,
            "Привет из SDK",
            alice.account_id,
        )
        assert [e.seq for e in pushed] == sorted(e.seq for e in pushed)


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer wrong-token"}, {}],
    ids=["bad-token", "no-auth-first-request"],
)
async def test_unauthenticated_close_4401_reaches_the_client(
    server: RunningServer, headers: dict[str, str]
) -> None:
    async with connect(
        ws_url(server),
        subprotocols=["parta.v1"],  # type: ignore[list-item]
        additional_headers=headers,
        proxy=None,
        open_timeout=5,
    ) as ws:
        # A bad token in the header may be refused before this request is even sent.
        with contextlib.suppress(ConnectionClosedError):
            await ws.send(encode_request(1, ChatList()))
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert ws.close_code == 4401


@pytest.mark.parametrize(
    ("subprotocols", "path", "status"),
    [(None, "/ws", 400), (["chat"], "/ws", 400), (["parta.v1"], "/socket", 404)],
    ids=["no-subprotocol", "other-subprotocol", "other-path"],
)
async def test_refused_handshakes(
    server: RunningServer, subprotocols: list[str] | None, path: str, status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws_url(server, path),
            subprotocols=subprotocols,  # type: ignore[arg-type]
            proxy=None,
            open_timeout=5,
        ):
            pass
    response = refused.value.response
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert msgspec.json.decode(response.body)["status"] == status


@pytest.mark.parametrize(
    ("message", "code"),
    [("a text message", 1003), (b"\x00" * ((1 << 20) + 1), 1009)],
    ids=["text-1003", "too-big-1009"],
)
async def test_refused_message_closes_the_websockets_client_promptly(
    server: RunningServer, clients: list[Client], message: str | bytes, code: int
) -> None:
    user = await signed_in(server, clients)
    ws = await open_ws(server, user.token)
    try:
        # The server may close while a large message is still being sent.
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.send(message)
            await asyncio.wait_for(ws.recv(), 2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    finally:
        ws.transport.abort()
        with contextlib.suppress(Exception):
            await ws.wait_closed()


# --- the server's pings ----------------------------------------------------------------------


class RecordingConnection(ClientConnection):
    """Notes the opcode of every frame the server sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[Opcode] = []

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame):
            self.received.append(event.opcode)
        super().process_event(event)


@pytest.fixture(scope="module")
def pinging_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("parta-pings"),
        env={"PARTA_WS_PING_INTERVAL_S": str(PING_INTERVAL_S)},
    )
    yield running
    log = stop_server(running)
    assert running.process.returncode == 0, log
    assert "Traceback" not in log, log


async def test_server_pings_are_answered_by_websockets_and_keep_it_connected(
    pinging_server: RunningServer,
) -> None:
    user = await pinging_server.sign_in()
    async with open_ws(
        pinging_server, user.token, ping_interval=None, create_connection=RecordingConnection
    ) as ws:
        assert isinstance(ws, RecordingConnection)
        # Silent for well over the 2.5 ping intervals after which an unanswering client is cut.
        await asyncio.sleep(PING_INTERVAL_S * 5)
        assert ws.received.count(Opcode.PING) >= 3
        ok_body(await call(ws, 1, ChatList()), ChatListResult)
