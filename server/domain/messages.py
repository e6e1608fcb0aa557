"""Messages: posting (replies, mentions, attachments, polls, forwards), and what comes after
(edits within a time limit, deletion for everyone, reactions, pins, votes), plus the
signals that are not kept (typing, read marks)."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from protocol.errors import ErrorCode
from protocol.messages import (
    PUSH_READ,
    PUSH_TYPING,
    Attachment,
    Body,
    ChatPost,
    Event,
    Forwarded,
    Poll,
    ReadMark,
    Typing,
)
from server.domain.access import Access, access
from server.domain.clock import Clock
from server.domain.errors import DomainError
from server.domain.permissions import Action
from server.store import Store
from server.store.files import FileRecord

TYPING_EVERY_MS = 2000


class Signals(Protocol):
    """Pushes that are not kept on the log (the bus implements it)."""

    def chat_event(self, event: Event) -> None: ...

    def signal(self, chat_id: int, push_type: str, body: Body) -> None: ...


def attachment(record: FileRecord) -> Attachment:
    """What a message shows of a file."""
    return Attachment(
        id=record.id,
        kind=record.kind,
        mime=record.mime,
        size=record.size,
        name=record.name,
        width=record.width,
        height=record.height,
        duration_ms=record.duration_ms,
        waveform=list(record.waveform) if record.waveform else None,
        thumbnail=record.thumb_sha256 is not None,
    )


class MessageService:
    def __init__(
        self,
        store: Store,
        signals: Signals,
        clock: Clock,
        *,
        edit_window_s: int,
    ) -> None:
        self._store = store
        self._signals = signals
        self._clock = clock
        self._edit_window_ms = edit_window_s * 1000
        self._typing: dict[tuple[int, int], int] = {}

    async def access(self, actor_id: int, chat_id: int, action: Action | None = None) -> Access:
        return await access(self._store, actor_id, chat_id, action)

    async def _message(self, chat_id: int, seq: int) -> Event:
        message = await self._store.messages.message(chat_id, seq)
        if message is None or message.deleted:
            raise DomainError(ErrorCode.NOT_FOUND, f"no message {seq} in chat {chat_id}")
        return message

    # --- posting ----------------------------------------------------------------------------

    async def post(self, actor_id: int, request: ChatPost) -> tuple[Event, bool]:
        """Append a message; returns (event, duplicate). Nothing is sent before commit."""
        chat_id = request.chat_id
        checked = await self.access(actor_id, chat_id, "post")
        now = self._clock()
        if checked.state.silenced_until > now:
            raise DomainError(ErrorCode.FORBIDDEN, "a moderator muted you in this chat for a while")
        if checked.sort == "direct" and await self._direct_blocked(actor_id, chat_id):
            raise DomainError(ErrorCode.FORBIDDEN, "you cannot write to this person")
        text = request.text
        attachments = [await self._attachment(chat_id, file_id) for file_id in request.attachments]
        poll = None
        if request.poll is not None:
            spec = request.poll
            poll = Poll(
                question=spec.question,
                options=spec.options,
                multiple=spec.multiple,
                anonymous=spec.anonymous,
                votes=[0] * len(spec.options),
            )
        forwarded = None
        if request.forward is not None:
            source = await self._forwardable(actor_id, request.forward.chat_id, request.forward.seq)
            forwarded = Forwarded(actor_id=source.actor_id, at=source.at)
            text = text or source.text or ""
            if not attachments:
                # Files belong to a chat: the forwarded copies belong to this one.
                attachments = [
                    await self._copy_file(a.id, chat_id, actor_id) for a in source.attachments or ()
                ]
        if not text.strip() and not attachments and poll is None:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "an empty message")
        if request.reply_to is not None:
            await self._message(chat_id, request.reply_to)
        mentions = None
        if request.mentions:
            members = {m.account_id for m in await self._store.chats.members(chat_id)}
            mentions = [a for a in dict.fromkeys(request.mentions) if a in members] or None
        event = Event(
            chat_id=chat_id,
            seq=0,
            kind="message",
            actor_id=actor_id,
            at=now,
            client_id=request.client_id,
            text=text or None,
            reply_to=request.reply_to,
            mentions=mentions,
            attachments=attachments or None,
            poll=poll,
            forwarded=forwarded,
        )
        posted, duplicate = await self._store.messages.post(event, poll)
        if not duplicate:
            self._signals.chat_event(posted)
        return posted, duplicate

    async def _attachment(self, chat_id: int, file_id: int) -> Attachment:
        record = await self._store.files.get(file_id)
        if record is None or record.chat_id != chat_id:
            raise DomainError(ErrorCode.NOT_FOUND, f"no file {file_id} uploaded to this chat")
        return attachment(record)

    async def _copy_file(self, file_id: int, chat_id: int, actor_id: int) -> Attachment:
        record = await self._store.files.get(file_id)
        if record is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"the forwarded file {file_id} is gone")
        copy = await self._store.files.insert(
            dataclasses.replace(record, id=0, chat_id=chat_id, uploader_id=actor_id)
        )
        return attachment(copy)

    async def _forwardable(self, actor_id: int, chat_id: int, seq: int) -> Event:
        await self.access(actor_id, chat_id)
        return await self._message(chat_id, seq)

    async def _direct_blocked(self, actor_id: int, chat_id: int) -> bool:
        members = [m.account_id for m in await self._store.chats.members(chat_id)]
        other = next((m for m in members if m != actor_id), None)
        return other is not None and await self._store.safety.blocked_between(actor_id, other)

    # --- after posting ------------------------------------------------------------------------

    async def edit(self, actor_id: int, chat_id: int, seq: int, text: str) -> None:
        await self.access(actor_id, chat_id, "edit_own")
        message = await self._message(chat_id, seq)
        if message.actor_id != actor_id:
            raise DomainError(ErrorCode.FORBIDDEN, "only the author edits a message")
        now = self._clock()
        if now - message.at > self._edit_window_ms:
            raise DomainError(ErrorCode.FORBIDDEN, "too late to edit this message")
        if not text.strip():
            raise DomainError(ErrorCode.VALIDATION_FAILED, "an empty message")
        self._signals.chat_event(await self._store.messages.edit(chat_id, seq, actor_id, text, now))

    async def delete(self, actor_id: int, chat_id: int, seq: int) -> None:
        checked = await self.access(actor_id, chat_id)
        message = await self._message(chat_id, seq)
        if not checked.may("delete_own" if message.actor_id == actor_id else "delete_any"):
            raise DomainError(ErrorCode.FORBIDDEN, "only the author or the chat's admins delete")
        self._signals.chat_event(
            await self._store.messages.delete(chat_id, seq, actor_id, self._clock())
        )

    async def react(self, actor_id: int, chat_id: int, seq: int, emoji: str, on: bool) -> None:
        await self.access(actor_id, chat_id, "react")
        await self._message(chat_id, seq)
        event = await self._store.messages.react(chat_id, seq, actor_id, emoji, on, self._clock())
        if event is not None:
            self._signals.chat_event(event)

    async def pin(self, actor_id: int, chat_id: int, seq: int, on: bool) -> None:
        await self.access(actor_id, chat_id, "pin")
        await self._message(chat_id, seq)
        event = await self._store.messages.pin(chat_id, seq, actor_id, on, self._clock())
        if event is not None:
            self._signals.chat_event(event)

    async def _poll(self, chat_id: int, seq: int) -> tuple[Event, tuple[bool, bool, int]]:
        message = await self._message(chat_id, seq)
        state = await self._store.messages.poll_state(chat_id, seq)
        if message.poll is None or state is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"message {seq} is not a poll")
        return message, state

    async def vote(self, actor_id: int, chat_id: int, seq: int, options: list[int]) -> None:
        await self.access(actor_id, chat_id, "vote")
        message, (closed, multiple, count) = await self._poll(chat_id, seq)
        if closed:
            raise DomainError(ErrorCode.CONFLICT, "the poll is closed")
        chosen = sorted(set(options))
        if any(option >= count for option in chosen):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "no such option")
        if len(chosen) > 1 and not multiple:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "this poll takes one answer")
        assert message.poll is not None
        event = await self._store.messages.vote(
            chat_id, seq, actor_id, chosen, message.poll, self._clock()
        )
        self._signals.chat_event(event)

    async def close_poll(self, actor_id: int, chat_id: int, seq: int) -> None:
        checked = await self.access(actor_id, chat_id)
        message, (closed, _, _) = await self._poll(chat_id, seq)
        if message.actor_id != actor_id and not checked.may("close_any_poll"):
            raise DomainError(ErrorCode.FORBIDDEN, "only the author or the chat's admins close it")
        if closed:
            return
        assert message.poll is not None
        self._signals.chat_event(
            await self._store.messages.close_poll(
                chat_id, seq, actor_id, message.poll, self._clock()
            )
        )

    # --- what is not kept ----------------------------------------------------------------------

    async def typing(self, actor_id: int, chat_id: int) -> None:
        await self.access(actor_id, chat_id, "post")
        now = self._clock()
        key = (actor_id, chat_id)
        if now - self._typing.get(key, 0) < TYPING_EVERY_MS:
            return  # at most one signal every two seconds per person and chat
        if len(self._typing) > 100_000:
            self._typing.clear()
        self._typing[key] = now
        self._signals.signal(chat_id, PUSH_TYPING, Typing(chat_id=chat_id, account_id=actor_id))

    async def mark_read(self, actor_id: int, chat_id: int, seq: int) -> None:
        await self.access(actor_id, chat_id)
        await self._store.chats.mark_read(chat_id, actor_id, seq)
        self._signals.signal(
            chat_id, PUSH_READ, ReadMark(chat_id=chat_id, account_id=actor_id, seq=seq)
        )

    async def search(
        self, actor_id: int, query: str, chat_id: int | None, limit: int
    ) -> list[Event]:
        if chat_id is not None:
            await self.access(actor_id, chat_id)
        return await self._store.messages.search(actor_id, query, chat_id, limit)

    async def current(self, events: list[Event]) -> list[Event]:
        """Messages as they stand now (reactions, pins, poll results) for a history page."""
        return await self._store.messages.current(events)
