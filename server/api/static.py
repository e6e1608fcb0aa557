"""The web client: built files from ``webclient/dist``, ``index.html`` for its own routes."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from protocol.errors import ErrorCode
from server.api.router import Router
from server.domain.errors import DomainError
from server.gateway.http import Request, Response

PLACEHOLDER = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Parta</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>Parta</h1>
<p>Сервер школьного общения работает. Веб-клиент ещё не собран: он появится в одном из
следующих выпусков. Пока можно войти и переписываться через
<code>python -m protocol.client</code>.</p>
<p lang="en">Parta is running. The web client is not built yet; use
<code>python -m protocol.client</code> meanwhile.</p>
</body></html>
"""


class StaticApi:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def register(self, router: Router) -> None:
        router.add_prefix("/", self.serve)

    async def serve(self, request: Request) -> Response:
        if request.path.startswith("/api/"):
            raise DomainError(ErrorCode.NOT_FOUND, f"nothing at {request.path}")
        index = self._root / "index.html"
        target = (self._root / request.path.lstrip("/")).resolve()
        if not target.is_relative_to(self._root):
            raise DomainError(ErrorCode.NOT_FOUND, f"nothing at {request.path}")
        if target.is_file():
            return _file(target, immutable="/assets/" in request.path)
        if not index.is_file():
            return Response(200, PLACEHOLDER.encode(), "text/html; charset=utf-8")
        # The client routes its own paths (/link/…, /chat/…): they all get index.html.
        return _file(index, immutable=False)


def _file(path: Path, *, immutable: bool) -> Response:
    kind, _ = mimetypes.guess_type(path.name)
    content_type = kind or "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/javascript",):
        content_type += "; charset=utf-8"
    cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
    return Response(200, path.read_bytes(), content_type, [("Cache-Control", cache)])
