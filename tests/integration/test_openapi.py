"""The OpenAPI document: valid OpenAPI 3.1, in step with the route table both ways, and true
to a real server. Every success answer is walked once, then schemathesis fuzzes every
operation: no 5xx, and no status, content type, header or body outside the document."""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import msgspec
import PIL.Image
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.api.openapi import BODIES, PATH, SCHEMAS, build_document
from server.app import App, parta_version
from server.config import Settings
from server.gateway.http import Request
from server.store import open_store
from tests.domain.school import SCHOOL, school
from tests.integration.conftest import RunningServer, start_server, stop_server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    # A secured operation refuses a request without its credentials.
    ignored_auth,
    # What the document calls invalid, the server refuses.
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 25
# Per-address sign-in limits high enough that fuzzing is not only 429s.
GENEROUS = {
    "PARTA_CODES_PER_IP_PER_HOUR": "1000000",
    "PARTA_VERIFIES_PER_IP_PER_MINUTE": "1000000",
}
LINK_URL = "https://journal.example/link"
# A second school with the ids generators try first ("0"), so that fuzzed requests meet a
# school, a teacher and a chat that exist.
SCHOOL_ZERO = school(
    school={"id": "0", "name": "Школа № 0", "timezone": "Europe/Moscow"},
    users=[
        *SCHOOL["users"],
        {"id": "0", "role": "teacher", "last_name": "Нулев", "first_name": "Ян"},
        # The ids are the journal's own: nothing forbids a slash.
        {"id": "0/1", "role": "student", "last_name": "Дробь", "first_name": "Ия"},
    ],
)

DOCUMENT = build_document("test", "http://127.0.0.1")
OPERATIONS = [
    f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item
]


# --- the document itself ----------------------------------------------------------------


async def test_every_api_route_is_documented_and_nothing_else(tmp_path: Path) -> None:
    store = await open_store(None, tmp_path)
    try:
        app = App(Settings(data_dir=tmp_path, sfu_workers=0), store)
        request = Request(
            method="GET", path=PATH, query={}, headers={}, body=b"", client_ip="127.0.0.1"
        )
        response = await app.router.resolve(request)(request)
    finally:
        await store.close()
    document = json.loads(response.body)
    routes = {
        (route.method, route.pattern)
        for route in app.router.routes
        if route.pattern.startswith("/api/v1/") or route.pattern == "/healthz"
    }
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert routes == documented
    # The one browser endpoint is documented as HTML or a redirect, not JSON.
    landing = document["paths"]["/api/v1/link"]["get"]["responses"]
    assert set(landing["400"]["content"]) == {"text/html"}
    assert landing["303"]["headers"]["Location"]["required"] is True


def test_request_bodies_are_the_structs_that_validate_them() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    _, from_structs = msgspec.json.schema_components(BODIES, ref_template=SCHEMAS + "{name}")
    assert {name: schemas[name] for name in from_structs} == from_structs
    body_of = {
        (method.upper(), path): operation["requestBody"]["content"]
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    }

    def struct(name: str) -> dict[str, Any]:
        return {"application/json": {"schema": {"$ref": SCHEMAS + name}}}

    assert body_of == {
        ("POST", "/api/v1/auth/code"): struct("CodeRequest"),
        ("POST", "/api/v1/auth/verify"): struct("VerifyRequest"),
        ("POST", "/api/v1/profile"): struct("ProfileRequest"),
        ("PUT", "/api/v1/roster"): struct("RosterIn"),
        ("PUT", "/api/v1/schedule"): struct("ScheduleIn"),
        ("POST", "/api/v1/chats"): struct("JournalChatIn"),
        ("PATCH", "/api/v1/chats/{chat_id}"): struct("JournalChatPatch"),
        ("POST", "/api/v1/links/start"): struct("StartLink"),
        ("POST", "/api/v1/chats/{chat_id}/calls"): struct("LessonIn"),
        ("PATCH", "/api/v1/calls/{call_id}"): struct("LessonPatch"),
        # An upload is the file's own bytes.
        ("POST", "/api/v1/chats/{chat_id}/files"): {"application/octet-stream": {}},
    }
    assert schemas["ScheduleIn"]["required"] == ["school_id", "from", "to"]
    assert schemas["RosterIn"]["properties"]["users"]["items"] == {"$ref": SCHEMAS + "UserIn"}


