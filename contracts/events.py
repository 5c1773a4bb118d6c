"""The analytics event: as an SDK sends it (wire v1: the `/api/v1/` of the URLs) and as the
buffer carries it (`EventCaptured`).

Decoding is one msgspec pass per event: types, lengths and required fields are checked by the
decoder itself; only the properties' shape is walked afterwards.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Final
from uuid import UUID

import msgspec

from contracts import limits, nesting
from contracts.errors import ErrorCode

EventType = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_EVENT_TYPE_LENGTH)]
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_ID_LENGTH)]
ShortText = Annotated[str, msgspec.Meta(max_length=limits.MAX_SHORT_TEXT_LENGTH)]


class EventIn(msgspec.Struct, frozen=True, kw_only=True):
    """One event as a mobile SDK sends it. Unknown fields are ignored (newer SDKs)."""

    event_type: EventType
    distinct_id: Identifier
    timestamp: datetime | None = None
    uuid: UUID | None = None
    session_id: Identifier | None = None
    device_id: Identifier | None = None
    app_version: ShortText | None = None
    os_name: ShortText | None = None
    os_version: ShortText | None = None
    properties: dict[str, Any] = msgspec.field(default_factory=dict)


class CaptureIn(EventIn, frozen=True, kw_only=True):
    """The body of `capture/`: one event, plus the request-level fields."""

    sent_at: datetime | None = None
    api_key: str | None = None


class BatchIn(msgspec.Struct, frozen=True, kw_only=True):
    """The body of `batch/`. Events stay raw here so each is decoded, and fails, on its own."""

    events: list[msgspec.Raw]
    sent_at: datetime | None = None
    api_key: str | None = None


class KeyProbe(msgspec.Struct, frozen=True):
    """Only the key, for a body whose rest could not be decoded."""

    api_key: str | None = None


@dataclass(frozen=True, slots=True)
class EventError:
    """Why one event was rejected: a code, the field at fault (dotted path) and a message."""

    code: ErrorCode
    field: str | None
    message: str
    index: int | None = None


_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`")


def _dotted(path: str) -> str | None:
    path = path.lstrip(".")
    return path or None


def error_from_validation(exc: msgspec.DecodeError, *, prefix: str | None = None) -> EventError:
    """Map a msgspec error message onto our error codes and a dotted field path."""
    text = str(exc)
    match = _PATH.search(text)
    field = _dotted(match.group("path")) if match else None
    message = _PATH.sub("", text)
    if missing := _MISSING.match(message):
        name = missing.group("field")
        field = f"{field}.{name}" if field else name
        code = ErrorCode.MISSING_FIELD
    elif "length <=" in message:
        code = ErrorCode.VALUE_TOO_LONG
    elif "length >=" in message:
        code = ErrorCode.EMPTY_VALUE
    elif "datetime" in message:
        code = ErrorCode.INVALID_TIMESTAMP
    elif "UUID" in message:
        code = ErrorCode.INVALID_UUID
    elif message.startswith("Expected"):
        code = ErrorCode.INVALID_TYPE
    elif not isinstance(exc, msgspec.ValidationError):
        code = ErrorCode.INVALID_JSON
    else:
        code = ErrorCode.INVALID_VALUE
    if prefix and field:
        field = f"{prefix}.{field}"
    elif prefix:
        field = prefix
    return EventError(code=code, field=field, message=message)


def _shape(value: Any) -> tuple[int, bool]:
    """Nesting depth of a JSON value (a scalar is 0, `{}` or `[]` is 1) and whether any key or
    string in it holds a NUL character. Iterative: no recursion limit to hit."""
    deepest = 0
    has_nul = False
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, str):
            has_nul = has_nul or "\x00" in node
            continue
        if isinstance(node, dict):
            has_nul = has_nul or any("\x00" in key for key in node)
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        level += 1
        if level > deepest:
            deepest = level
            if deepest > limits.MAX_PROPERTY_DEPTH:
                return deepest, has_nul
        stack.extend((child, level) for child in children)
    return deepest, has_nul


_TEXT_FIELDS = ("event_type", "distinct_id", "session_id", "device_id", "app_version", "os_name", "os_version")


def check_event(event: EventIn, *, size: int) -> EventError | None:
    """The rules a decoder cannot state: whole-event size and the shape of `properties`."""
    if size > limits.MAX_EVENT_BYTES:
        return EventError(ErrorCode.EVENT_TOO_LARGE, None, f"event is {size} bytes, over {limits.MAX_EVENT_BYTES}")
    if len(event.properties) > limits.MAX_PROPERTY_KEYS:
        return EventError(
            ErrorCode.TOO_MANY_PROPERTIES,
            "properties",
            f"{len(event.properties)} keys, over {limits.MAX_PROPERTY_KEYS}",
        )
    # PostgreSQL's text and jsonb cannot hold NUL (U+0000): refused here, with its field, rather
    # than failing the store's whole batch later.
    for name in _TEXT_FIELDS:
        text = getattr(event, name)
        if text is not None and "\x00" in text:
            return EventError(ErrorCode.INVALID_VALUE, name, "contains a NUL character (\\u0000)")
    if event.properties:
        depth, has_nul = _shape(event.properties)
        if depth > limits.MAX_PROPERTY_DEPTH:
            return EventError(
                ErrorCode.PROPERTIES_TOO_DEEP,
                "properties",
                f"nested deeper than {limits.MAX_PROPERTY_DEPTH} levels",
            )
        if has_nul:
            return EventError(ErrorCode.INVALID_VALUE, "properties", "contains a NUL character (\\u0000)")
    if event.properties and (refused := check_person_property_keys(event.properties)) is not None:
        return refused
    if event.session_id is not None and event.session_id.startswith(INFERRED_SESSION_PREFIX):
        return EventError(
            ErrorCode.INVALID_VALUE, "session_id", f"session ids starting with {INFERRED_SESSION_PREFIX!r} are reserved"
        )
    # Two string compares for every other event: the identity checks cost nothing elsewhere.
    if event.event_type == IDENTIFY or event.event_type == CREATE_ALIAS:
        return check_identity(event)
    return None


PERSON_PROPERTY_OPS: Final = ("$set", "$set_once", "$unset")
"""The event properties that set person properties (PostHog's convention): objects for the first
two, a list of keys for `$unset`."""


def check_person_property_keys(properties: dict[str, Any]) -> EventError | None:
    """A person property's key is part of a read model's key: one over
    limits.MAX_PERSON_PROPERTY_KEY_LENGTH is refused, naming the field that holds it."""
    for op in PERSON_PROPERTY_OPS:
        value = properties.get(op)
        keys = value if isinstance(value, dict) else value if isinstance(value, list) else ()
        for key in keys:
            if isinstance(key, str) and len(key) > limits.MAX_PERSON_PROPERTY_KEY_LENGTH:
                return EventError(
                    ErrorCode.VALUE_TOO_LONG,
                    f"properties.{op}",
                    f"a person property key of {len(key)} characters, over {limits.MAX_PERSON_PROPERTY_KEY_LENGTH}",
                )
    return None


INFERRED_SESSION_PREFIX: Final = "inferred-"
"""The ids of the sessions Tidelog infers for events without a session_id start with it; an SDK's
own session_id may not (it could collide with one)."""
IDENTIFY: Final = "$identify"
"""Its distinct_id is the user's id; `$anon_distinct_id` (optional) the id it used before."""
CREATE_ALIAS: Final = "$create_alias"
"""Its distinct_id and `alias` are two ids of one person."""
ANON_DISTINCT_ID: Final = "$anon_distinct_id"
ALIAS: Final = "alias"

ILLEGAL_DISTINCT_IDS: Final = frozenset(
    {
        "anonymous", "guest", "distinct_id", "id", "not_authenticated", "email", "undefined", "true", "false",
        "null", "0", "[object object]", "nan", "none",
    }
)  # fmt: skip
"""PostHog's list (lower case): ids a buggy SDK or app sends for every user alike. Merging on
one would make a single person of every user who ever sent it."""


def is_illegal_distinct_id(value: str) -> bool:
    """Empty, whitespace only, or one of ILLEGAL_DISTINCT_IDS whatever its case and surrounding
    whitespace."""
    stripped = value.strip()
    return not stripped or stripped.lower() in ILLEGAL_DISTINCT_IDS


def check_identity(event: EventIn) -> EventError | None:
    """An `$identify` or `$create_alias` may merge two people: both ids must be ones a person
    can have. A plain event with such a distinct_id is accepted (it never merges anything)."""
    if event.event_type == IDENTIFY:
        other_field, is_required = ANON_DISTINCT_ID, False
    else:
        other_field, is_required = ALIAS, True
    if is_illegal_distinct_id(event.distinct_id):
        return EventError(
            ErrorCode.ILLEGAL_DISTINCT_ID, "distinct_id", f"{event.distinct_id!r} cannot identify a person"
        )
    field = f"properties.{other_field}"
    other = event.properties.get(other_field)
    if other is None:
        if is_required:
            return EventError(ErrorCode.MISSING_FIELD, field, f"{event.event_type} needs properties.{other_field}")
        return None
    if not isinstance(other, str):
        return EventError(ErrorCode.INVALID_TYPE, field, "Expected `str`")
    if len(other) > limits.MAX_ID_LENGTH:
        return EventError(ErrorCode.VALUE_TOO_LONG, field, f"Expected `str` of length <= {limits.MAX_ID_LENGTH}")
    if is_illegal_distinct_id(other):
        return EventError(ErrorCode.ILLEGAL_DISTINCT_ID, field, f"{other!r} cannot identify a person")
    return None


_event_decoder = msgspec.json.Decoder(EventIn)
_capture_decoder = msgspec.json.Decoder(CaptureIn)
_batch_decoder = msgspec.json.Decoder(BatchIn)
_key_decoder = msgspec.json.Decoder(KeyProbe)


def _nested_too_deep() -> EventError:
    """A body nested deeper than MAX_JSON_DEPTH outside any event's properties: not JSON we take."""
    return EventError(ErrorCode.INVALID_JSON, None, f"nested deeper than {limits.MAX_JSON_DEPTH} levels")


def _too_deep(body: bytes) -> EventError | None:
    """Why a body nested deeper than MAX_JSON_DEPTH is refused (None: it is not, after all):
    its properties are too deep, or it is (elsewhere: no field of ours nests that deep)."""
    try:
        deep = nesting.deep_values(body, limits.MAX_JSON_DEPTH, first_only=True)
    except nesting.TooComplex:
        return _nested_too_deep()
    if not deep:
        return None
    if deep[0].path[:1] == ("properties",):
        return EventError(
            ErrorCode.PROPERTIES_TOO_DEEP, "properties", f"nested deeper than {limits.MAX_PROPERTY_DEPTH} levels"
        )
    return _nested_too_deep()


def decode[T](decoder: msgspec.json.Decoder[T], body: bytes, *, is_depth_checked: bool = False) -> T | EventError:
    """The one way a body (or one event of a batch) is decoded: a value or the error to answer.
    Its depth is measured first, without recursion (unless the caller did, `is_depth_checked`):
    msgspec recurses, and a 20 KB body 10,000 levels deep would end it in a RecursionError."""
    if (
        not is_depth_checked
        and nesting.is_deeper_than(body, limits.MAX_JSON_DEPTH)
        and (error := _too_deep(body)) is not None
    ):
        return error
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:
        return error_from_validation(exc)
    except UnicodeDecodeError:
        # TRICKY: msgspec checks UTF-8 only in the strings it decodes, and reports a bad byte
        # there with this, not with a DecodeError.
        return EventError(ErrorCode.INVALID_JSON, None, "a string is not valid UTF-8")


def decode_event(raw: bytes, *, is_depth_checked: bool = False) -> EventIn | EventError:
    """One event of a batch. A batch's events come from a body decode_batch measured (and cut):
    `is_depth_checked` saves measuring each again (~2 us an event, a third of its decoding)."""
    event = decode(_event_decoder, raw, is_depth_checked=is_depth_checked)
    if isinstance(event, EventError):
        return event
    return check_event(event, size=len(raw)) or event


def decode_capture(body: bytes) -> CaptureIn | EventError:
    event = decode(_capture_decoder, body)
    if isinstance(event, EventError):
        return event
    return check_event(event, size=len(body)) or event


def _is_in_an_events_properties(value: nesting.DeepValue) -> bool:
    path = value.path
    return len(path) > 2 and path[0] == "events" and isinstance(path[1], int) and path[2] == "properties"


def _cut_deep_properties(body: bytes) -> bytes | EventError:
    """A batch whose only deep values are in its events' properties, with each cut at
    MAX_JSON_DEPTH (replaced by `null` there): still far deeper than MAX_PROPERTY_DEPTH, so
    each such event is rejected alone (properties_too_deep) and the others go on."""
    if not nesting.is_deeper_than(body, limits.MAX_JSON_DEPTH):
        return body
    try:
        deep = nesting.deep_values(body, limits.MAX_JSON_DEPTH)
    except nesting.TooComplex:
        return _nested_too_deep()
    if not all(_is_in_an_events_properties(value) for value in deep):
        return _nested_too_deep()
    return nesting.cut(body, deep) if deep else body


def decode_batch(body: bytes) -> BatchIn | EventError:
    body_or_error = _cut_deep_properties(body)
    if isinstance(body_or_error, EventError):
        return body_or_error
    return decode(_batch_decoder, body_or_error, is_depth_checked=True)


def api_key_in_body(body: bytes) -> str | None:
    """The key of a body that could not be decoded, if it has one that can be read."""
    if nesting.is_deeper_than(body, limits.MAX_JSON_DEPTH):
        try:
            body = nesting.cut(body, nesting.deep_values(body, limits.MAX_JSON_DEPTH))
        except nesting.TooComplex:
            return None
    probe = decode(_key_decoder, body)
    return None if isinstance(probe, EventError) else probe.api_key


def as_utc(value: datetime) -> datetime:
    """SDKs that send a naive ISO time mean UTC (PostHog's Android SDK did before 3.0)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


SESSION_START: Final = "$session_start"
SESSION_END: Final = "$session_end"


class SessionEndIn(msgspec.Struct, frozen=True, kw_only=True):
    """The body of `session/{session_id}/end/`; the session comes from the path."""

    event_type: ClassVar[str] = SESSION_END

    distinct_id: Identifier
    timestamp: datetime | None = None
    device_id: Identifier | None = None
    app_version: ShortText | None = None
    os_name: ShortText | None = None
    os_version: ShortText | None = None
    properties: dict[str, Any] = msgspec.field(default_factory=dict)
    sent_at: datetime | None = None
    api_key: str | None = None

    def as_event(self, session_id: str) -> EventIn:
        return EventIn(
            event_type=self.event_type,
            distinct_id=self.distinct_id,
            timestamp=self.timestamp,
            session_id=session_id,
            device_id=self.device_id,
            app_version=self.app_version,
            os_name=self.os_name,
            os_version=self.os_version,
            properties=self.properties,
        )


class SessionStartIn(SessionEndIn, frozen=True, kw_only=True):
    """The body of `session/start/`. Without a session_id the server makes one and returns it."""

    event_type: ClassVar[str] = SESSION_START

    session_id: Identifier | None = None


_session_start_decoder = msgspec.json.Decoder(SessionStartIn)
_session_end_decoder = msgspec.json.Decoder(SessionEndIn)


def decode_session_start(body: bytes) -> SessionStartIn | EventError:
    return decode(_session_start_decoder, body)


def decode_session_end(body: bytes) -> SessionEndIn | EventError:
    return decode(_session_end_decoder, body)
