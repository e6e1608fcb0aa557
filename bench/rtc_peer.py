"""Lightweight synthetic WebRTC peers for ``python -m bench sfu`` (no decoding, ever).

A peer signals through Parta's WebSocket with the SDK (``call.join``, ``call.offer``,
``call.layer``), then speaks to the SFU worker the way Chromium does, with as little
Python per packet as we can manage:

* an SDP offer shaped like Chromium's (BUNDLE, rtcp-mux, rtcp-rsize, ``setup:actpass``,
  Chrome's header extension ids, VP8 96 + RTX 97, Opus 111), sendonly sections for what it
  publishes (RID simulcast ``q;h;f`` or one SSRC) and one recvonly section per remote track;
* ICE as the controlling full agent (STUN binding requests built with aioice's codec, then
  one every 2.5 s for consent);
* DTLS as the client over pyOpenSSL memory BIOs, SRTP keys exported from it, pylibsrtp;
* publishing from the process's pacer (one timer, no task per packet): 30 fps VP8 frames of
  ~1,100-byte packets with real payload descriptors, keyframes every 2 s and on PLI,
  transport-wide sequence numbers and abs-send-time on every packet, Opus-sized audio at
  50 packets/s with the audio level, a small cache to answer NACKs, a sender report a second;
* receiving: SRTP-unprotect every packet, count packets/bytes per SSRC, loss from sequence
  gaps, RFC 3550 interarrival jitter, receiver reports, transport-cc feedback every 100 ms
  (what Chromium sends when transport-cc is negotiated), optional REMB, PLI on loss.

One connected UDP socket per peer (the SFU tells its transports apart by remote address, so
peers cannot share one), read with ``loop.add_reader`` and ``recvmsg`` rather than an
``asyncio.DatagramProtocol``, for one reason: the kernel's receive timestamp
(``SO_TIMESTAMPNS``). Dozens of peers share one process here, and a process busy with
something else reads late; timestamps taken when Python gets round to a datagram would show
the SFU queueing delay that is really ours, and its bandwidth estimator would act on it.
With the kernel's time, transport-cc feedback and jitter describe the path, as a browser's
would.

``python -m bench.rtc_peer`` is one load process of the harness: it reads a JSON settings
line, then JSON commands on stdin (``add`` peers, ``snapshot`` counters, ``remb``, ``breakout``
rooms opened or closed by a host peer, ``stop``) and answers each with one JSON line on stdout,
like ``bench/chat_worker.py`` (``add`` also reports progress lines before its answer).

Every payload a peer sends ends with its account id, and receivers count packets per sender:
what arrived from whom, whatever the signalling said (breakout rooms must not leak media).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import json
import math
import os
import random
import resource
import secrets
import socket
import struct
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

import uvloop
from aioice import stun
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL
from pylibsrtp import Policy, Session

from protocol.calls import CallPeople, CallTracks, RoomsClose, RoomsOpen
from protocol.client import Client, ClientError, ConnectionLost

# --- what we offer (Chromium's ids) ------------------------------------------------------

EXT_AUDIO_LEVEL = 1
EXT_ABS_SEND_TIME = 2
EXT_TRANSPORT_CC = 3
EXT_MID = 4
EXT_RID = 10
EXT_REPAIRED_RID = 11
VP8_PT, RTX_PT, OPUS_PT = 96, 97, 111
VIDEO_CLOCK, AUDIO_CLOCK = 90_000, 48_000

RIDS = ("q", "h", "f")
LAYER_NAMES = ("low", "medium", "high")
DEFAULT_BITRATES = (150_000, 500_000, 1_500_000)
RESOLUTIONS = ((320, 180), (640, 360), (1280, 720))
FPS = 30
MAX_PAYLOAD = 1100  # bytes of RTP payload per video packet at most
KEYFRAME_EVERY_S = 2.0
AUDIO_PAYLOAD = 80
AUDIO_PTIME_S = 0.02
NACK_CACHE = 512  # packets kept per video stream for retransmission
# Like Chrome: a packet is not resent again within this long of its last resend, and
# retransmissions get at most the media's own bitrate (its retransmission rate limiter).
RESEND_INTERVAL_S = 0.02

CONSENT_EVERY_S = 2.5
TWCC_EVERY_S = 0.1
REPORT_EVERY_S = 1.0
PLI_THROTTLE_S = 1.0
PLI_GRACE_S = 0.3  # a gap still open this long after it was seen: the frame is lost

_RTP = struct.Struct("!BBHII")
_SEQ_TS_SSRC = struct.Struct("!HII")
_RTCP_HEADER = struct.Struct("!BBH")
_U32 = struct.Struct("!I")
_TWO_U32 = struct.Struct("!II")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_SENDER_INFO = struct.Struct("!IQIII")
_TCC_HEADER = struct.Struct("!IIHHI")
_EXT_HEADER = struct.Struct("!HH")
_TIMESPEC = struct.Struct("@qq")
# Linux (asm-generic) socket options that Python's socket module does not name.
SO_TIMESTAMPNS = 35
_ANCILLARY = 64
_READ_BATCH = 64  # datagrams per wake-up at most, so one busy peer cannot starve the rest
_NTP_EPOCH_OFFSET = 2_208_988_800
_FILLER = os.urandom(MAX_PAYLOAD)  # stands in for compressed video: nobody decodes it
_PADDING = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")


Source = Literal["mic", "camera", "screen", "screen-audio"]
Layer = Literal["off", "low", "medium", "high"]


class Track(Protocol):
    """What the SDK hands out for a remote track (``call.join`` and ``call.tracks``); typed
    by its fields so that this module does not depend on where the message structs live."""

    @property
    def track_id(self) -> str: ...
    @property
    def account_id(self) -> int: ...
    @property
    def kind(self) -> str: ...


class PeerFailed(Exception):
    """A peer could not join, negotiate, connect or receive media."""


# --- DTLS: certificate, client, record splitting -------------------------------------------

_DTLS1_2 = 0xFEFD
_SRTP_PROFILES = b"SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"
# profile name → (pylibsrtp profile, master key length, master salt length)
_PROFILES = {
    b"SRTP_AEAD_AES_128_GCM": (Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
    b"SRTP_AES128_CM_SHA1_80": (Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
}
_DTLS_MTU = 1200


class Identity:
    """Our self-signed ECDSA certificate and the DTLS client context on it (one per process,
    shared by its peers, as a browser shares one per page)."""

    def __init__(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bench")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        self.fingerprint = "sha-256 " + certificate.fingerprint(hashes.SHA256()).hex(":").upper()
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_min_proto_version(_DTLS1_2)
        context.set_max_proto_version(_DTLS1_2)
        context.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_QUERY_MTU)
        context.set_cipher_list(b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384")
        context.use_certificate(certificate)
        context.use_privatekey(key)
        # The server's certificate is self-signed: its SDP fingerprint is checked after the
        # handshake, so the chain check always passes here.
        context.set_verify(SSL.VERIFY_PEER, lambda *_: True)
        context.set_tlsext_use_srtp(_SRTP_PROFILES)
        self.context = context


def split_records(data: bytes, mtu: int = _DTLS_MTU) -> list[bytes]:
    """What OpenSSL wrote to a memory BIO, cut into datagrams of whole DTLS records."""
    datagrams: list[bytes] = []
    start = pos = 0
    size = len(data)
    while pos + 13 <= size:
        end = pos + 13 + int.from_bytes(data[pos + 11 : pos + 13], "big")
        if end - start > mtu and pos > start:
            datagrams.append(data[start:pos])
            start = pos
        pos = end
    if start < size:
        datagrams.append(data[start:])
    return datagrams


class DtlsClient:
    """The DTLS client side of one transport: records in, datagrams out (sans-IO)."""

    def __init__(self, identity: Identity, server_fingerprint: str) -> None:
        algorithm, _, value = server_fingerprint.partition(" ")
        if algorithm.lower() != "sha-256":
            raise PeerFailed(f"unsupported fingerprint algorithm {algorithm}")
        self._expected = bytes.fromhex(value.replace(":", ""))
        connection = SSL.Connection(identity.context, None)
        connection.set_connect_state()
        connection.set_ciphertext_mtu(_DTLS_MTU)
        self._connection = connection
        self.state = "connecting"
        self.keys: tuple[int, bytes, bytes] | None = None  # profile, tx key+salt, rx key+salt

    def start(self) -> list[bytes]:
        self._handshake()
        return self._flush()

    def receive(self, data: bytes) -> list[bytes]:
        try:
            self._connection.bio_write(data)
        except (SSL.Error, ValueError):
            return []
        if self.state == "connecting":
            self._handshake()
        return self._flush()

    def timeout(self) -> float | None:
        return self._connection.DTLSv1_get_timeout() if self.state == "connecting" else None

    def handle_timeout(self) -> list[bytes]:
        if self.state == "connecting":
            try:
                self._connection.DTLSv1_handle_timeout()
            except (SSL.Error, ValueError):
                self.state = "failed"
        return self._flush()

    def _handshake(self) -> None:
        connection = self._connection
        try:
            connection.do_handshake()
        except SSL.WantReadError:
            return
        except (SSL.Error, ValueError):
            self.state = "failed"
            return
        peer = connection.get_peer_certificate(as_cryptography=True)
        if peer is None or peer.fingerprint(hashes.SHA256()) != self._expected:
            self.state = "failed"
            return
        profile = _PROFILES.get(connection.get_selected_srtp_profile())
        if profile is None:
            self.state = "failed"
            return
        srtp_profile, key, salt = profile
        material = connection.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (key + salt))
        # client key | server key | client salt | server salt; we are the client.
        client = material[:key] + material[2 * key : 2 * key + salt]
        server = material[key : 2 * key] + material[2 * key + salt :]
        self.keys = (srtp_profile, client, server)
        self.state = "connected"

    def _flush(self) -> list[bytes]:
        chunks = []
        while True:
            try:
                chunks.append(self._connection.bio_read(65536))
            except (SSL.Error, ValueError):
                break
        return split_records(b"".join(chunks)) if chunks else []


def srtp_sessions(profile: int, tx_key: bytes, rx_key: bytes) -> tuple[Session, Session]:
    tx_policy = Policy(tx_key, Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
    tx_policy.allow_repeat_tx = True  # NACKed packets go out again with the same index
    tx_policy.window_size = 1024
    rx_policy = Policy(rx_key, Policy.SSRC_ANY_INBOUND, srtp_profile=profile)
    rx_policy.window_size = 1024
    return Session(tx_policy), Session(rx_policy)


# --- SDP ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    """One m-section of our offer."""

    mid: str
    kind: str  # "audio" | "video"
    direction: str  # "sendonly" | "recvonly"
    rids: tuple[str, ...] = ()  # simulcast send
    ssrc: int | None = None  # a single-stream sender
    msid: str = ""


_AUDIO_EXTMAPS = (
    (EXT_AUDIO_LEVEL, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
    (EXT_ABS_SEND_TIME, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    (
        EXT_TRANSPORT_CC,
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    ),
    (EXT_MID, "urn:ietf:params:rtp-hdrext:sdes:mid"),
)
_VIDEO_EXTMAPS = (
    (EXT_ABS_SEND_TIME, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    (
        EXT_TRANSPORT_CC,
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    ),
    (EXT_MID, "urn:ietf:params:rtp-hdrext:sdes:mid"),
    (EXT_RID, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"),
    (EXT_REPAIRED_RID, "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"),
)


def _session_lines(mids: Iterable[str]) -> list[str]:
    return [
        "v=0",
        f"o=- {secrets.randbits(62)} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE " + " ".join(mids),
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS",
    ]


def _media_lines(
    kind: str, pts: str, mid: str, *, ufrag: str, pwd: str, fingerprint: str, setup: str
) -> list[str]:
    """The start of an m-section: transport (ICE, DTLS) and mid."""
    return [
        f"m={kind} 9 UDP/TLS/RTP/SAVPF {pts}",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=ice-ufrag:{ufrag}",
        f"a=ice-pwd:{pwd}",
        "a=ice-options:trickle",
        f"a=fingerprint:{fingerprint}",
        f"a=setup:{setup}",
        f"a=mid:{mid}",
    ]


def _codec_lines(kind: str, pt: int, rtx_pt: int | None) -> list[str]:
    """VP8 (+RTX) or Opus, with Chromium's feedback and parameters."""
    if kind == "audio":
        return [
            f"a=rtpmap:{pt} opus/48000/2",
            f"a=rtcp-fb:{pt} transport-cc",
            f"a=fmtp:{pt} minptime=10;useinbandfec=1",
        ]
    lines = [f"a=rtpmap:{pt} VP8/90000"]
    lines += [
        f"a=rtcp-fb:{pt} {fb}"
        for fb in ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
    ]
    if rtx_pt is not None:
        lines += [f"a=rtpmap:{rtx_pt} rtx/90000", f"a=fmtp:{rtx_pt} apt={pt}"]
    return lines


