"""``python -m bench sfu --vs janus`` end to end, small: one publisher, two subscribers, on
Parta and then on Janus (bench/baselines/janus.py).

Like the rest of this folder it runs inside the loopback-only network namespace (see
``./dev``); Janus is told to stay on 127.0.0.1 and the harness checks that it did.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.baselines.janus import JANUS, MISSING

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not JANUS.exists(), reason=MISSING)


def _janus(tmp_path: Path, *scenario: str) -> dict[str, Any]:
    """``bench sfu --vs janus`` for a few seconds: Janus's part of the result."""
    out = tmp_path / "sfu.json"
    command = [sys.executable, "-m", "bench", "sfu", *scenario, "--vs", "janus"]
    command += ["--no-simulcast", "--duration", "2", "--warmup", "1", "--procs", "1"]
    run = subprocess.run(
        [*command, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=100
    )
    assert run.returncode == 0, run.stdout + run.stderr
    janus: dict[str, Any] = json.loads(out.read_text())["janus"]
    return janus


def test_janus_forwards_to_every_subscriber_and_is_measured(tmp_path: Path) -> None:
    janus = _janus(tmp_path, "--scenario", "one-to-many", "--subscribers", "2")
    setup = janus["setup"]
    assert setup["publishers"]["connected"] == 1 and setup["subscribers"]["connected"] == 2
    assert setup["bound"] and all(a.startswith("127.0.0.1:") for a in setup["bound"])
    window = janus["window"]
    assert window["lost_packets"] == 0
    assert set(window["per_subscriber"]) == {"sub-0-0", "sub-0-1"}
    for name, subscriber in window["per_subscriber"].items():
        assert subscriber["video_kbps"] > 1000, (name, subscriber)  # the 1.5 Mbit/s stream
    # Audio (50 packets/s) and video reached both subscribers all through the window.
    assert window["received_packets"] > 2 * 2 * (50 + 60)
    assert window["worker_cpu_s"] > 0 and window["cpu_us_per_forwarded_packet"] > 0
    assert janus["ratio"] > 0


def test_a_janus_class_student_publishes_and_receives_on_two_connections(tmp_path: Path) -> None:
    janus = _janus(tmp_path, "--scenario", "class", "--students", "2")
    setup = janus["setup"]
    # The teacher and each student's microphone publish; each student also subscribes.
    assert setup["publishers"]["connected"] == 3 and setup["subscribers"]["connected"] == 2
    window = janus["window"]
    assert window["lost_packets"] == 0
    # Each student received the teacher (feed 1) and nobody else: not the quiet microphones.
    assert set(window["senders"]) == {"student-0", "student-1"}
    assert all(list(senders) == ["1"] for senders in window["senders"].values())
    assert janus["ratio"] > 0
