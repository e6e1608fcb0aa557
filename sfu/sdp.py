"""SDP for an SFU that answers browser offers: parse, negotiate, build the answer.

The client is always the offerer; we are ICE-lite, always DTLS server (``setup:passive``),
and use one BUNDLE transport with rtcp-mux, unified plan (one track per m-section). aiortc's
SDP code drops ``a=rid`` and ``a=simulcast``, which carry the whole of RID simulcast, hence
this module. Three layers, each pure:

* ``parse_sdp(text)`` turns a description into frozen dataclasses. Any input that does not
  parse raises ``SdpError`` naming the line; nothing else ever escapes. Unknown attributes
  are kept as raw lines, and attribute order does not matter.
* ``negotiate(offer)`` (after mediasoup's ``ortc.ts``) intersects the offer with what we
  support: per m-section the codecs in our order of preference with their RTX payload types,
  the header extension ids, how the client sends (RID simulcast or SSRCs) or why the section
  has to be rejected.
* ``build_answer(offer, plan)`` writes the answer text for an ``AnswerPlan``: our ICE and
  DTLS parameters, our candidates, and per mid whether to accept it and what we send on it.

Two kinds of error, as in ``protocol.websocket``: ``SdpError`` means the offer (the peer) is
at fault; ``ValueError`` from the plan or ``build_answer`` means we asked for something the
offer or the protocol cannot give.

Everything the answer says comes from the plan, the negotiation or constants here: offered
strings are echoed only after they passed the parser's token checks (mids, rids, payload
types, extension URIs, fmtp parameters), so an offer cannot smuggle lines into the answer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias, cast

__all__ = [
    "EXT_ABS_SEND_TIME",
    "EXT_AUDIO_LEVEL",
    "EXT_MID",
    "EXT_REPAIRED_RID",
    "EXT_RID",
    "EXT_TRANSPORT_CC",
    "HOST_TCP_PRIORITY",
    "HOST_UDP_PRIORITY",
    "MAX_SDP_LENGTH",
    "SUPPORTED_EXTENSIONS",
    "AnswerPlan",
    "Candidate",
    "Codec",
    "Direction",
    "Fingerprint",
    "MediaDescription",
    "MediaPlan",
    "Msid",
    "NegotiatedCodec",
    "NegotiatedMedia",
    "Negotiation",
    "Origin",
    "RemoteTransport",
    "Rid",
    "SdpError",
    "SenderPlan",
    "SessionDescription",
    "Setup",
    "Simulcast",
    "SimulcastId",
    "SsrcEncoding",
    "SsrcGroup",
    "build_answer",
    "negotiate",
    "negotiate_codecs",
    "negotiate_extensions",
    "negotiate_media",
    "parse_sdp",
]

Direction: TypeAlias = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
Setup: TypeAlias = Literal["actpass", "active", "passive", "holdconn"]

_DIRECTIONS: frozenset[str] = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
_SETUPS: frozenset[str] = frozenset({"actpass", "active", "passive", "holdconn"})

# A browser offer with a hundred m-sections is ~500 KB; anything much larger is not a browser.
MAX_SDP_LENGTH = 1 << 20

EXT_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
EXT_RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
EXT_REPAIRED_RID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
EXT_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
EXT_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
EXT_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

# The header extensions we read or rewrite, and the media kinds they make sense for (RIDs
# name video encodings; audio level is audio only).
SUPPORTED_EXTENSIONS: Mapping[str, frozenset[str]] = {
    EXT_MID: frozenset({"audio", "video"}),
    EXT_RID: frozenset({"video"}),
    EXT_REPAIRED_RID: frozenset({"video"}),
    EXT_ABS_SEND_TIME: frozenset({"audio", "video"}),
    EXT_TRANSPORT_CC: frozenset({"audio", "video"}),
    EXT_AUDIO_LEVEL: frozenset({"audio"}),
}

# RTCP feedback we act on. Audio is never retransmitted or keyframe-requested, so only the
# congestion-control feedback applies to it.
_VIDEO_FEEDBACK = frozenset({"nack", "nack pli", "ccm fir", "goog-remb", "transport-cc"})
_AUDIO_FEEDBACK = frozenset({"transport-cc"})

# JSEP (RFC 8829 5.1.3) asks an answerer to accept all four spellings of DTLS-SRTP.
_RTP_PROTOCOLS = frozenset(
    {"UDP/TLS/RTP/SAVPF", "TCP/TLS/RTP/SAVPF", "UDP/DTLS/RTP/SAVPF", "TCP/DTLS/RTP/SAVPF"}
)


def _priority(type_preference: int, local_preference: int, component: int = 1) -> int:
    """RFC 8445 5.1.2.1."""
    return (type_preference << 24) | (local_preference << 8) | (256 - component)


# Host UDP gets the top type preference. Host TCP gets 90 (what libwebrtc uses), so a browser
# that can reach us over UDP prefers it; its local preference follows RFC 6544 4.2
# (direction preference 4 for passive, times 2^13, plus the full other-preference).
HOST_UDP_PRIORITY = _priority(126, 65535)
HOST_TCP_PRIORITY = _priority(90, (4 << 13) | 8191)


class SdpError(ValueError):
    """The description is malformed or asks for something no answer can give."""


# --- the parsed description -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line."""

    username: str
    session_id: int
    session_version: int
    nettype: str
    addrtype: str
    address: str


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A DTLS certificate fingerprint (RFC 8122): ``sha-256`` and colon-separated hex."""

    algorithm: str
    value: str

    def __post_init__(self) -> None:
        if not _TOKEN.fullmatch(self.algorithm) or not _HEX_PAIRS.fullmatch(self.value):
            raise ValueError(f"invalid fingerprint {self.algorithm!r} {self.value!r}")


@dataclass(frozen=True, slots=True)
class Codec:
    """One payload type: ``a=rtpmap`` with its ``a=fmtp`` and ``a=rtcp-fb`` lines.

    ``channels`` is None when the rtpmap has no channel count; ``fmtp`` maps parameter names
    to values, with ``""`` for a parameter written without ``=`` (RED's ``111/111``);
    ``rtcp_fb`` holds feedback types such as ``nack``, ``nack pli`` or ``transport-cc``.
    """

    pt: int
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: Mapping[str, str] = field(default_factory=dict)
    rtcp_fb: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Msid:
    """``a=msid:<stream> <track>``; Chromium writes ``-`` for a track without a stream."""

    stream: str
    track: str | None


@dataclass(frozen=True, slots=True)
class SsrcGroup:
    """``a=ssrc-group``: ``FID`` pairs a media SSRC with its RTX SSRC; ``SIM`` lists the
    SSRCs of SSRC-signalled simulcast, lowest layer first."""

    semantics: str
    ssrcs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Rid:
    """``a=rid:<id> send|recv [restrictions]`` (RFC 8851)."""

    id: str
    direction: Literal["send", "recv"]
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SimulcastId:
    """One RID in ``a=simulcast``; ``paused`` when it was written ``~rid`` (RFC 8853)."""

    rid: str
    paused: bool = False

    def __str__(self) -> str:
        return f"~{self.rid}" if self.paused else self.rid


@dataclass(frozen=True, slots=True)
class Simulcast:
    """``a=simulcast``: per direction, the streams in order, each a tuple of alternatives."""

    send: tuple[tuple[SimulcastId, ...], ...] = ()
    recv: tuple[tuple[SimulcastId, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    """An ICE candidate, parsed only as far as we need; ``transport`` is lower-cased."""

    foundation: str
    component: int
    transport: str
    priority: int
    address: str
    port: int
    type: str
    tcptype: str | None = None


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One m-section. ICE credentials, ICE options, fingerprints, setup and direction fall
    back to the session level when the section does not say; ``other_lines`` keeps every
    line we do not interpret, verbatim."""

    kind: str
    port: int
    protocol: str
    formats: tuple[str, ...]
    mid: str
    direction: Direction
    ice_ufrag: str | None
    ice_pwd: str | None
    ice_options: tuple[str, ...]
    fingerprints: tuple[Fingerprint, ...]
    setup: Setup | None
    rtcp_mux: bool
    rtcp_rsize: bool
    bundle_only: bool
    codecs: tuple[Codec, ...]
    extmaps: Mapping[int, str]
    msid: Msid | None
    ssrcs: Mapping[int, Mapping[str, str]]
    ssrc_groups: tuple[SsrcGroup, ...]
    rids: tuple[Rid, ...]
    simulcast: Simulcast | None
    candidates: tuple[Candidate, ...]
    end_of_candidates: bool
    other_lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole description. ``bundle`` is the first ``a=group:BUNDLE`` (further groups stay
    in ``other_lines``); the ICE/DTLS fields are the session-level ones only."""

    origin: Origin
    bundle: tuple[str, ...]
    ice_lite: bool
    ice_ufrag: str | None
    ice_pwd: str | None
    ice_options: tuple[str, ...]
    fingerprints: tuple[Fingerprint, ...]
    setup: Setup | None
    media: tuple[MediaDescription, ...]
    other_lines: tuple[str, ...]

    def get(self, mid: str) -> MediaDescription | None:
        return next((media for media in self.media if media.mid == mid), None)


# --- parsing ----------------------------------------------------------------------------

# RFC 8866 token-char: what attribute names, mids, msid ids and most values are made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_DIGITS = re.compile(r"[0-9]{1,20}")  # bounded: int() of a megabyte of digits is slow
_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]{1,256}")  # RFC 8839 ice-char
_HEX_PAIRS = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*")
_RID_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")  # RFC 8851 rid-id
_VISIBLE = re.compile(r"[\x21-\x7e]+")  # a single word of visible ASCII


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    text: str

    def error(self, reason: str) -> SdpError:
        shown = self.text if len(self.text) <= 120 else self.text[:117] + "..."
        return SdpError(f"line {self.number}: {reason}: {shown!r}")


def _int(text: str, line: _Line, what: str, low: int, high: int) -> int:
    if not _DIGITS.fullmatch(text):
        raise line.error(f"{what} is not a number")
    number = int(text)
    if not low <= number <= high:
        raise line.error(f"{what} out of range")
    return number


def _token(text: str, line: _Line, what: str) -> str:
    if not _TOKEN.fullmatch(text):
        raise line.error(f"bad {what}")
    return text


def _required(value: str | None, line: _Line) -> str:
    """The value, stripped; never empty, so its ``split()`` has a first word."""
    if value is None or not value.strip():
        raise line.error("attribute needs a value")
    return value.strip()


def _params(text: str, line: _Line) -> dict[str, str]:
    """``a=1;b=2;c`` → ``{"a": "1", "b": "2", "c": ""}``, as in fmtp and rid lines."""
    params: dict[str, str] = {}
    for part in text.split(";"):
        item = part.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not _VISIBLE.fullmatch(name) or (value and not _VISIBLE.fullmatch(value)):
            raise line.error("bad parameter")
        params[name] = value
    return params


@dataclass(slots=True, kw_only=True)
class _Common:
    """What the session level and an m-section may both say."""

    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    ice_options: tuple[str, ...] | None = None
    fingerprints: list[Fingerprint] = field(default_factory=list)
    setup: Setup | None = None
    direction: Direction | None = None
    other: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class _SessionBuilder(_Common):
    origin: Origin | None = None
    bundle: tuple[str, ...] | None = None
    ice_lite: bool = False


@dataclass(slots=True, kw_only=True)
class _MediaBuilder(_Common):
    start: _Line
    kind: str
    port: int
    protocol: str
    formats: tuple[str, ...]
    rtp: bool
    mid: str | None = None
    rtcp_mux: bool = False
    rtcp_rsize: bool = False
    bundle_only: bool = False
    rtpmaps: dict[int, tuple[str, int, int | None]] = field(default_factory=dict)
    fmtps: dict[int, dict[str, str]] = field(default_factory=dict)
    feedback: list[tuple[str, str]] = field(default_factory=list)
    extmaps: dict[int, str] = field(default_factory=dict)
    msid: Msid | None = None
    ssrcs: dict[int, dict[str, str]] = field(default_factory=dict)
    ssrc_groups: list[SsrcGroup] = field(default_factory=list)
    rids: list[Rid] = field(default_factory=list)
    simulcast: Simulcast | None = None
    candidates: list[Candidate] = field(default_factory=list)
    end_of_candidates: bool = False


# Attribute handlers: (builder, value after the colon or None, line).


def _ice_ufrag(b: _Common, value: str | None, line: _Line) -> None:
    credential = _required(value, line)
    if not _ICE_CHARS.fullmatch(credential):
        raise line.error("bad ice-ufrag")
    if b.ice_ufrag is not None:
        raise line.error("second ice-ufrag")
    b.ice_ufrag = credential


def _ice_pwd(b: _Common, value: str | None, line: _Line) -> None:
    credential = _required(value, line)
    if not _ICE_CHARS.fullmatch(credential):
        raise line.error("bad ice-pwd")
    if b.ice_pwd is not None:
        raise line.error("second ice-pwd")
    b.ice_pwd = credential


def _ice_options(b: _Common, value: str | None, line: _Line) -> None:
    b.ice_options = tuple(_token(option, line, "ice option") for option in (value or "").split())


def _fingerprint(b: _Common, value: str | None, line: _Line) -> None:
    algorithm, _, digest = _required(value, line).partition(" ")
    try:
        b.fingerprints.append(Fingerprint(algorithm.lower(), digest.strip()))
    except ValueError:
        raise line.error("bad fingerprint") from None


def _setup(b: _Common, value: str | None, line: _Line) -> None:
    setup = _required(value, line)
    if setup not in _SETUPS:
        raise line.error("bad setup")
    if b.setup is not None:
        raise line.error("second setup")
    b.setup = cast(Setup, setup)


def _direction(b: _Common, name: str, line: _Line) -> None:
    if b.direction is not None:
        raise line.error("second direction attribute")
    b.direction = cast(Direction, name)


_COMMON: dict[str, Callable[[_Common, str | None, _Line], None]] = {
    "ice-ufrag": _ice_ufrag,
    "ice-pwd": _ice_pwd,
    "ice-options": _ice_options,
    "fingerprint": _fingerprint,
    "setup": _setup,
    "sendrecv": lambda b, _, line: _direction(b, "sendrecv", line),
    "sendonly": lambda b, _, line: _direction(b, "sendonly", line),
    "recvonly": lambda b, _, line: _direction(b, "recvonly", line),
    "inactive": lambda b, _, line: _direction(b, "inactive", line),
}


def _group(b: _SessionBuilder, value: str | None, line: _Line) -> None:
    semantics, *mids = _required(value, line).split()
    for mid in mids:
        _token(mid, line, "mid")
    if semantics == "BUNDLE" and b.bundle is None:
        if len(set(mids)) != len(mids):
            raise line.error("mid listed twice")
        b.bundle = tuple(mids)
    else:
        # One transport is all we do; a second BUNDLE group's sections are simply unbundled.
        b.other.append(line.text)


def _ice_lite(b: _SessionBuilder, value: str | None, line: _Line) -> None:
    b.ice_lite = True


_SESSION: dict[str, Callable[[_SessionBuilder, str | None, _Line], None]] = {
    "group": _group,
    "ice-lite": _ice_lite,
}


def _mid(b: _MediaBuilder, value: str | None, line: _Line) -> None:
    mid = _token(_required(value, line), line, "mid")
    if b.mid is not None:
        raise line.error("second mid")
    b.mid = mid


def _flag(name: str) -> Callable[[_MediaBuilder, str | None, _Line], None]:
    def handler(b: _MediaBuilder, value: str | None, line: _Line) -> None:
        setattr(b, name, True)

    return handler


def _payload_type(text: str, line: _Line) -> int:
    return _int(text, line, "payload type", 0, 127)


def _rtpmap(b: _MediaBuilder, value: str | None, line: _Line) -> None:
    pt_text, _, encoding = _required(value, line).partition(" ")
    pt = _payload_type(pt_text, line)
    if pt in b.rtpmaps:
        raise line.error("second rtpmap for this payload type")
    parts = encoding.strip().split("/")
    if len(parts) not in (2, 3):
        raise line.error("rtpmap is not <name>/<clock rate>[/<channels>]")
    name = _token(parts[0], line, "encoding name")
    clock_rate = _int(parts[1], line, "clock rate", 1, 0xFFFFFFFF)
    channels = _int(parts[2], line, "channel count", 1, 255) if len(parts) == 3 else None
    b.rtpmaps[pt] = (name, clock_rate, channels)


def _fmtp(b: _MediaBuilder, value: str | None, line: _Line) -> None:
    pt_text, _, params = _required(value, line).partition(" ")
    pt = _payload_type(pt_text, line)
    if pt in b.fmtps:
        raise line.error("second fmtp for this payload type")
    b.fmtps[pt] = _params(params, line)


def _rtcp_fb(b: _MediaBuilder, value: str | None, line: _Line) -> None:
    target, *words = _required(value, line).split()
    if target != "*":
        target = str(_payload_type(target, line))
    if not words:
        raise line.error("rtcp-fb without a feedback type")
    b.feedback.append((target, " ".join(_token(word, line, "feedback") for word in words)))


def _extmap(b: _MediaBuilder, value: str | None, line: _Line) -> None:
    key, *rest = _required(value, line).split()
    id_text, slash, direction = key.partition("/")
    # RFC 8285: 1-14 in one-byte headers, up to 255 with two-byte ones.
    ext_id = _int(id_text, line, "extension id", 1, 255)
    if slash and direction not in _DIRECTIONS:
        raise line.error("bad extmap direction")
    if not rest or not _VISIBLE.fullmatch(rest[0]):
        raise line.error("extmap without a URI")
    if b.extmaps.get(ext_id, rest[0]) != rest[0]:
        raise line.error("extension id used twice")
    b.extmaps[ext_id] = rest[0]


def _msid(b: _MediaBuilder, value: str | None, line: _Line) -> None:
    words = _required(value, line).split()
    if len(words) not in (1, 2):
        raise line.error("msid is not <stream> [<track>]")
    for word in words:
        _token(word, line, "msid id")
    if b.msid is None:
        b.msid = Msid(words[0], words[1] if len(words) == 2 else None)
    else:  # unified plan has one track; a second stream for it is not our business
        b.other.append(line.text)


def _ssrc(b: _MediaBuilder, value: str | None, line: _Line) -> None:
    ssrc_text, _, description = _required(value, line).partition(" ")
    ssrc = _int(ssrc_text, line, "SSRC", 0, 0xFFFFFFFF)
    name, _, attr_value = description.partition(":")
    b.ssrcs.setdefault(ssrc, {})[_token(name, line, "SSRC attribute")] = attr_value


def _ssrc_group(b: _MediaBuilder, value: str | None, line: _Line) -> None:
    semantics, *ssrcs = _required(value, line).split()
    if not ssrcs:
        raise line.error("ssrc-group without SSRCs")
    numbers = tuple(_int(ssrc, line, "SSRC", 0, 0xFFFFFFFF) for ssrc in ssrcs)
    b.ssrc_groups.append(SsrcGroup(_token(semantics, line, "semantics"), numbers))


def _rid(b: _MediaBuilder, value: str | None, line: _Line) -> None:
    words = _required(value, line).split(maxsplit=2)
    if len(words) < 2 or not _RID_ID.fullmatch(words[0]) or words[1] not in ("send", "recv"):
        raise line.error("rid is not <id> send|recv [<restrictions>]")
    if any(rid.id == words[0] for rid in b.rids):
        raise line.error("rid declared twice")
    params = _params(words[2], line) if len(words) == 3 else {}
    b.rids.append(Rid(words[0], cast(Literal["send", "recv"], words[1]), params))


def _simulcast_streams(text: str, line: _Line) -> tuple[tuple[SimulcastId, ...], ...]:
    # The pre-RFC draft wrote "send rid=a;b"; old Firefox still sent that.
    text = text.removeprefix("rid=")
    streams = []
    for stream in text.split(";"):
        alternatives = []
        for item in stream.split(","):
            paused = item.startswith("~")
            rid = item[1:] if paused else item
            if not _RID_ID.fullmatch(rid):
                raise line.error("bad rid in simulcast")
            alternatives.append(SimulcastId(rid, paused))
        streams.append(tuple(alternatives))
    return tuple(streams)


def _simulcast(b: _MediaBuilder, value: str | None, line: _Line) -> None:
    words = _required(value, line).split()
    if b.simulcast is not None or len(words) not in (2, 4):
        raise line.error("simulcast is not send|recv <streams> [send|recv <streams>]")
    lists = dict(zip(words[::2], (_simulcast_streams(w, line) for w in words[1::2]), strict=True))
    if len(lists) != len(words) // 2 or not set(lists) <= {"send", "recv"}:
        raise line.error("bad simulcast direction")
    b.simulcast = Simulcast(send=lists.get("send", ()), recv=lists.get("recv", ()))


def _candidate(b: _MediaBuilder, value: str | None, line: _Line) -> None:
    words = _required(value, line).split()
    if len(words) < 8 or words[6] != "typ" or len(words) % 2:
        raise line.error(
            "candidate is not <foundation> <component> <transport> "
            "<priority> <address> <port> typ <type> [<name> <value>]..."
        )
    if not _ICE_CHARS.fullmatch(words[0]) or len(words[0]) > 32:
        raise line.error("bad candidate foundation")
    extensions = dict(zip(words[8::2], words[9::2], strict=True))
    b.candidates.append(
        Candidate(
            foundation=words[0],
            component=_int(words[1], line, "component", 1, 256),
            transport=_token(words[2], line, "transport").lower(),
            priority=_int(words[3], line, "priority", 0, 0xFFFFFFFF),
            address=words[4],
            port=_int(words[5], line, "port", 0, 65535),
            type=_token(words[7], line, "candidate type"),
            tcptype=extensions.get("tcptype"),
        )
    )


_MEDIA: dict[str, Callable[[_MediaBuilder, str | None, _Line], None]] = {
    "mid": _mid,
    "rtcp-mux": _flag("rtcp_mux"),
    "rtcp-rsize": _flag("rtcp_rsize"),
    "bundle-only": _flag("bundle_only"),
    "end-of-candidates": _flag("end_of_candidates"),
    "extmap": _extmap,
    "msid": _msid,
    "ssrc": _ssrc,
    "ssrc-group": _ssrc_group,
    "rid": _rid,
    "simulcast": _simulcast,
    "candidate": _candidate,
}
# Payload-type attributes only mean something in RTP sections; elsewhere they stay raw.
_RTP_MEDIA: dict[str, Callable[[_MediaBuilder, str | None, _Line], None]] = {
    "rtpmap": _rtpmap,
    "fmtp": _fmtp,
    "rtcp-fb": _rtcp_fb,
}


def _attribute(target: _SessionBuilder | _MediaBuilder, body: str, line: _Line) -> None:
    name, colon, value = body.partition(":")
    _token(name, line, "attribute name")
    given = value if colon else None
    if isinstance(target, _MediaBuilder):
        media_handler = _MEDIA.get(name) or (_RTP_MEDIA.get(name) if target.rtp else None)
        if media_handler is not None:
            media_handler(target, given, line)
            return
    else:
        session_handler = _SESSION.get(name)
        if session_handler is not None:
            session_handler(target, given, line)
            return
    common_handler = _COMMON.get(name)
    if common_handler is not None:
        common_handler(target, given, line)
    else:
        target.other.append(line.text)


def _origin(value: str, line: _Line) -> Origin:
    words = value.split()
    if len(words) != 6:
        raise line.error("o= is not <username> <id> <version> <nettype> <addrtype> <address>")
    return Origin(
        username=words[0],
        session_id=_int(words[1], line, "session id", 0, 2**64 - 1),
        session_version=_int(words[2], line, "session version", 0, 2**64 - 1),
        nettype=words[3],
        addrtype=words[4],
        address=words[5],
    )


def _media_line(value: str, line: _Line) -> _MediaBuilder:
    words = value.split()
    if len(words) < 4:
        raise line.error("m= is not <media> <port> <protocol> <format>...")
    kind = _token(words[0], line, "media kind")
    # A "/<count>" after the port (RFC 8866 layered encodings) is never used by WebRTC.
    port = _int(words[1].partition("/")[0], line, "port", 0, 65535)
    protocol = words[2]
    if not re.fullmatch(r"[A-Za-z0-9/_.-]+", protocol):
        raise line.error("bad protocol")
    formats = tuple(_token(word, line, "format") for word in words[3:])
    rtp = "RTP" in protocol.split("/")
    if rtp:
        pts = [_int(word, line, "payload type", 0, 127) for word in formats]
        if len(set(pts)) != len(pts):
            raise line.error("payload type listed twice")
    return _MediaBuilder(
        start=line, kind=kind, port=port, protocol=protocol, formats=formats, rtp=rtp
    )


def _codecs(b: _MediaBuilder) -> tuple[Codec, ...]:
    """In m-line order, which is the offerer's preference; payload types without an rtpmap
    (static ones like PCMU's 0) and rtpmaps for unlisted payload types are left out."""
    codecs = []
    for pt in map(int, b.formats) if b.rtp else ():
        if pt not in b.rtpmaps:
            continue
        name, clock_rate, channels = b.rtpmaps[pt]
        feedback = [fb for target, fb in b.feedback if target in ("*", str(pt))]
        codecs.append(
            Codec(
                pt=pt,
                name=name,
                clock_rate=clock_rate,
                channels=channels,
                fmtp=b.fmtps.get(pt, {}),
                rtcp_fb=tuple(dict.fromkeys(feedback)),
            )
        )
    return tuple(codecs)


def _finish(b: _MediaBuilder, session: _SessionBuilder) -> MediaDescription:
    if b.mid is None:
        raise b.start.error("m-section without a=mid")
    return MediaDescription(
        kind=b.kind,
        port=b.port,
        protocol=b.protocol,
        formats=b.formats,
        mid=b.mid,
        direction=b.direction or session.direction or "sendrecv",
        ice_ufrag=b.ice_ufrag or session.ice_ufrag,
        ice_pwd=b.ice_pwd or session.ice_pwd,
        ice_options=b.ice_options if b.ice_options is not None else session.ice_options or (),
        fingerprints=tuple(b.fingerprints or session.fingerprints),
        setup=b.setup or session.setup,
        rtcp_mux=b.rtcp_mux,
        rtcp_rsize=b.rtcp_rsize,
        bundle_only=b.bundle_only,
        codecs=_codecs(b),
        extmaps=b.extmaps,
        msid=b.msid,
        ssrcs=b.ssrcs,
        ssrc_groups=tuple(b.ssrc_groups),
        rids=tuple(b.rids),
        simulcast=b.simulcast,
        candidates=tuple(b.candidates),
        end_of_candidates=b.end_of_candidates,
        other_lines=tuple(b.other),
    )


def parse_sdp(text: str) -> SessionDescription:
    """Parse a session description; CRLF or LF line ends, blank lines ignored.

    Raises ``SdpError`` (naming the line) for anything malformed, never another exception.
    """
    if len(text) > MAX_SDP_LENGTH:
        raise SdpError(f"description longer than {MAX_SDP_LENGTH} characters")
    session = _SessionBuilder()
    sections: list[_MediaBuilder] = []
    started = False
    for number, raw in enumerate(text.split("\n"), start=1):
        body = raw.removesuffix("\r")
        if not body:
            continue
        line = _Line(number, body)
        if "\r" in body or "\x00" in body:
            raise line.error("CR or NUL inside a line")
        if len(body) < 2 or body[1] != "=" or not "a" <= body[0] <= "z":
            raise line.error("not a <type>=<value> line")
        kind, value = body[0], body[2:]
        if not started:
            if body != "v=0":
                raise line.error("a description starts with v=0")
            started = True
        elif kind == "v":
            raise line.error("second v= line")
        elif kind == "m":
            sections.append(_media_line(value, line))
        elif kind == "a":
            _attribute(sections[-1] if sections else session, value, line)
        elif kind == "o":
            if sections or session.origin is not None:
                raise line.error("o= must appear once, before the first m=")
            session.origin = _origin(value, line)
        else:
            (sections[-1] if sections else session).other.append(body)
    if not started:
        raise SdpError("empty description")
    if session.origin is None:
        raise SdpError("no o= line")
    media = tuple(_finish(b, session) for b in sections)
    mids = [m.mid for m in media]
    if len(set(mids)) != len(mids):
        twice = sorted({mid for mid in mids if mids.count(mid) > 1})
        raise SdpError(f"m-sections share a mid: {twice}")
    if missing := set(session.bundle or ()) - set(mids):
        raise SdpError(f"BUNDLE names mids without an m-section: {sorted(missing)}")
    return SessionDescription(
        origin=session.origin,
        bundle=session.bundle or (),
        ice_lite=session.ice_lite,
        ice_ufrag=session.ice_ufrag,
        ice_pwd=session.ice_pwd,
        ice_options=session.ice_options or (),
        fingerprints=tuple(session.fingerprints),
        setup=session.setup,
        media=media,
        other_lines=tuple(session.other),
    )


# --- negotiation ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NegotiatedCodec:
    """A codec we accept, its feedback cut to what we support, and its RTX payload type."""

    codec: Codec
    rtx_pt: int | None = None


@dataclass(frozen=True, slots=True)
class SsrcEncoding:
    """One encoding a client announced by SSRC, with the RTX SSRC from its FID group."""

    ssrc: int
    rtx_ssrc: int | None = None


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """What we can do with one m-section.

    ``direction`` is the client's. When the client sends, either ``rids`` (RID simulcast, in
    the offered order, which is the order of its ``sendEncodings``) or ``ssrcs`` say what to
    expect; RTP then carries the RID or the SSRC.
    ``reject_reason`` is None when the section can be accepted; then ``codecs`` is never
    empty. A rejected section has no codecs, extensions or encodings.
    """

    mid: str
    kind: str
    direction: Direction
    codecs: tuple[NegotiatedCodec, ...] = ()
    extensions: Mapping[str, int] = field(default_factory=dict)
    rids: tuple[SimulcastId, ...] = ()
    ssrcs: tuple[SsrcEncoding, ...] = ()
    reject_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteTransport:
    """The client's side of the one BUNDLE transport, from the BUNDLE-tagged m-section."""

    ice_ufrag: str
    ice_pwd: str
    fingerprints: tuple[Fingerprint, ...]
    setup: Setup | None
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True, slots=True)
class Negotiation:
    """The whole offer against what we support; ``transport`` is None without BUNDLE."""

    transport: RemoteTransport | None
    media: tuple[NegotiatedMedia, ...]

    def get(self, mid: str) -> NegotiatedMedia | None:
        return next((media for media in self.media if media.mid == mid), None)


def _supported_feedback(codec: Codec, kind: str) -> Codec:
    allowed = _AUDIO_FEEDBACK if kind == "audio" else _VIDEO_FEEDBACK
    return replace(codec, rtcp_fb=tuple(fb for fb in codec.rtcp_fb if fb in allowed))


def _h264_rank(codec: Codec) -> int | None:
    """Lower is better; None for H264 we cannot forward (only packetization-mode=1: mode 0
    means one NAL unit per packet, and we neither split nor aggregate)."""
    if codec.fmtp.get("packetization-mode") != "1":
        return None
    # RFC 6184 8.1: without the parameter the profile is Baseline, level 1.0.
    profile_level_id = codec.fmtp.get("profile-level-id", "42000a").lower()
    if not re.fullmatch(r"[0-9a-f]{6}", profile_level_id):
        return None
    if profile_level_id.startswith("42e0"):  # what every browser offers and encodes
        return 0
    profile_idc, constraints = int(profile_level_id[:2], 16), int(profile_level_id[2:4], 16)
    # Constrained Baseline written another way (constraint_set1 on Baseline, set0 on Main)
    # decodes everywhere, so any subscriber can be sent it; then plain Baseline; then the rest.
    if (profile_idc == 0x42 and constraints & 0x40) or (profile_idc == 0x4D and constraints & 0x80):
        return 1
    return 2 if profile_idc == 0x42 else 3


def _rtx_for(codec: Codec, offered: Iterable[Codec]) -> int | None:
    return next(
        (
            rtx.pt
            for rtx in offered
            if rtx.name.lower() == "rtx"
            and rtx.clock_rate == codec.clock_rate
            and rtx.fmtp.get("apt") == str(codec.pt)
        ),
        None,
    )


def negotiate_codecs(media: MediaDescription) -> tuple[NegotiatedCodec, ...]:
    """The offered codecs we support, in our order of preference, keeping the offer's
    payload types and fmtp (an answer must): audio Opus; video VP8, then one H264."""
    offered = media.codecs
    if media.kind == "audio":
        opus = next(
            (
                c
                for c in offered
                if c.name.lower() == "opus" and c.clock_rate == 48000 and c.channels == 2
            ),
            None,
        )
        # No RTX for audio: a retransmitted 20 ms frame arrives after it was needed.
        return () if opus is None else (NegotiatedCodec(_supported_feedback(opus, "audio")),)
    if media.kind != "video":
        return ()
    vp8 = next((c for c in offered if c.name.lower() == "vp8" and c.clock_rate == 90000), None)
    # One H264 only: subscribers get exactly what the publisher sends, so every peer should
    # settle on the same profile. min() keeps the first offered among equals.
    h264s = [
        (rank, c)
        for c in offered
        if c.name.lower() == "h264"
        and c.clock_rate == 90000
        and (rank := _h264_rank(c)) is not None
    ]
    h264 = min(h264s, key=lambda ranked: ranked[0])[1] if h264s else None
    return tuple(
        NegotiatedCodec(_supported_feedback(codec, "video"), _rtx_for(codec, offered))
        for codec in (vp8, h264)
        if codec is not None
    )


def negotiate_extensions(media: MediaDescription) -> dict[str, int]:
    """URI → id for the offered header extensions we support; ids are the offer's."""
    extensions: dict[str, int] = {}
    for ext_id, uri in media.extmaps.items():
        if media.kind in SUPPORTED_EXTENSIONS.get(uri, ()):
            extensions.setdefault(uri, ext_id)
    return extensions


def _offered_encodings(
    media: MediaDescription,
) -> tuple[tuple[SimulcastId, ...], tuple[SsrcEncoding, ...]]:
    if media.direction not in ("sendonly", "sendrecv"):
        # aiortc lists SSRCs on recvonly sections too: they never send, so ignore them.
        return (), ()
    if media.simulcast is not None and media.simulcast.send:
        # RFC 8853 5.1: a simulcast RID must be declared with a=rid ... send. Of a stream's
        # alternatives we keep the first valid one (an answerer may drop alternatives).
        declared = {rid.id for rid in media.rids if rid.direction == "send"}
        chosen: dict[str, SimulcastId] = {}
        for stream in media.simulcast.send:
            first = next((alt for alt in stream if alt.rid in declared), None)
            if first is not None and first.rid not in chosen:
                chosen[first.rid] = first
        if chosen:
            return tuple(chosen.values()), ()
    fid = {
        group.ssrcs[0]: group.ssrcs[1]
        for group in media.ssrc_groups
        if group.semantics == "FID" and len(group.ssrcs) == 2
    }
    repairs = {
        ssrc
        for group in media.ssrc_groups
        if group.semantics in ("FID", "FEC-FR", "FEC")
        for ssrc in group.ssrcs[1:]
    }
    sim = next((group for group in media.ssrc_groups if group.semantics == "SIM"), None)
    primaries = sim.ssrcs if sim is not None else [s for s in media.ssrcs if s not in repairs]
    return (), tuple(SsrcEncoding(ssrc, fid.get(ssrc)) for ssrc in primaries)


def _reject_reason(media: MediaDescription, bundle: tuple[str, ...]) -> str | None:
    if media.kind == "application":
        return "data channels are not supported"
    if media.kind not in ("audio", "video"):
        return f"media kind {media.kind!r} is not supported"
    if media.protocol not in _RTP_PROTOCOLS:
        return f"protocol {media.protocol} is not DTLS-SRTP"
    # Port 0 is the offerer rejecting or stopping the section, except with bundle-only
    # (RFC 8843 6: the section shares the BUNDLE transport and has no port of its own).
    if media.port == 0 and not media.bundle_only:
        return "port 0 in the offer"
    if media.mid not in bundle:
        return "not in the BUNDLE group"
    if not media.rtcp_mux:
        return "no rtcp-mux"
    return None


def negotiate_media(media: MediaDescription, bundle: tuple[str, ...]) -> NegotiatedMedia:
    """One m-section against what we support; ``bundle`` is the offer's BUNDLE group."""
    reason = _reject_reason(media, bundle)
    codecs = negotiate_codecs(media) if reason is None else ()
    if reason is None and not codecs:
        reason = "no codec in common"
    if reason is not None:
        return NegotiatedMedia(media.mid, media.kind, media.direction, reject_reason=reason)
    rids, ssrcs = _offered_encodings(media)
    return NegotiatedMedia(
        mid=media.mid,
        kind=media.kind,
        direction=media.direction,
        codecs=codecs,
        extensions=negotiate_extensions(media),
        rids=rids,
        ssrcs=ssrcs,
    )


def _remote_transport(offer: SessionDescription) -> RemoteTransport | None:
    if not offer.bundle:
        return None
    tagged = offer.get(offer.bundle[0])
    if tagged is None:  # parse_sdp rules this out; a hand-made description may not
        raise SdpError(f"BUNDLE names mid {offer.bundle[0]!r}, which has no m-section")
    where = f"m-section {tagged.mid!r}"
    if tagged.ice_ufrag is None or tagged.ice_pwd is None:
        raise SdpError(f"{where} has no ICE credentials")
    if not tagged.fingerprints:
        raise SdpError(f"{where} has no DTLS fingerprint")
    if tagged.setup not in (None, "actpass", "active"):  # absent means active (RFC 4145 4)
        raise SdpError(f"{where} has setup:{tagged.setup}, but we are always DTLS server")
    return RemoteTransport(
        ice_ufrag=tagged.ice_ufrag,
        ice_pwd=tagged.ice_pwd,
        fingerprints=tagged.fingerprints,
        setup=tagged.setup,
        candidates=tagged.candidates,
    )


def negotiate(offer: SessionDescription) -> Negotiation:
    """The offer against what we support. Raises ``SdpError`` if the offer cannot be
    answered at all (no ICE credentials or fingerprint, an ICE-lite or DTLS-server peer)."""
    if offer.ice_lite:
        raise SdpError("the offerer is ICE-lite too: nobody would run connectivity checks")
    return Negotiation(
        transport=_remote_transport(offer),
        media=tuple(negotiate_media(media, offer.bundle) for media in offer.media),
    )


# --- the answer -------------------------------------------------------------------------


def _check_id(value: str, what: str) -> None:
    if not _TOKEN.fullmatch(value) or len(value) > 64:  # RFC 8830: 1*64token-char
        raise ValueError(f"invalid {what} {value!r}")


def _check_ssrc(value: int) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"SSRC out of range: {value}")


