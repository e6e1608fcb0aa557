"""A few seconds of the load harness, so it never rots (the real runs are in bench/README.md)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

from bench.chat_load import verify

PNG = b"\x89PNG\r\n\x1a\n"


def _bench(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=120
    )
    # What the harness printed is the only account of why a run failed on CI.
    assert not check or done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_bench_chat_smoke_against_parta_and_the_websockets_baseline(tmp_path: Path) -> None:
    out = tmp_path / "chat.json"
    _bench("chat", "--clients", "30", "--procs", "2", "--messages", "3", "--rate", "20",
           "--vs", "websockets", "--no-report", "--out", str(out))  # fmt: skip
    result = json.loads(out.read_text())
    assert [r["target"] for r in result["runs"]] == ["parta", "websockets"]
    for run in result["runs"]:
        assert (run["connections"], run["failed"]) == (30, 0)
        assert run["deliveries"] == run["expected_deliveries"] == 90
        assert run["latency_ms"]["max"] > 0
        assert [(m["message"], m["max"] > 0) for m in run["latency_by_message"]] == [
            (0, True), (1, True), (2, True)
        ]  # fmt: skip
    assert "CPU per delivery, parta / websockets" in result["summary"]


def test_bench_chat_load_smoke_with_drops(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    _bench("chat", "--load", "--clients", "40", "--chat-size", "10", "--procs", "2",
           "--interval", "1", "--duration", "5", "--drop", "0.25", "--drop-every", "2",
           "--drop-pause", "0.5", "--quiet", "0.5", "--out", str(out))  # fmt: skip
    run = json.loads(out.read_text())["run"]
    assert (run["clients"], run["failed_connections"], run["chats"]) == (40, 0, 4)
    assert run["check"]["ok"], run["check"]
    assert run["check"]["lost"] == run["check"]["duplicated"] == 0
    assert run["posted"] > 50
    assert run["deliveries"] == run["expected_deliveries"] == run["posted"] * 10
    assert run["drops"] > 0 and run["resumes"] == run["drops"]
    assert run["resumed_deliveries"] > 0 and run["latency_ms"]["max"] > 0
    assert run["server_tracebacks"] == 0 and run["errors"] == {}
    # The report next to the results: the headline figures and the three plots.
    page = out.with_suffix(".html").read_text()
    assert "latency p99 (ms)" in page and "memory per connection (KiB)" in page
    assert [png[:8] for png in _pngs(page)] == [PNG] * 3


def test_bench_chat_ramp_smoke_finds_what_the_server_holds(tmp_path: Path) -> None:
    out = tmp_path / "ramp.json"
    # The steps and the summary are under test here, not the latency: one stall of a CI
    # machine puts a 2 s window's p99 over 100 ms (the bound has its own test below).
    _bench("chat", "--ramp", "--ramp-start", "20", "--ramp-step", "20", "--ramp-max", "40",
           "--chat-size", "10", "--procs", "2", "--interval", "1", "--duration", "2",
           "--drop", "0", "--quiet", "0.2", "--p99-ms", "5000", "--no-report",
           "--out", str(out))  # fmt: skip
    result = json.loads(out.read_text())
    steps = result["run"]["steps"]
    assert [s["clients"] for s in steps] == [20, 40]
    assert all(s["check"]["ok"] and s["deliveries"] == s["expected_deliveries"] for s in steps)
    # 40 clients posting once a second into chats of 10: about 400 deliveries per second.
    assert 250 < steps[1]["deliveries_per_s"] < 550
    assert result["summary"]["most connections held"] == 40
    assert result["summary"]["stopped at"] == "reached --ramp-max"
    throughput = result["plots"][0]["series"]["delivered"]
    assert [x for x, _ in throughput] == [20, 40]
    assert not out.with_suffix(".html").exists()


def test_bench_chat_ramp_stops_at_the_first_step_over_the_bound(tmp_path: Path) -> None:
    out = tmp_path / "ramp.json"
    done = _bench("chat", "--ramp", "--ramp-start", "10", "--ramp-step", "10", "--ramp-max",
                  "30", "--chat-size", "10", "--procs", "1", "--interval", "0.5", "--duration",
                  "1", "--drop", "0", "--quiet", "0.2", "--p99-ms", "0.01", "--no-report",
                  "--out", str(out), check=False)  # fmt: skip
    assert done.returncode == 1
    result = json.loads(out.read_text())
    assert len(result["run"]["steps"]) == 1
    assert result["run"]["held"] is None
    assert result["summary"]["stopped at"].startswith("10 clients: p99 ")


def test_bench_report_renders_results_as_one_self_contained_page(tmp_path: Path) -> None:
    plots = [
        {"title": "Latency <per second>", "x_label": "time (s)", "y_label": "ms",
         "series": {"p50": [[0, 1.0], [1, 1.5]], "p99": [[0, 4.0], [1, None], [2, 9.0]]}},
        {"title": "CPU per item", "x_label": "connections", "y_label": "µs",
         "series": {"parta": [[1000, 8.1]]}},
    ]  # fmt: skip
    paths = []
    for name, cpu in (("sqlite", 8.1), ("postgresql", 8.3)):
        path = tmp_path / f"{name}.json"
        summary = {"database": name, "CPU per delivery (µs)": cpu, "lost": 0}
        path.write_text(json.dumps({"scenario": "chat-load", "summary": summary, "plots": plots}))
        paths.append(str(path))
    out = tmp_path / "report.html"
    _bench("report", *paths, "--out", str(out))
    page = out.read_text()
    assert "<th>sqlite.json</th><th>postgresql.json</th>" in page  # side by side
    assert "<td class=n>8.1</td><td class=n>8.3</td>" in page
    assert "Latency &lt;per second&gt;" in page and "<per second>" not in page
    pngs = _pngs(page)
    assert len(pngs) == 4 and all(png.startswith(PNG) and len(png) > 5000 for png in pngs)
    assert 'src="http' not in page  # nothing to fetch


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
