"""Sans-IO DTLS 1.2 server for DTLS-SRTP (RFC 5764), over pyOpenSSL memory BIOs.

The browser is always the DTLS client (our answers say ``a=setup:passive``); we only need
the handshake, the SRTP keys it exports and a close. Records in, records out::

    dtls.receive(datagram, now)            # a datagram whose first byte is 20-63
    for record in dtls.datagrams():
        send(record)
    timer = dtls.next_timeout()            # absolute, in the units of ``now``; or None
    ...
    dtls.handle_timeout(now)               # from the periodic timer, once ``now >= timer``
    if dtls.state is DtlsState.CONNECTED:
        srtp = SrtpPair.from_keys(*dtls.srtp_keys())

The peer is authenticated by the fingerprint its SDP carried (RFC 8122): the certificate
itself is self-signed and its chain is not checked; a certificate whose digest matches no
fingerprint fails the handshake with a fatal alert (OpenSSL sends ``unknown_ca``).
Data-channel (SCTP) application data is not supported and is discarded.

Two things OpenSSL decides for itself. Its retransmission timer runs on the wall clock:
``next_timeout`` turns OpenSSL's remaining time into a deadline on the driver's clock, and
``handle_timeout`` asks OpenSSL to retransmit, which it does only once its own timer has
expired (1 s, then doubling). And a broken peer never makes ``receive`` raise: OpenSSL drops
records it cannot authenticate or parse, and a fatal error puts ``state`` to ``FAILED``.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import hmac
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL, crypto

from sfu.srtp import SrtpProfile, key_lengths

__all__ = ["FINGERPRINT_ALGORITHM", "Certificate", "DtlsServer", "DtlsState"]

FINGERPRINT_ALGORITHM = "sha-256"
_DIGESTS: dict[str, hashes.HashAlgorithm] = {
    "sha-256": hashes.SHA256(),
    "sha-384": hashes.SHA384(),
    "sha-512": hashes.SHA512(),
}

_DTLS1_2_VERSION = 0xFEFD  # not exported by pyOpenSSL
_CIPHERS = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
)
# Our order of preference; OpenSSL picks the first one of ours the client offers.
_SRTP_PROFILES = {
    b"SRTP_AEAD_AES_128_GCM": SrtpProfile.AEAD_AES_128_GCM,
    b"SRTP_AES128_CM_SHA1_80": SrtpProfile.AES128_CM_SHA1_80,
}
_SRTP_EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"

_MTU = 1200  # what we let OpenSSL put in one datagram: safe on any path, ICE-TCP included
_RECORD_HEADER = 13  # content type, version, epoch, sequence number, length
_READ_SIZE = 1 << 16
_CERTIFICATE_LIFETIME = datetime.timedelta(days=30)


class DtlsState(enum.Enum):
    NEW = "new"  # nothing received yet
    CONNECTING = "connecting"  # handshake under way
    CONNECTED = "connected"  # handshake done, peer verified, SRTP keys ready
    FAILED = "failed"  # fatal alert, bad fingerprint, no SRTP profile, too many timeouts
    CLOSED = "closed"  # close_notify sent or received


class Certificate:
    """A self-signed ECDSA P-256 certificate and its key (one per worker).

    ``fingerprint`` is ``("sha-256", "AB:CD:...")`` for ``a=fingerprint``; ``key`` and
    ``x509`` are ``cryptography`` objects, which pyOpenSSL loads as they are.
    """

    __slots__ = ("_context", "fingerprint", "key", "x509")

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self.key = key
        self.x509 = certificate
        self.fingerprint = (FINGERPRINT_ALGORITHM, _format_fingerprint(certificate))
        self._context: SSL.Context | None = None

    @classmethod
    def generate(cls, now: datetime.datetime | None = None) -> Certificate:
        """A fresh key and certificate: CN ``parta``, random serial, valid for 30 days.

        Validity starts a day early, so a peer whose clock is behind does not mind.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "parta")])
        start = now or datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - datetime.timedelta(days=1))
            .not_valid_after(start + _CERTIFICATE_LIFETIME)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @property
    def expires(self) -> datetime.datetime:
        return self.x509.not_valid_after_utc

    def _server_context(self) -> SSL.Context:
        # One context per certificate, shared by all its DtlsServers: the verify callback
        # reads each connection's expected fingerprints from the connection's app data.
        if self._context is None:
            context = SSL.Context(SSL.DTLS_SERVER_METHOD)
            context.set_min_proto_version(_DTLS1_2_VERSION)
            context.set_max_proto_version(_DTLS1_2_VERSION)
            context.set_options(
                SSL.OP_NO_TICKET
                | SSL.OP_NO_QUERY_MTU
                | SSL.OP_NO_RENEGOTIATION
                | SSL.OP_CIPHER_SERVER_PREFERENCE
            )
            context.set_cipher_list(_CIPHERS)
            context.use_certificate(self.x509)
            context.use_privatekey(self.key)
            context.check_privatekey()
            context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _verify_peer)
            context.set_tlsext_use_srtp(b":".join(_SRTP_PROFILES))
            self._context = context
        return self._context


