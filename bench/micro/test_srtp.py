"""SRTP cost per packet: protect and unprotect of a 1,200-byte RTP packet through ``SrtpPair``,
with AEAD_AES_128_GCM and AES_CM_128_HMAC_SHA1_80.

Every round handles a new sequence number (libsrtp would refuse a replay on receive), so the
packets are made in ``setup``, outside the timing; each round times one call, which adds
the timer's own overhead (tens of nanoseconds) to the figures.

Run: uv run pytest bench/micro/test_srtp.py --benchmark-enable --benchmark-only
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from pylibsrtp import Policy, Session
from pytest_benchmark.fixture import BenchmarkFixture

from sfu.srtp import SrtpPair, SrtpProfile, key_lengths

PACKET_SIZE = 1200
ROUNDS = 20_000
PAYLOAD = bytes(range(256)) * 5


def rtp_packet(seq: int) -> bytes:
    header = struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, seq * 90 & 0xFFFFFFFF, 0x1234ABCD)
    return header + PAYLOAD[: PACKET_SIZE - len(header)]


def keys(profile: SrtpProfile) -> tuple[bytes, bytes]:
    key, salt = key_lengths(profile)
    return bytes(range(1, key + salt + 1)), bytes(range(101, 101 + key + salt))


def counter(make: Callable[[int], Any]) -> Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]:
    seq = iter(range(1 << 30))

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (make(next(seq)),), {}

    return setup


PROFILES = [SrtpProfile.AEAD_AES_128_GCM, SrtpProfile.AES128_CM_SHA1_80]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_protect_rtp(benchmark: BenchmarkFixture, profile: SrtpProfile) -> None:
    rx_key, tx_key = keys(profile)
    pair = SrtpPair.from_keys(profile, rx_key, tx_key)
    protected = benchmark.pedantic(
        pair.protect_rtp, setup=counter(rtp_packet), rounds=ROUNDS, warmup_rounds=1000
    )
    assert len(protected) == PACKET_SIZE + (16 if profile is SrtpProfile.AEAD_AES_128_GCM else 10)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_unprotect_rtp(benchmark: BenchmarkFixture, profile: SrtpProfile) -> None:
    rx_key, tx_key = keys(profile)
    pair = SrtpPair.from_keys(profile, rx_key, tx_key)
    sender = Session(Policy(rx_key, Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    result = benchmark.pedantic(
        pair.unprotect_rtp,
        setup=counter(lambda seq: sender.protect(rtp_packet(seq))),
        rounds=ROUNDS,
        warmup_rounds=1000,
    )
    assert result is not None and len(result) == PACKET_SIZE


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_unprotect_rtp_forged(benchmark: BenchmarkFixture, profile: SrtpProfile) -> None:
    """The failure path (a packet that does not authenticate) costs about as much."""
    rx_key, tx_key = keys(profile)
    pair = SrtpPair.from_keys(profile, rx_key, tx_key)
    sender = Session(Policy(tx_key, Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))

    def make(seq: int) -> bytes:
        return sender.protect(rtp_packet(seq))

    result = benchmark.pedantic(
        pair.unprotect_rtp, setup=counter(make), rounds=ROUNDS, warmup_rounds=1000
    )
    assert result is None
