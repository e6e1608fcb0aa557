"""Layer allocation (after LiveKit's stream allocator): a subscriber's bandwidth estimate
becomes one layer choice per video track it receives.

Pure function, called a few times a second per subscriber. A layer is a simulcast encoding
(spatial) and how many of its temporal layers are forwarded: VP8 from Chrome has three, and
dropping the upper ones halves or quarters the frame rate and most of the bitrate, a finer
step than the next encoding down. Tracks are served by priority (screen share, then the
active speaker, then the rest); each gets the highest layer that is at most the encoding the
subscriber asked for and still fits what is left of the budget; a track that cannot get even
its lowest layer is paused, not starved of audio (audio is never in here: it is always
forwarded and its bitrate is taken off the budget first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PAUSED = -1

PRIORITY_SCREEN = 0
PRIORITY_SPEAKER = 1
PRIORITY_OTHER = 2

# (encoding index, highest temporal layer forwarded)
Layer = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Demand:
    key: str
    priority: int
    # The highest encoding index the subscriber wants (PAUSED when it asked for "off").
    preferred: int
    # Per encoding the publisher sends now, lowest first: the measured bitrate of its
    # temporal layers 0..n, each with those below it (() or zeros: not sent).
    bitrates: Sequence[Sequence[int]]


def allocate(budget_bps: int, demands: Sequence[Demand]) -> dict[str, Layer | None]:
    """The layer of every track key, or None: paused."""
    chosen: dict[str, Layer | None] = {}
    left = budget_bps
    for demand in sorted(demands, key=lambda d: d.priority):
        layer = None
        for candidate in reversed(_wanted(demand)):
            spatial, temporal = candidate
            rate = demand.bitrates[spatial][temporal]
            if rate <= left:
                layer = candidate
                left -= rate
                break
        chosen[demand.key] = layer
    return chosen


def held_back(demands: Sequence[Demand], chosen: dict[str, Layer | None]) -> bool:
    """Whether the budget, not the preferences, set some track below what it wants. Then we
    send less than the estimate because it is too low, not because there is nothing more to
    send, and the estimate must be allowed to grow past what gets through (or a paused track
    would never come back)."""
    for demand in demands:
        wanted = _wanted(demand)
        layer = chosen[demand.key]
        if wanted and (layer is None or layer < wanted[-1]):
            return True
    return False


def _wanted(demand: Demand) -> list[Layer]:
    """The layers this track may get, lowest first."""
    present = [s for s, rates in enumerate(demand.bitrates) if any(rates)]
    spatial = [s for s in present if s <= demand.preferred]
    if not spatial:
        # Nothing sent at or below the preference yet: take the lowest that exists.
        spatial = present[:1] if demand.preferred != PAUSED else []
    return [(s, t) for s in spatial for t, rate in enumerate(demand.bitrates[s]) if rate > 0]
