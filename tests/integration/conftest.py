"""A real ``parta serve`` process for integration tests, and signed-in SDK clients."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from protocol.client import Client

_phones = itertools.count(1)


@dataclass
class RunningServer:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen[str]

    def code_for(self, phone: str) -> str:
        """The last code the dev SMS outbox holds for this phone."""
        lines = (self.data_dir / "sms-outbox.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if json.loads(line)["phone"] == phone][-1][
            "code"
        ]

    async def sign_in(
        self, last_name: str = "Иванова", first_name: str = "Мария", sex: str = "female"
    ) -> Client:
        phone = f"+7900{os.getpid() % 1000:03d}{next(_phones):04d}"
        client = Client(self.url)
        await client.request_code(phone)
        await client.verify(phone, self.code_for(phone))
        await client.create_profile(
            last_name=last_name, first_name=first_name, birth_date="2010-05-17", sex=sex
        )
        return client


def start_server(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None, sfu_workers: int = 0
) -> RunningServer:
    """Start ``parta serve`` on a free port and wait for its "listening" line.

    Without ``sfu_workers`` no media worker is started (chat tests need none); with them
    they take free ports, so servers in parallel never clash.
    """
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--sfu-workers",
            str(sfu_workers),
            "--media-port",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        _, err = process.communicate(timeout=10)
        raise RuntimeError(f"parta serve did not start:\n{err}")
    started = json.loads(line)
    return RunningServer(started["url"], started["port"], data_dir, process)


def stop_server(server: RunningServer) -> str:
    """Stop with SIGTERM (graceful shutdown) and return what it logged."""
    server.process.terminate()
    try:
        _, err = server.process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        _, err = server.process.communicate()
    return err


def stop_cleanly(server: RunningServer) -> str:
    """``stop_server``, and check that the server logged no traceback: what it logged."""
    log = stop_server(server)
    assert "Traceback" not in log, log
    return log


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("parta"))
    yield running
    log = stop_server(running)
    assert running.process.returncode == 0, log
    assert "Traceback" not in log, log


@pytest.fixture
async def clients(server: RunningServer) -> AsyncIterator[list[Client]]:
    """Clients made by ``server.sign_in`` are closed at the end through this list."""
    made: list[Client] = []
    yield made
    for client in made:
        await client.close()
