"""A peer: one participant's WebRTC transport (ICE-lite, DTLS, SRTP over one bundle), the
producers it publishes and the consumers it receives.

Everything here runs synchronously inside the worker's socket callbacks or its tick.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sfu.bwe import Estimator
from sfu.consumer import Consumer
from sfu.dtls import Certificate, DtlsServer, DtlsState
from sfu.ice import IceLite, new_credentials
from sfu.producer import Encoding, Producer, RtpParams
from sfu.rtcp import (
    Fir,
    Nack,
    Pli,
    ReceiverReport,
    Remb,
    ReportBlock,
    SenderReport,
    TransportCc,
    TransportCcRecorder,
    build_nack,
    build_pli,
    build_remb,
    build_rr,
    build_sdes_cname,
    build_sr,
    parse_rtcp,
)
from sfu.rtp import (
    RtpHeader,
    decode_mid,
    decode_rid,
    decode_transport_seq,
    encode_abs_send_time,
    encode_extensions,
    encode_transport_seq,
    is_rtcp,
    parse_rtp,
    read_extension,
    rewrite_into,
)
from sfu.seq import KeyFrameRequester
from sfu.srtp import SrtpPair
from sfu.vp8 import Vp8Info, patch_vp8_descriptor

if TYPE_CHECKING:
    from sfu.router import Room, Router

logger = logging.getLogger("parta.sfu")

CONNECT_TIMEOUT_S = 30.0
CONSENT_TIMEOUT_S = 30.0
NTP_EPOCH_OFFSET = 2_208_988_800
# What each simulcast layer (q, h, f) usually needs before its real rate is measured.
LADDER_BPS = (200_000, 700_000, 2_500_000)


def _ntp(now_wall: float) -> int:
    seconds = now_wall + NTP_EPOCH_OFFSET
    return (int(seconds) << 32) | int((seconds % 1) * (1 << 32))


# Sends one datagram: bytes, or a view of a buffer that is reused once the call returns.
Send = Callable[[bytes | memoryview], None]


class Peer:
    def __init__(
        self, router: Router, room: Room, peer_id: str, certificate: Certificate, now: float
    ) -> None:
        self.router = router
        self.room = room
        self.peer_id = peer_id
        ufrag, pwd = new_credentials()
        self.ice = IceLite(ufrag, pwd)
        self._certificate = certificate
        self.dtls: DtlsServer | None = None
        self.srtp: SrtpPair | None = None
        self.state = "new"
        self.created_at = now
        # Where we send: the selected ICE path (a UDP address or an ICE-TCP connection).
        self.path: Any = None
        self._send: Send | None = None
        self.producers: dict[str, Producer] = {}
        self.producer_mids: dict[str, Producer] = {}
        self.by_ssrc: dict[int, Encoding] = {}
        # RTX SSRC → the encoding whose packets it retransmits (RFC 4588).
        self.rtx_by_ssrc: dict[int, Encoding] = {}
        # (mid, rid) → encoding whose SSRC is not known yet (simulcast learns it from RTP).
        self.by_mid_rid: dict[tuple[str, str | None], Encoding] = {}
        self.mid_ext = 0
        self.rid_ext = 0
        self.repaired_rid_ext = 0
        self.transport_cc_ext = 0
        self.consumers: dict[str, Consumer] = {}  # by producer id
        self.consumer_by_ssrc: dict[int, Consumer] = {}
        self.consumer_mids: dict[str, Consumer] = {}
        self.keyframes = KeyFrameRequester()
        self.twcc_in = TransportCcRecorder()
        self.estimator = Estimator()
        self._record_sent = self.estimator.history.record  # per forwarded packet
        self._transport_seq = 0
        self.rtcp_ssrc = int.from_bytes(os.urandom(4), "big") | 1
        self.session_id = int.from_bytes(os.urandom(7), "big")
        self.answers = 0
        self.cname = f"parta-{peer_id}"[:64]
        self.packets_in = self.packets_out = self.bytes_in = self.bytes_out = 0
        self._last_report = now
        self._last_twcc = now
        # Sender reports we received: ssrc → (middle 32 bits of their NTP time, when).
        self._sr_received: dict[int, tuple[int, float]] = {}

    # --- transport ------------------------------------------------------------------------

    def set_remote_fingerprints(self, fingerprints: list[tuple[str, str]]) -> None:
        if self.dtls is None:
            self.dtls = DtlsServer(self._certificate, fingerprints)

    def stun(self, data: bytes, source: Any, now: float) -> None:
        result = self.ice.handle(data, source, now)
        if result.response is not None:
            self.router.send_to(source, result.response)
        if result.selected is not None:
            self.path = result.selected
            self._send = self.router.sender(result.selected)
            self.router.by_path[result.selected] = self

    def dtls_data(self, data: bytes, now: float) -> None:
        dtls = self.dtls
        if dtls is None:
            return
        dtls.receive(data, now)
        self._flush_dtls()
        if dtls.state is DtlsState.CONNECTED and self.srtp is None:
            profile, rx, tx = dtls.srtp_keys()
            self.srtp = SrtpPair.from_keys(profile, rx, tx)
            self.state = "connected"
            self.router.peer_state(self, "connected")
        elif dtls.state is DtlsState.FAILED and self.state != "failed":
            self.fail("DTLS failed")

    def _flush_dtls(self) -> None:
        if self.dtls is None or self._send is None:
            return
        for datagram in self.dtls.datagrams():
            self._send(datagram)

    def fail(self, reason: str) -> None:
        self.state = "failed"
        self.router.peer_state(self, "failed", reason)

    # --- media in -------------------------------------------------------------------------

    def srtp_data(self, data: bytes, now: float) -> None:
        srtp = self.srtp
        if srtp is None:
            return
        self.packets_in += 1
        self.bytes_in += len(data)
        if is_rtcp(data):
            plain = srtp.unprotect_rtcp(data)
            if plain is not None:
                self._rtcp(plain, now)
            return
        plain = srtp.unprotect_rtp(data)
        if plain is None:
            return
        header = parse_rtp(plain)
        if header is None:
            return
        if self.transport_cc_ext:
            # Every packet counts for the sender's estimate, padding and probes included
            # (they come on streams we do not forward): report them all as received.
            value = read_extension(plain, header, self.transport_cc_ext)
            if value is not None:
                sequence = decode_transport_seq(value)
                if sequence is not None:
                    self.twcc_in.record(sequence, int(now * 1_000_000))
        encoding = self.by_ssrc.get(header.ssrc)
        if encoding is None:
            encoding = self.rtx_by_ssrc.get(header.ssrc) or self._learn(plain, header)
            if encoding is None:
                return
            if header.ssrc in self.rtx_by_ssrc:
                self._retransmitted(encoding, plain, header, now)
                return
        encoding.receive(plain, header, now)

    def _learn(self, data: bytes, header: RtpHeader) -> Encoding | None:
        """A new SSRC: find its encoding by the MID and RID (or repaired RID) extensions.
        An RTX stream (its payload type says so) goes in ``rtx_by_ssrc``: Chrome sends
        padding there to probe bandwidth, possibly before any media."""
        if not self.mid_ext:
            return None
        raw_mid = read_extension(data, header, self.mid_ext)
        mid = decode_mid(raw_mid) if raw_mid is not None else None
        if mid is None:
            return None
        rid = None
        for ext in (self.rid_ext, self.repaired_rid_ext):
            raw_rid = read_extension(data, header, ext) if ext else None
            if raw_rid is not None:
                rid = decode_rid(raw_rid)
                break
        encoding = self.by_mid_rid.get((mid, rid))
        if encoding is None:
            return None
        rtx_payload_type = encoding.producer.params.rtx_payload_type
        if rtx_payload_type and header.payload_type == rtx_payload_type:
            self.rtx_by_ssrc[header.ssrc] = encoding
        elif encoding.ssrc is None:
            encoding.ssrc = header.ssrc
            self.by_ssrc[header.ssrc] = encoding
        else:
            return None
        return encoding

    def _retransmitted(
        self, encoding: Encoding, data: bytes, header: RtpHeader, now: float
    ) -> None:
        """An RTX packet: the original packet (its sequence number first in the payload) as
        if it had come late on its own stream, when it is one we NACKed. Chrome also probes
        bandwidth on RTX, with padding or with packets sent before: taken as media those
        would be forwarded twice, count toward the layer's bitrate (enough for the
        allocator to pause it) and could restart a switch at an old keyframe."""
        start = header.payload_start
        end = header.payload_end
        if (
            end - start < 2
            or encoding.ssrc is None
            or header.payload_type != encoding.producer.params.rtx_payload_type
            or not encoding.nack.missing((data[start] << 8) | data[start + 1])
        ):
            return
        original = bytearray(data[:start])
        original += data[start + 2 : end]
        original[0] &= ~0x20  # no padding: it was left out
        original[1] = (original[1] & 0x80) | encoding.producer.params.payload_type
        original[2:4] = data[start : start + 2]
        original[8:12] = encoding.ssrc.to_bytes(4, "big")
        packet = bytes(original)
        repaired = parse_rtp(packet)
        if repaired is not None:
            encoding.receive(packet, repaired, now)

    def _rtcp(self, data: bytes, now: float) -> None:
        for packet in parse_rtcp(data):
            if isinstance(packet, Nack):
                consumer = self.consumer_by_ssrc.get(packet.media_ssrc)
                if consumer is not None:
                    for sequence in packet.lost:
                        consumer.retransmit(sequence, now)
            elif isinstance(packet, (Pli, Fir)):
                ssrcs = (
                    [packet.media_ssrc]
                    if isinstance(packet, Pli)
                    else [e[0] for e in packet.entries]
                )
                for ssrc in ssrcs:
                    consumer = self.consumer_by_ssrc.get(ssrc)
                    if consumer is not None and consumer.current is not None:
                        self.request_keyframe(consumer.current, now)
            elif isinstance(packet, Remb):
                self.estimator.remb(packet.bitrate, now)
            elif isinstance(packet, TransportCc):
                # Arrival times are relative to the feedback's reference time; the
                # estimator only compares them with each other.
                self.estimator.feedback(packet.packets, now)
            elif isinstance(packet, SenderReport):
                self._sr_received[packet.ssrc] = ((packet.ntp >> 16) & 0xFFFFFFFF, now)
            elif isinstance(packet, ReceiverReport):
                pass

    # --- media out ------------------------------------------------------------------------

    def send_media(
        self,
        consumer: Consumer,
        data: bytes,
        header: RtpHeader,
        payload: memoryview,
        sequence: int,
        timestamp: int,
        info: Vp8Info | None,
        picture_id: int,
        tl0picidx: int,
        level: int,
        now: float,
    ) -> None:
        """Rewrite one packet for ``consumer`` and send it: the per-subscriber hot path.

        The new header goes into the SRTP session's buffer, the payload (``data``'s, padding
        left out, as a view) after it, then the VP8 picture id and TL0PICIDX (-1: keep) are
        patched there and it is protected in place."""
        send = self._send
        srtp = self.srtp
        if send is None or srtp is None:
            return
        out = srtp.out
        params = consumer.params
        self._transport_seq = transport_seq = (self._transport_seq + 1) & 0xFFFF
        packer = consumer.packer
        if packer is not None and not header.csrc_count:
            marker_payload_type = (0x80 if header.marker else 0) | params.payload_type
            if level < 0:
                pos = packer.pack_header_into(
                    out, marker_payload_type, sequence, timestamp, consumer.ssrc, transport_seq, now
                )
            else:
                pos = packer.pack_header_into(
                    out,
                    marker_payload_type,
                    sequence,
                    timestamp,
                    consumer.ssrc,
                    transport_seq,
                    now,
                    level < 127,
                    level,
                )
            size = pos + len(payload)
            # A slice assignment of another length than the target's raises: it does not fit.
            out[pos:size] = payload
        else:
            extensions = (
                packer.pack(transport_seq, now, 0 <= level < 127, level if level >= 0 else 127)
                if packer is not None
                else encode_extensions(self._extensions(params, transport_seq, level, now))
            )
            size = rewrite_into(
                out,
                data,
                header,
                consumer.ssrc,
                sequence,
                timestamp,
                params.payload_type,
                extensions,
            )
            pos = size - (header.payload_end - header.payload_start)
        if info is not None and (picture_id >= 0 or tl0picidx >= 0):
            patch_vp8_descriptor(out, pos, info, picture_id, tl0picidx)
        if params.ext_transport_cc:
            self._record_sent(transport_seq, now, size)
        protected = srtp.protect_out(size)
        size = len(protected)
        consumer.bytes += size
        self.packets_out += 1
        self.bytes_out += size
        send(protected)

    @staticmethod
    def _extensions(
        params: RtpParams, transport_seq: int, level: int, now: float
    ) -> list[tuple[int, bytes]]:
        """The slow general path, for extension ids the one-byte packer cannot take."""
        extensions = []
        if params.ext_mid:
            extensions.append((params.ext_mid, params.mid.encode()))
        if params.ext_abs_send_time:
            extensions.append((params.ext_abs_send_time, encode_abs_send_time(now)))
        if params.ext_transport_cc:
            extensions.append((params.ext_transport_cc, encode_transport_seq(transport_seq)))
        if params.ext_audio_level and level >= 0:
            extensions.append((params.ext_audio_level, bytes([level & 0x7F])))
        return extensions

    def send_rtcp(self, packet: bytes) -> None:
        if self._send is not None and self.srtp is not None:
            self._send(self.srtp.protect_rtcp(packet))

    def request_keyframe(self, encoding: Encoding, now: float) -> None:
        """Ask the publisher of ``encoding`` for a keyframe (throttled per stream)."""
        publisher = encoding.producer.peer
        ssrc = encoding.ssrc
        if ssrc is None:
            return
        if publisher.keyframes.request(ssrc, int(now * 1000)):
            publisher.send_rtcp(build_pli(publisher.rtcp_ssrc, ssrc))

    # --- periodic ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        if self.dtls is not None:
            deadline = self.dtls.next_timeout()
            if deadline is not None and now >= deadline:
                self.dtls.handle_timeout(now)
                self._flush_dtls()
        if self.state == "new" and now - self.created_at > CONNECT_TIMEOUT_S:
            self.fail("no ICE/DTLS connection")
            return
        if self.state == "connected" and self.ice.expired(now, CONSENT_TIMEOUT_S):
            self.fail("ICE consent expired")
            return
        if self.srtp is None:
            return
        now_ms = int(now * 1000)
        for producer in self.producers.values():
            for encoding in producer.encodings:
                encoding.measure(now)
                if encoding.ssrc is not None and producer.params.nack:
                    lost = encoding.nack.due(now_ms, 50)
                    if lost:
                        self.send_rtcp(build_nack(self.rtcp_ssrc, encoding.ssrc, lost))
        for ssrc in self.keyframes.due(now_ms):
            self.send_rtcp(build_pli(self.rtcp_ssrc, ssrc))
        if now - self._last_twcc >= 0.1:
            self._last_twcc = now
            media_ssrc = next(iter(self.by_ssrc), 0)
            for feedback in self.twcc_in.build(self.rtcp_ssrc, media_ssrc):
                self.send_rtcp(feedback)
        if now - self._last_report >= 1.0:
            self._last_report = now
            self._reports(now)

    def _reports(self, now: float) -> None:
        """Once a second: receiver reports and REMB to a publisher, sender reports to a
        subscriber (so its browser can measure round trips and sync audio with video)."""
        blocks = []
        for encoding in self.by_ssrc.values():
            sr = self._sr_received.get(encoding.ssrc or 0)
            # DLSR is an unsigned 32-bit count of 1/65536 s; clocks can disagree by a hair.
            lsr, dlsr = (
                (0, 0)
                if sr is None
                else (sr[0], min(max(0, int((now - sr[1]) * 65536)), 0xFFFFFFFF))
            )
            blocks.append(
                ReportBlock(
                    ssrc=encoding.ssrc or 0,
                    fraction_lost=0,
                    cumulative_lost=0,
                    highest_seq=0,
                    jitter=0,
                    lsr=lsr,
                    dlsr=dlsr,
                )
            )
        parts = [build_rr(self.rtcp_ssrc, blocks[:31])] if blocks else []
        if self.by_ssrc:
            parts.append(build_remb(self.rtcp_ssrc, self._remb_cap(), sorted(self.by_ssrc)))
        wall = time.time()
        parts.extend(
            build_sr(
                consumer.ssrc,
                _ntp(wall),
                consumer.timestamps.last_output,
                consumer.packets,
                consumer.bytes,
            )
            for consumer in self.consumers.values()
            if consumer.packets
        )
        if parts:
            parts.append(build_sdes_cname(self.rtcp_ssrc, self.cname))
            self.send_rtcp(b"".join(parts))

    def _remb_cap(self) -> int:
        """What this publisher should send at most: the layers its subscribers ask for,
        with headroom. Layers nobody wants are capped away (Chrome drops the top ones
        first); with no subscriber only the lowest stays, for whoever comes next."""
        needed = 0
        for producer in self.producers.values():
            if producer.kind == "audio":
                needed += 64_000
                continue
            top = max(
                (min(c.preferred, len(producer.encodings) - 1) for c in producer.consumers),
                default=0,
            )
            needed += sum(
                max(e.bitrate, LADDER_BPS[min(e.index, 2)]) for e in producer.encodings[: top + 1]
            )
        return max(300_000, int(needed * 1.3))

    def close(self) -> None:
        if self.dtls is not None:
            self.dtls.close()
            self._flush_dtls()
        self.state = "closed"
