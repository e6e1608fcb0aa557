"""The message codec: every message type round-trips; no input makes it raise anything
but ``ProtocolError``. Strategies are derived from the structs' own type information, so a
new message type is covered the day it is added."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from protocol.errors import ErrorCode
from protocol.messages import (
    PROTOCOL_VERSION,
    PUSHES,
    REPLIES,
    REQUESTS,
    ChatPost,
    ProtocolError,
    decode_body,
    decode_envelope,
    decode_request,
    encode,
    encode_request,
)

I64 = 2**63 - 1


def strategy(t: mi.Type) -> st.SearchStrategy[Any]:
    if isinstance(t, mi.IntType):
        low = -I64 - 1 if t.ge is None else t.ge
        high = I64 if t.le is None else t.le
        return st.integers(low, high)
    if isinstance(t, mi.FloatType):
        return st.floats(t.ge, t.le, allow_nan=False, allow_infinity=False)
    if isinstance(t, mi.StrType) and t.pattern:
        return st.from_regex(t.pattern, fullmatch=True)
    if isinstance(t, mi.StrType):
        return st.text(min_size=t.min_length or 0, max_size=min(t.max_length or 50, 50))
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.UnionType):
        return st.one_of(*(strategy(member) for member in t.types))
    if isinstance(t, mi.ListType):
        return st.lists(strategy(t.item_type), min_size=t.min_length or 0, max_size=5)
    if isinstance(t, mi.DictType):
        return st.dictionaries(strategy(t.key_type), strategy(t.value_type), max_size=3)
    if isinstance(t, mi.TupleType):
        return st.tuples(*(strategy(item) for item in t.item_types))
    if isinstance(t, mi.StructType):
        return struct_strategy(t.cls)
    raise NotImplementedError(f"no strategy for {t!r}")


@cache
def struct_strategy(cls: type[Any]) -> st.SearchStrategy[Any]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return st.builds(cls, **{f.name: strategy(f.type) for f in info.fields})


@pytest.mark.parametrize("name", sorted(REQUESTS))
@given(data=st.data(), request_id=st.integers(0, 2**53))
def test_every_request_round_trips(name: str, data: st.DataObject, request_id: int) -> None:
    message = data.draw(struct_strategy(REQUESTS[name]))
    assert decode_request(encode_request(request_id, message)) == (request_id, message)


BODIES = {f"reply:{k}": v for k, v in REPLIES.items()} | {f"push:{k}": v for k, v in PUSHES.items()}


@pytest.mark.parametrize("name", sorted(BODIES))
@given(data=st.data())
def test_every_reply_and_push_round_trips(name: str, data: st.DataObject) -> None:
    cls = BODIES[name]
    message = data.draw(struct_strategy(cls))
    envelope = decode_envelope(encode("ok", 3, message))
    assert (envelope.v, envelope.type, envelope.id) == (PROTOCOL_VERSION, "ok", 3)
    assert decode_body(envelope.body, cls) == message


@given(st.binary(max_size=300))
@example(b"\x94\x01\xa3\x00\x00\x80")  # invalid UTF-8 in the type: msgspec's UnicodeDecodeError
def test_arbitrary_bytes_give_a_message_or_a_protocol_error(frame: bytes) -> None:
    try:
        decode_request(frame)
    except ProtocolError as exc:
        assert isinstance(exc.code, ErrorCode)


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.sampled_from(sorted(REQUESTS)), st.integers(0, 2**53), msgpack_values)
def test_well_formed_envelopes_with_arbitrary_bodies_never_escape(
    name: str, request_id: int, body: Any
) -> None:
    frame = msgspec.msgpack.encode([PROTOCOL_VERSION, name, request_id, body])
    try:
        decode_request(frame)
    except ProtocolError as exc:
        assert exc.code is ErrorCode.BAD_MESSAGE
        assert exc.request_id == request_id


def test_errors_name_the_problem_and_keep_the_request_id() -> None:
    too_long = msgspec.msgpack.encode(
        [PROTOCOL_VERSION, "chat.post", 9, {"chat_id": 1, "client_id": "x", "text": "я" * 10_001}]
    )
    with pytest.raises(ProtocolError) as exc:
        decode_request(too_long)
    assert (exc.value.code, exc.value.request_id) == (ErrorCode.BAD_MESSAGE, 9)
    assert "text" in exc.value.message

    with pytest.raises(ProtocolError) as unknown:
        decode_request(msgspec.msgpack.encode([PROTOCOL_VERSION, "chat.explode", 4, {}]))
    assert (unknown.value.code, unknown.value.request_id) == (ErrorCode.UNKNOWN_TYPE, 4)

    with pytest.raises(ProtocolError) as version:
        decode_request(msgspec.msgpack.encode([99, "chat.list", 5, {}]))
    assert (version.value.code, version.value.request_id) == (ErrorCode.UNSUPPORTED_VERSION, 5)


def test_a_post_keeps_its_fields() -> None:
    post = ChatPost(chat_id=7, client_id="c1", text="Домашнее задание на завтра")
    assert decode_request(encode_request(12, post)) == (12, post)
