"""Layer allocation and active-speaker detection: pure rules."""

from __future__ import annotations

from typing import Any, cast

from sfu.allocator import (
    PAUSED,
    PRIORITY_OTHER,
    PRIORITY_SCREEN,
    PRIORITY_SPEAKER,
    Demand,
    allocate,
    held_back,
)
from sfu.speaker import SpeakerDetector

LADDER = (150_000, 500_000, 1_500_000)


def test_each_track_gets_the_best_layer_that_fits_in_priority_order() -> None:
    demands = [
        Demand("camera-1", PRIORITY_OTHER, 2, LADDER),
        Demand("screen", PRIORITY_SCREEN, 2, LADDER),
        Demand("speaker", PRIORITY_SPEAKER, 2, LADDER),
    ]
    assert allocate(5_000_000, demands) == {"screen": 2, "speaker": 2, "camera-1": 2}
    assert allocate(2_200_000, demands) == {"screen": 2, "speaker": 1, "camera-1": 0}
    # Too little for the last one even at its lowest layer: paused, not starved.
    assert allocate(1_700_000, demands) == {"screen": 2, "speaker": 0, "camera-1": PAUSED}


def test_preference_caps_the_layer_and_off_pauses() -> None:
    assert allocate(10_000_000, [Demand("t", PRIORITY_OTHER, 0, LADDER)]) == {"t": 0}
    assert allocate(10_000_000, [Demand("t", PRIORITY_OTHER, PAUSED, LADDER)]) == {"t": PAUSED}
    # Only the top layer is flowing yet: a thumbnail request still gets something.
    assert allocate(10_000_000, [Demand("t", PRIORITY_OTHER, 0, (0, 0, 1_500_000))]) == {"t": 2}
    assert allocate(10_000_000, [Demand("t", PRIORITY_OTHER, 2, (0, 0, 0))]) == {"t": PAUSED}


def test_the_budget_holding_a_track_back_is_told_apart_from_its_preference() -> None:
    thumbnail = [Demand("t", PRIORITY_OTHER, 0, LADDER)]
    large = [Demand("t", PRIORITY_OTHER, 2, LADDER)]
    # Asked for the lowest and got it: sending less than the estimate is by choice.
    assert not held_back(thumbnail, allocate(10_000_000, thumbnail))
    assert not held_back(large, allocate(10_000_000, large))
    # Wants the top layer but the budget gives the middle one, or nothing at all.
    assert held_back(large, allocate(1_000_000, large))
    assert held_back(large, allocate(100_000, large))
    assert not held_back(large, {"t": 2})
    off = [Demand("t", PRIORITY_OTHER, PAUSED, LADDER)]
    assert not held_back(off, allocate(100_000, off))


def test_the_loudest_voice_becomes_the_speaker_without_flicker() -> None:
    detector = SpeakerDetector()
    anna, boris = cast(Any, object()), cast(Any, object())
    now = 10.0
    for _ in range(25):
        detector.level(anna, 20, now)  # loud
        detector.level(boris, 60, now)  # background
    assert detector.update(now) is anna
    now += 0.6
    for _ in range(25):
        detector.level(anna, 22, now)
        detector.level(boris, 19, now)  # a little louder: not enough to take over
    assert detector.update(now) is None
    now += 0.6
    for _ in range(25):
        detector.level(anna, 90, now)  # anna stopped talking
        detector.level(boris, 25, now)
    assert detector.update(now) is boris
    now += 0.6
    for _ in range(25):
        detector.level(boris, 100, now)  # silence does not make a speaker
    assert detector.update(now) is None
