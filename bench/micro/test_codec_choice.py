"""Why msgspec: our real messages, validation included, against ``msgpack`` + hand checks.

The issue's rule: use the ``msgpack`` library unless another implementation is at least
1.5x faster on our messages with validation. The msgpack side below validates exactly what
the msgspec structs do for these messages (types, ranges, lengths) and builds the same
frozen values, so both sides do the same work.

Run: uv run pytest bench/micro/test_codec_choice.py --benchmark-enable --benchmark-only
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
from pytest_benchmark.fixture import BenchmarkFixture

from protocol.messages import PUSH_EVENT, ChatPost, Event, decode_request, encode, encode_request

POST_FRAME = encode_request(
    7, ChatPost(chat_id=12, client_id="5f0c2a9e3b7d4c1e8a6f2b9d0c3e7a15", text="Д" * 100)
)
EVENT = Event(
    chat_id=12,
    seq=3812,
    kind="message",
    actor_id=4021,
    at=1_764_336_000_000,
    client_id="5f0c2a9e3b7d4c1e8a6f2b9d0c3e7a15",
    text="Д" * 100,
)


@dataclass(frozen=True, slots=True)
class PostValue:
    chat_id: int
    client_id: str
    text: str


class Invalid(Exception):
    pass


def _int(value: Any, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise Invalid
    return value


def _str(value: Any, low: int, high: int) -> str:
    if type(value) is not str or not low <= len(value) <= high:
        raise Invalid
    return value


def msgpack_decode_post(frame: bytes) -> tuple[int, PostValue]:
    value = msgpack.unpackb(frame)
    if type(value) is not list or len(value) != 4:
        raise Invalid
    version, kind, request_id, body = value
    if version != 1 or kind != "chat.post" or type(body) is not dict:
        raise Invalid
    return _int(request_id, 0, 2**53), PostValue(
        _int(body.get("chat_id"), 1, 2**63 - 1),
        _str(body.get("client_id"), 1, 64),
        _str(body.get("text"), 1, 10_000),
    )


def msgpack_encode_event(event: Event) -> bytes:
    body = {
        "chat_id": event.chat_id,
        "seq": event.seq,
        "kind": event.kind,
        "actor_id": event.actor_id,
        "at": event.at,
        "client_id": event.client_id,
        "text": event.text,
    }
    return msgpack.packb([1, PUSH_EVENT, 0, body])  # type: ignore[no-any-return]


def test_decode_post_msgspec(benchmark: BenchmarkFixture) -> None:
    request_id, post = benchmark(decode_request, POST_FRAME)
    assert request_id == 7 and isinstance(post, ChatPost)


def test_decode_post_msgpack(benchmark: BenchmarkFixture) -> None:
    request_id, post = benchmark(msgpack_decode_post, POST_FRAME)
    assert request_id == 7 and post.chat_id == 12


def test_encode_event_msgspec(benchmark: BenchmarkFixture) -> None:
    assert benchmark(encode, PUSH_EVENT, 0, EVENT)


def test_encode_event_msgpack(benchmark: BenchmarkFixture) -> None:
    assert benchmark(msgpack_encode_event, EVENT)
