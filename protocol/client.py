"""The asyncio client SDK: sign-in over HTTP, chats over the WebSocket, resume built in.

Used by the tests, ``bench/`` and integrators; ``python -m protocol.client`` is a small
chat prompt on top of it. The SDK keeps, per chat, the last sequence number it delivered:
events arrive once and in order, a gap makes it fetch what is missing, and after a
reconnect it resumes every chat from there. Posts carry a client message id, so a post
retried across a reconnect is stored once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import msgspec

from protocol.calls import (
    CALL_PUSHES,
    CallAnswer,
    CallJoin,
    CallJoined,
    CallLayer,
    CallLeave,
    CallOffer,
    Layer,
    Source,
)
from protocol.messages import (
    PUSH_CHAT,
    PUSH_EVENT,
    REPLIES,
    REPLY_ERROR,
    REPLY_OK,
    Auth,
    AuthOk,
    Body,
    ChatAddMember,
    ChatCreate,
    ChatCreated,
    ChatHistory,
    ChatInfo,
    ChatList,
    ChatListResult,
    ChatMembers,
    ChatMembersResult,
    ChatPost,
    ChatRead,
    ErrorBody,
    Event,
    HistoryResult,
    Member,
    Posted,
    Request,
    Sync,
    SyncResult,
    decode_body,
    decode_envelope,
    encode_request,
)
from protocol.websocket import (
    CloseReceived,
    Message,
    Role,
    State,
    WebSocketConnection,
    check_server_handshake_response,
    client_handshake_request,
    new_client_key,
)

B = TypeVar("B", bound=Body)
P = TypeVar("P", bound=Body)

MAX_HEADER_BYTES = 64 << 10


class ClientError(Exception):
    """The server refused a request: ``code`` is the stable error code."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class ConnectionLost(Exception):
    """The WebSocket closed; ``code`` is its close code when the server sent one."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


# --- a minimal HTTP/1.1 client (stdlib only) -----------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    host: str
    port: int
    tls: bool
    path: str
    netloc: str


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    tls = parts.scheme in ("https", "wss")
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(parts.hostname or "127.0.0.1", port, tls, path, parts.netloc)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError("response headers too large")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is not None:
        return await reader.readexactly(int(length))
    return await reader.read()


async def http_request(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    target = _target(url)

    async def exchange() -> tuple[int, dict[str, str], bytes]:
        reader, writer = await asyncio.open_connection(
            target.host, target.port, ssl=ssl.create_default_context() if target.tls else None
        )
        try:
            lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.netloc}"]
            lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
            lines += [f"Content-Length: {len(body)}", "Connection: close"]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            status, response_headers = await _read_head(reader)
            return status, response_headers, await _read_body(reader, response_headers)
        finally:
            writer.close()

    return await asyncio.wait_for(exchange(), timeout_s)


# --- the client ---------------------------------------------------------------------


class Client:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.account_id: int | None = None
        # chat id → the last seq delivered to the application.
        self.cursors: dict[int, int] = {}
        self.chats: dict[int, ChatInfo] = {}
        self.on_event: Callable[[Event], None] | None = None
        self.on_chat: Callable[[ChatInfo], None] | None = None
        # Call pushes (call.tracks, call.state, call.notice, …), in order of arrival.
        self.call_events: asyncio.Queue[Body] = asyncio.Queue()
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._codec: WebSocketConnection | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._pending: dict[int, tuple[asyncio.Future[Any], type[Body]]] = {}
        self._next_id = 1
        self._connected = asyncio.Event()
        self._closed: ConnectionLost | None = None
        self._resyncing: set[int] = set()
        self._background: set[asyncio.Task[Any]] = set()

    # --- HTTP: sign-in and profile ----------------------------------------------------

    async def http_json(self, method: str, path: str, payload: Any = None) -> Any:
        headers = {"accept": "application/json"}
        body = b""
        if payload is not None:
            body = msgspec.json.encode(payload)
            headers["content-type"] = "application/json"
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        status, _, raw = await http_request(
            method, self.base_url + path, body=body, headers=headers
        )
        data = msgspec.json.decode(raw) if raw else None
        if status >= 400:
            problem = data if isinstance(data, dict) else {}
            raise ClientError(problem.get("code", "http_error"), problem.get("detail", ""), status)
        return data

    async def request_code(self, phone: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.http_json("POST", "/api/v1/auth/code", {"phone": phone})
        return result

    async def verify(self, phone: str, code: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.http_json(
            "POST", "/api/v1/auth/verify", {"phone": phone, "code": code}
        )
        self.token = result["token"]
        self.account_id = result["account_id"]
        return result

    async def create_profile(self, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.http_json("POST", "/api/v1/profile", fields)
        return result

    async def profile(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.http_json("GET", "/api/v1/profile")
        return result

    async def logout(self, *, everywhere: bool = False) -> None:
        await self.http_json("POST", "/api/v1/auth/logout" + ("?all=1" if everywhere else ""))

    # --- the WebSocket ----------------------------------------------------------------

    async def connect(self, *, resume: bool = True) -> AuthOk:
        """Open the socket, authenticate, and (after the first time) resume every chat."""
        if self.token is None:
            raise ClientError("unauthenticated", "sign in first")
        target = _target(self.base_url)
        reader, writer = await asyncio.open_connection(
            target.host, target.port, ssl=ssl.create_default_context() if target.tls else None
        )
        key = new_client_key()
        writer.write(client_handshake_request(target.netloc, "/ws", key))
        status, headers = await _read_head(reader)
        check_server_handshake_response(status, headers, key)
        self._reader, self._writer = reader, writer
        self._codec = WebSocketConnection(Role.CLIENT, max_message_size=16 << 20)
        self._closed = None
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())
        ok = await self._call(Auth(token=self.token), AuthOk)
        self.account_id = ok.account_id
        self._connected.set()
        if resume and self.cursors:
            await self.sync()
        return ok

    async def close(self) -> None:
        self._connected.clear()
        codec, writer = self._codec, self._writer
        if codec is not None and writer is not None and codec.state is State.OPEN:
            codec.send_close(1000)
            writer.write(codec.data_to_send())
        if self._read_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, ConnectionError):
                await asyncio.wait_for(asyncio.shield(self._read_task), 2)
            self._read_task.cancel()
        if writer is not None:
            writer.close()
        for task in list(self._background):
            task.cancel()

    def drop(self) -> None:
        """Cut the TCP connection without a closing handshake (tests: a network failure)."""
        if self._writer is not None:
            transport = self._writer.transport
            transport.abort()

    async def _read_loop(self) -> None:
        assert self._reader is not None and self._codec is not None
        codec, reader = self._codec, self._reader
        lost = ConnectionLost(None, "connection lost")
        try:
            while codec.state is not State.CLOSED:
                data = await reader.read(65536)
                codec.receive_data(data)
                for event in codec.events_received():
                    if isinstance(event, Message) and isinstance(event.data, bytes):
                        self._on_frame(event.data)
                    elif isinstance(event, CloseReceived):
                        lost = ConnectionLost(event.code, event.reason)
                out = codec.data_to_send()
                if out and self._writer is not None:
                    self._writer.write(out)
                if not data:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            self._connected.clear()
            self._closed = lost
            if codec.close_code is not None and lost.code is None:
                lost = ConnectionLost(codec.close_code, codec.close_reason)
                self._closed = lost
            for future, _ in self._pending.values():
                if not future.done():
                    future.set_exception(lost)
            self._pending.clear()
            if self._writer is not None:
                self._writer.close()

    def _on_frame(self, frame: bytes) -> None:
        envelope = decode_envelope(frame)
        if envelope.type in (REPLY_OK, REPLY_ERROR):
            pending = self._pending.pop(envelope.id, None)
            if pending is None:
                return
            future, reply_type = pending
            if future.done():
                return
            if envelope.type == REPLY_OK:
                future.set_result(decode_body(envelope.body, reply_type))
            else:
                error: ErrorBody = decode_body(envelope.body, ErrorBody)
                future.set_exception(ClientError(error.code, error.message))
        elif envelope.type == PUSH_EVENT:
            self._on_event(decode_body(envelope.body, Event))
        elif envelope.type == PUSH_CHAT:
            self._on_chat(decode_body(envelope.body, ChatInfo))
        elif envelope.type in CALL_PUSHES:
            self.call_events.put_nowait(decode_body(envelope.body, CALL_PUSHES[envelope.type]))

    def _on_chat(self, info: ChatInfo) -> None:
        self.chats[info.id] = info
        # A chat pushed on join starts right before the join event.
        self.cursors.setdefault(info.id, info.last_seq)
        if self.on_chat is not None:
            self.on_chat(info)

    def _on_event(self, event: Event) -> None:
        last = self.cursors.get(event.chat_id)
        if last is None:
            last = event.seq - 1
        if event.seq <= last:
            return  # already delivered (a resume and a live copy can overlap)
        if event.seq > last + 1:
            self._fill_gap(event.chat_id)
            return
        self.cursors[event.chat_id] = event.seq
        if self.on_event is not None:
            self.on_event(event)
        self._events.put_nowait(event)

    def _fill_gap(self, chat_id: int) -> None:
        if chat_id in self._resyncing:
            return
        self._resyncing.add(chat_id)

        async def fill() -> None:
            try:
                await self._call(Sync(cursors=[(chat_id, self.cursors[chat_id])]), SyncResult)
            except (ClientError, ConnectionLost):
                pass  # the next resume covers it
            finally:
                self._resyncing.discard(chat_id)

        task = asyncio.get_running_loop().create_task(fill())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _call(self, request: Request, reply_type: type[B]) -> B:
        codec, writer = self._codec, self._writer
        if codec is None or writer is None or codec.state is not State.OPEN:
            raise self._closed or ConnectionLost(None, "not connected")
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[B] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (future, reply_type)
        codec.send_binary(encode_request(request_id, request))
        writer.write(codec.data_to_send())
        return await future

    async def call(self, request: Request) -> Any:
        """Send any request and return its typed reply (or raise ``ClientError``)."""
        return await self._call(request, REPLIES[request.type])

    # --- chats --------------------------------------------------------------------------

    async def sync(self) -> SyncResult:
        """Resume: everything after our cursors; chats new to us are resumed from 0."""
        known = set(self.cursors)
        result = await self._call(Sync(cursors=sorted(self.cursors.items())), SyncResult)
        fresh = [(chat_id, 0) for chat_id, _ in result.cursors if chat_id not in known]
        if fresh:
            for chat_id, _ in fresh:
                self.cursors[chat_id] = 0
            await self._call(Sync(cursors=fresh), SyncResult)
        return result

    async def list_chats(self) -> list[ChatInfo]:
        result = await self._call(ChatList(), ChatListResult)
        for info in result.chats:
            self.chats[info.id] = info
            self.cursors.setdefault(info.id, info.last_seq)
        return result.chats

    async def create_chat(self, title: str, member_ids: list[int] | None = None) -> ChatInfo:
        result = await self._call(ChatCreate(title=title, member_ids=member_ids or []), ChatCreated)
        self._on_chat(result.chat)
        return result.chat

    async def add_member(self, chat_id: int, account_id: int, role: str = "member") -> None:
        await self.call(ChatAddMember(chat_id=chat_id, account_id=account_id, role=role))  # type: ignore[arg-type]

    async def members(self, chat_id: int) -> list[Member]:
        result = await self._call(ChatMembers(chat_id=chat_id), ChatMembersResult)
        return result.members

    async def post(
        self,
        chat_id: int,
        text: str = "",
        *,
        client_id: str | None = None,
        retry: bool = True,
        **fields: Any,
    ) -> Posted:
        """Post a message (``fields``: reply_to, attachments, mentions, poll, forward). With
        ``retry`` a dropped connection is waited out and the same client id is sent again,
        so the message is stored exactly once."""
        request = ChatPost(
            chat_id=chat_id, client_id=client_id or uuid.uuid4().hex, text=text, **fields
        )
        while True:
            try:
                return await self._call(request, Posted)
            except ConnectionLost:
                if not retry:
                    raise
                await self._connected.wait()

    async def history(
        self, chat_id: int, before_seq: int | None = None, limit: int = 50
    ) -> HistoryResult:
        return await self._call(
            ChatHistory(chat_id=chat_id, before_seq=before_seq, limit=limit), HistoryResult
        )

    async def upload(
        self, chat_id: int, data: bytes, *, kind: str, name: str | None = None
    ) -> dict[str, Any]:
        """Upload a file into a chat (then post it with ``attachments=[id]``)."""
        query = urlencode({"kind": kind} | ({"name": name} if name else {}))
        status, _, raw = await http_request(
            "POST",
            f"{self.base_url}/api/v1/chats/{chat_id}/files?{query}",
            body=data,
            headers={"authorization": f"Bearer {self.token}"},
            timeout_s=120,
        )
        answer: dict[str, Any] = msgspec.json.decode(raw) if raw else {}
        if status >= 400:
            raise ClientError(answer.get("code", "http_error"), answer.get("detail", ""), status)
        return answer

    async def download(self, file_id: int) -> bytes:
        """A file of a chat this account is in, whole."""
        status, _, raw = await http_request(
            "GET",
            f"{self.base_url}/api/v1/files/{file_id}",
            headers={"authorization": f"Bearer {self.token}"},
            timeout_s=120,
        )
        if status >= 400:
            answer = msgspec.json.decode(raw) if raw else {}
            raise ClientError(answer.get("code", "http_error"), answer.get("detail", ""), status)
        return raw

    async def mark_read(self, chat_id: int, seq: int) -> None:
        await self.call(ChatRead(chat_id=chat_id, seq=seq))

    # --- calls (signalling only: media goes to the SFU with a WebRTC stack) ---------------

    async def call_join(self, call_id: int) -> CallJoined:
        return await self._call(CallJoin(call_id=call_id), CallJoined)

    async def call_offer(
        self,
        sdp: str,
        *,
        sources: dict[str, Source] | None = None,
        subscriptions: dict[str, str] | None = None,
    ) -> str:
        request = CallOffer(sdp=sdp, sources=sources or {}, subscriptions=subscriptions or {})
        return (await self._call(request, CallAnswer)).sdp

    async def call_layer(self, track_id: str, layer: Layer) -> None:
        await self.call(CallLayer(track_id=track_id, layer=layer))

    async def call_leave(self) -> None:
        await self.call(CallLeave())

    async def next_call_event(self, timeout_s: float | None = None) -> Body:
        return await asyncio.wait_for(self.call_events.get(), timeout_s)

    async def call_push(
        self, kind: type[P], timeout_s: float = 10.0, where: Callable[[P], bool] = lambda _: True
    ) -> P:
        """The next call push of this type that ``where`` accepts (others are dropped)."""
        async with asyncio.timeout(timeout_s):
            while True:
                push = await self.call_events.get()
                if isinstance(push, kind) and where(push):
                    return push

    async def next_event(self, timeout_s: float | None = None) -> Event:
        return await asyncio.wait_for(self._events.get(), timeout_s)

    async def events(self) -> AsyncIterator[Event]:
        while True:
            yield await self._events.get()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def close_code(self) -> int | None:
        return None if self._closed is None else self._closed.code


# --- python -m protocol.client: a chat prompt -----------------------------------------


async def _ask(prompt: str) -> str:
    return (await asyncio.to_thread(input, prompt)).strip()


async def _sign_in(client: Client, phone: str) -> None:
    await client.request_code(phone)
    print("Код отправлен (в режиме разработки он в parta-data/sms-outbox.jsonl).")
    result = await client.verify(phone, await _ask("Код из SMS: "))
    if not result["has_profile"]:
        print(
            "Создайте учебный профиль (настоящие данные; не регистрируйте ребёнка на свой номер)."
        )
        await client.create_profile(
            last_name=await _ask("Фамилия: "),
            first_name=await _ask("Имя: "),
            middle_name=(await _ask("Отчество (необязательно): ")) or None,
            birth_date=await _ask("Дата рождения (ГГГГ-ММ-ДД): "),
            sex=await _ask("Пол (male/female): "),
        )


async def _prompt(url: str, phone: str | None, token: str | None) -> None:
    client = Client(url, token)
    if token is None:
        await _sign_in(client, phone or await _ask("Телефон: "))
    names: dict[int, str] = {}
    client.on_event = lambda e: print(
        f"\r[чат {e.chat_id} #{e.seq}] {names.get(e.actor_id, f'#{e.actor_id}')}: "
        f"{e.text if e.kind == 'message' else e.kind}"
    )
    await client.connect()
    print(
        f"Вы вошли как #{client.account_id}. Команды: /chats /new НАЗВАНИЕ [id…] /add ЧАТ ID "
        "/open ЧАТ /quit; прочий текст уходит в открытый чат."
    )
    current: int | None = None
    for info in await client.list_chats():
        print(f"  {info.id}: {info.title} (непрочитанных {info.unread})")
    while True:
        line = await _ask("> ")
        try:
            if line in ("/quit", "/q"):
                break
            if line == "/chats":
                for info in await client.list_chats():
                    print(f"  {info.id}: {info.title} (участников {info.member_count})")
            elif line.startswith("/new "):
                title, *ids = line[5:].split()
                current = (await client.create_chat(title, [int(i) for i in ids])).id
                print(f"Создан чат {current}")
            elif line.startswith("/add "):
                chat_id, account_id = (int(x) for x in line[5:].split())
                await client.add_member(chat_id, account_id)
            elif line.startswith("/open "):
                current = int(line[6:])
                for m in await client.members(current):
                    names[m.account_id] = f"{m.last_name} {m.first_name}"
                for e in (await client.history(current, limit=20)).events:
                    if e.kind == "message":
                        print(f"  #{e.seq} {names.get(e.actor_id, e.actor_id)}: {e.text}")
            elif line and current is not None:
                await client.post(current, line)
            elif line:
                print("Сначала откройте чат: /open ЧАТ")
        except ClientError as exc:
            print(f"Ошибка: {exc}")
    await client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m protocol.client", description="Parta chat prompt"
    )
    parser.add_argument("--url", default=os.environ.get("PARTA_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--phone")
    parser.add_argument("--token", default=os.environ.get("PARTA_TOKEN"))
    args = parser.parse_args(argv)
    try:
        asyncio.run(_prompt(args.url, args.phone, args.token))
    except (KeyboardInterrupt, EOFError):
        print()
    except ClientError as exc:
        sys.exit(f"Ошибка: {exc}")


if __name__ == "__main__":
    main()
