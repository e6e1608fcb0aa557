"""The operator's command line: migrate, loadtest-users, JSON logs, the SMS webhook, the prompt."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import orjson

from protocol.client import Client, http_request
from tests.databases import fresh_pg_database
from tests.integration.conftest import RunningServer, start_server, stop_cleanly, stop_server


def parta(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_migrate_is_idempotent_on_sqlite(tmp_path: Path) -> None:
    first = parta("migrate", "--data-dir", str(tmp_path))
    assert "applied migrations: [1" in first.stdout
    assert "up to date" in parta("migrate", "--data-dir", str(tmp_path)).stdout
    assert (tmp_path / "parta.db").exists()


async def test_migrate_and_loadtest_users_on_postgres(tmp_path: Path) -> None:
    dsn = await fresh_pg_database()
    await asyncio.to_thread(parta, "migrate", "--db", dsn, "--data-dir", str(tmp_path))
    made = await asyncio.to_thread(
        parta, "loadtest-users", "--count", "6", "--chats", "2", "--json", "--db", dsn
    )
    result = json.loads(made.stdout)
    assert len(result["users"]) == 6
    assert [len(c["member_ids"]) for c in result["chats"]] == [3, 3]


async def test_loadtest_users_sign_in_with_their_tokens(tmp_path: Path) -> None:
    made = json.loads(
        parta(
            "loadtest-users", "--count", "3", "--chats", "1", "--json", "--data-dir", str(tmp_path)
        ).stdout
    )
    server = start_server(tmp_path, "--log-json")
    try:
        client = Client(server.url, made["users"][1]["token"])
        ok = await client.connect()
        assert ok.account_id == made["users"][1]["account_id"] and ok.has_profile
        [chat] = await client.list_chats()
        assert chat.id == made["chats"][0]["chat_id"] and chat.member_count == 3
        await client.close()
    finally:
        log = stop_server(server)
    lines = [orjson.loads(line) for line in log.splitlines() if line.strip()]
    assert any(entry["msg"] == "listening" and entry["database"] == "sqlite" for entry in lines)
    assert all({"at", "level", "logger", "msg"} <= entry.keys() for entry in lines)


class SmsGateway:
    """An operator's SMS gateway on loopback: keeps what it gets, answers ``status``."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.status = b"200 OK"
        self.listener: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        length = int(head.split("content-length:")[1].split("\r\n")[0])
        self.received.append(json.loads(await reader.readexactly(length)))
        writer.write(
            b"HTTP/1.1 " + self.status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    async def start(self) -> str:
        self.listener = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.listener.sockets[0].getsockname()[1]}/sms"


async def test_codes_go_to_the_sms_webhook_when_configured(tmp_path: Path) -> None:
    gateway = SmsGateway()
    server = start_server(tmp_path, "--sms-webhook-url", await gateway.start())
    try:
        await Client(server.url).request_code("+79005550101")
        assert gateway.received and gateway.received[0]["phone"] == "+79005550101"
        assert "код" in gateway.received[0]["text"]
        assert not (tmp_path / "sms-outbox.jsonl").exists()
    finally:
        stop_server(server)
        assert gateway.listener is not None
        gateway.listener.close()


async def test_a_failing_sms_gateway_is_a_503_and_the_next_try_is_not_held_back(
    tmp_path: Path,
) -> None:
    gateway = SmsGateway()
    gateway.status = b"500 Internal Server Error"
    server = start_server(tmp_path, "--sms-webhook-url", await gateway.start())
    body = orjson.dumps({"phone": "+79005550102"})
    headers = {"content-type": "application/json"}
    try:
        status, got, raw = await http_request(
            "POST", server.url + "/api/v1/auth/code", body=body, headers=headers
        )
        assert status == 503 and got["content-type"] == "application/problem+json"
        assert orjson.loads(raw)["code"] == "unavailable" and int(got["retry-after"]) > 0
        gateway.status = b"200 OK"
        status, _, _ = await http_request(
            "POST", server.url + "/api/v1/auth/code", body=body, headers=headers
        )
        assert status == 200 and len(gateway.received) == 2
    finally:
        log = stop_cleanly(server)
        assert gateway.listener is not None
        gateway.listener.close()
    assert "sms not sent" in log and "500" in log


async def test_chat_prompt_talks_to_another_person(server: RunningServer) -> None:
    bob = await server.sign_in("Петров", "Борис")
    await bob.connect()
    alice = await server.sign_in("Смирнова", "Алиса")
    script = f"/new Кружок {bob.account_id}\nДобрый вечер!\n/quit\n"
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "protocol.client", "--url", server.url, "--token", str(alice.token)],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Создан чат" in done.stdout
    events = [await bob.next_event(5) for _ in range(2)]
    assert [e.kind for e in events] == ["created", "message"]
    assert events[1].text == "Добрый вечер!"
    await bob.close()
