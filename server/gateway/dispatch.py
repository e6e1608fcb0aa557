"""The dispatcher: a decoded request → the rule that serves it → the reply frame."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from protocol.calls import (
    CallAnswer,
    CallBoard,
    CallEnd,
    CallGet,
    CallHand,
    CallJoin,
    CallLayer,
    CallLeave,
    CallLowerHands,
    CallMedia,
    CallModerate,
    CallOffer,
    CallPermit,
    CallRecord,
    CallSetRole,
    RoomsBroadcast,
    RoomsClose,
    RoomsHelp,
    RoomsMove,
    RoomsOpen,
)
from protocol.errors import CloseCode, ErrorCode
from protocol.messages import (
    PUSH_CHAT,
    PUSH_EVENT,
    Auth,
    AuthOk,
    Block,
    Body,
    ChatAddMember,
    ChatClear,
    ChatClosePoll,
    ChatCreate,
    ChatCreated,
    ChatDeleteMessage,
    ChatEdit,
    ChatHistory,
    ChatLeave,
    ChatList,
    ChatListResult,
    ChatMembers,
    ChatMembersResult,
    ChatMute,
    ChatPin,
    ChatPost,
    ChatReact,
    ChatRead,
    ChatRemoveMember,
    ChatSetRole,
    ChatSettings,
    ChatTyping,
    ChatVote,
    DirectOpen,
    Done,
    HistoryResult,
    InviteCreate,
    InviteJoin,
    InviteList,
    InviteListResult,
    InvitePreview,
    InviteRevoke,
    InviteTarget,
    Posted,
    ProtocolError,
    ReportCreate,
    ReportList,
    ReportListResult,
    ReportResolve,
    Request,
    Search,
    SearchResult,
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
from server.domain.members import MemberService
from server.domain.messages import MessageService
from server.gateway.websocket import WsConnection
from server.store import Store

logger = logging.getLogger("parta.dispatch")

RequestHandler = Callable[[WsConnection, int, Any], Awaitable[Body]]


class Dispatcher:
    def __init__(
        self,
        auth: AuthService,
        chats: ChatService,
        messages: MessageService,
        members: MemberService,
        calls: CallService,
        store: Store,
        bus: LocalBus,
    ) -> None:
        self._auth = auth
        self._chats = chats
        self._messages = messages
        self._members = members
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
            CallGet: self._call_get,
            CallJoin: self._call_join,
            CallOffer: self._call_offer,
            CallLayer: self._call_layer,
            CallLeave: self._call_leave,
            CallMedia: self._call_media,
            CallHand: self._call_hand,
            CallModerate: self._call_moderate,
            CallSetRole: self._call_set_role,
            CallPermit: self._call_permit,
            CallLowerHands: self._call_lower_hands,
            CallEnd: self._call_end,
            CallRecord: self._call_record,
            CallBoard: self._call_board,
            RoomsOpen: self._rooms_open,
            RoomsMove: self._rooms_move,
            RoomsBroadcast: self._rooms_broadcast,
            RoomsHelp: self._rooms_help,
            RoomsClose: self._rooms_close,
            ChatEdit: self._edit,
            ChatDeleteMessage: self._delete_message,
            ChatReact: self._react,
            ChatPin: self._pin,
            ChatVote: self._vote,
            ChatClosePoll: self._close_poll,
            ChatTyping: self._typing,
            ChatSettings: self._settings,
            ChatRemoveMember: self._remove_member,
            ChatSetRole: self._set_role,
            ChatLeave: self._leave,
            ChatClear: self._clear,
            ChatMute: self._mute,
            InviteCreate: self._invite_create,
            InviteList: self._invite_list,
            InviteRevoke: self._invite_revoke,
            InviteJoin: self._invite_join,
            InvitePreview: self._invite_preview,
            DirectOpen: self._direct_open,
            Block: self._block,
            ReportCreate: self._report,
            ReportList: self._reports,
            ReportResolve: self._resolve,
            Search: self._search,
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
        chats, last = await self._chats.chat_list(actor)
        return ChatListResult(chats=chats, last_messages=last)

    async def _chat_members(self, conn: WsConnection, actor: int, req: ChatMembers) -> Body:
        return ChatMembersResult(members=await self._chats.members(actor, req.chat_id))

    async def _chat_post(self, conn: WsConnection, actor: int, req: ChatPost) -> Body:
        event, duplicate = await self._messages.post(actor, req)
        return Posted(seq=event.seq, at=event.at, duplicate=duplicate)

    async def _chat_history(self, conn: WsConnection, actor: int, req: ChatHistory) -> Body:
        events, has_more = await self._chats.history(actor, req.chat_id, req.before_seq, req.limit)
        return HistoryResult(events=events, has_more=has_more)

    async def _chat_read(self, conn: WsConnection, actor: int, req: ChatRead) -> Body:
        await self._messages.mark_read(actor, req.chat_id, req.seq)
        return Done()

    async def _edit(self, conn: WsConnection, actor: int, req: ChatEdit) -> Body:
        await self._messages.edit(actor, req.chat_id, req.seq, req.text)
        return Done()

    async def _delete_message(self, conn: WsConnection, actor: int, req: ChatDeleteMessage) -> Body:
        await self._messages.delete(actor, req.chat_id, req.seq)
        return Done()

    async def _react(self, conn: WsConnection, actor: int, req: ChatReact) -> Body:
        await self._messages.react(actor, req.chat_id, req.seq, req.emoji, req.on)
        return Done()

    async def _pin(self, conn: WsConnection, actor: int, req: ChatPin) -> Body:
        await self._messages.pin(actor, req.chat_id, req.seq, req.on)
        return Done()

    async def _vote(self, conn: WsConnection, actor: int, req: ChatVote) -> Body:
        await self._messages.vote(actor, req.chat_id, req.seq, req.options)
        return Done()

    async def _close_poll(self, conn: WsConnection, actor: int, req: ChatClosePoll) -> Body:
        await self._messages.close_poll(actor, req.chat_id, req.seq)
        return Done()

    async def _typing(self, conn: WsConnection, actor: int, req: ChatTyping) -> Body:
        await self._messages.typing(actor, req.chat_id)
        return Done()

    async def _settings(self, conn: WsConnection, actor: int, req: ChatSettings) -> Body:
        await self._members.settings(actor, req.chat_id, req.title, req.closed)
        return Done()

    async def _remove_member(self, conn: WsConnection, actor: int, req: ChatRemoveMember) -> Body:
        await self._members.remove(actor, req.chat_id, req.account_id)
        return Done()

    async def _set_role(self, conn: WsConnection, actor: int, req: ChatSetRole) -> Body:
        await self._members.set_role(actor, req.chat_id, req.account_id, req.role)
        return Done()

    async def _leave(self, conn: WsConnection, actor: int, req: ChatLeave) -> Body:
        await self._members.leave(actor, req.chat_id)
        return Done()

    async def _clear(self, conn: WsConnection, actor: int, req: ChatClear) -> Body:
        await self._members.clear(actor, req.chat_id)
        return Done()

    async def _mute(self, conn: WsConnection, actor: int, req: ChatMute) -> Body:
        await self._members.mute(actor, req.chat_id, req.muted)
        return Done()

    async def _invite_create(self, conn: WsConnection, actor: int, req: InviteCreate) -> Body:
        return await self._members.create_invite(actor, req.chat_id, req.ttl_s)

    async def _invite_list(self, conn: WsConnection, actor: int, req: InviteList) -> Body:
        return InviteListResult(invites=await self._members.invites(actor, req.chat_id))

    async def _invite_revoke(self, conn: WsConnection, actor: int, req: InviteRevoke) -> Body:
        await self._members.revoke_invite(actor, req.chat_id, req.invite_id)
        return Done()

    async def _invite_preview(self, conn: WsConnection, actor: int, req: InvitePreview) -> Body:
        title, count = await self._members.preview(req.token)
        return InviteTarget(title=title, member_count=count)

    async def _invite_join(self, conn: WsConnection, actor: int, req: InviteJoin) -> Body:
        return ChatCreated(chat=await self._members.join(actor, req.token))

    async def _direct_open(self, conn: WsConnection, actor: int, req: DirectOpen) -> Body:
        return ChatCreated(chat=await self._members.direct(actor, req.account_id))

    async def _block(self, conn: WsConnection, actor: int, req: Block) -> Body:
        await self._members.block(actor, req.account_id, req.on)
        return Done()

    async def _report(self, conn: WsConnection, actor: int, req: ReportCreate) -> Body:
        await self._members.report(actor, req.chat_id, req.seq, req.reason)
        return Done()

    async def _reports(self, conn: WsConnection, actor: int, req: ReportList) -> Body:
        return ReportListResult(reports=await self._members.reports(actor, req.chat_id))

    async def _search(self, conn: WsConnection, actor: int, req: Search) -> Body:
        return SearchResult(
            events=await self._messages.search(actor, req.query, req.chat_id, req.limit)
        )

    async def _resolve(self, conn: WsConnection, actor: int, req: ReportResolve) -> Body:
        await self._members.resolve(actor, req.report_id, req.action, req.minutes)
        return Done()

    async def _call_get(self, conn: WsConnection, actor: int, req: CallGet) -> Body:
        return await self._calls.get(actor, req.call_id)

    async def _call_join(self, conn: WsConnection, actor: int, req: CallJoin) -> Body:
        return await self._calls.join(conn, actor, req.call_id)

    async def _call_offer(self, conn: WsConnection, actor: int, req: CallOffer) -> Body:
        sdp = await self._calls.offer(conn, req.sdp, req.sources, req.subscriptions)
        return CallAnswer(sdp=sdp)

    async def _call_layer(self, conn: WsConnection, actor: int, req: CallLayer) -> Body:
        await self._calls.layer(conn, req.track_id, req.layer)
        return Done()

    async def _call_leave(self, conn: WsConnection, actor: int, req: CallLeave) -> Body:
        await self._calls.leave(conn)
        return Done()

    async def _call_media(self, conn: WsConnection, actor: int, req: CallMedia) -> Body:
        await self._calls.media(conn, req.mic, req.camera)
        return Done()

    async def _call_hand(self, conn: WsConnection, actor: int, req: CallHand) -> Body:
        await self._calls.hand(conn, req.raised)
        return Done()

    async def _call_moderate(self, conn: WsConnection, actor: int, req: CallModerate) -> Body:
        await self._calls.moderate(conn, req.account_id, req.action)
        return Done()

    async def _call_set_role(self, conn: WsConnection, actor: int, req: CallSetRole) -> Body:
        await self._calls.set_role(conn, req.account_id, req.cohost)
        return Done()

    async def _call_permit(self, conn: WsConnection, actor: int, req: CallPermit) -> Body:
        await self._calls.permit(conn, req.account_id, req.screen)
        return Done()

    async def _call_lower_hands(self, conn: WsConnection, actor: int, req: CallLowerHands) -> Body:
        await self._calls.lower_hands(conn)
        return Done()

    async def _call_end(self, conn: WsConnection, actor: int, req: CallEnd) -> Body:
        await self._calls.end(conn)
        return Done()

    async def _call_record(self, conn: WsConnection, actor: int, req: CallRecord) -> Body:
        await self._calls.record(conn, req.on)
        return Done()

    async def _call_board(self, conn: WsConnection, actor: int, req: CallBoard) -> Body:
        await self._calls.board(conn, req.ops)
        return Done()

    async def _rooms_open(self, conn: WsConnection, actor: int, req: RoomsOpen) -> Body:
        await self._calls.open_rooms(conn, req.names, req.assign, req.random, req.minutes)
        return Done()

    async def _rooms_move(self, conn: WsConnection, actor: int, req: RoomsMove) -> Body:
        await self._calls.move(conn, req.account_id, req.room)
        return Done()

    async def _rooms_broadcast(self, conn: WsConnection, actor: int, req: RoomsBroadcast) -> Body:
        await self._calls.broadcast(conn, req.text)
        return Done()

    async def _rooms_help(self, conn: WsConnection, actor: int, req: RoomsHelp) -> Body:
        await self._calls.help(conn)
        return Done()

    async def _rooms_close(self, conn: WsConnection, actor: int, req: RoomsClose) -> Body:
        await self._calls.close_rooms(conn)
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
