"""``GET /api/v1/openapi.json``: the HTTP API as an OpenAPI 3.1 document.

Request bodies are the msgspec Structs that ``parse_body`` validates with, turned into JSON
Schema 2020-12 by msgspec, so the document cannot drift from validation. Success bodies that
have no Struct are written here by hand, closed (``additionalProperties: false``). Every error
is the shared ``Problem``; the codes listed for a status are those ``problems.STATUS`` maps to
it (and, for the statuses a handler sets itself, ``OWN_STATUS``). The document is static:
built once at startup and served as the same bytes.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from protocol.errors import ErrorCode
from server.api.auth import CodeRequest, ProfileRequest, VerifyRequest
from server.api.files import PART_MAX_BYTES, WHOLE_MAX_BYTES
from server.api.invites import SVG, TOKEN
from server.api.links import STATE_COOKIE, StartLink
from server.api.problems import PROBLEM_TYPE, STATUS
from server.api.router import Router
from server.api.sessions import COOKIE
from server.domain.journals import JournalChatIn, JournalChatPatch, ScheduleIn
from server.domain.lessons import LessonIn, LessonPatch
from server.domain.roster import RosterIn
from server.files.service import KINDS, NAME_MAX_BYTES
from server.gateway.http import Request, Response

Schema = dict[str, Any]

PATH = "/api/v1/openapi.json"
SCHEMAS = "#/components/schemas/"

# The bodies handlers parse; their schemas (and those of nested Structs) come from msgspec.
BODIES: tuple[type[msgspec.Struct], ...] = (
    CodeRequest,
    VerifyRequest,
    ProfileRequest,
    RosterIn,
    ScheduleIn,
    JournalChatIn,
    JournalChatPatch,
    StartLink,
    LessonIn,
    LessonPatch,
)

# Chat kinds a journal sees: the roster's system chats and the two a teacher makes.
JOURNAL_CHAT_KINDS = ["class", "colleagues", "custom", "parents", "subject"]
ROSTER_ROLES = ["parent", "staff", "student", "teacher"]

Security = list[dict[str, list[str]]]
USER: Security = [{"bearerAuth": []}, {"cookieAuth": []}]
JOURNAL: Security = [{"journalToken": []}]
PUBLIC: Security = []


# --- small schema builders ------------------------------------------------------------------


def _ref(name: str) -> Schema:
    return {"$ref": SCHEMAS + name}


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


STRING: Schema = {"type": "string"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
ID: Schema = {"type": "integer", "minimum": 1}
COUNT: Schema = {"type": "integer", "minimum": 0}
EXT_ID: Schema = {"type": "string", "minLength": 1, "maxLength": 64}
TIME: Schema = {"type": "string", "format": "date-time"}
NULLABLE_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}
LESSON_STATES = ["scheduled", "published", "live", "ended", "cancelled"]
LESSON: Schema = {
    "type": "object",
    "required": ["id", "chat_id", "title", "starts_at", "ends_at", "state"],
    "properties": {
        "id": ID,
        "chat_id": ID,
        "title": STRING,
        "starts_at": TIME,
        "ends_at": TIME,
        "state": {"enum": LESSON_STATES},
        "started_at": NULLABLE_TIME,
        "ended_at": NULLABLE_TIME,
    },
}


def _json(description: str, schema: Schema, headers: dict[str, Schema] | None = None) -> Schema:
    response: Schema = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


def _no_content(description: str, headers: dict[str, Schema] | None = None) -> Schema:
    response: Schema = {"description": description}
    if headers:
        response["headers"] = headers
    return response


def _cookie_header(name: str, description: str) -> dict[str, Schema]:
    return {
        "Set-Cookie": {
            "description": description,
            "required": True,
            "schema": {"type": "string", "pattern": f"^{name}="},
        }
    }


# --- errors ---------------------------------------------------------------------------------

# status → (component name, when). The gateway adds 413 for any body over the size cap.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The body is not JSON, or (sign-in) the code is wrong or expired."),
    401: ("Unauthenticated", "No token, or a wrong or expired one."),
    403: ("Forbidden", "Not allowed, or the educational profile is missing."),
    404: ("NotFound", "No such thing (in this journal), or not yours to see."),
    409: ("Conflict", "The state does not allow it (the profile or the link exists)."),
    413: ("PayloadTooLarge", "The request body is over the size cap."),
    415: ("UnsupportedContent", "The file is not something taken, or not of its `kind`."),
    416: ("RangeNotSatisfiable", "The range is outside the file; see `Content-Range`."),
    422: ("ValidationFailed", "The body or a parameter is invalid; `errors` names the fields."),
    429: ("TooManyRequests", "Rate limited; `Retry-After` says how many seconds to wait."),
    500: ("InternalError", "A bug: the server logged it."),
    503: (
        "Unavailable",
        "A service Parta depends on failed (the SMS gateway); try again after `Retry-After`.",
    ),
}


# Statuses a handler sets itself, with the code it sends (none at the moment).
OWN_STATUS: dict[int, list[ErrorCode]] = {}


def codes_for(status: int) -> list[str]:
    """Every code the problem mapping answers with this status (unmapped codes are 400)."""
    mapped = {code for code in ErrorCode if STATUS.get(code, 400) == status}
    return sorted(code.value for code in mapped.union(OWN_STATUS.get(status, [])))


def _problem_response(status: int, description: str) -> Schema:
    schema = {
        "allOf": [
            _ref("Problem"),
            {"properties": {"status": {"const": status}, "code": {"enum": codes_for(status)}}},
        ]
    }
    return {"description": description, "content": {PROBLEM_TYPE: {"schema": schema}}}


RETRY_AFTER: Schema = {
    "description": "Seconds to wait before asking again.",
    "schema": {"type": "integer", "minimum": 1},
}


def _error_responses() -> dict[str, Schema]:
    responses = {
        name: _problem_response(status, description)
        for status, (name, description) in ERRORS.items()
    }
    responses["TooManyRequests"]["headers"] = {"Retry-After": {**RETRY_AFTER, "required": True}}
    responses["RangeNotSatisfiable"]["headers"] = {
        "Content-Range": {
            "required": True,
            "schema": {"type": "string", "pattern": "^bytes \\*/[0-9]+$"},
        }
    }
    return responses


def _errors(*statuses: int) -> dict[str, Schema]:
    """References to the shared error responses; 500 is on every operation."""
    return {str(s): {"$ref": f"#/components/responses/{ERRORS[s][0]}"} for s in (*statuses, 500)}


PROBLEM: Schema = {
    "description": "RFC 9457 problem details; switch on `code`, never on the text.",
    **_object(
        {
            "type": {"type": "string", "format": "uri"},
            "title": STRING,
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "code": {"type": "string", "enum": sorted(code.value for code in ErrorCode)},
            "detail": STRING,
        },
        {
            "errors": {
                **_array(_object({"field": STRING, "message": STRING})),
                "minItems": 1,
                "description": "Field errors of `validation_failed`: a dotted path and why.",
            }
        },
    ),
}


# --- success bodies -------------------------------------------------------------------------

PERSON_NAME: Schema = _object(
    {"last_name": STRING, "first_name": STRING, "middle_name": NULLABLE_STRING}
)
JOURNAL_REF: Schema = _object({"id": STRING, "name": STRING})

RESPONSES: dict[str, Schema] = {
    "Health": _object(
        {
            "status": {"const": "ok"},
            "version": STRING,
            "database": {"enum": ["postgres", "sqlite"]},
            "uptime_s": COUNT,
            "media": _array(
                _object(
                    {
                        "worker": COUNT,
                        "up": {"type": "boolean"},
                        "pid": {"type": ["integer", "null"]},
                        "port": COUNT,
                        "rooms": COUNT,
                    }
                )
            ),
        }
    ),
    "CodeSent": _object(
        {
            "phone": {
                "type": "string",
                "pattern": r"^\+[1-9][0-9]{1,14}$",
                "description": "The number in E.164.",
            },
            "resend_after": {**COUNT, "description": "Seconds before a new code may be asked."},
            "expires_in": {**COUNT, "description": "Seconds the code lives."},
        }
    ),
    "Session": _object(
        {
            "token": {**STRING, "description": "The session token for `Authorization: Bearer`."},
            "account_id": ID,
            "has_profile": {"type": "boolean"},
        }
    ),
    "Profile": _object(
        {
            "account_id": ID,
            "last_name": STRING,
            "first_name": STRING,
            "middle_name": NULLABLE_STRING,
            "birth_date": {"type": "string", "format": "date"},
            "sex": {"enum": ["female", "male"]},
        }
    ),
    "Regions": _object(
        {
            "regions": _array(
                _object({"code": STRING, "name": STRING, "journals": _array(JOURNAL_REF)})
            )
        }
    ),
    "RosterCounts": {
        "description": "Records created, updated and removed by kind (`users`, `classes`, "
        "`groups`, `chats`, `chat_members`, …); a kind appears once something of it is seen.",
        **_object(
            {
                name: {"type": "object", "additionalProperties": COUNT}
                for name in ("created", "updated", "removed")
            }
        ),
    },
    "ScheduleCounts": _object({"removed": COUNT, "created": COUNT}),
    "UserChats": _object(
        {
            "chats": _array(
                _object(
                    {
                        "id": ID,
                        "title": STRING,
                        "kind": {"enum": JOURNAL_CHAT_KINDS},
                        "member_count": COUNT,
                        "unread_count": {
                            **COUNT,
                            "description": "Messages the person has not read (0 until linked).",
                        },
                        "lesson": {
                            "oneOf": [LESSON, {"type": "null"}],
                            "description": "The live lesson, else the next one not over.",
                        },
                    }
                )
            )
        }
    ),
    "ChatId": _object({"id": ID}),
    "Lesson": LESSON,
    "LessonSlots": _object(
        {"slots": _array(_object({"lesson_id": EXT_ID, "starts_at": TIME, "ends_at": TIME}))}
    ),
    "JoinUrl": _object({"url": STRING, "expires_at": TIME}),
    "Attendance": _object(
        {
            "call_id": ID,
            "attendance": _array(
                _object(
                    {
                        "user_id": {**EXT_ID, "type": ["string", "null"]},
                        "account_id": ID,
                        "joined_at": TIME,
                        "left_at": TIME,
                        "seconds": COUNT,
                        "presences": COUNT,
                    }
                )
            ),
        }
    ),
    "PendingLink": _object(
        {
            "journal": JOURNAL_REF,
            "person": _object(
                {
                    "last_name": STRING,
                    "first_name": STRING,
                    "middle_name": NULLABLE_STRING,
                    "schools": _array(_object({"name": STRING, "role": {"enum": ROSTER_ROLES}})),
                }
            ),
            "expires_at": {**COUNT, "description": "Unix time in milliseconds."},
        }
    ),
    "LinkConfirmed": _object(
        {"return_url": {**STRING, "description": "Where the browser goes next (the journal)."}}
    ),
    "LinkStarted": _object(
        {"url": {**STRING, "description": "The journal's link page, with `state`."}}
    ),
    "FileInfo": _object(
        {
            "id": ID,
            "chat_id": ID,
            "uploader_id": {"type": ["integer", "null"]},
            "kind": {"enum": list(KINDS)},
            "mime": STRING,
            "size": {"type": "integer", "minimum": 1},
            "name": STRING,
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "created_at": {"type": "string", "format": "date-time"},
            "thumbnail": {"type": "boolean", "description": "Whether `…/thumbnail` has one."},
        },
        {
            "width": COUNT,
            "height": COUNT,
            "duration_ms": COUNT,
            "waveform": {
                **_array({"type": "integer", "minimum": 0, "maximum": 255}),
                "description": "A voice message's peak levels.",
            },
        },
    ),
    "Links": _object(
        {
            "links": _array(
                _object(
                    {
                        "journal": _object({"id": STRING, "name": STRING, "region": STRING}),
                        "person": PERSON_NAME,
                        "linked_at": TIME,
                    }
                )
            )
        }
    ),
}


# --- parameters -----------------------------------------------------------------------------

PARAMETERS: dict[str, Schema] = {
    "ActingAs": {
        "name": "as",
        "in": "query",
        "required": True,
        "description": "The journal user id of the teacher or staff member the journal acts for.",
        "schema": EXT_ID,
    },
    "ChatId": {"name": "chat_id", "in": "path", "required": True, "schema": {**ID}},
    "CallId": {"name": "call_id", "in": "path", "required": True, "schema": {**ID}},
    "UserId": {
        "name": "user_id",
        "in": "path",
        "required": True,
        "description": "The journal's own id of the person.",
        "schema": EXT_ID,
    },
    "PendingId": {"name": "pending_id", "in": "path", "required": True, "schema": STRING},
    "FileId": {"name": "file_id", "in": "path", "required": True, "schema": {**ID}},
    "Range": {
        "name": "Range",
        "in": "header",
        "required": False,
        "description": "One range, `bytes=first-last`, `bytes=first-` or `bytes=-suffix`; "
        "anything else is ignored.",
        "schema": STRING,
    },
    "IfRange": {
        "name": "If-Range",
        "in": "header",
        "required": False,
        "description": "The range applies only while the ETag is this one.",
        "schema": STRING,
    },
    "IfNoneMatch": {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "304 when one of these ETags (or `*`) matches.",
        "schema": STRING,
    },
    "JournalId": {"name": "journal_id", "in": "path", "required": True, "schema": EXT_ID},
}


def _param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def _op(
    operation_id: str,
    summary: str,
    tag: str,
    security: Security,
    responses: dict[str, Schema],
    *,
    body: str | None = None,
    parameters: list[Schema] | None = None,
    description: str | None = None,
    raw_body: bool = False,
) -> Schema:
    operation: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "security": security,
    }
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    if raw_body:
        operation["requestBody"] = {"required": True, "content": {"application/octet-stream": {}}}
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _ok(
    name: str, description: str, status: int = 200, headers: dict[str, Schema] | None = None
) -> dict[str, Schema]:
    return {str(status): _json(description, _ref(name), headers)}


def _download_responses(*, whole_limit: bool) -> dict[str, Schema]:
    etag = {"ETag": {"required": True, "schema": {"type": "string", "pattern": '^"[0-9a-f]{64}"$'}}}
    served = {
        **etag,
        "Content-Disposition": {
            "required": True,
            "schema": {"type": "string", "pattern": "^(inline|attachment); filename="},
        },
        "Accept-Ranges": {"required": True, "schema": {"const": "bytes"}},
    }
    part = {"Content-Range": {"required": True, "schema": {"type": "string", "pattern": "^bytes "}}}
    responses: dict[str, Schema] = {
        "200": {
            "description": "The bytes, with their own media type.",
            "headers": served,
            "content": {"*/*": {}},
        },
        "206": {
            "description": f"The range asked for (at most {PART_MAX_BYTES >> 20} MiB of it).",
            "headers": {**served, **part},
            "content": {"*/*": {}},
        },
        "304": {"description": "Not modified (If-None-Match).", "headers": etag},
        **_errors(401, 404, 416),
    }
    if whole_limit:
        responses["413"] = {
            "$ref": "#/components/responses/PayloadTooLarge",
            "description": f"Larger than one response holds ({WHOLE_MAX_BYTES >> 20} MiB): "
            "fetch it in ranges.",
        }
    return responses


def _paths() -> dict[str, Schema]:
    session_cookie = _cookie_header(COOKIE, "The session cookie (HttpOnly, SameSite=Lax).")
    return {
        "/healthz": {
            "get": _op(
                "health",
                "Is this process serving, and on which database",
                "health",
                PUBLIC,
                {**_ok("Health", "Serving."), **_errors()},
            )
        },
        PATH: {
            "get": _op(
                "openapi",
                "This document",
                "meta",
                PUBLIC,
                {
                    "200": _json(
                        "The OpenAPI 3.1 document.",
                        {"type": "object", "required": ["openapi", "info", "paths"]},
                    ),
                    **_errors(),
                },
            )
        },
        "/api/v1/auth/code": {
            "post": _op(
                "requestCode",
                "Send a sign-in code by SMS",
                "auth",
                PUBLIC,
                {**_ok("CodeSent", "The code is sent."), **_errors(400, 413, 422, 429, 503)},
                body="CodeRequest",
                description="A code lives 5 minutes and allows 5 attempts; a new one can be "
                "asked after 60 s; 5 codes per phone per hour, and a per-address limit. When "
                "the SMS gateway fails (503), the attempt holds nothing back.",
            )
        },
        "/api/v1/auth/verify": {
            "post": _op(
                "verifyCode",
                "Sign in with the code",
                "auth",
                PUBLIC,
                {
                    "200": _json("Signed in.", _ref("Session"), session_cookie),
                    **_errors(400, 413, 422),
                    "429": {
                        **_problem_response(
                            429,
                            "Too many attempts from this address "
                            "(`rate_limited`, with `Retry-After`), or too many wrong codes "
                            "(`too_many_attempts`: ask for a new code).",
                        ),
                        "headers": {"Retry-After": RETRY_AFTER},
                    },
                },
                body="VerifyRequest",
            )
        },
        "/api/v1/auth/logout": {
            "post": _op(
                "logout",
                "End this session (or every session with all=1)",
                "auth",
                USER,
                {
                    "204": _no_content(
                        "Signed out; the cookie is cleared.",
                        _cookie_header(COOKIE, "Clears the session cookie."),
                    ),
                    **_errors(401, 403),
                },
                parameters=[
                    {
                        "name": "all",
                        "in": "query",
                        "required": False,
                        "description": "`1` or `true` ends every session of the account.",
                        "schema": STRING,
                    }
                ],
            )
        },
        "/api/v1/profile": {
            "get": _op(
                "getProfile",
                "Read the educational profile",
                "profile",
                USER,
                {**_ok("Profile", "The profile."), **_errors(401, 403)},
                description="403 `profile_required` until the profile exists.",
            ),
            "post": _op(
                "createProfile",
                "Create the educational profile",
                "profile",
                USER,
                {
                    **_ok("Profile", "Created.", status=201),
                    **_errors(400, 401, 403, 409, 413, 422),
                },
                body="ProfileRequest",
                description="Names are letters, spaces, hyphens and apostrophes; `birth_date` "
                "is YYYY-MM-DD; `sex` is `male` or `female`. One per account.",
            ),
        },
        "/api/v1/regions": {
            "get": _op(
                "regions",
                "Regions and their journals",
                "journal",
                PUBLIC,
                {**_ok("Regions", "Every region with a journal."), **_errors()},
            )
        },
        "/api/v1/roster": {
            "put": _op(
                "putRoster",
                "Replace a school's roster (idempotent)",
                "journal",
                JOURNAL,
                {
                    **_ok("RosterCounts", "Applied as a diff."),
                    **_errors(400, 401, 413, 422),
                },
                body="RosterIn",
                description="Every reference must resolve and every role fit, else 422 lists "
                "each bad row. The chats the roster implies follow it.",
            )
        },
        "/api/v1/schedule": {
            "put": _op(
                "putSchedule",
                "Replace a school's timetable for a date range",
                "journal",
                JOURNAL,
                {
                    **_ok("ScheduleCounts", "Lessons removed and created in the range."),
                    **_errors(400, 401, 404, 413, 422),
                },
                body="ScheduleIn",
                description="`from` and `to` are dates in the school's time zone, both "
                "included. Lesson times are RFC 3339 with an offset; a teacher's lessons "
                "must not overlap. 404 until the school's roster is sent.",
            )
        },
        "/api/v1/users/{user_id}/chats": {
            "get": _op(
                "userChats",
                "A person's chats",
                "journal",
                JOURNAL,
                {**_ok("UserChats", "The person's chats."), **_errors(401, 404)},
                parameters=[_param("UserId")],
            )
        },
        "/api/v1/chats": {
            "post": _op(
                "createChat",
                "Make a chat as a teacher",
                "journal",
                JOURNAL,
                {
                    **_ok("ChatId", "Created.", status=201),
                    **_errors(400, 401, 403, 404, 413, 422),
                },
                body="JournalChatIn",
                parameters=[_param("ActingAs")],
                description="A `custom` chat needs a title; a `subject` chat is titled from "
                "what the teacher chose. The acting person becomes its owner.",
            )
        },
        "/api/v1/chats/{chat_id}": {
            "patch": _op(
                "updateChat",
                "Rename a custom chat or replace its members",
                "journal",
                JOURNAL,
                {**_ok("ChatId", "Changed."), **_errors(400, 401, 403, 404, 413, 422)},
                body="JournalChatPatch",
                parameters=[_param("ChatId"), _param("ActingAs")],
                description="Only the creator and admins change a chat; chats the roster "
                "implies are not edited (403).",
            ),
            "delete": _op(
                "deleteChat",
                "Take a chat out of the journal",
                "journal",
                JOURNAL,
                {"204": _no_content("Removed from the journal."), **_errors(401, 403, 404, 422)},
                parameters=[_param("ChatId"), _param("ActingAs")],
            ),
        },
        "/api/v1/chats/{chat_id}/calls": {
            "post": _op(
                "scheduleLesson",
                "Schedule a lesson in a chat",
                "lessons",
                JOURNAL,
                {
                    **_ok("Lesson", "Scheduled.", status=201),
                    **_errors(400, 401, 403, 404, 413, 422),
                },
                body="LessonIn",
                parameters=[_param("ChatId"), _param("ActingAs")],
                description="A subject chat's lesson takes a timetable slot of its groups "
                "that has not ended (`lesson_id`, or `starts_at` equal to a slot's start, else "
                "the next slot) and the slot's times; in other chats a lesson is on a future "
                "day of the school's time zone. Refusals are 422 `slot_not_available`.",
            )
        },
        "/api/v1/chats/{chat_id}/slots": {
            "get": _op(
                "lessonSlots",
                "Timetable slots a subject chat's lesson may take",
                "lessons",
                JOURNAL,
                {
                    **_ok("LessonSlots", "Slots not yet over, soonest first."),
                    **_errors(401, 403, 404, 422),
                },
                parameters=[_param("ChatId"), _param("ActingAs")],
            )
        },
        "/api/v1/calls/{call_id}": {
            "get": _op(
                "getLesson",
                "A lesson and its state",
                "lessons",
                JOURNAL,
                {**_ok("Lesson", "The lesson."), **_errors(401, 403, 404, 422)},
                parameters=[_param("CallId"), _param("ActingAs")],
            ),
            "patch": _op(
                "editLesson",
                "Change a lesson's title or time",
                "lessons",
                JOURNAL,
                {**_ok("Lesson", "Changed."), **_errors(400, 401, 403, 404, 409, 413, 422)},
                body="LessonPatch",
                parameters=[_param("CallId"), _param("ActingAs")],
                description="The scheduling rules apply again; live and ended lessons are "
                "not edited (409).",
            ),
            "delete": _op(
                "deleteLesson",
                "Delete a lesson",
                "lessons",
                JOURNAL,
                {
                    "204": _no_content("Deleted; a published card shows it cancelled."),
                    **_errors(401, 403, 404, 409, 422),
                },
                parameters=[_param("CallId"), _param("ActingAs")],
            ),
        },
        "/api/v1/calls/{call_id}/publish": {
            "post": _op(
                "publishLesson",
                "Publish a lesson: its card goes into the chat",
                "lessons",
                JOURNAL,
                {**_ok("Lesson", "Published."), **_errors(401, 403, 404, 422)},
                parameters=[_param("CallId"), _param("ActingAs")],
            )
        },
        "/api/v1/calls/{call_id}/end": {
            "post": _op(
                "endLesson",
                "End a lesson for everyone",
                "lessons",
                JOURNAL,
                {**_ok("Lesson", "Ended."), **_errors(401, 403, 404, 409, 422)},
                parameters=[_param("CallId"), _param("ActingAs")],
            )
        },
        "/api/v1/calls/{call_id}/join": {
            "get": _op(
                "lessonJoinUrl",
                "A single-use URL that signs the person into the lesson",
                "lessons",
                JOURNAL,
                {
                    **_ok("JoinUrl", "Valid for a few minutes, once."),
                    **_errors(401, 403, 404, 409, 422),
                },
                parameters=[_param("CallId"), _param("ActingAs")],
                description="`as` is any linked member of the lesson's chat.",
            )
        },
        "/api/v1/calls/{call_id}/attendance": {
            "get": _op(
                "lessonAttendance",
                "Who was in the lesson and for how long",
                "lessons",
                JOURNAL,
                {
                    **_ok("Attendance", "Reconnects count as one presence."),
                    **_errors(401, 403, 404, 422),
                },
                parameters=[_param("CallId"), _param("ActingAs")],
            )
        },
        "/api/v1/calls/{call_id}/enter": {
            "get": _op(
                "enterLesson",
                "Open a join URL: sign in and go to the lesson",
                "lessons",
                PUBLIC,
                {
                    "303": _no_content(
                        "Signed in; on to the web client's lesson screen.",
                        headers={
                            "Location": {"required": True, "schema": STRING},
                            "Set-Cookie": {"required": True, "schema": STRING},
                        },
                    ),
                    **_errors(404),
                },
                parameters=[
                    _param("CallId"),
                    {"name": "ticket", "in": "query", "required": True, "schema": STRING},
                ],
            )
        },
        "/api/v1/chats/{chat_id}/files": {
            "post": _op(
                "uploadFile",
                "Upload a file into a chat",
                "files",
                USER,
                {
                    **_ok(
                        "FileInfo",
                        "Stored.",
                        status=201,
                        headers={
                            "Location": {
                                "required": True,
                                "schema": {"type": "string", "pattern": "^/api/v1/files/"},
                            }
                        },
                    ),
                    **_errors(400, 401, 403, 404, 413, 415, 422),
                },
                parameters=[
                    _param("ChatId"),
                    {
                        "name": "kind",
                        "in": "query",
                        "required": True,
                        "schema": {"enum": list(KINDS)},
                    },
                    {
                        "name": "name",
                        "in": "query",
                        "required": False,
                        "description": f"The file name: at most {NAME_MAX_BYTES} bytes of "
                        "UTF-8, no path, no control characters, not a program or script.",
                        "schema": STRING,
                    },
                ],
                description="The raw bytes are the body (streamed; the limit depends on "
                "`kind`). The content is analysed, whatever the request's Content-Type: "
                "it must be of its `kind`. Members of the chat only (403 `not_member`).",
                raw_body=True,
            )
        },
        "/api/v1/files/{file_id}": {
            "get": _op(
                "downloadFile",
                "Download a file (members of its chat only)",
                "files",
                USER,
                _download_responses(whole_limit=True),
                parameters=[
                    _param("FileId"),
                    _param("Range"),
                    _param("IfRange"),
                    _param("IfNoneMatch"),
                ],
                description="A file too large for one response (413) is fetched in ranges.",
            )
        },
        "/api/v1/files/{file_id}/thumbnail": {
            "get": _op(
                "downloadThumbnail",
                "A photo's or video's thumbnail",
                "files",
                USER,
                _download_responses(whole_limit=False),
                parameters=[
                    _param("FileId"),
                    _param("Range"),
                    _param("IfRange"),
                    _param("IfNoneMatch"),
                ],
            )
        },
        "/api/v1/invites/{token}/qr.svg": {
            "get": _op(
                "inviteQr",
                "An invite link as a QR code",
                "invites",
                USER,
                {
                    "200": {
                        "description": "SVG of `<public url>/join/{token}`; it scales to any size.",
                        "content": {SVG: {"schema": STRING}},
                    },
                    **_errors(401, 404),
                },
                parameters=[
                    {
                        "name": "token",
                        "in": "path",
                        "required": True,
                        "description": "The secret part of the link, as `invite.create` gave it.",
                        "schema": {"type": "string", "pattern": TOKEN.pattern},
                    }
                ],
                description="Drawn for any well-formed token: whether the invite works is "
                "decided when someone joins with it.",
            )
        },
        "/api/v1/link": {
            "get": _op(
                "linkLanding",
                "Browser landing for linking (HTML, not JSON)",
                "linking",
                PUBLIC,
                {
                    "303": {
                        "description": "The assertion holds: on to the confirmation page.",
                        "headers": {
                            "Location": {
                                "required": True,
                                "schema": {"type": "string", "pattern": "^/link/"},
                            }
                        },
                    },
                    "400": {
                        "description": "Refused: a page says why; nothing changed.",
                        "content": {"text/html": {"schema": STRING}},
                    },
                    **_errors(),
                },
                parameters=[
                    {
                        "name": "assertion",
                        "in": "query",
                        "required": True,
                        "description": "HS256 JWT signed with the journal's secret: `iss` "
                        "journal id, `sub` journal user id, `aud` `parta`, `exp` (at most "
                        "10 minutes ahead), `jti` (single use), `return_url`.",
                        "schema": STRING,
                    },
                    {
                        "name": "state",
                        "in": "query",
                        "required": False,
                        "description": "Back from linking started in Parta: must match the "
                        f"`{STATE_COOKIE}` cookie.",
                        "schema": STRING,
                    },
                ],
            )
        },
        "/api/v1/links/pending/{pending_id}": {
            "get": _op(
                "pendingLink",
                "What a pending link would link",
                "linking",
                PUBLIC,
                {**_ok("PendingLink", "The pending link."), **_errors(404)},
                parameters=[_param("PendingId")],
            )
        },
        "/api/v1/links/pending/{pending_id}/confirm": {
            "post": _op(
                "confirmLink",
                "Link the signed-in profile",
                "linking",
                USER,
                {**_ok("LinkConfirmed", "Linked."), **_errors(401, 403, 404, 409)},
                parameters=[_param("PendingId")],
                description="Consumes the assertion; the person joins their roster's chats.",
            )
        },
        "/api/v1/links/start": {
            "post": _op(
                "startLink",
                "Start linking from Parta",
                "linking",
                USER,
                {
                    **_ok(
                        "LinkStarted",
                        "Send the browser to `url`.",
                        headers=_cookie_header(STATE_COOKIE, "Binds `state` to this browser."),
                    ),
                    **_errors(400, 401, 403, 404, 413, 422),
                },
                body="StartLink",
            )
        },
        "/api/v1/links": {
            "get": _op(
                "links",
                "The journals this profile is linked to",
                "linking",
                USER,
                {**_ok("Links", "Every link."), **_errors(401)},
            )
        },
        "/api/v1/links/{journal_id}": {
            "delete": _op(
                "unlink",
                "Unlink a journal",
                "linking",
                USER,
                {"204": _no_content("Unlinked."), **_errors(401, 403, 404)},
                parameters=[_param("JournalId")],
            )
        },
    }


def build_document(version: str, base_url: str) -> Schema:
    _, components = msgspec.json.schema_components(BODIES, ref_template=SCHEMAS + "{name}")
    clash = components.keys() & {"Problem", *RESPONSES}
    if clash:
        raise ValueError(f"request and response schemas share names: {sorted(clash)}")
    schemas = {**components, "Problem": PROBLEM, **RESPONSES}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Parta HTTP API",
            "version": version,
            "description": "Sign-in, the educational profile, the Journal API (server to "
            "server) and linking. Errors are RFC 9457 problem details with a stable `code`.",
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "servers": [{"url": base_url}],
        "tags": [
            {"name": "health"},
            {"name": "meta"},
            {"name": "auth", "description": "Sign-in by phone and code; sessions."},
            {"name": "profile", "description": "The educational profile."},
            {"name": "journal", "description": "The Journal API: journal servers only."},
            {"name": "linking", "description": "Linking a profile to a journal's person."},
            {"name": "files", "description": "Attachments: uploads and downloads."},
            {"name": "invites", "description": "Invite links to chats."},
            {"name": "lessons", "description": "Lessons (calls) driven by the journal."},
        ],
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "responses": _error_responses(),
            "parameters": PARAMETERS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A user session token from `POST /api/v1/auth/verify`.",
                },
                "journalToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "pj_…",
                    "description": "A journal API token from `parta journals add`.",
                },
                "cookieAuth": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": COOKIE,
                    "description": "The browser session cookie; a changing request with it "
                    "from another origin is refused (403).",
                },
            },
        },
    }


class OpenApi:
    def __init__(self, version: str, base_url: str) -> None:
        self._body = orjson.dumps(build_document(version, base_url))

    def register(self, router: Router) -> None:
        router.add("GET", PATH, self.document)

    async def document(self, request: Request) -> Response:
        return Response(200, self._body, "application/json", [("Cache-Control", "no-cache")])
