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

Scenarios: ``one-to-many`` (a simulcast publisher with audio, N subscribers; with
``--layer mixed``, "1 → N simulcast with mixed tile sizes": subscribers ask for low, medium
and high in turn, as tiles of different sizes would), ``rooms`` (R rooms of P: one publisher
and P-1 subscribers each), ``class`` (a teacher with camera and microphone, students
publishing audio only, everyone receiving the teacher), ``breakout`` (a class whose teacher,
the host, opens breakout rooms through the call protocol with a random balanced assignment;
students publish camera and microphone and, following the server's ``call.tracks`` on the
same connection, receive the teacher in the main room and everyone in their room while rooms
run; the window is taken while they run, every packet's sender is checked against the rooms,
then the rooms close and everyone must receive the teacher again). ``--ramp`` adds
one-to-many subscribers step by step until loss passes 1%.

Each window is sampled every second (forwarded packets, worker CPU, loss); the results JSON
carries a ``summary`` of headline figures and ``plots`` (the schema ``bench/report.py``
renders), and the HTML report is written next to it. A progress line goes to stderr
(``bench/progress.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jwt
import orjson

from bench import cores, machine, report
from bench.baselines import janus
from bench.procstat import ProcSample, sample
from bench.profile import sampled, top_frames
from bench.progress import Progress
from bench.rtc_peer import DEFAULT_BITRATES, LAYER_NAMES, layer_of
from protocol.client import http_request

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SCENARIOS = ("one-to-many", "rooms", "class", "breakout")
SETTLE_TIMEOUT_S = 60.0  # for every peer to follow a change of rooms

progress = Progress()


def say(text: str) -> None:
    """A line on stdout, after the progress line rather than through it."""
    progress.done()
    print(text, flush=True)


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
    """Load processes (``python -m bench.rtc_peer``), JSON lines both ways. A thread per
    process reads its lines into one queue, so that the progress of all of them shows as it
    comes; every command gets one answer from each process it went to."""

    def __init__(self, count: int, settings: dict[str, Any]) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self._lines: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
        for index in range(count):
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.rtc_peer"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(index, proc), daemon=True).start()
            self._send(index, settings)
        self._next = 0
        self.where: dict[str, int] = {}  # peer name → its process
        self.peers = 0

    def _send(self, index: int, data: dict[str, Any]) -> None:
        stdin = self.procs[index].stdin
        assert stdin is not None
        stdin.write(json.dumps(data) + "\n")
        stdin.flush()

    def _read(self, index: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._lines.put((index, json.loads(line)))
        self._lines.put((index, None))

    def _answers(
        self, indices: list[int], started: Callable[[int], None] | None = None
    ) -> list[Any]:
        """One answer from each of ``indices``, in that order; ``started`` hears the peers
        started so far by all of them together."""
        answers: dict[int, dict[str, Any]] = {}
        counts = dict.fromkeys(indices, 0)
        while len(answers) < len(indices):
            index, message = self._lines.get()
            if message is None:
                raise RuntimeError("a load process died")
            if message["event"] == "progress":
                counts[index] = message["started"]
                if started is not None:
                    started(sum(counts.values()))
            else:
                answers[index] = message
        return [answers[i] for i in indices]

    def add(self, specs: list[dict[str, Any]]) -> dict[str, Any]:
        """Start peers, spread round-robin over the processes; wait until each is connected
        and receiving (or failed)."""
        shares: list[list[dict[str, Any]]] = [[] for _ in self.procs]
        for spec in specs:
            index = self._next % len(self.procs)
            shares[index].append(spec)
            self.where[spec["name"]] = index
            self._next += 1
        busy = [index for index, share in enumerate(shares) if share]
        for index in busy:
            self._send(index, {"cmd": "add", "peers": shares[index]})
        before = self.peers

        def started(count: int) -> None:
            progress.update(f"  connecting: {before + count}/{before + len(specs)} peers")

        replies = self._answers(busy, started)
        self.peers += len(specs)
        return {
            "connected": sum(r["connected"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "errors": [e for r in replies for e in r["errors"]],
        }

    def _all(self, command: dict[str, Any]) -> list[Any]:
        for index in range(len(self.procs)):
            self._send(index, command)
        return self._answers(list(range(len(self.procs))))

    def snapshot(self) -> list[dict[str, Any]]:
        return self._all({"cmd": "snapshot"})

    def remb(self, names: list[str], bps: int) -> None:
        self._all({"cmd": "remb", "names": names, "bps": bps})

    def breakout(self, host: str, names: list[str] | None) -> dict[int, int]:
        """The host peer opens (``names``) or closes breakout rooms: account → room."""
        index = self.where[host]
        self._send(index, {"cmd": "breakout", "host": host, "names": names})
        [answer] = self._answers([index])
        return {int(account): room for account, room in answer["rooms"].items()}

    def stop(self) -> None:
        for index in range(len(self.procs)):
            with contextlib.suppress(BrokenPipeError, OSError):
                self._send(index, {"cmd": "stop"})
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
    """What subscriber ``index`` asks for: with ``mixed``, low, medium and high in turn, as
    thumbnails, tiles and a large stage would."""
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
    """Who does what. In a class the students' microphones are on but quiet; in a breakout
    class they also publish their cameras as the web client does (simulcast unless
    ``--no-simulcast``) and follow ``call.tracks``: the teacher on the stage in the main room,
    a grid of everyone at ``--grid-layer`` in a breakout room."""
    video = "simulcast" if args.simulcast else "single"
    lesson = args.sfu_scenario in ("class", "breakout")
    result = Cast()
    subscriber_no = 0
    for room_no, room in enumerate(rooms):
        host = room.teacher["account_id"]
        result.publishers.append(
            {
                "name": "teacher" if lesson else f"pub-{room_no}",
                "token": room.teacher["token"],
                "call_id": room.lesson_id,
                "publish": video,
            }
        )
        for i, student in enumerate(room.students):
            spec = {
                "name": f"student-{i}" if lesson else f"sub-{room_no}-{i}",
                "token": student["token"],
                "call_id": room.lesson_id,
                "subscribe_to": host,
                "layer": _layer(args, subscriber_no),
                "remb_bps": args.remb_bps,
            }
            if args.sfu_scenario == "class":
                spec.update(publish="audio", voice=False)
            elif args.sfu_scenario == "breakout":
                spec.update(publish=video, voice=False, follow=True, grid_layer=args.grid_layer)
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
    # name → video kbit/s, jitter, loss and the layer of each video stream second by second
    # (one letter a second: l, m, h, or - for nothing; streams separated by spaces).
    per_subscriber: dict[str, dict[str, Any]] = field(default_factory=dict)
    # One entry a second: t (s), forwarded_pps, cpu_us_per_packet, worker_cpu_util, loss_pct.
    timeline: list[dict[str, float]] = field(default_factory=list)
    # name → {sender's account: packets}: whom each peer really received from (see
    # ``senders``).
    senders: dict[str, dict[str, int]] = field(default_factory=dict)
    # Tracebacks in the server's log (its SFU workers log there) by the end of the window:
    # any at all makes the window suspect, since a worker's periodic timer may have died.
    server_tracebacks: int = 0
    # The cores each SFU process was allowed to run on while measured.
    sfu_cores: list[list[int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


StreamKey = tuple[str, int]  # peer name, SSRC (a track received again gets a new SSRC)


def _streams(snapshots: list[dict[str, Any]]) -> dict[StreamKey, dict[str, Any]]:
    return {
        (peer["name"], stream["ssrc"]): stream
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


def _layer_series(stream: dict[str, Any], bitrates: tuple[int, ...]) -> list[str]:
    """The layer a video stream ran at, second by second (from its bitrate). The first and
    last samples cover part-seconds around the snapshots: dropped."""
    series = [layer_of(rate, bitrates) for rate in stream["rates_bps"]]
    return series[1:-1] or series


def _layers(streams: list[dict[str, Any]], bitrates: tuple[int, ...]) -> dict[str, Any]:
    """Seconds per layer and switches between seconds over the video streams."""
    switches = 0
    final: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for stream in streams:
        series = _layer_series(stream, bitrates)
        switches += sum(1 for a, b in itertools.pairwise(series) if a != b)
        seen.update(series)
        if series:
            final[series[-1]] += 1
    return {"switches": switches, "seconds_per_layer": dict(seen), "at_end": dict(final)}


def _totals(snapshots: list[dict[str, Any]]) -> tuple[int, int]:
    """Packets received and expected (by sequence numbers) over every stream."""
    received = expected = 0
    for stream in _streams(snapshots).values():
        received += stream["packets"]
        expected += stream["expected"]
    return received, expected


class Sampler:
    """Snapshots of the load processes and the workers' CPU, once a second: the timeline of a
    window, and each stream's per-second rates (a snapshot hands them over only once)."""

    def __init__(self, procs: LoadProcs, workers: list[int]) -> None:
        self.procs = procs
        self.workers = workers
        self.rates: dict[StreamKey, list[int]] = {}
        self.timeline: list[dict[str, float]] = []
        self.cpu, self.at, self.snap = self._take()
        self.t0 = self.at
        self._received, self._expected = _totals(self.snap)

    def _take(self) -> tuple[list[ProcSample], float, list[dict[str, Any]]]:
        cpu = [sample(pid) for pid in self.workers]
        at = time.monotonic()
        return cpu, at, self.procs.snapshot()

    def tick(self) -> dict[str, float]:
        cpu, at, snap = self._take()
        for key, stream in _streams(snap).items():
            self.rates.setdefault(key, []).extend(stream["rates_bps"])
        received, expected = _totals(snap)
        got, wanted = received - self._received, expected - self._expected
        forwarded = max(got, wanted)
        spent = sum(e.cpu_s - s.cpu_s for s, e in zip(self.cpu, cpu, strict=True))
        elapsed = at - self.at
        point = {
            "t": round(at - self.t0, 2),
            "forwarded_pps": round(forwarded / elapsed, 1),
            "cpu_us_per_packet": round(spent / forwarded * 1e6, 2) if forwarded else 0.0,
            "worker_cpu_util": round(spent / elapsed, 3),
            "loss_pct": round(100 * max(0, wanted - got) / wanted, 3) if wanted else 0.0,
        }
        self.timeline.append(point)
        self.cpu, self.at, self.snap = cpu, at, snap
        self._received, self._expected = received, expected
        return point

    def end(self) -> list[dict[str, Any]]:
        """The last snapshot, its streams carrying every rate sampled since the first."""
        for key, stream in _streams(self.snap).items():
            stream["rates_bps"] = self.rates.get(key, [])
        return self.snap


class Measured(Protocol):
    """What ``measure`` reads of a media server (``Server``, or a baseline such as Janus):
    its process, the processes whose CPU counts as forwarding, and its log."""

    pid: int
    workers: list[int]

    def log(self) -> str: ...


def pin_sfu(server: Measured, args: argparse.Namespace) -> None:
    """The SFU's processes onto their own cores, when ``main`` set cores apart for them."""
    if args.cores is not None:
        for pid in server.workers:
            cores.pin(pid, args.cores.sfu)


def measure(
    procs: LoadProcs,
    server: Measured,
    duration: float,
    args: argparse.Namespace,
    profile: Path | None = None,
    squeeze: list[str] | None = None,
) -> Window:
    """One window of ``duration`` seconds: CPU of the SFU workers against what arrived."""
    workers = server.workers
    pin_sfu(server, args)  # again: threads made since it started
    sfu_cores = [sorted(os.sched_getaffinity(pid)) for pid in workers]
    with contextlib.ExitStack() as stack:
        for index, pid in enumerate(workers):
            target = None if profile is None else profile.with_suffix(f".worker{index}.txt")
            stack.enter_context(sampled(pid, target))
        if profile is not None:
            time.sleep(1.0)  # let py-spy attach before the window opens
        server_start = sample(server.pid)
        sampler = Sampler(procs, workers)
        cpu_start, start = sampler.cpu, sampler.snap
        while (left := duration - (time.monotonic() - sampler.t0)) > 0.05:
            time.sleep(min(1.0, left))
            if squeeze and time.monotonic() - sampler.t0 >= duration / 2:
                procs.remb(squeeze, args.squeeze_bps)
                squeeze = None
            point = sampler.tick()
            progress.update(
                f"  window: {max(0.0, duration - point['t']):.0f} s left, "
                f"{point['forwarded_pps']:,.0f} pkt/s, {point['cpu_us_per_packet']:.1f} µs/pkt, "
                f"loss {point['loss_pct']:.2f}%"
            )
        server_end = sample(server.pid)
        end = sampler.end()
    progress.done()
    tracebacks = server.log().count("Traceback")
    if profile is not None:
        for index in range(len(workers)):
            path = profile.with_suffix(f".worker{index}.txt")
            if path.exists():
                say(f"  SFU worker {index} profile (self time): {path}")
                for frame, share in top_frames(path, 15):
                    say(f"    {share:6.1%}  {frame}")
    window = _window(
        start, end, cpu_start, sampler.cpu, server_start, server_end, sampler.at - sampler.t0, args
    )
    window.timeline = sampler.timeline
    window.senders = senders(start, end)
    window.server_tracebacks = tracebacks
    window.sfu_cores = sfu_cores
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
    """The window's figures; only streams that received packets in it count (a breakout
    peer's streams of the main room are still in the snapshots, silent)."""
    before, after = _streams(start), _streams(end)
    received = lost = expected = 0
    per_subscriber: dict[str, float] = {}
    video_per_subscriber: dict[str, float] = {}
    jitter: dict[str, list[float]] = {"audio": [], "video": []}
    details: dict[str, dict[str, Any]] = {}
    video: list[dict[str, Any]] = []
    bitrates = tuple(args.bitrates)
    for (name, _), stream in after.items():
        prior = before.get((name, stream["ssrc"]), {"packets": 0, "bytes": 0, "expected": 0})
        got = stream["packets"] - prior["packets"]
        wanted = stream["expected"] - prior["expected"]
        if not got and not wanted:
            continue
        received += got
        expected += wanted
        lost += max(0, wanted - got)
        rate = (stream["bytes"] - prior["bytes"]) * 8 / elapsed
        per_subscriber[name] = per_subscriber.get(name, 0.0) + rate
        jitter[stream["kind"]].append(stream["jitter_ms"])
        detail = details.setdefault(name, {"lost": 0})
        detail["lost"] += max(0, wanted - got)
        detail[f"{stream['kind']}_jitter_ms"] = stream["jitter_ms"]
        if stream["kind"] == "video":
            video.append(stream)
            video_per_subscriber[name] = video_per_subscriber.get(name, 0.0) + rate
            detail["video_kbps"] = round(video_per_subscriber[name] / 1000, 1)
            layers = "".join(x[0].replace("o", "-") for x in _layer_series(stream, bitrates))
            detail["layers"] = f"{detail['layers']} {layers}" if "layers" in detail else layers
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
    if events["overruns"]:
        notes.append(
            f"SUSPECT: publishers' pacers stalled {events['overruns']} times for over 0.25 s "
            "(the machine or the load processes fell behind): loss, jitter and layers show "
            "the stalls"
        )
    return Window(
        subscribers=len(details),
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
        layers=_layers(video, bitrates),
        publisher_events=events,
        per_subscriber=details,
        notes=notes,
    )


def senders(start: list[dict[str, Any]], end: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per peer that received anything between two snapshots: the packets it got from each
    sender (the account id at the end of every payload), whichever stream (or none: an SSRC
    it does not know) they arrived on."""
    before = {p["name"]: p for s in start for p in s["peers"]}
    found: dict[str, dict[str, int]] = {}
    for peer in (p for s in end for p in s["peers"]):
        prior = before.get(peer["name"], {"streams": [], "unknown_sources": {}})
        prior_streams = {s["ssrc"]: s["sources"] for s in prior["streams"]}
        got: Counter[int] = Counter()
        for stream in peer["streams"]:
            old = prior_streams.get(stream["ssrc"], {})
            for sender, count in stream["sources"].items():
                got[int(sender)] += count - old.get(sender, 0)
        for sender, count in peer["unknown_sources"].items():
            got[int(sender)] += count - prior["unknown_sources"].get(sender, 0)
        got = +got  # drop zeros
        if got:
            found[peer["name"]] = {str(sender): count for sender, count in sorted(got.items())}
    return found


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
    pin_sfu(server, args)
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
            say(f"warning: the server logged {log.count('Traceback')} tracebacks: {kept}")


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
    say(f"  {what}: {setup['connected']} connected, {setup['failed']} failed")
    for error in setup["errors"][:5]:
        say(f"    {error}")


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
            "requested_layers": {s["name"]: s["layer"] for s in plan.subscribers},
            "window": asdict(window),
        }


def _receives(peer: dict[str, Any], sources: set[int]) -> bool:
    """Settled: nothing left to renegotiate, and audio and video from exactly ``sources``
    (as signalled), each flowing."""
    active = [s for s in peer["streams"] if s["active"]]
    wanted = {(account, kind) for account in sources for kind in ("audio", "video")}
    return (
        not peer["settling"]
        and {(s["source"], s["kind"]) for s in active} == wanted
        and len(active) == len(wanted)
        and all(s["packets"] for s in active)
    )


def settle(
    procs: LoadProcs, expect: dict[str, set[int]], what: str, since: float
) -> tuple[float | None, list[str]]:
    """Wait until each peer named in ``expect`` receives exactly from its accounts: the
    seconds from ``since`` (monotonic) until the first look that found them all so, to
    0.1 s or so (None after SETTLE_TIMEOUT_S), and the peers still not there."""
    while True:
        peers = [p for s in procs.snapshot() for p in s["peers"] if p["name"] in expect]
        late = sorted(p["name"] for p in peers if not _receives(p, expect[p["name"]]))
        late += sorted(set(expect) - {p["name"] for p in peers})
        elapsed = time.monotonic() - since
        progress.update(f"  {what}: {len(expect) - len(late)}/{len(expect)} peers")
        if not late or elapsed > SETTLE_TIMEOUT_S:
            progress.done()
            return (None if late else round(elapsed, 2)), late
        time.sleep(0.1)


def isolation(
    received: dict[str, dict[str, int]], accounts: dict[str, int], rooms: dict[int, int]
) -> dict[str, Any]:
    """What each student (name → account) received, by sender (``Window.senders``), against
    the rooms (account → room): packets from anyone outside its room (must be 0) and room
    mates it heard nothing from (must be none)."""
    cross = 0
    offenders: list[str] = []
    silent: list[str] = []
    for name, account in sorted(accounts.items()):
        got = {int(s): n for s, n in received.get(name, {}).items()}
        mine = rooms.get(account)
        for sender, count in sorted(got.items()):
            if rooms.get(sender) != mine:
                cross += count
                offenders.append(
                    f"{name} (room {mine}) got {count} packets from {sender} "
                    f"(room {rooms.get(sender)})"
                )
        mates = {a for a, room in rooms.items() if room == mine and a != account}
        silent += [f"{name} heard nothing from {a}" for a in sorted(mates - set(got))]
    return {
        "cross_room_packets": cross,
        "cross_room": offenders[:20],
        "silent_room_mates": len(silent),
        "silent": silent[:20],
    }


def run_breakout(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """A class in breakout rooms: the host opens them (random, balanced); the window is taken
    while they run; then they close and everyone must receive the teacher again."""
    with running(args, workdir) as (server, rooms):
        plan = cast(args, rooms)
        teacher = rooms[0].teacher["account_id"]
        procs = LoadProcs(args.procs, _settings(args, server.url))
        try:
            publishers = procs.add(plan.publishers)
            _check_setup(publishers, "teacher")
            subscribers = procs.add(plan.subscribers)
            _check_setup(subscribers, "students")
            accounts = {
                p["name"]: p["account_id"]
                for s in procs.snapshot()
                for p in s["peers"]
                if p["name"] != "teacher"
            }
            names = [f"Комната {i + 1}" for i in range(args.breakout_rooms)]
            opened_at = time.monotonic()
            where = procs.breakout("teacher", names)
            sizes = Counter(where[a] for a in accounts.values())
            say(f"  rooms open: {dict(sorted(sizes.items()))} students per room")
            mates = {
                name: {a for a in accounts.values() if a != account and where[a] == where[account]}
                for name, account in accounts.items()
            }
            into_s, late_in = settle(procs, mates, "following into the rooms", opened_at)
            time.sleep(args.warmup)
            window = measure(procs, server, args.duration, args, args.profile)
            inside = isolation(window.senders, accounts, where)
            say(
                f"  in the rooms: {inside['cross_room_packets']} packets from other rooms, "
                f"{inside['silent_room_mates']} silent room mates"
            )
            closed_at = time.monotonic()
            back = procs.breakout("teacher", None)
            teacher_only = {name: {teacher} for name in accounts}
            back_s, late_back = settle(procs, teacher_only, "back to the teacher", closed_at)
            after = measure(procs, server, min(args.duration, 5.0), args)
            offers = [
                p["offers"] for s in procs.snapshot() for p in s["peers"] if p["name"] in accounts
            ]
        finally:
            procs.stop()
        back_on_teacher = [
            name
            for name in accounts
            if set(after.senders.get(name, {})) == {str(teacher)}
            and after.per_subscriber.get(name, {}).get("video_kbps", 0) > 0
        ]
        say(f"  after closing: {len(back_on_teacher)}/{len(accounts)} receive the teacher again")
        return {
            "setup": {
                "sfu_workers": len(server.workers),
                "publishers": publishers,
                "subscribers": subscribers,
            },
            "breakout": {
                "teacher": teacher,
                "rooms": {str(a): room for a, room in where.items()},
                "students_per_room": {str(room): n for room, n in sorted(sizes.items())},
                "settle_s": into_s,
                "not_settled": late_in,
                **inside,
            },
            "window": asdict(window),
            "after_close": {
                "everyone_in_main_room": not any(back.values()),
                "settle_s": back_s,
                "not_settled": late_back,
                "back_on_teacher": len(back_on_teacher),
                "students": len(accounts),
                # call.join once, then an offer per change: 3 each (join, rooms, back).
                "offers_per_student": _stats([float(n) for n in offers]),
                "window": asdict(after),
            },
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
                steps.append({"subscribers": added, "setup": setup, "window": asdict(window)})
                say(
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
    parser.add_argument("--students", type=int, default=29, help="class and breakout: students")
    parser.add_argument(
        "--breakout-rooms", type=int, default=6, help="breakout: rooms the host opens"
    )
    parser.add_argument(
        "--grid-layer",
        choices=LAYER_NAMES,
        default="medium",
        help="breakout: what students ask for on each other's video in a room (a grid of tiles)",
    )
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--procs", type=int, default=2, help="load processes")
    parser.add_argument("--sfu-workers", type=int, default=1, help="SFU worker processes")
    parser.add_argument(
        "--layer",
        choices=[*LAYER_NAMES, "mixed"],
        default="high",
        help="what subscribers ask for on the publisher's (teacher's) video; mixed: low, "
        "medium and high in turn, i.e. 1 → N simulcast with mixed tile sizes",
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
        help="publishers send no RTCP sender reports",
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
    janus.add_arguments(parser)  # --vs janus
    parser.add_argument("--out", type=Path, help="JSON results file (default bench/results/…)")
    parser.add_argument(
        "--profile", type=Path, help="sample the SFU workers with py-spy into PROFILE.workerN.txt"
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="let the SFU share cores with the load (bench/cores.py: pinned by default)",
    )


# --- results ----------------------------------------------------------------------------------


def sfu_commit() -> str:
    """The last commit that changed ``sfu/``, and whether the working tree differs from it
    (other work on the SFU may be under way in the same checkout)."""
    try:
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", "sfu/"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "sfu/"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+uncommitted" if dirty else commit


def _letters(window: dict[str, Any]) -> list[str]:
    """Every video stream's layer letters, second by second."""
    return [
        letters
        for detail in window["per_subscriber"].values()
        for letters in detail.get("layers", "").split()
    ]


_LEVEL = {"-": 0, "l": 1, "m": 2, "h": 3}
PLOTTED_SUBSCRIBERS = 12


def window_plots(window: dict[str, Any], label: str) -> list[dict[str, Any]]:
    timeline = window["timeline"]
    plots = [
        {
            "title": f"{label}: forwarded packets per second",
            "x_label": "seconds into the window",
            "y_label": "packets/s",
            "series": {"forwarded": [[p["t"], p["forwarded_pps"]] for p in timeline]},
        },
        {
            "title": f"{label}: SFU worker CPU per forwarded packet",
            "x_label": "seconds into the window",
            "y_label": "µs",
            "series": {"worker": [[p["t"], p["cpu_us_per_packet"]] for p in timeline]},
        },
    ]
    streams = _letters(window)
    seconds = min((len(s) for s in streams), default=0)  # the seconds every stream covers
    per_layer = {
        name: [
            [t + 1, sum(1 for s in streams if t < len(s) and s[t] == letter)]
            for t in range(seconds)
        ]
        for name, letter in (("off", "-"), ("low", "l"), ("medium", "m"), ("high", "h"))
    }
    plots.append(
        {
            "title": f"{label}: video streams per layer served",
            "x_label": "second of the window",
            "y_label": "streams",
            "series": {
                name: points for name, points in per_layer.items() if any(y for _, y in points)
            },
        }
    )
    details = window["per_subscriber"]
    if details and all(" " not in d.get("layers", "") for d in details.values()):
        # One line per subscriber, a sample of them when there are many (a legible legend).
        shown = list(details.items())[:: -(-len(details) // PLOTTED_SUBSCRIBERS)]
        plots.append(
            {
                "title": f"{label}: layer served per subscriber ({len(shown)} of {len(details)})",
                "x_label": "second of the window",
                "y_label": "0 off, 1 low, 2 medium, 3 high",
                "series": {
                    name: [[t + 1, _LEVEL[c]] for t, c in enumerate(d.get("layers", ""))]
                    for name, d in shown
                },
            }
        )
    return plots


def ramp_plots(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def against(key: str) -> list[list[float]]:
        return [[s["subscribers"], s["window"][key]] for s in steps]

    return [
        {
            "title": "ramp: forwarded packets per second against subscribers",
            "x_label": "subscribers",
            "y_label": "packets/s",
            "series": {"forwarded": against("forwarded_pps")},
        },
        {
            "title": "ramp: SFU worker CPU against subscribers",
            "x_label": "subscribers",
            "y_label": "µs per forwarded packet",
            "series": {"worker": against("cpu_us_per_forwarded_packet")},
        },
        {
            "title": "ramp: SFU worker load and loss against subscribers",
            "x_label": "subscribers",
            "y_label": "% of a core / % lost",
            "series": {
                "worker CPU %": [[x, 100 * y] for x, y in against("worker_cpu_util")],
                "loss %": against("loss_pct"),
            },
        },
    ]


def window_summary(window: dict[str, Any]) -> dict[str, Any]:
    jitter = window["jitter_ms"]
    return {
        "subscribers": window["subscribers"],
        "forwarded pkt/s": window["forwarded_pps"],
        "worker CPU µs per forwarded packet": window["cpu_us_per_forwarded_packet"],
        "worker CPU (cores)": window["worker_cpu_util"],
        "loss %": window["loss_pct"],
        "jitter p95 video ms": jitter.get("video", {}).get("p95"),
        "jitter p95 audio ms": jitter.get("audio", {}).get("p95"),
        "layer switches": window["layers"]["switches"],
        "layers at end": ", ".join(
            f"{k}: {v}" for k, v in sorted(window["layers"]["at_end"].items())
        ),
        "worker RSS MiB": round(sum(window["worker_rss_bytes"]) / 2**20, 1),
        "load processes (cores)": window["load_cpu_util"],
        "server tracebacks": window["server_tracebacks"],
        "notes": "; ".join(window["notes"]),
    }


def summarise(result: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The headline figures and the plots of a result (the schema of ``bench/report.py``)."""
    summary: dict[str, Any] = {"scenario": result["scenario"], "sfu commit": result["sfu_commit"]}
    if "steps" in result:
        best = result["best"]
        summary |= {"steps": len(result["steps"])}
        if best is not None:
            summary |= {"best: " + k: v for k, v in window_summary(best).items()}
        return summary, ramp_plots(result["steps"])
    window = result["window"]
    summary |= window_summary(window)
    plots = window_plots(window, result["scenario"])
    if result["params"]["layer"] == "mixed":
        served: dict[str, Counter[str]] = {}
        for name, detail in window["per_subscriber"].items():
            asked = result["requested_layers"].get(name, "?")
            served.setdefault(asked, Counter())[detail.get("layers", "-")[-1:] or "-"] += 1
        summary["served at end, by layer asked"] = "; ".join(
            f"{asked} → " + ", ".join(f"{k}: {v}" for k, v in sorted(got.items()))
            for asked, got in sorted(served.items())
        )
    if "breakout" in result:
        breakout, after = result["breakout"], result["after_close"]
        summary |= {
            "breakout rooms": len(breakout["students_per_room"]),
            "students per room": ", ".join(map(str, breakout["students_per_room"].values())),
            "seconds to follow into the rooms": breakout["settle_s"],
            "packets from other rooms": breakout["cross_room_packets"],
            "silent room mates": breakout["silent_room_mates"],
            "back on the teacher after closing": f"{after['back_on_teacher']}/{after['students']}",
            "seconds to get the teacher back": after["settle_s"],
        }
        plots += window_plots(after["window"], "after closing the rooms")
    return summary, plots


def _print_window(window: dict[str, Any]) -> None:
    jitter = window["jitter_ms"]
    say(
        f"  {window['subscribers']} subscribers, {window['duration_s']:.1f} s: "
        f"{window['forwarded_pps']:.0f} forwarded pkt/s (publishers {window['published_pps']:.0f}),"
        f" loss {window['loss_pct']:.3f}%"
    )
    say(
        f"  SFU worker CPU: {window['cpu_us_per_forwarded_packet']:.2f} µs per forwarded packet "
        f"({window['worker_cpu_util']:.0%} of a core; user {window['worker_user_s']} s, "
        f"system {window['worker_system_s']} s), RSS "
        f"{', '.join(f'{r / 2**20:.1f} MiB' for r in window['worker_rss_bytes'])}"
    )
    say(
        f"  jitter ms: video {jitter.get('video', {})}, audio {jitter.get('audio', {})}; "
        f"video kbit/s per subscriber {_kbps(window['video_bps_per_subscriber'])}"
    )
    say(
        f"  layers: {window['layers']}; load processes {window['load_cpu_util']:.0%} CPU; "
        f"publisher events {window['publisher_events']}"
    )
    for note in window["notes"]:
        say(f"  note: {note}")


def _kbps(stats: dict[str, float]) -> dict[str, float]:
    return {k: round(v / 1000, 1) for k, v in stats.items()}


def main(args: argparse.Namespace) -> dict[str, Any]:
    name = "ramp" if args.ramp else args.sfu_scenario
    if args.ramp:
        args.sfu_scenario = "one-to-many"
    if args.vs == "janus":
        janus.check(args)
    commit = sfu_commit()
    reference = machine.speed()
    args.cores = cores.split(args.sfu_workers) if args.pin else None
    if args.cores is not None:
        cores.take_load_cores(args.cores)
    with tempfile.TemporaryDirectory(prefix="parta-bench-sfu-") as tmp:
        if args.ramp:
            outcome = run_ramp(args, Path(tmp))
        elif args.sfu_scenario == "breakout":
            outcome = run_breakout(args, Path(tmp))
        else:
            outcome = run_scenario(args, Path(tmp))
            if args.vs == "janus":
                outcome["janus"] = janus.run(args, Path(tmp), outcome["window"])
    result: dict[str, Any] = {
        "scenario": f"sfu-{name}",
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "sfu_commit": commit,
        "machine": reference,
        "cores": None if args.cores is None else args.cores.describe(),
        "params": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "cores"
        },
        **outcome,
    }
    result["summary"], result["plots"] = summarise(result)
    if "janus" in result:
        result["summary"] |= janus.summary(result["janus"])
    out = args.out or RESULTS / f"sfu-{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    say(f"sfu {name} (SFU {commit}):")
    say(
        f"  machine before the run: a Python loop step {reference['python_loop_ns']} ns, a "
        f"loopback sendto {reference['loopback_sendto_us']} µs, load average "
        f"{reference['load_average'][0]}"
    )
    if args.cores is None:
        say("  cores: not pinned (the SFU shares its cores with the load)")
    else:
        say(f"  cores: SFU on {sorted(args.cores.sfu)}, load on {sorted(args.cores.load)}")
    window = result.get("window") or result.get("best")
    if window is None:
        say("  no window with loss ≤ 1%")
    else:
        _print_window(window)
        shown = {"scenario", "sfu commit", *window_summary(window)}
        for key, value in result["summary"].items():
            if key not in shown and not key.startswith("best: "):
                say(f"  {key}: {value}")
    say(f"results: {out}, {report.write([out], out.with_suffix('.html'))}")
    return result
