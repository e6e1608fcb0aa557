"""The message layer: a versioned msgpack envelope and typed, validated message bodies.

Every frame is a msgpack array ``[version, type, request_id, body]``. Requests from a
client carry a positive request id that the server's ``ok`` or ``error`` reply repeats;
pushes from the server carry request id 0. Bodies are msgpack maps decoded straight into
the frozen structs below, so a value of the wrong type, a missing field or a string that
is too long is refused at the edge, before any handler sees it. ``docs/protocol.md``
describes the same thing for people.

msgspec is the codec: measured on these messages with validation included it is several
times faster than the ``msgpack`` library plus hand validation (``bench/micro``).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal

import msgspec

from protocol.base import MAX_CHAT_MEMBERS_PER_REQUEST as MAX_CHAT_MEMBERS_PER_REQUEST
from protocol.base import MAX_SYNC_CURSORS as MAX_SYNC_CURSORS
from protocol.base import PROTOCOL_VERSION as PROTOCOL_VERSION
from protocol.base import Body as Body
from protocol.base import ClientMessageId as ClientMessageId
from protocol.base import Done as Done
from protocol.base import Envelope as Envelope
from protocol.base import Id as Id
from protocol.base import ProtocolError as ProtocolError
from protocol.base import Request as Request
from protocol.base import RequestId as RequestId
from protocol.base import Role as Role
from protocol.base import Seq as Seq
from protocol.base import Sex as Sex
from protocol.base import Text as Text
from protocol.base import Title as Title
from protocol.calls import CALL_PUSHES, CALL_REQUESTS, CallInfo
from protocol.errors import ErrorCode

# --- requests (client → server) and their replies -----------------------------------


class Auth(Request, frozen=True):
    type: ClassVar[str] = "auth"
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class AuthOk(Body, frozen=True):
    account_id: Id
    has_profile: bool


class ChatInfo(Body, frozen=True):
    id: Id
    kind: str
    title: str
    role: Role
    member_count: int
    last_seq: Seq
    read_seq: Seq
    unread: int
    # Made from the school journal: members follow the journal, not the chat's admins.
    system: bool = False
    closed: bool = False
    muted: bool = False
    # For a direct chat, the other person.
    peer_id: int | None = None
    # When the chat last changed (ms): the chat list's order.
    last_at: int = 0


class ChatCreate(Request, frozen=True):
    type: ClassVar[str] = "chat.create"
    title: Title
    member_ids: Annotated[list[Id], msgspec.Meta(max_length=MAX_CHAT_MEMBERS_PER_REQUEST)] = []


class ChatCreated(Body, frozen=True):
    chat: ChatInfo


class ChatAddMember(Request, frozen=True):
    type: ClassVar[str] = "chat.add_member"
    chat_id: Id
    account_id: Id
    role: Role = "member"


class ChatList(Request, frozen=True):
    type: ClassVar[str] = "chat.list"


class ChatListResult(Body, frozen=True):
    chats: list[ChatInfo]
    # Each chat's latest message as it stands now (the chat list's preview), where any.
    last_messages: list[Event] = []


class ChatMembers(Request, frozen=True):
    type: ClassVar[str] = "chat.members"
    chat_id: Id


class Member(Body, frozen=True):
    account_id: Id
    role: Role
    last_name: str
    first_name: str
    middle_name: str | None = None
    read_seq: Seq = 0
    sex: Sex | None = None


class ChatMembersResult(Body, frozen=True):
    members: list[Member]


Emoji = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
Option = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class PollSpec(Body, frozen=True):
    question: Title
    options: Annotated[list[Option], msgspec.Meta(min_length=2, max_length=10)]
    multiple: bool = False
    anonymous: bool = False


class ForwardSpec(Body, frozen=True):
    chat_id: Id
    seq: Seq


class ChatPost(Request, frozen=True):
    """A message: text, and optionally a reply, attachments, mentions, a poll, or a
    forwarded message (text may then be empty)."""

    type: ClassVar[str] = "chat.post"
    chat_id: Id
    client_id: ClientMessageId
    text: Annotated[str, msgspec.Meta(max_length=10_000)] = ""
    reply_to: Seq | None = None
    attachments: Annotated[list[Id], msgspec.Meta(max_length=10)] = []
    mentions: Annotated[list[Id], msgspec.Meta(max_length=100)] = []
    poll: PollSpec | None = None
    forward: ForwardSpec | None = None


class ChatEdit(Request, frozen=True):
    type: ClassVar[str] = "chat.edit"
    chat_id: Id
    seq: Seq
    text: Text


class ChatDeleteMessage(Request, frozen=True):
    """Delete a message for everyone (its author, or the chat's admins)."""

    type: ClassVar[str] = "chat.delete_message"
    chat_id: Id
    seq: Seq


class ChatReact(Request, frozen=True):
    type: ClassVar[str] = "chat.react"
    chat_id: Id
    seq: Seq
    emoji: Emoji
    on: bool = True


class ChatPin(Request, frozen=True):
    type: ClassVar[str] = "chat.pin"
    chat_id: Id
    seq: Seq
    on: bool = True


class ChatVote(Request, frozen=True):
    """Vote in a poll (the chosen option indexes; empty takes the vote back)."""

    type: ClassVar[str] = "chat.vote"
    chat_id: Id
    seq: Seq
    options: Annotated[list[Annotated[int, msgspec.Meta(ge=0, le=9)]], msgspec.Meta(max_length=10)]


class ChatClosePoll(Request, frozen=True):
    type: ClassVar[str] = "chat.close_poll"
    chat_id: Id
    seq: Seq


class ChatTyping(Request, frozen=True):
    type: ClassVar[str] = "chat.typing"
    chat_id: Id


class ChatSettings(Request, frozen=True):
    """Rename a chat or make it closed (only admins invite and change it)."""

    type: ClassVar[str] = "chat.settings"
    chat_id: Id
    title: Title | None = None
    closed: bool | None = None


class ChatRemoveMember(Request, frozen=True):
    type: ClassVar[str] = "chat.remove_member"
    chat_id: Id
    account_id: Id


class ChatSetRole(Request, frozen=True):
    type: ClassVar[str] = "chat.set_role"
    chat_id: Id
    account_id: Id
    role: Literal["admin", "member"]


class ChatLeave(Request, frozen=True):
    type: ClassVar[str] = "chat.leave"
    chat_id: Id


class ChatClear(Request, frozen=True):
    """Clear the history for oneself: others keep theirs."""

    type: ClassVar[str] = "chat.clear"
    chat_id: Id


class ChatMute(Request, frozen=True):
    type: ClassVar[str] = "chat.mute"
    chat_id: Id
    muted: bool


class InviteCreate(Request, frozen=True):
    type: ClassVar[str] = "invite.create"
    chat_id: Id
    ttl_s: Annotated[int, msgspec.Meta(ge=60, le=30 * 86_400)] = 7 * 86_400


class InviteInfo(Body, frozen=True):
    id: str
    expires_at: int
    uses: int
    revoked: bool = False
    # Only when just created: the secret part of the link, shown once.
    token: str | None = None


class InviteList(Request, frozen=True):
    type: ClassVar[str] = "invite.list"
    chat_id: Id


class InviteListResult(Body, frozen=True):
    invites: list[InviteInfo]


class InviteRevoke(Request, frozen=True):
    type: ClassVar[str] = "invite.revoke"
    chat_id: Id
    invite_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class InviteJoin(Request, frozen=True):
    type: ClassVar[str] = "invite.join"
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class InvitePreview(Request, frozen=True):
    """Where an invite leads, before joining: the chat's title and size."""

    type: ClassVar[str] = "invite.preview"
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class InviteTarget(Body, frozen=True):
    title: str
    member_count: int


class DirectOpen(Request, frozen=True):
    """A direct chat with someone the asker shares a chat with."""

    type: ClassVar[str] = "direct.open"
    account_id: Id


class Block(Request, frozen=True):
    type: ClassVar[str] = "block"
    account_id: Id
    on: bool = True


class ReportCreate(Request, frozen=True):
    type: ClassVar[str] = "report.create"
    chat_id: Id
    seq: Seq
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class ReportInfo(Body, frozen=True):
    id: Id
    chat_id: Id
    seq: Seq
    reporter_id: Id
    reason: str
    status: str
    created_at: int
    message: Event | None = None
    resolution: str | None = None


class ReportList(Request, frozen=True):
    """Open reports this person may act on (admins of the chat, staff of its school)."""

    type: ClassVar[str] = "report.list"
    chat_id: Id | None = None


class ReportListResult(Body, frozen=True):
    reports: list[ReportInfo]


class ReportResolve(Request, frozen=True):
    type: ClassVar[str] = "report.resolve"
    report_id: Id
    action: Literal["remove_message", "remove_member", "silence_member", "dismiss"]
    minutes: Annotated[int, msgspec.Meta(ge=1, le=30 * 24 * 60)] = 60


class Search(Request, frozen=True):
    type: ClassVar[str] = "search"
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    chat_id: Id | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 30


class SearchResult(Body, frozen=True):
    events: list[Event]


class Typing(Body, frozen=True):
    """Push: someone is typing in a chat (not kept)."""

    chat_id: Id
    account_id: Id


class ReadMark(Body, frozen=True):
    """Push: a member read a chat up to ``seq`` (for "read by N"; not kept)."""

    chat_id: Id
    account_id: Id
    seq: Seq


class Posted(Body, frozen=True):
    seq: Seq
    at: int
    duplicate: bool = False


class ChatHistory(Request, frozen=True):
    type: ClassVar[str] = "chat.history"
    chat_id: Id
    before_seq: Seq | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50


class Attachment(Body, frozen=True):
    id: Id
    kind: str  # photo, document, audio, video, voice
    mime: str
    size: int
    name: str
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    waveform: list[int] | None = None
    thumbnail: bool = False


class Reaction(Body, frozen=True):
    emoji: str
    accounts: list[int]


class Poll(Body, frozen=True):
    question: str
    options: list[str]
    multiple: bool = False
    anonymous: bool = False
    closed: bool = False
    votes: list[int] = []
    # Who chose each option, unless the poll is anonymous.
    voters: list[list[int]] | None = None


class Forwarded(Body, frozen=True):
    """Where a forwarded message came from (the author and when; not the chat's name)."""

    actor_id: Seq
    at: int


class Event(Body, frozen=True):
    """One entry of a chat's log. Every change to a chat is an event with the next seq."""

    chat_id: Id
    seq: Seq
    kind: str
    actor_id: Seq  # 0: the system (the journal's roster, the server)
    at: int
    client_id: str | None = None
    text: str | None = None
    member_id: int | None = None
    role: Role | None = None
    title: str | None = None
    # The message an edit, deletion, reaction, pin or vote is about.
    target: Seq | None = None
    reply_to: Seq | None = None
    emoji: str | None = None
    mentions: list[int] | None = None
    attachments: list[Attachment] | None = None
    poll: Poll | None = None
    forwarded: Forwarded | None = None
    closed: bool | None = None
    lesson: CallInfo | None = None  # a lesson card (a message) or a change to one
    # A message's state now (history, and the message an event changed):
    edited_at: int | None = None
    deleted: bool = False
    reactions: list[Reaction] | None = None
    pinned: bool = False


class HistoryResult(Body, frozen=True):
    events: list[Event]
    has_more: bool


class Sync(Request, frozen=True):
    """Resume: for each chat, the last seq this client has; missed events arrive as pushes."""

    type: ClassVar[str] = "sync"
    cursors: Annotated[list[tuple[Id, Seq]], msgspec.Meta(max_length=MAX_SYNC_CURSORS)] = []


class SyncResult(Body, frozen=True):
    # (chat_id, last seq now delivered) for every chat of the account, including new ones.
    cursors: list[tuple[Id, Seq]]


class ChatRead(Request, frozen=True):
    type: ClassVar[str] = "chat.read"
    chat_id: Id
    seq: Seq


class ErrorBody(Body, frozen=True):
    code: str
    message: str


# --- pushes (server → client) --------------------------------------------------------

PUSH_EVENT: Final = "event"
PUSH_CHAT: Final = "chat"
PUSH_TYPING: Final = "typing"
PUSH_READ: Final = "read"
REPLY_OK: Final = "ok"
REPLY_ERROR: Final = "error"

REQUESTS: Final[dict[str, type[Request]]] = {
    cls.type: cls
    for cls in (
        Auth,
        ChatCreate,
        ChatAddMember,
        ChatList,
        ChatMembers,
        ChatPost,
        ChatHistory,
        Sync,
        ChatRead,
        ChatEdit,
        ChatDeleteMessage,
        ChatReact,
        ChatPin,
        ChatVote,
        ChatClosePoll,
        ChatTyping,
        ChatSettings,
        ChatRemoveMember,
        ChatSetRole,
        ChatLeave,
        ChatClear,
        ChatMute,
        InviteCreate,
        InviteList,
        InviteRevoke,
        InviteJoin,
        InvitePreview,
        DirectOpen,
        Block,
        ReportCreate,
        ReportList,
        ReportResolve,
        Search,
    )
} | {cls.type: cls for cls in CALL_REQUESTS}

# What an ``ok`` reply to each request carries.
REPLIES: Final[dict[str, type[Body]]] = {
    Auth.type: AuthOk,
    ChatCreate.type: ChatCreated,
    ChatAddMember.type: Done,
    ChatList.type: ChatListResult,
    ChatMembers.type: ChatMembersResult,
    ChatPost.type: Posted,
    ChatHistory.type: HistoryResult,
    Sync.type: SyncResult,
    ChatRead.type: Done,
    ChatEdit.type: Done,
    ChatDeleteMessage.type: Done,
    ChatReact.type: Done,
    ChatPin.type: Done,
    ChatVote.type: Done,
    ChatClosePoll.type: Done,
    ChatTyping.type: Done,
    ChatSettings.type: Done,
    ChatRemoveMember.type: Done,
    ChatSetRole.type: Done,
    ChatLeave.type: Done,
    ChatClear.type: Done,
    ChatMute.type: Done,
    InviteCreate.type: InviteInfo,
    InviteList.type: InviteListResult,
    InviteRevoke.type: Done,
    InviteJoin.type: ChatCreated,
    InvitePreview.type: InviteTarget,
    DirectOpen.type: ChatCreated,
    Block.type: Done,
    ReportCreate.type: Done,
    ReportList.type: ReportListResult,
    ReportResolve.type: Done,
    Search.type: SearchResult,
    **{cls.type: reply or Done for cls, reply in CALL_REQUESTS.items()},
}

PUSHES: Final[dict[str, type[Body]]] = {
    PUSH_EVENT: Event,
    PUSH_CHAT: ChatInfo,
    PUSH_TYPING: Typing,
    PUSH_READ: ReadMark,
    **CALL_PUSHES,
}

_envelope_decoder = msgspec.msgpack.Decoder(Envelope)
_request_decoders = {name: msgspec.msgpack.Decoder(cls) for name, cls in REQUESTS.items()}
# msgspec raises UnicodeDecodeError, not DecodeError, for invalid UTF-8 in a string.
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)
_encoder = msgspec.msgpack.Encoder()


