"""The state of one live lesson apart from media: who is in it and where, what they are
doing, who may do what, the breakout rooms. Plain data and rules, no IO: the call service
(``server.domain.calls``) applies what these methods decide to the SFU and the clients.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from protocol.base import Sex
from protocol.calls import (
    MAX_BREAKOUT_ROOMS,
    BreakoutRoom,
    CallPeople,
    CallPerson,
    CallRole,
)
from protocol.errors import ErrorCode
from server.domain.errors import DomainError


@dataclass
class Attendee:
    account_id: int
    name: str
    role: CallRole
    room: int = 0
    sex: Sex | None = None
    mic: bool = False
    camera: bool = False
    screen: bool = False
    hand: int | None = None
    # None: as the call's policy says; True/False: the host's word for this person.
    screen_allowed: bool | None = None
    connections: int = 0


@dataclass
class CallRoom:
    lesson_id: int
    chat_id: int
    host_id: int | None
    people: dict[int, Attendee] = field(default_factory=dict)
    rooms: list[BreakoutRoom] = field(default_factory=list)
    rooms_close_at: int | None = None
    screen_for_all: bool = False
    recording: bool = False
    _hands: int = 0
    # People who dropped out, as they were: a reconnect puts them back (role, room, rights).
    _away: dict[int, Attendee] = field(default_factory=dict)

    # --- who -----------------------------------------------------------------------------------

    def enter(self, account_id: int, name: str, sex: Sex | None = None) -> Attendee:
        person = self.people.get(account_id)
        if person is None:
            person = self._away.pop(account_id, None)
            if person is None:
                role: CallRole = "host" if account_id == self.host_id else "member"
                person = Attendee(account_id, name, role, sex=sex)
            person.mic = person.camera = person.screen = False
            if not any(r.index == person.room for r in self.rooms):
                person.room = 0
            self.people[account_id] = person
        person.connections += 1
        return person

    def exit(self, account_id: int) -> bool:
        """One connection of the person left; True when it was their last."""
        person = self.people.get(account_id)
        if person is None:
            return False
        person.connections -= 1
        if person.connections > 0:
            return False
        self._away[account_id] = self.people.pop(account_id)
        person.hand = None
        return True

    def is_moderator(self, account_id: int) -> bool:
        person = self.people.get(account_id)
        if person is not None:
            return person.role in ("host", "cohost")
        return account_id == self.host_id

    def require_moderator(self, account_id: int) -> None:
        if not self.is_moderator(account_id):
            raise DomainError(ErrorCode.FORBIDDEN, "only the lesson's host and co-hosts may")

    def person(self, account_id: int) -> Attendee:
        person = self.people.get(account_id)
        if person is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"{account_id} is not in the lesson")
        return person

    def may_share_screen(self, account_id: int) -> bool:
        person = self.people.get(account_id)
        if person is None:
            return False
        if person.role in ("host", "cohost"):
            return True
        if person.screen_allowed is not None:
            return person.screen_allowed
        return self.screen_for_all

    # --- what they do --------------------------------------------------------------------------

    def hand(self, account_id: int, raised: bool) -> None:
        person = self.person(account_id)
        if raised and person.hand is None:
            self._hands += 1
            person.hand = self._hands
        elif not raised:
            person.hand = None

    def lower_hands(self) -> None:
        for person in self.people.values():
            person.hand = None

    def set_role(self, actor: int, account_id: int, cohost: bool) -> None:
        if actor != self.host_id:
            raise DomainError(ErrorCode.FORBIDDEN, "only the host names co-hosts")
        person = self.person(account_id)
        if person.role == "host":
            raise DomainError(ErrorCode.CONFLICT, "the host stays the host")
        person.role = "cohost" if cohost else "member"

    def permit(self, account_id: int | None, screen: bool) -> None:
        if account_id is None:
            self.screen_for_all = screen
            for person in self.people.values():
                person.screen_allowed = None
        else:
            self.person(account_id).screen_allowed = screen

    # --- breakout rooms ------------------------------------------------------------------------

    def open_rooms(
        self,
        names: list[str],
        assign: list[tuple[int, int]],
        spread: bool,
        close_at: int | None,
        rng: random.Random,
    ) -> dict[int, int]:
        """Open rooms 1…N; returns where each person goes (moderators stay in the main
        room unless assigned). Random spreading fills the emptiest room first."""
        if self.rooms:
            raise DomainError(ErrorCode.CONFLICT, "breakout rooms are already open")
        if len(names) > MAX_BREAKOUT_ROOMS:
            raise DomainError(ErrorCode.VALIDATION_FAILED, f"at most {MAX_BREAKOUT_ROOMS} rooms")
        count = len(names)
        placed: dict[int, int] = {}
        for account_id, room in assign:
            if room > count:
                raise DomainError(ErrorCode.VALIDATION_FAILED, f"there is no room {room}")
            if account_id in self.people:
                placed[account_id] = room
        if spread:
            sizes = [0] * (count + 1)
            for room in placed.values():
                sizes[room] += 1
            rest = [
                p.account_id
                for p in self.people.values()
                if p.account_id not in placed and p.role == "member"
            ]
            rng.shuffle(rest)
            for account_id in rest:
                room = min(range(1, count + 1), key=lambda r: (sizes[r], r))
                placed[account_id] = room
                sizes[room] += 1
        self.rooms = [BreakoutRoom(index=i + 1, name=n) for i, n in enumerate(names)]
        self.rooms_close_at = close_at
        for account_id, room in placed.items():
            self.people[account_id].room = room
        return placed

    def move(self, account_id: int, room: int) -> None:
        if room and not any(r.index == room for r in self.rooms):
            raise DomainError(ErrorCode.NOT_FOUND, f"there is no room {room}")
        self.person(account_id).room = room

    def close_rooms(self) -> list[int]:
        """Everyone back to the main room; returns who moved."""
        moved = [p.account_id for p in self.people.values() if p.room]
        for person in self.people.values():
            person.room = 0
        self.rooms = []
        self.rooms_close_at = None
        return moved

    # --- what everyone sees --------------------------------------------------------------------

    def snapshot(self) -> CallPeople:
        return CallPeople(
            call_id=self.lesson_id,
            people=[
                CallPerson(
                    account_id=p.account_id,
                    name=p.name,
                    role=p.role,
                    room=p.room,
                    sex=p.sex,
                    mic=p.mic,
                    camera=p.camera,
                    screen=p.screen,
                    hand=p.hand,
                    can_screen=self.may_share_screen(p.account_id),
                )
                for p in self.people.values()
            ],
            rooms=self.rooms,
            rooms_close_at=self.rooms_close_at,
            recording=self.recording,
            screen_for_all=self.screen_for_all,
        )
