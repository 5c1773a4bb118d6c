"""The command API's OpenAPI declarations: the fast path's operations (not Django views, so
drf-spectacular cannot see them: described here, one per route and method of fast_path.ROUTES)
and the decorator of the flag, experiment and erasure administration's DRF views. Request and
answer bodies are msgspec's schemas of the structs the endpoints decode and encode with.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from command_side.flags.cache import ActiveFlag
from command_side.flags.public import MAX_DISTINCT_ID, ForUser
from command_side.flags.service import HistoryEntry
from contracts import limits
from contracts.errors import ErrorCode
from contracts.events import BatchIn, CaptureIn, EventIn, SessionEndIn, SessionStartIn
from flags.definition import FlagDefinition, PropertyFilter
from flags.evaluate import Evaluation, Reason
from tenancy.openapi import (
    AUTH_ERRORS,
    PERSONAL_KEY,
    PROJECT_ID,
    REF,
    RETRY_AFTER,
    SESSION,
    TEXT,
    TIME,
    Schema,
    error,
    error_schema,
    nullable,
    obj,
    struct_ref,
)

F = TypeVar("F", bound=Callable[..., Any])

PROJECT_KEY = "projectApiKey"
PROJECT_KEY_IN_QUERY = "projectApiKeyInQuery"
SECURITY_SCHEMES: dict[str, Schema] = {
    PROJECT_KEY: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "tlp_…",
        "description": "The project's public API key (`tlp_…`: write-only, safe to ship in an app): "
        '`Authorization: Bearer tlp_…`, or `"api_key"` in a JSON body (the header wins).',
    },
    PROJECT_KEY_IN_QUERY: {
        "type": "apiKey",
        "in": "query",
        "name": "api_key",
        "description": "The project's public API key in the query string (flag evaluation by GET only).",
    },
}

EVENT_CODES = (
    ErrorCode.INVALID_JSON, ErrorCode.INVALID_GZIP, ErrorCode.MISSING_FIELD, ErrorCode.INVALID_TYPE,
    ErrorCode.EMPTY_VALUE, ErrorCode.VALUE_TOO_LONG, ErrorCode.INVALID_VALUE, ErrorCode.INVALID_TIMESTAMP,
    ErrorCode.INVALID_UUID, ErrorCode.EVENT_TOO_LARGE, ErrorCode.PROPERTIES_TOO_DEEP,
    ErrorCode.TOO_MANY_PROPERTIES, ErrorCode.ILLEGAL_DISTINCT_ID,
)  # fmt: skip
"""What endpoints.capture and the session endpoints answer 400 with (contracts.events' checks)."""

RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying (TIDELOG_RETRY_AFTER_SECONDS)",
        "schema": {"type": "integer"},
    }
}
JSON = "application/json"


def answer(description: str, schema: Schema | None = None, headers: Schema | None = None) -> Schema:
    """An OpenAPI response object (the fast path's operations are written out whole)."""
    response: Schema = {"description": description}
    if schema is not None:
        response["content"] = {JSON: {"schema": schema}}
    if headers:
        response["headers"] = headers
    return response


def failure(description: str, *codes: ErrorCode) -> Schema:
    return answer(description, error_schema(*codes))


KEY_REFUSED = failure(
    "no key (`missing_api_key`), an unknown or malformed one (`invalid_api_key`), or a personal key (`wrong_key_kind`)",
    ErrorCode.MISSING_API_KEY, ErrorCode.INVALID_API_KEY, ErrorCode.WRONG_KEY_KIND,
)  # fmt: skip
UNAVAILABLE = answer(
    "the buffer is full or Redis is down (`buffer_full`, `buffer_unavailable`), or PostgreSQL is unreachable"
    " for a key this server has not seen (`database_unavailable`): nothing was stored, retry",
    error_schema(ErrorCode.BUFFER_FULL, ErrorCode.BUFFER_UNAVAILABLE, ErrorCode.DATABASE_UNAVAILABLE),
    RETRY_AFTER_HEADER,
)
BODY_ERRORS: dict[str, Schema] = {
    "408": failure(
        "the body did not arrive whole within TIDELOG_BODY_READ_TIMEOUT_SECONDS; the connection is closed",
        ErrorCode.BODY_TIMEOUT,
    ),
    "413": failure(
        f"the body is over {limits.MAX_BODY_BYTES} bytes (after gunzip), or a batch over"
        f" {limits.MAX_BATCH_EVENTS} events",
        ErrorCode.BODY_TOO_LARGE,
        ErrorCode.TOO_MANY_EVENTS,
    ),
    "415": failure("a `Content-Encoding` other than gzip", ErrorCode.UNSUPPORTED_ENCODING),
}
"""Refusals of a request body before it is decoded (endpoints.read_body, rsgi_edge)."""
GZIP = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "description": "`gzip` for a compressed body; the size limit applies after decompression.",
    "schema": {"type": "string", "enum": ["gzip", "identity"]},
}