@dataclass(frozen=True, slots=True)
class SenderPlan:
    """What we send on one m-section (a consumer): its SSRCs and how the browser labels it."""

    ssrc: int
    rtx_ssrc: int | None
    cname: str
    stream_id: str
    track_id: str

    def __post_init__(self) -> None:
        _check_ssrc(self.ssrc)
        if self.rtx_ssrc is not None:
            _check_ssrc(self.rtx_ssrc)
            if self.rtx_ssrc == self.ssrc:
                raise ValueError("the RTX SSRC must differ from the media SSRC")
        if not _VISIBLE.fullmatch(self.cname) or len(self.cname) > 255:
            raise ValueError(f"invalid cname {self.cname!r}")
        _check_id(self.stream_id, "stream id")
        _check_id(self.track_id, "track id")


@dataclass(frozen=True, slots=True)
class MediaPlan:
    """Accept or reject one mid; ``sender`` when we send on it (client recvonly/sendrecv)."""

    accept: bool
    sender: SenderPlan | None = None

    def __post_init__(self) -> None:
        if self.sender is not None and not self.accept:
            raise ValueError("a rejected m-section cannot carry a sender")


_REJECT = MediaPlan(accept=False)


@dataclass(frozen=True, slots=True)
class AnswerPlan:
    """Our side of the answer. Mids the plan does not name are rejected."""

    session_id: int
    session_version: int
    ice_ufrag: str
    ice_pwd: str
    fingerprint: Fingerprint
    address: str  # announced for both the UDP and the passive TCP candidate
    port: int
    media: Mapping[str, MediaPlan]

    def __post_init__(self) -> None:
        for number in (self.session_id, self.session_version):
            # JSEP 5.2.1: 64 bits with the top one clear, so it never reads as negative.
            if not 0 <= number < 2**63:
                raise ValueError(f"session id/version out of range: {number}")
        # RFC 8839 5.4: ufrag 4-256 and pwd 22-256 ice-chars.
        if not (_ICE_CHARS.fullmatch(self.ice_ufrag) and len(self.ice_ufrag) >= 4):
            raise ValueError(f"invalid ICE ufrag {self.ice_ufrag!r}")
        if not (_ICE_CHARS.fullmatch(self.ice_pwd) and len(self.ice_pwd) >= 22):
            raise ValueError("invalid ICE password")
        ipaddress.ip_address(self.address)  # raises ValueError
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")