def _format_fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def _expected_digests(fingerprints: Iterable[tuple[str, str]]) -> dict[str, frozenset[bytes]]:
    expected: dict[str, set[bytes]] = {}
    for algorithm, value in fingerprints:
        name = algorithm.lower()
        if name not in _DIGESTS:
            continue  # e.g. sha-1: ignored, as long as a supported one is given too
        try:
            digest = bytes.fromhex(value.replace(":", ""))
        except ValueError:
            raise ValueError(f"malformed {algorithm} fingerprint") from None
        if len(digest) != _DIGESTS[name].digest_size:
            raise ValueError(f"malformed {algorithm} fingerprint")
        expected.setdefault(name, set()).add(digest)
    if not expected:
        raise ValueError("no sha-256, sha-384 or sha-512 fingerprint for the peer")
    return {name: frozenset(digests) for name, digests in expected.items()}


def _fingerprint_matches(certificate: x509.Certificate, expected: object) -> bool:
    if not isinstance(expected, dict):
        return False
    for name, digests in expected.items():
        actual = certificate.fingerprint(_DIGESTS[name])
        if any(hmac.compare_digest(actual, digest) for digest in digests):
            return True
    return False


def _verify_peer(
    connection: SSL.Connection, certificate: crypto.X509, errno: int, depth: int, ok: int
) -> bool:
    # A self-signed certificate is the norm: only the leaf's fingerprint decides.
    if depth != 0:
        return True
    return _fingerprint_matches(certificate.to_cryptography(), connection.get_app_data())


def _split_records(data: bytes, mtu: int) -> list[bytes]:
    """Cut what OpenSSL wrote into datagrams of whole records, packed up to ``mtu`` bytes.

    A memory BIO is a byte stream, so the boundaries of the datagrams OpenSSL meant to send
    are lost; record boundaries are not, and a datagram may carry several records.
    """
    datagrams: list[bytes] = []
    start = pos = 0
    size = len(data)
    while pos < size:
        if pos + _RECORD_HEADER > size:
            pos = size  # cannot happen with OpenSSL's output; keep the bytes anyway
            break
        end = pos + _RECORD_HEADER + int.from_bytes(data[pos + 11 : pos + 13], "big")
        if end - start > mtu and pos > start:
            datagrams.append(data[start:pos])
            start = pos
        pos = min(end, size)
    if start < size:
        datagrams.append(data[start:])
    return datagrams


