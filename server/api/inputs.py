"""Typed JSON bodies: parsed by orjson, validated into structs, refused with field errors."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from protocol.errors import ErrorCode
from server.domain.errors import DomainError, FieldError
from server.gateway.http import Request

T = TypeVar("T")

_PATH = re.compile(r"at `\$\.?([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]*)`")


def parse_body(request: Request, cls: type[T]) -> T:
    data = request.json()
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH.search(message)
        field = match[1] if match else ""
        missing = _MISSING.search(message)
        if missing:
            # msgspec reports a missing field at its parent: name the field itself.
            field = f"{field}.{missing[1]}" if field else missing[1]
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            message,
            errors=(FieldError(field or "$", message.split(" - at ")[0]),),
        ) from None
