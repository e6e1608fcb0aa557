"""How much a subscriber can take: an estimate from its feedback on what we send it.

REMB, when the browser sends it, is its own estimate and wins. Otherwise transport-cc
feedback tells which of our packets arrived and when: the rate that got through, the loss,
and whether queues are building (arrival spacing growing faster than send spacing). The
rule is a small AIMD in the spirit of GCC: grow by 8% a second while clean, cut to 85% of
what got through when delay builds, and by half the loss fraction when losing over 10%.
"""

from __future__ import annotations

INITIAL_BPS = 1_500_000
MIN_BPS = 100_000
MAX_BPS = 20_000_000
REMB_TTL_S = 3.0
_HISTORY = 1 << 14


class SendHistory:
    """What we sent, by transport-wide sequence number: when and how big."""

    __slots__ = ("_sent_at", "_size")

    def __init__(self) -> None:
        self._sent_at = [0.0] * _HISTORY
        self._size = [0] * _HISTORY

    def record(self, sequence: int, now: float, size: int) -> None:
        index = sequence & (_HISTORY - 1)
        self._sent_at[index] = now
        self._size[index] = size

    def lookup(self, sequence: int) -> tuple[float, int]:
        index = sequence & (_HISTORY - 1)
        return self._sent_at[index], self._size[index]


class Estimator:
    __slots__ = ("_last_update", "_remb_at", "bps", "history", "loss", "remb_bps")

    def __init__(self) -> None:
        self.bps = INITIAL_BPS
        self.remb_bps = 0
        self._remb_at = -1e9
        self.loss = 0.0
        self._last_update = 0.0
        self.history = SendHistory()

    def remb(self, bitrate: int, now: float) -> None:
        self.remb_bps = bitrate
        self._remb_at = now

    def current(self, now: float) -> int:
        if now - self._remb_at < REMB_TTL_S:
            return max(MIN_BPS, min(self.remb_bps, MAX_BPS))
        return self.bps

    def feedback(self, packets: list[tuple[int, float | None]], now: float) -> None:
        """Arrivals for our packets: (transport sequence, arrival time in s or None=lost)."""
        if not packets:
            return
        lost = sum(1 for _, arrived in packets if arrived is None)
        received = [(seq, at) for seq, at in packets if at is not None]
        self.loss = lost / len(packets)
        acked_bps = 0.0
        delay_growing = False
        if len(received) >= 2:
            first_seq, first_at = received[0]
            last_seq, last_at = received[-1]
            sent_first, _ = self.history.lookup(first_seq)
            sent_last, _ = self.history.lookup(last_seq)
            span = last_at - first_at
            if span > 0.005:
                size = sum(self.history.lookup(seq)[1] for seq, _ in received[1:])
                acked_bps = size * 8 / span
            # Arrivals spread out more than sends did: a queue is filling somewhere.
            delay_growing = (last_at - first_at) - (sent_last - sent_first) > 0.03
        elapsed = min(1.0, max(0.0, now - self._last_update)) if self._last_update else 0.1
        self._last_update = now
        if self.loss > 0.10:
            self.bps = int(self.bps * (1 - 0.5 * self.loss))
        elif delay_growing and acked_bps:
            self.bps = int(min(self.bps, 0.85 * acked_bps))
        elif self.loss < 0.02:
            grown = self.bps * (1 + 0.08 * elapsed)
            if acked_bps:
                # Grow only while we actually send near the estimate (probing by use).
                grown = min(grown, max(self.bps, 1.5 * acked_bps + 100_000))
            self.bps = int(grown)
        self.bps = max(MIN_BPS, min(self.bps, MAX_BPS))
