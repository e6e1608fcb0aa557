"""Breakout rooms at the size of a real class: a teacher and 60 students, 50 rooms.

Everyone is a synthetic WebRTC peer of ``bench/rtc_peer.py`` (ICE, DTLS, SRTP; RTP that is
counted per received stream, never decoded), all in this test's event loop, against a real
``parta serve`` with one SFU worker, the lesson set up the way a journal does it. Every
student publishes audio, every other one a small camera too; the teacher both. In the main
room students receive the teacher (as in a big class); in a breakout room everyone receives
everyone else in it. On each ``call.tracks`` a peer offers again on its one transport, as the
web client does (it never joins again nor makes another connection), except that a section
whose track went away stays ``recvonly`` and unnamed instead of being stopped; and a quarter
of the students keep naming the teacher's tracks, like a client that has not caught up.

What is received is counted per track and mapped to its publisher through the tracks the
server announced, so "only from its room" is checked against the packets that arrived.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.rtc_peer import (
    AUDIO_CLOCK,
    VIDEO_CLOCK,
    InStream,
    LoadProcess,
    PeerFailed,
    PeerSpec,
    RtcPeer,
    Section,
    Settings,
    Source,
    build_offer,
    parse_answer,
)
from bench.sfu import Room, School
from protocol.calls import (
    CallPeople,
    CallReconnect,
    CallTracks,
    RoomsClose,
    RoomsMove,
    RoomsOpen,
    Track,
)
from tests.integration.conftest import start_server, stop_server

STUDENTS = 60
ROOMS = 50
# A "single" camera sends the top rate: ~500 bytes a frame, one packet, cheap enough for 30.
BITRATES = (30_000, 60_000, 120_000)
SETTLE_S = 0.5  # after offering again: the keyframe a new video consumer asks for
LISTEN_S = 1.0
MIN_PACKETS = 5  # in LISTEN_S; audio sends 50 packets/s, video 30


class BreakoutPeer(RtcPeer):
    """A synthetic peer that can change what it receives by offering again on the same
    transport: its sending sections as they were, a section per remote track it keeps, a new
    one per new track; a section whose track it no longer wants stays, receiving nothing."""

    sections: list[Section]
    sources: dict[str, Source]
    receiving: dict[str, str]  # mid → track id

    def _sections(
        self, wanted: list[Any]
    ) -> tuple[list[Section], dict[str, Source], dict[str, str]]:
        sections, sources, subscriptions = super()._sections(wanted)
        self.sections, self.sources, self.receiving = list(sections), sources, dict(subscriptions)
        return sections, sources, subscriptions

    async def receive(self, tracks: Sequence[Track]) -> None:
        wanted = {t.track_id: t for t in tracks}
        if set(wanted) == set(self.receiving.values()):
            return
        receiving = {mid: tid for mid, tid in self.receiving.items() if tid in wanted}
        for track_id, track in wanted.items():
            if track_id not in receiving.values():
                mid = str(len(self.sections))
                self.sections.append(Section(mid, track.kind, "recvonly"))
                receiving[mid] = track_id
        offer = build_offer(
            self.sections,
            ufrag=self.ufrag,
            pwd=self.pwd,
            fingerprint=self.identity.fingerprint,
            cname=self.cname,
        )
        text = await self.client.call_offer(offer, sources=self.sources, subscriptions=receiving)
        # Same transport: the SFU's ICE credentials are still those of call.join.
        if f"a=ice-ufrag:{self._remote_ufrag}\r\n" not in text:
            raise PeerFailed("the SFU answered a re-offer with another transport")
        answer = parse_answer(text)
        ended = set(self.receiving.values()) - set(receiving.values())
        for ssrc in [s for s, stream in self.streams.items() if stream.track_id in ended]:
            del self.streams[ssrc]  # what still comes on it counts as unknown_packets
        for mid, track_id in receiving.items():
            if track_id in self.receiving.values():
                continue
            section = answer[mid]
            if section.port == 0 or not section.ssrcs:
                raise PeerFailed(f"the SFU sends nothing on mid {mid} (track {track_id})")
            kind = wanted[track_id].kind
            clock = VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK
            self.streams[section.ssrcs[0]] = InStream(section.ssrcs[0], kind, track_id, clock)
        self.receiving = receiving


@dataclass(eq=False)
class Member:
    """One participant and what the server last pushed to it."""

    peer: BreakoutPeer
    account_id: int
    # A client that has not caught up: it keeps asking for the teacher in a breakout room.
    stale: bool = False
    announced: list[Track] = field(default_factory=list)
    people: CallPeople | None = None
    reconnects: int = 0

    async def follow(self) -> None:
        while True:
            push = await self.peer.client.next_call_event()
            if isinstance(push, CallTracks):
                self.announced = push.tracks
            elif isinstance(push, CallPeople):
                self.people = push
            elif isinstance(push, CallReconnect):
                self.reconnects += 1

    def heard(self, before: dict[str, int]) -> set[str]:
        """Tracks that delivered at least MIN_PACKETS since ``before`` (packets by track)."""
        now = self.counts()
        return {t for t, n in now.items() if n - before.get(t, 0) >= MIN_PACKETS}

    def counts(self) -> dict[str, int]:
        return {s.track_id: s.packets for s in self.peer.streams.values()}


@dataclass
class Lesson:
    url: str
    lesson_id: int
    teacher: dict[str, Any]
    students: list[dict[str, Any]]


def loadtest_users(data_dir: Path, count: int) -> list[dict[str, Any]]:
    """``parta loadtest-users``: accounts with session tokens (account_id, token)."""
    command = [sys.executable, "-m", "server", "loadtest-users", "--count", str(count)]
    made = subprocess.run(
        [*command, "--json", "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    users: list[dict[str, Any]] = json.loads(made.stdout)["users"]
    return users


@pytest.fixture
async def lesson(tmp_path: Path) -> AsyncIterator[Lesson]:
    """A journal's lesson for one group (a teacher, 60 students), published; nobody in it."""
    accounts = loadtest_users(tmp_path, STUDENTS + 1)
    school = School(tmp_path)
    server = start_server(tmp_path, sfu_workers=1)
    try:
        room = Room(accounts[0], accounts[1:])
        await school.open(server.url, [room])
        yield Lesson(server.url, room.lesson_id, room.teacher, room.students)
    finally:
        log = stop_server(server)
    assert "Traceback" not in log, log


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


