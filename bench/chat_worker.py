"""One load process: many WebSocket connections on one uvloop, counting what arrives.

Started by ``python -m bench chat``; talks to it with JSON lines (stdin commands, stdout
reports). Connections are bare ``asyncio.Protocol`` objects around the sans-IO codec, so a
worker holds thousands and spends little CPU per frame.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import uvloop

from protocol.messages import (
    PUSH_EVENT,
    REPLY_OK,
    Auth,
    ChatPost,
    Event,
    decode_body,
    decode_envelope,
    decode_request,
    encode_request,
)
from protocol.websocket import (
    Message,
    Role,
    WebSocketConnection,
    client_handshake_request,
    new_client_key,
)

MARK = "bench:"


def stamp(message_no: int, size: int) -> str:
    """A message text that carries its number and send time, padded to ``size`` bytes."""
    head = f"{MARK}{message_no}:{time.monotonic():.6f}:"
    return head + "x" * max(0, size - len(head))


def read_stamp(text: str) -> tuple[int, float] | None:
    if not text.startswith(MARK):
        return None
    _, number, sent, _ = text.split(":", 3)
    return int(number), float(sent)


class Worker:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.ready = 0
        self.failed = 0
        self.received: dict[int, int] = {}
        # By message number, so that the harness can show latency over the run.
        self.latencies_ms: dict[int, list[float]] = {}
        self.all_ready = asyncio.Event()
        self.expected = 0

    def on_ready(self) -> None:
        self.ready += 1
        if self.ready + self.failed >= self.expected:
            self.all_ready.set()

    def on_failed(self) -> None:
        self.failed += 1
        if self.ready + self.failed >= self.expected:
            self.all_ready.set()

    def on_frame(self, conn: LoadConnection, frame: bytes) -> None:
        if self.mode == "baseline":
            _, request = decode_request(frame)
            text = request.text if isinstance(request, ChatPost) else ""
        else:
            envelope = decode_envelope(frame)
            if envelope.type == REPLY_OK and not conn.ready:
                conn.ready = True
                self.on_ready()
                return
            if envelope.type != PUSH_EVENT:
                return
            event: Event = decode_body(envelope.body, Event)
            text = event.text or ""
        stamped = read_stamp(text)
        if stamped is not None:
            number, sent = stamped
            self.received[number] = self.received.get(number, 0) + 1
            self.latencies_ms.setdefault(number, []).append((time.monotonic() - sent) * 1000)


class LoadConnection(asyncio.Protocol):
    __slots__ = ("_codec", "_head", "_host", "_key", "_transport", "_worker", "ready", "token")

    def __init__(self, worker: Worker, token: str, host: str) -> None:
        self._worker = worker
        self.token = token
        self._key = new_client_key()
        self._head: bytes | None = b""
        self._codec = WebSocketConnection(Role.CLIENT, max_message_size=16 << 20)
        self._transport: asyncio.Transport | None = None
        self.ready = False
        self._host = host

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._transport.write(client_handshake_request(self._host, "/ws", self._key))

    def data_received(self, data: bytes) -> None:
        if self._head is not None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = self._head[: self._head.find(b"\r\n")]
            rest, self._head = self._head[end + 4 :], None
            if b" 101 " not in status_line:
                self._worker.on_failed()
                return
            if self._worker.mode == "baseline":
                self.ready = True
                self._worker.on_ready()
            else:
                self._send(encode_request(1, Auth(token=self.token)))
            data = rest
            if not data:
                return
        self._codec.receive_data(data)
        for event in self._codec.events_received():
            if isinstance(event, Message) and isinstance(event.data, bytes):
                self._worker.on_frame(self, event.data)
        out = self._codec.data_to_send()
        if out and self._transport is not None:
            self._transport.write(out)

    def _send(self, payload: bytes) -> None:
        self._codec.send_binary(payload)
        assert self._transport is not None
        self._transport.write(self._codec.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready:
            self._worker.on_failed()


async def run(args: dict[str, Any]) -> None:
    worker = Worker(args["mode"])
    tokens: list[str] = args["tokens"]
    worker.expected = len(tokens)
    loop = asyncio.get_running_loop()
    host, port = args["host"], args["port"]
    conns = []
    for start in range(0, len(tokens), 100):
        batch = tokens[start : start + 100]
        made = await asyncio.gather(
            *(
                loop.create_connection(
                    lambda t=t: LoadConnection(worker, t, f"{host}:{port}"), host, port
                )  # type: ignore[misc]
                for t in batch
            )
        )
        conns.extend(made)
    await asyncio.wait_for(worker.all_ready.wait(), 120)
    _report({"event": "ready", "ready": worker.ready, "failed": worker.failed})
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "count":
            _report({"event": "count", "received": sum(worker.received.values())})
        elif command["cmd"] == "report":
            _report(
                {
                    "event": "report",
                    "received": worker.received,
                    "latencies_ms": worker.latencies_ms,
                    "pid": os.getpid(),
                }
            )
        elif command["cmd"] == "stop":
            break
    for transport, _ in conns:
        transport.abort()


def _report(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    uvloop.run(run(json.loads(sys.stdin.readline())))
