"""When a lesson may be: plain functions over the timetable and the clock, no storage.

- In a subject chat a lesson takes one of the chat's groups' timetable slots that has not
  ended; its times are the slot's.
- In any other chat it is on a future day in the school's time zone (never today).
- Attendance joins a person's stays: a reconnect is not a second presence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from protocol.errors import ErrorCode
from server.domain.errors import DomainError, FieldError
from server.domain.roster import DEFAULT_TIMEZONE
from server.store.lessons import SlotRow, Stay

# A gap shorter than this between two stays is a reconnect, not leaving.
RECONNECT_GAP_MS = 120_000


@dataclass(frozen=True, slots=True)
class When:
    starts_at: int
    ends_at: int
    slot_id: int | None


def _refuse(field: str, message: str) -> DomainError:
    return DomainError(ErrorCode.SLOT_NOT_AVAILABLE, message, errors=(FieldError(field, message),))


def in_slot(slot: SlotRow | None, group_ids: Sequence[int], now: int, field: str) -> When:
    """A subject chat's lesson: the slot must be one of the chat's groups' and not over."""
    if slot is None or slot.group_id not in group_ids:
        raise _refuse(field, "no such lesson in this chat's timetable")
    if slot.ends_at <= now:
        raise _refuse(field, "this lesson of the timetable has already ended")
    return When(slot.starts_at, slot.ends_at, slot.id)


def slot_starting(slots: Iterable[SlotRow], starts_at: int) -> SlotRow | None:
    return next((s for s in slots if s.starts_at == starts_at), None)


def on_future_day(starts_at: dt.datetime, minutes: int, timezone: str | None, now: int) -> When:
    """Any other chat: a lesson on a day after today, today being the school's."""
    zone = ZoneInfo(timezone or DEFAULT_TIMEZONE)
    today = dt.datetime.fromtimestamp(now / 1000, zone).date()
    if starts_at.astimezone(zone).date() <= today:
        raise _refuse("starts_at", "lessons in this chat are scheduled on future days only")
    start = int(starts_at.timestamp() * 1000)
    return When(start, start + minutes * 60_000, None)


@dataclass(frozen=True, slots=True)
class Presence:
    account_id: int
    first_joined_at: int
    last_left_at: int
    seconds: int
    presences: int  # separate stays, reconnects joined


def attendance(stays: Sequence[Stay], ended_at: int) -> list[Presence]:
    """Each person's time in the lesson; stays still open count until ``ended_at``."""
    by_account: dict[int, list[tuple[int, int]]] = {}
    for stay in stays:
        left = stay.left_at if stay.left_at is not None else ended_at
        by_account.setdefault(stay.account_id, []).append(
            (stay.joined_at, max(left, stay.joined_at))
        )
    result = []
    for account_id, spans in sorted(by_account.items()):
        spans.sort()
        merged = [list(spans[0])]
        for start, end in spans[1:]:
            if start - merged[-1][1] <= RECONNECT_GAP_MS:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        result.append(
            Presence(
                account_id=account_id,
                first_joined_at=merged[0][0],
                last_left_at=merged[-1][1],
                seconds=sum(end - start for start, end in merged) // 1000,
                presences=len(merged),
            )
        )
    return result
