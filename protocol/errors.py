"""Stable error codes shared by the WebSocket protocol and the HTTP API.

A code never changes meaning once published; clients switch on it. The human text that
travels beside it is for logs and developers, not for matching.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    # The frame or request itself is wrong.
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    VALIDATION_FAILED = "validation_failed"
    BAD_JSON = "bad_json"
    BODY_TOO_LARGE = "body_too_large"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_TYPE = "unsupported_type"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    NOT_FOUND = "not_found"
    # Who is asking.
    UNAUTHENTICATED = "unauthenticated"
    ALREADY_AUTHENTICATED = "already_authenticated"
    PROFILE_REQUIRED = "profile_required"
    PROFILE_EXISTS = "profile_exists"
    FORBIDDEN = "forbidden"
    NOT_MEMBER = "not_member"
    # Sign-in.
    INVALID_PHONE = "invalid_phone"
    CODE_INVALID = "code_invalid"
    CODE_EXPIRED = "code_expired"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    RESEND_TOO_SOON = "resend_too_soon"
    RATE_LIMITED = "rate_limited"
    # State.
    CONFLICT = "conflict"
    # Lessons.
    LESSON_NOT_STARTED = "lesson_not_started"
    LESSON_ENDED = "lesson_ended"
    ANOTHER_LESSON_LIVE = "another_lesson_live"
    SLOT_NOT_AVAILABLE = "slot_not_available"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"


class CloseCode(enum.IntEnum):
    """Application WebSocket close codes (RFC 6455 reserves 4000-4999 for private use).

    They mirror HTTP statuses so an operator reading logs recognises them.
    """

    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403
    SLOW_CONSUMER = 4408
    RATE_LIMITED = 4429
    SESSION_REVOKED = 4410