class DtlsServer:
    """The DTLS server side of one transport."""

    __slots__ = ("_connection", "_deadline", "_keys", "_mtu", "_outgoing", "state")

    def __init__(
        self,
        certificate: Certificate,
        remote_fingerprints: Iterable[tuple[str, str]],
        *,
        mtu: int = _MTU,
    ) -> None:
        expected = _expected_digests(remote_fingerprints)
        connection = SSL.Connection(certificate._server_context(), None)
        connection.set_app_data(expected)
        connection.set_accept_state()
        connection.set_ciphertext_mtu(mtu)
        self._connection = connection
        self._mtu = mtu
        self._outgoing: list[bytes] = []
        self._deadline: float | None = None
        self._keys: tuple[int, bytes, bytes] | None = None
        self.state = DtlsState.NEW

    # --- input --------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Feed one datagram (or ICE-TCP frame) of DTLS records; never raises on bad input."""
        if self.state in (DtlsState.FAILED, DtlsState.CLOSED) or not data:
            return
        if not 20 <= data[0] <= 63:
            return  # not DTLS (RFC 7983)
        if self.state is DtlsState.NEW:
            self.state = DtlsState.CONNECTING
        try:
            self._connection.bio_write(data)
        except (SSL.Error, ValueError):
            return
        if self.state is DtlsState.CONNECTING:
            self._handshake()
        if self.state is DtlsState.CONNECTED:
            self._read()
        self._flush(now)

    def handle_timeout(self, now: float) -> None:
        """Let OpenSSL retransmit its last flight if its timer expired."""
        if self.state is not DtlsState.CONNECTING:
            self._deadline = None
            return
        if self._deadline is None or now < self._deadline:
            return
        try:
            self._connection.DTLSv1_handle_timeout()
        except (SSL.Error, ValueError):
            self.state = DtlsState.FAILED  # too many retransmissions
        self._flush(now)

    def close(self) -> None:
        """Send close_notify (if a handshake started) and stop; idempotent."""
        if self.state in (DtlsState.CONNECTING, DtlsState.CONNECTED):
            self._shutdown()
            self._flush(None)
        self.state = DtlsState.CLOSED
        self._deadline = None

    # --- output -------------------------------------------------------------------------

    def datagrams(self) -> list[bytes]:
        """The datagrams to send, oldest first; drained by the call."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def next_timeout(self) -> float | None:
        """When to call ``handle_timeout`` (on the clock of ``now``), or ``None``."""
        return self._deadline

    def srtp_keys(self) -> tuple[int, bytes, bytes]:
        """``(profile, rx key + salt, tx key + salt)`` for ``SrtpPair.from_keys``.

        We are the server, so we receive with the client's write key (RFC 5764 section
        4.2). Raises ``RuntimeError`` before the handshake completed.
        """
        if self._keys is None:
            raise RuntimeError("the DTLS handshake has not completed")
        return self._keys

    # --- internals ----------------------------------------------------------------------

    def _handshake(self) -> None:
        connection = self._connection
        try:
            connection.do_handshake()
        except SSL.WantReadError:
            return
        except (SSL.Error, ValueError):
            self.state = DtlsState.FAILED  # OpenSSL queued the alert, if any, for _flush
            return
        # The verify callback already checked the fingerprint; check again in case the
        # peer sent no certificate in a way OpenSSL let through.
        peer = connection.get_peer_certificate(as_cryptography=True)
        profile = _SRTP_PROFILES.get(connection.get_selected_srtp_profile())
        if peer is None or profile is None:
            self._fail_connected()
            return
        if not _fingerprint_matches(peer, connection.get_app_data()):
            self._fail_connected()
            return
        key, salt = key_lengths(profile)
        material = connection.export_keying_material(_SRTP_EXPORTER_LABEL, 2 * (key + salt))
        # client key | server key | client salt | server salt
        client_key = material[:key] + material[2 * key : 2 * key + salt]
        server_key = material[key : 2 * key] + material[2 * key + salt :]
        self._keys = (profile, client_key, server_key)
        self.state = DtlsState.CONNECTED

    def _read(self) -> None:
        # After the handshake: let OpenSSL see alerts, close_notify and retransmitted
        # Finished messages (it answers those by resending its last flight); application
        # data is dropped.
        connection = self._connection
        while True:
            try:
                connection.recv(_READ_SIZE)
            except SSL.WantReadError:
                return
            except SSL.ZeroReturnError:
                self._shutdown()  # answer close_notify with close_notify
                self.state = DtlsState.CLOSED
                return
            except (SSL.Error, ValueError):
                self.state = DtlsState.FAILED
                return

    def _fail_connected(self) -> None:
        self._shutdown()
        self.state = DtlsState.FAILED

    def _shutdown(self) -> None:
        with contextlib.suppress(SSL.Error, ValueError):
            self._connection.shutdown()

    def _flush(self, now: float | None) -> None:
        connection = self._connection
        chunks: list[bytes] = []
        while True:
            try:
                chunks.append(connection.bio_read(_READ_SIZE))
            except (SSL.Error, ValueError):
                break
        if chunks:
            self._outgoing.extend(_split_records(b"".join(chunks), self._mtu))
        if now is None or self.state is not DtlsState.CONNECTING:
            self._deadline = None
            return
        remaining = connection.DTLSv1_get_timeout()
        self._deadline = None if remaining is None else now + remaining
