"""Janus (Debian's ``janus`` 1.1) as the SFU baseline of ``python -m bench sfu --vs janus``.

Janus runs as one would set it up for lessons on one machine: its videoroom plugin behind
its HTTP API on 127.0.0.1:8088, ICE-lite, no STUN or TURN, everything else off (the admin
API, the other transports and plugins, event handlers, external loggers), logging to a file.
The same synthetic peers as for Parta (``bench/rtc_peer.py``, through ``JanusPeer``) talk to
it: a publisher joins its room and offers, taking Janus's answer; a subscriber joins with
the publisher's feed, answers Janus's offer and starts. Rooms are created over the API
(VP8 and Opus, no bitrate cap). In a ``class`` a student both publishes (a quiet
microphone) and receives the teacher: in the videoroom those are two PeerConnections, a
publisher handle and a subscriber handle, so a student is two synthetic peers there. Its
CPU is read from ``/proc/<pid>/stat`` exactly as the SFU workers' is: Janus is one process
whose counters include all its threads, and in the measured window it only moves media
(sessions never time out, so there are no keep-alives, and nobody long-polls).

Janus gathers no ICE candidate on an interface flagged as loopback, even when told to
(``ice_enforce_list``), and loopback is all the bench's network namespace has:
``janus_loopback.c``, compiled at run time and preloaded, shows it lo's IPv4 address as an
ordinary interface, so it binds and announces 127.0.0.1 only (``check_loopback``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.rtc_peer import (
    AUDIO_CLOCK,
    VIDEO_CLOCK,
    InStream,
    PeerFailed,
    RemoteTransport,
    RtcPeer,
    build_answer,
    build_offer,
    parse_answer,
    remote_transport,
)
from protocol.client import http_request

JANUS = Path("/usr/bin/janus")
MODULES = Path("/usr/lib/x86_64-linux-gnu/janus")
SHIM = Path(__file__).with_name("janus_loopback.c")
HOST, PORT = "127.0.0.1", 8088
URL = f"http://{HOST}:{PORT}/janus"
PLUGIN = "janus.plugin.videoroom"
# What subscribers ask for (call.layer's names) as Janus's simulcast substream.
SUBSTREAMS = {"low": 0, "medium": 1, "high": 2}
MISSING = f"{JANUS} is missing: apt-get install janus (./dev bench --vs janus does)"
TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"


# --- the process ------------------------------------------------------------------------


def _all_but(folder: str, keep: str) -> str:
    """The shared objects of one of Janus's module folders except ``keep``, comma-separated
    (what its ``disable`` settings take)."""
    return ",".join(sorted(p.name for p in (MODULES / folder).glob("*.so") if p.name != keep))


def write_configs(folder: Path, log: Path, event_loops: int = 0) -> None:
    """janus.jcfg, the videoroom's and the HTTP transport's configuration into ``folder``.
    ``event_loops`` 0 is Janus's default, a media loop thread per handle; N shares N loops."""
    loops = f"\n    event_loops = {event_loops}" if event_loops else ""
    (folder / "janus.jcfg").write_text(
        f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{MODULES / "plugins"}"
    transports_folder = "{MODULES / "transports"}"
    events_folder = "{MODULES / "events"}"
    loggers_folder = "{MODULES / "loggers"}"
    log_to_stdout = false
    log_to_file = "{log}"
    debug_level = 4
    session_timeout = 0
    hide_dependencies = true{loops}
}}
nat: {{
    ice_lite = true
    ignore_mdns = true
    nice_debug = false
}}
media: {{
}}
plugins: {{
    disable = "{_all_but("plugins", "libjanus_videoroom.so")}"
}}
transports: {{
    disable = "{_all_but("transports", "libjanus_http.so")}"
}}
loggers: {{
    disable = "{_all_but("loggers", "")}"
}}
events: {{
    broadcast = false
}}
"""
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n    events = false\n}\n")
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    port = {PORT}
    ip = "{HOST}"
    https = false
    events = false
}}
admin: {{
    admin_http = false
    admin_https = false
}}
"""
    )


def compile_shim(folder: Path) -> Path:
    library = folder / "janus_loopback.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(SHIM), "-ldl"],
        check=True,
        capture_output=True,
        text=True,
    )
    return library