def test_every_error_is_a_problem_with_its_status() -> None:
    components = DOCUMENT["components"]["responses"]
    for path, item in DOCUMENT["paths"].items():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if int(status) < 400 or (path, status) == ("/api/v1/link", "400"):
                    continue
                if "$ref" in response:
                    response = components[response["$ref"].rsplit("/", 1)[1]]
                [(media_type, content)] = response["content"].items()
                assert media_type == "application/problem+json"
                problem, narrowed = content["schema"]["allOf"]
                assert problem == {"$ref": SCHEMAS + "Problem"}
                assert narrowed["properties"]["status"] == {"const": int(status)}
    too_many = components["TooManyRequests"]
    assert too_many["headers"]["Retry-After"]["required"] is True
    codes = too_many["content"]["application/problem+json"]["schema"]["allOf"][1]["properties"]
    assert "rate_limited" in codes["code"]["enum"]


# --- a real server ----------------------------------------------------------------------


def _call(
    url: str, method: str = "GET", body: object = None, token: str | None = None
) -> tuple[int, dict[str, str], Any]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    raw = isinstance(body, bytes)
    headers = {"content-type": "application/octet-stream" if raw else "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answer_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, dict(error.headers), error.read()
    is_json = answer_headers.get("Content-Type", "").startswith("application/")
    return status, answer_headers, (json.loads(raw) if raw and is_json else raw)


def _parta(*args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "server", *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout)


@dataclass
class Fuzzed:
    server: RunningServer
    schema: Any
    journal_id: str
    journal_token: str
    signing_secret: str
    # Sessions of accounts with a profile: the first for every request, the others one by
    # one for requests that end them (logout).
    sessions: list[str]
    # A signed-in account without a profile yet (POST /api/v1/profile).
    newcomer: str
    # A chat of every account in ``sessions``.
    chat_id: int
    # Per path, what exists (path parameters and query) for fuzzing to build on.
    known: dict[str, dict[str, Any]] = field(default_factory=dict)
    _used: int = 0

    def api(self, method: str, path: str, body: object = None) -> Any:
        status, _, answer = _call(self.server.url + path, method, body, self.journal_token)
        assert status < 300, (method, path, status, answer)
        return answer

    def seed(self) -> None:
        """Both schools as the journal sends them (fuzzing may have changed them)."""
        for roster in (SCHOOL, SCHOOL_ZERO):
            self.api("PUT", "/api/v1/roster", roster)

    def throwaway(self) -> str:
        self._used = self._used % (len(self.sessions) - 1) + 1
        return self.sessions[self._used]

    def assertion(self, sub: str, **claims: object) -> str:
        payload = {
            "iss": self.journal_id,
            "sub": sub,
            "aud": "parta",
            "exp": int(time.time()) + 300,
            "jti": f"{sub}-{time.monotonic_ns()}",
            "return_url": "https://journal.example/back",
        } | claims
        return jwt.encode(payload, self.signing_secret, algorithm="HS256")

    def headers_for(self, method: str, path: str) -> dict[str, str]:
        """The credentials the operation declares: the journal's token or a session."""
        security = DOCUMENT["paths"][path][method.lower()]["security"]
        if not security:
            return {}
        if security == [{"journalToken": []}]:
            token = self.journal_token
        elif (method, path) == ("POST", "/api/v1/profile"):
            token = self.newcomer
        elif (method, path) == ("POST", "/api/v1/auth/logout"):
            token = self.throwaway()
        else:
            token = self.sessions[0]
        return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    data_dir = tmp_path_factory.mktemp("parta")
    journal = _parta(
        "journals", "add", "--data-dir", str(data_dir), "--region-code", "77",
        "--region-name", "Москва", "--name", "Дневник", "--link-url", LINK_URL, "--json",
    )  # fmt: skip
    made = _parta(
        "loadtest-users", "--count", "40", "--chats", "1", "--json", "--data-dir", str(data_dir)
    )
    server = start_server(data_dir, env=GENEROUS)
    try:
        phone = "+79001234567"
        _call(server.url + "/api/v1/auth/code", "POST", {"phone": phone})
        _, _, session = _call(
            server.url + "/api/v1/auth/verify",
            "POST",
            {"phone": phone, "code": server.code_for(phone)},
        )
        fuzzed = Fuzzed(
            server=server,
            schema=schemathesis.openapi.from_url(server.url + PATH),
            journal_id=journal["journal_id"],
            journal_token=journal["api_token"],
            signing_secret=journal["signing_secret"],
            sessions=[user["token"] for user in made["users"]],
            newcomer=session["token"],
            chat_id=made["chats"][0]["chat_id"],
        )
        fuzzed.seed()
        custom = {"kind": "custom", "school_id": "0", "title": "Кружок", "members": []}
        custom_id = fuzzed.api("POST", "/api/v1/chats?as=0", custom)["id"]
        status, _, stored = _call(
            f"{server.url}/api/v1/chats/{fuzzed.chat_id}/files?kind=photo",
            "POST",
            _png(),
            fuzzed.sessions[0],
        )
        assert status == 201, stored
        file_id = {"path_parameters": {"file_id": stored["id"]}}
        fuzzed.known = {
            "/api/v1/users/{user_id}/chats": {"path_parameters": {"user_id": "s1"}},
            "/api/v1/chats/{chat_id}": {
                "path_parameters": {"chat_id": custom_id},
                "query": {"as": "0"},
            },
            "/api/v1/chats/{chat_id}/files": {"path_parameters": {"chat_id": fuzzed.chat_id}},
            "/api/v1/files/{file_id}": file_id,
            "/api/v1/files/{file_id}/thumbnail": file_id,
        }
        yield fuzzed
    finally:
        log = stop_server(server)
    assert server.process.returncode == 0, log


def test_the_served_document(fuzzed: Fuzzed) -> None:
    status, headers, document = _call(fuzzed.server.url + PATH)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-cache"
    validate(document)  # OpenAPI 3.1, with every schema in it
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["version"] == parta_version()
    assert document["servers"] == [{"url": fuzzed.server.url}]
    assert set(document["components"]["securitySchemes"]) == {
        "bearerAuth",
        "journalToken",
        "cookieAuth",
    }


def _check(fuzzed: Fuzzed, label: str, expected: int, **data: Any) -> Any:
    """One request made from the document, validated against it by schemathesis."""
    method, path = label.split(" ", 1)
    headers = fuzzed.headers_for(method, path) | data.pop("headers", {})
    case = fuzzed.schema[path][method].Case(**data)
    response = case.call(headers=headers, allow_redirects=False, timeout=10)
    case.validate_response(response, checks=CHECKS, headers=headers)
    assert response.status_code == expected, response.content[:500]
    if response.headers.get("content-type", [""])[0].startswith("application/"):
        return response.json()
    return response


def test_every_success_answer_matches_the_document(fuzzed: Fuzzed) -> None:
    fuzzed.seed()
    check = functools.partial(_check, fuzzed)
    check("GET /healthz", 200)
    check(f"GET {PATH}", 200)
    check("GET /api/v1/regions", 200)
    assert not any(check("PUT /api/v1/roster", 200, body=SCHOOL)["removed"].values())
    lesson = {
        "id": "l1",
        "group_id": "g-math-7a",
        "teacher_id": "t1",
        "starts_at": "2026-12-01T09:00:00+03:00",
        "ends_at": "2026-12-01T09:45:00+03:00",
    }
    week = {"school_id": "1", "from": "2026-12-01", "to": "2026-12-07", "lessons": [lesson]}
    check("PUT /api/v1/schedule", 200, body=week)
    chats = check("GET /api/v1/users/{user_id}/chats", 200, path_parameters={"user_id": "s1"})
    assert {chat["kind"] for chat in chats["chats"]} == {"class", "subject"}
    made = check(
        "POST /api/v1/chats",
        201,
        query={"as": "t1"},
        body={"kind": "subject", "school_id": "1", "subject_id": "math", "members": []},
    )
    acting = {"path_parameters": {"chat_id": made["id"]}, "query": {"as": "t1"}}
    check("PATCH /api/v1/chats/{chat_id}", 200, body={"members": [{"user_id": "s1"}]}, **acting)
    check("DELETE /api/v1/chats/{chat_id}", 204, **acting)

    phone = "+79001230001"
    check("POST /api/v1/auth/code", 200, body={"phone": phone})
    code = {"phone": phone, "code": fuzzed.server.code_for(phone)}
    session = check("POST /api/v1/auth/verify", 200, body=code)
    mine = {"authorization": f"Bearer {session['token']}"}
    profile = {"last_name": "Петров", "first_name": "Коля", "birth_date": "2012-03-04"}
    check("POST /api/v1/profile", 201, body=profile | {"sex": "male"}, headers=mine)
    check("GET /api/v1/profile", 200, headers=mine)
    check("POST /api/v1/links/start", 200, body={"journal_id": fuzzed.journal_id}, headers=mine)
    landed = check("GET /api/v1/link", 303, query={"assertion": fuzzed.assertion("s1")})
    pending = {"pending_id": landed.headers["location"][0].rsplit("/", 1)[1]}
    check("GET /api/v1/links/pending/{pending_id}", 200, path_parameters=pending)
    confirm = "POST /api/v1/links/pending/{pending_id}/confirm"
    check(confirm, 200, path_parameters=pending, headers=mine)
    assert check("GET /api/v1/links", 200, headers=mine)["links"][0]["person"] == {
        "last_name": "Петров",
        "first_name": "Коля",
        "middle_name": None,
    }
    unlink = {"journal_id": fuzzed.journal_id}
    check("DELETE /api/v1/links/{journal_id}", 204, path_parameters=unlink, headers=mine)
    check("POST /api/v1/auth/logout", 204, query={"all": "1"}, headers=mine)
    assert check("GET /api/v1/profile", 401, headers=mine)["code"] == "unauthenticated"


def _png() -> bytes:
    picture = io.BytesIO()
    PIL.Image.new("RGB", (64, 48), (200, 30, 30)).save(picture, "PNG")
    return picture.getvalue()


def test_file_answers_match_the_document(fuzzed: Fuzzed) -> None:
    check = functools.partial(_check, fuzzed)
    picture = _png()
    stored = check(
        "POST /api/v1/chats/{chat_id}/files",
        201,
        path_parameters={"chat_id": fuzzed.chat_id},
        query={"kind": "photo", "name": "доска.png"},
        body=picture,
        media_type="application/octet-stream",
    )
    assert (stored["width"], stored["height"], stored["size"]) == (64, 48, len(picture))
    file = {"path_parameters": {"file_id": stored["id"]}}
    whole = check("GET /api/v1/files/{file_id}", 200, **file)
    assert whole.content == picture
    etag = whole.headers["etag"][0]
    part = check("GET /api/v1/files/{file_id}", 206, headers={"Range": "bytes=0-7"}, **file)
    assert part.content == picture[:8]
    check("GET /api/v1/files/{file_id}", 304, headers={"If-None-Match": etag}, **file)
    far = {"Range": f"bytes={len(picture)}-{len(picture) + 9}"}
    assert check("GET /api/v1/files/{file_id}", 416, headers=far, **file)["code"] == (
        "range_not_satisfiable"
    )
    check("GET /api/v1/files/{file_id}/thumbnail", 200 if stored["thumbnail"] else 404, **file)
    check(
        "POST /api/v1/chats/{chat_id}/files",
        415,
        path_parameters={"chat_id": fuzzed.chat_id},
        query={"kind": "photo"},
        body=b"not a picture",
        media_type="application/octet-stream",
    )


@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz(fuzzed: Fuzzed, label: str) -> None:
    """Requests that fit the document and requests that break it, with the credentials the
    operation declares."""
    method, path = label.split(" ", 1)
    operation = fuzzed.schema[path][method]
    fuzzed.seed()
    # Anything at all, and (where something exists) requests about what exists.
    variants = [{}, fuzzed.known[path]] if path in fuzzed.known else [{}]
    cases = st.one_of(
        operation.as_strategy(generation_mode=mode, **given_parts)
        for given_parts in variants
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    )

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )
    @given(case=cases)
    def requests_from_the_document(case: Any) -> None:
        headers = fuzzed.headers_for(method, path)
        response = case.call(headers=headers, allow_redirects=False, timeout=10)
        case.validate_response(response, checks=CHECKS, headers=headers)

    requests_from_the_document()


