"""Active speaker from the audio-level header extension (RFC 6464), per room.

Each audio packet carries the sender's level in -dBov (0 loudest, 127 silence). Every half
second the loudest producer whose average over the window is above a floor becomes the
active speaker, if it beats the current one clearly or the current one fell silent; so the
stage does not flicker between two people talking at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sfu.producer import Producer

WINDOW_S = 0.5
SPEAKING_DBOV = 50  # quieter than -50 dBov is background
MARGIN = 6  # dB by which a new voice must beat the current speaker


class SpeakerDetector:
    __slots__ = ("_sums", "_window_start", "current")

    def __init__(self) -> None:
        self._sums: dict[Producer, list[int]] = {}  # producer → [sum of loudness, packets]
        self._window_start = 0.0
        self.current: Producer | None = None

    def level(self, producer: Producer, dbov: int, now: float) -> None:
        entry = self._sums.get(producer)
        if entry is None:
            self._sums[producer] = [127 - dbov, 1]
        else:
            entry[0] += 127 - dbov
            entry[1] += 1

    def forget(self, producer: Producer) -> None:
        self._sums.pop(producer, None)
        if self.current is producer:
            self.current = None

    def update(self, now: float) -> Producer | None:
        """Close the window if it is over; returns the new speaker when it changed."""
        if now - self._window_start < WINDOW_S:
            return None
        self._window_start = now
        loudness = {p: total / count for p, (total, count) in self._sums.items() if count}
        self._sums.clear()
        if not loudness:
            return None
        best = max(loudness, key=loudness.__getitem__)
        if 127 - loudness[best] > SPEAKING_DBOV or best is self.current:
            return None
        current = self.current
        if current is not None and loudness.get(current, 0) + MARGIN > loudness[best]:
            return None
        self.current = best
        return best
