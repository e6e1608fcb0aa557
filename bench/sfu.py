"""``python -m bench sfu``: what forwarding costs the SFU workers, with synthetic peers.

The coordinator starts ``parta serve`` with N SFU workers and sets up lessons the way a
school's journal does: identities from ``parta loadtest-users``, a journal from ``parta
journals add``, a roster with one group per room (teacher and students), a timetable with
each group's lesson on now, every person linked to a load-test account, the lessons
scheduled and published (``School``). It spreads synthetic WebRTC peers
(``bench/rtc_peer.py``) over load processes: teachers (hosts, publishers) join first and make
their lessons live, then students; once every peer has DTLS up
and media arriving on every track it asked for, and a warm-up has let the layers settle,
the harness measures for ``--duration`` seconds:

* the SFU worker processes' own CPU time (``/proc/<pid>/stat``; the workers are the
  server's children whose command line holds ``sfu.worker``) per forwarded packet, where
  forwarded packets are those the subscribers received after SRTP unprotect plus those they
  found missing in the sequence numbers (what the SFU should have delivered);
* forwarded packets per second, loss (%) and RFC 3550 jitter (ms) at the subscribers;
* what each subscriber's video ran at, second by second (SSRCs stay fixed across layer
  switches, so the layer is read from the bitrate) and how often that changed;
* RSS of the workers, and the CPU of the load processes (if they saturate, the figures say
  more about the harness than about the SFU).

Scenarios: ``one-to-many`` (a simulcast publisher with audio, N subscribers), ``rooms``
(R rooms of P: one publisher and P-1 subscribers each), ``class`` (a teacher with camera and
microphone, students publishing audio only, everyone receiving the teacher). ``--ramp``
adds one-to-many subscribers step by step until loss passes 1%.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson

from bench.procstat import ProcSample, sample
from bench.profile import sampled, top_frames
from bench.rtc_peer import DEFAULT_BITRATES, LAYER_NAMES, layer_of
from protocol.client import http_request

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("one-to-many", "rooms", "class")


# --- processes ------------------------------------------------------------------------------


def _cli(data_dir: Path, *args: str) -> Any:
    """``parta <args> --json`` against ``data_dir``: its JSON output."""
    cmd = [sys.executable, "-m", "server", *args, "--json", "--data-dir", str(data_dir)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


class Server:
    """``parta serve`` with SFU workers; its log goes to a file."""

    def __init__(self, data_dir: Path, sfu_workers: int) -> None:
        self.log_path = data_dir / "server.log"
        self._log = self.log_path.open("w")
        cmd = [sys.executable, "-m", "server", "serve", "--port", "0", "--sfu-workers"]
        cmd += [str(sfu_workers), "--media-port", "0", "--data-dir", str(data_dir)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"parta serve did not start:\n{self.log()}")
        started = json.loads(line)
        self.url: str = started["url"]
        self.pid = self.process.pid
        self.workers = self._find_workers(sfu_workers)

    def _find_workers(self, count: int) -> list[int]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = sfu_worker_pids(self.pid)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise RuntimeError(f"expected {count} SFU workers, found {sfu_worker_pids(self.pid)}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def sfu_worker_pids(server_pid: int) -> list[int]:
    """The server's child processes whose command line contains ``sfu.worker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != server_pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if b"sfu.worker" in cmdline:
            found.append(int(entry))
    return sorted(found)


JOURNAL_ORIGIN = "https://journal.bench.invalid"


@dataclass
class Room:
    """One group of the roster and its lesson: the teacher hosts, the students attend."""

    teacher: dict[str, Any]  # account_id, token (from loadtest-users)
    students: list[dict[str, Any]]
    lesson_id: int = 0


