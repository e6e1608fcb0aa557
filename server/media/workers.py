"""SFU worker processes as the server sees them: started, spoken to, restarted.

Each worker is ``python -m sfu.worker`` with one end of a socketpair as its control channel
(``protocol/sfu_control.py``). Rooms are placed on the worker with the fewest rooms; a room
lives on one worker. When a worker dies, its rooms are reported lost (the calls tell their
peers to reconnect) and the worker is started again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from protocol.sfu_control import (
    EVENTS,
    REPLIES,
    Body,
    ControlError,
    ErrorBody,
    FrameReader,
    Ready,
    Request,
    RoomCreate,
    decode_body,
    encode_frame,
)

logger = logging.getLogger("parta.media")

B = TypeVar("B", bound=Body)
EventHandler = Callable[[int, Body], None]
LostHandler = Callable[[int, set[str]], None]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    count: int = 1
    host: str = "127.0.0.1"
    announce: str = "127.0.0.1"
    # Worker i listens on base_port + i; 0 lets each pick a free port (tests).
    base_port: int = 0
    restart_delay_s: float = 0.5


class _Control(asyncio.Protocol):
    """The server's end of one worker's control socket."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._reader = FrameReader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except ControlError:
            logger.exception("bad control frame from worker", extra={"worker": self._worker.index})
            if self.transport is not None:
                self.transport.close()
            return
        for type_, request_id, raw in frames:
            self._worker.frame(type_, request_id, raw)

    def connection_lost(self, exc: Exception | None) -> None:
        self._worker.control_lost()


@dataclass(eq=False)
class Worker:
    index: int
    pool: WorkerPool
    process: asyncio.subprocess.Process | None = None
    control: _Control | None = None
    port: int = 0
    fingerprint: str = ""
    rooms: set[str] = field(default_factory=set)
    restarting: bool = False
    ready: asyncio.Future[Ready] | None = None
    _pending: dict[int, tuple[asyncio.Future[Any], type[Body]]] = field(default_factory=dict)
    _next_id: int = 1

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        config = self.pool.config
        port = config.base_port + self.index if config.base_port else 0
        self.ready = loop.create_future()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sfu.worker",
            "--control-fd",
            str(theirs.fileno()),
            "--worker",
            str(self.index),
            "--host",
            config.host,
            "--announce",
            config.announce,
            "--port",
            str(port),
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        _, self.control = await loop.create_unix_connection(lambda: _Control(self), sock=ours)
        ready = await asyncio.wait_for(self.ready, 30)
        self.port, self.fingerprint = ready.port, ready.fingerprint
        logger.info("sfu worker ready", extra={"worker": self.index, "port": self.port})

    @property
    def running(self) -> bool:
        """Started and ready: its port and certificate are known."""
        ready = self.ready
        return (
            self.control is not None
            and ready is not None
            and ready.done()
            and not ready.cancelled()
            and ready.exception() is None
        )

    def frame(self, type_: str, request_id: int, raw: Any) -> None:
        if request_id:
            pending = self._pending.pop(request_id, None)
            if pending is None:
                return
            future, reply_type = pending
            if future.done():
                return
            if type_ == "ok":
                future.set_result(decode_body(raw, reply_type))
            else:
                error: ErrorBody = decode_body(raw, ErrorBody)
                future.set_exception(ControlError(error.code, error.message))
            return
        event_type = EVENTS.get(type_)
        if event_type is None:
            return
        event = decode_body(raw, event_type)
        if isinstance(event, Ready):
            if self.ready is not None and not self.ready.done():
                self.ready.set_result(event)
            return
        self.pool.on_event(self.index, event)

    async def request(self, request: Request) -> Any:
        if self.control is None or self.control.transport is None:
            raise ControlError("unavailable", f"SFU worker {self.index} is not running")
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (future, REPLIES[request.type])
        self.control.transport.write(encode_frame(request.type, request_id, request))
        return await asyncio.wait_for(future, 10)

    def control_lost(self) -> None:
        self.control = None
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(ControlError("unavailable", "SFU worker went away"))
        self._pending.clear()
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(ControlError("unavailable", "SFU worker did not start"))
        self.pool.worker_lost(self)


class WorkerPool:
    def __init__(self, config: WorkerConfig, on_event: EventHandler, on_lost: LostHandler) -> None:
        self.config = config
        self.on_event = on_event
        self._on_lost = on_lost
        self.workers = [Worker(i, self) for i in range(config.count)]
        self._room_worker: dict[str, Worker] = {}
        self._closing = False
        self._restarts: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await asyncio.gather(*(w.start() for w in self.workers))

    def worker_for(self, room_id: str) -> Worker | None:
        return self._room_worker.get(room_id)

    async def stop(self) -> None:
        self._closing = True
        for task in self._restarts:
            task.cancel()
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                worker.process.terminate()
        for worker in self.workers:
            if worker.process is not None:
                try:
                    await asyncio.wait_for(worker.process.wait(), 5)
                except TimeoutError:
                    worker.process.kill()
                    await worker.process.wait()

    async def place(self, room_id: str) -> Worker:
        """The worker hosting ``room_id``, creating the room on the least busy one."""
        worker = self._room_worker.get(room_id)
        if worker is not None:
            return worker
        live = [w for w in self.workers if w.running]
        if not live:
            # Workers start beside the server (or restart after a crash): wait a little.
            starting = [w.ready for w in self.workers if w.ready is not None and not w.ready.done()]
            if starting:
                await asyncio.wait(starting, timeout=15, return_when=asyncio.FIRST_COMPLETED)
                if room_id in self._room_worker:  # placed by a concurrent call meanwhile
                    return self._room_worker[room_id]
            live = [w for w in self.workers if w.running]
        if not live:
            raise ControlError("unavailable", "no SFU worker is running")
        worker = min(live, key=lambda w: len(w.rooms))
        self._room_worker[room_id] = worker
        worker.rooms.add(room_id)
        try:
            await worker.request(RoomCreate(room_id=room_id))
        except ControlError:
            self.forget(room_id)
            raise
        return worker

    def forget(self, room_id: str) -> None:
        worker = self._room_worker.pop(room_id, None)
        if worker is not None:
            worker.rooms.discard(room_id)

    def worker_lost(self, worker: Worker) -> None:
        rooms, worker.rooms = worker.rooms, set()
        for room_id in rooms:
            self._room_worker.pop(room_id, None)
        if self._closing:
            return
        if rooms:
            self._on_lost(worker.index, rooms)
        if worker.restarting:
            return
        logger.error("sfu worker lost", extra={"worker": worker.index, "rooms": len(rooms)})
        worker.restarting = True
        task = asyncio.get_running_loop().create_task(self._restart(worker))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _restart(self, worker: Worker) -> None:
        try:
            while not self._closing:
                if worker.process is not None:
                    if worker.process.returncode is None:
                        worker.process.kill()
                    await worker.process.wait()
                await asyncio.sleep(self.config.restart_delay_s)
                try:
                    await worker.start()
                    return
                except (ControlError, OSError, TimeoutError):
                    logger.exception("sfu worker restart failed", extra={"worker": worker.index})
        finally:
            worker.restarting = False


def default_worker_count() -> int:
    return max(1, len(os.sched_getaffinity(0)))
