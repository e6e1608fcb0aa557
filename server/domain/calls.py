"""Live lessons: who is connected, what the SFU is told, what everyone is pushed.

A lesson's call lives on one SFU worker: the main room and its breakout rooms are rooms
of that worker, so moving someone between them keeps their peer connection (the SFU's
``peer.move``). Each connection in a call has a peer there; the tracks it publishes are
announced to the others in the same room, who renegotiate to receive them. The rules of
the room itself (roles, hands, permissions, breakout assignment) are ``CallRoom``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec

from protocol.base import Body as Message
from protocol.base import Sex
from protocol.calls import (
    PUSH_CALL_BOARD,
    PUSH_CALL_NOTICE,
    PUSH_CALL_RECONNECT,
    PUSH_CALL_SPEAKER,
    PUSH_CALL_STATE,
    PUSH_CALL_TRACKS,
    BoardOp,
    BoardPush,
    CallInfo,
    CallJoined,
    CallNotice,
    CallReconnect,
    CallSpeaker,
    CallTracks,
    Layer,
    MediaCandidate,
    ModerateAction,
    NoticeKind,
    Source,
    Track,
)
from protocol.errors import ErrorCode
from protocol.messages import encode
from protocol.sfu_control import (
    ActiveSpeaker,
    Answer,
    Body,
    ControlError,
    PeerClose,
    PeerCreate,
    PeerLayer,
    PeerMove,
    PeerOffer,
    PeerState,
    RecordingEnded,
    RecordStart,
    RecordStop,
    Request,
    RoomClose,
    RoomCreate,
    TransportInfo,
)
from server.domain.call_room import CallRoom
from server.domain.clock import Clock
from server.domain.errors import DomainError
from server.domain.lessons import LessonService
from server.store import Store
from server.store.lessons import Lesson

logger = logging.getLogger("parta.calls")

MAX_BOARD_OPS = 20_000
TICK_S = 1.0


class MediaWorker(Protocol):
    async def request(self, request: Request) -> Any: ...


class MediaPlane(Protocol):
    """Where rooms live (``server.media.workers.WorkerPool``)."""

    async def place(self, room_id: str) -> MediaWorker: ...

    def worker_for(self, room_id: str) -> MediaWorker | None: ...

    def forget(self, room_id: str) -> None: ...


class CallClient(Protocol):
    """A participant's connection: pushes go to it."""

    def send_message(self, payload: bytes) -> None: ...


class Recordings(Protocol):
    """Where recordings are written and how they reach the chat (``RecordingSink``)."""

    def new_path(self, lesson: Lesson, now: int) -> Path: ...

    async def publish(self, lesson: Lesson, ended: RecordingEnded) -> int | None: ...


@dataclass(frozen=True, slots=True)
class CallTimes:
    """When live lessons end by themselves (ms)."""

    empty_end_ms: int = 10 * 60_000
    overrun_ms: int = 60 * 60_000


@dataclass(eq=False)
class Participant:
    client: CallClient
    account_id: int
    lesson_id: int
    peer_id: str
    tracks: dict[str, Track] = field(default_factory=dict)


@dataclass(eq=False)
class LiveCall:
    lesson: Lesson
    room: CallRoom
    participants: dict[str, Participant] = field(default_factory=dict)
    empty_since: int | None = None
    banned: set[int] = field(default_factory=set)

    @property
    def main(self) -> str:
        return f"lesson-{self.lesson.id}"

    def sfu_room(self, index: int) -> str:
        return self.main if index == 0 else f"{self.main}-{index}"

    def room_of(self, participant: Participant) -> int:
        person = self.room.people.get(participant.account_id)
        return person.room if person is not None else 0


