"""Sans-IO WebSocket (RFC 6455) codec.

Bytes in, typed events out; method calls in, bytes out. Nothing here touches a socket or an
event loop: the gateway (server role) and the client SDK (client role) wrap it in their own
I/O shells. The shape follows h11 (small frozen events, an explicit state, bounded buffers)
and the sans-IO protocol of the ``websockets`` library (a misbehaving peer never makes the
parser raise; it fails the connection with a close code instead).

Two kinds of error:

* ``LocalProtocolError`` is raised when *we* misuse the API (sending after the close
  handshake started, a 126-byte ping, an unsendable close code, ...).
* A peer that breaks the protocol *fails* the connection: a close frame with code 1002, 1007
  or 1009 is queued in ``data_to_send()``, reading stops and ``close_code`` says why.

A shell drives a connection like this::

    conn.receive_data(chunk)              # b"" when the peer closed TCP (EOF)
    for event in conn.events_received():
        ...
    transport.write(conn.data_to_send())
    if conn.close_expected:
        # server: close TCP now; client: give the server a moment to close first
        ...

After ``send_close()`` the state is CLOSING and ``close_expected`` stays False until the peer
answers; the shell should bound that wait with a timeout and close TCP itself if it expires.

No extensions are negotiated, so RSV1-3 must be zero and messages are never compressed.
"""

from __future__ import annotations

import base64
import codecs
import enum
import hashlib
import os
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "SUBPROTOCOL",
    "CloseCode",
    "CloseReceived",
    "Event",
    "HandshakeError",
    "LocalProtocolError",
    "Message",
    "Opcode",
    "Ping",
    "Pong",
    "Role",
    "State",
    "WebSocketConnection",
    "accept_key",
    "check_client_handshake",
    "check_server_handshake_response",
    "client_handshake_request",
    "encode_close_payload",
    "encode_frame",
    "new_client_key",
    "server_handshake_response",
]

SUBPROTOCOL = "parta.v1"

# Fixed by RFC 6455 section 1.3.
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Opcode(enum.IntEnum):
    CONTINUATION = 0
    TEXT = 1
    BINARY = 2
    CLOSE = 8
    PING = 9
    PONG = 10


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


class Role(enum.Enum):
    SERVER = "server"
    CLIENT = "client"