def rooms_of(people: CallPeople) -> dict[int, int]:
    return {p.account_id: p.room for p in people.people}


@dataclass
class Class:
    """The lesson's participants, and every track published in it (id → track)."""

    teacher: Member
    students: list[Member]
    tracks: dict[str, Track] = field(default_factory=dict)

    @property
    def everyone(self) -> list[Member]:
        return [self.teacher, *self.students]

    def tracks_of(self, account_id: int) -> set[str]:
        return {t for t, track in self.tracks.items() if track.account_id == account_id}

    def room_mates(self, rooms: dict[int, int], m: Member) -> set[str]:
        """The tracks of the others in ``m``'s room."""
        return {
            t for t, track in self.tracks.items()
            if track.account_id != m.account_id and rooms[track.account_id] == rooms[m.account_id]
        }  # fmt: skip

    def told(self, where: Callable[[CallPeople], bool]) -> dict[int, int] | None:
        """The rooms, once the host's latest state satisfies ``where`` and everyone has been
        told the same rooms and the tracks of exactly their room; else None."""
        people = self.teacher.people
        if people is None or not where(people):
            return None
        rooms = rooms_of(people)
        for m in self.everyone:
            if m.people is None or rooms_of(m.people) != rooms:
                return None
            if {t.track_id for t in m.announced} != self.room_mates(rooms, m):
                return None
        return rooms

    def wanted(self, m: Member, rooms_open: bool) -> list[Track]:
        teacher = [t for t in self.tracks.values() if t.account_id == self.teacher.account_id]
        if not rooms_open:  # the main room of a big class: everyone watches the teacher
            return [t for t in m.announced if t in teacher]
        return [*m.announced, *(t for t in teacher if m.stale and t not in m.announced)]

    async def follow_rooms(
        self, where: Callable[[CallPeople], bool]
    ) -> tuple[dict[int, int], dict[Member, set[str]]]:
        """Wait for the pushes, let everyone offer again for what it wants, listen a while:
        the rooms, and the tracks each one heard."""
        rooms: dict[int, int] | None = None

        def settled() -> bool:
            nonlocal rooms
            rooms = self.told(where)
            return rooms is not None

        await until(settled, "everyone is told the rooms and the tracks of their room")
        assert rooms is not None
        rooms_open = any(rooms.values())
        await asyncio.gather(*(m.peer.receive(self.wanted(m, rooms_open)) for m in self.everyone))
        await asyncio.sleep(SETTLE_S)
        unknown = {m: m.peer.unknown_packets for m in self.everyone}
        before = {m: m.counts() for m in self.everyone}
        await asyncio.sleep(LISTEN_S)
        # Nothing arrived on a section its peer no longer receives on.
        strays = {m.peer.spec.name: m.peer.unknown_packets - n for m, n in unknown.items()}
        assert {name: n for name, n in strays.items() if n} == {}
        return rooms, {m: m.heard(before[m]) for m in self.everyone}


