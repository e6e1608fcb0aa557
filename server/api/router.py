"""A route table: method and path pattern → handler. Patterns use ``{name}`` segments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from protocol.errors import ErrorCode
from server.domain.errors import DomainError
from server.gateway.http import Handler, Request

_SEGMENT = re.compile(r"\{(\w+)\}")


def _compile(pattern: str) -> re.Pattern[str]:
    parts, pos = [], 0
    for match in _SEGMENT.finditer(pattern):
        parts += [re.escape(pattern[pos : match.start()]), f"(?P<{match[1]}>[^/]+)"]
        pos = match.end()
    parts.append(re.escape(pattern[pos:]))
    return re.compile("^" + "".join(parts) + "$")


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    handler: Handler
    # For routes that read their body as it arrives: the largest body they accept.
    stream_limit: int | None = None


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._prefixes: list[tuple[str, Handler]] = []

    def add(
        self, method: str, pattern: str, handler: Handler, *, stream_limit: int | None = None
    ) -> None:
        self._routes.append(Route(method, pattern, _compile(pattern), handler, stream_limit))

    def stream_limit(self, method: str, path: str) -> int | None:
        """``path`` as sent (percent-encoded), like every match here."""
        for route in self._routes:
            if (
                route.stream_limit is not None
                and route.method == method
                and route.regex.match(path)
            ):
                return route.stream_limit
        return None

    def add_prefix(self, prefix: str, handler: Handler) -> None:
        """Every GET under ``prefix`` (static files, the web client's own routes)."""
        self._prefixes.append((prefix, handler))

    def resolve(self, request: Request) -> Handler:
        allowed: list[str] = []
        path = request.raw_path or request.path
        for route in self._routes:
            match = route.regex.match(path)
            if match is None:
                continue
            if route.method == request.method:
                request.params = {k: unquote(v) for k, v in match.groupdict().items()}
                return route.handler
            allowed.append(route.method)
        if allowed:
            methods = tuple(sorted(set(allowed)))
            raise DomainError(
                ErrorCode.METHOD_NOT_ALLOWED,
                f"{request.method} is not allowed here; use {', '.join(methods)}",
                allow=methods,
            )
        if request.method == "GET":
            for prefix, handler in self._prefixes:
                if request.path.startswith(prefix):
                    return handler
        raise DomainError(ErrorCode.NOT_FOUND, f"nothing at {request.path}")

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)
