"""Lesson (call) messages: signalling for the SFU, the call's people and their states, host
controls, breakout rooms, the whiteboard. Media itself flows browser ⇄ SFU worker, never
through the gateway. ``docs/protocol.md`` ("Lessons") describes the same for people.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal

import msgspec

from protocol.base import Body, Id, Request, Sex, Text

TrackId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Source = Literal["mic", "camera", "screen", "screen-audio"]
Layer = Literal["off", "low", "medium", "high"]
CallState = Literal["scheduled", "published", "live", "ended", "cancelled"]
CallRole = Literal["host", "cohost", "member"]
RoomIndex = Annotated[int, msgspec.Meta(ge=0, le=50)]  # 0: the main room

MAX_BREAKOUT_ROOMS: Final = 50
MAX_BOARD_OPS_PER_REQUEST: Final = 200


class CallInfo(Body, frozen=True):
    """A lesson as people see it: also the lesson card in its chat (``Event.lesson``)."""

    id: Id
    chat_id: Id
    title: str
    starts_at: int  # ms since the epoch
    ends_at: int
    state: CallState
    host_id: int | None = None  # the host's account, once they have linked
    recording: bool = False


# --- joining and media ---------------------------------------------------------------


class CallGet(Request, frozen=True):
    """What a lesson is and its state (the waiting screen before it starts)."""

    type: ClassVar[str] = "call.get"
    call_id: Id


class CallJoin(Request, frozen=True):
    """Join a live lesson: a media transport on the SFU, the tracks, the people, the board."""

    type: ClassVar[str] = "call.join"
    call_id: Id


class MediaCandidate(Body, frozen=True):
    protocol: Literal["udp", "tcp"]
    address: str
    port: int


class Track(Body, frozen=True):
    track_id: TrackId
    account_id: Id
    kind: Literal["audio", "video"]
    source: Source


class CallPerson(Body, frozen=True):
    """One person in the call and what they are doing."""

    account_id: Id
    name: str
    role: CallRole
    room: RoomIndex = 0
    sex: Sex | None = None
    mic: bool = False
    camera: bool = False
    screen: bool = False
    hand: int | None = None  # the order in which hands went up: 1 is the first
    can_screen: bool = False


class BreakoutRoom(Body, frozen=True):
    index: Annotated[int, msgspec.Meta(ge=1, le=MAX_BREAKOUT_ROOMS)]
    name: str


class CallPeople(Body, frozen=True):
    """Push ``call.state``: everything about the call but media, whole, after any change."""

    call_id: Id
    people: list[CallPerson]
    rooms: list[BreakoutRoom] = []
    rooms_close_at: int | None = None  # ms since the epoch: the breakout countdown
    recording: bool = False
    screen_for_all: bool = False  # "Доступы участников": everyone may share the screen


BoardKind = Literal["stroke", "line", "rect", "ellipse", "text", "erase", "clear"]
Coordinate = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class BoardOp(Body, frozen=True):
    """One whiteboard operation. Coordinates are fractions of the board's width and height,
    so boards of any size agree; ``id`` makes a retried operation count once."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    kind: BoardKind
    points: Annotated[list[Coordinate], msgspec.Meta(max_length=4000)] = []
    color: Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")] = "#1b1f24"
    width: Annotated[float, msgspec.Meta(ge=0.5, le=64.0)] = 3.0
    text: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    target: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None  # erase
    account_id: int = 0  # set by the server


class CallJoined(Body, frozen=True):
    call: CallInfo
    peer_id: str
    ice_ufrag: str
    ice_pwd: str
    fingerprint: str
    candidates: list[MediaCandidate]
    tracks: list[Track]
    people: CallPeople
    board: list[BoardOp] = []


class CallOffer(Request, frozen=True):
    """The client's SDP offer: ``sources`` names what each sending mid carries,
    ``subscriptions`` the remote track each receiving mid wants."""

    type: ClassVar[str] = "call.offer"
    sdp: Annotated[str, msgspec.Meta(min_length=1, max_length=1 << 20)]
    sources: Annotated[dict[str, Source], msgspec.Meta(max_length=64)] = {}
    subscriptions: Annotated[dict[str, TrackId], msgspec.Meta(max_length=512)] = {}


class CallAnswer(Body, frozen=True):
    sdp: str


class CallLayer(Request, frozen=True):
    """What this client shows a remote video track as: off, a thumbnail, a tile, the stage."""

    type: ClassVar[str] = "call.layer"
    track_id: TrackId
    layer: Layer


class CallLeave(Request, frozen=True):
    type: ClassVar[str] = "call.leave"


class CallMedia(Request, frozen=True):
    """This participant's own microphone and camera are on or off (shown to everyone)."""

    type: ClassVar[str] = "call.media"
    mic: bool
    camera: bool


class CallHand(Request, frozen=True):
    type: ClassVar[str] = "call.hand"
    raised: bool


# --- the host's controls ---------------------------------------------------------------

ModerateAction = Literal["ask_unmute", "mute", "camera_off", "stop_screen", "lower_hand", "remove"]