class Janus:
    """The Janus process, configured in ``workdir/janus`` and logging there."""

    def __init__(self, workdir: Path, event_loops: int = 0) -> None:
        if not JANUS.exists():
            raise RuntimeError(MISSING)
        folder = workdir / "janus"
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / "janus.log"
        write_configs(folder, self.log_path, event_loops)
        env = os.environ | {"LD_PRELOAD": str(compile_shim(folder))}
        self._stderr = (folder / "stderr.log").open("w")
        self.process = subprocess.Popen(
            [str(JANUS), "-F", str(folder), "-C", str(folder / "janus.jcfg")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            env=env,
        )
        self.pid = self.process.pid
        self.workers = [self.pid]  # what bench.sfu.measure reads the CPU of
        self.url = URL
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"janus exited ({self.process.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{URL}/info", timeout=1) as response:
                    if json.load(response).get("janus") == "server_info":
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"janus did not answer on {URL}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def bound(self) -> list[str]:
        """The local addresses of Janus's UDP sockets and listening TCP sockets (``ss``)."""
        out = (
            subprocess.run(["ss", "-Hanpu"], capture_output=True, text=True, check=True).stdout
            + subprocess.run(["ss", "-Hlnpt"], capture_output=True, text=True, check=True).stdout
        )
        # State, Recv-Q, Send-Q, local address:port, peer address:port, process.
        return sorted({line.split()[3] for line in out.splitlines() if f"pid={self.pid}," in line})

    def check_loopback(self) -> list[str]:
        """Janus's bound addresses; raises if any is not on 127.0.0.1."""
        bound = self.bound()
        outside = [address for address in bound if not address.startswith(f"{HOST}:")]
        if outside or not bound:
            raise RuntimeError(f"janus bound {bound}: not loopback only")
        return bound

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


# --- the API ------------------------------------------------------------------------------


class JanusError(PeerFailed):
    """Janus refused a request."""


