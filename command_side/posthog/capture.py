"""PostHog's capture protocol (docs/posthog-compat.md): what PostHog's own SDKs send to `/batch/`,
`/e/`, `/capture/`, `/i/v0/e/`, `/track/` and `/engage/`, turned into Tidelog events and stored
through the same buffer, the same exactly-once drain and the same bad-events list as `batch/`.

What arrives (PostHog's server accepts all of it, and some SDK still sends each):
- the body as JSON; gzip (`Content-Encoding: gzip`, `?compression=gzip-js`, or only its magic
  bytes: posthog-js sends gzip as text/plain with no hint since mid-2026); base64 (a whole body,
  or the `data=` field of a form, `?compression=base64`); or `?data=` on a GET (old pixels);
- a `{"batch": [...]}` object (with `api_key` or `token`, `sent_at`), a bare array of events
  (old posthog-js), or one event;
- per event: `event`, `distinct_id` (or `$distinct_id`, or `properties.distinct_id`),
  `properties`, `timestamp` or `offset` (ms before now), `uuid`, top-level `$set`/`$set_once`.

What SDKs expect back: exactly 200 on success (posthog-python and posthog-js retry anything
else that is not a 4xx, a 204 included); 4xx is dropped, 5xx and 429 retried. So a batch with
some bad events is a 200 (the bad ones go to the bad-events list, as on `batch/`), and one with
none good a 400.
"""

import base64
import binascii
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote_to_bytes

import msgspec

from command_side import endpoints, ingest
from command_side.endpoints import IngestRequest, IngestResponse, Rejection
from contracts import limits, nesting
from contracts.errors import ErrorCode, error_body
from contracts.events import EventError, EventIn, check_event, decode, error_from_validation

GZIP_MAGIC: Final = b"\x1f\x8b"
_FORM = "application/x-www-form-urlencoded"
_BASE64 = re.compile(rb"[A-Za-z0-9+/=\s_-]+")

# PostHog's property names for the fields Tidelog keeps in columns of their own. The OS is
# `$os_name` from PostHog's mobile SDKs (posthog-android, posthog-ios) and `$os` from posthog-js;
# an event with both keeps `$os`, the later entry.
COLUMN_PROPERTIES: Final = {
    "$session_id": "session_id",
    "$device_id": "device_id",
    "$app_version": "app_version",
    "$os_name": "os_name",
    "$os": "os_name",
    "$os_version": "os_version",
}
_FIELD_NAMES: Final = {
    "event_type": "event",
    **{column: f"properties.{name}" for name, column in COLUMN_PROPERTIES.items()},
}
"""A Tidelog field at fault, as the PostHog event names it."""
_COLUMNS: Final = tuple(COLUMN_PROPERTIES.items())
_NUMBERS: Final = (int, float)
"""The types of a JSON number (`type(x) in`: not bool, which isinstance would let through)."""
_DROPPED: Final = ("token", "$token", "api_key", "distinct_id")
"""Properties that only carry what the request already says (the key, the id): not stored."""


class PostHogEvent(msgspec.Struct, frozen=True):
    event: Any = None
    distinct_id: Any = None
    dollar_distinct_id: Any = msgspec.field(default=None, name="$distinct_id")
    properties: Any = None
    timestamp: Any = None
    offset: Any = None
    uuid: Any = None
    set: Any = msgspec.field(default=None, name="$set")
    set_once: Any = msgspec.field(default=None, name="$set_once")
    token: Any = None
    dollar_token: Any = msgspec.field(default=None, name="$token")
    api_key: Any = None


class PostHogBatch(msgspec.Struct, frozen=True):
    batch: list[msgspec.Raw] | None = None
    api_key: Any = None
    token: Any = None
    sent_at: Any = None


_decode_event = msgspec.json.Decoder(PostHogEvent)
_decode_batch = msgspec.json.Decoder(PostHogBatch)
_decode_list = msgspec.json.Decoder(list[msgspec.Raw])
_to_event = functools.partial(msgspec.convert, type=EventIn)


@dataclass(frozen=True, slots=True)
class Payload:
    """A request's events, still raw, and what the request says beside them."""

    events: list[bytes]
    keys: set[str]
    """Every project key the request names (the body's, the query's, each event's): one, or a 401."""
    sent_at: datetime | None


