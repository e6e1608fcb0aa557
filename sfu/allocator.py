"""Layer allocation (after LiveKit's stream allocator): a subscriber's bandwidth estimate
becomes one layer choice per video track it receives.

Pure function, called a few times a second per subscriber. Tracks are served by priority
(screen share, then the active speaker, then the rest); each gets the highest layer that is
at most what the subscriber asked for and still fits what is left of the budget; a track
that cannot get even its lowest layer is paused, not starved of audio (audio is never in
here: it is always forwarded and its bitrate is taken off the budget first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PAUSED = -1

PRIORITY_SCREEN = 0
PRIORITY_SPEAKER = 1
PRIORITY_OTHER = 2


@dataclass(frozen=True, slots=True)
class Demand:
    key: str
    priority: int
    # The highest layer index the subscriber wants (PAUSED when it asked for "off").
    preferred: int
    # Measured bitrate of each layer the publisher sends now, lowest first (0 = absent).
    bitrates: Sequence[int]


def allocate(budget_bps: int, demands: Sequence[Demand]) -> dict[str, int]:
    """Layer index per track key, or ``PAUSED``."""
    chosen: dict[str, int] = {}
    left = budget_bps
    for demand in sorted(demands, key=lambda d: d.priority):
        wanted = _wanted(demand)
        layer = PAUSED
        for index in reversed(wanted):
            if demand.bitrates[index] <= left:
                layer = index
                break
        if layer != PAUSED:
            left -= demand.bitrates[layer]
        chosen[demand.key] = layer
    return chosen


def held_back(demands: Sequence[Demand], chosen: dict[str, int]) -> bool:
    """Whether the budget, not the preferences, set some track below what it wants. Then we
    send less than the estimate because it is too low, not because there is nothing more to
    send, and the estimate must be allowed to grow past what gets through (or a paused track
    would never come back)."""
    return any(
        (wanted := _wanted(demand)) and chosen[demand.key] < wanted[-1] for demand in demands
    )


def _wanted(demand: Demand) -> list[int]:
    """The layers this track may get, lowest first."""
    present = [i for i, rate in enumerate(demand.bitrates) if rate > 0]
    wanted = [i for i in present if i <= demand.preferred]
    if not wanted:
        # Nothing sent at or below the preference yet: take the lowest that exists.
        wanted = present[:1] if demand.preferred != PAUSED else []
    return wanted
