"""What happens to messages after they are posted: edits, deletions, reactions, pins, polls,
and each member's own view (cleared history). Every change is also an event on the chat's
log, so a client that resumes gets it in order with everything else."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from protocol.messages import Event, Poll, Reaction
from server.store.chats import _EVENT_COLUMNS, _append, _event
from server.store.engine import Database, Txn
from server.store.lessons import cards_in
from server.store.search import search_index


@dataclass(frozen=True, slots=True)
class MemberState:
    role: str
    cleared_seq: int
    silenced_until: int
    muted: bool


async def _message(txn: Txn, chat_id: int, seq: int) -> Event | None:
    row = await txn.fetchrow(
        f"SELECT {_EVENT_COLUMNS} FROM chat_events"
        " WHERE chat_id = $1 AND seq = $2 AND kind = 'message'",
        chat_id,
        seq,
    )
    return None if row is None else _event(row)


async def _poll(txn: Txn, chat_id: int, seq: int, spec: Poll) -> Poll:
    """The poll as it stands: its spec with the votes, voters and whether it is closed."""
    meta = await txn.fetchrow(
        "SELECT anonymous, closed FROM polls WHERE chat_id = $1 AND seq = $2", chat_id, seq
    )
    rows = await txn.fetch(
        "SELECT option, account_id FROM poll_votes WHERE chat_id = $1 AND seq = $2"
        " ORDER BY option, account_id",
        chat_id,
        seq,
    )
    voters: list[list[int]] = [[] for _ in spec.options]
    for row in rows:
        if 0 <= row[0] < len(voters):
            voters[row[0]].append(row[1])
    anonymous = bool(meta[0]) if meta is not None else spec.anonymous
    return msgspec.structs.replace(
        spec,
        closed=bool(meta[1]) if meta is not None else False,
        votes=[len(v) for v in voters],
        voters=None if anonymous else voters,
    )


class MessageStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._search = search_index(db.dialect)

    async def member_state(self, chat_id: int, account_id: int) -> MemberState | None:
        async with self._db.read("member_state") as reader:
            row = await reader.fetchrow(
                "SELECT role, cleared_seq, silenced_until, muted FROM chat_members"
                " WHERE chat_id = $1 AND account_id = $2",
                chat_id,
                account_id,
            )
        return None if row is None else MemberState(row[0], row[1], row[2], bool(row[3]))

    async def message(self, chat_id: int, seq: int) -> Event | None:
        async with self._db.read("message") as reader:
            return await _message(reader, chat_id, seq)

    async def post(self, event: Event, poll: Poll | None) -> tuple[Event, bool]:
        """Append a message (with its poll); a retry with the same client id returns the
        first one (duplicate)."""
        async with self._db.transaction("post_message") as txn:
            row = await txn.fetchrow(
                f"SELECT {_EVENT_COLUMNS} FROM chat_events WHERE actor_id = $1 AND client_id = $2",
                event.actor_id,
                event.client_id,
            )
            if row is not None:
                return _event(row), True
            fields = msgspec.structs.asdict(event)
            for key in ("chat_id", "seq", "kind", "actor_id", "at"):
                fields.pop(key)
            posted = await _append(
                txn, event.chat_id, "message", event.actor_id, event.at, **fields
            )
            await self._search.index(txn, posted.chat_id, posted.seq, posted.text)
            if poll is not None:
                await txn.execute(
                    "INSERT INTO polls (chat_id, seq, options, multiple, anonymous)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    posted.chat_id,
                    posted.seq,
                    len(poll.options),
                    poll.multiple,
                    poll.anonymous,
                )
        return posted, False

    async def edit(self, chat_id: int, seq: int, actor_id: int, text: str, now: int) -> Event:
        async with self._db.transaction("edit_message") as txn:
            await txn.execute(
                "UPDATE chat_events SET text = $3, edited_at = $4 WHERE chat_id = $1 AND seq = $2",
                chat_id,
                seq,
                text,
                now,
            )
            await self._search.index(txn, chat_id, seq, text)
            return await _append(
                txn, chat_id, "edited", actor_id, now, target=seq, text=text, edited_at=now
            )

    async def delete(self, chat_id: int, seq: int, actor_id: int, now: int) -> Event:
        """For everyone: the text and what it carried are gone; the place in the log stays."""
        async with self._db.transaction("delete_message") as txn:
            await txn.execute(
                "UPDATE chat_events SET deleted = TRUE, text = NULL, data = NULL"
                " WHERE chat_id = $1 AND seq = $2",
                chat_id,
                seq,
            )
            await txn.execute("DELETE FROM reactions WHERE chat_id = $1 AND seq = $2", chat_id, seq)
            await txn.execute("DELETE FROM pins WHERE chat_id = $1 AND seq = $2", chat_id, seq)
            await self._search.remove(txn, chat_id, seq)
            return await _append(txn, chat_id, "deleted", actor_id, now, target=seq)

    async def react(
        self, chat_id: int, seq: int, actor_id: int, emoji: str, on: bool, now: int
    ) -> Event | None:
        """Add or take back a reaction; None when nothing changed."""
        async with self._db.transaction("react") as txn:
            if on:
                changed = await txn.execute(
                    "INSERT INTO reactions (chat_id, seq, account_id, emoji, at)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    chat_id,
                    seq,
                    actor_id,
                    emoji,
                    now,
                )
            else:
                changed = await txn.execute(
                    "DELETE FROM reactions WHERE chat_id = $1 AND seq = $2 AND account_id = $3"
                    " AND emoji = $4",
                    chat_id,
                    seq,
                    actor_id,
                    emoji,
                )
            if not changed:
                return None
            kind = "reaction_added" if on else "reaction_removed"
            return await _append(txn, chat_id, kind, actor_id, now, target=seq, emoji=emoji)

    async def pin(self, chat_id: int, seq: int, actor_id: int, on: bool, now: int) -> Event | None:
        async with self._db.transaction("pin") as txn:
            if on:
                changed = await txn.execute(
                    "INSERT INTO pins (chat_id, seq, pinned_by, at) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT DO NOTHING",
                    chat_id,
                    seq,
                    actor_id,
                    now,
                )
            else:
                changed = await txn.execute(
                    "DELETE FROM pins WHERE chat_id = $1 AND seq = $2", chat_id, seq
                )
            if not changed:
                return None
            return await _append(
                txn, chat_id, "pinned" if on else "unpinned", actor_id, now, target=seq
            )

    async def pins(self, chat_id: int) -> list[int]:
        async with self._db.read("pins") as reader:
            rows = await reader.fetch(
                "SELECT seq FROM pins WHERE chat_id = $1 ORDER BY at DESC", chat_id
            )
        return [row[0] for row in rows]

    async def poll_state(self, chat_id: int, seq: int) -> tuple[bool, bool, int] | None:
        """(closed, multiple, number of options) of a poll, or None."""
        async with self._db.read("poll_state") as reader:
            row = await reader.fetchrow(
                "SELECT closed, multiple, options FROM polls WHERE chat_id = $1 AND seq = $2",
                chat_id,
                seq,
            )
        return None if row is None else (bool(row[0]), bool(row[1]), row[2])

    async def vote(
        self, chat_id: int, seq: int, actor_id: int, options: Sequence[int], spec: Poll, now: int
    ) -> Event:
        async with self._db.transaction("vote") as txn:
            await txn.execute(
                "DELETE FROM poll_votes WHERE chat_id = $1 AND seq = $2 AND account_id = $3",
                chat_id,
                seq,
                actor_id,
            )
            await txn.executemany(
                "INSERT INTO poll_votes (chat_id, seq, account_id, option) VALUES ($1, $2, $3, $4)",
                [(chat_id, seq, actor_id, option) for option in sorted(set(options))],
            )
            poll = await _poll(txn, chat_id, seq, spec)
            # Votes of an anonymous poll do not say who voted.
            actor = 0 if poll.anonymous else actor_id
            return await _append(txn, chat_id, "poll_vote", actor, now, target=seq, poll=poll)

    async def close_poll(
        self, chat_id: int, seq: int, actor_id: int, spec: Poll, now: int
    ) -> Event:
        async with self._db.transaction("close_poll") as txn:
            await txn.execute(
                "UPDATE polls SET closed = TRUE WHERE chat_id = $1 AND seq = $2", chat_id, seq
            )
            poll = await _poll(txn, chat_id, seq, spec)
            return await _append(txn, chat_id, "poll_closed", actor_id, now, target=seq, poll=poll)

    async def current(self, events: list[Event]) -> list[Event]:
        """Messages as they stand now: with their reactions, pin and poll results."""
        messages = [e for e in events if e.kind == "message" and not e.deleted]
        if not messages:
            return events
        chat_id = messages[0].chat_id
        low, high = messages[0].seq, messages[-1].seq
        async with self._db.read("current_messages") as txn:
            reactions = await txn.fetch(
                "SELECT seq, emoji, account_id FROM reactions"
                " WHERE chat_id = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq, at, account_id",
                chat_id,
                low,
                high,
            )
            pinned = {
                row[0]
                for row in await txn.fetch(
                    "SELECT seq FROM pins WHERE chat_id = $1 AND seq >= $2 AND seq <= $3",
                    chat_id,
                    low,
                    high,
                )
            }
            polls = {e.seq: await _poll(txn, chat_id, e.seq, e.poll) for e in messages if e.poll}
            cards = (
                await cards_in(txn, chat_id, low, high) if any(e.lesson for e in messages) else {}
            )
        by_message: dict[int, dict[str, list[int]]] = {}
        for row in reactions:
            by_message.setdefault(row[0], {}).setdefault(row[1], []).append(row[2])
        result = []
        for event in events:
            if event.kind == "message" and not event.deleted:
                found = by_message.get(event.seq)
                event = msgspec.structs.replace(
                    event,
                    reactions=[Reaction(emoji=e, accounts=a) for e, a in found.items()]
                    if found
                    else None,
                    pinned=event.seq in pinned,
                    poll=polls.get(event.seq, event.poll),
                    lesson=cards.get(event.seq, event.lesson),
                )
            result.append(event)
        return result

    async def search(
        self, account_id: int, query: str, chat_id: int | None, limit: int
    ) -> list[Event]:
        """The account's messages matching ``query`` (Russian stemming), best first."""
        async with self._db.read("search") as reader:
            found = await self._search.find(reader, account_id, query, chat_id, limit)
            events = [await _message(reader, c, s) for c, s in found]
        return [e for e in events if e is not None and not e.deleted]

    # --- each member's own view, and moderation --------------------------------------------

    async def clear(self, chat_id: int, account_id: int) -> None:
        async with self._db.transaction("clear_history") as txn:
            await txn.execute(
                "UPDATE chat_members SET cleared_seq = (SELECT last_seq FROM chats WHERE id = $1)"
                " WHERE chat_id = $1 AND account_id = $2",
                chat_id,
                account_id,
            )

    async def mute(self, chat_id: int, account_id: int, muted: bool) -> None:
        async with self._db.transaction("mute_chat") as txn:
            await txn.execute(
                "UPDATE chat_members SET muted = $3 WHERE chat_id = $1 AND account_id = $2",
                chat_id,
                account_id,
                muted,
            )

    async def silence(self, chat_id: int, account_id: int, until: int) -> None:
        async with self._db.transaction("silence_member") as txn:
            await txn.execute(
                "UPDATE chat_members SET silenced_until = $3"
                " WHERE chat_id = $1 AND account_id = $2",
                chat_id,
                account_id,
                until,
            )