def form_fields(body: bytes) -> dict[bytes, bytes]:
    """A urlencoded form's fields as bytes (a value is JSON or base64, whatever its charset)."""
    fields: dict[bytes, bytes] = {}
    for part in body.split(b"&") if body else ():
        name, _, value = part.partition(b"=")
        fields[unquote_to_bytes(name.replace(b"+", b" "))] = unquote_to_bytes(value.replace(b"+", b" "))
    return fields


def unwrap(body: bytes, *, content_type: str, query: dict[str, str]) -> bytes:
    """The JSON inside whatever wrapping a PostHog SDK put around it: a form's `data=` field,
    base64, gzip (by its magic bytes, whatever the hints say). Raises Rejection when it cannot
    be unwrapped; lz64 (lz-string, very old posthog-js) is refused as unsupported."""
    compression = query.get("compression", "")
    if content_type.split(";")[0].strip().lower() == _FORM:
        form = form_fields(body)
        body = form.get(b"data", b"")
        compression = form.get(b"compression", compression.encode()).decode("latin-1")
    if compression == "lz64":
        raise Rejection(415, ErrorCode.UNSUPPORTED_ENCODING, "lz64 compression is not supported: use gzip-js or base64")
    if body.startswith(GZIP_MAGIC):
        return endpoints.gunzip(body)
    stripped = body.strip()
    if stripped[:1] not in (b"{", b"[") and stripped and _BASE64.fullmatch(stripped):
        try:
            # A form turns base64's '+' into ' ' unless it was escaped: PostHog's server restores it.
            decoded = base64.b64decode(stripped.replace(b" ", b"+") + b"==", altchars=None, validate=False)
        except (binascii.Error, ValueError):
            return body  # not base64 after all: refused as the JSON it is not (and kept)
        if decoded.startswith(GZIP_MAGIC):
            decoded = endpoints.gunzip(decoded)
        if len(decoded) > limits.MAX_BODY_BYTES:
            raise Rejection(413, ErrorCode.BODY_TOO_LARGE, f"decoded body over {limits.MAX_BODY_BYTES} bytes")
        return decoded
    return body


def _query_keys(query: dict[str, str]) -> set[str]:
    return {key for key in (query.get("api_key"), query.get("token")) if key}


def text_or_none(value: Any) -> str | None:
    """A non-empty string, or None for anything else."""
    return value if isinstance(value, str) and value else None


def payload(body: bytes, *, query: dict[str, str]) -> Payload | EventError:
    """The events of a PostHog body (a batch object, an array, or one event), or why none can
    be read. Each event stays raw, to be decoded (and refused) on its own."""
    if nesting.is_deeper_than(body, limits.MAX_JSON_DEPTH):
        return EventError(ErrorCode.INVALID_JSON, None, f"nested deeper than {limits.MAX_JSON_DEPTH} levels")
    keys = _query_keys(query)
    sent_at: Any = query.get("sent_at") or query.get("_") or None
    first = body.lstrip()[:1]
    if first == b"[":
        events = decode(_decode_list, body, is_depth_checked=True)
        if isinstance(events, EventError):
            return events
        raw = [bytes(event) for event in events]
    else:
        wrapper = decode(_decode_batch, body, is_depth_checked=True)
        if isinstance(wrapper, EventError):
            return wrapper
        keys.update(key for key in (text_or_none(wrapper.api_key), text_or_none(wrapper.token)) if key)
        if wrapper.sent_at is not None:
            sent_at = wrapper.sent_at
        raw = [bytes(event) for event in wrapper.batch] if wrapper.batch is not None else [body]
    parsed_sent_at = _sent_at(sent_at)
    if isinstance(parsed_sent_at, EventError):
        return parsed_sent_at
    return Payload(raw, keys, parsed_sent_at)


