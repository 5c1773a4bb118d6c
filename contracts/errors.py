"""Machine-readable error codes of both APIs, and the one shape every error body has.

The strings are public: never rename one.
"""

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # request level
    INVALID_JSON = "invalid_json"
    INVALID_GZIP = "invalid_gzip"
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    BODY_TOO_LARGE = "body_too_large"
    TOO_MANY_EVENTS = "too_many_events"
    NO_EVENTS = "no_events"
    ALL_EVENTS_INVALID = "all_events_invalid"
    MISSING_API_KEY = "missing_api_key"
    INVALID_API_KEY = "invalid_api_key"
    # a personal key (tls_) sent to the command API, or a project key (tlp_) to the query API
    WRONG_KEY_KIND = "wrong_key_kind"
    BUFFER_FULL = "buffer_full"
    BUFFER_UNAVAILABLE = "buffer_unavailable"
    # the request body did not arrive whole within TIDELOG_BODY_READ_TIMEOUT_SECONDS (408)
    BODY_TIMEOUT = "body_timeout"
    # PostgreSQL unreachable: a key the command API has not cached, or any query API read (503)
    DATABASE_UNAVAILABLE = "database_unavailable"
    # event level
    MISSING_FIELD = "missing_field"
    INVALID_TYPE = "invalid_type"
    INVALID_VALUE = "invalid_value"
    VALUE_TOO_LONG = "value_too_long"
    EMPTY_VALUE = "empty_value"
    INVALID_TIMESTAMP = "invalid_timestamp"
    INVALID_UUID = "invalid_uuid"
    EVENT_TOO_LARGE = "event_too_large"
    PROPERTIES_TOO_DEEP = "properties_too_deep"
    TOO_MANY_PROPERTIES = "too_many_properties"
    # an $identify or $create_alias naming an id no person may have ("anonymous", "null", "0", ...)
    ILLEGAL_DISTINCT_ID = "illegal_distinct_id"
    # query side
    INVALID_PARAMETER = "invalid_parameter"
    # a query that would read more raw events than its documented limit (field: the range's)
    RANGE_TOO_LARGE = "range_too_large"
    NOT_AUTHENTICATED = "not_authenticated"
    PERMISSION_DENIED = "permission_denied"
    # flag and experiment administration (409s)
    VERSION_CONFLICT = "version_conflict"
    DUPLICATE_KEY = "duplicate_key"
    ARCHIVED = "archived"
    # erasure: a projection is replaying, retry when it has swapped in (409)
    REPLAY_RUNNING = "replay_running"
    # both APIs, whatever the route
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INTERNAL_ERROR = "internal_error"


def error_body(code: ErrorCode, message: str, field: str | None = None) -> dict[str, Any]:
    """The body of every error answer of both APIs: `{"code", "field", "message"}`."""
    return {"code": str(code), "field": field, "message": message}
