"""The control channel between the server and an SFU worker process.

A stream socket (a socketpair end inherited by the worker) carries frames of a 4-byte
big-endian length and a msgpack array ``[type, request_id, body]``. The server sends
requests with a positive id; the worker answers ``ok`` or ``error`` with the same id and
sends events with id 0. Rooms and peers are opaque ids chosen by the server: the worker
knows nothing of chats, lessons or people.
"""

from __future__ import annotations

import struct
from typing import Annotated, Any, ClassVar, Final, Literal

import msgspec

MAX_FRAME: Final = 16 << 20
_LENGTH = struct.Struct(">I")

ObjectId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Layer = Literal["off", "low", "medium", "high"]
Source = Literal["mic", "camera", "screen", "screen-audio"]
Kind = Literal["audio", "video"]
RecordingReason = Literal["stopped", "room_closed", "error", "shutdown"]


class ControlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Body(msgspec.Struct, frozen=True, omit_defaults=True):
    pass


class Request(Body, frozen=True):
    type: ClassVar[str]


# --- requests ----------------------------------------------------------------------


class RoomCreate(Request, frozen=True):
    type: ClassVar[str] = "room.create"
    room_id: ObjectId


class RoomClose(Request, frozen=True):
    type: ClassVar[str] = "room.close"
    room_id: ObjectId


class Candidate(Body, frozen=True):
    protocol: Literal["udp", "tcp"]
    address: str
    port: int


class PeerCreate(Request, frozen=True):
    """A peer's transport (ICE + DTLS + SRTP) in a room; returns what the client needs."""

    type: ClassVar[str] = "peer.create"
    room_id: ObjectId
    peer_id: ObjectId


class TransportInfo(Body, frozen=True):
    ice_ufrag: str
    ice_pwd: str
    fingerprint: str  # "sha-256 AB:CD:…"
    candidates: list[Candidate]


class PeerOffer(Request, frozen=True):
    """The client's offer. ``sources`` names what each of its sending mids carries;
    ``subscriptions`` names the remote producer each of its receiving mids wants."""

    type: ClassVar[str] = "peer.offer"
    peer_id: ObjectId
    sdp: Annotated[str, msgspec.Meta(max_length=1 << 20)]
    sources: dict[str, Source] = {}
    subscriptions: dict[str, ObjectId] = {}


class ProducerInfo(Body, frozen=True):
    producer_id: str
    peer_id: str
    kind: Kind
    source: Source
    mid: str
    simulcast: bool = False


class Answer(Body, frozen=True):
    sdp: str
    # Producers this offer created (new tracks of the peer); the server tells the room.
    producers: list[ProducerInfo] = []
    # Producers of this peer that the offer ended (a track the client stopped sending).
    closed_producers: list[str] = []


class PeerClose(Request, frozen=True):
    type: ClassVar[str] = "peer.close"
    peer_id: ObjectId


class PeerLayer(Request, frozen=True):
    """What the subscriber displays for one remote track: a thumbnail, a tile, the stage."""

    type: ClassVar[str] = "peer.layer"
    peer_id: ObjectId
    producer_id: ObjectId
    layer: Layer


class PeerMove(Request, frozen=True):
    """Move a peer to another room of the same worker (breakout rooms): its transport stays,
    only whom it hears and sees changes."""

    type: ClassVar[str] = "peer.move"
    peer_id: ObjectId
    room_id: ObjectId


class Stats(Request, frozen=True):
    type: ClassVar[str] = "stats"
    room_id: ObjectId | None = None


class PeerStats(Body, frozen=True):
    peer_id: str
    room_id: str
    state: str
    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int
    estimate_bps: int
    consumers: dict[str, str]  # producer id → current layer


class StatsResult(Body, frozen=True):
    worker: int
    rooms: int
    peers: list[PeerStats]
    packets_in: int
    packets_out: int
    cpu_s: float