class CallService:
    def __init__(
        self,
        media: MediaPlane,
        lessons: LessonService,
        store: Store,
        clock: Clock,
        times: CallTimes,
        rng: random.Random | None = None,
        recordings: Recordings | None = None,
    ) -> None:
        self._media = media
        self._lessons = lessons
        self._store = store
        self._clock = clock
        self._times = times
        self._rng = rng or random.Random()
        self._recordings = recordings
        self._calls: dict[int, LiveCall] = {}
        self._by_client: dict[CallClient, Participant] = {}
        self._by_peer: dict[str, Participant] = {}
        self._ids = itertools.count(1)
        self._started = clock()
        self._background: set[asyncio.Task[None]] = set()
        lessons.on_finish.append(self._finished)

    # --- plumbing ------------------------------------------------------------------------------

    async def _request(self, call: LiveCall, request: Request) -> Any:
        worker = self._media.worker_for(call.main)
        if worker is None:
            raise DomainError(ErrorCode.UNAVAILABLE, "the lesson's media server went away")
        try:
            return await worker.request(request)
        except ControlError as exc:
            code = ErrorCode.VALIDATION_FAILED if exc.code == "bad_sdp" else ErrorCode.UNAVAILABLE
            raise DomainError(code, exc.message) from None

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except DomainError:
                pass  # the media server is gone: nothing left to tidy there
            except Exception:
                logger.exception("call housekeeping failed")

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def in_call(self, client: CallClient) -> bool:
        return client in self._by_client

    def _participant(self, client: CallClient) -> tuple[LiveCall, Participant]:
        participant = self._by_client.get(client)
        call = None if participant is None else self._calls.get(participant.lesson_id)
        if participant is None or call is None:
            raise DomainError(ErrorCode.NOT_FOUND, "join a lesson first")
        return call, participant

    def _moderator(self, client: CallClient) -> tuple[LiveCall, Participant]:
        call, participant = self._participant(client)
        call.room.require_moderator(participant.account_id)
        return call, participant

    def _send(self, participants: Iterable[Participant], kind: str, body: Message) -> None:
        payload = encode(kind, 0, body)
        for participant in participants:
            participant.client.send_message(payload)

    def _notice(
        self, targets: Iterable[Participant], call: LiveCall, kind: NoticeKind, **fields: Any
    ) -> None:
        self._send(
            targets, PUSH_CALL_NOTICE, CallNotice(call_id=call.lesson.id, kind=kind, **fields)
        )

    def _of(self, call: LiveCall, account_id: int) -> list[Participant]:
        return [p for p in call.participants.values() if p.account_id == account_id]

    def _state(self, call: LiveCall) -> None:
        self._send(call.participants.values(), PUSH_CALL_STATE, call.room.snapshot())

    def _tracks_for(self, call: LiveCall, participant: Participant) -> list[Track]:
        room = call.room_of(participant)
        return [
            track
            for other in call.participants.values()
            if other is not participant and call.room_of(other) == room
            for track in other.tracks.values()
        ]

    def _announce(self, call: LiveCall, exclude: Participant | None = None) -> None:
        for participant in call.participants.values():
            if participant is not exclude:
                tracks = CallTracks(
                    call_id=call.lesson.id, tracks=self._tracks_for(call, participant)
                )
                participant.client.send_message(encode(PUSH_CALL_TRACKS, 0, tracks))

    # --- joining -------------------------------------------------------------------------------

    async def get(self, account_id: int, lesson_id: int) -> CallInfo:
        lesson = await self._lessons.for_member(account_id, lesson_id)
        call = self._calls.get(lesson_id)
        return lesson.info(recording=call is not None and call.room.recording)

    async def join(self, client: CallClient, account_id: int, lesson_id: int) -> CallJoined:
        lesson = await self._lessons.for_member(account_id, lesson_id)
        if lesson.state in ("ended", "cancelled"):
            raise DomainError(ErrorCode.LESSON_ENDED, "the lesson is over")
        if lesson.state != "live":
            if lesson.host_account_id != account_id:
                raise DomainError(ErrorCode.LESSON_NOT_STARTED, "the lesson has not started yet")
            # A lesson goes live only where it can be held: find its media server first.
            await self._place(f"lesson-{lesson.id}")
            lesson = await self._lessons.start(lesson)
        if client in self._by_client:
            await self.leave(client)
        call = await self._live(lesson)
        if account_id in call.banned:
            raise DomainError(ErrorCode.FORBIDDEN, "the host removed you from this lesson")
        profile = await self._store.accounts.get_profile(account_id)
        name = f"{profile.last_name} {profile.first_name}" if profile else str(account_id)
        person = call.room.enter(account_id, name, _sex(profile.sex) if profile else None)
        room_id = call.sfu_room(person.room)
        peer_id = f"a{account_id}-{next(self._ids)}"
        try:
            info: TransportInfo = await self._request(
                call, PeerCreate(room_id=room_id, peer_id=peer_id)
            )
        except DomainError:
            call.room.exit(account_id)
            raise
        participant = Participant(client, account_id, lesson.id, peer_id)
        call.participants[peer_id] = participant
        call.empty_since = None
        self._by_client[client] = participant
        self._by_peer[peer_id] = participant
        await self._lessons.entered(lesson, account_id)
        self._state(call)
        return CallJoined(
            call=lesson.info(recording=call.room.recording),
            peer_id=peer_id,
            ice_ufrag=info.ice_ufrag,
            ice_pwd=info.ice_pwd,
            fingerprint=info.fingerprint,
            candidates=[
                MediaCandidate(protocol=c.protocol, address=c.address, port=c.port)
                for c in info.candidates
            ],
            tracks=self._tracks_for(call, participant),
            people=call.room.snapshot(),
            board=await self._store.lessons.board(lesson.id),
        )

    async def _live(self, lesson: Lesson) -> LiveCall:
        call = self._calls.get(lesson.id)
        if call is not None:
            return call
        call = LiveCall(lesson, CallRoom(lesson.id, lesson.chat_id, lesson.host_account_id))
        worker = await self._place(call.main)
        try:
            await worker.request(RoomCreate(room_id=call.main))
        except ControlError as exc:
            raise DomainError(ErrorCode.UNAVAILABLE, exc.message) from None
        # Another join may have made it meanwhile: the first one wins.
        return self._calls.setdefault(lesson.id, call)

    async def _place(self, room_id: str) -> MediaWorker:
        try:
            return await self._media.place(room_id)
        except ControlError as exc:
            raise DomainError(ErrorCode.UNAVAILABLE, exc.message) from None

    async def offer(
        self,
        client: CallClient,
        sdp: str,
        sources: dict[str, Source],
        subscriptions: dict[str, str],
    ) -> str:
        call, participant = self._participant(client)
        if "screen" in sources.values() and not call.room.may_share_screen(participant.account_id):
            raise DomainError(ErrorCode.FORBIDDEN, "the host has not allowed you to share a screen")
        answer: Answer = await self._request(
            call,
            PeerOffer(
                peer_id=participant.peer_id,
                sdp=sdp,
                sources=sources,
                subscriptions=subscriptions,
            ),
        )
        for producer in answer.producers:
            participant.tracks[producer.producer_id] = Track(
                track_id=producer.producer_id,
                account_id=participant.account_id,
                kind=producer.kind,
                source=producer.source,
            )
        for producer_id in answer.closed_producers:
            participant.tracks.pop(producer_id, None)
        if answer.producers or answer.closed_producers:
            self._announce(call, exclude=participant)
            person = call.room.people.get(participant.account_id)
            sharing = any(
                t.source == "screen" for p in self._of(call, participant.account_id)
                for t in p.tracks.values()
            )  # fmt: skip
            if person is not None and person.screen != sharing:
                person.screen = sharing
                self._state(call)
        return answer.sdp

    async def layer(self, client: CallClient, track_id: str, layer: Layer) -> None:
        call, participant = self._participant(client)
        await self._request(
            call, PeerLayer(peer_id=participant.peer_id, producer_id=track_id, layer=layer)
        )

    async def leave(self, client: CallClient) -> None:
        participant = self._by_client.get(client)
        if participant is None:
            return
        call = self._calls.get(participant.lesson_id)
        self._forget(participant)
        if call is None:
            return
        call.participants.pop(participant.peer_id, None)
        call.room.exit(participant.account_id)
        if not call.participants:
            call.empty_since = self._clock()
        await self._lessons.exited(call.lesson, participant.account_id)
        with contextlib.suppress(DomainError):  # the worker is gone: nothing left to close
            await self._request(call, PeerClose(peer_id=participant.peer_id))
        if participant.tracks:
            self._announce(call)
        self._state(call)

    def _forget(self, participant: Participant) -> None:
        self._by_client.pop(participant.client, None)
        self._by_peer.pop(participant.peer_id, None)

    # --- people's own state --------------------------------------------------------------------

    async def media(self, client: CallClient, mic: bool, camera: bool) -> None:
        call, participant = self._participant(client)
        person = call.room.person(participant.account_id)
        person.mic, person.camera = mic, camera
        self._state(call)

    async def hand(self, client: CallClient, raised: bool) -> None:
        call, participant = self._participant(client)
        call.room.hand(participant.account_id, raised)
        self._state(call)

    # --- the host's controls -------------------------------------------------------------------

    async def moderate(self, client: CallClient, account_id: int, action: ModerateAction) -> None:
        call, host = self._moderator(client)
        person = call.room.person(account_id)
        targets = self._of(call, account_id)
        if action == "lower_hand":
            person.hand = None
        elif action == "mute":
            person.mic = False
        elif action == "camera_off":
            person.camera = False
        elif action == "remove":
            if person.role == "host":
                raise DomainError(ErrorCode.FORBIDDEN, "the host cannot be removed")
            call.banned.add(account_id)
        if action != "lower_hand":
            self._notice(
                targets, call, "removed" if action == "remove" else action, by=host.account_id
            )
        if action == "remove":
            for target in targets:
                await self.leave(target.client)
        self._state(call)

    async def set_role(self, client: CallClient, account_id: int, cohost: bool) -> None:
        call, participant = self._participant(client)
        call.room.set_role(participant.account_id, account_id, cohost)
        self._state(call)

    async def permit(self, client: CallClient, account_id: int | None, screen: bool) -> None:
        call, _ = self._moderator(client)
        call.room.permit(account_id, screen)
        self._state(call)

    async def lower_hands(self, client: CallClient) -> None:
        call, _ = self._moderator(client)
        call.room.lower_hands()
        self._state(call)

    async def end(self, client: CallClient) -> None:
        call, _ = self._moderator(client)
        await self._lessons.end(call.lesson, "host")

    async def record(self, client: CallClient, on: bool) -> None:
        """The SFU records the main room; the file goes to the chat when it stops."""
        call, _ = self._moderator(client)
        if self._recordings is None:
            raise DomainError(ErrorCode.UNAVAILABLE, "recording is not set up on this server")
        if on and not call.room.recording:
            path = self._recordings.new_path(call.lesson, self._clock())
            await self._request(call, RecordStart(room_id=call.main, path=str(path)))
            call.room.recording = True
        elif not on and call.room.recording:
            ended: RecordingEnded = await self._request(call, RecordStop(room_id=call.main))
            call.room.recording = False
            self._spawn(self._publish(call.lesson, ended))
        self._state(call)

    async def _publish(self, lesson: Lesson, ended: RecordingEnded) -> None:
        if self._recordings is not None:
            await self._recordings.publish(lesson, ended)

    # --- the whiteboard ------------------------------------------------------------------------

    async def board(self, client: CallClient, ops: list[BoardOp]) -> None:
        call, participant = self._participant(client)
        if await self._store.lessons.board_size(call.lesson.id) + len(ops) > MAX_BOARD_OPS:
            raise DomainError(ErrorCode.CONFLICT, "the board is full: clear it first")
        mine = [msgspec.structs.replace(op, account_id=participant.account_id) for op in ops]
        fresh = await self._store.lessons.board_add(call.lesson.id, mine)
        if fresh:
            others = [p for p in call.participants.values() if p is not participant]
            self._send(others, PUSH_CALL_BOARD, BoardPush(call_id=call.lesson.id, ops=fresh))

    # --- breakout rooms ------------------------------------------------------------------------

    async def open_rooms(
        self,
        client: CallClient,
        names: list[str],
        assign: list[tuple[int, int]],
        spread: bool,
        minutes: int | None,
    ) -> None:
        call, _ = self._moderator(client)
        close_at = None if minutes is None else self._clock() + minutes * 60_000
        placed = call.room.open_rooms(names, assign, spread, close_at, self._rng)
        for room in call.room.rooms:
            await self._request(call, RoomCreate(room_id=call.sfu_room(room.index)))
        await self._move_peers(call, placed)

    async def _move_peers(self, call: LiveCall, accounts: Iterable[int]) -> None:
        for account_id in set(accounts):
            person = call.room.people.get(account_id)
            target = call.sfu_room(person.room if person is not None else 0)
            for participant in self._of(call, account_id):
                await self._request(call, PeerMove(peer_id=participant.peer_id, room_id=target))
        self._announce(call)
        self._state(call)

    async def move(self, client: CallClient, account_id: int, room: int) -> None:
        call, participant = self._participant(client)
        if account_id != participant.account_id or not room:
            # Moving others, or coming back to the main room on one's own, is the host's.
            call.room.require_moderator(participant.account_id)
        elif not call.room.is_moderator(participant.account_id):
            raise DomainError(ErrorCode.FORBIDDEN, "the host puts people in rooms")
        call.room.move(account_id, room)
        await self._move_peers(call, [account_id])

    async def broadcast(self, client: CallClient, text: str) -> None:
        call, host = self._moderator(client)
        self._notice(call.participants.values(), call, "broadcast", by=host.account_id, text=text)

    async def help(self, client: CallClient) -> None:
        call, participant = self._participant(client)
        moderators = [p for p in call.participants.values() if call.room.is_moderator(p.account_id)]
        self._notice(
            moderators, call, "help", by=participant.account_id, room=call.room_of(participant)
        )

    async def close_rooms(self, client: CallClient) -> None:
        call, _ = self._moderator(client)
        await self._close_rooms(call)

    async def _close_rooms(self, call: LiveCall) -> None:
        rooms = [r.index for r in call.room.rooms]
        moved = call.room.close_rooms()
        await self._move_peers(call, moved)
        for index in rooms:
            await self._request(call, RoomClose(room_id=call.sfu_room(index)))

    # --- endings -------------------------------------------------------------------------------

    def _finished(self, lesson: Lesson) -> None:
        """The lesson ended (from the journal, the host, or by itself): everyone goes."""
        call = self._calls.pop(lesson.id, None)
        if call is None:
            return
        self._notice(call.participants.values(), call, "ended")
        for participant in call.participants.values():
            self._forget(participant)
        rooms = [call.sfu_room(r.index) for r in call.room.rooms] + [call.main]
        call.participants.clear()

        async def close() -> None:
            if call.room.recording:
                call.room.recording = False
                ended = await self._request(call, RecordStop(room_id=call.main))
                await self._publish(lesson, ended)
            for room_id in rooms:
                await self._request(call, RoomClose(room_id=room_id))
            self._media.forget(call.main)

        self._spawn(close())

    async def run(self) -> None:
        """Breakout timers every second; lessons that end by themselves."""
        while True:
            await asyncio.sleep(TICK_S)
            await self.tick()

    async def tick(self) -> None:
        now = self._clock()
        for call in list(self._calls.values()):
            if call.room.rooms_close_at is not None and now >= call.room.rooms_close_at:
                await self._close_rooms(call)
            reason = self._ends_by_itself(call.lesson, call.empty_since, now)
            if reason is not None:
                await self._lessons.end(call.lesson, reason)
        # Lessons live in the store with no call here (the server restarted) are empty.
        if now - self._started >= self._times.empty_end_ms:
            for lesson in await self._store.lessons.live():
                if lesson.id not in self._calls:
                    reason = self._ends_by_itself(lesson, self._started, now) or "empty"
                    await self._lessons.end(lesson, reason)

    def _ends_by_itself(self, lesson: Lesson, empty_since: int | None, now: int) -> str | None:
        if empty_since is not None and now - empty_since >= self._times.empty_end_ms:
            return "empty"
        if now >= lesson.ends_at + self._times.overrun_ms:
            return "overrun"
        return None

    # --- what the media plane tells us ---------------------------------------------------------

    def worker_lost(self, rooms: Iterable[str]) -> None:
        """A worker died with these rooms: everyone in them has to join again."""
        lost = set(rooms)
        for call in list(self._calls.values()):
            if call.main not in lost:
                continue
            del self._calls[call.lesson.id]
            push = CallReconnect(call_id=call.lesson.id, reason="media server restarted")
            self._send(call.participants.values(), PUSH_CALL_RECONNECT, push)
            for participant in call.participants.values():
                self._forget(participant)
                self._spawn(self._lessons.exited(call.lesson, participant.account_id))

    def media_event(self, event: Body) -> None:
        if isinstance(event, ActiveSpeaker):
            speaker = self._by_peer.get(event.peer_id)
            call = None if speaker is None else self._calls.get(speaker.lesson_id)
            if speaker is None or call is None:
                return
            room = call.room_of(speaker)
            listeners = [p for p in call.participants.values() if call.room_of(p) == room]
            speaking = CallSpeaker(call_id=call.lesson.id, account_id=speaker.account_id)
            self._send(listeners, PUSH_CALL_SPEAKER, speaking)
        elif isinstance(event, RecordingEnded):
            # Ended without being stopped (writing failed, the worker shut down).
            for call in self._calls.values():
                if call.main == event.room_id and call.room.recording:
                    call.room.recording = False
                    self._state(call)
                    self._spawn(self._publish(call.lesson, event))
        elif isinstance(event, PeerState) and event.state == "failed":
            failed = self._by_peer.get(event.peer_id)
            if failed is not None:
                again = CallReconnect(call_id=failed.lesson_id, reason=event.reason)
                self._send([failed], PUSH_CALL_RECONNECT, again)

    # Used by tests and the bench: the lesson's live calls.
    def live_call(self, lesson_id: int) -> LiveCall | None:
        return self._calls.get(lesson_id)


def _sex(value: str) -> Sex | None:
    return "male" if value == "male" else "female" if value == "female" else None
