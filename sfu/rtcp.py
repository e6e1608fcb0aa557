"""RTCP: compound packets in and out (RFC 3550, RFC 4585, RFC 5104), REMB
(draft-alvestrand-rmcat-remb-03) and transport-wide congestion control feedback
(draft-holmer-rmcat-transport-wide-cc-extensions-01).

``parse_rtcp`` turns one unprotected compound packet into small typed values and never
raises: a malformed packet is skipped (or, if its length word cannot be trusted, ends the
compound). The ``build_*`` functions are its inverses: ``parse_rtcp(build_x(...))`` gives
back the value built. ``TransportCcRecorder`` keeps the arrival times of a publisher's
packets and turns them into feedback packets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Bye",
    "Fir",
    "Nack",
    "Pli",
    "ReceiverReport",
    "Remb",
    "ReportBlock",
    "RtcpPacket",
    "Sdes",
    "SdesChunk",
    "SenderReport",
    "TransportCc",
    "TransportCcRecorder",
    "Unknown",
    "build_bye",
    "build_fir",
    "build_nack",
    "build_pli",
    "build_remb",
    "build_rr",
    "build_sdes_cname",
    "build_sr",
    "build_transport_cc",
    "parse_rtcp",
]

SR = 200
RR = 201
SDES = 202
BYE = 203
RTPFB = 205
PSFB = 206

RTPFB_NACK = 1
RTPFB_TRANSPORT_CC = 15
PSFB_PLI = 1
PSFB_FIR = 4
PSFB_AFB = 15

SDES_CNAME = 1

# Feedback with more statuses is skipped: a 40-byte packet of run-length chunks could
# otherwise claim 65535 statuses and cost milliseconds to expand. Chrome's feedback, sent
# every 50-250 ms, lists far fewer.
MAX_TCC_STATUSES = 4096

_HEADER = struct.Struct("!BBH")
_U32 = struct.Struct("!I")
_I16 = struct.Struct("!h")
_TWO_SSRC = struct.Struct("!II")
_SENDER_INFO = struct.Struct("!IQIII")  # ssrc, ntp, rtp timestamp, packets, octets
_BLOCK = struct.Struct("!IIIIII")  # ssrc, fraction|lost, highest, jitter, lsr, dlsr
_NACK_ITEM = struct.Struct("!HH")
_FIR_ITEM = struct.Struct("!IB3x")
_TCC_HEADER = struct.Struct("!IIHHI")  # sender, media, base seq, count, reference|fb count


# -- values --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # fixed point, /256
    cumulative_lost: int  # signed 24-bit
    highest_seq: int  # extended highest sequence number received
    jitter: int
    lsr: int
    dlsr: int


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp: int  # 64-bit NTP timestamp
    rtp_timestamp: int
    packets: int
    octets: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SdesChunk:
    ssrc: int
    items: list[tuple[int, bytes]]  # (item type, value); CNAME is type 1

    @property
    def cname(self) -> str | None:
        for kind, value in self.items:
            if kind == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None


@dataclass(frozen=True, slots=True)
class Sdes:
    chunks: list[SdesChunk]


@dataclass(frozen=True, slots=True)
class Bye:
    ssrcs: list[int]


@dataclass(frozen=True, slots=True)
class Nack:
    sender_ssrc: int
    media_ssrc: int
    lost: list[int]  # sequence numbers, in the order the packet lists them


@dataclass(frozen=True, slots=True)
class Pli:
    sender_ssrc: int
    media_ssrc: int


@dataclass(frozen=True, slots=True)
class Fir:
    sender_ssrc: int
    entries: list[tuple[int, int]]  # (media ssrc, command sequence number)


@dataclass(frozen=True, slots=True)
class Remb:
    sender_ssrc: int
    bitrate: int  # bits per second
    ssrcs: list[int]


@dataclass(frozen=True, slots=True)
class TransportCc:
    """Transport-wide feedback. ``packets`` lists every sequence number from ``base_seq``
    on (16-bit) with its arrival time in µs after ``reference_time * 64 ms`` (the sum of
    the receive deltas so far), or None if not received. ``reference_time`` is the raw
    24-bit field."""

    sender_ssrc: int
    media_ssrc: int
    base_seq: int
    reference_time: int
    fb_pkt_count: int
    packets: list[tuple[int, int | None]]


@dataclass(frozen=True, slots=True)
class Unknown:
    """A well-framed packet we do not interpret (APP, XR, other feedback formats)."""

    packet_type: int
    count: int  # the 5-bit count/format field
    body: bytes


RtcpPacket = (
    SenderReport | ReceiverReport | Sdes | Bye | Nack | Pli | Fir | Remb | TransportCc | Unknown
)


# -- parsing -------------------------------------------------------------------------------


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """The packets of one compound RTCP packet. Never raises."""
    packets: list[RtcpPacket] = []
    size = len(data)
    pos = 0
    while pos + 4 <= size:
        first, packet_type, words = _HEADER.unpack_from(data, pos)
        if first >> 6 != 2:
            break
        start = pos + 4
        end = start + 4 * words
        if end > size:
            break
        pos = end
        if first & 0x20:
            padding = data[end - 1] if end > start else 0
            if padding == 0 or padding > end - start:
                continue
            end -= padding
        count = first & 0x1F
        parsed: RtcpPacket | None
        if packet_type == SR:
            parsed = _parse_sr(data, start, end, count)
        elif packet_type == RR:
            parsed = _parse_rr(data, start, end, count)
        elif packet_type == RTPFB:
            if count == RTPFB_NACK:
                parsed = _parse_nack(data, start, end)
            elif count == RTPFB_TRANSPORT_CC:
                parsed = _parse_transport_cc(data, start, end)
            else:
                parsed = Unknown(packet_type, count, data[start:end])
        elif packet_type == PSFB:
            parsed = _parse_psfb(data, start, end, count)
        elif packet_type == SDES:
            parsed = _parse_sdes(data, start, end, count)
        elif packet_type == BYE:
            parsed = _parse_bye(data, start, end, count)
        else:
            parsed = Unknown(packet_type, count, data[start:end])
        if parsed is not None:
            packets.append(parsed)
    return packets


def _blocks(data: bytes, pos: int, count: int) -> list[ReportBlock]:
    blocks = []
    for _ in range(count):
        ssrc, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        blocks.append(ReportBlock(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr))
        pos += 24
    return blocks


def _parse_sr(data: bytes, start: int, end: int, count: int) -> SenderReport | None:
    if end - start < 24 + 24 * count:
        return None
    ssrc, ntp, rtp_timestamp, packets, octets = _SENDER_INFO.unpack_from(data, start)
    return SenderReport(ssrc, ntp, rtp_timestamp, packets, octets, _blocks(data, start + 24, count))


def _parse_rr(data: bytes, start: int, end: int, count: int) -> ReceiverReport | None:
    if end - start < 4 + 24 * count:
        return None
    return ReceiverReport(_U32.unpack_from(data, start)[0], _blocks(data, start + 4, count))


def _parse_nack(data: bytes, start: int, end: int) -> Nack | None:
    if end - start < 8:
        return None
    sender, media = _TWO_SSRC.unpack_from(data, start)
    lost = []
    for pos in range(start + 8, end - 3, 4):
        pid, blp = _NACK_ITEM.unpack_from(data, pos)
        lost.append(pid)
        bit = 0
        while blp:
            if blp & 1:
                lost.append((pid + bit + 1) & 0xFFFF)
            blp >>= 1
            bit += 1
    return Nack(sender, media, lost)


def _parse_psfb(data: bytes, start: int, end: int, fmt: int) -> RtcpPacket | None:
    if end - start < 8:
        return None
    sender, media = _TWO_SSRC.unpack_from(data, start)
    if fmt == PSFB_PLI:
        return Pli(sender, media)
    if fmt == PSFB_FIR:
        entries = [_FIR_ITEM.unpack_from(data, pos) for pos in range(start + 8, end - 7, 8)]
        return Fir(sender, entries)
    if fmt == PSFB_AFB and end - start >= 16 and data[start + 8 : start + 12] == b"REMB":
        number = data[start + 12]
        if end - start < 16 + 4 * number:
            return None
        word = int.from_bytes(data[start + 13 : start + 16], "big")  # exponent 6, mantissa 18
        ssrcs = [_U32.unpack_from(data, start + 16 + 4 * i)[0] for i in range(number)]
        return Remb(sender, (word & 0x3FFFF) << (word >> 18), ssrcs)
    return Unknown(PSFB, fmt, data[start:end])


def _parse_sdes(data: bytes, start: int, end: int, count: int) -> Sdes | None:
    chunks = []
    pos = start
    for _ in range(count):
        if pos + 4 > end:
            return None
        ssrc = _U32.unpack_from(data, pos)[0]
        pos += 4
        items = []
        while True:
            if pos >= end:
                return None
            kind = data[pos]
            if kind == 0:  # end of list, then padding to the next 32-bit boundary
                pos = (pos - start + 4) // 4 * 4 + start
                break
            if pos + 2 > end or pos + 2 + data[pos + 1] > end:
                return None
            length = data[pos + 1]
            items.append((kind, data[pos + 2 : pos + 2 + length]))
            pos += 2 + length
        chunks.append(SdesChunk(ssrc, items))
    return Sdes(chunks)


def _parse_bye(data: bytes, start: int, end: int, count: int) -> Bye | None:
    if end - start < 4 * count:
        return None
    return Bye([_U32.unpack_from(data, start + 4 * i)[0] for i in range(count)])


def _vector_table(symbol_bits: int, count: int) -> list[tuple[int, ...]]:
    """The symbols of every value of ``count`` symbols of ``symbol_bits`` bits, the first in
    the highest bits; ``()`` for a value holding the reserved symbol 3."""
    mask = (1 << symbol_bits) - 1
    table = []
    for value in range(1 << (symbol_bits * count)):
        symbols = tuple((value >> (symbol_bits * i)) & mask for i in range(count - 1, -1, -1))
        table.append(() if 3 in symbols else symbols)
    return table


# Status vector chunks by table, not symbol by symbol: every subscriber's feedback has a
# status per packet sent to it.
_SEVEN_ONE_BIT = _vector_table(1, 7)
_THREE_TWO_BIT = _vector_table(2, 3)
_FOUR_TWO_BIT = _vector_table(2, 4)


def _parse_transport_cc(data: bytes, start: int, end: int) -> TransportCc | None:
    if end - start < 16:
        return None
    sender, media, base_seq, status_count, word = _TCC_HEADER.unpack_from(data, start)
    if status_count > MAX_TCC_STATUSES:
        return None
    pos = start + 16
    # Packet status chunks, until every status is known.
    symbols: list[int] = []
    while len(symbols) < status_count:
        if pos + 2 > end:
            return None
        chunk = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if not chunk & 0x8000:  # run length: symbol (2 bits), length (13 bits)
            symbol = (chunk >> 13) & 0x03
            if symbol == 3:
                return None
            symbols.extend([symbol] * (chunk & 0x1FFF))
        elif not chunk & 0x4000:  # status vector, 14 one-bit symbols
            symbols += _SEVEN_ONE_BIT[(chunk >> 7) & 0x7F]
            symbols += _SEVEN_ONE_BIT[chunk & 0x7F]
        else:  # status vector, 7 two-bit symbols
            head = _THREE_TWO_BIT[(chunk >> 8) & 0x3F]
            tail = _FOUR_TWO_BIT[chunk & 0xFF]
            if not head or not tail:
                return None
            symbols += head
            symbols += tail
    del symbols[status_count:]  # a run may say more than the count
    # Receive deltas, one per received packet: 8-bit unsigned or 16-bit signed. Every
    # subscriber sends this ten times a second, with one status per packet we sent it.
    packets: list[tuple[int, int | None]] = []
    append = packets.append
    arrival = 0
    sequence = base_seq
    for symbol in symbols:
        if symbol == 1:
            if pos >= end:
                return None
            arrival += data[pos] * 250
            pos += 1
            append((sequence & 0xFFFF, arrival))
        elif symbol == 0:
            append((sequence & 0xFFFF, None))
        else:
            if pos + 2 > end:
                return None
            arrival += _I16.unpack_from(data, pos)[0] * 250
            pos += 2
            append((sequence & 0xFFFF, arrival))
        sequence += 1
    return TransportCc(sender, media, base_seq, word >> 8, word & 0xFF, packets)


# -- building ------------------------------------------------------------------------------


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    if count > 31:
        raise ValueError("at most 31 report blocks, chunks or sources per packet")
    padding = -len(body) & 3
    if padding:
        body += bytes(padding)
    return _HEADER.pack(0x80 | count, packet_type, len(body) >> 2) + body


def _pack_blocks(reports: Sequence[ReportBlock]) -> bytes:
    return b"".join(
        _BLOCK.pack(
            r.ssrc,
            (r.fraction_lost << 24) | (r.cumulative_lost & 0xFFFFFF),
            r.highest_seq,
            r.jitter,
            r.lsr,
            r.dlsr,
        )
        for r in reports
    )


def build_sr(
    ssrc: int,
    ntp: int,
    rtp_timestamp: int,
    packets: int,
    octets: int,
    reports: Sequence[ReportBlock] = (),
) -> bytes:
    """A sender report; at most 31 report blocks."""
    body = _SENDER_INFO.pack(
        ssrc, ntp, rtp_timestamp & 0xFFFFFFFF, packets & 0xFFFFFFFF, octets & 0xFFFFFFFF
    )
    return _packet(SR, len(reports), body + _pack_blocks(reports))


def build_rr(ssrc: int, reports: Sequence[ReportBlock] = ()) -> bytes:
    """A receiver report; at most 31 report blocks."""
    return _packet(RR, len(reports), _U32.pack(ssrc) + _pack_blocks(reports))


def build_sdes_cname(ssrc: int, cname: str) -> bytes:
    value = cname.encode("utf-8")[:255]
    body = _U32.pack(ssrc) + bytes((SDES_CNAME, len(value))) + value
    return _packet(SDES, 1, body + bytes(4 - len(body) % 4))  # null item(s) end the list


def build_bye(ssrcs: Sequence[int]) -> bytes:
    return _packet(BYE, len(ssrcs), b"".join(_U32.pack(s) for s in ssrcs))


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    return _packet(PSFB, PSFB_PLI, _TWO_SSRC.pack(sender_ssrc, media_ssrc))


def build_fir(sender_ssrc: int, entries: Sequence[tuple[int, int]]) -> bytes:
    """Full intra request (RFC 5104): the media SSRC field is 0, the targets are entries."""
    body = _TWO_SSRC.pack(sender_ssrc, 0) + b"".join(
        _FIR_ITEM.pack(ssrc, seqnr & 0xFF) for ssrc, seqnr in entries
    )
    return _packet(PSFB, PSFB_FIR, body)


def build_nack(sender_ssrc: int, media_ssrc: int, lost: Iterable[int]) -> bytes:
    """A generic NACK; ``lost`` in stream order, compressed into PID + bitmask pairs."""
    items = []
    pid = -1
    blp = 0
    for sequence in lost:
        sequence &= 0xFFFF
        if pid >= 0:
            distance = (sequence - pid) & 0xFFFF
            if distance == 0:
                continue
            if distance <= 16:
                blp |= 1 << (distance - 1)
                continue
            items.append(_NACK_ITEM.pack(pid, blp))
        pid = sequence
        blp = 0
    if pid >= 0:
        items.append(_NACK_ITEM.pack(pid, blp))
    return _packet(RTPFB, RTPFB_NACK, _TWO_SSRC.pack(sender_ssrc, media_ssrc) + b"".join(items))


def build_remb(sender_ssrc: int, bitrate: int, ssrcs: Sequence[int]) -> bytes:
    """REMB; a bitrate needing more than 18 significant bits is rounded down."""
    exponent = 0
    mantissa = max(bitrate, 0)
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exponent += 1
    if exponent > 63:
        exponent, mantissa = 63, 0x3FFFF
    body = b"".join(
        (
            _TWO_SSRC.pack(sender_ssrc, 0),
            b"REMB",
            bytes((len(ssrcs), (exponent << 2) | (mantissa >> 16))),
            (mantissa & 0xFFFF).to_bytes(2, "big"),
            *(_U32.pack(s) for s in ssrcs),
        )
    )
    return _packet(PSFB, PSFB_AFB, body)


def _chunks(symbols: Sequence[int]) -> list[bytes]:
    """Packet status chunks for ``symbols`` (0 lost, 1 small delta, 2 large delta)."""
    chunks = []
    count = len(symbols)
    i = 0
    while i < count:
        symbol = symbols[i]
        run = 1
        while i + run < count and symbols[i + run] == symbol and run < 0x1FFF:
            run += 1
        window = symbols[i : i + 14]
        one_bit = 2 not in window
        if run >= (14 if one_bit else 7) or i + run == count:
            chunks.append(((symbol << 13) | run).to_bytes(2, "big"))
            i += run
        elif one_bit:
            word = 0x8000
            for shift, s in zip(range(13, -1, -1), window, strict=False):
                word |= s << shift
            chunks.append(word.to_bytes(2, "big"))
            i += 14
        else:
            word = 0xC000
            for shift, s in zip(range(12, -1, -2), symbols[i : i + 7], strict=False):
                word |= s << shift
            chunks.append(word.to_bytes(2, "big"))
            i += 7
    return chunks


def build_transport_cc(
    sender_ssrc: int,
    media_ssrc: int,
    base_seq: int,
    reference_time: int,
    fb_pkt_count: int,
    packets: Sequence[tuple[int, int | None]],
) -> bytes:
    """Transport-wide feedback from a ``TransportCc``'s fields. Arrival times are rounded
    down to 250 µs; consecutive received packets must be less than 8.192 s apart; at most
    ``MAX_TCC_STATUSES`` packets."""
    symbols = []
    deltas = []
    previous = 0
    for _, arrival in packets:
        if arrival is None:
            symbols.append(0)
            continue
        ticks = arrival // 250
        delta = ticks - previous
        previous = ticks
        if 0 <= delta <= 0xFF:
            symbols.append(1)
            deltas.append(bytes((delta,)))
        else:
            symbols.append(2)
            deltas.append(delta.to_bytes(2, "big", signed=True))
    body = b"".join(
        (
            _TCC_HEADER.pack(
                sender_ssrc,
                media_ssrc,
                base_seq & 0xFFFF,
                len(packets),
                ((reference_time & 0xFFFFFF) << 8) | (fb_pkt_count & 0xFF),
            ),
            *_chunks(symbols),
            *deltas,
        )
    )
    return _packet(RTPFB, RTPFB_TRANSPORT_CC, body)


class TransportCcRecorder:
    """Arrival times of one publisher's packets by transport-wide sequence number, turned
    into feedback every few tens of milliseconds.

    Each ``build`` reports from just after the previous one's last sequence number (so
    losses at the edge are reported too) to the highest recorded, splitting into packets
    of at most ``max_statuses`` statuses or where a delta would not fit, then forgets what
    it reported. Late packets older than what was already reported are ignored.
    """

    __slots__ = ("_arrivals", "_fb_count", "_highest", "_max_recorded", "_max_statuses", "_next")

    def __init__(self, max_statuses: int = 400, max_recorded: int = 8192) -> None:
        self._max_statuses = min(max_statuses, MAX_TCC_STATUSES)
        self._max_recorded = max_recorded
        self._arrivals: dict[int, int] = {}  # unwrapped sequence → arrival µs
        self._highest = -1  # unwrapped
        self._next = -1  # unwrapped: first sequence the next feedback covers
        self._fb_count = 0

    def __len__(self) -> int:
        return len(self._arrivals)

    def record(self, transport_seq: int, arrival_us: int) -> None:
        highest = self._highest
        if highest < 0:
            ext = transport_seq & 0xFFFF
            self._highest = ext
        else:
            delta = (transport_seq - highest) & 0xFFFF
            if delta >= 0x8000:
                delta -= 0x10000
            ext = highest + delta
            if ext > highest:
                self._highest = ext
        if ext < self._next:
            return
        arrivals = self._arrivals
        if ext not in arrivals:
            if len(arrivals) >= self._max_recorded:
                # No feedback built for a while: forget the older half at once. Deleting
                # the oldest one at a time leaves deleted slots at the front of the dict,
                # which the next deletion's ``iter`` walks again: ~5 µs a packet at 8,192.
                kept = list(arrivals.items())[len(arrivals) // 2 :]
                arrivals.clear()
                arrivals.update(kept)
            arrivals[ext] = arrival_us

    def build(self, sender_ssrc: int, media_ssrc: int) -> list[bytes]:
        """Feedback packets for everything recorded since the last call (maybe none)."""
        arrivals = self._arrivals
        if not arrivals:
            return []
        received = sorted(arrivals)
        limit = self._max_statuses
        base = received[0]
        if 0 <= self._next < base and base - self._next < limit:
            base = self._next  # report the losses just after the previous feedback
        packets = []
        segment: list[tuple[int, int | None]] = []
        has_received = False
        expected = base
        reference = origin = previous = 0
        for sequence in received:
            arrival = arrivals[sequence]
            ticks = arrival // 250
            if len(segment) + sequence - expected >= limit or (
                has_received and not -0x8000 <= ticks - previous <= 0x7FFF
            ):
                if has_received:
                    packets.append(self._encode(sender_ssrc, media_ssrc, base, reference, segment))
                segment = []
                has_received = False
                base = expected = sequence
            if not has_received:
                has_received = True
                reference = arrival // 64000
                origin = reference * 64000
            while expected < sequence:
                segment.append((expected & 0xFFFF, None))
                expected += 1
            segment.append((sequence & 0xFFFF, arrival - origin))
            previous = ticks
            expected = sequence + 1
        packets.append(self._encode(sender_ssrc, media_ssrc, base, reference, segment))
        self._next = received[-1] + 1
        arrivals.clear()
        return packets

    def _encode(
        self,
        sender_ssrc: int,
        media_ssrc: int,
        base: int,
        reference: int,
        segment: list[tuple[int, int | None]],
    ) -> bytes:
        count = self._fb_count
        self._fb_count = (count + 1) & 0xFF
        return build_transport_cc(sender_ssrc, media_ssrc, base, reference, count, segment)