class Session:
    """One Janus API session over HTTP with one videoroom handle, as a browser tab holds."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session_id = 0
        self.handle_id = 0

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body["transaction"] = secrets.token_hex(6)
        status, _, raw = await http_request(
            "POST", self.url + path, body=json.dumps(body).encode(), timeout_s=10
        )
        reply: dict[str, Any] = json.loads(raw)
        if status != 200 or reply.get("janus") == "error":
            raise JanusError(f"{body.get('janus')} {path}: {status} {reply.get('error')}")
        return reply

    async def open(self) -> None:
        created = await self._post("", {"janus": "create"})
        self.session_id = created["data"]["id"]
        attached = await self._post(f"/{self.session_id}", {"janus": "attach", "plugin": PLUGIN})
        self.handle_id = attached["data"]["id"]

    async def request(
        self, body: dict[str, Any], jsep: dict[str, str] | None = None
    ) -> tuple[dict[str, Any], dict[str, str] | None]:
        """A videoroom request and its answer: the plugin's data and the JSEP, if any. Janus
        answers some requests at once and acknowledges others, whose answer is an event
        on the session (long poll)."""
        message: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        reply = await self._post(f"/{self.session_id}/{self.handle_id}", message)
        while reply.get("janus") == "ack" or reply.get("transaction") != message["transaction"]:
            _, _, raw = await http_request(
                "GET", f"{self.url}/{self.session_id}?maxev=1", timeout_s=40
            )
            reply = json.loads(raw)
        data: dict[str, Any] = reply["plugindata"]["data"]
        if "error" in data:
            raise JanusError(f"{body['request']}: {data['error']}")
        return data, reply.get("jsep")

    async def trickle(self, candidate: dict[str, Any]) -> None:
        await self._post(
            f"/{self.session_id}/{self.handle_id}", {"janus": "trickle", "candidate": candidate}
        )

    async def close(self) -> None:
        if self.session_id:
            await self._post(f"/{self.session_id}", {"janus": "destroy"})
            self.session_id = 0


async def create_rooms(url: str, rooms: list[int], bitrate: int, publishers: int) -> None:
    """Rooms for ``publishers`` feeds each (the teacher's feed id is the room id), VP8 and
    Opus."""
    session = Session(url)
    await session.open()
    try:
        for room in rooms:
            await session.request(
                {
                    "request": "create",
                    "room": room,
                    "publishers": publishers,
                    "bitrate": bitrate,
                    "videocodec": "vp8",
                    "audiocodec": "opus",
                }
            )
    finally:
        await session.close()


# --- the peer -------------------------------------------------------------------------------


class JanusPeer(RtcPeer):
    """A synthetic peer that signals with Janus's videoroom instead of Parta's gateway.

    ``spec.call_id`` is the room; a publisher publishes as ``spec.feed`` (by default the
    room's id: its teacher), a subscriber subscribes to ``spec.subscribe_to``'s feed (audio
    and video), at the simulcast substream ``spec.layer`` names. Everything after signalling
    (ICE, DTLS, SRTP, sending, receiving, feedback) is ``RtcPeer``'s.
    """

    session: Session | None = None
    _first_mid = "0"  # the m-section our candidate is trickled for (all are bundled)

    async def _start(self) -> None:
        self.state = "signalling"
        self.session = Session(self.settings.url)
        await self.session.open()
        if self.spec.publish is not None:
            remote = await self._publish(self.session)
        else:
            remote = await self._subscribe(self.session)
        self._remote_ufrag, self._remote_pwd = remote.ufrag, remote.pwd.encode()
        await self._connect(remote.address, remote.port, remote.fingerprint)

    async def _publish(self, session: Session) -> RemoteTransport:
        room = self.spec.call_id
        feed = self.spec.feed or room
        self._tag = feed.to_bytes(4, "big")  # the sender at the end of each payload: its feed
        sections, _, _ = self._sections([])
        offer = build_offer(
            sections,
            ufrag=self.ufrag,
            pwd=self.pwd,
            fingerprint=self.identity.fingerprint,
            cname=self.cname,
            setup="active",  # Janus answers actpass with active; our DTLS is a client
        )
        await session.request({"request": "join", "ptype": "publisher", "room": room, "id": feed})
        # Our RIDs go low to high; Janus assumes high to low unless told.
        _, jsep = await session.request(
            {"request": "publish"}, {"type": "offer", "sdp": offer, "rid_order": "lmh"}
        )
        if jsep is None:
            raise PeerFailed("janus sent no answer")
        return remote_transport(jsep["sdp"])

    async def _subscribe(self, session: Session) -> RemoteTransport:
        feed = self.spec.subscribe_to
        request = {"request": "join", "ptype": "subscriber", "room": self.spec.call_id}
        _, jsep = await session.request(request | {"streams": [{"feed": feed}]})
        if jsep is None:
            raise PeerFailed("janus sent no offer")
        offer = parse_answer(jsep["sdp"])
        video_mid = None
        for section in offer.values():
            if section.port == 0 or not section.ssrcs:
                continue
            video = section.kind == "video"
            clock = VIDEO_CLOCK if video else AUDIO_CLOCK
            ssrc = section.ssrcs[0]
            track = f"{feed}/{section.mid}"
            self.streams[ssrc] = InStream(ssrc, section.kind, track, clock, source=feed or 0)
            self.twcc_ext = section.extmaps.get(TRANSPORT_CC, self.twcc_ext)
            if video:
                video_mid = section.mid
        if {s.kind for s in self.streams.values()} != set(self.spec.subscribe_kinds):
            raise PeerFailed(f"janus offered {[s.kind for s in offer.values()]}")
        answer = build_answer(
            offer, ufrag=self.ufrag, pwd=self.pwd, fingerprint=self.identity.fingerprint
        )
        await session.request({"request": "start"}, {"type": "answer", "sdp": answer})
        substream = SUBSTREAMS.get(self.spec.layer)
        if video_mid is not None and substream is not None:
            await session.request(
                {"request": "configure", "streams": [{"mid": video_mid, "substream": substream}]}
            )
        return remote_transport(jsep["sdp"])

    async def _gathered(self, port: int) -> None:
        # Janus's ICE-lite agent pairs only with candidates it was given (a peer-reflexive
        # one from our checks is not enough), and waits for the end of candidates.
        assert self.session is not None
        line = f"candidate:1 1 udp 2122260223 127.0.0.1 {port} typ host"
        await self.session.trickle(
            {"candidate": line, "sdpMid": self._first_mid, "sdpMLineIndex": 0}
        )
        await self.session.trickle({"completed": True})

    async def close(self) -> None:
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.session.close()
        await super().close()


# --- the scenario ---------------------------------------------------------------------------

SCENARIOS = ("one-to-many", "rooms", "class")
# Students' microphones publish as feeds from here up (the teachers' feeds are the rooms' ids).
_STUDENT_FEEDS = 1_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vs",
        choices=["janus"],
        help="then the same scenario against Janus (bench/baselines/janus.py), and the ratio",
    )
    parser.add_argument(
        "--janus-event-loops",
        type=int,
        default=0,
        help="Janus's event_loops: 0 (its default) runs a media thread per handle, N shares N",
    )


def check(args: argparse.Namespace) -> None:
    """Before anything runs: what ``--vs janus`` can compare."""
    if args.ramp or args.sfu_scenario not in SCENARIOS:
        raise SystemExit(f"--vs janus runs the scenarios {', '.join(SCENARIOS)}, not a ramp")
    if not JANUS.exists():
        raise SystemExit(MISSING)


def run(args: argparse.Namespace, workdir: Path, parta: dict[str, Any]) -> dict[str, Any]:
    """The scenario of ``args`` against Janus, as ``bench.sfu.run_scenario`` runs it against
    Parta: the same cast of peers, load processes, warm-up and window; ``parta`` is Parta's
    window, for the ratio."""
    from bench import sfu  # it imports this module

    count, size = sfu._shape(args)
    # Room r has one publisher, whose feed id is r; subscribers need no account.
    rooms = [
        sfu.Room(
            {"account_id": r, "token": ""}, [{"account_id": 0, "token": ""}] * size, lesson_id=r
        )
        for r in range(1, count + 1)
    ]
    janus = Janus(workdir, args.janus_event_loops)
    # One process however many event loops it runs: on the cores of Parta's workers.
    sfu.pin_sfu(janus, args)
    try:
        plan = sfu.cast(args, rooms)
        if args.sfu_scenario == "class":
            plan = _two_connections(plan)
        feeds = 1 + (size if args.sfu_scenario == "class" else 0)
        asyncio.run(create_rooms(janus.url, [room.lesson_id for room in rooms], 0, feeds))
        procs = sfu.LoadProcs(args.procs, sfu._settings(args, janus.url) | {"sfu": "janus"})
        try:
            publishers = procs.add(plan.publishers)
            sfu._check_setup(publishers, "janus publishers")
            subscribers = procs.add(plan.subscribers)
            sfu._check_setup(subscribers, "janus subscribers")
            bound = janus.check_loopback()
            threads = len(os.listdir(f"/proc/{janus.pid}/task"))
            time.sleep(args.warmup)
            window = asdict(sfu.measure(procs, janus, args.duration, args))
        finally:
            procs.stop()
    finally:
        janus.stop()
    ours, theirs = parta["cpu_us_per_forwarded_packet"], window["cpu_us_per_forwarded_packet"]
    return {
        "setup": {
            "publishers": publishers,
            "subscribers": subscribers,
            "bound": bound,
            "event_loops": args.janus_event_loops,
            "threads": threads,
        },
        "window": window,
        "ratio": round(ours / theirs, 3) if theirs else None,
    }


def _two_connections(plan: Any) -> Any:
    """The cast with each student that publishes and subscribes split in two: a publisher of
    its own feed, and a subscriber to the teacher as before."""
    from bench import sfu  # it imports this module

    microphones = []
    for n, spec in enumerate(plan.subscribers):
        microphones.append(
            {
                "name": f"{spec['name']}-mic",
                "token": "",
                "call_id": spec["call_id"],
                "publish": spec.pop("publish"),
                "voice": spec.pop("voice"),
                "feed": _STUDENT_FEEDS + n,
            }
        )
    return sfu.Cast(plan.publishers + microphones, plan.subscribers)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Janus's headline figures and the ratio, for the summary of ``bench.sfu``."""
    window = result["window"]
    return {
        "Janus forwarded pkt/s": window["forwarded_pps"],
        "Janus CPU µs per forwarded packet": window["cpu_us_per_forwarded_packet"],
        "Janus CPU (cores)": window["worker_cpu_util"],
        "Janus loss %": window["loss_pct"],
        "Janus layers at end": ", ".join(
            f"{k}: {v}" for k, v in sorted(window["layers"]["at_end"].items())
        ),
        "Parta/Janus CPU per forwarded packet": result["ratio"],
    }
