"""HTTP/1.1 connections: httptools parses, an ``asyncio.Protocol`` drives, handlers answer.

Requests on one connection are answered in order (pipelining included). Header and body
sizes are capped before anything is buffered past the cap. A ``GET /ws`` with an upgrade
hands the transport to the WebSocket side of the gateway.
"""

from __future__ import annotations

import asyncio
import http
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, unquote

import httptools
import orjson

from protocol.errors import ErrorCode
from server.config import Limits
from server.domain.errors import DomainError
from server.gateway.body import BodyStream, BodyTooLarge
from server.gateway.proxies import TrustedProxies

logger = logging.getLogger("parta.http")

JOURNAL_UPLOADS = frozenset({b"/api/v1/roster", b"/api/v1/schedule"})


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_ip: str
    params: dict[str, str] = field(default_factory=dict)
    # The path as sent (still percent-encoded): routes match on it, so an encoded "/"
    # stays inside its path parameter.
    raw_path: str = ""
    # Set for routes that take their body as it arrives (uploads); ``body`` is then empty.
    stream: BodyStream | None = None

    def json(self) -> Any:
        if not self.body:
            raise DomainError(ErrorCode.BAD_JSON, "the request needs a JSON body")
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise DomainError(ErrorCode.BAD_JSON, f"the body is not valid JSON: {exc}") from None

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for part in self.headers.get("cookie", "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                jar.setdefault(name, value)
        return jar


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(
        cls, data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        return cls(status, orjson.dumps(data), "application/json", headers or [])


Handler = Callable[[Request], Awaitable[Response]]


class HttpApp(Protocol):
    """What an HTTP connection needs from the application."""

    limits: Limits
    proxies: TrustedProxies

    async def handle(self, request: Request) -> Response: ...

    def problem(self, status: int, code: ErrorCode, detail: str) -> Response: ...

    def streams_body(self, method: str, path: str) -> int | None:
        """The body limit of a route that reads its body as it arrives, else None."""
        ...

    def upgrade(self, request: Request, transport: asyncio.Transport, rest: bytes) -> None: ...

    def connection_opened(self, conn: HttpConnection) -> None: ...

    def connection_closed(self, conn: HttpConnection) -> None: ...


class _TooLarge(Exception):
    def __init__(self, status: int, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def encode_response(response: Response, keep_alive: bool) -> bytes:
    reason = http.HTTPStatus(response.status).phrase
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    if response.content_type:
        lines.append(f"Content-Type: {response.content_type}")
    lines.append(f"Content-Length: {len(response.body)}")
    lines.append("X-Content-Type-Options: nosniff")
    if not keep_alive:
        lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


class HttpConnection(asyncio.Protocol):
    def __init__(self, app: HttpApp) -> None:
        self._app = app
        self._limits = app.limits
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer_ip = ""
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._body_limit = self._limits.http_body_bytes
        # Requests to answer in order; a Response in the queue is a refusal that ends it.
        self._pending: deque[tuple[Request | Response, bool]] = deque()
        self._in_message = False
        self._stream: BodyStream | None = None
        # A request was refused: nothing after it is read.
        self._broken = False
        self._worker: asyncio.Task[None] | None = None
        self._upgrading: Request | None = None
        self._closing = False
        self._shutting_down = False

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but behave as one.
        self._transport = cast(asyncio.Transport, transport)
        peer = self._transport.get_extra_info("peername")
        self._peer_ip = peer[0] if peer else ""
        self._app.connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._stream is not None:
            self._stream.fail(ConnectionResetError("the client went away mid-body"))
        self._app.connection_closed(self)
        if self._worker is not None:
            self._worker.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closing or self._broken:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._start_upgrade(data[exc.args[0] :])
        except httptools.HttpParserError as exc:
            # httptools wraps what our callbacks raise; the cause is kept as the context.
            cause = exc.__context__
            if isinstance(cause, _TooLarge):
                self._refuse(cause.status, cause.code, cause.detail)
            else:
                self._refuse(400, ErrorCode.BAD_MESSAGE, f"malformed HTTP request: {exc}")

    # --- httptools callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True
        self._url = b""
        self._headers = {}
        self._header_bytes = 0
        self._body = []
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_header_bytes(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value))
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self._headers.get(key)
        if previous is None:
            self._headers[key] = text
        else:
            self._headers[key] = previous + ("; " if key == "cookie" else ", ") + text

    def on_headers_complete(self) -> None:
        limits = self._limits
        path = self._url.split(b"?", 1)[0]
        method = self._parser.get_method().decode("ascii")
        streamed = self._app.streams_body(method, path.decode("latin-1"))
        # A journal's whole-school snapshot may be large; uploads say their own limit.
        if streamed is not None:
            self._body_limit = streamed
        elif path in JOURNAL_UPLOADS:
            self._body_limit = limits.journal_body_bytes
        else:
            self._body_limit = limits.http_body_bytes
        declared = self._headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._body_limit:
            raise _TooLarge(413, ErrorCode.BODY_TOO_LARGE, "the request body is too large")
        if streamed is not None and not self._parser.should_upgrade():
            # The handler starts now and reads the body while it arrives.
            assert self._transport is not None
            self._stream = BodyStream(self._transport)
            self._queue(self._request(b"", self._stream))

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._body_limit:
            if self._stream is not None:
                self._stream.fail(BodyTooLarge("the request body is too large"))
            raise _TooLarge(413, ErrorCode.BODY_TOO_LARGE, "the request body is too large")
        if self._stream is not None:
            self._stream.feed(body)
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        if self._stream is not None:
            self._stream.finish()
            self._stream = None
            return
        request = self._request(b"".join(self._body), None)
        if self._parser.should_upgrade():
            self._upgrading = request
            return
        self._queue(request)

    def _request(self, body: bytes, stream: BodyStream | None) -> Request:
        parsed = httptools.parse_url(self._url)
        raw_path = parsed.path.decode("latin-1")
        return Request(
            method=self._parser.get_method().decode("ascii"),
            path=unquote(raw_path),
            raw_path=raw_path,
            query=parse_qs(parsed.query.decode("latin-1")) if parsed.query else {},
            headers=self._headers,
            body=body,
            client_ip=self._app.proxies.client_ip(
                self._peer_ip, self._headers.get("x-forwarded-for")
            ),
            stream=stream,
        )

    def _queue(self, request: Request) -> None:
        self._pending.append((request, self._parser.should_keep_alive()))
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._serve())

    def _count_header_bytes(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self._limits.http_header_bytes:
            raise _TooLarge(431, ErrorCode.BAD_MESSAGE, "the request headers are too large")

    # --- answering -----------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            while self._pending and not self._closing:
                item, keep_alive = self._pending.popleft()
                response = item if isinstance(item, Response) else await self._app.handle(item)
                keep_alive = keep_alive and not self._shutting_down
                if isinstance(item, Request) and item.stream and not item.stream.complete:
                    # Answered before its body was all read (refused): the rest is not wanted.
                    keep_alive = False
                self._write(encode_response(response, keep_alive))
                if not keep_alive:
                    self.close()
        finally:
            self._worker = None

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _refuse(self, status: int, code: ErrorCode, detail: str) -> None:
        """Answer a broken request and close, after the requests before it are answered."""
        refusal = self._app.problem(status, code, detail)
        if self._worker is None and not self._pending:
            self._write(encode_response(refusal, keep_alive=False))
            self.close()
            return
        self._broken = True
        if self._transport is not None:
            self._transport.pause_reading()
        self._pending.append((refusal, False))

    def _start_upgrade(self, rest: bytes) -> None:
        request = self._upgrading
        if request is None or self._pending or self._worker is not None:
            self._refuse(400, ErrorCode.BAD_MESSAGE, "unexpected protocol upgrade")
            return
        self._closing = True
        assert self._transport is not None
        self._app.connection_closed(self)
        self._app.upgrade(request, self._transport, rest)

    def close(self) -> None:
        """Close after what is written; used for errors and graceful shutdown."""
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def shutdown(self) -> None:
        """Close now if idle, else right after the response being prepared."""
        self._shutting_down = True
        if self._worker is None and not self._pending and not self._in_message:
            self.close()
