"""Machine-readable error codes of both APIs. The strings are public: never rename one."""

from enum import StrEnum


class ErrorCode(StrEnum):
    # request level
    INVALID_JSON = "invalid_json"
    INVALID_BODY = "invalid_body"
    INVALID_GZIP = "invalid_gzip"
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    BODY_TOO_LARGE = "body_too_large"
    TOO_MANY_EVENTS = "too_many_events"
    NO_EVENTS = "no_events"
    ALL_EVENTS_INVALID = "all_events_invalid"
    MISSING_API_KEY = "missing_api_key"
    INVALID_API_KEY = "invalid_api_key"
    BUFFER_FULL = "buffer_full"
    BUFFER_UNAVAILABLE = "buffer_unavailable"
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
    # query side
    INVALID_PARAMETER = "invalid_parameter"
    NOT_AUTHENTICATED = "not_authenticated"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
