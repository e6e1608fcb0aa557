"""Lessons over the Journal API against a real server process: scheduling, publishing,
the journal's chat list, join URLs that sign people in, ending, attendance, and signed
webhooks delivered to a journal's endpoint (retried when it fails)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from protocol.calls import CallLeave
from protocol.client import Client, ClientError, http_request
from server.api.sessions import COOKIE
from tests.integration.conftest import stop_cleanly
from tests.integration.journal import (
    MATH_CHAT,
    JournalServer,
    chat_id_of,
    iso,
    live_math_lesson,
    school_with_lessons,
    start_journal_server,
)


@dataclass
class Receiver:
    """The journal's webhook endpoint: answers 500 to the first request, then 200."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    failures_left: int = 1
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)
        }
        body = await reader.readexactly(int(headers["content-length"]))
        if self.failures_left:
            self.failures_left -= 1
            writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            self.received.append((headers, body))
            self.arrived.set()
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def events(self, count: int, timeout_s: float = 30) -> list[dict[str, object]]:
        async with asyncio.timeout(timeout_s):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return [orjson.loads(body) for _, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    server = await asyncio.start_server(made.handle, "127.0.0.1", 0)
    made.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/parta-hooks"
    async with server:
        yield made


@pytest.fixture
async def journal(tmp_path: Path, receiver: Receiver) -> AsyncIterator[JournalServer]:
    running = start_journal_server(
        tmp_path,
        sfu_workers=1,
        webhook_url=receiver.url,
        env={"PARTA_CALL_EMPTY_END_S": "1"},
    )
    yield running
    await running.close()
    stop_cleanly(running.server)


async def test_scheduling_follows_the_timetable_and_the_chat_list_shows_the_lesson(
    journal: JournalServer,
) -> None:
    school, schedule = school_with_lessons()
    await journal.ok("PUT", "/api/v1/roster", school)
    await journal.ok("PUT", "/api/v1/schedule", schedule)
    teacher = await journal.link("t1", "Иванова", "Мария")
    math = await chat_id_of(teacher, MATH_CHAT)
    klass = await chat_id_of(teacher, "7А класс")

    slots = await journal.ok("GET", f"/api/v1/chats/{math}/slots?as=t1")
    assert [s["lesson_id"] for s in slots["slots"]] == ["m-now", "m-later", "m-tomorrow"]
    status, refused = await journal.call(
        "POST", f"/api/v1/chats/{math}/calls?as=t1", {"lesson_id": "m-past"}
    )
    assert status == 422 and refused["code"] == "slot_not_available"
    assert refused["errors"][0]["field"] == "lesson_id"
    # Later today in the school's zone (Moscow: the test school names none); "two hours
    # from now" is tomorrow there in the evening.
    moscow = ZoneInfo("Europe/Moscow")
    now = dt.datetime.now(moscow).replace(microsecond=0)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), moscow)
    later_today = min(now + dt.timedelta(hours=1), midnight - dt.timedelta(seconds=1))
    status, today = await journal.call(
        "POST", f"/api/v1/chats/{klass}/calls?as=t1", {"starts_at": iso(later_today)}
    )
    assert status == 422 and today["code"] == "slot_not_available"
    status, _ = await journal.call(
        "POST", f"/api/v1/chats/{math}/calls?as=s1", {"lesson_id": "m-later"}
    )
    assert status == 403

    later = await journal.ok("POST", f"/api/v1/chats/{math}/calls?as=t1", {"lesson_id": "m-later"})
    assert later["state"] == "scheduled" and later["title"] == MATH_CHAT
    assert later["starts_at"].startswith(schedule["lessons"][1]["starts_at"][:16])
    listed = await journal.ok("GET", "/api/v1/users/t1/chats")
    [row] = [c for c in listed["chats"] if c["id"] == math]
    assert row["lesson"]["id"] == later["id"]

    edited = await journal.ok(
        "PATCH", f"/api/v1/calls/{later['id']}?as=t1", {"title": "Дроби", "lesson_id": "m-tomorrow"}
    )
    assert edited["title"] == "Дроби" and edited["starts_at"] != later["starts_at"]
    published = await journal.ok("POST", f"/api/v1/calls/{later['id']}/publish?as=t1")
    assert published["state"] == "published"
    card = (await teacher.history(math)).events[-1]
    assert card.lesson is not None and card.lesson.title == "Дроби"
    status, _ = await journal.call("DELETE", f"/api/v1/calls/{later['id']}?as=t1")
    assert status == 204
    status, _ = await journal.call("GET", f"/api/v1/calls/{later['id']}?as=t1")
    assert status == 404
    status, bad = await journal.call("POST", f"/api/v1/chats/{math}/calls?as=t1", {"when": 1})
    assert status == 422 and bad["code"] == "validation_failed"


async def test_a_join_url_signs_in_once_and_a_lesson_sends_its_webhooks(
    journal: JournalServer, receiver: Receiver
) -> None:
    lesson_id, chat_id, teacher, (kolya, _) = await live_math_lesson(journal)
    join = await journal.ok("GET", f"/api/v1/calls/{lesson_id}/join?as=s1")
    assert join["url"].startswith(journal.server.url + f"/api/v1/calls/{lesson_id}/enter?ticket=")
    path = join["url"].removeprefix(journal.server.url)
    status, headers, _ = await http_request("GET", journal.server.url + path)
    assert status == 303 and headers["location"] == f"/call/{lesson_id}"
    token = headers["set-cookie"].split(";")[0].removeprefix(f"{COOKIE}=")
    browser = Client(journal.server.url, token=token)
    assert (await browser.http_json("GET", "/api/v1/profile"))["last_name"] == "Петров"
    status, _, _ = await http_request("GET", journal.server.url + path)
    assert status == 404  # single use

    await browser.connect()
    with pytest.raises(ClientError) as waiting:
        await browser.call_join(lesson_id)
    assert waiting.value.code == "lesson_not_started"
    await teacher.call_join(lesson_id)
    await browser.call_join(lesson_id)
    await browser.call(CallLeave())
    await browser.close()

    # The teacher leaves too: the lesson, empty for PARTA_CALL_EMPTY_END_S, ends itself.
    await teacher.call(CallLeave())
    events = await receiver.events(3)
    assert [e["event"] for e in events] == ["call.started", "call.ended", "call.attendance"]
    assert events[1]["data"]["reason"] == "empty"  # type: ignore[index]
    attendance = events[2]["data"]["attendance"]  # type: ignore[index]
    assert {a["user_id"] for a in attendance} == {"t1", "s1"}
    for headers, body in receiver.received:
        secret = journal.secret.encode()
        assert (
            headers["x-parta-signature"]
            == "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        )
        assert headers["x-parta-event"] == orjson.loads(body)["event"]
    ended = await journal.ok("GET", f"/api/v1/calls/{lesson_id}?as=t1")
    assert ended["state"] == "ended"
    assert (await kolya.history(chat_id)).events  # the card stays in the chat