def ingestion(summary: str, body: type, status: str, success: Schema, *, bad_request: Schema | None = None) -> Schema:
    """An ingestion operation: a JSON body (maybe gzip), the project key, its refusals."""
    return {
        "summary": summary,
        # `{}`: no header, the key in the body instead (`api_key`), which OpenAPI cannot say.
        "security": [{PROJECT_KEY: []}, {}],
        "parameters": [GZIP],
        "requestBody": {"required": True, "content": {JSON: {"schema": struct_ref(body)}}},
        "responses": {
            status: answer("accepted: buffered, stored within seconds", success),
            "400": bad_request
            or failure("the event is invalid (it is kept as a bad event); `field` names the field", *EVENT_CODES),
            "401": KEY_REFUSED,
            **BODY_ERRORS,
            "503": UNAVAILABLE,
        },
    }


SESSION_ANSWER = {
    "type": "object",
    "properties": {"session_id": {"type": "string"}, "uuid": {"type": "string", "format": "uuid"}},
    "required": ["session_id", "uuid"],
}
REJECTED_EVENT: Schema = {
    **error_schema(*EVENT_CODES),
    "properties": {**error_schema(*EVENT_CODES)["properties"], "index": {"type": "integer", "minimum": 0}},
    "required": ["index", "code", "field", "message"],
}
BATCH_ANSWER: Schema = {
    "type": "object",
    "properties": {"accepted": {"type": "integer"}, "rejected": {"type": "array", "items": REJECTED_EVENT}},
    "required": ["accepted", "rejected"],
}
_batch_refused = error_schema(ErrorCode.NO_EVENTS, ErrorCode.ALL_EVENTS_INVALID, *EVENT_CODES)
BATCH_REFUSED: Schema = {
    **_batch_refused,
    "properties": {**_batch_refused["properties"], **BATCH_ANSWER["properties"]},
    "description": "`all_events_invalid` also carries `accepted` (0) and `rejected`, as a 200 would.",
}
SESSION_ID_IN_PATH = {
    "name": "session_id",
    "in": "path",
    "required": True,
    "description": "The session's id, as its start named it (UTF-8, percent-escaped).",
    "schema": {"type": "string", "maxLength": limits.MAX_ID_LENGTH},
}
FLAG_ANSWER = {"type": "object", "properties": {"flags": {"type": "array", "items": struct_ref(ActiveFlag)}}}
FOR_USER_ANSWER = {
    "type": "object",
    "properties": {
        "distinct_id": {"type": "string"},
        "flags": {"type": "object", "additionalProperties": struct_ref(Evaluation), "description": "by flag key"},
    },
    "required": ["distinct_id", "flags"],
}
FLAG_REFUSED = failure(
    "a bad parameter or body (`field` names it): more than 20 query parameters, a query string that is"
    " not UTF-8, `person_properties` not a JSON object, `distinct_id` missing or too long",
    ErrorCode.INVALID_PARAMETER, ErrorCode.MISSING_FIELD, ErrorCode.VALUE_TOO_LONG, ErrorCode.INVALID_JSON,
    ErrorCode.INVALID_TYPE,
)  # fmt: skip


USER_IN_QUERY = [
    {
        "name": "distinct_id",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "maxLength": MAX_DISTINCT_ID},
    },
    {
        "name": "person_properties",
        "in": "query",
        "required": False,
        "description": "A JSON object of the user's properties, for the flags' conditions.",
        "content": {JSON: {"schema": {"type": "object"}}},
    },
]


