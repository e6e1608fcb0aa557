"""The one exception the rules raise; the gateway and the API turn it into wire errors."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class DomainError(Exception):
    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        errors: tuple[FieldError, ...] = (),
        retry_after_s: int | None = None,
        allow: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors
        self.retry_after_s = retry_after_s
        # For "method not allowed": the methods that are.
        self.allow = allow