class School:
    """The journal's side of the set-up: lessons can only be held where a journal put them.

    ``parta journals add`` gives the journal's API token and signing secret. The roster has
    one subject group per room (teacher ``t<r>``, students ``s<r>-<i>``), the timetable a
    lesson of each group that started five minutes ago, and every person is linked to a
    load-test account the way a browser does it (the journal's signed assertion, then the
    person's confirmation). Then each teacher's lesson is scheduled in the group's chat and
    published; it goes live when its host joins.
    """

    def __init__(self, data_dir: Path) -> None:
        made = _cli(
            data_dir, "journals", "add", "--region-code", "77", "--region-name", "Москва",
            "--name", "Нагрузочный журнал", "--link-url", f"{JOURNAL_ORIGIN}/link",
        )  # fmt: skip
        self.journal_id: str = made["journal_id"]
        self.token: str = made["api_token"]
        self.secret: str = made["signing_secret"]
        self.url = ""

    async def _api(self, method: str, path: str, body: object = None) -> Any:
        status, _, raw = await http_request(
            method,
            self.url + path,
            body=b"" if body is None else orjson.dumps(body),
            headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"},
        )
        answer = orjson.loads(raw) if raw else None
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

    async def _link(self, person: str, token: str) -> None:
        assertion = jwt.encode(
            {
                "iss": self.journal_id,
                "sub": person,
                "aud": "parta",
                "exp": int(time.time()) + 300,
                "jti": f"{person}-{time.monotonic_ns()}",
                "return_url": f"{JOURNAL_ORIGIN}/back",
            },
            self.secret,
            algorithm="HS256",
        )
        status, headers, body = await http_request(
            "GET", f"{self.url}/api/v1/link?assertion={assertion}"
        )
        if status != 303:
            raise RuntimeError(f"linking {person}: {status} {body[:200]!r}")
        pending = headers["location"].split("?")[0].rsplit("/", 1)[1]
        status, _, body = await http_request(
            "POST",
            f"{self.url}/api/v1/links/pending/{pending}/confirm",
            headers={"authorization": f"Bearer {token}"},
        )
        if not 200 <= status < 300:
            raise RuntimeError(f"confirming {person}: {status} {body[:200]!r}")

    async def open(self, url: str, rooms: list[Room]) -> None:
        self.url = url
        people = [("t", r, room.teacher) for r, room in enumerate(rooms)]
        people += [("s", r, s) for r, room in enumerate(rooms) for s in room.students]
        users = [
            {
                "id": f"t{r}" if kind == "t" else f"s{account['account_id']}",
                "role": "teacher" if kind == "t" else "student",
                "last_name": "Нагрузка",
                "first_name": f"Учитель {r}" if kind == "t" else f"Ученик {account['account_id']}",
            }
            for kind, r, account in people
        ]
        groups = [
            {
                "id": f"g{r}",
                "subject_id": "bench",
                "name": f"Группа {r}",
                "teacher_ids": [f"t{r}"],
                "student_ids": [f"s{s['account_id']}" for s in room.students],
            }
            for r, room in enumerate(rooms)
        ]
        school = {"id": "1", "name": "Школа нагрузки", "timezone": "UTC"}
        await self._api(
            "PUT",
            "/api/v1/roster",
            {"school": school, "subjects": [{"id": "bench", "name": "Нагрузка"}]}
            | {"groups": groups, "users": users},
        )
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        lessons = [
            {
                "id": f"lesson-{r}",
                "group_id": f"g{r}",
                "teacher_id": f"t{r}",
                "starts_at": (now - dt.timedelta(minutes=5)).isoformat(),
                "ends_at": (now + dt.timedelta(hours=6)).isoformat(),
            }
            for r in range(len(rooms))
        ]
        await self._api(
            "PUT",
            "/api/v1/schedule",
            {
                "school_id": "1",
                "from": (now - dt.timedelta(days=1)).date().isoformat(),
                "to": (now + dt.timedelta(days=1)).date().isoformat(),
                "lessons": lessons,
            },
        )
        gate = asyncio.Semaphore(16)

        async def link(user: dict[str, Any], account: dict[str, Any]) -> None:
            async with gate:
                await self._link(user["id"], account["token"])

        await asyncio.gather(
            *(link(u, account) for u, (_, _, account) in zip(users, people, strict=True))
        )
        for r, room in enumerate(rooms):
            chats = (await self._api("GET", f"/api/v1/users/t{r}/chats"))["chats"]
            [chat] = [c for c in chats if c["kind"] == "subject"]
            lesson = await self._api(
                "POST", f"/api/v1/chats/{chat['id']}/calls?as=t{r}", {"lesson_id": f"lesson-{r}"}
            )
            await self._api("POST", f"/api/v1/calls/{lesson['id']}/publish?as=t{r}")
            room.lesson_id = lesson["id"]


