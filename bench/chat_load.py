"""``python -m bench chat --load``: many chats at once, clients dropping and resuming.

The scenario (issue 4): N SDK clients in chats of K (identities and chats from
``parta loadtest-users``), each posting into its chat with exponentially distributed gaps
(mean ``--interval``) for ``--duration`` seconds, while a fraction ``--drop`` of them cut
their TCP connection at random moments (no close frame), wait a moment and reconnect,
resuming with their cursors. Afterwards, once every client has caught up, the harness checks
that every member of every chat got every message posted in it exactly once and in seq order
(each message is identified by its client id), and reports live delivery latency, resume
catch-up time, and the server's CPU and memory. Any loss, duplicate or reordering fails the
run (exit status 1).

``--ramp`` runs the same scenario against one server with more clients step by step
(``--ramp-start``, ``--ramp-step``, ``--ramp-max``; whole chats, the same posting interval,
so the message rate grows with them) and stops at the first step whose p99 live latency is
at or above ``--p99-ms``, or that loses, duplicates or reorders anything: the result is the
most connections and deliveries per second held under the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench import report
from bench.procstat import ProcSample, cpu_of_named, sample
from bench.profile import sampled, top_frames
from bench.progress import Progress

RESULTS = Path(__file__).resolve().parent / "results"
LATENCY_TARGET_MS = 100.0


# --- helpers ----------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50": round(pick(0.50), 2),
        "p95": round(pick(0.95), 2),
        "p99": round(pick(0.99), 2),
        "max": round(ordered[-1], 2),
        "mean": round(sum(ordered) / len(ordered), 2),
    }


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores, from /proc/stat)."""
    with open("/proc/stat", encoding="ascii") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def fresh_database(url: str | None) -> AsyncIterator[str | None]:
    """A new PostgreSQL database on the server of ``url`` for this run, dropped afterwards.

    Each run makes 1,000 accounts; a database of its own keeps runs comparable.
    """
    if url is None:
        yield None
        return
    name = f"parta_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(url)
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def loadtest_users(data_dir: Path, db: str | None, count: int, chats: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "server", "loadtest-users", "--count", str(count),
           "--chats", str(chats), "--json", "--data-dir", str(data_dir)]  # fmt: skip
    cmd += ["--db", db] if db else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


@contextlib.contextmanager
def server_process(data_dir: Path, db: str | None, log: TextIO) -> Iterator[tuple[int, str]]:
    cmd = [sys.executable, "-m", "server", "serve", "--port", "0", "--sfu-workers", "0",
           "--data-dir", str(data_dir)] + (["--db", db] if db else [])  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the server did not start (see its log)")
        yield proc.pid, json.loads(line)["url"]
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


