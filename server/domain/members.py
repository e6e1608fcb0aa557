"""Membership people manage themselves (removing, roles, leaving, settings, invite links),
each member's own view (clear history, mute), direct chats, blocks, and moderation.

Safety rules: a direct chat opens only between people who already share a chat, so
nobody reaches a student out of the blue, and people are never found by phone number; a
block stops direct messages both ways; a report goes to the chat's admins and to the
school's teachers and staff, who can remove the message, remove or silence the member,
or dismiss it.
"""

from __future__ import annotations

import secrets

from protocol.errors import ErrorCode
from protocol.messages import ChatInfo, InviteInfo, ReportInfo, Role
from server.domain.chats import ChatService
from server.domain.clock import Clock
from server.domain.errors import DomainError
from server.domain.messages import MessageService
from server.security import hash_token
from server.store import Store
from server.store.chats import MembershipChange


class MemberService:
    def __init__(
        self, store: Store, chats: ChatService, messages: MessageService, clock: Clock
    ) -> None:
        self._store = store
        self._chats = chats
        self._messages = messages
        self._clock = clock

    async def remove(self, actor_id: int, chat_id: int, account_id: int) -> None:
        await self._messages.access(actor_id, chat_id, "remove_member")
        target = await self._store.messages.member_state(chat_id, account_id)
        if target is None:
            raise DomainError(ErrorCode.NOT_FOUND, "not a member")
        if target.role == "owner":
            raise DomainError(ErrorCode.FORBIDDEN, "the owner cannot be removed")
        await self._leave(chat_id, account_id, actor_id)

    async def _leave(self, chat_id: int, account_id: int, actor_id: int) -> None:
        event = await self._store.chats.remove_member(chat_id, account_id, actor_id, self._clock())
        if event is not None:
            await self._chats.publish([MembershipChange("left", account_id, event)])

    async def leave(self, actor_id: int, chat_id: int) -> None:
        await self._messages.access(actor_id, chat_id, "leave")
        await self._leave(chat_id, actor_id, actor_id)

    async def set_role(self, actor_id: int, chat_id: int, account_id: int, role: Role) -> None:
        await self._messages.access(actor_id, chat_id, "set_role")
        target = await self._store.messages.member_state(chat_id, account_id)
        if target is None:
            raise DomainError(ErrorCode.NOT_FOUND, "not a member")
        if target.role == "owner" or role == "owner":
            raise DomainError(ErrorCode.FORBIDDEN, "the owner's role does not change")
        event = await self._store.chats.set_role(chat_id, account_id, role, actor_id, self._clock())
        if event is not None:
            await self._chats.publish([MembershipChange("role", account_id, event)])

    async def settings(
        self, actor_id: int, chat_id: int, title: str | None, closed: bool | None
    ) -> None:
        if title is not None:
            await self._messages.access(actor_id, chat_id, "rename")
            title = " ".join(title.split())
            if not title:
                raise DomainError(ErrorCode.VALIDATION_FAILED, "a chat needs a title")
        if closed is not None:
            await self._messages.access(actor_id, chat_id, "set_closed")
        for event in await self._store.chats.settings(
            chat_id, actor_id, self._clock(), title, closed
        ):
            self._chats.notify_event(event)

    async def clear(self, actor_id: int, chat_id: int) -> None:
        await self._messages.access(actor_id, chat_id, "clear")
        await self._store.messages.clear(chat_id, actor_id)

    async def mute(self, actor_id: int, chat_id: int, muted: bool) -> None:
        await self._messages.access(actor_id, chat_id, "mute")
        await self._store.messages.mute(chat_id, actor_id, muted)

    # --- invite links ---------------------------------------------------------------------

    async def create_invite(self, actor_id: int, chat_id: int, ttl_s: int) -> InviteInfo:
        await self._messages.access(actor_id, chat_id, "invite")
        token = secrets.token_urlsafe(16)
        now = self._clock()
        invite = await self._store.safety.create_invite(
            hash_token(token), chat_id, actor_id, now, now + ttl_s * 1000
        )
        return InviteInfo(id=invite.id, expires_at=invite.expires_at, uses=0, token=token)

    async def invites(self, actor_id: int, chat_id: int) -> list[InviteInfo]:
        await self._messages.access(actor_id, chat_id, "invite")
        return [
            InviteInfo(id=i.id, expires_at=i.expires_at, uses=i.uses, revoked=i.revoked)
            for i in await self._store.safety.invites(chat_id)
        ]

    async def revoke_invite(self, actor_id: int, chat_id: int, invite_id: str) -> None:
        await self._messages.access(actor_id, chat_id, "invite")
        if not await self._store.safety.revoke_invite(chat_id, invite_id):
            raise DomainError(ErrorCode.NOT_FOUND, "no such invite")

    async def preview(self, token: str) -> tuple[str, int]:
        """What an invite leads to (title, member count), before joining."""
        found = await self._store.safety.invite_target(hash_token(token), self._clock())
        if isinstance(found, str):
            raise _invite_refused(found)
        return found

    async def join(self, actor_id: int, token: str) -> ChatInfo:
        used = await self._store.safety.use_invite(hash_token(token), actor_id, self._clock())
        if isinstance(used, str):
            raise _invite_refused(used)
        chat_id, event = used
        if event is not None:
            await self._chats.publish([MembershipChange("joined", actor_id, event)])
        return await self._chats.chat_info(actor_id, chat_id)

    # --- direct chats and blocks ---------------------------------------------------------

    async def direct(self, actor_id: int, other_id: int) -> ChatInfo:
        if other_id == actor_id:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "a direct chat needs another person")
        if not await self._store.safety.share_a_chat(actor_id, other_id):
            # Students are never reachable by strangers: only people who share a chat.
            raise DomainError(
                ErrorCode.FORBIDDEN, "you can write only to people you share a chat with"
            )
        if await self._store.safety.blocked_between(actor_id, other_id):
            raise DomainError(ErrorCode.FORBIDDEN, "you cannot write to this person")
        chat_id, created = await self._store.safety.direct(actor_id, other_id, self._clock())
        if created is not None:
            await self._chats.publish(
                [
                    MembershipChange("joined", actor_id, created),
                    MembershipChange("joined", other_id, created),
                ]
            )
        return await self._chats.chat_info(actor_id, chat_id)

    async def block(self, actor_id: int, other_id: int, on: bool) -> None:
        if other_id == actor_id:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "you cannot block yourself")
        await self._store.safety.block(actor_id, other_id, on, self._clock())

    # --- reports and moderation --------------------------------------------------------------

    async def report(self, actor_id: int, chat_id: int, seq: int, reason: str) -> None:
        await self._messages.access(actor_id, chat_id, "report")
        message = await self._store.messages.message(chat_id, seq)
        if message is None or message.deleted:
            raise DomainError(ErrorCode.NOT_FOUND, f"no message {seq} in chat {chat_id}")
        await self._store.safety.report(chat_id, seq, actor_id, reason.strip(), self._clock())

    async def reports(self, actor_id: int, chat_id: int | None) -> list[ReportInfo]:
        found = await self._store.safety.open_reports(actor_id, chat_id)
        return [
            ReportInfo(
                id=r.id,
                chat_id=r.chat_id,
                seq=r.seq,
                reporter_id=r.reporter_id,
                reason=r.reason,
                status=r.status,
                created_at=r.created_at,
                message=await self._store.messages.message(r.chat_id, r.seq),
            )
            for r in found
        ]

    async def resolve(self, actor_id: int, report_id: int, action: str, minutes: int) -> None:
        report = await self._store.safety.get_report(report_id)
        if report is None or report.status != "open":
            raise DomainError(ErrorCode.NOT_FOUND, "no open report with that id")
        if report_id not in {r.id for r in await self._store.safety.open_reports(actor_id, None)}:
            raise DomainError(ErrorCode.FORBIDDEN, "only the chat's admins and school staff act")
        message = await self._store.messages.message(report.chat_id, report.seq)
        author = message.actor_id if message is not None else 0
        now = self._clock()
        if action == "remove_message" and message is not None and not message.deleted:
            self._chats.notify_event(
                await self._store.messages.delete(report.chat_id, report.seq, actor_id, now)
            )
        elif action == "remove_member" and author:
            state = await self._store.messages.member_state(report.chat_id, author)
            if state is not None and state.role != "owner":
                await self._leave(report.chat_id, author, actor_id)
        elif action == "silence_member" and author:
            await self._store.messages.silence(report.chat_id, author, now + minutes * 60_000)
        await self._store.safety.resolve(report_id, action, actor_id, now)


def _invite_refused(why: str) -> DomainError:
    message = {
        "unknown": "this invite link does not exist",
        "expired": "this invite link has expired",
        "revoked": "this invite link was revoked",
    }[why]
    return DomainError(ErrorCode.NOT_FOUND, message)