def evaluation(summary: str, success: Schema, *, body: type | None = None, parameters: list[Schema]) -> Schema:
    """A flag evaluation operation: by GET (the key may be in the query) or by POST with `body`."""
    operation: Schema = {
        "summary": summary,
        "description": "Evaluated from the process's flag cache: no PostgreSQL on this path.",
        "security": [{PROJECT_KEY: []}, {PROJECT_KEY_IN_QUERY: []}],
        "parameters": parameters,
        "responses": {"200": answer("OK", success), "400": FLAG_REFUSED, "401": KEY_REFUSED, "503": UNAVAILABLE},
    }
    if body is not None:
        operation["security"] = [{PROJECT_KEY: []}, {}]
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": struct_ref(body)}}}
        operation["responses"] |= BODY_ERRORS
    return operation


FAST_PATH: dict[tuple[str, str], Schema] = {
    ("capture/", "post"): ingestion(
        "Send one event",
        CaptureIn,
        "200",
        {
            "type": "object",
            "properties": {"accepted": {"const": 1}, "uuid": {"type": "string", "format": "uuid"}},
            "required": ["accepted", "uuid"],
        },
    ),
    ("batch/", "post"): ingestion(
        f"Send up to {limits.MAX_BATCH_EVENTS} events: the good ones are kept, the bad ones reported by index",
        BatchIn,
        "200",
        BATCH_ANSWER,
        bad_request=answer(
            "nothing to store: no events, every event invalid, or the body refused whole (kept as one bad event)",
            BATCH_REFUSED,
        ),
    ),
    ("session/start/", "post"): ingestion(
        "Start a session (a `$session_start` event); the id is made here when the body has none",
        SessionStartIn,
        "201",
        SESSION_ANSWER,
    ),
    ("session/{session_id}/end/", "put"): {
        **ingestion("End a session (a `$session_end` event)", SessionEndIn, "200", SESSION_ANSWER),
        "parameters": [SESSION_ID_IN_PATH, GZIP],
    },
    ("session/{session_id}/end/", "post"): {
        **ingestion("End a session, for clients that cannot PUT", SessionEndIn, "200", SESSION_ANSWER),
        "parameters": [SESSION_ID_IN_PATH, GZIP],
    },
    ("public/feature-flags/", "get"): evaluation(
        "The project's enabled flags (never their conditions or overrides)", FLAG_ANSWER, parameters=[]
    ),
    ("public/feature-flags/for_user/", "get"): evaluation(
        "Every live flag for one user", FOR_USER_ANSWER, parameters=USER_IN_QUERY
    ),
    ("public/feature-flags/for_user/", "post"): evaluation(
        "Every live flag for one user", FOR_USER_ANSWER, body=ForUser, parameters=[]
    ),
}
"""One operation per (fast_path.ROUTES template, method): core/openapi.py puts them under PREFIX."""


# --- The administration's DRF views -------------------------------------------------------------------

ADMIN_BODY_CODES = (
    ErrorCode.INVALID_JSON, ErrorCode.MISSING_FIELD, ErrorCode.INVALID_TYPE, ErrorCode.INVALID_VALUE,
    ErrorCode.EMPTY_VALUE, ErrorCode.VALUE_TOO_LONG, ErrorCode.INVALID_TIMESTAMP, ErrorCode.INVALID_UUID,
    ErrorCode.INVALID_PARAMETER,
)  # fmt: skip