# --- findings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "route", "query", "body", "expected"),
    [
        ("PATCH", "/api/v1/chats/{chat_id}", "?as=0", {}, (404, "not_found")),
        ("DELETE", "/api/v1/chats/{chat_id}", "?as=0", None, (404, "not_found")),
        ("POST", "/api/v1/chats/{chat_id}/files", "?kind=photo", b"x", (403, "not_member")),
        ("GET", "/api/v1/files/{file_id}", "", None, (404, "not_found")),
        ("GET", "/api/v1/files/{file_id}/thumbnail", "", None, (404, "not_found")),
    ],
)
def test_an_id_of_unicode_digits_is_no_id(
    fuzzed: Fuzzed, method: str, route: str, query: str, body: object, expected: tuple[int, str]
) -> None:
    # "²".isdigit() is true but int("²") raises: these were 500s.
    fuzzed.seed()
    path = route.format(chat_id="%C2%B2", file_id="%C2%B2") + query
    token = fuzzed.headers_for(method, route)["authorization"].removeprefix("Bearer ")
    status, _, problem = _call(fuzzed.server.url + path, method, body, token)
    assert (status, problem["code"]) == expected, problem


def test_a_schedule_to_the_last_date_is_refused(fuzzed: Fuzzed) -> None:
    fuzzed.seed()
    status, _, problem = _call(
        fuzzed.server.url + "/api/v1/schedule",
        "PUT",
        {"school_id": "1", "from": "9999-12-30", "to": "9999-12-31", "lessons": []},
        fuzzed.journal_token,
    )
    assert (status, problem["code"]) == (422, "validation_failed"), problem


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [("GET", "/api/v1/users/0%2F1/chats", 200), ("DELETE", "/api/v1/links/pending%2Fx", 404)],
)
def test_an_encoded_slash_stays_in_its_path_parameter(
    fuzzed: Fuzzed, method: str, path: str, expected: int
) -> None:
    fuzzed.seed()
    token = fuzzed.journal_token if path.startswith("/api/v1/users/") else fuzzed.sessions[0]
    status, _, answer = _call(fuzzed.server.url + path, method, token=token)
    assert status == expected, answer["detail"]


def test_an_assertion_that_expires_at_nan_is_refused(fuzzed: Fuzzed) -> None:
    fuzzed.seed()
    assertion = fuzzed.assertion("s1", exp=float("nan"))
    status, headers, _ = _call(f"{fuzzed.server.url}/api/v1/link?assertion={assertion}")
    assert (status, headers["Content-Type"]) == (400, "text/html; charset=utf-8")