def _answer_direction(client: Direction, we_send: bool, mid: str) -> Direction:
    client_sends = client in ("sendrecv", "sendonly")
    client_receives = client in ("sendrecv", "recvonly")
    if we_send and not client_receives:
        raise ValueError(f"the plan sends on mid {mid!r}, which the client offered {client}")
    # Without a sender we narrow: a client recvonly section we have nothing for is inactive.
    if we_send:
        return "sendrecv" if client_sends else "sendonly"
    return "recvonly" if client_sends else "inactive"


def _codec_lines(negotiated: NegotiatedCodec) -> list[str]:
    codec = negotiated.codec
    encoding = f"{codec.name}/{codec.clock_rate}"
    if codec.channels is not None:
        encoding += f"/{codec.channels}"
    lines = [f"a=rtpmap:{codec.pt} {encoding}"]
    lines += [f"a=rtcp-fb:{codec.pt} {fb}" for fb in codec.rtcp_fb]
    if codec.fmtp:
        params = ";".join(f"{k}={v}" if v else k for k, v in codec.fmtp.items())
        lines.append(f"a=fmtp:{codec.pt} {params}")
    if negotiated.rtx_pt is not None:
        lines += [
            f"a=rtpmap:{negotiated.rtx_pt} rtx/{codec.clock_rate}",
            f"a=fmtp:{negotiated.rtx_pt} apt={codec.pt}",
        ]
    return lines


