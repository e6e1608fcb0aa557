"""WebSocket connections: a thin ``asyncio.Protocol`` shell around the sans-IO codec.

Kept small on purpose: an idle authenticated connection is this object, its codec and
its place in the bus's sets. Outgoing frames are appended to a list and written once per
loop tick for all connections together (``Flusher``); a peer that cannot keep up first
stops being read from, then is cut with close code 4408. Requests are handled in order,
one at a time, by a task that exists only while there is work.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from protocol.errors import CloseCode as AppCloseCode
from protocol.websocket import (
    CloseCode,
    CloseReceived,
    Message,
    Opcode,
    Role,
    State,
    WebSocketConnection,
    encode_frame,
)
from server.config import Limits

logger = logging.getLogger("parta.ws")

PING_FRAME = encode_frame(Opcode.PING, b"")
# How long a failed peer gets to read our close frame and hang up.
LINGER_S = 2.0


class FrameHandler(Protocol):
    """The dispatcher: handles one client frame; called for each, in order."""

    async def handle(self, conn: WsConnection, frame: bytes) -> None: ...

    def closed(self, conn: WsConnection) -> None: ...


class Flusher:
    """Writes queued frames once per loop tick: each connection's own frames first (replies,
    pushes to one person), then the tail (the bus's chat frames, shared by all members)."""

    __slots__ = ("_dirty", "_loop", "_scheduled", "_tail")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[WsConnection] = []
        self._tail: list[Callable[[], None]] = []
        self._scheduled = False

    def mark(self, conn: WsConnection) -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def at_tail(self, flush: Callable[[], None]) -> None:
        """Run ``flush`` at the end of this tick's flush (call once per tick)."""
        self._tail.append(flush)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        tail, self._tail = self._tail, []
        self._scheduled = False
        for conn in dirty:
            conn.flush()
        for flush in tail:
            flush()


class RequestWorkers:
    """A fixed pool of coroutines that serve every connection's requests.

    A connection with waiting requests sits in the queue once; a worker serves one request
    and puts it back at the end if it has more, so requests of one connection stay in
    order, connections take turns, and a burst of thousands (a server restart, everyone
    reconnecting) costs a queue entry each instead of a task each.
    """

    def __init__(self, handler: FrameHandler, size: int) -> None:
        self._handler = handler
        self._size = size
        self._queue: asyncio.Queue[WsConnection] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._serve()) for _ in range(self._size)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def ready(self, conn: WsConnection) -> None:
        self._queue.put_nowait(conn)

    async def _serve(self) -> None:
        while True:
            conn = await self._queue.get()
            frame = conn.next_request()
            if frame is not None:
                try:
                    await self._handler.handle(conn, frame)
                except Exception:
                    logger.exception("request handler failed")
            if conn.request_done():
                self._queue.put_nowait(conn)