async def start_class(lesson: Lesson, process: LoadProcess) -> Class:
    """The host makes the lesson live and publishes a camera and a microphone; the students
    join, publish (a microphone; every other one a camera too) and receive the teacher."""
    settings = process.settings

    def member(name: str, account: dict[str, Any], publish: str, **spec: Any) -> Member:
        peer = BreakoutPeer(
            PeerSpec(name, account["token"], lesson.lesson_id, publish=publish, **spec),
            settings,
            process.identity,
        )
        process.peers.append(peer)
        process.publishers.append(peer)  # the process's pacer sends their media
        return Member(peer, account["account_id"])

    teacher = member("teacher", lesson.teacher, "single")
    students = [
        member(
            f"student-{i}",
            account,
            "single" if i % 2 else "audio",
            subscribe_to=teacher.account_id,
            voice=False,
        )
        for i, account in enumerate(lesson.students)
    ]
    for stale in students[::4]:
        stale.stale = True
    await teacher.peer.start()
    gate = asyncio.Semaphore(8)

    async def start(peer: RtcPeer) -> None:
        async with gate:
            await peer.start()  # returns once media arrives on every track it receives

    await asyncio.gather(*(start(s.peer) for s in students))
    return Class(teacher, students)


async def test_sixty_students_in_fifty_rooms_and_back_on_their_connections(
    lesson: Lesson,
) -> None:
    process = LoadProcess(Settings(url=lesson.url, bitrates=BITRATES))
    followers: list[asyncio.Task[None]] = []
    try:
        lesson_class = await start_class(lesson, process)
        teacher, students = lesson_class.teacher, lesson_class.students
        everyone = lesson_class.everyone
        assert [m.peer.error for m in everyone if m.peer.state != "connected"] == []
        followers = [asyncio.create_task(m.follow()) for m in everyone]

        # Everyone's tracks, from what the server announces: the teacher's camera and
        # microphone, each student's microphone and every other one's camera.
        def learn() -> bool:
            for m in everyone:
                lesson_class.tracks.update((t.track_id, t) for t in m.announced)
            return len(lesson_class.tracks) == 2 + STUDENTS + STUDENTS // 2

        await until(learn, "every published track is announced")
        kinds = {
            m.peer.spec.name: sorted(
                lesson_class.tracks[t].kind for t in lesson_class.tracks_of(m.account_id)
            )
            for m in everyone
        }
        assert kinds == {
            m.peer.spec.name: ["audio", "video"] if m.peer.spec.publish == "single" else ["audio"]
            for m in everyone
        }
        teacher_tracks = lesson_class.tracks_of(teacher.account_id)

        # 50 rooms at random: balanced (one or two students each), the teacher stays.
        names = [f"Комната {i + 1}" for i in range(ROOMS)]
        await teacher.peer.client.call(RoomsOpen(names=names, random=True, minutes=30))
        rooms, heard = await lesson_class.follow_rooms(lambda people: bool(people.rooms))
        assert rooms[teacher.account_id] == 0
        sizes = [sum(rooms[s.account_id] == r for s in students) for r in range(1, ROOMS + 1)]
        assert sorted(sizes) == [1] * (2 * ROOMS - STUDENTS) + [2] * (STUDENTS - ROOMS)
        # Each one hears every track of the others in its room and nothing else: not the
        # teacher, though a quarter of the students still ask the SFU for the teacher's tracks.
        assert {
            m.peer.spec.name for m in everyone if heard[m] != lesson_class.room_mates(rooms, m)
        } == set()
        assert any(lesson_class.tracks[t].kind == "video" for h in heard.values() for t in h)
        assert sum(len(h) for h in heard.values()) >= 2 * (STUDENTS - ROOMS)

        # The host visits a room of two: heard and seen there, by nobody else.
        visited = 1 + sizes.index(2)
        await teacher.peer.client.call(RoomsMove(account_id=teacher.account_id, room=visited))
        rooms, heard = await lesson_class.follow_rooms(
            lambda people: rooms_of(people)[teacher.account_id] == visited
        )
        assert (
            heard[teacher] == lesson_class.room_mates(rooms, teacher) and len(heard[teacher]) >= 2
        )
        assert {
            m.peer.spec.name for m in everyone if heard[m] != lesson_class.room_mates(rooms, m)
        } == set()
        hearing_teacher = {s.peer.spec.name for s in students if heard[s] >= teacher_tracks}
        assert hearing_teacher == {
            s.peer.spec.name for s in students if rooms[s.account_id] == visited
        }

        # Closing brings everyone back to the main room, where all hear and see the teacher
        # again, over the transports made at joining: the SFU answers every offer with the
        # ICE credentials of call.join (BreakoutPeer checks), the SRTP keys of the one DTLS
        # handshake still decrypt everything, nobody was told to reconnect.
        await teacher.peer.client.call(RoomsClose())
        rooms, heard = await lesson_class.follow_rooms(lambda people: not people.rooms)
        assert set(rooms.values()) == {0}
        assert heard[teacher] == set()
        assert {s.peer.spec.name for s in students if heard[s] != teacher_tracks} == set()
        assert [m.peer.spec.name for m in everyone if m.peer.state != "connected"] == []
        assert sum(m.reconnects for m in everyone) == 0
        assert sum(m.peer.srtp_failures for m in everyone) == 0
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
        await process.close()