def _accepted_section(
    media: MediaDescription,
    negotiated: NegotiatedMedia,
    sender: SenderPlan | None,
    plan: AnswerPlan,
) -> list[str]:
    direction = _answer_direction(negotiated.direction, sender is not None, media.mid)
    pts = [str(pt) for nc in negotiated.codecs for pt in (nc.codec.pt, nc.rtx_pt) if pt is not None]
    lines = [
        f"m={media.kind} 9 {media.protocol} {' '.join(pts)}",
        "c=IN IP4 0.0.0.0",
        f"a=ice-ufrag:{plan.ice_ufrag}",
        f"a=ice-pwd:{plan.ice_pwd}",
        f"a=fingerprint:{plan.fingerprint.algorithm} {plan.fingerprint.value}",
        "a=setup:passive",
        f"a=mid:{media.mid}",
        f"a={direction}",
        "a=rtcp-mux",
    ]
    if media.rtcp_rsize:
        lines.append("a=rtcp-rsize")
    lines += [f"a=extmap:{ext_id} {uri}" for uri, ext_id in negotiated.extensions.items()]
    for codec in negotiated.codecs:
        lines += _codec_lines(codec)
    if negotiated.rids:
        lines += [f"a=rid:{rid.rid} recv" for rid in negotiated.rids]
        lines.append(f"a=simulcast:recv {';'.join(map(str, negotiated.rids))}")
    if sender is not None:
        lines += _sender_lines(sender, any(nc.rtx_pt is not None for nc in negotiated.codecs))
    # ICE ignores c=; the candidates carry the address, IPv4 or IPv6.
    lines += [
        f"a=candidate:1 1 udp {HOST_UDP_PRIORITY} {plan.address} {plan.port} typ host",
        f"a=candidate:2 1 tcp {HOST_TCP_PRIORITY} {plan.address} {plan.port} typ host"
        " tcptype passive",
        "a=end-of-candidates",
    ]
    return lines