def decode_request(frame: bytes) -> tuple[int, Request]:
    """Decode a client frame into (request id, request), or raise ``ProtocolError``."""
    try:
        env = _envelope_decoder.decode(frame)
    except _DECODE_ERRORS as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"not a Parta envelope: {exc}") from None
    if env.v != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {env.v} is not supported (this server speaks {PROTOCOL_VERSION})",
            env.id,
        )
    decoder = _request_decoders.get(env.type)
    if decoder is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {env.type!r}", env.id)
    try:
        return env.id, decoder.decode(env.body)
    except _DECODE_ERRORS as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{env.type}: {exc}", env.id) from None


def encode(type_: str, request_id: int, body: Body) -> bytes:
    """Encode one frame. Encode a push once and write the same bytes to every connection."""
    return _encoder.encode((PROTOCOL_VERSION, type_, request_id, body))


def encode_request(request_id: int, request: Request) -> bytes:
    return encode(request.type, request_id, request)


def encode_ok(request_id: int, body: Body) -> bytes:
    return encode(REPLY_OK, request_id, body)


def encode_error(request_id: int, code: ErrorCode, message: str) -> bytes:
    return encode(REPLY_ERROR, request_id, ErrorBody(code=code.value, message=message))


def decode_envelope(frame: bytes) -> Envelope:
    """Client side: the envelope only; the body is decoded by what the client expects."""
    try:
        return _envelope_decoder.decode(frame)
    except _DECODE_ERRORS as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"not a Parta envelope: {exc}") from None


_body_decoders: dict[type[Any], msgspec.msgpack.Decoder[Any]] = {}


def decode_body(raw: msgspec.Raw | bytes, cls: type[Any]) -> Any:
    decoder = _body_decoders.get(cls)
    if decoder is None:
        decoder = _body_decoders[cls] = msgspec.msgpack.Decoder(cls)
    try:
        return decoder.decode(raw)
    except _DECODE_ERRORS as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{cls.__name__}: {exc}") from None
