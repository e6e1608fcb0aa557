"""One load process of ``python -m bench chat --load``: SDK clients that post, drop and resume.

Started by ``bench/chat_load.py``; JSON lines in both directions, like ``bench/chat_worker.py``:
a setup line, then commands (``start``, ``settle``, ``stop``) each answered by one report.
Every client is the SDK's ``Client`` (``protocol/client.py``), so what is measured is what an
integrator gets: sign-in by token, per-chat cursors, gap-fill, resume with ``sync`` after a
reconnect, and ``post`` retried with the same client id across a dropped connection.

Each client posts into its chat with exponentially distributed gaps; the text carries the
message's client id and its send time (``time.monotonic()``, one clock for every process on
the machine). Every event the SDK delivers is recorded with its seq, client id and latency,
marked live or resumed (delivered while the client was reconnecting).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import uvloop

from protocol.client import Client, ClientError, ConnectionLost
from protocol.messages import Event

# How often a process checks for connections it did not drop itself (server cuts).
WATCH_S = 0.5
RECONNECT_ATTEMPTS = 20


class LoadClient(Client):
    """The SDK client, also counting what the wire brought before the SDK filtered it.

    The SDK drops events at or below its cursor and answers a seq jump with a gap-fill, so an
    application never sees either; the counts say how often the server's stream needed that.
    """

    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(base_url, token)
        # Set by the load process while it reconnects: live events that arrive between
        # ``auth`` and the resume's ``sync`` are ahead of the cursor by design.
        self.reconnecting = False
        # [while reconnecting, while connected]
        self.wire_stale = [0, 0]
        self.wire_gaps = [0, 0]

    def _on_event(self, event: Event) -> None:
        last = self.cursors.get(event.chat_id)
        if last is not None:
            steady = 0 if self.reconnecting else 1
            if event.seq <= last:
                self.wire_stale[steady] += 1
            elif event.seq > last + 1:
                self.wire_gaps[steady] += 1
        super()._on_event(event)


@dataclass(eq=False)
class Member:
    """One client in one chat, with everything it posted and received."""

    index: int
    chat_id: int
    drops: bool
    client: LoadClient
    online: asyncio.Event = field(default_factory=asyncio.Event)
    resuming: bool = False
    # Connection breaks of any kind (ours or the server's): a post that straddles one was
    # retried by the SDK, so its stamped send time includes the outage.
    breaks: int = 0
    start_seq: int = 0
    last_seq: int = 0
    seqs: list[int] = field(default_factory=list)
    cids: list[str] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    live: list[int] = field(default_factory=list)
    # [seq, client id, retried across a break, answered as duplicate, ack ms]
    posts: list[list[Any]] = field(default_factory=list)
    dropped: int = 0
    resume_s: list[float] = field(default_factory=list)
    resumed_events: list[int] = field(default_factory=list)
    reconnecting: bool = False
    # Set by the drop loop when the next drop should cut a post in flight.
    cut_post: asyncio.Future[None] | None = None


class LoadProcess:
    def __init__(self, setup: dict[str, Any]) -> None:
        self.url: str = setup["url"]
        self.proc: int = setup["proc"]
        # Client ids are unique per account: a ramp's later steps reuse its accounts.
        self.tag: str = setup["tag"]
        self.interval: float = setup["interval"]
        self.size: int = setup["size"]
        self.drop_every: float = setup["drop_every"]
        self.drop_pause: tuple[float, float] = tuple(setup["drop_pause"])
        self.drop_mid_post: float = setup["drop_mid_post"]
        self.rng = random.Random(setup["seed"])
        self.members = [
            Member(i, c["chat_id"], c["drops"], LoadClient(self.url, c["token"]))
            for i, c in enumerate(setup["clients"])
        ]
        self.errors: dict[str, int] = {}
        self.error_samples: list[str] = []
        self.unexpected_breaks = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False

    def error(self, kind: str, detail: object) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{kind}: {detail}")

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # --- setup ------------------------------------------------------------------------

    async def open(self) -> dict[str, Any]:
        failed = 0
        # Batches keep the server's accept queue and the handshakes from piling up at once.
        for start in range(0, len(self.members), 50):
            batch = self.members[start : start + 50]
            results = await asyncio.gather(*(self._open(m) for m in batch), return_exceptions=True)
            for m, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    failed += 1
                    self.error("connect", repr(result))
                    m.chat_id = -1
        self.members = [m for m in self.members if m.chat_id >= 0]
        return {"event": "ready", "ready": len(self.members), "failed": failed}

    async def _open(self, m: Member) -> None:
        await m.client.connect()
        await m.client.list_chats()
        if m.chat_id not in m.client.cursors:
            raise RuntimeError(f"account is not in chat {m.chat_id}")
        m.start_seq = m.last_seq = m.client.cursors[m.chat_id]
        m.online.set()
        self.spawn(self._consume(m))

    async def _consume(self, m: Member) -> None:
        """Record what the SDK hands the application: once per seq, in order, by contract."""
        async for event in m.client.events():
            now = time.monotonic()
            if event.chat_id != m.chat_id or event.kind != "message":
                continue
            cid, sent = _read_text(event.text or "")
            m.seqs.append(event.seq)
            m.cids.append(event.client_id or cid)
            m.latency_ms.append(round((now - sent) * 1000, 3))
            m.sent_at.append(round(sent, 3))
            m.live.append(0 if m.resuming else 1)
            m.last_seq = event.seq

    # --- the measured window ------------------------------------------------------------

    async def run(self, duration: float) -> dict[str, Any]:
        end = time.monotonic() + duration
        work = [self.spawn(self._post_loop(m, end)) for m in self.members]
        work += [self.spawn(self._drop_loop(m, end)) for m in self.members if m.drops]
        watcher = self.spawn(self._watch())
        for outcome in await asyncio.gather(*work, return_exceptions=True):
            if isinstance(outcome, BaseException):
                # A client's loop that died stopped posting or dropping: the run must say so.
                self.error("client_loop", repr(outcome))
        # Every post is answered by now (the SDK retried the cut ones), and every client we
        # dropped is back; the watcher keeps reconnecting clients the server might cut.
        await self._all_online(60)
        self.stopping = True
        watcher.cancel()
        posts = [[m.chat_id, *p] for m in self.members for p in m.posts]
        return {"event": "posted", "posts": posts, **self._counters()}

    def _text(self, cid: str) -> str:
        head = f"{cid} {time.monotonic():.6f} "
        return head + "x" * max(0, self.size - len(head))

    async def _post_loop(self, m: Member, end: float) -> None:
        rate = 1 / self.interval
        at = time.monotonic() + self.rng.expovariate(rate)
        number = 0
        while at < end:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            # A client that is away posts when it is back, and stamps the time it really sends.
            await m.online.wait()
            cid = f"{self.tag}p{self.proc}c{m.index}n{number}"
            number += 1
            breaks = m.breaks
            sent = time.monotonic()
            post = asyncio.ensure_future(m.client.post(m.chat_id, self._text(cid), client_id=cid))
            cut = m.cut_post
            if cut is not None and not cut.done():
                # Let the request reach the socket, then let the drop loop cut it: the
                # server has stored the message or not, and the SDK's retry must not matter.
                await asyncio.sleep(0)
                if not cut.done():  # the drop loop stops waiting at the end of the window
                    cut.set_result(None)
            try:
                posted = await post
            except ClientError as exc:
                self.error("post", exc)
            else:
                ack_ms = round((time.monotonic() - sent) * 1000, 3)
                retried = int(m.breaks != breaks)
                m.posts.append([posted.seq, cid, retried, int(bool(posted.duplicate)), ack_ms])
            at += self.rng.expovariate(rate)

    async def _drop_loop(self, m: Member, end: float) -> None:
        low, high = self.drop_pause
        while True:
            wait = self.rng.expovariate(1 / self.drop_every)
            if time.monotonic() + wait >= end:
                return
            await asyncio.sleep(wait)
            if self.rng.random() < self.drop_mid_post:
                m.cut_post = asyncio.get_running_loop().create_future()
                try:
                    await asyncio.wait_for(m.cut_post, max(0.0, end - time.monotonic()))
                except TimeoutError:
                    return  # no post left in the window to cut
                finally:
                    m.cut_post = None
                # Now or a few ms later: before or after the server commits and answers.
                await asyncio.sleep(self.rng.uniform(0, 0.005))
            if not m.online.is_set():
                continue  # the server cut it meanwhile; the watcher is bringing it back
            m.online.clear()
            m.breaks += 1
            m.dropped += 1
            m.client.drop()  # no close frame: the TCP connection is simply gone
            await asyncio.sleep(self.rng.uniform(low, high))
            await self._reconnect(m)

    async def _reconnect(self, m: Member) -> None:
        m.reconnecting = m.client.reconnecting = True
        m.resuming = True
        before = len(m.seqs)
        started = time.monotonic()
        try:
            for attempt in range(RECONNECT_ATTEMPTS):
                try:
                    await m.client.connect()  # resumes every chat from the SDK's cursors
                    break
                except (OSError, ConnectionLost, ClientError, TimeoutError) as exc:
                    self.error("reconnect", repr(exc))
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                self.error("reconnect_gave_up", m.index)
                return
            # The server pushes the backlog before it answers sync, so when connect() returns
            # the client has caught up with everything posted before it asked.
            m.resume_s.append(round(time.monotonic() - started, 4))
            await asyncio.sleep(0)  # let the consumer record what the resume delivered
            m.resumed_events.append(len(m.seqs) - before)
        finally:
            m.resuming = False
            m.reconnecting = m.client.reconnecting = False
        m.online.set()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            for m in self.members:
                if m.online.is_set() and not m.client.connected and not m.reconnecting:
                    self.unexpected_breaks += 1
                    self.error("server_closed", m.client.close_code)
                    m.online.clear()
                    m.breaks += 1
                    self.spawn(self._reconnect(m))

    async def _all_online(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(m.online.is_set() for m in self.members):
                return
            await asyncio.sleep(0.1)
        self.error("still_offline", sum(not m.online.is_set() for m in self.members))

    def _counters(self) -> dict[str, Any]:
        return {
            "drops": sum(m.dropped for m in self.members),
            "resumes": sum(len(m.resume_s) for m in self.members),
            "resume_s": [s for m in self.members for s in m.resume_s],
            "resumed_events": [n for m in self.members for n in m.resumed_events],
            "unexpected_breaks": self.unexpected_breaks,
            "errors": self.errors,
            "error_samples": self.error_samples,
        }

    # --- after the window -------------------------------------------------------------

    async def settle(self, finals: dict[int, int], timeout_s: float, quiet_s: float) -> None:
        """Wait until every client has its chat's last seq, then a quiet spell for stragglers."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(m.last_seq >= finals.get(m.chat_id, 0) for m in self.members):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(quiet_s)

    def deliveries(self) -> dict[str, Any]:
        clients = [
            {
                "chat": m.chat_id,
                "start": m.start_seq,
                "seqs": m.seqs,
                "cids": m.cids,
                "latency_ms": m.latency_ms,
                "sent_at": m.sent_at,
                "live": m.live,
                "wire_stale": m.client.wire_stale,
                "wire_gaps": m.client.wire_gaps,
            }
            for m in self.members
        ]
        return {"event": "deliveries", "clients": clients, "pid": os.getpid(), **self._counters()}

    async def close(self) -> None:
        self.stopping = True
        await asyncio.gather(*(m.client.close() for m in self.members), return_exceptions=True)
        for task in list(self.tasks):
            task.cancel()


def _read_text(text: str) -> tuple[str, float]:
    cid, sent, _ = text.split(" ", 2)
    return cid, float(sent)


def _report(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    load = LoadProcess(json.loads(await reader.readline()))
    _report(await load.open())
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "start":
            _report(await load.run(command["duration"]))
        elif command["cmd"] == "settle":
            finals = {int(k): v for k, v in command["finals"].items()}
            await load.settle(finals, command["timeout"], command["quiet"])
            _report(load.deliveries())
        elif command["cmd"] == "stop":
            break
    await load.close()


if __name__ == "__main__":
    uvloop.run(main())
