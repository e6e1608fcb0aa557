"""The dispatcher: a decoded request → the rule that serves it → the reply frame."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from protocol.errors import CloseCode, ErrorCode
from protocol.messages import (
    PUSH_CHAT,
    PUSH_EVENT,
    Auth,
    AuthOk,
    Body,
    CallAnswer,
    CallJoin,
    CallLayer,
    CallLeave,
    CallOffer,
    ChatAddMember,
    ChatCreate,
    ChatCreated,
    ChatHistory,
    ChatList,
    ChatListResult,
    ChatMembers,
    ChatMembersResult,
    ChatPost,
    ChatRead,
    Done,
    HistoryResult,
    Posted,
    ProtocolError,
    Request,
    Sync,
    SyncResult,
    decode_request,
    encode,
    encode_error,
    encode_ok,
)
from server.bus.local import LocalBus
from server.domain.auth import AuthService
from server.domain.calls import CallService
from server.domain.chats import MAX_SYNC_PAGE, ChatService
from server.domain.errors import DomainError
from server.gateway.websocket import WsConnection
from server.store import Store

logger = logging.getLogger("parta.dispatch")

RequestHandler = Callable[[WsConnection, int, Any], Awaitable[Body]]


class Dispatcher:
    def __init__(
        self, auth: AuthService, chats: ChatService, calls: CallService, store: Store, bus: LocalBus
    ) -> None:
        self._auth = auth
        self._chats = chats
        self._calls = calls
        self._leaving: set[asyncio.Task[None]] = set()
        self._store = store
        self._bus = bus
        self._handlers: dict[type[Request], RequestHandler] = {
            ChatCreate: self._chat_create,
            ChatAddMember: self._chat_add_member,
            ChatList: self._chat_list,
            ChatMembers: self._chat_members,
            ChatPost: self._chat_post,
            ChatHistory: self._chat_history,
            Sync: self._sync,
            ChatRead: self._chat_read,
            CallJoin: self._call_join,
            CallOffer: self._call_offer,
            CallLayer: self._call_layer,
            CallLeave: self._call_leave,
        }

    async def handle(self, conn: WsConnection, frame: bytes) -> None:
        try:
            request_id, request = decode_request(frame)
        except ProtocolError as exc:
            if conn.account_id is None:
                conn.close(CloseCode.UNAUTHENTICATED, "the first message must be auth")
            else:
                conn.send_message(encode_error(exc.request_id, exc.code, exc.message))
            return
        if isinstance(request, Auth):
            await self._authenticate(conn, request_id, request.token)
            return
        if conn.account_id is None:
            conn.close(CloseCode.UNAUTHENTICATED, "the first message must be auth")
            return
        try:
            await self._require_profile(conn)
            body = await self._handlers[type(request)](conn, conn.account_id, request)
        except DomainError as exc:
            conn.send_message(encode_error(request_id, exc.code, exc.message))
        except Exception:
            logger.exception("request failed", extra={"type": request.type})
            conn.send_message(encode_error(request_id, ErrorCode.INTERNAL, "internal error"))
        else:
            conn.send_message(encode_ok(request_id, body))

    def closed(self, conn: WsConnection) -> None:
        self._bus.detach(conn)
        if self._calls.in_call(conn):
            task = asyncio.get_running_loop().create_task(self._calls.leave(conn))
            self._leaving.add(task)
            task.add_done_callback(self._leaving.discard)

    async def _authenticate(self, conn: WsConnection, request_id: int, token: str) -> None:
        if conn.account_id is not None:
            conn.send_message(
                encode_error(request_id, ErrorCode.ALREADY_AUTHENTICATED, "already authenticated")
            )
            return
        session = await self._auth.session(token)
        if session is None:
            conn.close(CloseCode.UNAUTHENTICATED, "invalid or expired token")
            return
        account_id, has_profile = session
        conn.authenticated(account_id, has_profile)
        self._bus.attach(conn, account_id)
        self._bus.subscribe(conn, await self._chats.chat_ids(account_id))
        if request_id:
            conn.send_message(
                encode_ok(request_id, AuthOk(account_id=account_id, has_profile=has_profile))
            )

    async def _require_profile(self, conn: WsConnection) -> None:
        if conn.has_profile:
            return
        assert conn.account_id is not None
        # The profile may have been created over HTTP after this socket authenticated.
        conn.has_profile = await self._store.accounts.get_profile(conn.account_id) is not None
        if not conn.has_profile:
            raise DomainError(ErrorCode.PROFILE_REQUIRED, "create your educational profile first")

    # --- handlers ----------------------------------------------------------------------

    async def _chat_create(self, conn: WsConnection, actor: int, req: ChatCreate) -> Body:
        return ChatCreated(chat=await self._chats.create(actor, req.title, req.member_ids))

    async def _chat_add_member(self, conn: WsConnection, actor: int, req: ChatAddMember) -> Body:
        await self._chats.add_member(actor, req.chat_id, req.account_id, req.role)
        return Done()

    async def _chat_list(self, conn: WsConnection, actor: int, req: ChatList) -> Body:
        return ChatListResult(chats=await self._chats.chats(actor))

    async def _chat_members(self, conn: WsConnection, actor: int, req: ChatMembers) -> Body:
        return ChatMembersResult(members=await self._chats.members(actor, req.chat_id))

    async def _chat_post(self, conn: WsConnection, actor: int, req: ChatPost) -> Body:
        event, duplicate = await self._chats.post(actor, req.chat_id, req.client_id, req.text)
        return Posted(seq=event.seq, at=event.at, duplicate=duplicate)

    async def _chat_history(self, conn: WsConnection, actor: int, req: ChatHistory) -> Body:
        events, has_more = await self._chats.history(actor, req.chat_id, req.before_seq, req.limit)
        return HistoryResult(events=events, has_more=has_more)

    async def _chat_read(self, conn: WsConnection, actor: int, req: ChatRead) -> Body:
        await self._chats.mark_read(actor, req.chat_id, req.seq)
        return Done()

    async def _call_join(self, conn: WsConnection, actor: int, req: CallJoin) -> Body:
        return await self._calls.join(conn, actor, req.chat_id)

    async def _call_offer(self, conn: WsConnection, actor: int, req: CallOffer) -> Body:
        sdp = await self._calls.offer(conn, req.sdp, req.sources, req.subscriptions)
        return CallAnswer(sdp=sdp)

    async def _call_layer(self, conn: WsConnection, actor: int, req: CallLayer) -> Body:
        await self._calls.layer(conn, req.track_id, req.layer)
        return Done()

    async def _call_leave(self, conn: WsConnection, actor: int, req: CallLeave) -> Body:
        await self._calls.leave(conn)
        return Done()

    async def _sync(self, conn: WsConnection, actor: int, req: Sync) -> Body:
        """Send what the client missed, chat by chat, before any newer live event."""
        cursors = dict(req.cursors)
        member_of = await self._chats.chat_ids(actor)
        resuming = {chat_id for chat_id in member_of if chat_id in cursors}
        conn.hold(resuming)
        done: list[tuple[int, int]] = []
        try:
            for chat_id in sorted(member_of):
                if chat_id not in resuming:
                    info = await self._chats.chat_info(actor, chat_id)
                    conn.send_message(encode(PUSH_CHAT, 0, info))
                    done.append((chat_id, info.last_seq))
                    continue
                after = cursors[chat_id]
                while True:
                    events = await self._chats.events_after(actor, chat_id, after)
                    for event in events:
                        conn.send_message(encode(PUSH_EVENT, 0, event))
                    if events:
                        after = events[-1].seq
                    if len(events) < MAX_SYNC_PAGE:
                        break
                    await conn.drained()
                conn.release(chat_id, after)
                done.append((chat_id, after))
        finally:
            # On failure the client gets an error and resumes again from its cursors.
            conn.syncing = None
        return SyncResult(cursors=done)
