"""In-process fan-out: chat events to the connections subscribed to the chat.

A committed event is encoded once and framed once. Events are gathered per chat during a
loop tick; at the tick's end each chat's frames (joined, when several) are written to every
subscriber in one synchronous loop: the same bytes for all, no task, no await, no copy and
no per-recipient encoding. A connection that is resuming the chat gets them one by one
through ``deliver`` instead, so it can hold back what its resume has not reached yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from protocol.messages import PUSH_CHAT, PUSH_EVENT, Body, ChatInfo, Event, encode
from protocol.websocket import Opcode, encode_frame


class Subscriber(Protocol):
    account_id: int | None
    subscribed: list[int]
    syncing: dict[int, list[tuple[int, bytes]]] | None
    paused_since: float

    @property
    def transport(self) -> asyncio.WriteTransport: ...

    def deliver(self, chat_id: int, seq: int, frame: bytes) -> None: ...

    def send_frame(self, frame: bytes) -> None: ...

    def check_backlog(self) -> None: ...


class TickScheduler(Protocol):
    def at_tail(self, flush: Callable[[], None]) -> None: ...


class LocalBus:
    def __init__(self, flusher: TickScheduler) -> None:
        self._flusher = flusher
        self._by_chat: dict[int, set[Subscriber]] = {}
        # Usually one connection per account: a list is a third of a set's size.
        self._by_account: dict[int, list[Subscriber]] = {}
        self._pending: dict[int, list[tuple[int, bytes]]] = {}

    def attach(self, conn: Subscriber, account_id: int) -> None:
        """Register before loading the account's chats, so no ``joined`` slips between."""
        conns = self._by_account.get(account_id)
        if conns is None:
            self._by_account[account_id] = [conn]
        elif conn not in conns:
            conns.append(conn)

    def subscribe(self, conn: Subscriber, chat_ids: list[int]) -> None:
        for chat_id in chat_ids:
            subs = self._by_chat.get(chat_id)
            if subs is None:
                self._by_chat[chat_id] = {conn}
            elif conn not in subs:
                subs.add(conn)
            else:
                continue
            conn.subscribed.append(chat_id)

    def detach(self, conn: Subscriber) -> None:
        """Forget a connection (idempotent): it closed or is closing."""
        account_id = conn.account_id
        if account_id is not None:
            conns = self._by_account.get(account_id)
            if conns is not None and conn in conns:
                conns.remove(conn)
                if not conns:
                    del self._by_account[account_id]
        for chat_id in conn.subscribed:
            subs = self._by_chat.get(chat_id)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del self._by_chat[chat_id]
        conn.subscribed.clear()

    # --- Notifier ----------------------------------------------------------------------

    def chat_event(self, event: Event) -> None:
        if event.chat_id not in self._by_chat:
            return
        frame = encode_frame(Opcode.BINARY, encode(PUSH_EVENT, 0, event))
        if not self._pending:
            self._flusher.at_tail(self._flush)
        self._pending.setdefault(event.chat_id, []).append((event.seq, frame))

    def joined(self, account_id: int, chat: ChatInfo) -> None:
        conns = self._by_account.get(account_id)
        if not conns:
            return
        frame = encode_frame(Opcode.BINARY, encode(PUSH_CHAT, 0, chat))
        for conn in conns:
            self.subscribe(conn, [chat.id])
            conn.send_frame(frame)

    def signal(self, chat_id: int, push_type: str, body: Body) -> None:
        """A push that is not kept on the log (typing, read marks): now, to whoever listens."""
        subscribers = self._by_chat.get(chat_id)
        if not subscribers:
            return
        frame = encode_frame(Opcode.BINARY, encode(push_type, 0, body))
        for conn in subscribers:
            conn.send_frame(frame)

    def left(self, account_id: int, chat_id: int) -> None:
        subs = self._by_chat.get(chat_id)
        # What this tick still holds for the chat (the removal itself) goes to them first.
        pending = self._pending.get(chat_id, ())
        for conn in self._by_account.get(account_id, ()):
            if subs is not None and conn in subs:
                subs.discard(conn)
                for _, frame in pending:
                    conn.send_frame(frame)
            if chat_id in conn.subscribed:
                conn.subscribed.remove(chat_id)
        if subs is not None and not subs:
            del self._by_chat[chat_id]

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        for chat_id, frames in pending.items():
            subscribers = self._by_chat.get(chat_id)
            if not subscribers:
                continue
            data = frames[0][1] if len(frames) == 1 else b"".join(f for _, f in frames)
            for conn in subscribers:
                if conn.syncing is None:
                    conn.transport.write(data)
                    if conn.paused_since:
                        conn.check_backlog()
                else:
                    for seq, frame in frames:
                        conn.deliver(chat_id, seq, frame)

    def connections(self, account_id: int) -> int:
        return len(self._by_account.get(account_id, ()))