class LoadProcs:
    """The load processes (``bench/chat_load_worker.py``), one JSON line per command."""

    def __init__(self, setups: list[dict[str, Any]]) -> None:
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.chat_load_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in setups
        ]
        for proc, setup in zip(self.procs, setups, strict=True):
            self._send(proc, setup)

    @staticmethod
    def _send(proc: subprocess.Popen[str], data: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(data) + "\n")
        proc.stdin.flush()

    def send(self, data: dict[str, Any]) -> None:
        for proc in self.procs:
            self._send(proc, data)

    def read(self) -> list[dict[str, Any]]:
        reports = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("a load process died")
            reports.append(json.loads(line))
        return reports

    def samples(self) -> list[ProcSample]:
        return [sample(proc.pid) for proc in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._send(proc, {"cmd": "stop"})
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


# --- the check --------------------------------------------------------------------------


def verify(posts: list[list[Any]], clients: list[dict[str, Any]]) -> dict[str, Any]:
    """Every member got every message of its chat exactly once, in seq order.

    ``posts``: ``[chat, seq, client id, …]`` as the posters' acks gave them;
    ``clients``: what each client's SDK delivered (``seqs``/``cids`` in arrival order).
    """
    by_chat: dict[int, dict[int, str]] = {}
    posted_twice = 0
    for chat, seq, cid, *_ in posts:
        seen = by_chat.setdefault(chat, {})
        if seq in seen and seen[seq] != cid:
            posted_twice += 1  # two posts acked with one seq
        seen[seq] = cid
    starts: dict[int, int] = {}
    for c in clients:
        starts.setdefault(c["chat"], c["start"])
    # The chat's log after the start must be exactly the acked posts: nothing else, no hole.
    log_holes = 0
    stored_twice = 0
    for chat, acked in by_chat.items():
        expected = set(range(starts.get(chat, 0) + 1, max(acked) + 1))
        log_holes += len(expected - acked.keys())
        stored_twice += len(acked) - len(set(acked.values()))
    lost = duplicated = out_of_order = foreign = mismatched = 0
    for c in clients:
        posted = by_chat.get(c["chat"], {})
        seqs: list[int] = c["seqs"]
        got = set(seqs)
        lost += len(posted.keys() - got)
        duplicated += len(seqs) - len(got) + len(seqs) - len(set(c["cids"]))
        out_of_order += sum(1 for a, b in itertools.pairwise(seqs) if b <= a)
        foreign += len(got - posted.keys())
        mismatched += sum(
            1 for s, cid in zip(seqs, c["cids"], strict=True) if s in posted and posted[s] != cid
        )
    checks = {
        "lost": lost,
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "unexpected": foreign,
        "mismatched": mismatched,
        "posted_twice": posted_twice,
        "stored_twice": stored_twice,
        "log_holes": log_holes,
    }
    return {"ok": not any(checks.values()), **checks}


# --- the run ----------------------------------------------------------------------------


def _setups(
    args: argparse.Namespace, users: dict[str, Any], url: str, procs: int
) -> tuple[list[dict[str, Any]], int]:
    token = {u["account_id"]: u["token"] for u in users["users"]}
    clients = [
        {"token": token[account], "chat_id": chat["chat_id"], "drops": False}
        for chat in users["chats"]
        for account in chat["member_ids"]
    ]
    rng = random.Random(args.seed)
    # Spread every chat over the processes, as clients of one chat sit on different devices.
    rng.shuffle(clients)
    dropping = rng.sample(range(len(clients)), round(args.drop * len(clients)))
    for i in dropping:
        clients[i]["drops"] = True
    tag = secrets.token_hex(3)
    setups = [
        {
            "url": url,
            "proc": p,
            "tag": tag,
            "seed": args.seed * 1000 + p,
            "clients": clients[p::procs],
            "interval": args.interval,
            "size": args.size,
            "drop_every": args.drop_every,
            "drop_pause": [args.drop_pause_min, args.drop_pause],
            "drop_mid_post": args.drop_mid_post,
        }
        for p in range(procs)
    ]
    return setups, len(dropping)


async def run(args: argparse.Namespace, workdir: Path, db: str | None) -> dict[str, Any]:
    """One load run: identities, a fresh server, the measured window, the check."""
    data_dir = workdir / "parta"
    users = await asyncio.to_thread(
        loadtest_users, data_dir, db, args.clients, math.ceil(args.clients / args.chat_size)
    )
    log_path = workdir / "server.log"
    with log_path.open("w") as log, server_process(data_dir, db, log) as (pid, url):
        return await measure(args, users, db, pid, url, log_path)


async def measure(
    args: argparse.Namespace,
    users: dict[str, Any],
    db: str | None,
    pid: int,
    url: str,
    log_path: Path,
    label: str = "",
) -> dict[str, Any]:
    """Connects the chats of ``users`` to the running server, runs the window, checks."""
    procs = args.procs or os.cpu_count() or 2
    progress = Progress()
    log_from = _log_size(log_path)
    load_avg = [os.getloadavg()[0]]
    setups, droppers = _setups(args, users, url, procs)
    connected_clients = sum(len(s["clients"]) for s in setups)
    progress.update(f"{label}connecting {connected_clients} clients…")
    idle = sample(pid)
    load = LoadProcs(setups)
    try:
        opened = time.monotonic()
        ready = load.read()
        connect_s = time.monotonic() - opened
        connected, failed = sum(r["ready"] for r in ready), sum(r["failed"] for r in ready)
        await asyncio.sleep(1.0)
        profile = None if args.profile is None else args.profile.with_suffix(".load.txt")
        series: list[dict[str, float]] = []
        with sampled(pid, profile):
            load_start, start, machine_start = load.samples(), sample(pid), machine_busy()
            db_start = cpu_of_named("postgres") if db else 0.0
            began = time.monotonic()
            load.send({"cmd": "start", "duration": args.duration})
            previous, previous_at = start, began
            for second in range(1, math.ceil(args.duration) + 1):
                await asyncio.sleep(max(0.0, began + second - time.monotonic()))
                now, at = sample(pid), time.monotonic()
                used = (now.cpu_s - previous.cpu_s) / (at - previous_at)
                series.append(
                    {"t": second, "cpu_pct": round(used * 100, 1),
                     "rss_mib": round(now.rss_bytes / 2**20, 1)}
                )  # fmt: skip
                previous, previous_at = now, at
                progress.update(
                    f"{label}{connected} clients · {second}/{math.ceil(args.duration)} s · "
                    f"server CPU {used:.0%} · RSS {now.rss_bytes / 2**20:.0f} MiB"
                )
            end, load_end, machine_end = sample(pid), load.samples(), machine_busy()
            db_cpu_s = cpu_of_named("postgres") - db_start if db else 0.0
            window_s = time.monotonic() - began
            load_avg.append(os.getloadavg()[0])
        progress.update(f"{label}{connected} clients · catching up and checking…")
        posted = load.read()
        posts = [p for r in posted for p in r["posts"]]
        finals: dict[int, int] = {}
        for chat, seq, *_ in posts:
            finals[chat] = max(finals.get(chat, 0), seq)
        load.send({"cmd": "settle", "finals": finals, "timeout": 60, "quiet": args.quiet})
        reports = load.read()
    finally:
        load.stop()
        progress.done()
    after = sample(pid)
    server_log = _read_from(log_path, log_from)
    if profile is not None and profile.exists():
        print(f"server profile (collapsed stacks): {profile}")
        for frame, share in top_frames(profile, 15):
            print(f"  {share:6.1%}  {frame}")
    clients = [c for r in reports for c in r["clients"]]
    return _summarise(
        args=args,
        db=db,
        connected=connected,
        failed=failed,
        connect_s=connect_s,
        droppers=droppers,
        posts=posts,
        clients=clients,
        reports=reports,
        began=began,
        cpu=(start, end, window_s),
        memory=(idle.rss_bytes, start.rss_bytes, after.rss_bytes),
        load_cpu=(load_start, load_end),
        machine_cpu_s=machine_end - machine_start,
        db_cpu_s=db_cpu_s,
        series=series,
        server_log=server_log,
        load_avg=load_avg,
    )


def _log_size(path: Path) -> int:
    return path.stat().st_size


def _read_from(path: Path, offset: int) -> str:
    """What the server logged from byte ``offset`` on (the steps of a ramp share the log)."""
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _summarise(
    *,
    args: argparse.Namespace,
    db: str | None,
    connected: int,
    failed: int,
    connect_s: float,
    droppers: int,
    posts: list[list[Any]],
    clients: list[dict[str, Any]],
    reports: list[dict[str, Any]],
    began: float,
    cpu: tuple[ProcSample, ProcSample, float],
    load_cpu: tuple[list[ProcSample], list[ProcSample]],
    series: list[dict[str, float]],
    memory: tuple[int, int, int],
    server_log: str,
    load_avg: list[float],
    machine_cpu_s: float,
    db_cpu_s: float,
) -> dict[str, Any]:
    check = verify(posts, clients)
    # A post cut by a drop is sent again after the reconnect with its first stamp: its
    # latency includes the sender's outage, not the server's work, so it is left out.
    retried = {p[2] for p in posts if p[3]}
    live: list[float] = []
    # Live latency by the second the message was sent in: a stall shows as a bad second.
    by_second: dict[int, list[float]] = {}
    live_all = resumed = 0
    for c in clients:
        rows = zip(c["cids"], c["latency_ms"], c["live"], c["sent_at"], strict=True)
        for cid, latency, is_live, sent in rows:
            if not is_live:
                resumed += 1
                continue
            live_all += 1
            if cid not in retried:
                live.append(latency)
                by_second.setdefault(int(sent - began), []).append(latency)
    deliveries = live_all + resumed
    load_cpu_s = sum(b.cpu_s - a.cpu_s for a, b in zip(*load_cpu, strict=True))
    start, end, window_s = cpu
    server_cpu_s = end.cpu_s - start.cpu_s
    errors: dict[str, int] = {}
    for r in reports:
        for kind, n in r["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
    per_chat = Counter(p[0] for p in posts)
    expected = sum(per_chat[c["chat"]] for c in clients)
    latency = percentiles(live)
    rss_idle, rss_connected, rss_after = memory
    result: dict[str, Any] = {
        "database": "postgresql" if db else "sqlite",
        "clients": connected,
        "failed_connections": failed,
        "connect_s": round(connect_s, 2),
        "chats": len({c["chat"] for c in clients}),
        "window_s": round(window_s, 2),
        "posted": len(posts),
        "posted_per_s": round(len(posts) / args.duration, 1),
        "posts_retried_across_a_drop": len(retried),
        "posts_answered_duplicate": sum(1 for p in posts if p[4]),
        "post_ack_ms": percentiles([p[5] for p in posts if not p[3]]),
        "deliveries": deliveries,
        "expected_deliveries": expected,
        "deliveries_per_s": round(deliveries / args.duration, 1),
        "live_deliveries": live_all,
        "resumed_deliveries": resumed,
        "latency_ms": latency,
        "latency_target_met": bool(latency) and latency["p99"] < args.p99_ms,
        "dropping_clients": droppers,
        "drops": sum(r["drops"] for r in reports),
        "resumes": sum(r["resumes"] for r in reports),
        "resume_catch_up_ms": percentiles([s * 1000 for r in reports for s in r["resume_s"]]),
        "events_per_resume": percentiles([float(n) for r in reports for n in r["resumed_events"]]),
        "server_closed_connections": sum(r["unexpected_breaks"] for r in reports),
        # What the SDK filtered out, [while reconnecting, while connected]: a stale event is
        # one at or below the cursor (dropped), a gap one past cursor + 1 (dropped, then
        # fetched with sync). While connected, either means the server's live stream for
        # the chat was out of seq order.
        "wire_stale_events": [sum(c["wire_stale"][i] for c in clients) for i in (0, 1)],
        "wire_gaps": [sum(c["wire_gaps"][i] for c in clients) for i in (0, 1)],
        "server_cpu_pct": round(server_cpu_s / window_s * 100, 1),
        "server_cpu_pct_peak_1s": max((s["cpu_pct"] for s in series), default=0.0),
        "server_user_s": round(end.user_s - start.user_s, 2),
        "server_system_s": round(end.system_s - start.system_s, 2),
        "server_cpu_us_per_delivery": round(server_cpu_s / max(deliveries, 1) * 1e6, 1),
        # Before the clients connect, connected and idle, during the window, after it.
        "server_rss_mib_idle": round(rss_idle / 2**20, 1),
        "server_rss_mib_start": round(rss_connected / 2**20, 1),
        "server_rss_mib_peak": round(max((s["rss_mib"] for s in series), default=0.0), 1),
        "server_rss_mib_end": round(rss_after / 2**20, 1),
        "memory_per_connection_kib": round(
            (rss_connected - rss_idle) / max(connected, 1) / 1024, 2
        ),
        "load_procs_cpu_pct": [
            round((b.cpu_s - a.cpu_s) / window_s * 100, 1) for a, b in zip(*load_cpu, strict=True)
        ],
        "server_tracebacks": server_log.count("Traceback"),
        "server_slow_transactions": server_log.count("slow transaction"),
        "server_log": server_log,
        # The machine's 1-minute load average before and after: other work on a 2-core
        # machine shows up in the latency tail.
        "machine_load_avg": [round(x, 2) for x in load_avg],
        # The whole machine's busy CPU in the window (100% = one core), and what of it was
        # neither the server nor the load processes (PostgreSQL's backends count there).
        "machine_cpu_pct": round(machine_cpu_s / window_s * 100, 1),
        # PostgreSQL's processes (all of the machine's, so other users' queries count too).
        "database_cpu_pct": round(db_cpu_s / window_s * 100, 1),
        "database_cpu_us_per_delivery": round(db_cpu_s / max(deliveries, 1) * 1e6, 1),
        "other_cpu_pct": round(
            (machine_cpu_s - server_cpu_s - load_cpu_s - db_cpu_s) / window_s * 100, 1
        ),
        "errors": errors,
        "error_samples": [s for r in reports for s in r["error_samples"]][:20],
        "check": check,
        "server_series": series,
        "latency_by_second": [
            {"t": t, "deliveries": len(v), **percentiles(v)} for t, v in sorted(by_second.items())
        ],
    }
    return result


def _worst(seconds: list[dict[str, Any]]) -> str:
    if not seconds:
        return "-"
    worst = max(seconds, key=lambda s: s["p99"])
    return f"t={worst['t']} s: p99 {worst['p99']} ms, max {worst['max']} ms"


def _print(result: dict[str, Any], out: Path) -> None:
    r = result["run"]
    lat, check = r["latency_ms"], r["check"]
    rows = [
        ("database", r["database"]),
        ("clients / chats", f"{r['clients']} in {r['chats']} ({r['failed_connections']} failed)"),
        ("messages posted", f"{r['posted']} ({r['posted_per_s']}/s)"),
        ("deliveries", f"{r['deliveries']} of {r['expected_deliveries']} "
                       f"({r['live_deliveries']} live, {r['resumed_deliveries']} by resume)"),
        ("deliveries/s", r["deliveries_per_s"]),
        ("live latency p50/p95/p99/max",
         f"{lat.get('p50')} / {lat.get('p95')} / {lat.get('p99')} / {lat.get('max')} ms"),
        ("worst second (by send time)", _worst(r["latency_by_second"])),
        ("post ack p50/p99 (not cut)",
         f"{r['post_ack_ms'].get('p50')} / {r['post_ack_ms'].get('p99')} ms"),
        ("drops / resumes", f"{r['drops']} / {r['resumes']} ({r['dropping_clients']} clients)"),
        ("resume catch-up p50/p99/max", "{p50} / {p99} / {max} ms".format(
            **(r["resume_catch_up_ms"] or {"p50": "-", "p99": "-", "max": "-"}))),
        ("posts retried / duplicate acks",
         f"{r['posts_retried_across_a_drop']} / {r['posts_answered_duplicate']}"),
        ("server CPU (avg / peak 1 s)",
         f"{r['server_cpu_pct']}% / {r['server_cpu_pct_peak_1s']}% "
         f"({r['server_cpu_us_per_delivery']} µs per delivery)"),
        ("server RSS (start / peak / end)", f"{r['server_rss_mib_start']} / "
         f"{r['server_rss_mib_peak']} / {r['server_rss_mib_end']} MiB"),
        ("load processes CPU", " ".join(f"{x}%" for x in r["load_procs_cpu_pct"])),
        ("machine load avg (before / after)", " / ".join(map(str, r["machine_load_avg"]))),
        ("machine CPU (all / PostgreSQL / other)", f"{r['machine_cpu_pct']}% / "
         f"{r['database_cpu_pct']}% ({r['database_cpu_us_per_delivery']} µs per delivery) / "
         f"{r['other_cpu_pct']}%"),
        ("SDK filtered: stale / gaps",
         "{} / {} while reconnecting, {} / {} while connected".format(
             r["wire_stale_events"][0], r["wire_gaps"][0],
             r["wire_stale_events"][1], r["wire_gaps"][1])),
        ("errors", f"{r['errors'] or 0}, server tracebacks {r['server_tracebacks']}, "
                   f"server-closed connections {r['server_closed_connections']}, "
                   f"slow transactions logged {r['server_slow_transactions']}"),
        ("lost / duplicated / reordered", f"{check['lost']} / {check['duplicated']} / "
                                           f"{check['out_of_order']}"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    verdict = "PASS" if check["ok"] else f"FAIL {check}"
    target = "met" if r["latency_target_met"] else "NOT met"
    bound = result["params"]["p99_ms"]
    print(f"  exactly once, in order: {verdict}; p99 < {bound:g} ms: {target}")
    for line in r["error_samples"]:
        print(f"  error: {line}")
    print(f"results: {out}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The load mode's own flags (``--clients``, ``--procs``, ``--size``, ``--db``, ``--out``,
    ``--profile`` and ``--no-report`` are shared with the fan-out mode)."""
    group = parser.add_argument_group("load mode (--load) and ramp (--ramp)")
    group.add_argument("--load", action="store_true", help="many chats posting at once, drops")
    group.add_argument(
        "--ramp",
        action="store_true",
        help="the load scenario with more clients step by step, until p99 passes --p99-ms",
    )
    group.add_argument("--chat-size", type=int, default=20, help="members per chat")
    group.add_argument("--interval", type=float, default=5.0, help="mean seconds between posts")
    group.add_argument(
        "--duration", type=float, help="seconds of posting (default 60; with --ramp per step, 15)"
    )
    group.add_argument("--drop", type=float, default=0.1, help="fraction of clients that drop")
    group.add_argument(
        "--drop-every", type=float, default=15.0, help="mean seconds between a client's drops"
    )
    group.add_argument(
        "--drop-pause", type=float, default=2.0, help="longest pause before reconnecting (s)"
    )
    group.add_argument(
        "--drop-mid-post",
        type=float,
        default=0.5,
        help="share of drops timed to cut a post in flight (exercises exactly-once posting)",
    )
    group.add_argument("--drop-pause-min", type=float, default=0.1, help=argparse.SUPPRESS)
    group.add_argument("--quiet", type=float, default=2.0, help="quiet seconds before checking")
    group.add_argument("--seed", type=int, default=1, help="random seed (chats, drops, gaps)")
    group.add_argument(
        "--p99-ms", type=float, default=LATENCY_TARGET_MS, help="latency bound (ms, p99)"
    )
    group.add_argument("--ramp-start", type=int, default=1000, help="clients in the first step")
    group.add_argument("--ramp-step", type=int, default=1000, help="clients added per step")
    group.add_argument("--ramp-max", type=int, default=10000, help="clients in the last step")


# --- results: headline figures and plots (the schema of bench/report.py) ----------------


def load_summary(r: dict[str, Any]) -> dict[str, Any]:
    lat, check = r["latency_ms"], r["check"]
    postgres = r["database"] == "postgresql"
    return {
        "database": r["database"],
        "clients / chats": f"{r['clients']} / {r['chats']}",
        "messages posted per s": r["posted_per_s"],
        "deliveries per s": r["deliveries_per_s"],
        "latency p50 (ms)": lat.get("p50"),
        "latency p95 (ms)": lat.get("p95"),
        "latency p99 (ms)": lat.get("p99"),
        "latency max (ms)": lat.get("max"),
        "lost": check["lost"],
        "duplicated": check["duplicated"],
        "out of order": check["out_of_order"],
        "drops / resumes": f"{r['drops']} / {r['resumes']}",
        "server CPU per delivery (µs)": r["server_cpu_us_per_delivery"],
        "server CPU (% of a core)": r["server_cpu_pct"],
        "memory per connection (KiB)": r["memory_per_connection_kib"],
        "server RSS peak (MiB)": r["server_rss_mib_peak"],
        "load processes CPU (% of a core)": round(sum(r["load_procs_cpu_pct"]), 1),
        "PostgreSQL CPU (% of a core)": r["database_cpu_pct"] if postgres else None,
        "PostgreSQL CPU per delivery (µs)": (
            r["database_cpu_us_per_delivery"] if postgres else None
        ),
        "other CPU on the machine (% of a core)": r["other_cpu_pct"],
    }


def load_plots(r: dict[str, Any]) -> list[dict[str, Any]]:
    seconds = r["latency_by_second"]
    sent_in = {s["t"]: s["deliveries"] for s in seconds}
    # Seconds are [t, t + 1) of latency_by_second and [t - 1, t) of server_series; both
    # are drawn at their middle. A second's CPU is set against the deliveries of messages
    # sent in it: most arrive in it.
    per_delivery = [
        [s["t"] - 0.5, round(s["cpu_pct"] / 100 / sent_in[s["t"] - 1] * 1e6, 1)]
        for s in r["server_series"]
        if sent_in.get(s["t"] - 1)
    ]
    server = r["server_series"]
    return [
        {
            "title": "Live delivery latency, by the second the message was sent",
            "x_label": "time (s)",
            "y_label": "latency (ms)",
            "series": {q: [[s["t"] + 0.5, s[q]] for s in seconds] for q in ("p50", "p95", "p99")},
        },
        {
            "title": "Server CPU per delivery, second by second",
            "x_label": "time (s)",
            "y_label": "µs per delivery",
            "series": {"server": per_delivery},
        },
        {
            "title": "Server process",
            "x_label": "time (s)",
            "y_label": "% of a core / MiB",
            "series": {
                "CPU (% of a core)": [[s["t"] - 0.5, s["cpu_pct"]] for s in server],
                "RSS (MiB)": [[s["t"] - 0.5, s["rss_mib"]] for s in server],
            },
        },
    ]


def ramp_plots(steps: list[dict[str, Any]], bound_ms: float, offered: float) -> list[Any]:
    def line(key: Any) -> list[list[Any]]:
        return [[s["clients"], key(s)] for s in steps]

    return [
        {
            "title": "Deliveries per second against connections",
            "x_label": "connections",
            "y_label": "deliveries per s",
            "series": {
                "delivered": line(lambda s: s["deliveries_per_s"]),
                "offered": line(lambda s: round(s["clients"] * offered, 1)),
            },
        },
        {
            "title": "Live delivery latency against connections",
            "x_label": "connections",
            "y_label": "latency (ms)",
            "series": {
                **{q: line(lambda s, q=q: s["latency_ms"].get(q)) for q in ("p50", "p95", "p99")},
                "bound": line(lambda s: bound_ms),
            },
        },
        {
            "title": "Server CPU per delivery against connections",
            "x_label": "connections",
            "y_label": "µs per delivery",
            "series": {"server": line(lambda s: s["server_cpu_us_per_delivery"])},
        },
    ]


# --- the ramp ---------------------------------------------------------------------------


def _failure(step: dict[str, Any], bound_ms: float) -> str | None:
    """Why a step does not count as held, or None."""
    if not step["check"]["ok"]:
        return f"check failed: {step['check']}"
    if step["failed_connections"]:
        return f"{step['failed_connections']} connections failed"
    p99 = step["latency_ms"].get("p99")
    if p99 is None or p99 >= bound_ms:
        return f"p99 {p99} ms ≥ {bound_ms:g} ms"
    return None


async def ramp(args: argparse.Namespace, workdir: Path, db: str | None) -> dict[str, Any]:
    """One server; each step connects more clients (whole chats), runs a window, checks."""
    sizes = list(range(args.ramp_start, args.ramp_max + 1, args.ramp_step))
    data_dir = workdir / "parta"
    users = await asyncio.to_thread(
        loadtest_users, data_dir, db, sizes[-1], math.ceil(sizes[-1] / args.chat_size)
    )
    log_path = workdir / "server.log"
    steps: list[dict[str, Any]] = []
    stopped: str | None = None
    with log_path.open("w") as log, server_process(data_dir, db, log) as (pid, url):
        for number, clients in enumerate(sizes, 1):
            chats = users["chats"][: math.ceil(clients / args.chat_size)]
            step_args = argparse.Namespace(**{**vars(args), "clients": clients})
            label = f"step {number}/{len(sizes)} · "
            subset = {**users, "chats": chats}
            step = await measure(step_args, subset, db, pid, url, log_path, label)
            step.pop("server_log")
            steps.append(step)
            print(
                f"  {step['clients']:>6} clients: {step['deliveries_per_s']:>9} deliveries/s, "
                f"p50/p99 {step['latency_ms'].get('p50')} / {step['latency_ms'].get('p99')} ms, "
                f"server CPU {step['server_cpu_pct']}%, "
                f"{step['server_cpu_us_per_delivery']} µs/delivery, "
                f"load processes {' '.join(f'{x}%' for x in step['load_procs_cpu_pct'])}"
            )
            stopped = _failure(step, args.p99_ms)
            if stopped is not None:
                stopped = f"{step['clients']} clients: {stopped}"
                break
    held = [s for s in steps if _failure(s, args.p99_ms) is None]
    best = max(held, key=lambda s: s["deliveries_per_s"], default=None)
    return {
        "database": "postgresql" if db else "sqlite",
        "bound_p99_ms": args.p99_ms,
        "held": None if best is None else {
            "clients": best["clients"],
            "deliveries_per_s": best["deliveries_per_s"],
            "latency_ms": best["latency_ms"],
            "server_cpu_pct": best["server_cpu_pct"],
            "server_cpu_us_per_delivery": best["server_cpu_us_per_delivery"],
        },
        "stopped": stopped or "reached --ramp-max",
        "server_log": log_path.read_text(),
        "steps": steps,
    }  # fmt: skip


def ramp_summary(r: dict[str, Any]) -> dict[str, Any]:
    held = r["held"] or {}
    last = r["steps"][-1] if r["steps"] else {}
    return {
        "database": r["database"],
        "p99 bound (ms)": r["bound_p99_ms"],
        "most connections held": held.get("clients"),
        "deliveries per s held": held.get("deliveries_per_s"),
        "p99 there (ms)": held.get("latency_ms", {}).get("p99"),
        "server CPU there (% of a core)": held.get("server_cpu_pct"),
        "server CPU per delivery there (µs)": held.get("server_cpu_us_per_delivery"),
        "stopped at": r["stopped"],
        "load processes CPU at the last step (% of a core)": round(
            sum(last.get("load_procs_cpu_pct", [])), 1
        ),
    }


# --- entry --------------------------------------------------------------------------------


def _save(result: dict[str, Any], run_result: dict[str, Any], out: Path, html: bool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    # The server's log goes next to the results rather than into them.
    server_log = run_result.pop("server_log")
    if server_log.strip():
        run_result["server_log_file"] = str(out.with_suffix(".server.log"))
        out.with_suffix(".server.log").write_text(server_log)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    if html:
        print(f"report: {report.write([out], out.with_suffix('.html'))}")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    args.duration = args.duration or (15.0 if args.ramp else 60.0)
    async with fresh_database(args.db) as db:
        with tempfile.TemporaryDirectory(prefix="parta-bench-") as tmp:
            if args.ramp:
                run_result = await ramp(args, Path(tmp), db)
            else:
                run_result = await run(args, Path(tmp), db)
    params = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    params["procs"] = args.procs or os.cpu_count()
    scenario = "chat-ramp" if args.ramp else "chat-load"
    result: dict[str, Any] = {
        "scenario": scenario,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "params": params,
        "run": run_result,
    }
    if args.ramp:
        # Each client posts to chat_size - 1 others and itself.
        offered = args.chat_size / args.interval
        result["summary"] = ramp_summary(run_result)
        result["plots"] = ramp_plots(run_result["steps"], args.p99_ms, offered)
    else:
        result["summary"] = load_summary(run_result)
        result["plots"] = load_plots(run_result)
    out = args.out or RESULTS / f"{scenario}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    _save(result, run_result, out, not args.no_report)
    if args.ramp:
        for name, value in result["summary"].items():
            print(f"  {name}: {value}")
        print(f"results: {out}")
        if run_result["held"] is None:
            raise SystemExit(1)
        return result
    _print(result, out)
    if not run_result["check"]["ok"] or run_result["failed_connections"]:
        raise SystemExit(1)
    return result
