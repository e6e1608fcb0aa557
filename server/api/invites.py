"""Invite links as QR codes: ``GET /api/v1/invites/{token}/qr.svg`` draws the join address
(``<public url>/join/{token}``) so that a phone's camera can open it.

The picture holds nothing but the address the person asking already has (the token is in
the path), so it is drawn for any well-formed token; whether the invite still works is
decided when someone joins with it. Signed-in people only: this is no public QR service.
"""

from __future__ import annotations

import io
import re
from typing import Final

import segno

from protocol.errors import ErrorCode
from server.api.router import Router
from server.api.sessions import require_account
from server.config import Settings
from server.domain.auth import AuthService
from server.domain.errors import DomainError
from server.gateway.http import Request, Response

# What ``invite.join`` accepts, in the alphabet ``secrets.token_urlsafe`` writes.
TOKEN: Final = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
SVG: Final = "image/svg+xml"


def qr_svg(text: str) -> bytes:
    """A QR code of ``text`` as a standalone SVG that scales to any size (no width or
    height, only a view box), with the quiet zone scanners need."""
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(
        out, kind="svg", border=4, xmldecl=False, omitsize=True, light="#fff"
    )
    return out.getvalue()


class InvitesApi:
    def __init__(self, auth: AuthService, settings: Settings) -> None:
        self._auth = auth
        self._settings = settings

    def register(self, router: Router) -> None:
        router.add("GET", "/api/v1/invites/{token}/qr.svg", self.qr)

    async def qr(self, request: Request) -> Response:
        await require_account(request, self._auth, self._settings)
        token = request.params["token"]
        if not TOKEN.fullmatch(token):
            raise DomainError(ErrorCode.NOT_FOUND, "no invite link has such a token")
        svg = qr_svg(f"{self._settings.base_url}/join/{token}")
        return Response(
            200,
            svg,
            SVG,
            [
                # The same token always gives the same picture.
                ("Cache-Control", "private, max-age=86400"),
                # Opened directly, nothing in it runs.
                ("Content-Security-Policy", "default-src 'none'"),
            ],
        )
