"""A request body that arrives while its handler runs (uploads): bounded, with backpressure.

The connection feeds chunks as httptools parses them; the handler reads them. When more
than ``high`` bytes wait unread the connection stops reading from the socket, and reading
resumes once the handler has drained below ``low``: a large upload never sits in memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator


class BodyTooLarge(Exception):
    pass


class BodyStream:
    def __init__(
        self, transport: asyncio.Transport, *, high: int = 1 << 20, low: int = 256 << 10
    ) -> None:
        self._transport = transport
        self._high = high
        self._low = low
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.received = 0

    # --- the connection's side ------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        self.received += len(chunk)
        if self._buffered > self._high and not self._paused:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def finish(self) -> None:
        self._done = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        """The connection broke or the body was refused: the reader gets ``error``."""
        self._error = error
        self._wake()

    @property
    def complete(self) -> bool:
        return self._done

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- the handler's side -------------------------------------------------------------------

    async def read(self) -> bytes:
        """The next chunk; b"" at the end of the body."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._done:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < self._low:
            self._paused = False
            self._transport.resume_reading()
        return chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.read():
            yield chunk

    async def discard(self) -> None:
        """Read and drop the rest (so the connection can go on to its next request)."""
        async for _ in self:
            pass