def _sent_at(value: Any) -> datetime | EventError | None:
    """`sent_at` as an ISO time (the body's) or ms since the epoch (the `_` query field)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, ValueError, OSError):
            return EventError(ErrorCode.INVALID_TIMESTAMP, "sent_at", "sent_at is out of range")
    try:
        parsed = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        return EventError(ErrorCode.INVALID_TIMESTAMP, "sent_at", "sent_at is not an ISO 8601 time")
    return ingest.sent_at_in_utc(parsed)


def event_keys(raw: bytes) -> set[str]:
    """The project keys one event names (`token`, `$token`, `api_key`, `properties.token`)."""
    try:
        event = _decode_event.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return set()
    properties = event.properties if isinstance(event.properties, dict) else {}
    return {
        key
        for key in (
            text_or_none(event.token),
            text_or_none(event.dollar_token),
            text_or_none(event.api_key),
            text_or_none(properties.get("token")),
        )
        if key
    }


def to_tidelog(
    raw: bytes, *, received_at: datetime, sent_at: datetime | None, engage: bool = False
) -> EventIn | EventError:
    """One PostHog event as Tidelog's: `event` is the type; `distinct_id` from wherever the SDK
    put it; `$session_id`, `$device_id`, `$app_version`, `$os` or `$os_name`, `$os_version` fill
    Tidelog's columns and stay in the properties; top-level `$set`/`$set_once` join the properties' own
    (the people projection reads them there). `/engage/` bodies are `$identify` events.

    An `offset` (ms before the request arrived) becomes a time on the device's clock, `sent_at -
    offset`, which the skew correction (ingest.captured) turns back into arrival - offset."""
    decoded = decode(_decode_event, raw, is_depth_checked=True)
    if isinstance(decoded, EventError):
        return decoded
    # TRICKY: plain type() checks and no copies: this runs per event on the hot path (a first
    # version, written with isinstance and comprehensions, cost 2.5x a native event's decoding).
    properties = decoded.properties
    if properties is None:
        properties = {}
    elif type(properties) is not dict:
        return EventError(ErrorCode.INVALID_TYPE, "properties", "Expected `object`")
    event_type = decoded.event
    if event_type is None:
        if not engage:
            return EventError(ErrorCode.MISSING_FIELD, "event", "Object missing required field `event`")
        event_type = "$identify"
    distinct_id = decoded.distinct_id
    if distinct_id is None:
        distinct_id = decoded.dollar_distinct_id
        if distinct_id is None:
            distinct_id = properties.get("distinct_id")
            if distinct_id is None:
                return EventError(ErrorCode.MISSING_FIELD, "distinct_id", "Object missing required field `distinct_id`")
    if type(distinct_id) in _NUMBERS:
        distinct_id = str(distinct_id)  # PostHog's server takes a number as its text
    for name in _DROPPED:
        properties.pop(name, None)
    if decoded.set is not None or decoded.set_once is not None:
        for op, given in (("$set", decoded.set), ("$set_once", decoded.set_once)):
            if given is None:
                continue
            if type(given) is not dict:
                return EventError(ErrorCode.INVALID_TYPE, op, "Expected `object`")
            inner = properties.get(op)
            properties[op] = {**inner, **given} if type(inner) is dict else given
    fields: dict[str, Any] = {"event_type": event_type, "distinct_id": distinct_id, "properties": properties}
    get = properties.get
    for name, column in _COLUMNS:
        value = get(name)
        if value is None:
            continue
        if type(value) is str:
            if value:
                fields[column] = value
        elif type(value) in _NUMBERS:
            fields[column] = str(value)
    uuid_text = decoded.uuid
    if uuid_text is not None and uuid_text != "":
        if not isinstance(uuid_text, str):
            return EventError(ErrorCode.INVALID_UUID, "uuid", "Expected a UUID string")
        fields["uuid"] = uuid_text
    if decoded.timestamp is not None:
        fields["timestamp"] = decoded.timestamp
    elif decoded.offset is not None:
        if type(decoded.offset) is not int:
            return EventError(ErrorCode.INVALID_TYPE, "offset", "Expected `int` (milliseconds)")
        try:
            fields["timestamp"] = (sent_at or received_at) - timedelta(milliseconds=decoded.offset)
        except OverflowError:
            return EventError(ErrorCode.INVALID_TIMESTAMP, "offset", "offset is out of range")
    try:
        event: EventIn = _to_event(fields)
    except msgspec.ValidationError as exc:
        error = error_from_validation(exc)
        return EventError(error.code, _posthog_field(error.field), error.message)
    refused = check_event(event, size=len(raw))
    if refused is not None:
        return EventError(refused.code, _posthog_field(refused.field), refused.message)
    return event


def _posthog_field(field: str | None) -> str | None:
    if field is None:
        return None
    head, dot, rest = field.partition(".")
    return _FIELD_NAMES.get(head, head) + dot + rest


# --- CORS: posthog-js posts from the app's own origin --------------------------------------------


def cors_headers(request: IngestRequest) -> dict[str, str]:
    """PostHog's answer to a browser: the origin mirrored, credentials allowed."""
    if not request.origin:
        return {}
    headers = {
        "Access-Control-Allow-Origin": request.origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }
    if request.method == "OPTIONS":
        headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        headers["Access-Control-Allow-Headers"] = request.cors_request_headers or "content-type"
        headers["Access-Control-Max-Age"] = "86400"
    return headers


def with_cors[**P](endpoint: Callable[P, IngestResponse]) -> Callable[P, IngestResponse]:
    """An endpoint answering a preflight by itself, and every answer with CORS headers; errors
    in Tidelog's JSON shape (endpoints.handle). Its first argument is the IngestRequest."""
    handled = endpoints.handle(endpoint)

    @functools.wraps(endpoint)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> IngestResponse:
        request = args[0]
        assert isinstance(request, IngestRequest)
        if request.method == "OPTIONS":
            return IngestResponse(200, b"", cors_headers(request), content_type="text/plain")
        answer = handled(*args, **kwargs)
        if request.origin:
            answer.headers.update(cors_headers(request))
        return answer

    return wrapped


# --- The endpoint -------------------------------------------------------------------------------


def _read(request: IngestRequest, query: dict[str, str]) -> bytes:
    """The body (or a GET's `data` field), unwrapped."""
    if request.method == "GET":
        if "data" not in query:
            raise Rejection(400, ErrorCode.NO_EVENTS, "a GET carries its events in the `data` field", "data")
        body = query["data"].encode()
        return unwrap(body, content_type="", query=query)
    raw = endpoints.read_body(request)
    return unwrap(raw, content_type=request.content_type, query=query)


def _project(request: IngestRequest, keys: set[str]) -> int:
    header = endpoints.header_key(request)
    if header:
        keys = keys | {header}
    if len(keys) > 1:
        raise Rejection(401, ErrorCode.INVALID_API_KEY, "the request names more than one project key", "api_key")
    return endpoints.authenticate(next(iter(keys), None))


def _capture(request: IngestRequest, *, engage: bool) -> IngestResponse:
    received_at = endpoints.now()
    query = endpoints.query_fields(request.query)
    try:
        body = _read(request, query)
    except endpoints.UnreadableBody as unreadable:
        project_id = _project(request, _query_keys(query))
        endpoints.keep_refused(
            project_id, EventError(unreadable.code, None, str(unreadable)), unreadable.raw, received_at
        )
        raise
    found = payload(body, query=query)
    if isinstance(found, EventError):
        project_id = _project(request, _query_keys(query))
        return endpoints.keep_refused(project_id, found, body, received_at)
    keys = set(found.keys)
    if not keys:  # no request-level key: the events name it (old posthog-js, /engage/)
        for raw in found.events:
            keys |= event_keys(raw)
    project_id = _project(request, keys)
    if not found.events:
        raise Rejection(400, ErrorCode.NO_EVENTS, "the batch has no events", "batch")
    if len(found.events) > limits.MAX_BATCH_EVENTS:
        raise Rejection(
            413, ErrorCode.TOO_MANY_EVENTS, f"{len(found.events)} events, over {limits.MAX_BATCH_EVENTS} a batch",
            "batch",
        )  # fmt: skip
    result = ingest.batch_outcome(
        project_id=project_id, raw_events=found.events, sent_at=found.sent_at, received_at=received_at,
        decode=functools.partial(to_tidelog, received_at=received_at, sent_at=found.sent_at, engage=engage),
    )  # fmt: skip
    endpoints.enqueue(result)
    rejected = [endpoints.event_error_body(error) for error in result.errors]
    if not result.accepted:
        error = error_body(ErrorCode.ALL_EVENTS_INVALID, "no event in the request is valid", "batch")
        return endpoints.respond(400, {**error, "status": 0, "accepted": 0, "rejected": rejected})
    if query.get("beacon") == "1":
        return IngestResponse(204, b"")  # navigator.sendBeacon reads no answer
    return endpoints.respond(200, {"status": 1, "accepted": result.accepted, "rejected": rejected})


@with_cors
def capture(request: IngestRequest) -> IngestResponse:
    """`/batch/`, `/e/`, `/capture/`, `/i/v0/e/`, `/track/`: one event, an array or a batch."""
    return _capture(request, engage=False)


@with_cors
def engage(request: IngestRequest) -> IngestResponse:
    """`/engage/`: person properties (`$set` at the top level), as `$identify` events."""
    return _capture(request, engage=True)