class LoadProcs:
    """Load processes (``python -m bench.rtc_peer``), JSON lines both ways."""

    def __init__(self, count: int, settings: dict[str, Any]) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        for _ in range(count):
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.rtc_peer"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self.procs.append(proc)
            self._send(proc, settings)
        self._next = 0

    @staticmethod
    def _send(proc: subprocess.Popen[str], data: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(data) + "\n")
        proc.stdin.flush()

    @staticmethod
    def _read(proc: subprocess.Popen[str]) -> dict[str, Any]:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("a load process died")
        result: dict[str, Any] = json.loads(line)
        return result

    def add(self, specs: list[dict[str, Any]]) -> dict[str, Any]:
        """Start peers, spread round-robin over the processes; wait until each is connected
        and receiving (or failed)."""
        shares: list[list[dict[str, Any]]] = [[] for _ in self.procs]
        for spec in specs:
            shares[self._next % len(self.procs)].append(spec)
            self._next += 1
        busy = [(proc, share) for proc, share in zip(self.procs, shares, strict=True) if share]
        for proc, share in busy:
            self._send(proc, {"cmd": "add", "peers": share})
        replies = [self._read(proc) for proc, _ in busy]
        return {
            "connected": sum(r["connected"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "errors": [e for r in replies for e in r["errors"]],
        }

    def snapshot(self) -> list[dict[str, Any]]:
        for proc in self.procs:
            self._send(proc, {"cmd": "snapshot"})
        return [self._read(proc) for proc in self.procs]

    def remb(self, names: list[str], bps: int) -> None:
        for proc in self.procs:
            self._send(proc, {"cmd": "remb", "names": names, "bps": bps})
        for proc in self.procs:
            self._read(proc)

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._send(proc, {"cmd": "stop"})
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


# --- who does what --------------------------------------------------------------------------


@dataclass
class Cast:
    """The peers of a scenario, publishers (started first) and subscribers."""

    publishers: list[dict[str, Any]] = field(default_factory=list)
    subscribers: list[dict[str, Any]] = field(default_factory=list)


def _layer(args: argparse.Namespace, index: int) -> str:
    return LAYER_NAMES[index % 3] if args.layer == "mixed" else str(args.layer)


def _shape(args: argparse.Namespace) -> tuple[int, int]:
    """(rooms, students per room) for the scenario."""
    if args.ramp:
        return 1, args.ramp_max
    if args.sfu_scenario == "one-to-many":
        return 1, args.subscribers
    if args.sfu_scenario == "rooms":
        return args.rooms, args.room_size - 1
    return 1, args.students


def rooms_of(args: argparse.Namespace, accounts: list[dict[str, Any]]) -> list[Room]:
    count, size = _shape(args)
    teachers, students = accounts[:count], accounts[count:]
    return [Room(teachers[r], students[r * size : (r + 1) * size]) for r in range(count)]


def cast(args: argparse.Namespace, rooms: list[Room]) -> Cast:
    video = "simulcast" if args.simulcast else "single"
    result = Cast()
    subscriber_no = 0
    for room_no, room in enumerate(rooms):
        host = room.teacher["account_id"]
        result.publishers.append(
            {
                "name": "teacher" if args.sfu_scenario == "class" else f"pub-{room_no}",
                "token": room.teacher["token"],
                "call_id": room.lesson_id,
                "publish": video,
            }
        )
        for i, student in enumerate(room.students):
            spec = {
                "name": f"student-{i}" if args.sfu_scenario == "class" else f"sub-{room_no}-{i}",
                "token": student["token"],
                "call_id": room.lesson_id,
                "subscribe_to": host,
                "layer": _layer(args, subscriber_no),
                "remb_bps": args.remb_bps,
            }
            if args.sfu_scenario == "class":
                spec.update(publish="audio", voice=False)
            result.subscribers.append(spec)
            subscriber_no += 1
    return result


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Window:
    """What one measured window saw."""

    subscribers: int
    duration_s: float
    forwarded_packets: int
    received_packets: int
    lost_packets: int
    forwarded_pps: float
    loss_pct: float
    published_pps: float
    worker_cpu_s: float
    worker_user_s: float
    worker_system_s: float
    worker_cpu_util: float  # cores
    cpu_us_per_forwarded_packet: float
    worker_rss_bytes: list[int]
    server_cpu_s: float
    load_cpu_util: float  # cores, all load processes together
    received_bps_per_subscriber: dict[str, float]
    video_bps_per_subscriber: dict[str, float]
    jitter_ms: dict[str, dict[str, float]]
    layers: dict[str, Any]
    publisher_events: dict[str, int]
    # name → video kbit/s, jitter, loss and the layer second by second (one letter each:
    # l, m, h, or - for nothing).
    per_subscriber: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Tracebacks in the server's log (its SFU workers log there) by the end of the window:
    # any at all makes the window suspect, since a worker's periodic timer may have died.
    server_tracebacks: int = 0
    notes: list[str] = field(default_factory=list)


def _streams(snapshots: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (peer["name"], stream["track_id"]): stream
        for snap in snapshots
        for peer in snap["peers"]
        for stream in peer["streams"]
    }


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered), 3),
        "p50": round(ordered[len(ordered) // 2], 3),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }


def _layers(
    streams: dict[tuple[str, str], dict[str, Any]], bitrates: tuple[int, ...]
) -> dict[str, Any]:
    """Layer per video stream and second, from its bitrate; switches between seconds."""
    switches = 0
    final: dict[str, int] = {}
    seen: dict[str, int] = {}
    for stream in streams.values():
        if stream["kind"] != "video":
            continue
        series = [layer_of(rate, bitrates) for rate in stream["rates_bps"]]
        # The first and last samples cover part-seconds around the snapshots: drop them.
        series = series[1:-1] or series
        switches += sum(1 for a, b in itertools.pairwise(series) if a != b)
        for layer in series:
            seen[layer] = seen.get(layer, 0) + 1
        if series:
            final[series[-1]] = final.get(series[-1], 0) + 1
    return {"switches": switches, "seconds_per_layer": seen, "at_end": final}


def measure(
    procs: LoadProcs,
    server: Server,
    duration: float,
    args: argparse.Namespace,
    profile: Path | None = None,
    squeeze: list[str] | None = None,
) -> Window:
    """One window of ``duration`` seconds: CPU of the SFU workers against what arrived."""
    workers = server.workers
    with contextlib.ExitStack() as stack:
        for index, pid in enumerate(workers):
            target = None if profile is None else profile.with_suffix(f".worker{index}.txt")
            stack.enter_context(sampled(pid, target))
        if profile is not None:
            time.sleep(1.0)  # let py-spy attach before the window opens
        cpu_start = [sample(pid) for pid in workers]
        server_start = sample(server.pid)
        t0 = time.monotonic()
        start = procs.snapshot()
        if squeeze:
            time.sleep(duration / 2)
            procs.remb(squeeze, args.squeeze_bps)
            time.sleep(duration / 2)
        else:
            time.sleep(duration)
        cpu_end = [sample(pid) for pid in workers]
        server_end = sample(server.pid)
        elapsed = time.monotonic() - t0
        end = procs.snapshot()
    tracebacks = server.log().count("Traceback")
    if profile is not None:
        for index in range(len(workers)):
            path = profile.with_suffix(f".worker{index}.txt")
            if path.exists():
                print(f"  SFU worker {index} profile (self time): {path}")
                for frame, share in top_frames(path, 15):
                    print(f"    {share:6.1%}  {frame}")
    window = _window(start, end, cpu_start, cpu_end, server_start, server_end, elapsed, args)
    window.server_tracebacks = tracebacks
    if tracebacks:
        window.notes.append(
            f"INVALID: the server logged {tracebacks} traceback(s) by the end of this window"
        )
    return window


def _window(
    start: list[dict[str, Any]],
    end: list[dict[str, Any]],
    cpu_start: list[ProcSample],
    cpu_end: list[ProcSample],
    server_start: ProcSample,
    server_end: ProcSample,
    elapsed: float,
    args: argparse.Namespace,
) -> Window:
    before, after = _streams(start), _streams(end)
    received = lost = expected = 0
    per_subscriber: dict[str, float] = {}
    video_per_subscriber: dict[str, float] = {}
    jitter: dict[str, list[float]] = {"audio": [], "video": []}
    details: dict[str, dict[str, Any]] = {}
    for key, stream in after.items():
        prior = before.get(key, {"packets": 0, "bytes": 0, "expected": 0})
        got = stream["packets"] - prior["packets"]
        wanted = stream["expected"] - prior["expected"]
        received += got
        expected += wanted
        lost += max(0, wanted - got)
        rate = (stream["bytes"] - prior["bytes"]) * 8 / elapsed
        per_subscriber[key[0]] = per_subscriber.get(key[0], 0.0) + rate
        if stream["kind"] == "video":
            video_per_subscriber[key[0]] = rate
        jitter[stream["kind"]].append(stream["jitter_ms"])
        detail = details.setdefault(key[0], {"lost": 0})
        detail["lost"] += max(0, wanted - got)
        detail[f"{stream['kind']}_jitter_ms"] = stream["jitter_ms"]
        if stream["kind"] == "video":
            detail["video_kbps"] = round(rate / 1000, 1)
            detail["layers"] = "".join(
                layer_of(r, tuple(args.bitrates))[0].replace("o", "-") for r in stream["rates_bps"]
            )
    peers_before = {p["name"]: p for s in start for p in s["peers"]}
    peers_after = [p for s in end for p in s["peers"]]
    events = {"published_packets": 0, "plis_received": 0, "nacks_received": 0}
    events |= {"retransmitted": 0, "resends_limited": 0, "keyframes": 0, "plis_sent": 0}
    events |= {"overruns": 0, "send_drops": 0, "dropped_on_purpose": 0}
    for peer in peers_after:
        prior = peers_before.get(peer["name"], {})
        events["published_packets"] += peer["sent_packets"] - prior.get("sent_packets", 0)
        for event in list(events)[1:]:
            events[event] += peer[event] - prior.get(event, 0)
    user = sum(e.user_s - s.user_s for s, e in zip(cpu_start, cpu_end, strict=True))
    system = sum(e.system_s - s.system_s for s, e in zip(cpu_start, cpu_end, strict=True))
    forwarded = received + lost
    load_cpu = sum(e["cpu_s"] for e in end) - sum(s["cpu_s"] for s in start)
    notes = []
    load_util = load_cpu / elapsed
    if load_util > 0.9 * len(end):
        notes.append("load processes near 100% CPU: the harness may limit the result")
    return Window(
        subscribers=len({key[0] for key in after}),
        duration_s=round(elapsed, 3),
        forwarded_packets=forwarded,
        received_packets=received,
        lost_packets=lost,
        forwarded_pps=round(forwarded / elapsed, 1),
        loss_pct=round(100 * lost / max(expected, 1), 4),
        published_pps=round(events["published_packets"] / elapsed, 1),
        worker_cpu_s=round(user + system, 3),
        worker_user_s=round(user, 3),
        worker_system_s=round(system, 3),
        worker_cpu_util=round((user + system) / elapsed, 3),
        cpu_us_per_forwarded_packet=round((user + system) / max(forwarded, 1) * 1e6, 3),
        worker_rss_bytes=[s.rss_bytes for s in cpu_end],
        server_cpu_s=round(server_end.cpu_s - server_start.cpu_s, 3),
        load_cpu_util=round(load_util, 3),
        received_bps_per_subscriber=_stats(list(per_subscriber.values())),
        video_bps_per_subscriber=_stats(list(video_per_subscriber.values())),
        jitter_ms={kind: _stats(values) for kind, values in jitter.items() if values},
        layers=_layers(after, tuple(args.bitrates)),
        publisher_events=events,
        per_subscriber=details,
        notes=notes,
    )


# --- running a scenario ---------------------------------------------------------------------


@contextlib.contextmanager
def running(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[Server, list[Room]]]:
    data_dir = workdir / "parta"
    data_dir.mkdir(parents=True, exist_ok=True)
    count, size = _shape(args)
    accounts = _cli(data_dir, "loadtest-users", "--count", str(count * (size + 1)))["users"]
    rooms = rooms_of(args, accounts)
    school = School(data_dir)
    server = Server(data_dir, args.sfu_workers)
    try:
        asyncio.run(school.open(server.url, rooms))
        yield server, rooms
    finally:
        server.stop()
        log = server.log()
        if "Traceback" in log:
            kept = RESULTS / f"sfu-server-{time.strftime('%Y%m%d-%H%M%S')}.log"
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(log)
            print(f"warning: the server logged {log.count('Traceback')} tracebacks: {kept}")


def _settings(args: argparse.Namespace, url: str) -> dict[str, Any]:
    return {
        "url": url,
        "bitrates": list(args.bitrates),
        "twcc": args.twcc,
        "pli_on_loss": True,
        "sender_reports": args.sender_reports,
        "uplink_loss": args.uplink_loss / 100,
    }


def _check_setup(setup: dict[str, Any], what: str) -> None:
    print(f"  {what}: {setup['connected']} connected, {setup['failed']} failed")
    for error in setup["errors"][:5]:
        print(f"    {error}")


def run_scenario(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with running(args, workdir) as (server, rooms):
        plan = cast(args, rooms)
        procs = LoadProcs(args.procs, _settings(args, server.url))
        try:
            publishers = procs.add(plan.publishers)
            _check_setup(publishers, "publishers")
            subscribers = procs.add(plan.subscribers)
            _check_setup(subscribers, "subscribers")
            time.sleep(args.warmup)
            squeeze = None
            if args.squeeze_bps:
                squeeze = [s["name"] for s in plan.subscribers[::3]]
            window = measure(procs, server, args.duration, args, args.profile, squeeze)
        finally:
            procs.stop()
        return {
            "setup": {
                "sfu_workers": len(server.workers),
                "publishers": publishers,
                "subscribers": subscribers,
            },
            "window": asdict(window),
        }


def run_ramp(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One-to-many with more subscribers each step, until loss passes 1%."""
    with running(args, workdir) as (server, rooms):
        plan = cast(args, rooms)
        procs = LoadProcs(args.procs, _settings(args, server.url))
        steps: list[dict[str, Any]] = []
        try:
            _check_setup(procs.add(plan.publishers), "publisher")
            added = 0
            while added < len(plan.subscribers):
                size = args.ramp_start if not added and args.ramp_start else args.ramp_step
                batch = plan.subscribers[added : added + size]
                setup = procs.add(batch)
                added += len(batch)
                time.sleep(args.warmup)
                window = measure(procs, server, args.duration, args)
                steps.append({"setup": setup, "window": asdict(window)})
                print(
                    f"  {added:4d} subscribers: {window.forwarded_pps:9.0f} pkt/s, "
                    f"loss {window.loss_pct:.3f}%, "
                    f"{window.cpu_us_per_forwarded_packet:.2f} µs/pkt, "
                    f"worker {window.worker_cpu_util:.0%} of a core, "
                    f"load {window.load_cpu_util:.0%}"
                )
                if setup["failed"] or window.loss_pct > 1.0 or window.server_tracebacks:
                    break
        finally:
            procs.stop()
    good = [
        s
        for s in steps
        if s["window"]["loss_pct"] <= 1.0
        and not s["setup"]["failed"]
        and not s["window"]["server_tracebacks"]
    ]
    best = max(good, key=lambda s: s["window"]["forwarded_pps"], default=None)
    return {"steps": steps, "best": best["window"] if best else None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Not ``scenario``: that dest names the harness (``chat``, ``sfu``) in ``python -m bench``.
    parser.add_argument("--scenario", dest="sfu_scenario", choices=SCENARIOS, default="one-to-many")
    parser.add_argument("--subscribers", type=int, default=50, help="one-to-many: N")
    parser.add_argument("--rooms", type=int, default=10, help="rooms: R")
    parser.add_argument("--room-size", type=int, default=10, help="rooms: P people per room")
    parser.add_argument("--students", type=int, default=29, help="class: students")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--procs", type=int, default=2, help="load processes")
    parser.add_argument("--sfu-workers", type=int, default=1, help="SFU worker processes")
    parser.add_argument(
        "--layer",
        choices=[*LAYER_NAMES, "mixed"],
        default="high",
        help="what subscribers ask for with call.layer (mixed: low/medium/high in turn)",
    )
    parser.add_argument(
        "--bitrates",
        type=lambda text: [int(x) for x in text.split(",")],
        default=list(DEFAULT_BITRATES),
        help="simulcast layer bitrates q,h,f in bit/s",
    )
    parser.add_argument(
        "--no-simulcast", dest="simulcast", action="store_false", help="one video stream"
    )
    parser.add_argument(
        "--no-twcc",
        dest="twcc",
        action="store_false",
        help="subscribers send no transport-cc feedback",
    )
    parser.add_argument(
        "--remb-bps", type=int, default=0, help="subscribers also send REMB with this bitrate"
    )
    parser.add_argument(
        "--no-sender-reports",
        dest="sender_reports",
        action="store_false",
        help="publishers send no RTCP sender reports (works around a worker timer crash)",
    )
    parser.add_argument(
        "--squeeze-bps",
        type=int,
        default=0,
        help="halfway through the window, every third subscriber sends REMB with this bitrate",
    )
    parser.add_argument(
        "--uplink-loss",
        type=float,
        default=0.0,
        help="publishers drop this %% of their packets before sending (NACKs recover them)",
    )
    parser.add_argument("--ramp", action="store_true", help="one-to-many, step by step")
    parser.add_argument("--ramp-start", type=int, default=0, help="subscribers of the first step")
    parser.add_argument("--ramp-step", type=int, default=25, help="subscribers added per step")
    parser.add_argument("--ramp-max", type=int, default=400, help="subscribers at most")
    parser.add_argument("--out", type=Path, help="JSON results file (default bench/results/…)")
    parser.add_argument(
        "--profile", type=Path, help="sample the SFU workers with py-spy into PROFILE.workerN.txt"
    )


def _summary(result: dict[str, Any]) -> None:
    window = result.get("window") or (result.get("ramp") or {}).get("best")
    if window is None:
        print("no window with loss ≤ 1%")
        return
    jitter = window["jitter_ms"]
    print(
        f"  {window['subscribers']} subscribers, {window['duration_s']:.1f} s: "
        f"{window['forwarded_pps']:.0f} forwarded pkt/s (publishers {window['published_pps']:.0f}),"
        f" loss {window['loss_pct']:.3f}%"
    )
    print(
        f"  SFU worker CPU: {window['cpu_us_per_forwarded_packet']:.2f} µs per forwarded packet "
        f"({window['worker_cpu_util']:.0%} of a core; user {window['worker_user_s']} s, "
        f"system {window['worker_system_s']} s), RSS "
        f"{', '.join(f'{r / 2**20:.1f} MiB' for r in window['worker_rss_bytes'])}"
    )
    print(
        f"  jitter ms: video {jitter.get('video', {})}, audio {jitter.get('audio', {})}; "
        f"video kbit/s per subscriber {_kbps(window['video_bps_per_subscriber'])}"
    )
    print(
        f"  layers: {window['layers']}; load processes {window['load_cpu_util']:.0%} CPU; "
        f"publisher events {window['publisher_events']}"
    )
    for note in window["notes"]:
        print(f"  note: {note}")


def _kbps(stats: dict[str, float]) -> dict[str, float]:
    return {k: round(v / 1000, 1) for k, v in stats.items()}


def main(args: argparse.Namespace) -> dict[str, Any]:
    name = "ramp" if args.ramp else args.sfu_scenario
    if args.ramp:
        args.sfu_scenario = "one-to-many"
    with tempfile.TemporaryDirectory(prefix="parta-bench-sfu-") as tmp:
        if args.ramp:
            outcome: dict[str, Any] = {"ramp": run_ramp(args, Path(tmp))}
        else:
            outcome = run_scenario(args, Path(tmp))
    result: dict[str, Any] = {
        "scenario": f"sfu-{name}",
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        **outcome,
    }
    out = args.out or RESULTS / f"sfu-{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"sfu {name}:")
    _summary(result)
    print(f"results: {out}")
    return result
