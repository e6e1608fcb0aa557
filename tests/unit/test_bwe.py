"""The send-side estimate from transport-cc feedback: it grows while what we send arrives
as it was sent, and falls when packets are lost or arrive spread out (a queue filling)."""

from __future__ import annotations

from sfu.bwe import INITIAL_BPS, Estimator

PACKET = 1_200  # bytes
SPACING_US = 4_000  # 300 packets a second: 2.9 Mbit/s


def sent(estimator: Estimator, first: int, count: int, at: float) -> None:
    for n in range(count):
        estimator.history.record(first + n, at + n * SPACING_US / 1e6, PACKET)


def test_clean_feedback_grows_the_estimate_by_use() -> None:
    estimator = Estimator()
    sent(estimator, 0, 25, 0.0)
    estimator.feedback([(n, 7_000_000 + n * SPACING_US) for n in range(25)], 0.1)
    grown = estimator.current(0.1)
    assert grown > INITIAL_BPS
    assert estimator.loss == 0.0


def test_lost_packets_cut_the_estimate() -> None:
    estimator = Estimator()
    sent(estimator, 0, 20, 0.0)
    arrivals = [(n, None if n % 4 == 0 else n * SPACING_US) for n in range(20)]
    estimator.feedback(arrivals, 0.1)
    assert estimator.loss == 0.25
    assert estimator.current(0.1) < INITIAL_BPS


def test_arrivals_spreading_out_cut_the_estimate_below_what_got_through() -> None:
    estimator = Estimator()
    sent(estimator, 100, 20, 0.0)
    # Sent over 76 ms, received over 190 ms: 1 Mbit/s got through.
    estimator.feedback([(100 + n, n * 10_000) for n in range(20)], 0.2)
    acked = 19 * PACKET * 8 / 0.19
    assert estimator.current(0.2) == int(0.85 * acked)


def test_an_estimate_that_holds_video_back_grows_past_what_gets_through() -> None:
    # Only audio gets through (a paused video track): by use alone the estimate would stay
    # where it is, so the video would never come back.
    def clean_second(estimator: Estimator, second: int) -> None:
        first = second * 50
        for n in range(50):
            estimator.history.record(first + n, second + n * 0.02, 100)
        arrivals = [(first + n, 1_000_000 * second + n * 20_000) for n in range(50)]
        estimator.feedback(arrivals, second + 1.0)

    stuck, probing = Estimator(), Estimator()
    stuck.bps = probing.bps = 200_000
    probing.probing = True
    for second in range(1, 21):
        clean_second(stuck, second)
        clean_second(probing, second)
    assert stuck.current(21.0) < 200_000 * 1.1
    # 8% a second for 20 s: past a 500 kbit/s layer.
    assert probing.current(21.0) > 800_000
