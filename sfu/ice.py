"""Sans-IO ICE-lite (RFC 8445 section 2.5) with its own small STUN codec (RFC 5389).

We are a lite agent: we only answer the browser's connectivity checks, never send our own,
and are always the controlled side. Bytes and the sender's address go in, a response to send
back and the newly selected address come out; time is a parameter (``now``), the driver owns
the clock and decides what to do once consent has expired. Nothing here touches a socket.

A worker drives one ``IceLite`` per transport::

    result = ice.handle(datagram, addr, loop.time())
    if result.response is not None:
        sock.sendto(result.response, addr)      # framed with sfu.framing on ICE-TCP
    if result.selected is not None:
        ...                                     # send media to result.selected from now on
    ...
    if ice.expired(loop.time()):                # from the periodic timer
        ...                                     # consent lost (RFC 7675): close the transport

Only binding requests are handled. A datagram that is not a well-formed STUN binding
request with a correct FINGERPRINT is dropped without an answer (it may not even be STUN);
a STUN request that fails authentication is answered with 400 or 401 (RFC 5389 section
10.1.2), one with an unknown comprehension-required attribute with 420, and one that claims
the controlled role with 487 (RFC 8445 section 7.3.1.1: a lite agent never takes control).

Addresses are the tuples asyncio hands out, ``(host, port)`` or ``(host, port, flowinfo,
scope_id)``: the tuple is the key, host and port fill XOR-MAPPED-ADDRESS, and anything after
them is opaque here (an ICE-TCP driver may key its connections however it likes).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import string
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "ICE_CHARS",
    "Address",
    "IceLite",
    "IceResult",
    "new_credentials",
    "stun_local_ufrag",
]

Address: TypeAlias = tuple[Any, ...]

# RFC 8445 section 5.3: ice-char = ALPHA / DIGIT / "+" / "/".
ICE_CHARS = string.ascii_letters + string.digits + "+/"
_ICE_CHARS_SET = frozenset(ICE_CHARS)
_UFRAG_LENGTH = 8  # 48 bits of randomness; RFC 8445 asks for at least 24
_PWD_LENGTH = 24  # 144 bits; RFC 8445 asks for at least 128

# RFC 5389 section 6.
_HEADER = struct.Struct("!HHI12s")
_ATTR_HEADER = struct.Struct("!HH")
_FINGERPRINT_ATTR = struct.Struct("!HHI")
_MAGIC_COOKIE = 0x2112A442
_MAGIC_COOKIE_BYTES = _MAGIC_COOKIE.to_bytes(4, "big")
_FINGERPRINT_XOR = 0x5354554E

_BINDING_REQUEST = 0x0001
_BINDING_SUCCESS = 0x0101
_BINDING_ERROR = 0x0111

_USERNAME = 0x0006
_MESSAGE_INTEGRITY = 0x0008
_ERROR_CODE = 0x0009
_UNKNOWN_ATTRIBUTES = 0x000A
_XOR_MAPPED_ADDRESS = 0x0020
_PRIORITY = 0x0024
_USE_CANDIDATE = 0x0025
_FINGERPRINT = 0x8028
_ICE_CONTROLLED = 0x8029
_ICE_CONTROLLING = 0x802A

_INTEGRITY_LENGTH = 4 + 20  # attribute header + HMAC-SHA1
_FINGERPRINT_LENGTH = 4 + 4  # attribute header + CRC-32
_REQUIRED_KNOWN = frozenset({_USERNAME, _MESSAGE_INTEGRITY, _PRIORITY, _USE_CANDIDATE})

_BAD_REQUEST = (400, "Bad Request")
_UNAUTHORIZED = (401, "Unauthorized")
_UNKNOWN_ATTRIBUTE = (420, "Unknown Attribute")
_ROLE_CONFLICT = (487, "Role Conflict")


@dataclass(frozen=True, slots=True)
class IceResult:
    """What one incoming datagram produced.

    ``response`` is to be sent back to the address the request came from; ``selected`` is
    set only when this request changed the selected address (the one media is sent to).
    """

    response: bytes | None = None
    selected: Address | None = None


_NOTHING = IceResult()


def new_credentials() -> tuple[str, str]:
    """A fresh random ``(ufrag, pwd)`` pair of ice-chars (8 and 24 characters)."""
    choice = secrets.choice
    ufrag = "".join(choice(ICE_CHARS) for _ in range(_UFRAG_LENGTH))
    pwd = "".join(choice(ICE_CHARS) for _ in range(_PWD_LENGTH))
    return ufrag, pwd


def stun_local_ufrag(data: bytes) -> str | None:
    """The part of USERNAME before ``:`` in a STUN binding request, else ``None``.

    Meant for routing a datagram from an address not seen before to its transport: it only
    frames the message and finds USERNAME; ``IceLite.handle`` does the real checks.
    """
    size = len(data)
    if size < 20 or data[0] != 0 or data[1] != _BINDING_REQUEST:
        return None
    if data[4:8] != _MAGIC_COOKIE_BYTES or (data[2] << 8 | data[3]) != size - 20:
        return None
    pos = 20
    while pos + 4 <= size:
        attr_type, length = _ATTR_HEADER.unpack_from(data, pos)
        pos += 4
        if attr_type == _USERNAME:
            colon = data.find(b":", pos, pos + length)
            if colon < 0 or pos + length > size:
                return None
            try:
                return data[pos:colon].decode("ascii")
            except UnicodeDecodeError:
                return None
        pos += (length + 3) & ~3
    return None


@dataclass(slots=True)
class _Request:
    transaction_id: bytes
    username: bytes | None = None
    integrity_at: int = -1  # offset of the MESSAGE-INTEGRITY attribute, -1 when absent
    use_candidate: bool = False
    ice_controlled: bool = False
    unknown: tuple[int, ...] = ()


def _parse_request(data: bytes) -> _Request | None:
    """A binding request with a correct, final FINGERPRINT, else ``None`` (drop it)."""
    size = len(data)
    if size < 20 + _FINGERPRINT_LENGTH or data[0] & 0xC0:
        return None
    message_type, length, cookie, transaction_id = _HEADER.unpack_from(data)
    if cookie != _MAGIC_COOKIE or length != size - 20 or length & 3:
        return None
    if message_type != _BINDING_REQUEST:
        return None  # indications (keepalives), responses, other methods: nothing to say
    request = _Request(transaction_id)
    unknown: list[int] = []
    pos = 20
    while pos < size:
        if pos + 4 > size:
            return None
        attr_type, attr_length = _ATTR_HEADER.unpack_from(data, pos)
        value = pos + 4
        end = value + ((attr_length + 3) & ~3)
        if end > size:
            return None
        if attr_type == _FINGERPRINT:
            # The last attribute, covering everything before it (RFC 5389 section 15.5).
            if attr_length != 4 or end != size:
                return None
            expected = zlib.crc32(data[:pos]) ^ _FINGERPRINT_XOR
            if _FINGERPRINT_ATTR.unpack_from(data, pos)[2] != expected:
                return None
            request.unknown = tuple(unknown)
            return request
        if request.integrity_at >= 0:
            pass  # after MESSAGE-INTEGRITY only FINGERPRINT counts (RFC 5389 section 15.4)
        elif attr_type == _MESSAGE_INTEGRITY:
            if attr_length != 20:
                return None
            request.integrity_at = pos
        elif attr_type == _USERNAME:
            request.username = data[value : value + attr_length]
        elif attr_type == _USE_CANDIDATE:
            request.use_candidate = True
        elif attr_type == _ICE_CONTROLLED:
            request.ice_controlled = True
        elif attr_type < 0x8000 and attr_type not in _REQUIRED_KNOWN:
            unknown.append(attr_type)
        pos = end
    return None  # no FINGERPRINT: ICE requires it on every message (RFC 8445 section 7.3)


def _integrity_ok(data: bytes, at: int, key: bytes) -> bool:
    # The HMAC covers the message up to MESSAGE-INTEGRITY, with a length field that ends
    # right after MESSAGE-INTEGRITY (so FINGERPRINT is left out).
    covered = data[:2] + (at - 20 + _INTEGRITY_LENGTH).to_bytes(2, "big") + data[4:at]
    mac = hmac.digest(key, covered, "sha1")
    return hmac.compare_digest(mac, data[at + 4 : at + _INTEGRITY_LENGTH])


def _encode(message_type: int, transaction_id: bytes, body: bytes, key: bytes | None) -> bytes:
    """A STUN message: ``body`` (attributes), then MESSAGE-INTEGRITY if keyed, FINGERPRINT."""
    if key is not None:
        header = _HEADER.pack(
            message_type, len(body) + _INTEGRITY_LENGTH, _MAGIC_COOKIE, transaction_id
        )
        mac = hmac.digest(key, header + body, "sha1")
        body += _ATTR_HEADER.pack(_MESSAGE_INTEGRITY, 20) + mac
    header = _HEADER.pack(
        message_type, len(body) + _FINGERPRINT_LENGTH, _MAGIC_COOKIE, transaction_id
    )
    message = header + body
    crc = zlib.crc32(message) ^ _FINGERPRINT_XOR
    return message + _FINGERPRINT_ATTR.pack(_FINGERPRINT, 4, crc)


def _xor_mapped_address(addr: Address, transaction_id: bytes) -> bytes | None:
    try:
        ip = ipaddress.ip_address(addr[0])
        port = int(addr[1])
    except (ValueError, TypeError, IndexError):
        return None
    xport = port ^ (_MAGIC_COOKIE >> 16)
    if ip.version == 4:
        xaddr = int(ip) ^ _MAGIC_COOKIE
        return struct.pack("!HHBBHI", _XOR_MAPPED_ADDRESS, 8, 0, 1, xport, xaddr)
    mask = int.from_bytes(_MAGIC_COOKIE_BYTES + transaction_id, "big")
    xaddr16 = (int(ip) ^ mask).to_bytes(16, "big")
    return struct.pack("!HHBBH", _XOR_MAPPED_ADDRESS, 20, 0, 2, xport) + xaddr16


def _error(
    transaction_id: bytes,
    error: tuple[int, str],
    key: bytes | None = None,
    unknown: tuple[int, ...] = (),
) -> IceResult:
    code, reason = error
    phrase = reason.encode()
    value = struct.pack("!HBB", 0, code // 100, code % 100) + phrase
    body = _ATTR_HEADER.pack(_ERROR_CODE, len(value)) + value + bytes(-len(value) & 3)
    if unknown:
        types = struct.pack(f"!{len(unknown)}H", *unknown)
        body += _ATTR_HEADER.pack(_UNKNOWN_ATTRIBUTES, len(types)) + types + bytes(-len(types) & 3)
    return IceResult(_encode(_BINDING_ERROR, transaction_id, body, key))


def _check_credentials(ufrag: str, pwd: str) -> None:
    if not 4 <= len(ufrag) <= 256 or not _ICE_CHARS_SET.issuperset(ufrag):
        raise ValueError("ice-ufrag must be 4 to 256 ice-chars")
    if not 22 <= len(pwd) <= 256 or not _ICE_CHARS_SET.issuperset(pwd):
        raise ValueError("ice-pwd must be 22 to 256 ice-chars")


class IceLite:
    """The lite, always controlled side of one ICE session (one component: bundle, rtcp-mux).

    Every address that sent a valid check is kept in ``valid`` (UDP and ICE-TCP candidates
    alike); ``selected`` is the one to send to: the last one nominated with USE-CANDIDATE,
    or, until a nomination arrives, the first one that sent a valid check, so media can flow
    as early as possible. ``last_consent`` is when the selected address last sent a valid
    check (consent freshness, RFC 7675); it is ``None`` until something is selected, so
    ``expired`` says nothing about a session that never connected: the driver bounds setup
    with its own deadline.
    """

    __slots__ = (
        "_expected_username",
        "_key",
        "_valid",
        "last_consent",
        "local_pwd",
        "local_ufrag",
        "remote_ufrag",
        "selected",
    )

    def __init__(self, local_ufrag: str, local_pwd: str, remote_ufrag: str | None = None) -> None:
        self.selected: Address | None = None
        self.last_consent: float | None = None
        self._valid: dict[Address, float] = {}
        self._set_credentials(local_ufrag, local_pwd, remote_ufrag)

    def _set_credentials(self, ufrag: str, pwd: str, remote_ufrag: str | None) -> None:
        _check_credentials(ufrag, pwd)
        self.local_ufrag = ufrag
        self.local_pwd = pwd
        self.remote_ufrag = remote_ufrag
        self._key = pwd.encode("ascii")
        # Without the remote ufrag, any "<local>:<something>" is accepted.
        self._expected_username = f"{ufrag}:{remote_ufrag or ''}".encode("ascii")

    def set_remote_ufrag(self, remote_ufrag: str) -> None:
        """The offer told us the peer's ufrag: from now on its checks must carry it."""
        self._set_credentials(self.local_ufrag, self.local_pwd, remote_ufrag)

    @property
    def valid(self) -> Mapping[Address, float]:
        """Addresses that sent a valid check with the current credentials, and when."""
        return self._valid

    def handle(self, data: bytes, addr: Address, now: float) -> IceResult:
        """Process one datagram (or ICE-TCP frame) from ``addr``; never raises on bad input."""
        request = _parse_request(data)
        if request is None:
            return _NOTHING
        txid = request.transaction_id
        username = request.username
        if username is None or request.integrity_at < 0:
            return _error(txid, _BAD_REQUEST)
        expected = self._expected_username
        if self.remote_ufrag is None:
            if not username.startswith(expected) or len(username) == len(expected):
                return _error(txid, _UNAUTHORIZED)
        elif username != expected:
            return _error(txid, _UNAUTHORIZED)
        key = self._key
        if not _integrity_ok(data, request.integrity_at, key):
            return _error(txid, _UNAUTHORIZED)
        if request.unknown:
            return _error(txid, _UNKNOWN_ATTRIBUTE, key, request.unknown)
        if request.ice_controlled:
            # Both sides think they are controlled: the full agent must take control.
            return _error(txid, _ROLE_CONFLICT, key)
        mapped = _xor_mapped_address(addr, txid)
        if mapped is None:
            return _NOTHING

        self._valid[addr] = now
        newly_selected: Address | None = None
        if addr != self.selected and (request.use_candidate or self.selected is None):
            self.selected = newly_selected = addr
        if addr == self.selected:
            self.last_consent = now
        return IceResult(_encode(_BINDING_SUCCESS, txid, mapped, key), newly_selected)

    def expired(self, now: float, timeout: float = 30.0) -> bool:
        """True once the selected address has sent no valid check for ``timeout`` seconds."""
        return self.last_consent is not None and now - self.last_consent > timeout

    def restart(self, new_ufrag: str, new_pwd: str, remote_ufrag: str | None = None) -> None:
        """ICE restart: the old credentials stop working at once.

        The selected address (and its consent time) is kept, so media keeps flowing until a
        check with the new credentials nominates another one (USE-CANDIDATE); the other
        valid addresses are forgotten, as they were only validated with the old credentials.
        """
        self._set_credentials(new_ufrag, new_pwd, remote_ufrag)
        selected = self.selected
        kept = self._valid.get(selected) if selected is not None else None
        self._valid = {}
        if selected is not None and kept is not None:
            self._valid[selected] = kept

    def discard(self, addr: Address) -> None:
        """Forget an address (its ICE-TCP connection closed, say).

        If it was the selected one, nothing is selected until the next valid check, which
        then selects its address as if it were the first; ``last_consent`` is kept, so the
        session still expires if no check comes.
        """
        self._valid.pop(addr, None)
        if addr == self.selected:
            self.selected = None
