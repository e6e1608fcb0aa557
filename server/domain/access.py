"""Membership and permission checks shared by every rule about chats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from protocol.errors import ErrorCode
from server.domain.errors import DomainError
from server.domain.permissions import Action, Sort, allowed
from server.store import Store
from server.store.messages import MemberState


@dataclass(frozen=True, slots=True)
class Access:
    state: MemberState
    sort: Sort

    def may(self, action: Action) -> bool:
        return allowed(self.state.role, self.sort, action)


async def access(store: Store, actor_id: int, chat_id: int, action: Action | None = None) -> Access:
    """The actor's membership and the chat's sort; refused unless ``action`` is allowed."""
    state = await store.messages.member_state(chat_id, actor_id)
    if state is None:
        raise DomainError(ErrorCode.NOT_MEMBER, f"you are not a member of chat {chat_id}")
    meta = await store.journal_chats.meta(chat_id)
    sort = cast(Sort, meta.sort if meta is not None else "manual")
    result = Access(state, sort)
    if action is not None and not result.may(action):
        raise DomainError(ErrorCode.FORBIDDEN, f"{action.replace('_', ' ')} is not allowed here")
    return result
