"""In-process fan-out: chat events to the connections subscribed to the chat.

A committed event is encoded once, framed once, and the same bytes are handed to every
subscriber in one synchronous loop: no task, no await, no copy per recipient.
"""

from __future__ import annotations

from typing import Protocol

from protocol.messages import PUSH_CHAT, PUSH_EVENT, ChatInfo, Event, encode
from protocol.websocket import Opcode, encode_frame


class Subscriber(Protocol):
    account_id: int | None
    subscribed: set[int]

    def deliver(self, chat_id: int, seq: int, frame: bytes) -> None: ...

    def send_frame(self, frame: bytes) -> None: ...


class LocalBus:
    def __init__(self) -> None:
        self._by_chat: dict[int, set[Subscriber]] = {}
        self._by_account: dict[int, set[Subscriber]] = {}

    def attach(self, conn: Subscriber, account_id: int) -> None:
        """Register before loading the account's chats, so no ``joined`` slips between."""
        self._by_account.setdefault(account_id, set()).add(conn)

    def subscribe(self, conn: Subscriber, chat_ids: list[int]) -> None:
        for chat_id in chat_ids:
            self._by_chat.setdefault(chat_id, set()).add(conn)
        conn.subscribed.update(chat_ids)

    def detach(self, conn: Subscriber) -> None:
        if conn.account_id is not None:
            conns = self._by_account.get(conn.account_id)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._by_account[conn.account_id]
        for chat_id in conn.subscribed:
            subs = self._by_chat.get(chat_id)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del self._by_chat[chat_id]
        conn.subscribed.clear()

    # --- Notifier ----------------------------------------------------------------------

    def chat_event(self, event: Event) -> None:
        subscribers = self._by_chat.get(event.chat_id)
        if not subscribers:
            return
        frame = encode_frame(Opcode.BINARY, encode(PUSH_EVENT, 0, event))
        chat_id, seq = event.chat_id, event.seq
        for conn in subscribers:
            conn.deliver(chat_id, seq, frame)

    def joined(self, account_id: int, chat: ChatInfo) -> None:
        conns = self._by_account.get(account_id)
        if not conns:
            return
        frame = encode_frame(Opcode.BINARY, encode(PUSH_CHAT, 0, chat))
        for conn in conns:
            self.subscribe(conn, [chat.id])
            conn.send_frame(frame)

    def connections(self, account_id: int) -> int:
        return len(self._by_account.get(account_id, ()))
