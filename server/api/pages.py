"""Small server-rendered pages (until the web client takes over): escaped, Russian, plain."""

from __future__ import annotations

import html

from server.gateway.http import Response

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34em;margin:2em auto;padding:0 1em;"
    "line-height:1.45}input,select,button{font:inherit;padding:.4em;margin:.2em 0}"
    "button{cursor:pointer}.error{color:#a00}.muted{color:#555}label{display:block}"
    ":focus-visible{outline:3px solid #36c}"
)


def page(title: str, body: str, status: int = 200, script: str = "") -> Response:
    """``body`` is trusted markup built with ``escape``; ``title`` is escaped here."""
    document = (
        '<!doctype html><html lang="ru"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} — Parta</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main>"
        + (f"<script>{script}</script>" if script else "")
        + "</body></html>"
    )
    return Response(
        status,
        document.encode(),
        "text/html; charset=utf-8",
        [("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")],
    )


escape = html.escape
