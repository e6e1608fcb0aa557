"""Chats: who may do what, and what a change tells the members."""

from __future__ import annotations

import msgspec

from protocol.errors import ErrorCode
from protocol.messages import ChatInfo, Event, Member, Role
from server.domain.access import access
from server.domain.clock import Clock
from server.domain.errors import DomainError, FieldError
from server.domain.notify import Notifier
from server.store import Store
from server.store.chats import MembershipChange

MAX_SYNC_PAGE = 500


class ChatService:
    def __init__(self, store: Store, notifier: Notifier, clock: Clock) -> None:
        self._store = store
        self._notify = notifier
        self._clock = clock

    async def _require_profiles(self, account_ids: list[int]) -> None:
        found = await self._store.accounts.with_profiles(account_ids)
        missing = [a for a in account_ids if a not in found]
        if missing:
            raise DomainError(
                ErrorCode.VALIDATION_FAILED,
                "some accounts have no educational profile",
                errors=tuple(FieldError("member_ids", f"unknown account {a}") for a in missing),
            )

    async def create(self, actor_id: int, title: str, member_ids: list[int]) -> ChatInfo:
        title = " ".join(title.split())
        if not title:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "a chat needs a title")
        others = sorted(set(member_ids) - {actor_id})
        await self._require_profiles(others)
        members: list[tuple[int, Role]] = [(actor_id, "owner"), *((a, "member") for a in others)]
        chat_id, event = await self._store.chats.create(
            "manual", title, actor_id, members, self._clock()
        )
        for account_id, role in members:
            self._notify.joined(account_id, _fresh_info(chat_id, title, role, len(members), event))
        self._notify.chat_event(event)
        return _fresh_info(chat_id, title, "owner", len(members), event)

    async def add_member(self, actor_id: int, chat_id: int, account_id: int, role: Role) -> None:
        checked = await access(self._store, actor_id, chat_id, "add_member")
        if role != "member" and not checked.may("set_role"):
            raise DomainError(ErrorCode.FORBIDDEN, "only the chat's owner and admins grant roles")
        if role == "owner":
            raise DomainError(ErrorCode.FORBIDDEN, "a chat has one owner")
        await self._require_profiles([account_id])
        event = await self._store.chats.add_member(
            chat_id, account_id, role, actor_id, self._clock()
        )
        if event is None:
            return
        info = await self._store.chats.chat_info(chat_id, account_id)
        if info is not None:
            self._notify.joined(account_id, _before(info, event))
        self._notify.chat_event(event)

    async def history(
        self, actor_id: int, chat_id: int, before_seq: int | None, limit: int
    ) -> tuple[list[Event], bool]:
        """A page of the log, messages as they stand now, after the actor's cleared point."""
        checked = await access(self._store, actor_id, chat_id)
        events, has_more = await self._store.chats.history(
            chat_id, before_seq, limit, checked.state.cleared_seq
        )
        return await self._store.messages.current(events), has_more

    async def events_after(self, actor_id: int, chat_id: int, after_seq: int) -> list[Event]:
        """One page of what the actor missed in a chat (up to ``MAX_SYNC_PAGE`` events)."""
        checked = await access(self._store, actor_id, chat_id)
        return await self._store.chats.events_after(
            chat_id, after_seq, MAX_SYNC_PAGE, checked.state.cleared_seq
        )

    async def may_post(self, actor_id: int, chat_id: int) -> None:
        """Refuses unless the actor may post in the chat now (member, not silenced)."""
        checked = await access(self._store, actor_id, chat_id, "post")
        if checked.state.silenced_until > self._clock():
            raise DomainError(ErrorCode.FORBIDDEN, "a moderator muted you in this chat for a while")

    async def chat_info(self, actor_id: int, chat_id: int) -> ChatInfo:
        info = await self._store.chats.chat_info(chat_id, actor_id)
        if info is None:
            raise DomainError(ErrorCode.NOT_MEMBER, f"you are not a member of chat {chat_id}")
        return info

    async def publish(self, changes: list[MembershipChange]) -> None:
        """Tell everyone about membership changes already committed (by the roster,
        a link, a journal's edit): the event to the chat, the chat to whoever joined."""
        for change in changes:
            event = change.event
            if change.change == "joined":
                info = await self._store.chats.chat_info(event.chat_id, change.account_id)
                if info is not None:
                    self._notify.joined(change.account_id, _before(info, event))
            self._notify.chat_event(event)
            if change.change == "left":
                self._notify.left(change.account_id, event.chat_id)

    def notify_event(self, event: Event) -> None:
        self._notify.chat_event(event)

    async def sync_roster(self, chat_ids: list[int]) -> int:
        """Bring members in line with the journal's roster for these chats; changes made."""
        changes = await self._store.journal_chats.sync(chat_ids, self._clock())
        await self.publish(changes)
        return len(changes)

    async def chats(self, actor_id: int) -> list[ChatInfo]:
        return await self._store.chats.chats_of(actor_id)

    async def chat_list(self, actor_id: int) -> tuple[list[ChatInfo], list[Event]]:
        """The chats, and each one's latest message as it stands now (edits, reactions)."""
        chats, last = await self._store.chats.chats_with_last(actor_id)
        current = [m for event in last for m in await self._store.messages.current([event])]
        return chats, current

    async def chat_ids(self, actor_id: int) -> list[int]:
        return await self._store.chats.chat_ids_of(actor_id)

    async def members(self, actor_id: int, chat_id: int) -> list[Member]:
        await access(self._store, actor_id, chat_id)
        return await self._store.chats.members(chat_id)


def _fresh_info(chat_id: int, title: str, role: Role, count: int, created: Event) -> ChatInfo:
    info = ChatInfo(
        id=chat_id,
        kind="manual",
        title=title,
        role=role,
        member_count=count,
        last_seq=created.seq,
        read_seq=0,
        unread=0,
    )
    return _before(info, created)


def _before(info: ChatInfo, joined: Event) -> ChatInfo:
    """A chat as pushed on join: its log starts for the member right before the join event,
    which reaches them next as a live event."""
    return msgspec.structs.replace(info, last_seq=joined.seq - 1)
