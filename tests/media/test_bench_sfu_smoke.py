"""``python -m bench sfu`` end to end, small: one simulcast publisher and three subscribers;
a class of five in two breakout rooms and back.

The harness starts its own server and SFU worker and sends only to 127.0.0.1; like the rest
of this folder it runs inside the loopback-only network namespace (see ``./dev``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.sfu import isolation

ROOT = Path(__file__).resolve().parents[2]


def bench_sfu(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "sfu.json"
    command = [sys.executable, "-m", "bench", "sfu", *args, "--procs", "1", "--out", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "tracebacks" not in run.stdout, run.stdout
    result: dict[str, Any] = json.loads(out.read_text())
    # What the report renders: headline figures and plots of [x, y] points.
    assert result["summary"]["server tracebacks"] == 0
    assert result["machine"]["python_loop_ns"] > 0 and result["machine"]["loopback_sendto_us"] > 0
    # The SFU worker gets a core of its own, the load the others (bench/cores.py).
    available = sorted(os.sched_getaffinity(0))
    if len(available) > 1:
        assert result["cores"] == {"sfu": available[-1:], "load": available[:-1]}
        assert result["window"]["sfu_cores"] == [available[-1:]]
    for plot in result["plots"]:
        assert {"title", "x_label", "y_label", "series"} <= set(plot)
        assert all(len(point) == 2 for points in plot["series"].values() for point in points)
    return result


def test_one_to_many_delivers_every_packet(tmp_path: Path) -> None:
    result = bench_sfu(
        tmp_path, "--scenario", "one-to-many", "--subscribers", "3", "--duration", "3",
        "--warmup", "1",
    )  # fmt: skip
    setup = result["setup"]
    assert setup["publishers"] == {"connected": 1, "failed": 0, "errors": []}
    assert setup["subscribers"] == {"connected": 3, "failed": 0, "errors": []}
    window = result["window"]
    # Each subscriber gets at least the audio (50 packets/s) and a video layer.
    assert window["received_packets"] > 3 * 50 * 2.5
    assert window["lost_packets"] == 0 and window["loss_pct"] == 0
    assert len(window["per_subscriber"]) == 3
    for name, subscriber in window["per_subscriber"].items():
        assert subscriber["video_kbps"] > 100, (name, subscriber)
        assert subscriber["lost"] == 0
    assert window["worker_cpu_s"] > 0 and window["cpu_us_per_forwarded_packet"] > 0
    assert all(rss > 0 for rss in window["worker_rss_bytes"])
    # A sample a second, and everything came from the one publisher.
    assert len(window["timeline"]) >= 2
    assert all(point["forwarded_pps"] > 3 * 50 for point in window["timeline"])
    assert len({sender for got in window["senders"].values() for sender in got}) == 1


def test_breakout_rooms_keep_media_apart_and_bring_everyone_back(tmp_path: Path) -> None:
    result = bench_sfu(
        tmp_path, "--scenario", "breakout", "--students", "5", "--breakout-rooms", "2",
        "--duration", "3", "--warmup", "1",
    )  # fmt: skip
    assert result["setup"]["subscribers"] == {"connected": 5, "failed": 0, "errors": []}
    breakout = result["breakout"]
    teacher = str(breakout["teacher"])
    assert breakout["rooms"][teacher] == 0
    assert sorted(breakout["students_per_room"].values()) == [2, 3]
    assert breakout["not_settled"] == []
    # Everyone heard every room mate, and nobody from another room (or the teacher).
    assert breakout["cross_room_packets"] == 0, breakout["cross_room"]
    assert breakout["silent_room_mates"] == 0, breakout["silent"]
    rooms = breakout["rooms"]
    window = result["window"]
    assert window["loss_pct"] == 0
    for name, got in window["senders"].items():
        [mine] = {rooms[sender] for sender in got}
        mates = sum(1 for room in rooms.values() if room == mine) - 1
        assert mine != 0 and len(got) == mates, (name, got)
    after = result["after_close"]
    assert after["everyone_in_main_room"] and after["not_settled"] == []
    assert after["back_on_teacher"] == after["students"] == 5
    # The same connection throughout: one join, then one offer into the room, one back.
    assert after["offers_per_student"]["max"] == 3
    assert set(after["window"]["senders"]) == {f"student-{i}" for i in range(5)}


def test_isolation_counts_packets_from_other_rooms() -> None:
    received = {"a": {"2": 10, "3": 7}, "b": {"1": 10}, "c": {}}
    rooms = {1: 1, 2: 1, 3: 2, 4: 2}
    found = isolation(received, {"a": 1, "b": 2, "c": 4}, rooms)
    assert found["cross_room_packets"] == 7
    assert found["silent_room_mates"] == 1 and found["silent"] == ["c heard nothing from 3"]
