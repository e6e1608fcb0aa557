"""Who is asking over HTTP: a Bearer token (SDKs) or the session cookie (browsers)."""

from __future__ import annotations

from protocol.errors import ErrorCode
from server.config import Settings
from server.domain.auth import AuthService
from server.domain.errors import DomainError
from server.gateway.http import Request

COOKIE = "parta_session"
COOKIE_MAX_AGE_S = 90 * 86_400


def request_token(request: Request, settings: Settings) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    token = request.cookies.get(COOKIE)
    if token is None:
        return None
    # A cookie rides along on cross-site requests; only our own origin may use it to act.
    origin = request.headers.get("origin")
    if request.method != "GET" and origin is not None and origin != settings.public_origin:
        raise DomainError(ErrorCode.FORBIDDEN, "cross-origin request with a session cookie")
    return token


async def require_account(request: Request, auth: AuthService, settings: Settings) -> int:
    token = request_token(request, settings)
    account_id = None if token is None else await auth.authenticate(token)
    if account_id is None:
        raise DomainError(
            ErrorCode.UNAUTHENTICATED, "sign in first (missing, wrong or expired token)"
        )
    return account_id


def session_cookie(token: str, settings: Settings, *, clear: bool = False) -> tuple[str, str]:
    parts = [f"{COOKIE}={'' if clear else token}", "Path=/", "HttpOnly", "SameSite=Lax"]
    parts.append("Max-Age=0" if clear else f"Max-Age={COOKIE_MAX_AGE_S}")
    if settings.secure_cookies:
        parts.append("Secure")
    return ("Set-Cookie", "; ".join(parts))
