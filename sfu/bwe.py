"""How much a subscriber can take: an estimate from its feedback on what we send it.

REMB, when the browser sends it, is its own estimate and wins. Otherwise transport-cc
feedback tells which of our packets arrived and when: the rate that got through, the loss,
and whether queues are building (arrival spacing growing faster than send spacing). The
rule is a small AIMD in the spirit of GCC: grow by 8% a second while clean, cut to 85% of
what got through when delay builds, and by half the loss fraction when losing over 10%.
Growth is capped by what gets through (probing by use), except while the estimate itself
holds a track back (``probing``): a subscriber whose video was paused receives only audio,
and a cap by that would keep the video paused for good.
"""

from __future__ import annotations

from array import array

INITIAL_BPS = 1_500_000
MIN_BPS = 100_000
MAX_BPS = 20_000_000
REMB_TTL_S = 3.0
_HISTORY = 1 << 14


class SendHistory:
    """What we sent, by transport-wide sequence number: when and how big (a ring indexed
    by ``sequence & MASK``)."""

    MASK = _HISTORY - 1
    __slots__ = ("sent_at", "sizes")

    def __init__(self) -> None:
        # Arrays, not lists: the garbage collector neither tracks nor walks them (two lists
        # of 16,384 per peer made every full collection visit 32,768 items per peer).
        self.sent_at = array("d", bytes(8 * _HISTORY))
        self.sizes = array("l", bytes(array("l").itemsize * _HISTORY))

    def record(self, sequence: int, now: float, size: int) -> None:
        index = sequence & self.MASK
        self.sent_at[index] = now
        self.sizes[index] = size


class Estimator:
    __slots__ = ("_last_update", "_remb_at", "bps", "history", "loss", "probing", "remb_bps")

    def __init__(self) -> None:
        self.bps = INITIAL_BPS
        self.remb_bps = 0
        self._remb_at = -1e9
        self.loss = 0.0
        self._last_update = 0.0
        self.history = SendHistory()
        # Set by layer allocation while the estimate holds some track back: growth is then
        # not capped by what gets through (we send less only because the estimate is low).
        self.probing = False

    def remb(self, bitrate: int, now: float) -> None:
        self.remb_bps = bitrate
        self._remb_at = now

    def current(self, now: float) -> int:
        if now - self._remb_at < REMB_TTL_S:
            return max(MIN_BPS, min(self.remb_bps, MAX_BPS))
        return self.bps

    def feedback(self, packets: list[tuple[int, int | None]], now: float) -> None:
        """Arrivals for our packets, from one transport-cc feedback: (transport sequence,
        arrival in µs on the receiver's clock, or None: lost)."""
        if not packets:
            return
        received = [(seq, at) for seq, at in packets if at is not None]
        self.loss = (len(packets) - len(received)) / len(packets)
        acked_bps = 0.0
        delay_growing = False
        if len(received) >= 2:
            mask = SendHistory.MASK
            sent_at = self.history.sent_at
            first_seq, first_at = received[0]
            last_seq, last_at = received[-1]
            span = (last_at - first_at) / 1e6
            if span > 0.005:
                sizes = self.history.sizes
                acked_bps = sum([sizes[seq & mask] for seq, _ in received[1:]]) * 8 / span
            # Arrivals spread out more than sends did: a queue is filling somewhere.
            delay_growing = span - (sent_at[last_seq & mask] - sent_at[first_seq & mask]) > 0.03
        elapsed = min(1.0, max(0.0, now - self._last_update)) if self._last_update else 0.1
        self._last_update = now
        if self.loss > 0.10:
            self.bps = int(self.bps * (1 - 0.5 * self.loss))
        elif delay_growing and acked_bps:
            self.bps = int(min(self.bps, 0.85 * acked_bps))
        elif self.loss < 0.02:
            grown = self.bps * (1 + 0.08 * elapsed)
            if acked_bps and not self.probing:
                # Grow only while we actually send near the estimate (probing by use).
                grown = min(grown, max(self.bps, 1.5 * acked_bps + 100_000))
            self.bps = int(grown)
        self.bps = max(MIN_BPS, min(self.bps, MAX_BPS))
