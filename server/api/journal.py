"""The Journal API (DESIGN.md, "Journal API"): server to server, with the journal's token."""

from __future__ import annotations

from server.api.inputs import parse_body
from server.api.router import Router
from server.domain.journals import JournalChatIn, JournalChatPatch, JournalService, ScheduleIn
from server.domain.roster import RosterIn
from server.gateway.http import Request, Response
from server.store.journals import Journal


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def path_id(request: Request, name: str) -> int:
    """A numeric id from the path; anything else is an id that finds nothing."""
    raw = request.params.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else -1


class JournalApi:
    def __init__(self, journals: JournalService) -> None:
        self._journals = journals

    def register(self, router: Router) -> None:
        router.add("GET", "/api/v1/regions", self.regions)
        router.add("PUT", "/api/v1/roster", self.roster)
        router.add("PUT", "/api/v1/schedule", self.schedule)
        router.add("GET", "/api/v1/users/{user_id}/chats", self.user_chats)
        router.add("POST", "/api/v1/chats", self.create_chat)
        router.add("PATCH", "/api/v1/chats/{chat_id}", self.update_chat)
        router.add("DELETE", "/api/v1/chats/{chat_id}", self.delete_chat)

    async def _journal(self, request: Request) -> Journal:
        return await self._journals.authenticate(bearer(request))

    async def regions(self, request: Request) -> Response:
        return Response.json({"regions": await self._journals.regions()})

    async def roster(self, request: Request) -> Response:
        journal = await self._journal(request)
        counts = await self._journals.put_roster(journal, parse_body(request, RosterIn))
        return Response.json(
            {"created": counts.created, "updated": counts.updated, "removed": counts.removed}
        )

    async def schedule(self, request: Request) -> Response:
        journal = await self._journal(request)
        return Response.json(
            await self._journals.put_schedule(journal, parse_body(request, ScheduleIn))
        )

    async def user_chats(self, request: Request) -> Response:
        journal = await self._journal(request)
        chats = await self._journals.chats_of(journal, request.params["user_id"])
        return Response.json({"chats": chats})

    async def create_chat(self, request: Request) -> Response:
        journal = await self._journal(request)
        chat = parse_body(request, JournalChatIn)
        chat_id = await self._journals.create_chat(journal, request.query_value("as"), chat)
        return Response.json({"id": chat_id}, status=201)

    async def update_chat(self, request: Request) -> Response:
        journal = await self._journal(request)
        patch = parse_body(request, JournalChatPatch)
        await self._journals.update_chat(
            journal, request.query_value("as"), path_id(request, "chat_id"), patch
        )
        return Response.json({"id": path_id(request, "chat_id")})

    async def delete_chat(self, request: Request) -> Response:
        journal = await self._journal(request)
        await self._journals.delete_chat(
            journal, request.query_value("as"), path_id(request, "chat_id")
        )
        return Response(204)
