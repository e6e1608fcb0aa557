"""The SFU's per-packet path: one SRTP packet from a publisher forwarded to N subscribers
(unprotect, parse, route, rewrite per subscriber, protect per subscriber, hand to the
socket). The floor is 8 µs per forwarded packet: divide the median by N.

Run: uv run pytest bench/micro/test_sfu_forward.py --benchmark-enable --benchmark-only
"""

from __future__ import annotations

import time

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench.micro.sfu_rig import Rig
from sfu.rtcp import build_remb


@pytest.mark.parametrize("subscribers", [1, 10, 50])
def test_forward_one_video_packet(benchmark: BenchmarkFixture, subscribers: int) -> None:
    rig = Rig(subscribers)
    for n, peer in enumerate(rig.subscribers):
        ssrc = peer.consumers[rig.video.producer_id].ssrc
        rig.rtcp_from_subscriber(n, build_remb(0xABC, 10_000_000, [ssrc]))
    for rid in "qhf":
        rig.feed(rig.video_packet(rid, keyframe=True))
    rig.router._last_allocation = 0.0
    rig.router.tick(time.monotonic())
    rig.feed(rig.video_packet("f", keyframe=True))
    assert all(p.consumers[rig.video.producer_id].layer == "high" for p in rig.subscribers)
    packets = [rig.video_packet("f") for _ in range(200_000)]
    feed = rig.feed
    it = iter(packets)

    def forward() -> None:
        feed(next(it))

    before = sum(s.count for s in rig.sinks)
    benchmark.pedantic(forward, rounds=2000 if subscribers > 10 else 10_000, iterations=1)
    forwarded = sum(s.count for s in rig.sinks) - before
    assert forwarded >= subscribers  # every round reached every subscriber
    benchmark.extra_info["subscribers"] = subscribers