def build_offer(
    sections: Iterable[Section],
    *,
    ufrag: str,
    pwd: str,
    fingerprint: str,
    cname: str,
    setup: str = "actpass",
) -> str:
    """An offer laid out like Chromium's (see ``tests/fixtures/sdp/chromium-156-*``), with
    only the codecs we send: VP8 (+RTX) and Opus. We are always the DTLS client: an SFU that
    answers ``actpass`` with ``active`` (Janus) gets ``setup="active"``."""
    sections = list(sections)
    lines = _session_lines(s.mid for s in sections)
    for s in sections:
        video = s.kind == "video"
        pts = f"{VP8_PT} {RTX_PT}" if video else str(OPUS_PT)
        lines += _media_lines(
            s.kind, pts, s.mid, ufrag=ufrag, pwd=pwd, fingerprint=fingerprint, setup=setup
        )
        lines += [f"a=extmap:{i} {uri}" for i, uri in (_VIDEO_EXTMAPS if video else _AUDIO_EXTMAPS)]
        lines.append(f"a={s.direction}")
        if s.direction == "sendonly":
            lines.append(f"a=msid:- {s.msid}")
        lines += ["a=rtcp-mux", "a=rtcp-rsize"]
        lines += (
            _codec_lines(s.kind, VP8_PT, RTX_PT) if video else _codec_lines(s.kind, OPUS_PT, None)
        )
        if s.rids:
            lines += [f"a=rid:{rid} send" for rid in s.rids]
            lines.append("a=simulcast:send " + ";".join(s.rids))
        elif s.ssrc is not None:
            lines += [f"a=ssrc:{s.ssrc} cname:{cname}", f"a=ssrc:{s.ssrc} msid:- {s.msid}"]
    return "\r\n".join(lines) + "\r\n"


@dataclass(slots=True)
class AnswerSection:
    mid: str
    kind: str
    port: int
    direction: str = "inactive"
    ssrcs: list[int] = field(default_factory=list)
    codecs: dict[str, int] = field(default_factory=dict)  # "vp8", "opus", "rtx" → first PT
    extmaps: dict[str, int] = field(default_factory=dict)  # URI → id


def parse_answer(text: str) -> dict[str, AnswerSection]:
    """Per mid: accepted (port ≠ 0) or not, the direction, the SSRCs the SFU sends, codecs
    and header extensions. Also reads an SFU's offer, for ``build_answer``."""
    sections: dict[str, AnswerSection] = {}
    current: AnswerSection | None = None
    for line in text.splitlines():
        if line.startswith("m="):
            kind, port = line[2:].split()[:2]
            current = AnswerSection("", kind, int(port))
        elif current is None:
            continue
        elif line.startswith("a=mid:"):
            current.mid = line[6:]
            sections[current.mid] = current
        elif line[2:] in ("sendonly", "recvonly", "sendrecv", "inactive"):
            current.direction = line[2:]
        elif line.startswith("a=ssrc:") and " cname:" in line:
            ssrc = int(line[7:].split()[0])
            if ssrc not in current.ssrcs:
                current.ssrcs.append(ssrc)
        elif line.startswith("a=rtpmap:"):
            pt, encoding = line[9:].split(maxsplit=1)
            current.codecs.setdefault(encoding.split("/")[0].lower(), int(pt))
        elif line.startswith("a=extmap:"):
            ext_id, uri = line[9:].split()[:2]
            current.extmaps[uri] = int(ext_id.split("/")[0])
    return sections