def _sender_lines(sender: SenderPlan, rtx_negotiated: bool) -> list[str]:
    msid = f"{sender.stream_id} {sender.track_id}"
    ssrcs = [sender.ssrc]
    lines = [f"a=msid:{msid}"]
    if sender.rtx_ssrc is not None and rtx_negotiated:
        ssrcs.append(sender.rtx_ssrc)
        lines.append(f"a=ssrc-group:FID {sender.ssrc} {sender.rtx_ssrc}")
    for ssrc in ssrcs:
        lines += [f"a=ssrc:{ssrc} cname:{sender.cname}", f"a=ssrc:{ssrc} msid:{msid}"]
    return lines


def _rejected_section(media: MediaDescription) -> list[str]:
    # RFC 8829 5.3.1: port 0, the offered formats, and the mid so the offerer can match it.
    return [
        f"m={media.kind} 0 {media.protocol} {' '.join(media.formats)}",
        "c=IN IP4 0.0.0.0",
        f"a=mid:{media.mid}",
    ]


def build_answer(offer: SessionDescription, plan: AnswerPlan) -> str:
    """The answer to ``offer``: m-sections in the offer's order, accepted ones bundled.

    Raises ``SdpError`` if the offer cannot be answered (see ``negotiate``) and
    ``ValueError`` if the plan names a mid the offer lacks, accepts a section that
    negotiation rejected, or sends where the client does not receive.
    """
    negotiation = negotiate(offer)
    if unknown := set(plan.media) - {media.mid for media in offer.media}:
        raise ValueError(f"the plan names mids the offer does not have: {sorted(unknown)}")
    accepted: list[str] = []
    sections: list[str] = []
    for media, negotiated in zip(offer.media, negotiation.media, strict=True):
        decision = plan.media.get(media.mid, _REJECT)
        if not decision.accept:
            sections += _rejected_section(media)
            continue
        if negotiated.reject_reason is not None:
            raise ValueError(f"mid {media.mid!r} cannot be accepted: {negotiated.reject_reason}")
        sections += _accepted_section(media, negotiated, decision.sender, plan)
        accepted.append(media.mid)
    lines = [
        "v=0",
        f"o=- {plan.session_id} {plan.session_version} IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=ice-lite",
    ]
    if accepted:
        lines.append(f"a=group:BUNDLE {' '.join(accepted)}")
    lines.append("a=msid-semantic: WMS *")
    return "\r\n".join(lines + sections) + "\r\n"
