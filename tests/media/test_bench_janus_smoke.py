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

import pytest

from bench.baselines.janus import JANUS, MISSING

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not JANUS.exists(), reason=MISSING)


def test_janus_forwards_to_every_subscriber_and_is_measured(tmp_path: Path) -> None:
    out = tmp_path / "sfu.json"
    command = [sys.executable, "-m", "bench", "sfu", "--scenario", "one-to-many", "--vs", "janus"]
    command += ["--subscribers", "2", "--no-simulcast", "--duration", "2", "--warmup", "1"]
    command += ["--procs", "1", "--out", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, run.stdout + run.stderr

    janus = json.loads(out.read_text())["janus"]
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
