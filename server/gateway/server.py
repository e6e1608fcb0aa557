"""The listener: accepts TCP, serves HTTP, upgrades ``/ws``, pings, and shuts down in order."""

from __future__ import annotations

import asyncio
import logging
import socket

from protocol.errors import CloseCode as AppCloseCode
from protocol.errors import ErrorCode
from protocol.messages import Auth, encode_request
from protocol.websocket import (
    CloseCode,
    HandshakeError,
    check_client_handshake,
    server_handshake_response,
)
from server.api.problems import from_domain, problem
from server.api.router import Router
from server.api.sessions import COOKIE
from server.config import Settings
from server.domain.errors import DomainError
from server.gateway.http import HttpConnection, Request, Response, encode_response
from server.gateway.proxies import TrustedProxies
from server.gateway.websocket import Flusher, FrameHandler, RequestWorkers, WsConnection

logger = logging.getLogger("parta.gateway")

WS_PATH = "/ws"


class Gateway:
    def __init__(
        self, settings: Settings, router: Router, frames: FrameHandler, flusher: Flusher
    ) -> None:
        self.settings = settings
        self.limits = settings.limits
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self._router = router
        self._frames = frames
        self._server: asyncio.Server | None = None
        self._flusher = flusher
        self._workers = RequestWorkers(frames, settings.limits.ws_request_workers)
        self._sweeper: asyncio.TimerHandle | None = None
        self.http_connections: set[HttpConnection] = set()
        self.ws_connections: set[WsConnection] = set()
        self._all_closed: asyncio.Event | None = None

    async def start(self, sock: socket.socket) -> int:
        """Serve on an already bound socket (bound early so that port 0 is known to all)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self), sock=sock, backlog=4096
        )
        self._workers.start()
        self._schedule_sweep()
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    # --- HttpApp -----------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        try:
            handler = self._router.resolve(request)
            return await handler(request)
        except DomainError as exc:
            return from_domain(exc)
        except Exception:
            logger.exception(
                "request failed", extra={"method": request.method, "path": request.path}
            )
            return problem(500, ErrorCode.INTERNAL, "internal error")

    def problem(self, status: int, code: ErrorCode, detail: str) -> Response:
        return problem(status, code, detail)

    def streams_body(self, method: str, path: str) -> int | None:
        return self._router.stream_limit(method, path)

    def connection_opened(self, conn: HttpConnection) -> None:
        self.http_connections.add(conn)

    def connection_closed(self, conn: HttpConnection) -> None:
        self.http_connections.discard(conn)
        self._check_all_closed()

    def upgrade(self, request: Request, transport: asyncio.Transport, rest: bytes) -> None:
        if request.path != WS_PATH:
            self._refuse_upgrade(
                transport, problem(404, ErrorCode.NOT_FOUND, f"no WebSocket at {request.path}")
            )
            return
        if self._all_closed is not None:
            self._refuse_upgrade(transport, problem(503, ErrorCode.UNAVAILABLE, "shutting down"))
            return
        try:
            key = check_client_handshake(request.method, request.headers)
        except HandshakeError as exc:
            response = problem(exc.status, ErrorCode.BAD_MESSAGE, exc.reason)
            response.headers.extend(exc.headers)
            self._refuse_upgrade(transport, response)
            return
        token = self._upgrade_token(request)
        conn = WsConnection(
            transport, self._frames, self._workers, self._flusher, self.limits, self._ws_closed
        )
        transport.set_protocol(conn)
        transport.write(server_handshake_response(key))
        self.ws_connections.add(conn)
        # A token from the upgrade request is checked as if it were the first message.
        first = None if token is None else encode_request(0, Auth(token=token))
        conn.start(rest, first_frame=first)

    def _upgrade_token(self, request: Request) -> str | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()[:200]
        cookie = request.cookies.get(COOKIE)
        if cookie and request.headers.get("origin") == self.settings.public_origin:
            return cookie[:200]
        return None

    def _refuse_upgrade(self, transport: asyncio.Transport, response: Response) -> None:
        transport.write(encode_response(response, keep_alive=False))
        transport.close()

    def _ws_closed(self, conn: WsConnection) -> None:
        self.ws_connections.discard(conn)
        self._check_all_closed()

    # --- liveness ------------------------------------------------------------------------

    def _schedule_sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(self.limits.ws_ping_interval_s, self._sweep)

    def _sweep(self) -> None:
        """Ping everyone, drop the silent, cut the slow: one timer for all connections."""
        now = asyncio.get_running_loop().time()
        interval = self.limits.ws_ping_interval_s
        for conn in list(self.ws_connections):
            if now - conn.last_seen > 2.5 * interval:
                conn.abort()
            elif conn.paused_since and now - conn.paused_since > self.limits.ws_slow_reader_s:
                conn.close(AppCloseCode.SLOW_CONSUMER, "too slow to read")
            elif conn.is_open:
                conn.ping()
        self._schedule_sweep()

    # --- shutdown ----------------------------------------------------------------------

    def _check_all_closed(self) -> None:
        if self._all_closed is not None and not self.http_connections and not self.ws_connections:
            self._all_closed.set()

    async def shutdown(self) -> None:
        """Stop accepting, close every WebSocket with 1001, finish requests, then cut."""
        self._all_closed = asyncio.Event()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.ws_connections):
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
        for http_conn in list(self.http_connections):
            http_conn.shutdown()
        self._check_all_closed()
        try:
            await asyncio.wait_for(self._all_closed.wait(), self.limits.shutdown_timeout_s)
        except TimeoutError:
            logger.warning(
                "shutdown timed out",
                extra={"http": len(self.http_connections), "ws": len(self.ws_connections)},
            )
            for conn in list(self.ws_connections):
                conn.abort()
            for http_conn in list(self.http_connections):
                http_conn.close()
        await self._workers.stop()
