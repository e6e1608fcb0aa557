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

LADDER = ((150_000,), (500_000,), (1_500_000,))
LOW, MEDIUM, HIGH = (0, 0), (1, 0), (2, 0)


def test_each_track_gets_the_best_layer_that_fits_in_priority_order() -> None:
    demands = [
        Demand("camera-1", PRIORITY_OTHER, 2, LADDER),
        Demand("screen", PRIORITY_SCREEN, 2, LADDER),
        Demand("speaker", PRIORITY_SPEAKER, 2, LADDER),
    ]
    assert allocate(5_000_000, demands) == {"screen": HIGH, "speaker": HIGH, "camera-1": HIGH}
    assert allocate(2_200_000, demands) == {"screen": HIGH, "speaker": MEDIUM, "camera-1": LOW}
    # Too little for the last one even at its lowest layer: paused, not starved.
    assert allocate(1_700_000, demands) == {"screen": HIGH, "speaker": LOW, "camera-1": None}


def test_preference_caps_the_layer_and_off_pauses() -> None:
    assert allocate(10_000_000, [Demand("t", PRIORITY_OTHER, 0, LADDER)]) == {"t": LOW}
    assert allocate(10_000_000, [Demand("t", PRIORITY_OTHER, PAUSED, LADDER)]) == {"t": None}
    # Only the top layer is flowing yet: a thumbnail request still gets something.
    only_top = ((), (0,), (1_500_000,))
    assert allocate(10_000_000, [Demand("t", PRIORITY_OTHER, 0, only_top)]) == {"t": HIGH}
    assert allocate(10_000_000, [Demand("t", PRIORITY_OTHER, 2, ((), (), ()))]) == {"t": None}


def test_temporal_layers_are_steps_between_encodings_and_below_the_lowest() -> None:
    # Chrome's VP8: three temporal layers per encoding, each with those below it.
    ladder = (
        (60_000, 100_000, 150_000),
        (200_000, 330_000, 500_000),
        (600_000, 1_000_000, 1_500_000),
    )
    camera = [Demand("t", PRIORITY_OTHER, 2, ladder)]
    assert allocate(2_000_000, camera) == {"t": (2, 2)}
    # Full resolution at half the frame rate before the middle encoding at full rate.
    assert allocate(1_200_000, camera) == {"t": (2, 1)}
    assert allocate(700_000, camera) == {"t": (2, 0)}
    assert allocate(550_000, camera) == {"t": (1, 2)}
    # Below the lowest encoding at full rate: half or a quarter of its frame rate, not a pause.
    assert allocate(120_000, camera) == {"t": (0, 1)}
    assert allocate(70_000, camera) == {"t": (0, 0)}
    assert allocate(50_000, camera) == {"t": None}
    # The preference caps the encoding, never the frame rate.
    thumbnail = [Demand("t", PRIORITY_OTHER, 0, ladder)]
    assert allocate(2_000_000, thumbnail) == {"t": (0, 2)}
    assert held_back(camera, allocate(1_200_000, camera))
    assert not held_back(thumbnail, allocate(2_000_000, thumbnail))


def test_the_budget_holding_a_track_back_is_told_apart_from_its_preference() -> None:
    thumbnail = [Demand("t", PRIORITY_OTHER, 0, LADDER)]
    large = [Demand("t", PRIORITY_OTHER, 2, LADDER)]
    # Asked for the lowest and got it: sending less than the estimate is by choice.
    assert not held_back(thumbnail, allocate(10_000_000, thumbnail))
    assert not held_back(large, allocate(10_000_000, large))
    # Wants the top layer but the budget gives the middle one, or nothing at all.
    assert held_back(large, allocate(1_000_000, large))
    assert held_back(large, allocate(100_000, large))
    assert not held_back(large, {"t": HIGH})
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
