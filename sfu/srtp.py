"""SRTP and SRTCP (RFC 3711, RFC 7714) for one transport, over libsrtp (``pylibsrtp``).

This is the per-packet path, so it calls libsrtp through pylibsrtp's cffi binding
directly, with buffers allocated once: ``Session.protect`` spends about 0.4 µs
of a 1.25 µs call in Python (a type check, an ``int *`` allocated per call, an error check
in a Python function). That binding is pylibsrtp's implementation, so its version is pinned
in ``sfu.adapter``. No logging, no allocation but the bytes handed back, and no exception in
the normal course of things. A packet that does not authenticate, is replayed or is too old
makes ``unprotect_*`` return ``None``; the caller drops it (and may count it).

Sending writes the packet straight into the send buffer (``SrtpPair.out``, see
``sfu.rtp.rewrite_into``) and protects it there (``protect_out``), so a forwarded packet is
copied once on its way in and once on its way out (into the socket's batch,
``sfu.udp_batch``). Every session of the process shares one receive and one send buffer:
what is protected or unprotected is copied out before the next packet, and one buffer stays
in the CPU's cache where a hundred peers' buffers would each be cold when their turn comes.

The receive session accepts any SSRC the peer sends (``SSRC_ANY_INBOUND``) with a replay
window wide enough for packets that come late or are retransmitted after a NACK. The send
session protects any SSRC we send (``SSRC_ANY_OUTBOUND``: every consumer has its own) and
allows the same packet to be protected again while it is within ``RETRANSMIT_WINDOW`` of the
newest, which a NACK-triggered retransmission does.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, ClassVar, Final, NamedTuple

from pylibsrtp import Policy, Session
from pylibsrtp._binding import ffi, lib  # type: ignore[import-not-found]

__all__ = [
    "MAX_PACKET",
    "REPLAY_WINDOW",
    "RETRANSMIT_WINDOW",
    "SrtpPair",
    "SrtpProfile",
    "key_lengths",
]

# Packets older than this many sequence numbers are dropped as replays. libsrtp accepts up
# to 2**15 - 1; 4096 is a few seconds of a high-rate video stream, ample for NACK.
REPLAY_WINDOW: Final = 4096
# How far behind the newest packet of a stream we may protect one again (a retransmission):
# the send session needs a window too, and libsrtp shifts the whole window on every packet
# (4096 bits cost ~0.2 µs a packet, 512 a few ns). Consumers keep their last 512 packets.
RETRANSMIT_WINDOW: Final = 512

# The largest packet we protect or unprotect (pylibsrtp's limit too): a datagram's worth.
MAX_PACKET: Final = 1500
# Room after a packet for what protecting adds: an SRTCP index, a tag, an MKI (libsrtp's
# SRTP_MAX_SRTCP_TRAILER_LEN).
_TRAILER: Final = 4 + 16 + 128


class SrtpProfile(enum.IntEnum):
    """The DTLS-SRTP protection profiles we negotiate (IANA values, RFC 5764 and RFC 7714).

    libsrtp numbers its profiles the same way, so a value goes to ``pylibsrtp`` as is.
    """

    AES128_CM_SHA1_80 = 0x0001
    AEAD_AES_128_GCM = 0x0007


class _KeyLengths(NamedTuple):
    key: int
    salt: int


_KEY_LENGTHS = {
    SrtpProfile.AES128_CM_SHA1_80: _KeyLengths(16, 14),
    SrtpProfile.AEAD_AES_128_GCM: _KeyLengths(16, 12),
}

assert Policy.SRTP_PROFILE_AES128_CM_SHA1_80 == SrtpProfile.AES128_CM_SHA1_80
assert Policy.SRTP_PROFILE_AEAD_AES_128_GCM == SrtpProfile.AEAD_AES_128_GCM


def key_lengths(profile: int) -> tuple[int, int]:
    """``(master key length, master salt length)`` in bytes for a profile."""
    return _KEY_LENGTHS[SrtpProfile(profile)]


class _Buffer:
    """A libsrtp working buffer: the C array, a writable view of it, the length in/out."""

    __slots__ = ("cdata", "length", "view")

    def __init__(self) -> None:
        self.cdata = ffi.new("char[]", MAX_PACKET + _TRAILER)
        self.view = memoryview(ffi.buffer(self.cdata))
        self.length = ffi.new("int *")


# Shared by every session (see the module's docstring): the asyncio loop runs one packet at a
# time, and each is copied out of here before the next is written.
_IN = _Buffer()
_OUT = _Buffer()
# What protecting a packet touches, as globals: it runs once per forwarded packet.
_OUT_CDATA = _OUT.cdata
_OUT_LENGTH = _OUT.length
_OUT_VIEW = _OUT.view
_srtp_protect = lib.srtp_protect


class SrtpPair:
    """The receive and send SRTP sessions of one transport.

    ``protect_rtp`` and ``protect_rtcp`` raise ``ValueError`` only on misuse (a packet over
    ``MAX_PACKET`` bytes); ``protect_out`` protects what was written into ``out``.
    """

    __slots__ = ("_rx", "_rx_srtp", "_tx", "_tx_srtp", "profile")

    # Where the next packet to send is written (``MAX_PACKET`` bytes at most): the same
    # buffer for every session.
    out: ClassVar[memoryview] = _OUT_VIEW[:MAX_PACKET]

    def __init__(self, profile: SrtpProfile, rx: Session, tx: Session) -> None:
        self.profile = profile
        # The sessions own the libsrtp contexts (freed with them); we call on the contexts.
        self._rx = rx
        self._tx = tx
        self._rx_srtp: Any = rx._srtp[0]
        self._tx_srtp: Any = tx._srtp[0]

    @classmethod
    def from_keys(
        cls, profile: int, rx_key: bytes, tx_key: bytes, *, replay_window: int = REPLAY_WINDOW
    ) -> SrtpPair:
        """Sessions from DTLS-SRTP keying material: each key is master key + master salt."""
        srtp_profile = SrtpProfile(profile)
        key, salt = _KEY_LENGTHS[srtp_profile]
        if len(rx_key) != key + salt or len(tx_key) != key + salt:
            raise ValueError(f"{srtp_profile.name} needs {key + salt}-byte keys with salt")
        rx_policy = Policy(rx_key, Policy.SSRC_ANY_INBOUND, srtp_profile=srtp_profile)
        rx_policy.window_size = replay_window
        tx_policy = Policy(tx_key, Policy.SSRC_ANY_OUTBOUND, srtp_profile=srtp_profile)
        tx_policy.allow_repeat_tx = True
        tx_policy.window_size = RETRANSMIT_WINDOW
        return cls(srtp_profile, Session(rx_policy), Session(tx_policy))

    def protect_out(self, size: int) -> memoryview:
        """The first ``size`` bytes of ``out`` (an RTP packet) as an SRTP packet: a view of
        the buffer, good until the next packet is written there (the sender copies it)."""
        _OUT_LENGTH[0] = size
        if _srtp_protect(self._tx_srtp, _OUT_CDATA, _OUT_LENGTH):
            raise ValueError("libsrtp could not protect the packet")
        return _OUT_VIEW[: _OUT_LENGTH[0]]

    def protect_rtp(self, packet: bytes) -> bytes:
        """An RTP packet as an SRTP packet."""
        size = len(packet)
        if size > MAX_PACKET:
            raise ValueError(f"a {size}-byte packet is longer than {MAX_PACKET}")
        self.out[:size] = packet
        return self.protect_out(size).tobytes()

    def protect_rtcp(self, packet: bytes) -> bytes:
        """An RTCP compound packet as an SRTCP packet."""
        protected = self._process(_OUT, lib.srtp_protect_rtcp, self._tx_srtp, packet)
        if protected is None:
            raise ValueError("libsrtp could not protect the packet")
        return protected

    def unprotect_rtp(self, data: bytes) -> bytes | None:
        """The RTP packet inside an SRTP packet, or ``None`` if it is forged or replayed."""
        return self._process(_IN, lib.srtp_unprotect, self._rx_srtp, data)

    def unprotect_rtcp(self, data: bytes) -> bytes | None:
        """The RTCP compound packet inside an SRTCP packet, or ``None``."""
        return self._process(_IN, lib.srtp_unprotect_rtcp, self._rx_srtp, data)

    @staticmethod
    def _process(
        buffer: _Buffer, function: Callable[[Any, Any, Any], int], session: Any, data: bytes
    ) -> bytes | None:
        """``function`` on a copy of ``data``: its result, or ``None`` if libsrtp refused."""
        size = len(data)
        if size > MAX_PACKET:
            return None
        buffer.view[:size] = data
        length = buffer.length
        length[0] = size
        if function(session, buffer.cdata, length):
            return None
        return buffer.view[: length[0]].tobytes()
