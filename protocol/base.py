"""What every Parta message shares: the version, id types, the envelope and base bodies."""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal

import msgspec

from protocol.errors import ErrorCode

PROTOCOL_VERSION: Final = 1

Id = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
RequestId = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
ClientMessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
Role = Literal["owner", "admin", "member"]
# A profile's sex: Russian verbs agree with it ("закрепила", "выключил").
Sex = Literal["male", "female"]

MAX_CHAT_MEMBERS_PER_REQUEST: Final = 10_000
MAX_SYNC_CURSORS: Final = 10_000


class ProtocolError(Exception):
    """A frame that cannot be served: the reply is an ``error`` with this code."""

    def __init__(self, code: ErrorCode, message: str, request_id: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


class Envelope(msgspec.Struct, array_like=True, frozen=True):
    v: int
    type: str
    id: RequestId
    body: msgspec.Raw


class Body(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=False):
    """Base of every message body."""


class Request(Body, frozen=True):
    type: ClassVar[str]


class Done(Body, frozen=True):
    """A reply that carries nothing but success."""
