"""The demo journal's side of the Journal API: plain HTTP with its token, like any journal."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import quote

import jwt
import orjson

from protocol.client import http_request

ASSERTION_LIFETIME_S = 300


def assertion(journal_id: str, signing_secret: str, user_id: str, return_url: str) -> str:
    """What the journal signs to link a person (DESIGN.md, "Journal API": linking)."""
    return jwt.encode(
        {
            "iss": journal_id,
            "sub": user_id,
            "aud": "parta",
            "exp": int(time.time()) + ASSERTION_LIFETIME_S,
            "jti": secrets.token_urlsafe(16),
            "return_url": return_url,
        },
        signing_secret,
        algorithm="HS256",
    )


class JournalApiError(Exception):
    """Parta refused a call: ``detail`` is its problem detail."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class JournalApi:
    def __init__(self, base_url: str, api_token: str) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = api_token

    async def call(self, method: str, path: str, payload: Any = None) -> Any:
        headers = {"authorization": f"Bearer {self._token}", "accept": "application/json"}
        body = b""
        if payload is not None:
            body = orjson.dumps(payload)
            headers["content-type"] = "application/json"
        status, _, raw = await http_request(
            method, self._base_url + path, body=body, headers=headers
        )
        data = orjson.loads(raw) if raw else None
        if status >= 400:
            problem = data if isinstance(data, dict) else {}
            raise JournalApiError(
                status, str(problem.get("code", "http_error")), str(problem.get("detail", ""))
            )
        return data

    async def put_roster(self, roster: dict[str, Any]) -> dict[str, Any]:
        """Counts of created, updated and removed records, per kind of record."""
        counts: dict[str, Any] = await self.call("PUT", "/api/v1/roster", roster)
        return counts

    async def put_schedule(self, schedule: dict[str, Any]) -> dict[str, int]:
        counts: dict[str, int] = await self.call("PUT", "/api/v1/schedule", schedule)
        return counts

    async def chats_of(self, user_id: str) -> list[dict[str, Any]]:
        data = await self.call("GET", f"/api/v1/users/{quote(user_id, safe='')}/chats")
        chats: list[dict[str, Any]] = data["chats"]
        return chats

    async def create_chat(self, acting: str, chat: dict[str, Any]) -> int:
        data = await self.call("POST", f"/api/v1/chats?as={quote(acting, safe='')}", chat)
        chat_id: int = data["id"]
        return chat_id