class State(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"  # we sent a close frame (or failed) and wait for the peer / EOF
    CLOSED = "closed"  # close handshake finished or the peer closed TCP; nothing more to do


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A complete, reassembled data message: ``str`` for TEXT, ``bytes`` for BINARY."""

    data: bytes | str


@dataclass(frozen=True, slots=True)
class Ping:
    """The peer pinged; the matching pong is already queued in ``data_to_send()``."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame; ``code`` is 1005 (NO_STATUS) when it carried no payload."""

    code: int
    reason: str


Event: TypeAlias = Message | Ping | Pong | CloseReceived


# --- errors -------------------------------------------------------------------------------


class LocalProtocolError(Exception):
    """The caller used the codec wrongly; the peer is not to blame."""


class HandshakeError(Exception):
    """The opening handshake failed.

    Server side (``check_client_handshake``): ``status``, ``reason`` and ``headers`` describe
    the HTTP error response to send. Client side (``check_server_handshake_response``):
    ``status`` is the status the server answered with.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]

    def __init__(self, status: int, reason: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        # All three in args so the exception survives pickling/copying intact.
        super().__init__(status, reason, tuple(headers))
        self.status = status
        self.reason = reason
        self.headers = tuple(headers)

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


# --- handshake ----------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Visible ASCII, space and tab: rules out CR/LF header injection and non-ASCII surprises.
_FIELD_VALUE_RE = re.compile(r"[\t\x20-\x7e]*")
_REQUEST_TARGET_RE = re.compile(r"/[\x21-\x7e]*")
_HOST_RE = re.compile(r"[\x21-\x7e]+")

_UPGRADE_REQUIRED_HEADERS = (("Upgrade", "websocket"), ("Connection", "Upgrade"))


def _tokens(value: str | None) -> list[str]:
    """Split a comma-separated header value into lower-cased tokens."""
    if not value:
        return []
    return [token.strip().lower() for token in value.split(",")]


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + _ACCEPT_GUID, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def new_client_key() -> str:
    """A fresh random Sec-WebSocket-Key: base64 of 16 random bytes."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def check_client_handshake(method: str, headers: Mapping[str, str]) -> str:
    """Validate a client's opening handshake (server side) and return its key.

    ``headers`` must have lower-case names; repeated headers joined with ", ". Raises
    ``HandshakeError`` carrying the HTTP status, reason and headers of the error response.
    """
    if method != "GET":
        raise HandshakeError(405, "WebSocket handshake requires GET", (("Allow", "GET"),))
    if "websocket" not in _tokens(headers.get("upgrade")):
        raise HandshakeError(426, "missing 'Upgrade: websocket' header", _UPGRADE_REQUIRED_HEADERS)
    if "upgrade" not in _tokens(headers.get("connection")):
        raise HandshakeError(426, "missing 'Connection: Upgrade' header", _UPGRADE_REQUIRED_HEADERS)
    if headers.get("sec-websocket-version", "").strip() != "13":
        raise HandshakeError(
            426, "unsupported WebSocket version", (("Sec-WebSocket-Version", "13"),)
        )
    key = headers.get("sec-websocket-key", "").strip()
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except ValueError:  # binascii.Error and UnicodeEncodeError both derive from it
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(400, "invalid Sec-WebSocket-Key header")
    # Subprotocol names are case-sensitive (RFC 6455 4.1), so no lower-casing here.
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    if SUBPROTOCOL not in offered:
        raise HandshakeError(
            400, f"Sec-WebSocket-Protocol must offer the {SUBPROTOCOL} subprotocol"
        )
    return key


def _header_lines(headers: Sequence[tuple[str, str]]) -> list[str]:
    lines = []
    for name, value in headers:
        if not _TOKEN_RE.fullmatch(name) or not _FIELD_VALUE_RE.fullmatch(value):
            raise LocalProtocolError(f"invalid header {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    return lines


def server_handshake_response(key: str, extra_headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """The complete ``101 Switching Protocols`` response for a validated client key."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
        f"Sec-WebSocket-Protocol: {SUBPROTOCOL}",
        *_header_lines(extra_headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def client_handshake_request(
    host: str, path: str, key: str, extra_headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """The complete opening-handshake GET request offering the ``parta.v1`` subprotocol."""
    if not _REQUEST_TARGET_RE.fullmatch(path):
        raise LocalProtocolError(f"invalid request path {path!r}")
    if not _HOST_RE.fullmatch(host):
        raise LocalProtocolError(f"invalid host {host!r}")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Protocol: {SUBPROTOCOL}",
        *_header_lines(extra_headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def check_server_handshake_response(status: int, headers: Mapping[str, str], key: str) -> None:
    """Validate the server's answer to our handshake (client side); raise HandshakeError."""
    if status != 101:
        raise HandshakeError(status, f"server did not switch protocols (status {status})")
    if "websocket" not in _tokens(headers.get("upgrade")):
        raise HandshakeError(status, "missing 'Upgrade: websocket' header")
    if "upgrade" not in _tokens(headers.get("connection")):
        raise HandshakeError(status, "missing 'Connection: Upgrade' header")
    if headers.get("sec-websocket-accept", "").strip() != accept_key(key):
        raise HandshakeError(status, "Sec-WebSocket-Accept does not match our key")
    # We offered no extension, so the server must not have picked one (RFC 6455 4.1).
    if headers.get("sec-websocket-extensions", "").strip():
        raise HandshakeError(status, "server selected an extension we did not offer")
    if headers.get("sec-websocket-protocol", "").strip() != SUBPROTOCOL:
        raise HandshakeError(status, f"server did not select the {SUBPROTOCOL} subprotocol")


# --- framing ------------------------------------------------------------------------------

_pack2 = struct.Struct("!BB").pack
_pack4 = struct.Struct("!BBH").pack
_pack10 = struct.Struct("!BBQ").pack
_pack_code = struct.Struct("!H").pack
_unpack_u16 = struct.Struct("!H").unpack_from
_unpack_u64 = struct.Struct("!Q").unpack_from

_MAX_CONTROL_PAYLOAD = 125
_MAX_CLOSE_REASON = _MAX_CONTROL_PAYLOAD - 2

# Plain ints: IntEnum members are measurably slower to compare in the parser loop.
_CONT, _TEXT, _BINARY = 0, 1, 2
_CLOSE, _PING, _PONG = 8, 9, 10
_PROTOCOL_ERROR = 1002
_INVALID_DATA = 1007
_TOO_BIG = 1009


def _is_valid_close_code(code: int) -> bool:
    """Codes that may appear on the wire (RFC 6455 7.4, IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _xor_table(key: int) -> bytes:
    """The 256-byte ``bytes.translate`` table mapping each byte b to b ^ key."""
    return (int.from_bytes(bytes(range(256))) ^ int.from_bytes(bytes([key]) * 256)).to_bytes(256)


_XOR_TABLES = [_xor_table(key) for key in range(256)]
# Below this size one big-integer XOR is quicker; above it the four strided translates are
# (about 2.5x at 64 KiB). Measured on CPython 3.11.
_STRIDED_MASK_MIN = 1024


def _apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the repeating 4-byte ``mask``, in C, never a Python loop per byte.

    Small payloads: one big-integer XOR. Large ones: byte i of the key applies to every
    fourth byte, so each of the four lanes is a plain ``translate`` through an XOR table.
    """
    n = len(data)
    if n < _STRIDED_MASK_MIN:
        key = (mask * ((n >> 2) + 1))[:n]
        return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(
            n, "little"
        )
    out = bytearray(n)
    tables = _XOR_TABLES
    out[0::4] = data[0::4].translate(tables[mask[0]])
    out[1::4] = data[1::4].translate(tables[mask[1]])
    out[2::4] = data[2::4].translate(tables[mask[2]])
    out[3::4] = data[3::4].translate(tables[mask[3]])
    return bytes(out)


def encode_frame(
    opcode: Opcode, payload: bytes, *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """Encode one frame; unmasked when ``mask`` is None, else masked with that 4-byte key.

    Unmasked (server) frames are the fan-out hot path: encode once, write the same bytes to
    many connections. Hence no validation beyond the control-frame limits.
    """
    n = len(payload)
    if opcode >= _CLOSE and (n > _MAX_CONTROL_PAYLOAD or not fin):
        raise LocalProtocolError("control frames must be final and carry at most 125 bytes")
    b0 = opcode | 0x80 if fin else opcode
    if mask is None:
        if n < 126:
            return _pack2(b0, n) + payload
        if n < 65536:
            return _pack4(b0, 126, n) + payload
        return _pack10(b0, 127, n) + payload
    if len(mask) != 4:
        raise LocalProtocolError("a frame mask must be exactly 4 bytes")
    if n < 126:
        header = _pack2(b0, 0x80 | n)
    elif n < 65536:
        header = _pack4(b0, 0x80 | 126, n)
    else:
        header = _pack10(b0, 0x80 | 127, n)
    return header + mask + _apply_mask(payload, mask)


def encode_close_payload(code: int, reason: str = "") -> bytes:
    """The payload of a close frame: 2-byte code + UTF-8 reason (at most 123 bytes)."""
    if not _is_valid_close_code(code):
        raise LocalProtocolError(f"close code {code} may not be sent")
    data = reason.encode("utf-8")
    if len(data) > _MAX_CLOSE_REASON:
        raise LocalProtocolError("close reason longer than 123 bytes")
    return _pack_code(code) + data


_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


class WebSocketConnection:
    """One end of an established WebSocket connection (after the HTTP handshake).

    The client role masks every frame it sends and requires unmasked frames; the server role
    requires masked frames and never masks. Incoming payloads are unmasked, validated and
    accumulated as they arrive, so only an incomplete frame header (< 14 bytes) is ever kept
    unparsed, and a message larger than ``max_message_size`` is refused (1009) from its
    frame header, before any of its payload is stored.
    """

    __slots__ = (
        "_buf",
        "_close_code",
        "_close_reason",
        "_ctrl",
        "_decoder",
        "_eof",
        "_events",
        "_fin",
        "_frame_mask",
        "_frame_offset",
        "_frame_opcode",
        "_is_client",
        "_max_size",
        "_msg_opcode",
        "_msg_size",
        "_out",
        "_parts",
        "_reading",
        "_remaining",
        "_state",
        "_want_mask",
    )

    def __init__(self, role: Role, *, max_message_size: int = 1 << 20) -> None:
        if max_message_size < 0:
            raise ValueError("max_message_size must not be negative")
        self._is_client = role is Role.CLIENT
        # Mask bit (0x80 of the second header byte) every incoming frame must carry.
        self._want_mask = 0 if self._is_client else 0x80
        self._max_size = max_message_size
        self._state = State.OPEN
        self._close_code: int | None = None
        self._close_reason = ""
        self._events: list[Event] = []
        self._out: list[bytes] = []
        self._reading = True
        self._eof = False
        self._buf = b""  # an incomplete frame header, never more than 13 bytes
        # The frame whose payload is arriving (only while _remaining > 0).
        self._frame_opcode = 0
        self._fin = False
        self._frame_mask = b""
        self._frame_offset = 0
        self._remaining = 0
        self._ctrl = b""
        # The fragmented message in progress (_msg_opcode == 0: none).
        self._msg_opcode = 0
        self._msg_size = 0
        # Fragments of the message in progress: bytes for BINARY, decoded str for TEXT.
        self._parts: list[Any] = []
        self._decoder: codecs.IncrementalDecoder | None = None

    # --- read-only state ------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def close_code(self) -> int | None:
        """The code of the close frame we sent or received first; 1006 if TCP closed first.

        None while the connection is open.
        """
        return self._close_code

    @property
    def close_reason(self) -> str:
        """The reason matching ``close_code`` (for logs); "" when there was none."""
        return self._close_reason

    @property
    def close_expected(self) -> bool:
        """True once the shell should close TCP after writing ``data_to_send()``.

        Set when the close handshake completed, the connection was failed, or EOF arrived.
        RFC 6455 7.1.1 wants the server to close first: a server shell closes at once, a
        client shell waits briefly for the server's FIN and then closes anyway.
        """
        return not self._reading

    # --- input ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the peer; ``b""`` signals EOF (the peer closed TCP)."""
        if data and self._reading:
            if type(data) is not bytes:
                # Slices of a bytearray/memoryview would alias the caller's reusable buffer.
                data = bytes(data)
            if self._buf:
                data = self._buf + data
                self._buf = b""
            self._parse(data)
        elif self._eof:
            if data:
                raise LocalProtocolError("receive_data() called with data after EOF")
        elif not data:
            self._eof = True
            self._stop_reading()
            if self._close_code is None:
                self._close_code = int(CloseCode.ABNORMAL)
            self._state = State.CLOSED
        # else: after our close or a failure the peer's bytes are discarded unread.

    def events_received(self) -> list[Event]:
        """Return and clear the events parsed so far, in order."""
        events = self._events
        self._events = []
        return events

    def data_to_send(self) -> bytes:
        """Return and clear the bytes to write to the peer."""
        if not self._out:
            return b""
        out = self._out
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    # --- output ---------------------------------------------------------------------------

    def send_binary(self, data: bytes) -> None:
        self._send(Opcode.BINARY, data)

    def send_text(self, text: str) -> None:
        self._send(Opcode.TEXT, text.encode("utf-8"))

    def send_ping(self, payload: bytes = b"") -> None:
        self._send(Opcode.PING, payload)

    def send_pong(self, payload: bytes = b"") -> None:
        self._send(Opcode.PONG, payload)

    def send_close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake: queue a close frame, state CLOSING.

        Data frames from the peer are still delivered until its close frame arrives.
        """
        payload = encode_close_payload(code, reason)
        self._send(Opcode.CLOSE, payload)
        self._state = State.CLOSING
        self._close_code = int(code)  # a plain int, even when given a CloseCode
        self._close_reason = reason

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection: queue a close frame with ``code`` and stop reading.

        If a close frame was already sent only reading stops; after CLOSED it does nothing,
        so a shell may call it from timeouts without checking the state first.
        """
        if self._state is State.CLOSED:
            return
        if self._state is State.OPEN:
            payload = encode_close_payload(code, reason)
            self._out.append(encode_frame(Opcode.CLOSE, payload, mask=self._new_mask()))
            self._state = State.CLOSING
            self._close_code = int(code)
            self._close_reason = reason
        self._stop_reading()

    # --- internals ------------------------------------------------------------------------

    def _new_mask(self) -> bytes | None:
        return os.urandom(4) if self._is_client else None

    def _send(self, opcode: Opcode, payload: bytes) -> None:
        if self._state is not State.OPEN:
            raise LocalProtocolError(f"cannot send a frame in state {self._state.name}")
        self._out.append(encode_frame(opcode, payload, mask=self._new_mask()))

    def _stop_reading(self) -> None:
        self._reading = False
        # Drop partial input and half-assembled messages: they can never complete now.
        self._buf = b""
        self._remaining = 0
        self._ctrl = b""
        self._reset_message()

    def _reset_message(self) -> None:
        self._msg_opcode = 0
        self._msg_size = 0
        if self._parts:
            self._parts.clear()

    def _fail_peer(self, code: int, reason: str) -> None:
        """The peer broke the protocol: answer with a close frame, stop reading."""
        self.fail(code, reason)

    def _parse(self, data: bytes) -> None:
        end = len(data)
        pos = 0
        want_mask = self._want_mask
        while pos < end:
            if self._remaining:
                # Payload of a frame whose header came in an earlier chunk.
                take = end - pos
                if take > self._remaining:
                    take = self._remaining
                self._payload_chunk(data[pos : pos + take])
                pos += take
                if not self._reading:
                    return
                continue

            if end - pos < 2:
                break
            b0 = data[pos]
            b1 = data[pos + 1]
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            length = b1 & 0x7F
            # Everything checkable from the first two bytes is checked before waiting for
            # the rest of the header, so a broken peer is caught as early as possible.
            error = None
            if b0 & 0x70:
                error = "reserved bits set"
            elif b1 & 0x80 != want_mask:
                error = (
                    "masked frame from server" if self._is_client else "unmasked frame from client"
                )
            elif opcode >= _CLOSE:
                if opcode > _PONG:
                    error = f"reserved opcode {opcode}"
                elif not fin:
                    error = "fragmented control frame"
                elif length > _MAX_CONTROL_PAYLOAD:
                    error = "control frame too long"
            elif opcode == _CONT:
                if not self._msg_opcode:
                    error = "unexpected continuation frame"
            elif opcode <= _BINARY:
                if self._msg_opcode:
                    error = "expected a continuation frame"
            else:
                error = f"reserved opcode {opcode}"
            if error is not None:
                self._fail_peer(_PROTOCOL_ERROR, error)
                return

            if length < 126:
                header_len = 2
            elif length == 126:
                header_len = 4
            else:
                header_len = 10
            if want_mask:
                header_len += 4
            if end - pos < header_len:
                break
            if length == 126:
                length = _unpack_u16(data, pos + 2)[0]
            elif length == 127:
                length = _unpack_u64(data, pos + 2)[0]
                if length >> 63:
                    self._fail_peer(_PROTOCOL_ERROR, "frame length has the high bit set")
                    return
            msg_size = 0
            if opcode < _CLOSE:
                msg_size = self._msg_size + length
                if msg_size > self._max_size:
                    self._fail_peer(_TOO_BIG, "message too big")
                    return
            mask = data[pos + header_len - 4 : pos + header_len] if want_mask else b""
            pos += header_len

            if end - pos >= length:
                # The whole payload is here: the common case, handled without the
                # streaming bookkeeping.
                payload = data[pos : pos + length]
                pos += length
                if mask and length:
                    payload = _apply_mask(payload, mask)
                if fin and opcode == _BINARY:
                    self._events.append(Message(payload))
                elif opcode >= _CLOSE:
                    self._control_frame(opcode, payload)
                elif fin and opcode == _TEXT:
                    self._text_message(payload)
                else:
                    self._start_frame(opcode, msg_size)
                    self._data_chunk(payload)
                    if self._reading and fin:
                        self._finish_message()
                if not self._reading:
                    return
                continue

            # Partial payload: stream it from now on.
            self._frame_opcode = opcode
            self._fin = bool(fin)
            self._frame_mask = mask
            self._frame_offset = 0
            self._remaining = length
            if opcode < _CLOSE:
                self._start_frame(opcode, msg_size)
        self._buf = data[pos:]

    def _payload_chunk(self, chunk: bytes) -> None:
        """Process part of a streamed payload."""
        n = len(chunk)
        mask = self._frame_mask
        if mask:
            offset = self._frame_offset & 3
            if offset:
                # This chunk starts mid-key: rotate the key to line up with it.
                mask = mask[offset:] + mask[:offset]
            chunk = _apply_mask(chunk, mask)
        self._frame_offset += n
        self._remaining -= n
        if self._frame_opcode >= _CLOSE:
            self._ctrl += chunk
            if not self._remaining:
                payload = self._ctrl
                self._ctrl = b""
                self._control_frame(self._frame_opcode, payload)
            return
        self._data_chunk(chunk)
        if self._reading and not self._remaining and self._fin:
            self._finish_message()

    def _text_message(self, payload: bytes) -> None:
        """An unfragmented TEXT message: one decode call, no incremental decoder."""
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            self._fail_peer(_INVALID_DATA, "invalid UTF-8 in text message")
            return
        self._events.append(Message(text))

    def _start_frame(self, opcode: int, msg_size: int) -> None:
        """A data frame that is streamed or part of a fragmented message begins."""
        if opcode:
            self._msg_opcode = opcode
            if opcode == _TEXT:
                if self._decoder is None:
                    self._decoder = _Utf8Decoder()
                else:
                    self._decoder.reset()
        self._msg_size = msg_size

    def _data_chunk(self, chunk: bytes) -> None:
        if self._msg_opcode == _BINARY:
            self._parts.append(chunk)
            return
        decoder = self._decoder
        assert decoder is not None
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError:
            self._fail_peer(_INVALID_DATA, "invalid UTF-8 in text message")
            return
        if text:
            self._parts.append(text)
        # CPython's decoder holds back ED A0..ED BF (a UTF-16 surrogate) until the third
        # byte arrives; reject it now so invalid text fails as early as possible.
        pending = decoder.getstate()[0]
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            self._fail_peer(_INVALID_DATA, "invalid UTF-8 in text message")

    def _finish_message(self) -> None:
        if self._msg_opcode == _BINARY:
            data: bytes | str = b"".join(self._parts)
        else:
            decoder = self._decoder
            assert decoder is not None
            try:
                # final=True rejects a message ending in the middle of a code point.
                tail = decoder.decode(b"", True)
            except UnicodeDecodeError:
                self._fail_peer(_INVALID_DATA, "text message ends mid-character")
                return
            self._parts.append(tail)
            data = "".join(self._parts)
        self._reset_message()
        self._events.append(Message(data))

    def _control_frame(self, opcode: int, payload: bytes) -> None:
        if opcode == _PING:
            self._events.append(Ping(payload))
            # Once our close frame is out nothing may follow it, not even a pong.
            if self._state is State.OPEN:
                self._out.append(encode_frame(Opcode.PONG, payload, mask=self._new_mask()))
        elif opcode == _PONG:
            self._events.append(Pong(payload))
        else:
            self._close_frame(payload)

    def _close_frame(self, payload: bytes) -> None:
        if not payload:
            code = int(CloseCode.NO_STATUS)
            reason = ""
        elif len(payload) == 1:
            self._fail_peer(_PROTOCOL_ERROR, "close frame with a 1-byte payload")
            return
        else:
            code = _unpack_u16(payload)[0]
            if not _is_valid_close_code(code):
                self._fail_peer(_PROTOCOL_ERROR, f"invalid close code {code}")
                return
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self._fail_peer(_INVALID_DATA, "invalid UTF-8 in close reason")
                return
        self._events.append(CloseReceived(code, reason))
        if self._state is State.OPEN:
            # Echo the code (not the reason), or an empty close if the peer sent none.
            self._out.append(encode_frame(Opcode.CLOSE, payload[:2], mask=self._new_mask()))
            self._close_code = code
            self._close_reason = reason
        self._state = State.CLOSED
        self._stop_reading()