class WsConnection(asyncio.Protocol):
    __slots__ = (
        "_auth_timer",
        "_close_timer",
        "_codec",
        "_drained",
        "_flusher",
        "_handler",
        "_inbox",
        "_limits",
        "_on_close",
        "_out",
        "_scheduled",
        "_workers",
        "account_id",
        "has_profile",
        "last_seen",
        "paused_since",
        "subscribed",
        "syncing",
        "transport",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        handler: FrameHandler,
        workers: RequestWorkers,
        flusher: Flusher,
        limits: Limits,
        on_close: Callable[[WsConnection], None],
    ) -> None:
        self.transport = transport
        self._handler = handler
        self._workers = workers
        self._flusher = flusher
        self._limits = limits
        self._on_close = on_close
        self._codec = WebSocketConnection(Role.SERVER, max_message_size=limits.ws_message_bytes)
        # Created on first use: most connections are idle most of the time.
        self._out: list[bytes] | None = None
        self._inbox: deque[bytes] | None = None
        self._scheduled = False
        self._auth_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._drained: asyncio.Future[None] | None = None
        self.account_id: int | None = None
        self.has_profile = False
        self.subscribed: list[int] = []
        # chat id → live frames held back while that chat is being resumed.
        self.syncing: dict[int, list[tuple[int, bytes]]] | None = None
        self.last_seen = asyncio.get_running_loop().time()
        self.paused_since = 0.0

    def start(self, rest: bytes, *, first_frame: bytes | None) -> None:
        """Called right after the 101 response is written.

        ``first_frame`` is an ``auth`` request made from the upgrade's credentials; without
        one the client must authenticate by message within the time limit.
        """
        self.transport.set_write_buffer_limits(high=self._limits.ws_send_high_water)
        if first_frame is None:
            self._auth_timer = asyncio.get_running_loop().call_later(
                self._limits.ws_auth_timeout_s, self._auth_timeout
            )
        else:
            self._enqueue(first_frame)
        if rest:
            self.data_received(rest)

    # --- asyncio.Protocol ----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_seen = asyncio.get_running_loop().time()
        codec = self._codec
        codec.receive_data(data)
        for event in codec.events_received():
            if isinstance(event, Message):
                if isinstance(event.data, str):
                    codec.fail(CloseCode.UNSUPPORTED_DATA, "Parta speaks binary msgpack frames")
                    break
                self._enqueue(event.data)
            elif isinstance(event, CloseReceived):
                logger.debug("peer closed", extra={"code": event.code})
        self._write_codec_output()

    def eof_received(self) -> bool | None:
        self._codec.receive_data(b"")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._auth_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionResetError("connection closed"))
            self._drained.exception()  # retrieved: nobody else may be waiting
        self._out = None
        self._inbox = None
        self._handler.closed(self)
        self._on_close(self)

    def pause_writing(self) -> None:
        # Stop reading requests from a peer that is not reading our answers.
        self.paused_since = asyncio.get_running_loop().time()
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused_since = 0.0
        if self._inbox is None or len(self._inbox) < self._limits.ws_inbox_requests:
            self.transport.resume_reading()
        if self._drained is not None:
            self._drained.set_result(None)
            self._drained = None

    # --- requests in -----------------------------------------------------------------

    def _enqueue(self, frame: bytes) -> None:
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.append(frame)
        if len(inbox) >= self._limits.ws_inbox_requests:
            self.transport.pause_reading()
        if not self._scheduled:
            self._scheduled = True
            self._workers.ready(self)

    def next_request(self) -> bytes | None:
        """The oldest waiting request, for a worker (None once the connection is closing)."""
        inbox = self._inbox
        if not inbox or self._codec.state is not State.OPEN:
            return None
        frame = inbox.popleft()
        if len(inbox) == self._limits.ws_inbox_requests // 2 and not self.paused_since:
            self.transport.resume_reading()
        return frame

    def request_done(self) -> bool:
        """A worker finished one request; True if this connection has more waiting."""
        if self._inbox and self._codec.state is State.OPEN:
            return True
        self._scheduled = False
        self._inbox = None
        return False

    def authenticated(self, account_id: int, has_profile: bool) -> None:
        self.account_id = account_id
        self.has_profile = has_profile
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None

    def _auth_timeout(self) -> None:
        self._auth_timer = None
        if self.account_id is None:
            limit = self._limits.ws_auth_timeout_s
            self.close(AppCloseCode.UNAUTHENTICATED, f"authenticate within {limit:g} s")

    # --- frames out ------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> None:
        """Queue an encoded WebSocket frame; the flusher writes it this tick."""
        if self._codec.state is not State.OPEN:
            return
        out = self._out
        if out is None:
            self._out = [frame]
            self._flusher.mark(self)
        else:
            out.append(frame)

    def send_message(self, payload: bytes) -> None:
        self.send_frame(encode_frame(Opcode.BINARY, payload))

    def deliver(self, chat_id: int, seq: int, frame: bytes) -> None:
        """A live chat event while this connection resumes (see ``hold``)."""
        syncing = self.syncing
        if syncing is not None:
            held = syncing.get(chat_id)
            if held is not None:
                held.append((seq, frame))
                return
        self.send_frame(frame)

    def flush(self) -> None:
        out = self._out
        if out is None:
            return
        self._out = None
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(out[0] if len(out) == 1 else b"".join(out))
        if self.paused_since:
            self.check_backlog()

    def check_backlog(self) -> None:
        """Cut a connection whose unsent bytes passed the hard cap (it is not reading)."""
        if self.transport.get_write_buffer_size() > self._limits.ws_send_hard_cap:
            # Not now: the caller may be looping over the set that closing changes.
            asyncio.get_running_loop().call_soon(
                self.close, AppCloseCode.SLOW_CONSUMER, "too slow to read"
            )

    async def drained(self) -> None:
        """Wait until the transport's buffer is below its high-water mark."""
        self.flush()
        if not self.paused_since:
            return
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()
        await self._drained

    # --- holding back live events while a chat resumes ------------------------------

    def hold(self, chat_ids: set[int]) -> None:
        self.syncing = {chat_id: [] for chat_id in chat_ids}

    def release(self, chat_id: int, delivered_seq: int) -> None:
        """Resume of ``chat_id`` has sent everything up to ``delivered_seq``."""
        if self.syncing is None:
            return
        for seq, frame in self.syncing.pop(chat_id, ()):
            if seq > delivered_seq:
                self.send_frame(frame)
        if not self.syncing:
            self.syncing = None

    # --- closing -----------------------------------------------------------------------

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake; the peer's reply or a timeout ends the TCP side."""
        if self._codec.state is State.OPEN:
            self.flush()
            self._codec.send_close(code, reason)
            self._write_codec_output()

    def abort(self) -> None:
        self.transport.abort()

    def ping(self) -> None:
        self.send_frame(PING_FRAME)

    @property
    def is_open(self) -> bool:
        return self._codec.state is State.OPEN

    def _write_codec_output(self) -> None:
        data = self._codec.data_to_send()
        if data:
            self.flush()
            self.transport.write(data)
        state = self._codec.state
        if state is not State.OPEN:
            # Out of the bus: nothing more is written to a closing connection.
            self._handler.closed(self)
        if state is State.CLOSED:
            self.transport.close()
        elif self._codec.close_expected:
            # We failed a misbehaving peer. Closing a socket with unread input sends a reset
            # that can overtake our close frame, so half-close and let the peer finish.
            if self._close_timer is None:
                if self.transport.can_write_eof():
                    self.transport.write_eof()
                self._close_timer = asyncio.get_running_loop().call_later(LINGER_S, self.abort)
        elif state is State.CLOSING and self._close_timer is None:
            # We sent a close frame (or failed the peer): give it a while to answer.
            self._close_timer = asyncio.get_running_loop().call_later(
                self._limits.shutdown_timeout_s, self.abort
            )
