"""Lessons in the Journal API (DESIGN.md): schedule, edit, publish, delete, end, join URLs,
attendance; and the browser endpoint behind a join URL, which signs the person in."""

from __future__ import annotations

from server.api.inputs import parse_body
from server.api.journal import bearer, path_id
from server.api.router import Router
from server.api.sessions import session_cookie
from server.config import Settings
from server.domain.auth import AuthService
from server.domain.journals import JournalService, lesson_json
from server.domain.lessons import LessonIn, LessonPatch, LessonService
from server.gateway.http import Request, Response
from server.store.journals import Journal


class LessonsApi:
    def __init__(
        self,
        journals: JournalService,
        lessons: LessonService,
        auth: AuthService,
        settings: Settings,
    ) -> None:
        self._journals = journals
        self._lessons = lessons
        self._auth = auth
        self._settings = settings

    def register(self, router: Router) -> None:
        router.add("POST", "/api/v1/chats/{chat_id}/calls", self.schedule)
        router.add("GET", "/api/v1/chats/{chat_id}/slots", self.slots)
        router.add("GET", "/api/v1/calls/{call_id}", self.get)
        router.add("PATCH", "/api/v1/calls/{call_id}", self.edit)
        router.add("DELETE", "/api/v1/calls/{call_id}", self.delete)
        router.add("POST", "/api/v1/calls/{call_id}/publish", self.publish)
        router.add("POST", "/api/v1/calls/{call_id}/end", self.end)
        router.add("GET", "/api/v1/calls/{call_id}/join", self.join_url)
        router.add("GET", "/api/v1/calls/{call_id}/attendance", self.attendance)
        router.add("GET", "/api/v1/calls/{call_id}/enter", self.enter)

    async def _journal(self, request: Request) -> Journal:
        return await self._journals.authenticate(bearer(request))

    async def schedule(self, request: Request) -> Response:
        journal = await self._journal(request)
        lesson = await self._lessons.schedule(
            journal,
            request.query_value("as"),
            path_id(request, "chat_id"),
            parse_body(request, LessonIn),
        )
        return Response.json(lesson_json(lesson), status=201)

    async def slots(self, request: Request) -> Response:
        journal = await self._journal(request)
        slots = await self._lessons.slots(
            journal, request.query_value("as"), path_id(request, "chat_id")
        )
        return Response.json({"slots": slots})

    async def get(self, request: Request) -> Response:
        journal = await self._journal(request)
        lesson = await self._lessons.info(
            journal, request.query_value("as"), path_id(request, "call_id")
        )
        return Response.json(lesson_json(lesson))

    async def edit(self, request: Request) -> Response:
        journal = await self._journal(request)
        lesson = await self._lessons.edit(
            journal,
            request.query_value("as"),
            path_id(request, "call_id"),
            parse_body(request, LessonPatch),
        )
        return Response.json(lesson_json(lesson))

    async def delete(self, request: Request) -> Response:
        journal = await self._journal(request)
        await self._lessons.delete(journal, request.query_value("as"), path_id(request, "call_id"))
        return Response(204)

    async def publish(self, request: Request) -> Response:
        journal = await self._journal(request)
        lesson = await self._lessons.publish(
            journal, request.query_value("as"), path_id(request, "call_id")
        )
        return Response.json(lesson_json(lesson))

    async def end(self, request: Request) -> Response:
        journal = await self._journal(request)
        lesson = await self._lessons.end_from_journal(
            journal, request.query_value("as"), path_id(request, "call_id")
        )
        return Response.json(lesson_json(lesson))

    async def join_url(self, request: Request) -> Response:
        journal = await self._journal(request)
        return Response.json(
            await self._lessons.join_url(
                journal, request.query_value("as"), path_id(request, "call_id")
            )
        )

    async def attendance(self, request: Request) -> Response:
        journal = await self._journal(request)
        lesson_id = path_id(request, "call_id")
        people = await self._lessons.attendance(journal, request.query_value("as"), lesson_id)
        return Response.json({"call_id": lesson_id, "attendance": people})

    async def enter(self, request: Request) -> Response:
        """A join URL opened in a browser: a session for that person, then the lesson."""
        lesson_id = path_id(request, "call_id")
        account_id = await self._lessons.use_ticket(lesson_id, request.query_value("ticket") or "")
        token = await self._auth.open_session(account_id)
        return Response(
            303,
            headers=[
                ("Location", f"/call/{lesson_id}"),
                session_cookie(token, self._settings),
                ("Cache-Control", "no-store"),
            ],
        )
