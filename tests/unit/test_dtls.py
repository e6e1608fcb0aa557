"""DTLS-SRTP server: paired in memory with a pyOpenSSL DTLS client (and with aiortc's own
``RTCDtlsTransport``), datagrams shuttled by hand, losses and timers driven by the test;
then SRTP both ways with the exported keys.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc.rtcdtlstransport import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
)
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from OpenSSL import SSL
from pylibsrtp import Policy, Session

from sfu.dtls import Certificate, DtlsServer, DtlsState
from sfu.srtp import RETRANSMIT_WINDOW, SrtpPair, SrtpProfile, key_lengths

hsettings = settings(
    database=None,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

BOTH = b"SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_128_GCM"  # the client prefers CM: we do not
OPENSSL_PROFILES = {
    b"SRTP_AEAD_AES_128_GCM": SrtpProfile.AEAD_AES_128_GCM,
    b"SRTP_AES128_CM_SHA1_80": SrtpProfile.AES128_CM_SHA1_80,
}


@pytest.fixture(scope="module")
def server_cert() -> Certificate:
    return Certificate.generate()


@pytest.fixture(scope="module")
def client_cert() -> Certificate:
    return Certificate.generate()


class Client:
    """A DTLS client over memory BIOs, as a browser would be."""

    def __init__(self, cert: Certificate | None, profiles: bytes | None = BOTH) -> None:
        context = SSL.Context(SSL.DTLS_CLIENT_METHOD)
        if cert is not None:
            context.use_certificate(cert.x509)
            context.use_privatekey(cert.key)
        context.set_verify(SSL.VERIFY_PEER, lambda *args: True)
        if profiles is not None:
            context.set_tlsext_use_srtp(profiles)
        context.set_options(SSL.OP_NO_QUERY_MTU)
        self.ssl = SSL.Connection(context, None)
        self.ssl.set_connect_state()
        self.ssl.set_ciphertext_mtu(1200)
        self.done = False
        self.error: SSL.Error | None = None

    def step(self, incoming: list[bytes] = []) -> list[bytes]:  # noqa: B006 (read only)
        for datagram in incoming:
            self.ssl.bio_write(datagram)
        if not self.done and self.error is None:
            try:
                self.ssl.do_handshake()
                self.done = True
            except SSL.WantReadError:
                pass
            except SSL.Error as exc:
                self.error = exc
        return self.drain()

    def drain(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.ssl.bio_read(65536))
            except SSL.WantReadError:
                return out

    def keys(self) -> tuple[int, bytes, bytes]:
        """(profile, client write key+salt, server write key+salt), computed independently."""
        profile = OPENSSL_PROFILES[self.ssl.get_selected_srtp_profile()]
        key, salt = key_lengths(profile)
        m = self.ssl.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (key + salt))
        client_write = m[0:key] + m[2 * key : 2 * key + salt]
        server_write = m[key : 2 * key] + m[2 * key + salt : 2 * key + 2 * salt]
        return profile, client_write, server_write


def run_handshake(client: Client, server: DtlsServer, now: float = 0.0) -> None:
    to_server = client.step()
    for _ in range(10):
        for datagram in to_server:
            server.receive(datagram, now)
        to_client = server.datagrams()
        to_server = client.step(to_client)
        if not to_server and not to_client:
            return


def connected_pair(
    server_cert: Certificate, client_cert: Certificate, profiles: bytes = BOTH
) -> tuple[Client, DtlsServer]:
    client = Client(client_cert, profiles)
    server = DtlsServer(server_cert, [client_cert.fingerprint])
    run_handshake(client, server)
    assert client.done and server.state is DtlsState.CONNECTED
    return client, server


# --- certificate -----------------------------------------------------------------------


def test_certificate(server_cert: Certificate) -> None:
    algorithm, value = server_cert.fingerprint
    assert algorithm == "sha-256"
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", value)
    cert = server_cert.x509
    assert cert.subject.rfc4514_string() == "CN=parta" == cert.issuer.rfc4514_string()
    assert isinstance(server_cert.key, ec.EllipticCurvePrivateKey)
    assert isinstance(server_cert.key.curve, ec.SECP256R1)
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=29) < lifetime <= datetime.timedelta(days=30)
    assert cert.not_valid_before_utc < datetime.datetime.now(datetime.UTC)
    assert server_cert.expires == cert.not_valid_after_utc
    assert Certificate.generate().x509.serial_number != cert.serial_number
    # Loadable into pyOpenSSL as they are.
    context = SSL.Context(SSL.DTLS_METHOD)
    context.use_certificate(cert)
    context.use_privatekey(server_cert.key)
    context.check_privatekey()
    assert isinstance(cert, x509.Certificate)


@pytest.mark.parametrize(
    "fingerprints",
    [[], [("sha-1", "AB:CD")], [("sha-256", "zz")], [("sha-256", "AB:CD")]],
)
def test_unusable_remote_fingerprints_are_refused(
    server_cert: Certificate, fingerprints: list[tuple[str, str]]
) -> None:
    with pytest.raises(ValueError):
        DtlsServer(server_cert, fingerprints)


# --- handshake -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [
        (BOTH, SrtpProfile.AEAD_AES_128_GCM),
        (b"SRTP_AEAD_AES_128_GCM", SrtpProfile.AEAD_AES_128_GCM),
        (b"SRTP_AES128_CM_SHA1_80", SrtpProfile.AES128_CM_SHA1_80),
        (b"SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80", SrtpProfile.AES128_CM_SHA1_80),
    ],
)
def test_handshake_exports_the_same_keys(
    server_cert: Certificate, client_cert: Certificate, profiles: bytes, expected: int
) -> None:
    client = Client(client_cert, profiles)
    server = DtlsServer(server_cert, [("SHA-256", client_cert.fingerprint[1].lower())])
    assert server.state is DtlsState.NEW
    with pytest.raises(RuntimeError):
        server.srtp_keys()
    [hello] = client.step()
    server.receive(hello, 5.0)
    assert server.state is DtlsState.CONNECTING
    flight = server.datagrams()
    assert flight and all(len(d) <= 1200 for d in flight)
    assert server.datagrams() == []  # drained
    timeout = server.next_timeout()
    assert timeout is not None and 5.0 < timeout <= 6.0  # OpenSSL starts at 1 s
    to_server = client.step(flight)
    for datagram in to_server:
        server.receive(datagram, 5.1)
    assert server.state is DtlsState.CONNECTED
    assert server.next_timeout() is None
    client.step(server.datagrams())
    assert client.done and client.error is None
    profile, client_write, server_write = client.keys()
    assert profile == expected
    assert server.srtp_keys() == (expected, client_write, server_write)
    key, salt = key_lengths(expected)
    assert len(client_write) == len(server_write) == key + salt
    assert client_write != server_write


def test_fingerprint_list_may_hold_several(
    server_cert: Certificate, client_cert: Certificate
) -> None:
    client = Client(client_cert)
    other = Certificate.generate().fingerprint
    server = DtlsServer(server_cert, [("sha-1", "00:11"), other, client_cert.fingerprint])
    run_handshake(client, server)
    assert server.state is DtlsState.CONNECTED


def test_wrong_fingerprint_fails_with_an_alert(
    server_cert: Certificate, client_cert: Certificate
) -> None:
    client = Client(client_cert)
    server = DtlsServer(server_cert, [Certificate.generate().fingerprint])
    run_handshake(client, server)
    assert server.state is DtlsState.FAILED
    assert client.error is not None  # the alert reached the client
    assert server.next_timeout() is None
    with pytest.raises(RuntimeError):
        server.srtp_keys()
    server.receive(b"\x16\xfe\xfd" + bytes(20), 1.0)  # nothing more once failed
    assert server.state is DtlsState.FAILED


def test_client_without_certificate_fails(server_cert: Certificate) -> None:
    client = Client(None)
    server = DtlsServer(server_cert, [Certificate.generate().fingerprint])
    run_handshake(client, server)
    assert server.state is DtlsState.FAILED


@pytest.mark.parametrize("profiles", [None, b"SRTP_AEAD_AES_256_GCM"])
def test_no_common_srtp_profile_fails(
    server_cert: Certificate, client_cert: Certificate, profiles: bytes | None
) -> None:
    client = Client(client_cert, profiles)
    server = DtlsServer(server_cert, [client_cert.fingerprint])
    run_handshake(client, server)
    assert server.state is DtlsState.FAILED
    with pytest.raises(RuntimeError):
        server.srtp_keys()


def test_lost_server_flight_is_retransmitted(
    server_cert: Certificate, client_cert: Certificate
) -> None:
    # OpenSSL keeps its retransmission timer on the wall clock and cannot be given a
    # shorter one through pyOpenSSL: the fake clock decides when the test calls
    # handle_timeout, but the first retransmission also needs one real second to pass.
    client = Client(client_cert)
    server = DtlsServer(server_cert, [client_cert.fingerprint])
    [hello] = client.step()
    now = 100.0
    server.receive(hello, now)
    lost = server.datagrams()
    deadline = server.next_timeout()
    assert lost and deadline is not None

    server.handle_timeout(now + 0.5)  # early: nothing
    assert server.datagrams() == []
    assert server.next_timeout() == deadline

    time.sleep(deadline - now)  # let OpenSSL's own clock catch up with ours
    server.handle_timeout(deadline)
    again = server.datagrams()
    assert again and b"".join(again)[:1] == b"\x16"
    later = server.next_timeout()
    assert later is not None and later >= deadline + 1.9  # the timer doubled

    to_server = client.step(again)
    for datagram in to_server:
        server.receive(datagram, deadline + 0.1)
    client.step(server.datagrams())
    assert server.state is DtlsState.CONNECTED and client.done
    assert server.srtp_keys()[1:] == client.keys()[1:]


def test_lost_final_flight_is_resent_when_the_client_retransmits(
    server_cert: Certificate, client_cert: Certificate
) -> None:
    client = Client(client_cert)
    server = DtlsServer(server_cert, [client_cert.fingerprint])
    [hello] = client.step()
    server.receive(hello, 0.0)
    for datagram in client.step(server.datagrams()):
        server.receive(datagram, 0.1)
    assert server.state is DtlsState.CONNECTED
    server.datagrams()  # ChangeCipherSpec + Finished: lost
    remaining = client.ssl.DTLSv1_get_timeout()
    assert remaining is not None
    time.sleep(remaining)
    client.ssl.DTLSv1_handle_timeout()  # the client resends its flight
    for datagram in client.drain():
        server.receive(datagram, 2.0)
    resent = server.datagrams()
    assert resent
    client.step(resent)
    assert client.done and server.state is DtlsState.CONNECTED


def test_handle_timeout_outside_a_handshake_does_nothing(
    server_cert: Certificate, client_cert: Certificate
) -> None:
    server = DtlsServer(server_cert, [client_cert.fingerprint])
    server.handle_timeout(10.0)
    assert server.state is DtlsState.NEW and server.datagrams() == []
    _, server = connected_pair(server_cert, client_cert)
    server.handle_timeout(1e9)
    assert server.state is DtlsState.CONNECTED and server.datagrams() == []


# --- after the handshake ---------------------------------------------------------------


def test_close_sends_close_notify(server_cert: Certificate, client_cert: Certificate) -> None:
    client, server = connected_pair(server_cert, client_cert)
    server.close()
    assert server.state is DtlsState.CLOSED
    [notify] = server.datagrams()
    client.ssl.bio_write(notify)
    with pytest.raises(SSL.ZeroReturnError):
        client.ssl.recv(1500)
    server.close()  # idempotent
    assert server.datagrams() == []
    server.receive(notify, 1.0)  # ignored once closed
    assert server.state is DtlsState.CLOSED
    assert server.srtp_keys()  # the keys stay readable


def test_close_before_anything_sends_nothing(server_cert: Certificate) -> None:
    server = DtlsServer(server_cert, [server_cert.fingerprint])
    server.close()
    assert server.state is DtlsState.CLOSED and server.datagrams() == []


def test_peer_close_notify_is_answered(server_cert: Certificate, client_cert: Certificate) -> None:
    client, server = connected_pair(server_cert, client_cert)
    assert client.ssl.shutdown() is False  # sent, waiting for ours
    for datagram in client.drain():
        server.receive(datagram, 1.0)
    assert server.state is DtlsState.CLOSED
    [answer] = server.datagrams()
    client.ssl.bio_write(answer)
    assert client.ssl.shutdown()  # both close_notify exchanged


def test_application_data_is_ignored(server_cert: Certificate, client_cert: Certificate) -> None:
    client, server = connected_pair(server_cert, client_cert)
    client.ssl.send(b"\x00" * 100)  # what an SCTP packet would look like to us
    for datagram in client.drain():
        assert datagram[0] == 23
        server.receive(datagram, 1.0)
    assert server.state is DtlsState.CONNECTED and server.datagrams() == []


def test_non_dtls_bytes_are_not_fed_to_openssl(server_cert: Certificate) -> None:
    server = DtlsServer(server_cert, [server_cert.fingerprint])
    for data in (b"", b"\x00\x01", b"\x80" * 40, b"\xff" * 100, b"\x13" + bytes(20)):
        server.receive(data, 0.0)
    assert server.state is DtlsState.NEW and server.datagrams() == []


@pytest.fixture(scope="module")
def hello_bytes(client_cert: Certificate) -> bytes:
    return Client(client_cert).step()[0]


@hsettings
@given(data=st.binary(min_size=1, max_size=300))
def test_garbage_never_raises_when_new(
    server_cert: Certificate, client_cert: Certificate, data: bytes
) -> None:
    server = DtlsServer(server_cert, [client_cert.fingerprint])
    server.receive(bytes([22]) + data, 0.0)
    server.receive(bytes([20 + data[0] % 44]) + data, 0.0)
    server.handle_timeout(10.0)
    server.datagrams()
    assert server.state in (DtlsState.CONNECTING, DtlsState.FAILED)


@hsettings
@given(st.data())
def test_mutated_client_hello_never_raises(
    server_cert: Certificate, client_cert: Certificate, hello_bytes: bytes, data: st.DataObject
) -> None:
    hello = bytearray(hello_bytes)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(hello) - 1))
        hello[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(hello)))
    server = DtlsServer(server_cert, [client_cert.fingerprint])
    server.receive(bytes(hello[:cut]), 0.0)
    server.datagrams()
    assert server.state in (DtlsState.NEW, DtlsState.CONNECTING, DtlsState.FAILED)


@hsettings
@given(data=st.binary(min_size=1, max_size=300))
def test_garbage_after_the_handshake_never_raises(
    server_cert: Certificate, client_cert: Certificate, data: bytes
) -> None:
    _, server = connected_pair(server_cert, client_cert)
    for content_type in (20, 21, 22, 23, 25):
        server.receive(bytes([content_type]) + b"\xfe\xfd" + data, 1.0)
    # A record in the current epoch with a bad MAC is dropped, as DTLS does.
    server.receive(b"\x17\xfe\xfd\x00\x01" + bytes(6) + struct.pack("!H", 40) + bytes(40), 1.0)
    assert server.state in (DtlsState.CONNECTED, DtlsState.FAILED, DtlsState.CLOSED)


def test_forged_records_leave_the_connection_up(
    server_cert: Certificate, client_cert: Certificate
) -> None:
    client, server = connected_pair(server_cert, client_cert)
    for epoch in (0, 1, 2):
        for content_type in (21, 22, 23):
            record = struct.pack("!BHHIHH", content_type, 0xFEFD, epoch, 0, 77, 48) + bytes(48)
            server.receive(record, 1.0)
    assert server.state is DtlsState.CONNECTED
    client.ssl.send(b"still here")
    for datagram in client.drain():
        server.receive(datagram, 2.0)
    assert server.state is DtlsState.CONNECTED


# --- SRTP with the exported keys -------------------------------------------------------


def rtp_packet(seq: int, ssrc: int = 0x12345678, size: int = 200) -> bytes:
    header = struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, seq * 3000 & 0xFFFFFFFF, ssrc)
    return header + bytes([seq & 0xFF]) * (size - len(header))


def rtcp_packet(ssrc: int = 0x12345678) -> bytes:
    # A receiver report without report blocks.
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


def client_sessions(client: Client) -> tuple[Session, Session]:
    """The browser's side: it sends with the client write key and receives with ours."""
    profile, client_write, server_write = client.keys()
    tx = Session(Policy(client_write, Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    rx = Session(Policy(server_write, Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    return tx, rx


@pytest.fixture(params=[b"SRTP_AEAD_AES_128_GCM", b"SRTP_AES128_CM_SHA1_80"])
def srtp_setup(
    request: pytest.FixtureRequest, server_cert: Certificate, client_cert: Certificate
) -> Iterator[tuple[SrtpPair, Session, Session]]:
    client, server = connected_pair(server_cert, client_cert, request.param)
    pair = SrtpPair.from_keys(*server.srtp_keys())
    assert pair.profile == OPENSSL_PROFILES[request.param]
    tx, rx = client_sessions(client)
    yield pair, tx, rx


def test_srtp_round_trip_both_ways(srtp_setup: tuple[SrtpPair, Session, Session]) -> None:
    pair, browser_tx, browser_rx = srtp_setup
    for seq in range(1000, 1010):
        packet = rtp_packet(seq)
        protected = browser_tx.protect(packet)
        assert protected != packet
        assert pair.unprotect_rtp(protected) == packet
    assert pair.unprotect_rtcp(browser_tx.protect_rtcp(rtcp_packet())) == rtcp_packet()
    # And toward the browser, from many SSRCs (one per consumer).
    for ssrc in range(1, 51):
        packet = rtp_packet(7, ssrc=ssrc)
        assert browser_rx.unprotect(pair.protect_rtp(packet)) == packet
    assert browser_rx.unprotect_rtcp(pair.protect_rtcp(rtcp_packet(9))) == rtcp_packet(9)


def test_srtp_failures_return_none(srtp_setup: tuple[SrtpPair, Session, Session]) -> None:
    pair, browser_tx, _ = srtp_setup
    protected = browser_tx.protect(rtp_packet(500))
    tampered = bytearray(protected)
    tampered[-1] ^= 1
    assert pair.unprotect_rtp(bytes(tampered)) is None
    assert pair.unprotect_rtp(protected) == rtp_packet(500)
    assert pair.unprotect_rtp(protected) is None  # replayed
    assert pair.unprotect_rtp(b"\x80\x60") is None
    assert pair.unprotect_rtp(bytes(2000)) is None  # longer than libsrtp takes
    assert pair.unprotect_rtcp(rtcp_packet() + bytes(20)) is None
    assert pair.unprotect_rtcp(b"") is None


def test_srtp_replay_window_covers_late_packets(
    srtp_setup: tuple[SrtpPair, Session, Session],
) -> None:
    pair, browser_tx, _ = srtp_setup
    late = [browser_tx.protect(rtp_packet(seq)) for seq in range(10000, 13001)]
    assert pair.unprotect_rtp(late[-1]) is not None  # 13000 arrives first
    assert pair.unprotect_rtp(late[0]) == rtp_packet(10000)  # 3,000 behind: still taken


def test_retransmission_can_be_protected_again(
    srtp_setup: tuple[SrtpPair, Session, Session],
) -> None:
    pair, _, browser_rx = srtp_setup
    packets = [rtp_packet(seq, ssrc=0xABC) for seq in range(100, 120)]
    protected = [pair.protect_rtp(p) for p in packets]
    # The browser lost #105 and NACKs it; we protect the cached packet once more.
    again = pair.protect_rtp(packets[5])
    assert again == protected[5]
    for i, data in enumerate(protected):
        if i != 5:
            assert browser_rx.unprotect(data) == packets[i]
    assert browser_rx.unprotect(again) == packets[5]


def test_a_retransmission_is_protected_as_far_back_as_consumers_keep_packets(
    srtp_setup: tuple[SrtpPair, Session, Session],
) -> None:
    pair, _, browser_rx = srtp_setup
    packets = [rtp_packet(seq, ssrc=0xABC) for seq in range(RETRANSMIT_WINDOW + 1)]
    protected = [pair.protect_rtp(p) for p in packets]
    assert pair.protect_rtp(packets[1]) == protected[1]  # the oldest a consumer keeps
    assert browser_rx.unprotect(protected[1]) == packets[1]


def test_srtp_pair_refuses_wrong_keys() -> None:
    with pytest.raises(ValueError):
        SrtpPair.from_keys(SrtpProfile.AEAD_AES_128_GCM, bytes(30), bytes(30))
    with pytest.raises(ValueError):
        SrtpPair.from_keys(0x0002, bytes(30), bytes(30))  # AES128_CM_SHA1_32: not ours


# --- aiortc as the client --------------------------------------------------------------


class FakeIceTransport:
    """What RTCDtlsTransport needs of an RTCIceTransport: a role and datagrams."""

    role = "controlled"  # so aiortc takes the DTLS client role

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.sent: asyncio.Queue[bytes] = asyncio.Queue()

    async def _send(self, data: bytes) -> None:
        self.sent.put_nowait(data)

    async def _recv(self) -> bytes:
        return await self.incoming.get()


async def test_aiortc_client_handshake(server_cert: Certificate) -> None:
    loop = asyncio.get_running_loop()
    ice: Any = FakeIceTransport()
    certificate = RTCCertificate.generateCertificate()
    dtls = RTCDtlsTransport(ice, [certificate])
    fingerprints = [(f.algorithm, f.value) for f in dtls.getLocalParameters().fingerprints]
    server = DtlsServer(server_cert, fingerprints)

    async def drive() -> None:
        while True:
            server.receive(await ice.sent.get(), loop.time())
            for datagram in server.datagrams():
                ice.incoming.put_nowait(datagram)

    driver = asyncio.create_task(drive())
    try:
        ours = RTCDtlsFingerprint(*server_cert.fingerprint)
        await asyncio.wait_for(dtls.start(RTCDtlsParameters([ours], "server")), 10)
        assert dtls.state == "connected"
        assert server.state is DtlsState.CONNECTED
        profile, rx_key, tx_key = server.srtp_keys()
        assert profile == SrtpProfile.AEAD_AES_128_GCM  # aiortc offers AES-256-GCM first
        pair = SrtpPair.from_keys(profile, rx_key, tx_key)
        driver.cancel()  # from here on the test reads what aiortc sends

        packet = rtp_packet(42)
        await dtls._send_rtp(packet)  # aiortc protects with its tx session
        assert pair.unprotect_rtp(await asyncio.wait_for(ice.sent.get(), 5)) == packet
        await dtls.stop()
        notify = await asyncio.wait_for(ice.sent.get(), 5)
        server.receive(notify, loop.time())
        assert server.state is DtlsState.CLOSED
    finally:
        driver.cancel()
        await asyncio.gather(driver, return_exceptions=True)
