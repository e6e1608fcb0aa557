"""A journal talking to a real Parta process: its credentials, the Journal API, linking
people, and a school whose math group has a lesson in the timetable right now."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson

from protocol.client import Client, http_request
from tests.domain.school import SCHOOL
from tests.integration.conftest import RunningServer, start_server

# The math group of 7А (teacher t1, students s1 and s2) and its subject chat.
MATH_GROUP = "g-math-7a"
MATH_CHAT = "Математика 7А"


def add_journal(data_dir: Path, webhook_url: str | None = None) -> dict[str, str]:
    """``parta journals add`` into a data dir: the journal's id, API token and secret."""
    command = [
        sys.executable, "-m", "server", "journals", "add", "--data-dir", str(data_dir),
        "--region-code", "77", "--region-name", "Москва", "--name", "Дневник",
        "--link-url", "https://journal.example/link", "--json",
    ]  # fmt: skip
    if webhook_url:
        command += ["--webhook-url", webhook_url]
    made = subprocess.run(command, check=True, capture_output=True, text=True)
    credentials: dict[str, str] = json.loads(made.stdout)
    return credentials


@dataclass
class JournalServer:
    server: RunningServer
    journal_id: str
    token: str
    secret: str
    people: dict[str, Client] = field(default_factory=dict)

    def assertion(self, sub: str, **claims: object) -> str:
        payload = {
            "iss": self.journal_id,
            "sub": sub,
            "aud": "parta",
            "exp": int(time.time()) + 300,
            "jti": f"{sub}-{time.monotonic_ns()}",
            "return_url": "https://journal.example/back?x=1",
        } | claims
        return jwt.encode(payload, self.secret, algorithm="HS256")

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        status, _, raw = await http_request(
            method,
            self.server.url + path,
            body=b"" if body is None else orjson.dumps(body),
            headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"},
        )
        return status, (orjson.loads(raw) if raw else None)

    async def ok(self, method: str, path: str, body: object = None) -> Any:
        status, answer = await self.call(method, path, body)
        assert 200 <= status < 300, (status, answer)
        return answer

    async def link(self, sub: str, last_name: str, first_name: str) -> Client:
        """Sign a person in, link them to ``sub`` through an assertion, and connect."""
        url = self.server.url + "/api/v1/link?assertion=" + self.assertion(sub)
        status, headers, _ = await http_request("GET", url)
        assert status == 303, status
        pending_id = headers["location"].rsplit("/", 1)[1]
        client = await self.server.sign_in(last_name, first_name)
        await client.http_json("POST", f"/api/v1/links/pending/{pending_id}/confirm")
        await client.connect()
        self.people[sub] = client
        return client

    async def close(self) -> None:
        for client in self.people.values():
            await client.close()
        self.people.clear()


def start_journal_server(
    data_dir: Path,
    *,
    sfu_workers: int = 0,
    env: dict[str, str] | None = None,
    webhook_url: str | None = None,
) -> JournalServer:
    credentials = add_journal(data_dir, webhook_url)
    server = start_server(data_dir, env=env, sfu_workers=sfu_workers)
    return JournalServer(
        server, credentials["journal_id"], credentials["api_token"], credentials["signing_secret"]
    )


def iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def school_with_lessons(now: dt.datetime | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The test school, and a timetable with math lessons of 7А: one on now, one two hours
    later (tomorrow in the school's zone late in its evening), one that ended an hour ago,
    and one tomorrow."""
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    slots = {
        "m-now": now - dt.timedelta(minutes=5),
        "m-later": now + dt.timedelta(hours=2),
        "m-past": now - dt.timedelta(hours=2),
        "m-tomorrow": now + dt.timedelta(days=1),
    }
    lessons = [
        {
            "id": ext_id,
            "group_id": MATH_GROUP,
            "teacher_id": "t1",
            "starts_at": iso(start),
            "ends_at": iso(start + dt.timedelta(minutes=45)),
        }
        for ext_id, start in slots.items()
    ]
    schedule = {
        "school_id": "1",
        "from": (now - dt.timedelta(days=1)).date().isoformat(),
        "to": (now + dt.timedelta(days=3)).date().isoformat(),
        "lessons": lessons,
    }
    return copy.deepcopy(SCHOOL), schedule


async def chat_id_of(client: Client, title: str) -> int:
    [chat] = [c for c in await client.list_chats() if c.title == title]
    return chat.id


async def live_math_lesson(journal: JournalServer) -> tuple[int, int, Client, list[Client]]:
    """Roster and timetable in, t1 and both 7А students linked, a lesson scheduled in the
    slot on now and published: (lesson id, chat id, teacher, students)."""
    school, schedule = school_with_lessons()
    await journal.ok("PUT", "/api/v1/roster", school)
    await journal.ok("PUT", "/api/v1/schedule", schedule)
    teacher = journal.people.get("t1") or await journal.link("t1", "Иванова", "Мария")
    students = [
        journal.people.get("s1") or await journal.link("s1", "Петров", "Коля"),
        journal.people.get("s2") or await journal.link("s2", "Сидорова", "Аня"),
    ]
    chat_id = await chat_id_of(teacher, MATH_CHAT)
    lesson = await journal.ok(
        "POST", f"/api/v1/chats/{chat_id}/calls?as=t1", {"lesson_id": "m-now"}
    )
    await journal.ok("POST", f"/api/v1/calls/{lesson['id']}/publish?as=t1")
    return lesson["id"], chat_id, teacher, students
