"""``python -m sfu.worker``: one SFU worker process (the asyncio shell around the router).

It owns one UDP socket and one listening TCP socket on the same port (ICE-TCP passive
candidates), the control channel inherited from the server, and one periodic timer. The
router does the work synchronously inside these callbacks; this file only moves bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import uvloop

from protocol.sfu_control import (
    REQUESTS,
    Body,
    ControlError,
    ErrorBody,
    FrameReader,
    Ready,
    decode_body,
    encode_frame,
)
from sfu.dtls import Certificate
from sfu.framing import FrameReader as TcpFrameReader
from sfu.framing import frame as tcp_frame
from sfu.peer import Send
from sfu.router import Router
from sfu.udp_batch import UdpBatch, sendmmsg_available

logger = logging.getLogger("parta.sfu")

TICK_S = 0.02


def udp_sender(
    sendto: Callable[[bytes | memoryview, tuple[str, int]], object],
    queue: Callable[[bytes, tuple[str, int]], None],
    addr: tuple[str, int],
) -> Send:
    """A send function for one remote address, where ``sendmmsg`` is missing (else
    ``sfu.udp_batch``).

    It calls the socket's own ``sendto``: about 0.5 µs a packet cheaper than the transport's
    (a keyword partial into uvloop's Cython method). When the socket buffer is full the
    transport takes the packet (``queue``) and writes it when the socket drains, as its
    ``sendto`` would have. Other errors are dropped like ``error_received`` drops them.
    """

    def send(data: bytes | memoryview) -> None:
        try:
            sendto(data, addr)
        except BlockingIOError:
            queue(bytes(data), addr)
        except OSError:
            pass

    return send


class UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, router: Router, sock: socket.socket) -> None:
        self._router = router
        self._sock = sock
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if sendmmsg_available():
            batch = UdpBatch(self._sock, transport, asyncio.get_running_loop())  # type: ignore[arg-type]
            self._router.udp_sender = batch.sender
        else:
            self._router.udp_sender = functools.partial(
                udp_sender,
                self._sock.sendto,
                transport.sendto,  # type: ignore[attr-defined]
            )

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._router.datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for a peer that went away: consent expiry will notice.
        pass


class TcpConnection(asyncio.Protocol):
    """One ICE-TCP connection: RFC 4571 frames in and out, otherwise like UDP. Its source
    for the router is ``(host, port, self)``: ICE reads the address, sending uses ``send``."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._reader = TcpFrameReader()
        self._transport: asyncio.Transport | None = None
        self._source: tuple[str, int, TcpConnection] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        host, port = transport.get_extra_info("peername")[:2]
        self._source = (host, port, self)

    def data_received(self, data: bytes) -> None:
        frames = self._reader.feed(data)
        if self._reader.failed:
            assert self._transport is not None
            self._transport.close()
            return
        for payload in frames:
            self._router.datagram(payload, self._source)

    def send(self, data: bytes | memoryview) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(tcp_frame(data))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._source is not None:
            self._router.path_closed(self._source)


class ControlConnection(asyncio.Protocol):
    """The worker's end of the control socket: requests in, replies and events out."""

    def __init__(self, router: Router, stopped: asyncio.Event) -> None:
        self._router = router
        self._reader = FrameReader()
        self._stopped = stopped
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except ControlError:
            logger.exception("bad control frame")
            self._stopped.set()
            return
        for type_, request_id, raw in frames:
            request_type = REQUESTS.get(type_)
            try:
                if request_type is None:
                    raise ControlError("unknown_type", f"unknown control request {type_!r}")
                reply = self._router.handle(decode_body(raw, request_type))
            except ControlError as exc:
                self.send("error", request_id, ErrorBody(code=exc.code, message=exc.message))
            except Exception as exc:
                logger.exception("control request failed", extra={"type": type_})
                self.send("error", request_id, ErrorBody(code="internal", message=str(exc)))
            else:
                if isinstance(reply, Future):
                    # Answered when done (a recording file being finished), off the loop.
                    asyncio.wrap_future(reply).add_done_callback(
                        functools.partial(self._deferred, request_id)
                    )
                else:
                    self.send("ok", request_id, reply)

    def _deferred(self, request_id: int, done: asyncio.Future[Any]) -> None:
        exc = done.exception()
        if exc is None:
            self.send("ok", request_id, done.result())
        else:
            self.send("error", request_id, ErrorBody(code="internal", message=str(exc)))

    def send(self, type_: str, request_id: int, body: Body) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(type_, request_id, body))

    def connection_lost(self, exc: Exception | None) -> None:
        # The server went away: a worker never outlives it.
        self._stopped.set()


def _bind(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same port (retrying when 0 picks a taken TCP port)."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((host, port))
        chosen = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, chosen))
        except OSError:
            udp.close()
            tcp.close()
            if port:
                raise
            continue
        tcp.listen(1024)
        for sock in (udp, tcp):
            sock.setblocking(False)
        # Bursts of video outrun the default buffers long before the CPU runs out.
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        return udp, tcp
    raise OSError("no port free for both UDP and TCP")


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    certificate = Certificate.generate()
    udp_sock, tcp_sock = _bind(args.host, args.port)
    port = udp_sock.getsockname()[1]
    control_sock = socket.socket(fileno=args.control_fd)
    control: ControlConnection | None = None

    def emit(type_: str, body: Body) -> None:
        if control is not None:
            control.send(type_, 0, body)

    router = Router(args.worker, certificate, args.announce, port, emit)
    await loop.create_datagram_endpoint(lambda: UdpEndpoint(router, udp_sock), sock=udp_sock)
    tcp_server = await loop.create_server(lambda: TcpConnection(router), sock=tcp_sock)
    _, control = await loop.create_unix_connection(
        lambda: ControlConnection(router, stopped), sock=control_sock
    )
    algorithm, value = certificate.fingerprint
    emit("ready", Ready(worker=args.worker, port=port, fingerprint=f"{algorithm} {value}"))
    # What exists now (modules, the certificate, the loop: ~29,000 objects) lives as long
    # as the process: out of the collector's sight, a full collection stops walking it
    # (2.2 ms each). Peers come later and stay collectable.
    gc.collect()
    gc.freeze()

    def tick() -> None:
        # The clock packets are stamped with (loop.time() is cached per iteration and in
        # whole ms, so it can run behind a packet's time). A failing tick must not stop
        # the next one: timers, reports and recordings all hang on it.
        timer[0] = loop.call_later(TICK_S, tick)
        try:
            router.tick(time.monotonic())
        except Exception:
            logger.exception("tick failed")

    timer: list[Any] = [loop.call_later(TICK_S, tick)]
    await stopped.wait()
    timer[0].cancel()
    recordings = router.close()
    await asyncio.sleep(0)  # the BYEs and close_notify alerts leave with this turn's batch
    if recordings:
        # Let the writers finish their files (the server waits 5 s before it kills us).
        await asyncio.wait([asyncio.wrap_future(f) for f in recordings], timeout=4)
        for finished in recordings:
            if finished.done():
                emit("recording.ended", finished.result())
    tcp_server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sfu.worker")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--announce", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=os.environ.get("PARTA_SFU_LOG", "WARNING"))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
