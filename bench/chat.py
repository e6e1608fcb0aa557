"""``python -m bench chat``: connections, memory and fan-out CPU of a real server process.

With ``--load`` it runs the many-chats scenario of ``bench/chat_load.py`` instead, and with
``--ramp`` that scenario with more clients step by step. Every mode writes JSON results with
``summary`` and ``plots`` (see ``bench/report.py``) and an HTML report next to them.

The scenario: N authenticated WebSocket clients (spread over worker processes) sit in one
chat; the harness reads the server's RSS before and after they connect (memory per idle
connection), then one sender posts M messages of a given size and the harness reads the
server's own CPU time around the fan-out (CPU per delivery). With ``--vs websockets`` the
same clients and sender run against ``bench/baselines/ws_broadcast.py`` in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import chat_load, report
from bench.chat_worker import stamp
from bench.procstat import sample
from bench.profile import sampled, top_frames
from bench.progress import Progress
from protocol.client import Client
from protocol.messages import ChatPost, encode_request
from protocol.websocket import (
    Role,
    WebSocketConnection,
    check_server_handshake_response,
    client_handshake_request,
    new_client_key,
)

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Run:
    target: str
    connections: int
    failed: int
    rss_idle_bytes: int
    rss_connected_bytes: int
    bytes_per_connection: float
    messages: int
    deliveries: int
    expected_deliveries: int
    server_cpu_s: float
    server_user_s: float
    server_system_s: float
    cpu_us_per_delivery: float
    latency_ms: dict[str, float] = field(default_factory=dict)
    # Per message: its send time in the fan-out and the latency percentiles of its deliveries.
    latency_by_message: list[dict[str, float]] = field(default_factory=list)


def _start(
    cmd: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{cmd[:4]} did not start")
    return proc, json.loads(line)


def _loadtest_users(data_dir: Path, db: str | None, count: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "server",
        "loadtest-users",
        "--count",
        str(count),
        "--chats",
        "1",
        "--json",
    ]
    cmd += ["--data-dir", str(data_dir)] + (["--db", db] if db else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


class Workers:
    """Load processes, each holding a slice of the connections."""

    def __init__(self, procs: int, tokens: list[str], port: int, mode: str) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        for i in range(procs):
            slice_ = tokens[i::procs]
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.chat_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self.procs.append(proc)
            self._send(proc, {"mode": mode, "tokens": slice_, "host": "127.0.0.1", "port": port})

    @staticmethod
    def _send(proc: subprocess.Popen[str], data: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(data) + "\n")
        proc.stdin.flush()

    def _ask(self, command: str) -> list[dict[str, Any]]:
        for proc in self.procs:
            self._send(proc, {"cmd": command})
        return [self._read(proc) for proc in self.procs]

    @staticmethod
    def _read(proc: subprocess.Popen[str]) -> dict[str, Any]:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("a load worker died")
        result: dict[str, Any] = json.loads(line)
        return result

    def wait_ready(self) -> tuple[int, int]:
        reports = [self._read(proc) for proc in self.procs]
        return sum(r["ready"] for r in reports), sum(r["failed"] for r in reports)

    def count(self) -> int:
        return sum(r["received"] for r in self._ask("count"))

    def report(self) -> list[dict[str, Any]]:
        return self._ask("report")

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(BrokenPipeError):
                self._send(proc, {"cmd": "stop"})
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


class RawSender:
    """Posts ``chat.post`` frames over a bare WebSocket (for the baseline, which has no auth)."""

    async def open(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        key = new_client_key()
        self.writer.write(client_handshake_request(f"127.0.0.1:{port}", "/ws", key))
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
        }
        check_server_handshake_response(int(lines[0].split()[1]), headers, key)
        self.codec = WebSocketConnection(Role.CLIENT)

    async def post(self, number: int, text: str) -> None:
        self.codec.send_binary(
            encode_request(number + 1, ChatPost(chat_id=1, client_id=f"b{number}", text=text))
        )
        self.writer.write(self.codec.data_to_send())
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50": round(pick(0.50), 2),
        "p95": round(pick(0.95), 2),
        "p99": round(pick(0.99), 2),
        "max": round(ordered[-1], 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


async def _fan_out(
    target: str,
    pid: int,
    workers: Workers,
    post: Any,
    args: argparse.Namespace,
    expected: int,
) -> tuple[tuple[float, float], int, dict[int, list[float]]]:
    profile = None if args.profile is None else args.profile.with_suffix(f".{target}.txt")
    progress = Progress()
    with sampled(pid, profile):
        start = sample(pid)
        for number in range(args.messages):
            await post(number)
            progress.update(f"{target}: posted {number + 1}/{args.messages}")
            await asyncio.sleep(1 / args.rate)
        deadline = time.monotonic() + 60
        delivered = workers.count()
        while delivered < expected and time.monotonic() < deadline:
            progress.update(f"{target}: {delivered}/{expected} deliveries")
            await asyncio.sleep(0.2)
            delivered = workers.count()
        end = sample(pid)
    progress.done()
    if profile is not None and profile.exists():
        print(f"  {target} profile (self time): {profile}")
        for frame, share in top_frames(profile, 12):
            print(f"    {share:6.1%}  {frame}")
    user, system = end.user_s - start.user_s, end.system_s - start.system_s
    latencies: dict[int, list[float]] = {}
    for r in workers.report():
        for number, values in r["latencies_ms"].items():
            latencies.setdefault(int(number), []).extend(values)
    return (user, system), delivered, latencies


async def run_parta(args: argparse.Namespace, workdir: Path) -> Run:
    data_dir = workdir / "parta"
    users = _loadtest_users(data_dir, args.db, args.clients + 1)
    tokens = [u["token"] for u in users["users"]]
    chat_id = users["chats"][0]["chat_id"]
    cmd = [sys.executable, "-m", "server", "serve", "--port", "0", "--sfu-workers", "0"]
    cmd += ["--data-dir", str(data_dir)]
    server, started = _start(cmd + (["--db", args.db] if args.db else []))
    try:
        sender = Client(started["url"], tokens[0])
        await sender.connect()
        await sender.post(chat_id, "warm-up")
        await asyncio.sleep(0.5)
        idle = sample(server.pid)
        workers = Workers(args.procs, tokens[1:], started["port"], "parta")
        try:
            ready, failed = workers.wait_ready()
            await asyncio.sleep(1.0)
            connected = sample(server.pid)

            async def post(number: int) -> None:
                await sender.post(chat_id, stamp(number, args.size))

            cpu, delivered, latencies = await _fan_out(
                "parta", server.pid, workers, post, args, ready * args.messages
            )
        finally:
            workers.stop()
        await sender.close()
    finally:
        server.terminate()
        server.wait(30)
    return _result(
        "parta", ready, failed, idle.rss_bytes, connected.rss_bytes, args, cpu, delivered, latencies
    )


async def run_baseline(args: argparse.Namespace) -> Run:
    server, started = _start([sys.executable, "-m", "bench.baselines.ws_broadcast", "--port", "0"])
    try:
        sender = RawSender()
        await sender.open(started["port"])
        await sender.post(0, "warm-up")
        await asyncio.sleep(0.5)
        idle = sample(server.pid)
        workers = Workers(args.procs, ["-"] * args.clients, started["port"], "baseline")
        try:
            ready, failed = workers.wait_ready()
            await asyncio.sleep(1.0)
            connected = sample(server.pid)

            async def post(number: int) -> None:
                await sender.post(number, stamp(number, args.size))

            cpu, delivered, latencies = await _fan_out(
                "websockets", server.pid, workers, post, args, ready * args.messages
            )
        finally:
            workers.stop()
        sender.close()
    finally:
        server.terminate()
        server.wait(30)
    return _result(
        "websockets",
        ready,
        failed,
        idle.rss_bytes,
        connected.rss_bytes,
        args,
        cpu,
        delivered,
        latencies,
    )


def _result(
    target: str,
    ready: int,
    failed: int,
    rss_idle: int,
    rss_connected: int,
    args: argparse.Namespace,
    cpu_split: tuple[float, float],
    delivered: int,
    latencies: dict[int, list[float]],
) -> Run:
    cpu = sum(cpu_split)
    return Run(
        target=target,
        connections=ready,
        failed=failed,
        rss_idle_bytes=rss_idle,
        rss_connected_bytes=rss_connected,
        bytes_per_connection=round((rss_connected - rss_idle) / max(ready, 1), 1),
        messages=args.messages,
        deliveries=delivered,
        expected_deliveries=ready * args.messages,
        server_cpu_s=round(cpu, 3),
        server_user_s=round(cpu_split[0], 3),
        server_system_s=round(cpu_split[1], 3),
        cpu_us_per_delivery=round(cpu / max(delivered, 1) * 1e6, 3),
        latency_ms=_percentiles([x for values in latencies.values() for x in values]),
        latency_by_message=[
            {"message": n, "sent_s": round(n / args.rate, 3), **_percentiles(values)}
            for n, values in sorted(latencies.items())
        ],
    )


def _summary(runs: list[Run], ratio: float | None) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for r in runs:
        summary |= {
            f"{r.target}: connections": r.connections,
            f"{r.target}: deliveries": f"{r.deliveries} of {r.expected_deliveries}",
            f"{r.target}: CPU per delivery (µs)": r.cpu_us_per_delivery,
            f"{r.target}: memory per connection (KiB)": round(r.bytes_per_connection / 1024, 2),
            f"{r.target}: latency p50 (ms)": r.latency_ms.get("p50"),
            f"{r.target}: latency p99 (ms)": r.latency_ms.get("p99"),
        }
    if len(runs) == 2:
        # None when a short run used too little CPU for /proc's clock ticks to show.
        summary["CPU per delivery, parta / websockets"] = ratio
    return summary


def _plots(runs: list[Run]) -> list[dict[str, Any]]:
    def each(value: Any) -> dict[str, list[list[float]]]:
        return {r.target: [[r.connections, value(r)]] for r in runs}

    latency = {
        f"{r.target} {q}": [[m["sent_s"], m[q]] for m in r.latency_by_message]
        for r in runs
        for q in ("p50", "p99")
    }
    return [
        {
            "title": "Delivery latency of each message, by when it was posted",
            "x_label": "time (s)",
            "y_label": "latency (ms)",
            "series": latency,
        },
        {
            "title": "Server CPU per delivery",
            "x_label": "connections",
            "y_label": "µs per delivery",
            "series": each(lambda r: r.cpu_us_per_delivery),
        },
        {
            "title": "Server memory per idle connection",
            "x_label": "connections",
            "y_label": "KiB per connection",
            "series": each(lambda r: round(r.bytes_per_connection / 1024, 2)),
        },
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, help="connections (default 5000; with --load 1000)")
    parser.add_argument(
        "--procs", type=int, help="load worker processes (default 4; with --load one per core)"
    )
    parser.add_argument("--messages", type=int, default=40, help="messages the sender posts")
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second")
    parser.add_argument("--size", type=int, default=200, help="message text bytes")
    parser.add_argument("--db", help="postgresql://… (default: SQLite in a temporary data dir)")
    parser.add_argument("--vs", choices=["websockets"], help="run the same against a baseline")
    parser.add_argument("--out", type=Path, help="JSON results file (default bench/results/…)")
    parser.add_argument(
        "--profile", type=Path, help="sample the servers with py-spy into PROFILE.<target>.txt"
    )
    parser.add_argument(
        "--no-report", action="store_true", help="no HTML report next to the JSON results"
    )
    chat_load.add_arguments(parser)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.load or args.ramp:
        args.clients = args.clients or 1000
        return await chat_load.main(args)
    args.clients = args.clients or 5000
    args.procs = args.procs or 4
    with tempfile.TemporaryDirectory(prefix="parta-bench-") as tmp:
        runs = [await run_parta(args, Path(tmp))]
    if args.vs == "websockets":
        runs.append(await run_baseline(args))
    result: dict[str, Any] = {
        "scenario": "chat-fanout",
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "runs": [asdict(r) for r in runs],
    }
    if len(runs) == 2 and runs[1].cpu_us_per_delivery > 0:
        result["ratio_cpu_per_delivery"] = round(
            runs[0].cpu_us_per_delivery / runs[1].cpu_us_per_delivery, 3
        )
    result["summary"] = _summary(runs, result.get("ratio_cpu_per_delivery"))
    result["plots"] = _plots(runs)
    out = args.out or RESULTS / f"chat-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    if not args.no_report:
        print(f"report: {report.write([out], out.with_suffix('.html'))}")
    for r in runs:
        print(
            f"{r.target:>10}: {r.connections} conns ({r.failed} failed), "
            f"{r.bytes_per_connection / 1024:.2f} KiB/conn, "
            f"{r.deliveries}/{r.expected_deliveries} deliveries, "
            f"{r.cpu_us_per_delivery:.2f} µs CPU/delivery (user {r.server_user_s} s, "
            f"system {r.server_system_s} s), latency {r.latency_ms}"
        )
    if "ratio_cpu_per_delivery" in result:
        print(f"parta / websockets CPU per delivery: {result['ratio_cpu_per_delivery']}")
    print(f"results: {out}")
    return result
