"""Sign-in, sessions and the educational profile over HTTP (DESIGN.md, "Sign-in and sessions")."""

from __future__ import annotations

from typing import Annotated

import msgspec

from server.api.inputs import parse_body
from server.api.router import Router
from server.api.sessions import request_token, require_account, session_cookie
from server.config import Settings
from server.domain.auth import AuthService, ProfileInput
from server.gateway.http import Request, Response
from server.store.accounts import Profile

Short = Annotated[str, msgspec.Meta(max_length=100)]


class CodeRequest(msgspec.Struct, frozen=True):
    phone: Short


class VerifyRequest(msgspec.Struct, frozen=True):
    phone: Short
    code: Short


class ProfileRequest(msgspec.Struct, frozen=True):
    last_name: Short
    first_name: Short
    birth_date: Short
    sex: Short
    middle_name: Short | None = None


def profile_json(profile: Profile) -> dict[str, object]:
    return {
        "account_id": profile.account_id,
        "last_name": profile.last_name,
        "first_name": profile.first_name,
        "middle_name": profile.middle_name,
        "birth_date": profile.birth_date,
        "sex": profile.sex,
    }


class AuthApi:
    def __init__(self, auth: AuthService, settings: Settings) -> None:
        self._auth = auth
        self._settings = settings

    def register(self, router: Router) -> None:
        router.add("POST", "/api/v1/auth/code", self.request_code)
        router.add("POST", "/api/v1/auth/verify", self.verify)
        router.add("POST", "/api/v1/auth/logout", self.logout)
        router.add("POST", "/api/v1/profile", self.create_profile)
        router.add("GET", "/api/v1/profile", self.get_profile)

    async def request_code(self, request: Request) -> Response:
        body = parse_body(request, CodeRequest)
        sent = await self._auth.request_code(body.phone, request.client_ip)
        return Response.json(
            {
                "phone": sent.phone,
                "resend_after": sent.resend_after_s,
                "expires_in": sent.expires_in_s,
            }
        )

    async def verify(self, request: Request) -> Response:
        body = parse_body(request, VerifyRequest)
        signed_in = await self._auth.verify(body.phone, body.code, request.client_ip)
        response = Response.json(
            {
                "token": signed_in.token,
                "account_id": signed_in.account_id,
                "has_profile": signed_in.has_profile,
            }
        )
        response.headers.append(session_cookie(signed_in.token, self._settings))
        return response

    async def logout(self, request: Request) -> Response:
        await require_account(request, self._auth, self._settings)
        token = request_token(request, self._settings)
        assert token is not None
        await self._auth.logout(token, everywhere=request.query_value("all") in ("1", "true"))
        return Response(204, headers=[session_cookie("", self._settings, clear=True)])

    async def create_profile(self, request: Request) -> Response:
        account_id = await require_account(request, self._auth, self._settings)
        body = parse_body(request, ProfileRequest)
        profile = await self._auth.create_profile(
            account_id,
            ProfileInput(
                last_name=body.last_name,
                first_name=body.first_name,
                middle_name=body.middle_name,
                birth_date=body.birth_date,
                sex=body.sex,
            ),
        )
        return Response.json(profile_json(profile), status=201)

    async def get_profile(self, request: Request) -> Response:
        account_id = await require_account(request, self._auth, self._settings)
        return Response.json(profile_json(await self._auth.profile(account_id)))
