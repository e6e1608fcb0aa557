"""``python -m bench sfu`` end to end, small: one simulcast publisher, three subscribers.

The harness starts its own server and SFU worker and sends only to 127.0.0.1; like the rest
of this folder it runs inside the loopback-only network namespace (see ``./dev``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_one_to_many_delivers_every_packet(tmp_path: Path) -> None:
    out = tmp_path / "sfu.json"
    command = [sys.executable, "-m", "bench", "sfu", "--scenario", "one-to-many"]
    command += ["--subscribers", "3", "--duration", "3", "--warmup", "1", "--procs", "1"]
    command += ["--out", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "tracebacks" not in run.stdout, run.stdout

    result = json.loads(out.read_text())
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
