"""What the rules tell the world after a commit; the bus implements it."""

from __future__ import annotations

from typing import Protocol

from protocol.messages import ChatInfo, Event


class Notifier(Protocol):
    def chat_event(self, event: Event) -> None:
        """Fan a committed event out to everyone subscribed to its chat."""

    def joined(self, account_id: int, chat: ChatInfo) -> None:
        """The account became a member: subscribe its connections and tell them."""

    def left(self, account_id: int, chat_id: int) -> None:
        """The account is no longer a member: its connections stop receiving the chat."""