def admin_operation(
    summary: str,
    answer_schema: Schema,
    *parameters: OpenApiParameter,
    body: type | None = None,
    status: int = 200,
    conflicts: tuple[ErrorCode, ...] = (),
    staff_only: bool = False,
) -> Callable[[F], F]:
    """A flag, experiment or erasure administration method: its body (a msgspec struct), its
    answer and refusals; `staff_only` for what a personal key may not do (erasure)."""
    responses: dict[int, OpenApiResponse] = {
        status: OpenApiResponse(answer_schema, description="OK"),
        400: error("a bad body or parameter; `field` names it (dotted path)", *ADMIN_BODY_CODES),
        **AUTH_ERRORS,
        404: error("no such object in this project, or a staff user's unknown `project_id`", ErrorCode.NOT_FOUND),
    }
    if staff_only:
        responses[403] = error("a personal API key, or a logged-in user who is not staff", ErrorCode.PERMISSION_DENIED)
    if conflicts:
        responses[409] = error(
            "refused, nothing changed (`version_conflict` adds `current_version`)",
            *conflicts,
        )
    return extend_schema(
        summary=summary,
        parameters=[*parameters, PROJECT_ID, RETRY_AFTER],
        request={JSON: struct_ref(body)} if body is not None else None,
        responses=responses,
        # TRICKY: `auth` is the operation's security list as is (requirement objects), whatever
        # drf-spectacular's annotation (Sequence[str]) says.
        auth=[{SESSION: []}] if staff_only else [{PERSONAL_KEY: []}, {SESSION: []}],  # type: ignore[list-item]
    )


FLAG_META = obj(name=TEXT, description=TEXT, created_by=TEXT, created_at=TIME, updated_by=TEXT, updated_at=TIME)
FLAG_DEFINITION = struct_ref(FlagDefinition)
FLAG = {"$ref": REF.format(name="Flag")}
"""api.flag_body: the definition, its name and description, and who changed it when."""
FLAG_HISTORY = obj(key=TEXT, results={"type": "array", "items": struct_ref(HistoryEntry)})
EXPERIMENT = obj(
    key=TEXT, name=TEXT, description=TEXT, flag_key=TEXT, control=TEXT, tests={"type": "array", "items": TEXT},
    goal_event=TEXT, goal_filter=nullable(struct_ref(PropertyFilter)), start_at=TIME, end_at=nullable(TIME),
    archived={"type": "boolean"}, created_by=TEXT, created_at=TIME, updated_at=TIME,
)  # fmt: skip
"""experiments_api.experiment_body."""
_COUNT = {"type": "integer"}
ERASURE = obj(
    id=_COUNT, project_id=_COUNT, erased_at=TIME, erased_by=TEXT, via={"type": "string", "enum": ["api", "command"]},
    person_id=nullable({"type": "string", "format": "uuid"}), person_count=_COUNT, distinct_id_count=_COUNT,
    event_count=_COUNT, bad_event_count=_COUNT, read_model_row_count=_COUNT,
)  # fmt: skip
"""erasure.erasure_body: what was erased, never which ids."""


def archived_filter() -> OpenApiParameter:
    return OpenApiParameter(
        "archived",
        {"type": "string", "enum": ["true", "false", "all"], "default": "false"},
        OpenApiParameter.QUERY,
        description="Archived ones only, live ones only (the default), or all.",
    )


CURSOR = OpenApiParameter(
    "cursor", TEXT, OpenApiParameter.QUERY, description="The page after the one whose `next` link gave it."
)
ERASURE_CURSOR = OpenApiParameter(
    "cursor",
    {"type": "string", "pattern": "^[0-9]+$"},
    OpenApiParameter.QUERY,
    description="The page after the one whose `next` link gave it.",
)


EVENT_IN = struct_ref(EventIn)


def refine(components: dict[str, Schema]) -> None:
    """What msgspec cannot say of the structs: a batch's events are decoded one by one (raw in
    BatchIn, so each fails alone) as EventIn; an evaluation's reason is a Reason."""
    if "BatchIn" in components:
        components["BatchIn"]["properties"]["events"] = {
            "type": "array",
            "items": EVENT_IN,
            "maxItems": limits.MAX_BATCH_EVENTS,
        }
    if "Evaluation" in components:
        components["Evaluation"]["properties"]["reason"] = {"type": "string", "enum": [str(r) for r in Reason]}
    # A flag as the administration answers it: its definition (which refuses unknown fields as a
    # body, hence built here rather than extended) and FLAG_META.
    definition = components[FLAG_DEFINITION["$ref"].rpartition("/")[2]]
    components["Flag"] = {
        "title": "Flag",
        "description": "A flag's definition, its name and description, and who changed it when (api.flag_body).",
        "type": "object",
        "properties": {**definition["properties"], **FLAG_META["properties"]},
        "required": sorted({"key", "version", *definition["required"], *FLAG_META["required"]}),
    }