class CallModerate(Request, frozen=True):
    """A host or co-host acts on one participant."""

    type: ClassVar[str] = "call.moderate"
    account_id: Id
    action: ModerateAction


class CallSetRole(Request, frozen=True):
    """The host makes someone a co-host, or a participant again."""

    type: ClassVar[str] = "call.set_role"
    account_id: Id
    cohost: bool


class CallPermit(Request, frozen=True):
    """Allow or forbid screen sharing for one participant, or (no account) for everyone."""

    type: ClassVar[str] = "call.permit"
    screen: bool
    account_id: Id | None = None


class CallLowerHands(Request, frozen=True):
    type: ClassVar[str] = "call.lower_hands"


class CallEnd(Request, frozen=True):
    """End the lesson for everyone (host and co-hosts)."""

    type: ClassVar[str] = "call.end"


class CallRecord(Request, frozen=True):
    type: ClassVar[str] = "call.record"
    on: bool


# --- the whiteboard (beta) ---------------------------------------------------------------


class CallBoard(Request, frozen=True):
    type: ClassVar[str] = "call.board"
    ops: Annotated[list[BoardOp], msgspec.Meta(min_length=1, max_length=MAX_BOARD_OPS_PER_REQUEST)]


class BoardPush(Body, frozen=True):
    """Push ``call.board``: operations someone drew."""

    call_id: Id
    ops: list[BoardOp]


# --- breakout rooms ----------------------------------------------------------------------

RoomName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class RoomsOpen(Request, frozen=True):
    """Open breakout rooms: ``assign`` puts people by hand ([account, room index]);
    ``random`` spreads everyone else evenly; ``minutes`` closes them by themselves."""

    type: ClassVar[str] = "call.rooms.open"
    names: Annotated[list[RoomName], msgspec.Meta(min_length=1, max_length=MAX_BREAKOUT_ROOMS)]
    assign: Annotated[list[tuple[Id, RoomIndex]], msgspec.Meta(max_length=2000)] = []
    random: bool = False
    minutes: Annotated[int, msgspec.Meta(ge=1, le=240)] | None = None


class RoomsMove(Request, frozen=True):
    """Move someone (or, from a host, oneself: a visit) to a room; 0 is the main room."""

    type: ClassVar[str] = "call.rooms.move"
    account_id: Id
    room: RoomIndex


class RoomsBroadcast(Request, frozen=True):
    type: ClassVar[str] = "call.rooms.broadcast"
    text: Text


class RoomsHelp(Request, frozen=True):
    """ "Позвать учителя" from a breakout room."""

    type: ClassVar[str] = "call.rooms.help"


class RoomsClose(Request, frozen=True):
    type: ClassVar[str] = "call.rooms.close"


# --- pushes ------------------------------------------------------------------------------


class CallTracks(Body, frozen=True):
    """Push: the tracks this participant can receive now (the client renegotiates)."""

    call_id: Id
    tracks: list[Track]


class CallSpeaker(Body, frozen=True):
    call_id: Id
    account_id: Id


NoticeKind = Literal[
    "ask_unmute",
    "mute",
    "camera_off",
    "stop_screen",
    "removed",
    "broadcast",
    "help",
    "ended",
]


class CallNotice(Body, frozen=True):
    """Push ``call.notice``: something a person should be told (and their client obey,
    e.g. turn the microphone off when the host mutes them)."""

    call_id: Id
    kind: NoticeKind
    by: int = 0  # who did it
    text: str | None = None
    room: int | None = None


class CallReconnect(Body, frozen=True):
    """Push: the call's media server went away; join again."""

    call_id: Id
    reason: str


PUSH_CALL_TRACKS: Final = "call.tracks"
PUSH_CALL_SPEAKER: Final = "call.speaker"
PUSH_CALL_RECONNECT: Final = "call.reconnect"
PUSH_CALL_STATE: Final = "call.state"
PUSH_CALL_BOARD: Final = "call.board"
PUSH_CALL_NOTICE: Final = "call.notice"

CALL_REQUESTS: Final[dict[type[Request], type[Body] | None]] = {
    # request → its ``ok`` body (None: an empty ``Done``)
    CallGet: CallInfo,
    CallJoin: CallJoined,
    CallOffer: CallAnswer,
    CallLayer: None,
    CallLeave: None,
    CallMedia: None,
    CallHand: None,
    CallModerate: None,
    CallSetRole: None,
    CallPermit: None,
    CallLowerHands: None,
    CallEnd: None,
    CallRecord: None,
    CallBoard: None,
    RoomsOpen: None,
    RoomsMove: None,
    RoomsBroadcast: None,
    RoomsHelp: None,
    RoomsClose: None,
}

CALL_PUSHES: Final[dict[str, type[Body]]] = {
    PUSH_CALL_TRACKS: CallTracks,
    PUSH_CALL_SPEAKER: CallSpeaker,
    PUSH_CALL_RECONNECT: CallReconnect,
    PUSH_CALL_STATE: CallPeople,
    PUSH_CALL_BOARD: BoardPush,
    PUSH_CALL_NOTICE: CallNotice,
}
