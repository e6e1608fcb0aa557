"""SRTP and SRTCP (RFC 3711, RFC 7714) for one transport, over libsrtp (``pylibsrtp``).

This is the per-packet path, so the methods are a bound call into libsrtp and nothing more:
no logging, no allocation but the bytes libsrtp hands back, and no exception in the normal
course of things. A packet that does not authenticate, is replayed or is too old makes
``unprotect_*`` return ``None``; the caller drops it (and may count it).

The receive session accepts any SSRC the peer sends (``SSRC_ANY_INBOUND``) with a replay
window wide enough for packets that come late or are retransmitted after a NACK. The send
session protects any SSRC we send (``SSRC_ANY_OUTBOUND``: every consumer has its own) and
allows the same packet to be protected again, which a NACK-triggered retransmission does.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final, NamedTuple

from pylibsrtp import Error as _SrtpError
from pylibsrtp import Policy, Session

__all__ = ["REPLAY_WINDOW", "SrtpPair", "SrtpProfile", "key_lengths"]

# Packets older than this many sequence numbers are dropped as replays. libsrtp accepts up
# to 2**15 - 1; 4096 is a few seconds of a high-rate video stream, ample for NACK.
REPLAY_WINDOW: Final = 4096

_UNPROTECT_FAILED = (_SrtpError, ValueError)  # ValueError: longer than libsrtp's 1500 bytes


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


class SrtpPair:
    """The receive and send SRTP sessions of one transport.

    ``protect_rtp`` and ``protect_rtcp`` are libsrtp's own bound methods, so protecting
    costs one call; they raise only on misuse (a packet over about 1,350 bytes).
    """

    __slots__ = ("_unprotect", "_unprotect_rtcp", "profile", "protect_rtcp", "protect_rtp")

    protect_rtp: Callable[[bytes], bytes]
    protect_rtcp: Callable[[bytes], bytes]

    def __init__(self, profile: SrtpProfile, rx: Session, tx: Session) -> None:
        self.profile = profile
        self._unprotect = rx.unprotect
        self._unprotect_rtcp = rx.unprotect_rtcp
        self.protect_rtp = tx.protect
        self.protect_rtcp = tx.protect_rtcp

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
        tx_policy.window_size = replay_window
        return cls(srtp_profile, Session(rx_policy), Session(tx_policy))

    def unprotect_rtp(self, data: bytes) -> bytes | None:
        """The RTP packet inside an SRTP packet, or ``None`` if it is forged or replayed."""
        try:
            return self._unprotect(data)
        except _UNPROTECT_FAILED:
            return None

    def unprotect_rtcp(self, data: bytes) -> bytes | None:
        """The RTCP compound packet inside an SRTCP packet, or ``None``."""
        try:
            return self._unprotect_rtcp(data)
        except _UNPROTECT_FAILED:
            return None
