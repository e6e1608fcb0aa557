"""Sending SMS: the dev outbox file unless a real gateway is configured."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Protocol

import orjson

from protocol.client import http_request

logger = logging.getLogger("parta.sms")


class SmsSender(Protocol):
    async def send(self, phone: str, text: str, code: str) -> None: ...


class OutboxSender:
    """Appends ``{"phone", "text", "code", "at"}`` as one JSON line to the outbox file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, phone: str, text: str, code: str) -> None:
        line = (
            orjson.dumps({"phone": phone, "text": text, "code": code, "at": _rfc3339_now()}) + b"\n"
        )
        await asyncio.to_thread(self._append, line)
        logger.info("sms to outbox", extra={"phone": phone, "code": code})

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as f:
            f.write(line)


class WebhookSender:
    """POSTs ``{"phone", "text"}`` as JSON to the operator's SMS gateway."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    async def send(self, phone: str, text: str, code: str) -> None:
        body = orjson.dumps({"phone": phone, "text": text})
        status, _, _ = await http_request(
            "POST",
            self.url,
            body=body,
            headers={"content-type": "application/json"},
            timeout_s=self.timeout_s,
        )
        if status >= 300:
            raise RuntimeError(f"SMS gateway answered {status}")


def _rfc3339_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
