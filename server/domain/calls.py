"""Calls: who is in the call of a chat, and what the SFU is told.

A call lives in a room on one SFU worker. Each participant connection gets a peer there;
the tracks it publishes are announced to the others, who renegotiate to receive them. The
lesson rules (who may start, host controls, breakout rooms) build on this.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from protocol.errors import ErrorCode
from protocol.messages import (
    PUSH_CALL_RECONNECT,
    PUSH_CALL_SPEAKER,
    PUSH_CALL_TRACKS,
    CallJoined,
    CallReconnect,
    CallSpeaker,
    CallTracks,
    Layer,
    MediaCandidate,
    Source,
    Track,
    encode,
)
from protocol.sfu_control import (
    ActiveSpeaker,
    Answer,
    Body,
    ControlError,
    PeerClose,
    PeerCreate,
    PeerLayer,
    PeerOffer,
    PeerState,
    Request,
    RoomClose,
    TransportInfo,
)
from server.domain.chats import ChatService
from server.domain.errors import DomainError

logger = logging.getLogger("parta.calls")


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


@dataclass(eq=False)
class Participant:
    client: CallClient
    account_id: int
    chat_id: int
    room_id: str
    peer_id: str
    tracks: dict[str, Track] = field(default_factory=dict)


def room_of(chat_id: int) -> str:
    return f"chat-{chat_id}"


class CallService:
    def __init__(self, media: MediaPlane, chats: ChatService) -> None:
        self._media = media
        self._chats = chats
        self._rooms: dict[str, dict[str, Participant]] = {}
        self._by_client: dict[CallClient, Participant] = {}
        self._by_peer: dict[str, Participant] = {}
        self._ids = itertools.count(1)

    async def _request(self, room_id: str, request: Request) -> Any:
        worker = self._media.worker_for(room_id)
        if worker is None:
            raise DomainError(ErrorCode.UNAVAILABLE, "the call's media server went away")
        try:
            return await worker.request(request)
        except ControlError as exc:
            code = ErrorCode.VALIDATION_FAILED if exc.code == "bad_sdp" else ErrorCode.UNAVAILABLE
            raise DomainError(code, exc.message) from None

    def in_call(self, client: CallClient) -> bool:
        return client in self._by_client

    def _participant(self, client: CallClient) -> Participant:
        participant = self._by_client.get(client)
        if participant is None:
            raise DomainError(ErrorCode.NOT_FOUND, "join a call first")
        return participant

    async def join(self, client: CallClient, account_id: int, chat_id: int) -> CallJoined:
        await self._chats.chat_info(account_id, chat_id)  # members only
        if client in self._by_client:
            await self.leave(client)
        room_id = room_of(chat_id)
        try:
            await self._media.place(room_id)
        except ControlError as exc:
            raise DomainError(ErrorCode.UNAVAILABLE, exc.message) from None
        peer_id = f"a{account_id}-{next(self._ids)}"
        info: TransportInfo = await self._request(
            room_id, PeerCreate(room_id=room_id, peer_id=peer_id)
        )
        participant = Participant(client, account_id, chat_id, room_id, peer_id)
        self._rooms.setdefault(room_id, {})[peer_id] = participant
        self._by_client[client] = participant
        self._by_peer[peer_id] = participant
        return CallJoined(
            chat_id=chat_id,
            peer_id=peer_id,
            ice_ufrag=info.ice_ufrag,
            ice_pwd=info.ice_pwd,
            fingerprint=info.fingerprint,
            candidates=[
                MediaCandidate(protocol=c.protocol, address=c.address, port=c.port)
                for c in info.candidates
            ],
            tracks=self._tracks_for(participant),
        )

    async def offer(
        self,
        client: CallClient,
        sdp: str,
        sources: dict[str, Source],
        subscriptions: dict[str, str],
    ) -> str:
        participant = self._participant(client)
        answer: Answer = await self._request(
            participant.room_id,
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
            self._announce(participant.room_id, exclude=participant)
        return answer.sdp

    async def layer(self, client: CallClient, track_id: str, layer: Layer) -> None:
        participant = self._participant(client)
        await self._request(
            participant.room_id,
            PeerLayer(peer_id=participant.peer_id, producer_id=track_id, layer=layer),
        )

    async def leave(self, client: CallClient) -> None:
        participant = self._by_client.get(client)
        if participant is None:
            return
        self._forget(participant)
        room = self._rooms.get(participant.room_id, {})
        try:
            if room:
                await self._request(participant.room_id, PeerClose(peer_id=participant.peer_id))
            else:
                await self._request(participant.room_id, RoomClose(room_id=participant.room_id))
        except DomainError:
            pass  # the worker is gone: nothing left to close
        if not room:
            self._rooms.pop(participant.room_id, None)
            self._media.forget(participant.room_id)
        elif participant.tracks:
            self._announce(participant.room_id)

    def _forget(self, participant: Participant) -> None:
        self._by_client.pop(participant.client, None)
        self._by_peer.pop(participant.peer_id, None)
        room = self._rooms.get(participant.room_id)
        if room is not None:
            room.pop(participant.peer_id, None)

    def _tracks_for(self, participant: Participant) -> list[Track]:
        room = self._rooms.get(participant.room_id, {})
        return [
            track
            for other in room.values()
            if other is not participant
            for track in other.tracks.values()
        ]

    def _announce(self, room_id: str, exclude: Participant | None = None) -> None:
        for participant in self._rooms.get(room_id, {}).values():
            if participant is exclude:
                continue
            tracks = CallTracks(chat_id=participant.chat_id, tracks=self._tracks_for(participant))
            participant.client.send_message(encode(PUSH_CALL_TRACKS, 0, tracks))

    # --- what the media plane tells us -----------------------------------------------------

    def worker_lost(self, rooms: Iterable[str]) -> None:
        """A worker died with these rooms: everyone in them has to join again."""
        for room_id in rooms:
            for participant in list(self._rooms.pop(room_id, {}).values()):
                self._forget(participant)
                push = CallReconnect(chat_id=participant.chat_id, reason="media server restarted")
                participant.client.send_message(encode(PUSH_CALL_RECONNECT, 0, push))

    def media_event(self, event: Body) -> None:
        if isinstance(event, ActiveSpeaker):
            speaker = self._by_peer.get(event.peer_id)
            if speaker is None:
                return
            payload = encode(
                PUSH_CALL_SPEAKER,
                0,
                CallSpeaker(chat_id=speaker.chat_id, account_id=speaker.account_id),
            )
            for participant in self._rooms.get(event.room_id, {}).values():
                participant.client.send_message(payload)
        elif isinstance(event, PeerState) and event.state == "failed":
            failed = self._by_peer.get(event.peer_id)
            if failed is not None:
                push = CallReconnect(chat_id=failed.chat_id, reason=event.reason)
                failed.client.send_message(encode(PUSH_CALL_RECONNECT, 0, push))
