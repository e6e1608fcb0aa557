"""A few seconds of the load harness, so it never rots (the real runs are in bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_chat_smoke_against_parta_and_the_websockets_baseline(tmp_path: Path) -> None:
    out = tmp_path / "chat.json"
    subprocess.run(
        [sys.executable, "-m", "bench", "chat", "--clients", "30", "--procs", "2",
         "--messages", "3", "--rate", "20", "--vs", "websockets", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert [r["target"] for r in result["runs"]] == ["parta", "websockets"]
    for run in result["runs"]:
        assert (run["connections"], run["failed"]) == (30, 0)
        assert run["deliveries"] == run["expected_deliveries"] == 90
        assert run["latency_ms"]["max"] > 0