class RecordStart(Request, frozen=True):
    """Record the room into a new WebM file at ``path``: an absolute path on the worker's
    machine, in a directory that exists (the server picks it inside its data dir). The
    file holds the screen share, else the active speaker's camera (VP8 as sent, top layer),
    and everyone's audio mixed (Opus). Replies ``Done``; ``conflict`` if the room already
    records, ``bad_path`` if the file cannot be created."""

    type: ClassVar[str] = "record.start"
    room_id: ObjectId
    path: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class RecordStop(Request, frozen=True):
    """Finish the room's recording; replies ``RecordingEnded`` once the file is complete
    (``not_found`` if the room does not record)."""

    type: ClassVar[str] = "record.stop"
    room_id: ObjectId


class Done(Body, frozen=True):
    pass


class ErrorBody(Body, frozen=True):
    code: str
    message: str


# --- events (worker → server) -------------------------------------------------------


class PeerState(Body, frozen=True):
    """A peer's transport connected, or failed (ICE consent lost, DTLS failed)."""

    peer_id: str
    state: Literal["connected", "failed", "closed"]
    reason: str = ""


class ActiveSpeaker(Body, frozen=True):
    room_id: str
    peer_id: str


class RecordingEnded(Body, frozen=True):
    """A finished recording file: the reply to ``record.stop``, and the event
    ``recording.ended`` when a recording ended without one (its room closed, writing
    failed, the worker shut down). ``duration_s`` is the recording time the file covers."""

    room_id: str
    path: str
    duration_s: float
    size: int  # bytes
    reason: RecordingReason
    error: str = ""


class Ready(Body, frozen=True):
    """Sent once by a worker when it listens: its media port and certificate."""

    worker: int
    port: int
    fingerprint: str


EVENTS: Final[dict[str, type[Body]]] = {
    "peer.state": PeerState,
    "speaker": ActiveSpeaker,
    "recording.ended": RecordingEnded,
    "ready": Ready,
}

REQUESTS: Final[dict[str, type[Request]]] = {
    cls.type: cls
    for cls in (
        RoomCreate,
        RoomClose,
        PeerCreate,
        PeerOffer,
        PeerClose,
        PeerLayer,
        PeerMove,
        Stats,
        RecordStart,
        RecordStop,
    )
}

REPLIES: Final[dict[str, type[Body]]] = {
    RoomCreate.type: Done,
    RoomClose.type: Done,
    PeerCreate.type: TransportInfo,
    PeerOffer.type: Answer,
    PeerClose.type: Done,
    PeerLayer.type: Done,
    PeerMove.type: Done,
    Stats.type: StatsResult,
    RecordStart.type: Done,
    RecordStop.type: RecordingEnded,
}

# msgspec raises UnicodeDecodeError, not DecodeError, for invalid UTF-8 in a string.
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)
_encoder = msgspec.msgpack.Encoder()
_frame_decoder = msgspec.msgpack.Decoder(tuple[str, int, msgspec.Raw])
_decoders: dict[type[Any], msgspec.msgpack.Decoder[Any]] = {}


def encode_frame(type_: str, request_id: int, body: Body) -> bytes:
    payload = _encoder.encode((type_, request_id, body))
    return _LENGTH.pack(len(payload)) + payload


def decode_body(raw: msgspec.Raw, cls: type[Any]) -> Any:
    decoder = _decoders.get(cls)
    if decoder is None:
        decoder = _decoders[cls] = msgspec.msgpack.Decoder(cls)
    try:
        return decoder.decode(raw)
    except _DECODE_ERRORS as exc:
        raise ControlError("bad_message", str(exc)) from None


class FrameReader:
    """Splits the byte stream into ``(type, request_id, raw body)`` frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[str, int, msgspec.Raw]]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 4:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise ControlError("too_large", f"control frame of {length} bytes")
            if len(self._buffer) < 4 + length:
                break
            payload = bytes(self._buffer[4 : 4 + length])
            del self._buffer[: 4 + length]
            try:
                frames.append(_frame_decoder.decode(payload))
            except _DECODE_ERRORS as exc:
                raise ControlError("bad_message", str(exc)) from None
        return frames
