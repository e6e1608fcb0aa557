"""Linking over HTTP: the browser landing from a journal, the pending link the web client's
``/link/{pending_id}`` page confirms, and a person's links (start from Parta, list, unlink)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from server.api.inputs import parse_body
from server.api.pages import escape, page
from server.api.router import Router
from server.api.sessions import require_account
from server.config import Settings
from server.domain.auth import AuthService
from server.domain.linking import LinkingService, LinkRefused
from server.domain.webhooks import rfc3339
from server.gateway.http import Request, Response

STATE_COOKIE = "parta_link_state"


class StartLink(msgspec.Struct, frozen=True):
    journal_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class LinksApi:
    def __init__(self, linking: LinkingService, auth: AuthService, settings: Settings) -> None:
        self._linking = linking
        self._auth = auth
        self._settings = settings

    def register(self, router: Router) -> None:
        router.add("GET", "/api/v1/link", self.land)
        router.add("GET", "/api/v1/links/pending/{pending_id}", self.pending)
        router.add("POST", "/api/v1/links/pending/{pending_id}/confirm", self.confirm)
        router.add("POST", "/api/v1/links/start", self.start)
        router.add("GET", "/api/v1/links", self.list)
        router.add("DELETE", "/api/v1/links/{journal_id}", self.unlink)

    async def land(self, request: Request) -> Response:
        """The journal's "link educational profile" button ends here (HTML, not JSON)."""
        assertion = request.query_value("assertion")
        if not assertion:
            return _refused("Журнал не передал данные для привязки.")
        try:
            pending_id = await self._linking.land(
                assertion, request.query_value("state"), request.cookies.get(STATE_COOKIE)
            )
        except LinkRefused as refused:
            return _refused(refused.reason)
        if not request.query_value("state"):
            return Response(303, headers=[("Location", f"/link/{pending_id}")])
        # The state matched this browser's cookie: the person started linking in Parta, so
        # the web client ends the flow in Parta rather than on the journal's return URL.
        return Response(
            303,
            headers=[
                ("Location", f"/link/{pending_id}?from=parta"),
                (
                    "Set-Cookie",
                    f"{STATE_COOKIE}=; Path=/api/v1/link; HttpOnly; SameSite=Lax; Max-Age=0",
                ),
            ],
        )

    async def pending(self, request: Request) -> Response:
        view = await self._linking.view(request.params["pending_id"])
        person = view.person
        return Response.json(
            {
                "journal": {"id": view.journal.id, "name": view.journal.name},
                "person": {
                    "last_name": person.last_name,
                    "first_name": person.first_name,
                    "middle_name": person.middle_name,
                    "schools": [{"name": n, "role": r} for n, r in person.schools],
                },
                "expires_at": view.pending.expires_at,
            }
        )

    async def confirm(self, request: Request) -> Response:
        account_id = await require_account(request, self._auth, self._settings)
        return_url = await self._linking.confirm(request.params["pending_id"], account_id)
        return Response.json({"return_url": return_url})

    async def start(self, request: Request) -> Response:
        await require_account(request, self._auth, self._settings)
        body = parse_body(request, StartLink)
        url, state = await self._linking.start(
            body.journal_id, f"{self._settings.base_url}/api/v1/link"
        )
        secure = "; Secure" if self._settings.secure_cookies else ""
        cookie = f"{STATE_COOKIE}={state}; Path=/api/v1/link; HttpOnly; SameSite=Lax; Max-Age=900"
        return Response.json({"url": url}, headers=[("Set-Cookie", cookie + secure)])

    async def list(self, request: Request) -> Response:
        account_id = await require_account(request, self._auth, self._settings)
        links = await self._linking.links(account_id)
        return Response.json(
            {
                "links": [
                    {
                        "journal": {
                            "id": journal.id,
                            "name": journal.name,
                            "region": journal.region_name,
                        },
                        "person": {
                            "last_name": person.last_name,
                            "first_name": person.first_name,
                            "middle_name": person.middle_name,
                        },
                        "linked_at": rfc3339(linked_at),
                    }
                    for journal, person, linked_at in links
                ]
            }
        )

    async def unlink(self, request: Request) -> Response:
        account_id = await require_account(request, self._auth, self._settings)
        await self._linking.unlink(account_id, request.params["journal_id"])
        return Response(204)


def _refused(reason: str) -> Response:
    return page(
        "Привязка не удалась",
        f'<p>{escape(reason)}</p><p class="muted">Ничего не изменилось.</p>',
        status=400,
    )
