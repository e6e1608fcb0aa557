"""RFC 9457 problem details: every error under /api/v1 is one of these."""

from __future__ import annotations

import http

import orjson

from protocol.errors import ErrorCode
from server.domain.errors import DomainError
from server.gateway.http import Response

PROBLEM_TYPE = "application/problem+json"

STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_MESSAGE: 400,
    ErrorCode.BAD_JSON: 400,
    ErrorCode.VALIDATION_FAILED: 422,
    ErrorCode.INVALID_PHONE: 422,
    ErrorCode.CODE_INVALID: 400,
    ErrorCode.CODE_EXPIRED: 400,
    ErrorCode.TOO_MANY_ATTEMPTS: 429,
    ErrorCode.RESEND_TOO_SOON: 429,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PROFILE_REQUIRED: 403,
    ErrorCode.PROFILE_EXISTS: 409,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_MEMBER: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.BODY_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_TYPE: 415,
    ErrorCode.RANGE_NOT_SATISFIABLE: 416,
    ErrorCode.CONFLICT: 409,
    ErrorCode.LESSON_NOT_STARTED: 409,
    ErrorCode.LESSON_ENDED: 409,
    ErrorCode.ANOTHER_LESSON_LIVE: 409,
    ErrorCode.SLOT_NOT_AVAILABLE: 422,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


def problem(
    status: int,
    code: ErrorCode,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    body: dict[str, object] = {
        "type": f"https://parta.dev/problems/{code.value}",
        "title": http.HTTPStatus(status).phrase,
        "status": status,
        "code": code.value,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return Response(status, orjson.dumps(body), PROBLEM_TYPE, headers or [])


def from_domain(exc: DomainError) -> Response:
    headers = []
    if exc.retry_after_s is not None:
        headers.append(("Retry-After", str(exc.retry_after_s)))
    if exc.allow:
        headers.append(("Allow", ", ".join(exc.allow)))
    return problem(
        STATUS.get(exc.code, 400),
        exc.code,
        exc.message,
        errors=[{"field": e.field, "message": e.message} for e in exc.errors] or None,
        headers=headers,
    )