@dataclass(frozen=True, slots=True)
class RemoteTransport:
    """ICE credentials, DTLS fingerprint and first UDP host candidate from an SFU's SDP
    (Parta's ``call.join`` carries them instead)."""

    ufrag: str
    pwd: str
    fingerprint: str
    address: str
    port: int


def remote_transport(text: str) -> RemoteTransport:
    found: dict[str, str] = {}
    candidate: tuple[str, int] | None = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("a=ice-ufrag", "a=ice-pwd", "a=fingerprint"):
            found.setdefault(key, value.strip())
        elif key == "a=candidate" and candidate is None:
            # foundation component transport priority address port "typ" type ...
            fields = value.split()
            if len(fields) > 5 and fields[1] == "1" and fields[2].lower() == "udp":
                candidate = (fields[4], int(fields[5]))
    if candidate is None or len(found) < 3:
        raise PeerFailed("the SDP lacks a UDP candidate, ICE credentials or a fingerprint")
    return RemoteTransport(
        found["a=ice-ufrag"], found["a=ice-pwd"], found["a=fingerprint"], *candidate
    )


_KNOWN_EXTENSIONS = {uri for _, uri in _AUDIO_EXTMAPS + _VIDEO_EXTMAPS}


def build_answer(offer: dict[str, AnswerSection], *, ufrag: str, pwd: str, fingerprint: str) -> str:
    """A receive-only answer to an SFU's offer (Janus's subscriber offers): each VP8 or Opus
    section accepted with the offered payload type and the offered ids of the header
    extensions we also offer, without RTX (a retransmission then arrives as the original
    packet and fills its gap in our counters); we are the DTLS client."""
    lines = _session_lines(offer)
    for s in offer.values():
        pt = s.codecs.get("vp8" if s.kind == "video" else "opus")
        if pt is None or s.port == 0:
            rejected = next(iter(s.codecs.values()), 0)
            lines += [f"m={s.kind} 0 UDP/TLS/RTP/SAVPF {rejected}", "c=IN IP4 0.0.0.0"]
            lines += [f"a=mid:{s.mid}", "a=inactive"]
            continue
        lines += _media_lines(
            s.kind, str(pt), s.mid, ufrag=ufrag, pwd=pwd, fingerprint=fingerprint, setup="active"
        )
        lines += [f"a=extmap:{i} {uri}" for uri, i in s.extmaps.items() if uri in _KNOWN_EXTENSIONS]
        lines += ["a=recvonly", "a=rtcp-mux", "a=rtcp-rsize", *_codec_lines(s.kind, pt, None)]
    return "\r\n".join(lines) + "\r\n"


# --- RTP and RTCP bytes ------------------------------------------------------------------


def ext_element(ext_id: int, value: bytes) -> bytes:
    """One RFC 8285 one-byte header extension element."""
    return bytes(((ext_id << 4) | (len(value) - 1),)) + value


def ext_block(elements: bytes) -> bytes:
    """The one-byte extension block (0xBEDE, length, elements, padding)."""
    padding = -len(elements) & 3
    return _EXT_HEADER.pack(0xBEDE, (len(elements) + padding) >> 2) + elements + _PADDING[padding]


def transport_seq_of(plain: bytes, ext_id: int = EXT_TRANSPORT_CC) -> int:
    """The transport-wide sequence number in a one-byte extension block, or -1."""
    first = plain[0]
    if not first & 0x10:
        return -1
    pos = 12 + 4 * (first & 0x0F)
    if plain[pos] != 0xBE or plain[pos + 1] != 0xDE:
        return -1
    end = pos + 4 + 4 * ((plain[pos + 2] << 8) | plain[pos + 3])
    pos += 4
    while pos < end:
        byte = plain[pos]
        if byte == 0:
            pos += 1
            continue
        if byte >> 4 == ext_id:
            return (plain[pos + 1] << 8) | plain[pos + 2]
        if byte >> 4 == 15:
            return -1
        pos += (byte & 0x0F) + 2
    return -1


def _rtcp(packet_type: int, count: int, body: bytes) -> bytes:
    padding = -len(body) & 3
    body += _PADDING[padding]
    return _RTCP_HEADER.pack(0x80 | count, packet_type, len(body) >> 2) + body


def rtcp_sr(ssrc: int, ntp: int, rtp_timestamp: int, packets: int, octets: int) -> bytes:
    body = _SENDER_INFO.pack(ssrc, ntp, rtp_timestamp, packets & 0xFFFFFFFF, octets & 0xFFFFFFFF)
    return _rtcp(200, 0, body)


def rtcp_rr(ssrc: int, blocks: list[bytes]) -> bytes:
    return _rtcp(201, len(blocks), _U32.pack(ssrc) + b"".join(blocks))


def rtcp_sdes_cname(ssrc: int, cname: str) -> bytes:
    value = cname.encode()
    chunk = _U32.pack(ssrc) + bytes((1, len(value))) + value + b"\x00"
    return _rtcp(202, 1, chunk + _PADDING[-len(chunk) & 3])


def rtcp_pli(sender: int, media: int) -> bytes:
    return _rtcp(206, 1, _TWO_U32.pack(sender, media))


def rtcp_remb(sender: int, bitrate: int, ssrcs: list[int]) -> bytes:
    exponent, mantissa = 0, max(0, bitrate)
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exponent += 1
    body = _TWO_U32.pack(sender, 0) + b"REMB"
    body += bytes((len(ssrcs), (exponent << 2) | (mantissa >> 16))) + (mantissa & 0xFFFF).to_bytes(
        2, "big"
    )
    return _rtcp(206, 15, body + b"".join(_U32.pack(s) for s in ssrcs))


def rtcp_transport_cc(
    sender: int, media: int, feedback_count: int, arrivals: list[tuple[int, int]]
) -> bytes | None:
    """Transport-wide feedback for ``arrivals`` ((sequence, arrival µs), in arrival order):
    status chunks of seven 2-bit symbols, receive deltas in 250 µs ticks."""
    base = arrivals[0][0]
    received: dict[int, int] = {}
    for sequence, at in arrivals:
        offset = (sequence - base) & 0xFFFF
        if offset < 0x8000:
            received[offset] = at
    count = min(max(received) + 1, 4096)
    reference = received[0] // 64_000
    previous = 0
    symbols = []
    deltas = []
    for offset in range(count):
        arrival = received.get(offset)
        if arrival is None:
            symbols.append(0)
            continue
        ticks = (arrival - reference * 64_000) // 250
        delta = ticks - previous
        previous = ticks
        if 0 <= delta <= 0xFF:
            symbols.append(1)
            deltas.append(bytes((delta,)))
        else:
            symbols.append(2)
            deltas.append(max(-0x8000, min(0x7FFF, delta)).to_bytes(2, "big", signed=True))
    chunks = []
    for start in range(0, count, 7):
        word = 0xC000
        for shift, symbol in zip(range(12, -1, -2), symbols[start : start + 7], strict=False):
            word |= symbol << shift
        chunks.append(word.to_bytes(2, "big"))
    header = _TCC_HEADER.pack(
        sender, media, base, count, ((reference & 0xFFFFFF) << 8) | (feedback_count & 0xFF)
    )
    return _rtcp(205, 15, header + b"".join(chunks) + b"".join(deltas))


def ntp_now() -> int:
    now = time.time() + _NTP_EPOCH_OFFSET
    return (int(now) << 32) | int((now % 1) * (1 << 32))


# --- what a peer sends ---------------------------------------------------------------------


