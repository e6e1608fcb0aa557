"""A few seconds of the load harness, so it never rots (the real runs are in bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.chat_load import verify


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


def test_bench_chat_load_smoke_with_drops(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    subprocess.run(
        [sys.executable, "-m", "bench", "chat", "--load", "--clients", "40", "--chat-size", "10",
         "--procs", "2", "--interval", "1", "--duration", "5", "--drop", "0.25",
         "--drop-every", "2", "--drop-pause", "0.5", "--quiet", "0.5", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    run = json.loads(out.read_text())["run"]
    assert (run["clients"], run["failed_connections"], run["chats"]) == (40, 0, 4)
    assert run["check"]["ok"], run["check"]
    assert run["check"]["lost"] == run["check"]["duplicated"] == 0
    assert run["posted"] > 50
    assert run["deliveries"] == run["expected_deliveries"] == run["posted"] * 10
    assert run["drops"] > 0 and run["resumes"] == run["drops"]
    assert run["resumed_deliveries"] > 0 and run["latency_ms"]["max"] > 0
    assert run["server_tracebacks"] == 0


def test_the_load_check_catches_loss_duplicates_and_disorder() -> None:
    # The harness's own check must fail a run, or the smoke test above proves nothing.
    posts = [[7, 11, "a"], [7, 12, "b"], [7, 13, "c"]]

    def client(seqs: list[int], cids: list[str]) -> dict[str, object]:
        return {"chat": 7, "start": 10, "seqs": seqs, "cids": cids}

    assert verify(posts, [client([11, 12, 13], ["a", "b", "c"])])["ok"]
    assert verify(posts, [client([11, 13], ["a", "c"])])["lost"] == 1
    assert verify(posts, [client([11, 12, 12, 13], ["a", "b", "b", "c"])])["duplicated"] == 2
    assert verify(posts, [client([11, 13, 12], ["a", "c", "b"])])["out_of_order"] == 1
    assert verify(posts, [client([11, 12, 13], ["a", "c", "b"])])["mismatched"] == 2
    assert verify(posts[:1] + posts[2:], [client([11, 13], ["a", "c"])])["log_holes"] == 1
