"""The query API's OpenAPI declarations: the parameters its views share (declared once, here),
the answers' shapes, and `operation`, the decorator each view's `get` wears. The views parse
their query strings by hand (params.py), so drf-spectacular cannot see the parameters: they are
declared here with the same constants the parsers use (limits, choices), so they cannot drift.
"""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from contracts.errors import ErrorCode
from query_side import params, sessions
from tenancy.openapi import (
    AUTH_ERRORS,
    BOOLEAN,
    INTEGER,
    JSON_OBJECT,
    NUMBER,
    PROJECT_ID,
    RETRY_AFTER,
    TEXT,
    TIME,
    UUID_TEXT,
    Schema,
    array,
    error,
    nullable,
    obj,
)

F = TypeVar("F", bound=Callable[..., Any])


def breakdown_row(choices: Sequence[str], **properties: Schema) -> Schema:
    """A result row that carries the breakdown's value (null: unknown) when one is asked for."""
    row = obj(**properties)
    row["properties"] |= {name: nullable(TEXT) for name in choices}
    return row


# --- Parameters ------------------------------------------------------------------------------------


def query(
    name: str, schema: Schema, description: str, *, many: bool = False, required: Sequence[str] = ()
) -> OpenApiParameter:
    """A query parameter; `many`: it may repeat (`?property=a:1&property=b:2`); `required`: it
    must be given, and these values are an example of it (the tests send them)."""
    if many:
        schema = array(schema)
    if required:
        schema = {**schema, "examples": [list(required) if many else required[0]]}
    return OpenApiParameter(
        name, schema, OpenApiParameter.QUERY, description=description, explode=many or None, required=bool(required)
    )


def text_filter(name: str, description: str, *, required: Sequence[str] = ()) -> OpenApiParameter:
    return query(name, {"type": "string", "maxLength": params.MAX_TEXT}, description, required=required)


def choice(name: str, choices: Sequence[str], description: str, default: str | None = None) -> OpenApiParameter:
    schema: Schema = {"type": "string", "enum": list(choices)}
    if default is not None:
        schema["default"] = default
    return query(name, schema, description)


LIMIT = query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": params.MAX_LIMIT, "default": 100},
    "Rows per page.",
)
CURSOR = query(
    "cursor",
    {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
    "The page after the one whose `next` link gave it (opaque: follow `next`).",
)
LIST_AFTER = query("after", TIME, "Only rows at or after this time (ISO 8601; no offset means UTC). No default.")
LIST_BEFORE = query("before", TIME, "Only rows before this time. No default.")
PAGE = (LIMIT, CURSOR)


def time_range(default_days: int) -> tuple[OpenApiParameter, OpenApiParameter]:
    """`after` and `before` of an aggregate: [after, before), by default the last `default_days`."""
    return (
        query("after", TIME, f"Start of the range, inclusive (default: `before` minus {default_days} days)."),
        query("before", TIME, "End of the range, exclusive (default: now)."),
    )


RANGE = time_range(params.DEFAULT_RANGE.days)


# --- Answers ---------------------------------------------------------------------------------------


EVENT = obj(
    uuid=UUID_TEXT, event_type=TEXT, distinct_id=TEXT, timestamp=TIME, received_at=TIME,
    client_timestamp=nullable(TIME), sent_at=nullable(TIME), skew_ms=nullable(INTEGER),
    session_id=nullable(TEXT), device_id=nullable(TEXT), app_version=nullable(TEXT), os_name=nullable(TEXT),
    os_version=nullable(TEXT), properties=JSON_OBJECT,
)  # fmt: skip
SESSION = obj(
    session_id=TEXT, inferred=BOOLEAN, distinct_id=TEXT, person_id=nullable(UUID_TEXT), device_id=nullable(TEXT),
    app_version=nullable(TEXT), os_name=nullable(TEXT), os_version=nullable(TEXT), start=TIME, end=TIME,
    duration_seconds=NUMBER, event_count=INTEGER, screen_count=INTEGER, first_event=TEXT, last_event=TEXT,
    ended_by={"type": "string", "enum": list(sessions.ENDED_BY)}, active=BOOLEAN,
)  # fmt: skip
PERSON_FIELDS: dict[str, Schema] = {
    "person_id": UUID_TEXT, "is_identified": BOOLEAN, "properties": JSON_OBJECT, "first_seen": TIME, "last_seen": TIME,
    "event_count": INTEGER, "distinct_id_count": INTEGER, "distinct_ids": array(TEXT),
}  # fmt: skip
IDENTITY_LINK = obj(kind=TEXT, distinct_id=TEXT, other_id=TEXT, first_at=TIME, outcome=TEXT)
RATE = nullable(NUMBER)
VARIANT_RESULT = obj(
    key=TEXT, exposed=INTEGER, converted=INTEGER, rate=RATE, interval=obj(low=RATE, high=RATE), uplift=RATE,
    p_value=RATE, probability_to_beat_control=RATE,
)  # fmt: skip


def ranged(**properties: Schema) -> Schema:
    """An aggregate's answer: the range it counted, and its rows."""
    return obj(after=TIME, before=TIME, **properties)


# --- The decorator ---------------------------------------------------------------------------------


def operation(summary: str, answer: Schema, *parameters: OpenApiParameter, bounded: bool = False) -> Callable[[F], F]:
    """A query API GET: its parameters (with `project_id`, which every one reads), its answer,
    and the errors every one may give (a bad parameter is a 400 naming it in `field`; `bounded`:
    a question past its bound is a 400 `range_too_large` naming the parameter to change). The
    view's docstring is the operation's description."""
    refusals = (ErrorCode.INVALID_PARAMETER, *((ErrorCode.RANGE_TOO_LARGE,) if bounded else ()))
    return extend_schema(
        summary=summary,
        parameters=[*parameters, PROJECT_ID, RETRY_AFTER],
        responses={
            200: OpenApiResponse(answer, description="OK"),
            400: error("a bad parameter, or a question past its bound; `field` names the parameter", *refusals),
            **AUTH_ERRORS,
            404: error("no such object in this project, or a staff user's unknown `project_id`", ErrorCode.NOT_FOUND),
        },
    )