class OutStream:
    """One RTP stream we send: a simulcast layer, a single video stream, or audio."""

    __slots__ = (
        "bitrate",
        "cache",
        "ext_head",
        "frames",
        "height",
        "key_requested",
        "keyframes",
        "kind",
        "last_key_at",
        "next_at",
        "octets",
        "packets",
        "payload_type",
        "picture_id",
        "resent_at",
        "rid",
        "rtp_ts",
        "seq",
        "ssrc",
        "tl0",
        "width",
    )

    def __init__(self, kind: str, mid: str, rid: str | None, bitrate: int, size: tuple[int, int]):
        self.kind = kind
        self.rid = rid
        self.ssrc = secrets.randbits(32) | 1
        self.payload_type = VP8_PT if kind == "video" else OPUS_PT
        self.bitrate = bitrate
        self.width, self.height = size
        self.seq = secrets.randbits(15)
        self.rtp_ts = secrets.randbits(31)
        self.picture_id = secrets.randbits(15)
        self.tl0 = secrets.randbits(8)
        self.frames = self.packets = self.octets = self.keyframes = 0
        self.key_requested = True
        self.last_key_at = -1e9
        self.next_at = 0.0
        # MID (and RID) on every packet until the SFU reports on the SSRC, as Chrome does.
        head = ext_element(EXT_MID, mid.encode())
        if rid is not None:
            head += ext_element(EXT_RID, rid.encode())
        self.ext_head = head
        self.cache: list[bytes | None] = [None] * NACK_CACHE if kind == "video" else []
        self.resent_at: list[float] = [0.0] * NACK_CACHE if kind == "video" else []

    def frame_payloads(self, now: float) -> list[bytes]:
        """The RTP payloads of the next video frame (VP8 descriptor + data)."""
        keyframe = self.key_requested or now - self.last_key_at >= KEYFRAME_EVERY_S
        if keyframe:
            self.key_requested = False
            self.last_key_at = now
            self.keyframes += 1
        size = max(60, self.bitrate // 8 // FPS)
        count = -(-size // (MAX_PAYLOAD - 6))
        per_packet = size // count
        picture_id = self.picture_id
        # X; I L T; 15-bit picture id (M bit); TL0PICIDX; TID 0 (one temporal layer).
        tail = bytes((0xE0, 0x80 | (picture_id >> 8), picture_id & 0xFF, self.tl0, 0x00))
        first_size = per_packet - 6
        if keyframe:
            # Frame tag with P = 0 (key frame), show_frame, first partition size; start
            # code; width and height.
            tag = ((first_size << 5) | 0x10).to_bytes(3, "little")
            vp8_header = tag + b"\x9d\x01\x2a" + struct.pack("<HH", self.width, self.height)
        else:
            vp8_header = ((first_size << 5) | 0x11).to_bytes(3, "little")
        payloads = [b"\x90" + tail + vp8_header + _FILLER[: per_packet - 6 - len(vp8_header)]]
        rest = b"\x80" + tail + _FILLER[: per_packet - 6]
        payloads += [rest] * (count - 1)
        self.picture_id = (picture_id + 1) & 0x7FFF
        self.tl0 = (self.tl0 + 1) & 0xFF
        self.frames += 1
        return payloads


@dataclass(slots=True)
class InStream:
    """One RTP stream we receive, with RFC 3550 loss and jitter bookkeeping."""

    ssrc: int
    kind: str
    track_id: str
    clock: int
    packets: int = 0
    octets: int = 0
    base_ext: int = -1
    max_seq: int = 0
    max_ext: int = 0
    transit: float = 0.0
    jitter: float = 0.0  # in timestamp units
    lsr: int = 0
    lsr_at: float = 0.0
    # For receiver reports: expected and received at the previous one.
    prior_expected: int = 0
    prior_received: int = 0
    last_pli_at: float = -1e9
    gap_seen_at: float = 0.0  # wall clock of an unresolved gap, 0 if none
    lost_at_gap: int = 0
    window_bytes: int = 0
    rates: list[int] = field(default_factory=list)
    source: int = 0  # the account whose track this is, as signalled
    # Packets per sender (the account id at the end of each payload), as they arrived.
    sources: dict[bytes, int] = field(default_factory=dict)

    @property
    def expected(self) -> int:
        return 0 if self.base_ext < 0 else self.max_ext - self.base_ext + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.packets)

    def receive(self, seq: int, timestamp: int, size: int, now: float) -> bool:
        """Count one packet; True when a gap (loss) was just seen."""
        self.packets += 1
        self.octets += size
        self.window_bytes += size
        transit = now * self.clock - timestamp
        if self.base_ext < 0:
            self.base_ext = self.max_ext = seq
            self.max_seq = seq
            self.transit = transit
            return False
        d = transit - self.transit
        self.transit = transit
        self.jitter += (abs(d) - self.jitter) / 16
        delta = (seq - self.max_seq) & 0xFFFF
        if 0 < delta < 0x8000:
            self.max_seq = seq
            self.max_ext += delta
            return delta > 1
        return False

    def report_block(self, now: float) -> bytes:
        expected = self.expected
        interval_expected = expected - self.prior_expected
        interval_received = self.packets - self.prior_received
        self.prior_expected, self.prior_received = expected, self.packets
        interval_lost = interval_expected - interval_received
        fraction = (
            0
            if interval_expected <= 0 or interval_lost <= 0
            else ((interval_lost << 8) // interval_expected)
        )
        lost = min(self.lost, 0x7FFFFF)
        dlsr = int((now - self.lsr_at) * 65536) if self.lsr else 0
        return _REPORT_BLOCK.pack(
            self.ssrc,
            (min(fraction, 255) << 24) | lost,
            self.max_ext & 0xFFFFFFFF,
            int(self.jitter),
            self.lsr,
            dlsr,
        )


# --- the peer ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerSpec:
    """What one synthetic participant does (sent by the coordinator as JSON)."""

    name: str
    token: str
    call_id: int  # the lesson
    publish: str | None = None  # "simulcast" | "single" | "audio" | None
    subscribe_to: int | None = None  # account id whose tracks to receive
    subscribe_kinds: tuple[str, ...] = ("video", "audio")
    layer: str = "high"  # what call.layer asks for on each video track
    voice: bool = True  # audio level: a talking teacher or a silent student
    remb_bps: int = 0
    # Follow call.tracks as the web client does, renegotiating on the same connection: receive
    # ``subscribe_to``'s tracks while they are offered (the stage), else every track offered
    # (a breakout room's grid, asking ``grid_layer`` for video).
    follow: bool = False
    grid_layer: str = "medium"
    feed: int | None = None  # Janus only: the feed a publisher publishes as (default: the room)


@dataclass(frozen=True, slots=True)
class Settings:
    """What every peer of a load process shares."""

    url: str
    bitrates: tuple[int, int, int] = DEFAULT_BITRATES
    twcc: bool = True
    pli_on_loss: bool = True
    sender_reports: bool = True
    uplink_loss: float = 0.0  # fraction of publishers' first transmissions dropped on purpose
    connect_timeout_s: float = 30.0
    sfu: str = "parta"  # or "janus": peers signal with bench.baselines.janus.JanusPeer


def _ice_credentials() -> tuple[str, str]:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
    return (
        "".join(secrets.choice(alphabet) for _ in range(4)),
        "".join(secrets.choice(alphabet) for _ in range(24)),
    )


class RtcPeer:
    """One participant: signalling with the SDK, media over one UDP socket."""

    def __init__(self, spec: PeerSpec, settings: Settings, identity: Identity) -> None:
        self.spec = spec
        self.settings = settings
        self.identity = identity
        self.client = Client(settings.url, spec.token)
        self.ufrag, self.pwd = _ice_credentials()
        self.cname = uuid.uuid4().hex[:16]
        self.rtcp_ssrc = secrets.randbits(32) | 1
        self.state = "new"
        self.error = ""
        self.remb_bps = spec.remb_bps
        self._sock: socket.socket | None = None
        self.send_drops = 0
        self._protect: Callable[[bytes], bytes] | None = None
        self._protect_rtcp: Callable[[bytes], bytes] | None = None
        self._unprotect: Callable[[bytes], bytes] | None = None
        self._unprotect_rtcp: Callable[[bytes], bytes] | None = None
        self._dtls: DtlsClient | None = None
        self._remote_ufrag = ""
        self._remote_pwd = b""
        self._stun_pending: set[bytes] = set()
        self._ice_done: asyncio.Future[None] | None = None
        self._dtls_done: asyncio.Future[None] | None = None
        self._flowing: asyncio.Future[None] | None = None
        self._tiebreaker = secrets.randbits(63)
        # Sending.
        self.video: list[OutStream] = []
        self.audio: OutStream | None = None
        self.out_by_ssrc: dict[int, OutStream] = {}
        self._tseq = secrets.randbits(16)
        self.nacks_received = self.plis_received = self.retransmitted = 0
        self.resends_limited = 0
        self._uplink_loss = settings.uplink_loss
        self.dropped_on_purpose = 0
        self._resend_rate = sum(settings.bitrates) // 8  # bytes per second
        self._resend_budget = self._resend_rate
        self._resend_window_at = 0.0
        self.overruns = 0
        # Receiving.
        self.streams: dict[int, InStream] = {}
        self.unknown_packets = self.srtp_failures = 0
        self.plis_sent = 0
        self._arrivals: list[tuple[int, int]] = []
        self._feedback_count = 0
        self._last_report = self._last_consent = 0.0
        self._rate_at = 0.0
        self._tag = bytes(4)  # our account id, at the end of every payload we send
        self.unknown_sources: dict[bytes, int] = {}
        self.retired: list[InStream] = []  # streams of sections we stopped receiving on
        # Kept for renegotiation: every section offered so far, in order, and what they carry.
        self._offered: dict[str, Section] = {}
        self._sources: dict[str, Source] = {}
        self._receiving: dict[str, Track] = {}  # mid → remote track
        self._ssrc_of: dict[str, int] = {}  # mid → the SSRC the SFU sends there
        self.offers = 0
        self.renegotiating = False
        self._pushes: asyncio.Task[None] | None = None
        # The transport-wide sequence number's extension id: ours unless we answered an offer.
        self.twcc_ext = EXT_TRANSPORT_CC

    # --- setting up ---------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self._start(), self.settings.connect_timeout_s)
        except PeerFailed as exc:
            self._fail(str(exc))
        except (TimeoutError, ClientError, ConnectionError, OSError) as exc:
            self._fail(f"{self.state}: {type(exc).__name__}: {exc}")

    def _fail(self, reason: str) -> None:
        self.error = reason
        self.state = "failed"

    async def _start(self) -> None:
        self.state = "signalling"
        await self.client.connect()
        joined = None
        for _ in range(100):
            try:
                joined = await self.client.call_join(self.spec.call_id)
                break
            except ClientError as exc:
                # The SFU workers start beside the gateway; a student may beat the host.
                if exc.code not in ("unavailable", "lesson_not_started"):
                    raise
                await asyncio.sleep(0.3)
        if joined is None:
            raise PeerFailed("call.join: the SFU stayed unavailable")
        self._remote_ufrag, self._remote_pwd = joined.ice_ufrag, joined.ice_pwd.encode()
        candidate = next((c for c in joined.candidates if c.protocol == "udp"), None)
        if candidate is None:
            raise PeerFailed("no UDP candidate")
        self._tag = _U32.pack(self.client.account_id or 0)
        wanted = await self._wanted_tracks(joined.tracks)
        sections, self._sources, subscriptions = self._sections(wanted)
        self._offered = {s.mid: s for s in sections}
        tracks = {t.track_id: t for t in wanted}
        self._receiving = {mid: tracks[track_id] for mid, track_id in subscriptions.items()}
        await self._negotiate(wanted)
        await self._connect(candidate.address, candidate.port, joined.fingerprint)

    async def _connect(self, address: str, port: int, fingerprint: str) -> None:
        """ICE, DTLS and the first media, once signalling has set the remote ICE
        credentials, the streams to receive and what to send."""
        loop = asyncio.get_running_loop()
        # Media: one connected UDP socket.
        self.state = "ice"
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind(("127.0.0.1", 0))
        sock.connect((address, port))
        sock.setblocking(False)
        self._sock = sock
        loop.add_reader(sock.fileno(), self._readable)
        await self._gathered(sock.getsockname()[1])
        self._ice_done = loop.create_future()
        self._dtls_done = loop.create_future()
        self._flowing = loop.create_future()
        if not self.streams:
            self._flowing.set_result(None)
        while not self._ice_done.done():
            self._check(nominate=True)
            await asyncio.wait([self._ice_done], timeout=0.1)
        self._last_consent = time.monotonic()
        self.state = "dtls"
        self._dtls = DtlsClient(self.identity, fingerprint)
        for datagram in self._dtls.start():
            self._send(datagram)
        while not self._dtls_done.done():
            wait = self._dtls.timeout()
            await asyncio.wait([self._dtls_done], timeout=0.05 if wait is None else max(wait, 0.01))
            if not self._dtls_done.done():
                for datagram in self._dtls.handle_timeout():
                    self._send(datagram)
                if self._dtls.state == "failed":
                    raise PeerFailed("DTLS handshake failed")
        self.state = "media"
        now = time.monotonic()
        for index, stream in enumerate(self.video):
            stream.next_at = now + index * 0.002
        if self.audio is not None:
            self.audio.next_at = now
        self._last_report = self._rate_at = now
        await self._flowing
        self.state = "connected"
        if self.spec.follow:
            self._pushes = loop.create_task(self._follow_tracks())

    async def _negotiate(self, new: Sequence[Track]) -> None:
        """Offer every section so far; a stream for each receiving section the SFU sends on
        anew; the layer of each new video track."""
        offer = build_offer(
            self._offered.values(),
            ufrag=self.ufrag,
            pwd=self.pwd,
            fingerprint=self.identity.fingerprint,
            cname=self.cname,
        )
        subscriptions = {mid: track.track_id for mid, track in self._receiving.items()}
        answer = parse_answer(
            await self.client.call_offer(offer, sources=self._sources, subscriptions=subscriptions)
        )
        self.offers += 1
        for mid, track in self._receiving.items():
            section = answer.get(mid)
            if section is None or section.port == 0 or not section.ssrcs:
                raise PeerFailed(f"the SFU sends nothing on mid {mid} (track {track.track_id})")
            ssrc = section.ssrcs[0]
            if self._ssrc_of.get(mid) != ssrc:
                self._retire(mid)
                clock = VIDEO_CLOCK if track.kind == "video" else AUDIO_CLOCK
                self.streams[ssrc] = InStream(
                    ssrc, track.kind, track.track_id, clock, source=track.account_id
                )
                self._ssrc_of[mid] = ssrc
        for track in new:
            if track.kind == "video":
                stage = track.account_id == self.spec.subscribe_to
                layer = self.spec.layer if stage else self.spec.grid_layer
                await self.client.call_layer(track.track_id, cast(Layer, layer))

    def _retire(self, mid: str) -> None:
        ssrc = self._ssrc_of.pop(mid, None)
        stream = None if ssrc is None else self.streams.pop(ssrc, None)
        if stream is not None:
            self.retired.append(stream)

    async def _renegotiate(self, tracks: Sequence[Track]) -> None:
        """What the web client does on call.tracks: a track no longer offered has its section
        made inactive (never reused), a new one gets a new section; one offer for it all."""
        kinds = set(self.spec.subscribe_kinds)
        offered = [t for t in tracks if t.kind in kinds]
        stage = [t for t in offered if t.account_id == self.spec.subscribe_to]
        wanted = {t.track_id: t for t in stage or offered}
        stopped = False
        for mid, track in list(self._receiving.items()):
            if track.track_id not in wanted:
                del self._receiving[mid]
                self._offered[mid] = Section(mid, track.kind, "inactive")
                self._retire(mid)
                stopped = True
        held = {t.track_id for t in self._receiving.values()}
        new = [t for t in wanted.values() if t.track_id not in held]
        for track in new:
            mid = str(len(self._offered))
            self._offered[mid] = Section(mid, track.kind, "recvonly")
            self._receiving[mid] = track
        if new or stopped:
            await self._negotiate(new)

    async def _follow_tracks(self) -> None:
        """With ``spec.follow``, this task reads the call pushes: a burst of them is acted on
        once, with the latest call.tracks."""
        events = self.client.call_events
        try:
            while True:
                pushes = [await events.get()]
                while not events.empty():
                    pushes.append(events.get_nowait())
                latest = [p.tracks for p in pushes if isinstance(p, CallTracks)]
                if latest:
                    self.renegotiating = True
                    try:
                        await self._renegotiate(latest[-1])
                    finally:
                        self.renegotiating = False
        except (PeerFailed, ClientError, ConnectionLost, OSError) as exc:
            self._fail(f"renegotiating: {type(exc).__name__}: {exc}")

    async def breakout(self, names: list[str] | None, timeout_s: float = 30.0) -> dict[int, int]:
        """As the host (a peer that does not follow): open breakout rooms with everyone else
        spread at random (``names``), or close them (None); where everyone is (account →
        room, 0 the main room) once call.state says so."""
        events = self.client.call_events
        while not events.empty():
            events.get_nowait()  # states from before the request
        opening = names is not None
        await self.client.call(RoomsOpen(names=names, random=True) if names else RoomsClose())
        state = await self.client.call_push(
            CallPeople,
            timeout_s,
            lambda s: bool(s.rooms) == opening and (opening or not any(p.room for p in s.people)),
        )
        return {p.account_id: p.room for p in state.people}

    async def _gathered(self, port: int) -> None:
        """Our one host candidate is known. Parta's SFU learns our address from our ICE
        checks, as an ICE-lite agent may; an SFU that wants it trickled is told here."""

    async def _wanted_tracks(self, tracks: Sequence[Track]) -> list[Track]:
        publisher = self.spec.subscribe_to
        if publisher is None:
            return []
        kinds = set(self.spec.subscribe_kinds)

        def pick(tracks: Sequence[Track]) -> list[Track]:
            return [t for t in tracks if t.account_id == publisher and t.kind in kinds]

        while {t.kind for t in pick(tracks)} != kinds:
            event = await self.client.next_call_event()
            pushed = getattr(event, "tracks", None)  # call.tracks; not speaker/reconnect
            if pushed is not None:
                tracks = pushed
        return pick(tracks)

    def _sections(
        self, wanted: list[Track]
    ) -> tuple[list[Section], dict[str, Source], dict[str, str]]:
        sections: list[Section] = []
        sources: dict[str, Source] = {}
        mids = (str(i) for i in itertools.count())
        publish = self.spec.publish
        if publish is not None:
            mid = next(mids)
            self.audio = OutStream("audio", mid, None, 0, (0, 0))
            sections.append(Section(mid, "audio", "sendonly", ssrc=self.audio.ssrc, msid=_id()))
            sources[mid] = "mic"
        if publish in ("simulcast", "single"):
            mid = next(mids)
            rates = self.settings.bitrates
            if publish == "simulcast":
                self.video = [
                    OutStream("video", mid, rid, rates[i], RESOLUTIONS[i])
                    for i, rid in enumerate(RIDS)
                ]
                sections.append(Section(mid, "video", "sendonly", rids=RIDS, msid=_id()))
            else:
                self.video = [OutStream("video", mid, None, rates[-1], RESOLUTIONS[-1])]
                ssrc = self.video[0].ssrc
                sections.append(Section(mid, "video", "sendonly", ssrc=ssrc, msid=_id()))
            sources[mid] = "camera"
        self.out_by_ssrc = {s.ssrc: s for s in self.video}
        if self.audio is not None:
            self.out_by_ssrc[self.audio.ssrc] = self.audio
        subscriptions: dict[str, str] = {}
        for track in wanted:
            mid = next(mids)
            sections.append(Section(mid, track.kind, "recvonly"))
            subscriptions[mid] = track.track_id
        return sections, sources, subscriptions

    def _check(self, *, nominate: bool) -> None:
        """One ICE connectivity check (or consent refresh) to the SFU."""
        message = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        message.attributes["USERNAME"] = f"{self._remote_ufrag}:{self.ufrag}"
        message.attributes["PRIORITY"] = 1853824767  # a peer-reflexive candidate's, as Chrome
        message.attributes["ICE-CONTROLLING"] = self._tiebreaker
        if nominate:
            message.attributes["USE-CANDIDATE"] = None
        message.add_message_integrity(self._remote_pwd)
        self._stun_pending.add(message.transaction_id)
        if len(self._stun_pending) > 16:
            self._stun_pending.pop()
        self._send(bytes(message))

    # --- the socket -----------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.send(data)
        except (BlockingIOError, InterruptedError):
            self.send_drops += 1
        except OSError:
            pass  # ICMP port unreachable from a worker that went away: media stops, we see it

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        recvmsg = sock.recvmsg
        unpack = _TIMESPEC.unpack
        datagram = self._datagram
        for _ in range(_READ_BATCH):
            try:
                data, ancillary, _, _ = recvmsg(2048, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # a queued ICMP error
            if data:
                if ancillary:
                    seconds, nanoseconds = unpack(ancillary[0][2])
                    datagram(data, seconds + nanoseconds * 1e-9)
                else:
                    datagram(data, time.time())

    def _datagram(self, data: bytes, at: float) -> None:
        """One datagram from the SFU; ``at`` is when the kernel received it (wall clock)."""
        first = data[0]
        if 127 < first < 192:
            if 63 < (data[1] & 0x7F) < 96:
                self._rtcp_in(data)
                return
            unprotect = self._unprotect
            if unprotect is None:
                return
            try:
                plain = unprotect(data)
            except Exception:
                self.srtp_failures += 1
                return
            seq, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(plain, 2)
            stream = self.streams.get(ssrc)
            sender = plain[-4:]
            if stream is None:
                self.unknown_packets += 1
                self.unknown_sources[sender] = self.unknown_sources.get(sender, 0) + 1
                return
            sources = stream.sources
            sources[sender] = sources.get(sender, 0) + 1
            if stream.receive(seq, timestamp, len(data), at) and self.settings.pli_on_loss:
                self._loss(stream, at)
            if self.settings.twcc:
                sequence = transport_seq_of(plain, self.twcc_ext)
                if sequence >= 0:
                    self._arrivals.append((sequence, int(at * 1_000_000)))
            if self._flowing is not None and not self._flowing.done() and self._all_flowing():
                self._flowing.set_result(None)
        elif first < 4:
            self._stun_in(data)
        elif 19 < first < 64:
            self._dtls_in(data)

    def _all_flowing(self) -> bool:
        return all(s.packets for s in self.streams.values())

    def _stun_in(self, data: bytes) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return
        if message.message_class == stun.Class.REQUEST:
            self._answer_check(message)
            return
        if message.transaction_id not in self._stun_pending:
            return
        self._stun_pending.discard(message.transaction_id)
        if message.message_class != stun.Class.RESPONSE:
            return
        if not message.check_message_integrity(self._remote_pwd):
            return
        if self._ice_done is not None and not self._ice_done.done():
            self._ice_done.set_result(None)

    def _answer_check(self, request: stun.Message) -> None:
        """A full agent answers checks: an ICE-lite SFU sends none, but Janus's libnice
        sends a triggered check back and nominates only once it is answered."""
        local = self.pwd.encode()
        username = request.attributes.get("USERNAME", "")
        if not username.startswith(self.ufrag + ":") or not request.check_message_integrity(local):
            return
        sock = self._sock
        if sock is None:
            return
        response = stun.Message(
            stun.Method.BINDING, stun.Class.RESPONSE, transaction_id=request.transaction_id
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = sock.getpeername()
        response.add_message_integrity(local)
        response.add_fingerprint()
        self._send(bytes(response))

    def _dtls_in(self, data: bytes) -> None:
        dtls = self._dtls
        if dtls is None:
            return
        for datagram in dtls.receive(data):
            self._send(datagram)
        if dtls.state == "connected" and self._protect is None and dtls.keys is not None:
            tx, rx = srtp_sessions(*dtls.keys)
            self._protect, self._protect_rtcp = tx.protect, tx.protect_rtcp
            self._unprotect, self._unprotect_rtcp = rx.unprotect, rx.unprotect_rtcp
            if self._dtls_done is not None and not self._dtls_done.done():
                self._dtls_done.set_result(None)

    def _rtcp_in(self, data: bytes) -> None:
        unprotect = self._unprotect_rtcp
        if unprotect is None:
            return
        try:
            plain = unprotect(data)
        except Exception:
            self.srtp_failures += 1
            return
        pos, size = 0, len(plain)
        while pos + 4 <= size:
            first, packet_type, words = _RTCP_HEADER.unpack_from(plain, pos)
            start, pos = pos + 4, pos + 4 + 4 * words
            fmt = first & 0x1F
            if packet_type == 200 and pos - start >= 24:  # SR: remember it for our RRs
                ssrc, ntp = struct.unpack_from("!IQ", plain, start)
                stream = self.streams.get(ssrc)
                if stream is not None:
                    stream.lsr = (ntp >> 16) & 0xFFFFFFFF
                    stream.lsr_at = time.monotonic()
            elif packet_type == 201 and fmt:  # RR about what we send: stop MID/RID
                for offset in range(start + 4, min(pos, start + 4 + 24 * fmt), 24):
                    out = self.out_by_ssrc.get(_U32.unpack_from(plain, offset)[0])
                    if out is not None:
                        out.ext_head = b""
            elif packet_type == 206 and fmt in (1, 4) and pos - start >= 8:  # PLI, FIR
                if fmt == 1:
                    targets = [_U32.unpack_from(plain, start + 4)[0]]
                else:
                    targets = [_U32.unpack_from(plain, o)[0] for o in range(start + 8, pos, 8)]
                for ssrc in targets:
                    out = self.out_by_ssrc.get(ssrc)
                    if out is not None and out.kind == "video":
                        out.key_requested = True
                        self.plis_received += 1
            elif packet_type == 205 and fmt == 1 and pos - start >= 8:  # NACK
                out = self.out_by_ssrc.get(_U32.unpack_from(plain, start + 4)[0])
                if out is not None and out.cache:
                    self.nacks_received += 1
                    now = time.monotonic()
                    for offset in range(start + 8, pos - 3, 4):
                        pid, blp = struct.unpack_from("!HH", plain, offset)
                        self._retransmit(out, pid, now)
                        for bit in range(16):
                            if blp >> bit & 1:
                                self._retransmit(out, (pid + bit + 1) & 0xFFFF, now)

    # --- sending media ------------------------------------------------------------------

    def _send_rtp(self, stream: OutStream, payload: bytes, marker: bool, tail: bytes) -> None:
        protect = self._protect
        if protect is None:
            return
        tseq = self._tseq = (self._tseq + 1) & 0xFFFF
        abs_time = int(time.monotonic() * 262144.0) & 0xFFFFFF
        elements = (
            stream.ext_head
            + bytes(((EXT_ABS_SEND_TIME << 4) | 2,))
            + abs_time.to_bytes(3, "big")
            + bytes(((EXT_TRANSPORT_CC << 4) | 1, tseq >> 8, tseq & 0xFF))
            + tail
        )
        seq = stream.seq
        packet = (
            _RTP.pack(
                0x90, (0x80 if marker else 0) | stream.payload_type, seq, stream.rtp_ts, stream.ssrc
            )
            + ext_block(elements)
            + payload
            + self._tag
        )
        if stream.cache:
            stream.cache[seq % NACK_CACHE] = packet
        stream.seq = (seq + 1) & 0xFFFF
        stream.packets += 1
        stream.octets += len(payload)
        if self._uplink_loss and random.random() < self._uplink_loss:
            self.dropped_on_purpose += 1
            return
        self._send(protect(packet))

    def _retransmit(self, stream: OutStream, seq: int, now: float) -> None:
        index = seq % NACK_CACHE
        packet = stream.cache[index]
        if packet is None or _SEQ_TS_SSRC.unpack_from(packet, 2)[0] != seq:
            return
        if now - stream.resent_at[index] < RESEND_INTERVAL_S or self._protect is None:
            return
        if now - self._resend_window_at >= 1.0:
            self._resend_window_at, self._resend_budget = now, self._resend_rate
        if self._resend_budget < len(packet):
            self.resends_limited += 1
            return
        self._resend_budget -= len(packet)
        stream.resent_at[index] = now
        self.retransmitted += 1
        self._send(self._protect(packet))

    def pace(self, now: float) -> None:
        """Send what is due (called by the process's pacer every few milliseconds)."""
        if self.state not in ("media", "connected"):
            return
        for stream in self.video:
            if now - stream.next_at > 0.25:
                self.overruns += 1  # the process stalled: skip, rather than burst
                stream.next_at = now
            while stream.next_at <= now:
                payloads = stream.frame_payloads(now)
                last = len(payloads) - 1
                for index, payload in enumerate(payloads):
                    self._send_rtp(stream, payload, index == last, b"")
                stream.rtp_ts = (stream.rtp_ts + VIDEO_CLOCK // FPS) & 0xFFFFFFFF
                stream.next_at += 1 / FPS
        audio = self.audio
        if audio is not None:
            if now - audio.next_at > 0.25:
                self.overruns += 1
                audio.next_at = now
            # RFC 6464: voice flag and level in -dBov; a teacher talks, students are quiet.
            level = bytes((0x10, 0x80 | 25)) if self.spec.voice else bytes((0x10, 127))
            while audio.next_at <= now:
                self._send_rtp(audio, _FILLER[:AUDIO_PAYLOAD], False, level)
                audio.rtp_ts = (audio.rtp_ts + 960) & 0xFFFFFFFF
                audio.next_at += AUDIO_PTIME_S

    # --- feedback -------------------------------------------------------------------------

    def _send_rtcp(self, packet: bytes) -> None:
        if self._protect_rtcp is not None:
            self._send(self._protect_rtcp(packet))

    def _loss(self, stream: InStream, at: float) -> None:
        """A gap in a video stream: give retransmissions a moment before calling it lost."""
        if stream.kind == "video" and not stream.gap_seen_at:
            stream.gap_seen_at = at
            stream.lost_at_gap = stream.lost

    def _unrecovered(self, wall: float) -> None:
        """Gaps still open after the grace time: a decoder would ask for a keyframe."""
        for stream in self.streams.values():
            if not stream.gap_seen_at or wall - stream.gap_seen_at < PLI_GRACE_S:
                continue
            stream.gap_seen_at = 0.0
            if stream.lost >= stream.lost_at_gap and wall - stream.last_pli_at >= PLI_THROTTLE_S:
                stream.last_pli_at = wall
                self.plis_sent += 1
                self._send_rtcp(rtcp_pli(self.rtcp_ssrc, stream.ssrc))

    def housekeeping(self, now: float) -> None:
        """Every 100 ms: transport-cc feedback; every second: reports; consent checks."""
        if self.state not in ("media", "connected"):
            return
        if self._arrivals:
            arrivals, self._arrivals = self._arrivals, []
            media = next(iter(self.streams), 0)
            feedback = rtcp_transport_cc(self.rtcp_ssrc, media, self._feedback_count, arrivals)
            self._feedback_count += 1
            if feedback is not None:
                self._send_rtcp(feedback)
        if self.settings.pli_on_loss:
            self._unrecovered(time.time())
        if now - self._last_consent >= CONSENT_EVERY_S:
            self._last_consent = now
            self._check(nominate=False)
        if now - self._last_report >= REPORT_EVERY_S:
            self._last_report = now
            self._reports(now)

    def _reports(self, now: float) -> None:
        ntp = ntp_now()
        for stream in self.out_by_ssrc.values():
            if stream.packets and self.settings.sender_reports:
                self._send_rtcp(
                    rtcp_sr(stream.ssrc, ntp, stream.rtp_ts, stream.packets, stream.octets)
                    + rtcp_sdes_cname(stream.ssrc, self.cname)
                )
        if self.streams:
            blocks = [s.report_block(now) for s in list(self.streams.values())[:31]]
            packet = rtcp_rr(self.rtcp_ssrc, blocks)
            if self.remb_bps:
                packet += rtcp_remb(self.rtcp_ssrc, self.remb_bps, list(self.streams))
            self._send_rtcp(packet + rtcp_sdes_cname(self.rtcp_ssrc, self.cname))
        elapsed = now - self._rate_at
        if elapsed > 0:
            self._rate_at = now
            for received in self.streams.values():
                received.rates.append(int(received.window_bytes * 8 / elapsed))
                received.window_bytes = 0

    # --- reporting and closing --------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Counters since the start; the per-second video rates since the last snapshot."""
        streams = []
        for s in itertools.chain(self.streams.values(), self.retired):
            rates, s.rates = s.rates, []
            streams.append(
                {
                    "kind": s.kind,
                    "track_id": s.track_id,
                    "ssrc": s.ssrc,
                    "active": self.streams.get(s.ssrc) is s,
                    "source": s.source,
                    "sources": _by_sender(s.sources),
                    "packets": s.packets,
                    "bytes": s.octets,
                    "expected": s.expected,
                    "lost": s.lost,
                    "jitter_ms": round(s.jitter / s.clock * 1000, 3),
                    "rates_bps": rates if s.kind == "video" else [],
                }
            )
        return {
            "name": self.spec.name,
            "state": self.state,
            "error": self.error,
            "streams": streams,
            "sent_packets": sum(s.packets for s in self.out_by_ssrc.values()),
            "sent_bytes": sum(s.octets for s in self.out_by_ssrc.values()),
            "keyframes": sum(s.keyframes for s in self.video),
            "plis_received": self.plis_received,
            "nacks_received": self.nacks_received,
            "retransmitted": self.retransmitted,
            "resends_limited": self.resends_limited,
            "dropped_on_purpose": self.dropped_on_purpose,
            "plis_sent": self.plis_sent,
            "unknown_packets": self.unknown_packets,
            "srtp_failures": self.srtp_failures,
            "overruns": self.overruns,
            "send_drops": self.send_drops,
            "account_id": self.client.account_id,
            "unknown_sources": _by_sender(self.unknown_sources),
            "offers": self.offers,
            "settling": self.renegotiating
            or (self.spec.follow and not self.client.call_events.empty()),
        }

    async def close(self) -> None:
        if self._pushes is not None:
            self._pushes.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.call_leave(), 2)
        with contextlib.suppress(Exception):
            await self.client.close()
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None


def _id() -> str:
    return str(uuid.uuid4())


def _by_sender(counts: dict[bytes, int]) -> dict[str, int]:
    return {str(int.from_bytes(sender, "big")): n for sender, n in counts.items()}


# --- python -m bench.rtc_peer: one load process --------------------------------------------


class LoadProcess:
    """The peers of one process, its pacer and its housekeeping timer."""

    PACE_S = 0.005
    HOUSEKEEPING_S = TWCC_EVERY_S

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.identity = Identity()
        self._peer_class = RtcPeer
        if settings.sfu == "janus":
            from bench.baselines.janus import JanusPeer  # it builds on this module

            self._peer_class = JanusPeer
        self.peers: list[RtcPeer] = []
        self.publishers: list[RtcPeer] = []
        self._loop = asyncio.get_running_loop()
        self._pacer = self._loop.call_later(self.PACE_S, self._pace)
        self._keeper = self._loop.call_later(self.HOUSEKEEPING_S, self._housekeeping)

    def _pace(self) -> None:
        now = time.monotonic()
        for peer in self.publishers:
            peer.pace(now)
        self._pacer = self._loop.call_later(self.PACE_S, self._pace)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        for peer in self.peers:
            peer.housekeeping(now)
        self._keeper = self._loop.call_later(self.HOUSEKEEPING_S, self._housekeeping)

    async def add(
        self,
        specs: list[PeerSpec],
        concurrency: int = 8,
        on_progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Start peers; ``on_progress`` hears how many have finished starting so far."""
        peers = [self._peer_class(spec, self.settings, self.identity) for spec in specs]
        self.peers += peers
        self.publishers += [p for p in peers if p.spec.publish is not None]
        gate = asyncio.Semaphore(concurrency)
        started = 0

        async def start(peer: RtcPeer) -> None:
            nonlocal started
            async with gate:
                await peer.start()
            started += 1
            if on_progress is not None:
                on_progress(started)

        await asyncio.gather(*(start(p) for p in peers))
        failed = [p for p in peers if p.state == "failed"]
        return {
            "event": "added",
            "connected": len(peers) - len(failed),
            "failed": len(failed),
            "errors": [f"{p.spec.name}: {p.error}" for p in failed][:10],
        }

    def snapshot(self) -> dict[str, Any]:
        times = os.times()
        return {
            "event": "snapshot",
            "pid": os.getpid(),
            "cpu_s": times.user + times.system,
            "at": time.monotonic(),
            "peers": [p.snapshot() for p in self.peers],
        }

    def set_remb(self, names: set[str], bps: int) -> dict[str, Any]:
        changed = 0
        for peer in self.peers:
            if peer.spec.name in names:
                peer.remb_bps = bps
                changed += 1
        return {"event": "remb", "changed": changed}

    async def breakout(self, host: str, names: list[str] | None) -> dict[str, Any]:
        """The peer named ``host`` opens (``names``) or closes the breakout rooms."""
        [peer] = [p for p in self.peers if p.spec.name == host]
        rooms = await peer.breakout(names)
        return {"event": "breakout", "rooms": {str(a): room for a, room in rooms.items()}}

    async def close(self) -> None:
        self._pacer.cancel()
        self._keeper.cancel()
        await asyncio.gather(*(p.close() for p in self.peers))


def _spec(data: dict[str, Any]) -> PeerSpec:
    data = dict(data)
    data["subscribe_kinds"] = tuple(data.get("subscribe_kinds", ("video", "audio")))
    return PeerSpec(**data)


async def run() -> None:
    loop = asyncio.get_running_loop()
    # All of stdin through one reader: sys.stdin's own buffer would swallow later lines.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    settings_data = json.loads(await reader.readline())
    settings_data["bitrates"] = tuple(settings_data.get("bitrates", DEFAULT_BITRATES))
    process = LoadProcess(Settings(**settings_data))
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "add":
            specs = [_spec(p) for p in command["peers"]]
            _report(await process.add(specs, on_progress=_progress))
        elif command["cmd"] == "snapshot":
            _report(process.snapshot())
        elif command["cmd"] == "remb":
            _report(process.set_remb(set(command["names"]), int(command["bps"])))
        elif command["cmd"] == "breakout":
            _report(await process.breakout(command["host"], command.get("names")))
        elif command["cmd"] == "stop":
            break
    await process.close()
    _report({"event": "stopped"})


def _report(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def _progress(started: int) -> None:
    _report({"event": "progress", "started": started})


def layer_of(bitrate_bps: float, bitrates: tuple[int, ...] = DEFAULT_BITRATES) -> str:
    """The simulcast layer a received video bitrate most likely is (nearest in log scale),
    or "off" when nothing arrived."""
    if bitrate_bps <= 0:
        return "off"
    distances = [abs(math.log(bitrate_bps / rate)) for rate in bitrates]
    return LAYER_NAMES[distances.index(min(distances))]


def main() -> None:
    # Two sockets per peer (WebSocket and UDP): hundreds of peers need more than 1,024.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(run())


if __name__ == "__main__":
    main()
