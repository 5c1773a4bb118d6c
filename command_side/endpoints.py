"""The ingestion endpoints, framework-neutral: read the body, authenticate, call one handler,
encode. Served by Django views (views.py) and by the lean WSGI fast path (fast_path.py) alike.

Not DRF: they run per SDK flush on the hot path, and msgspec decodes and validates a body in
one pass (a DRF serializer per event is ~50x slower).
"""

import functools
import re
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec
from django.conf import settings

from command_side import buffer, ingest
from contracts import limits
from contracts.captured import encode_entry
from contracts.errors import ErrorCode, error_body
from contracts.events import (
    EventError,
    SessionEndIn,
    SessionStartIn,
    api_key_in_body,
    check_event,
    decode_batch,
    decode_capture,
    decode_session_end,
    decode_session_start,
)
from observability import metrics
from tenancy.database import DatabaseUnavailable
from tenancy.models import PERSONAL_KEY_PREFIX
from tenancy.selectors import project_id_for_api_key

_json = msgspec.json.Encoder()
_SESSION_NAMESPACE = uuid.UUID("9f6bd6a4-62b6-4b8f-9d0e-5c1f3a7d2e10")


class Rejection(Exception):
    def __init__(self, status: int, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field


class UnreadableBody(Rejection):
    """A body that cannot be inflated: a 400, and kept as sent once the key says whose it is."""

    def __init__(self, message: str, raw: bytes) -> None:
        super().__init__(400, ErrorCode.INVALID_GZIP, message)
        self.raw = raw


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """What an endpoint needs of an HTTP request, whichever server parsed it."""

    authorization: str
    content_encoding: str
    content_length: int | None
    read_body: Callable[[], bytes]
    method: str = "POST"
    query: str = ""
    """The raw query string (percent-encoded), for the endpoints that read one."""
    content_type: str = ""
    origin: str = ""
    """The Origin header: a browser's request, answered with CORS headers (PostHog's paths)."""
    cors_request_headers: str = ""
    """Access-Control-Request-Headers of a CORS preflight."""
    if_none_match: str = ""
    request_id: str = ""
    """The caller's (or nginx's) X-Request-ID: kept when sane, else one is made (observability/logs.py)."""


@dataclass(frozen=True, slots=True)
class IngestResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def respond(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> IngestResponse:
    return IngestResponse(status, _json.encode(body), headers or {})


def method_not_allowed(methods: tuple[str, ...]) -> IngestResponse:
    message = f"this endpoint takes {' or '.join(methods)}"
    return respond(405, error_body(ErrorCode.METHOD_NOT_ALLOWED, message), {"Allow": ", ".join(methods)})


def bad_request() -> IngestResponse:
    # A request Django refused before any endpoint saw it (a Host not in ALLOWED_HOSTS, …).
    return respond(400, error_body(ErrorCode.BAD_REQUEST, "bad request"))


def permission_denied() -> IngestResponse:
    return respond(403, error_body(ErrorCode.PERMISSION_DENIED, "permission denied"))


def not_found(path: str) -> IngestResponse:
    return respond(404, error_body(ErrorCode.NOT_FOUND, f"nothing at {path}"))


def internal_error() -> IngestResponse:
    # Says nothing of the cause: the traceback goes to the log, never to the client.
    return respond(500, error_body(ErrorCode.INTERNAL_ERROR, "internal error"))


_DIGITS = re.compile(r"[0-9]{1,18}")


def declared_length(header: str) -> int | None:
    """A Content-Length header's value: None when it is absent or not a number (ASCII digits
    only: str.isdigit() takes '²', which int() refuses); a number too long for int() (4,300
    digits) is over any limit."""
    header = header.strip()
    if _DIGITS.fullmatch(header):
        return int(header)
    if header.isascii() and header.isdigit():
        return limits.MAX_BODY_BYTES + 1
    return None


def read_body(request: IngestRequest) -> bytes:
    """The request body, gunzipped if need be; the size limit applies after decompression."""
    if request.content_length is not None and request.content_length > limits.MAX_BODY_BYTES:
        raise Rejection(413, ErrorCode.BODY_TOO_LARGE, f"body over {limits.MAX_BODY_BYTES} bytes")
    body = request.read_body()
    encoding = request.content_encoding.strip().lower()
    if encoding == "gzip":
        body = gunzip(body)
    elif encoding not in ("", "identity"):
        raise Rejection(415, ErrorCode.UNSUPPORTED_ENCODING, f"Content-Encoding {encoding!r} is not supported")
    if len(body) > limits.MAX_BODY_BYTES:
        raise Rejection(413, ErrorCode.BODY_TOO_LARGE, f"body over {limits.MAX_BODY_BYTES} bytes")
    return body


def gunzip(raw: bytes) -> bytes:
    """A gzip body inflated, at most limits.MAX_BODY_BYTES of it (a 5 KB gzip bomb must not
    inflate into gigabytes in memory)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limits.MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        raise UnreadableBody(f"body is not valid gzip: {exc}", raw) from exc
    if len(body) > limits.MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise Rejection(413, ErrorCode.BODY_TOO_LARGE, f"decompressed body over {limits.MAX_BODY_BYTES} bytes")
    if not inflater.eof:
        raise UnreadableBody("gzip body is truncated", raw)
    return body


MAX_QUERY_FIELDS = 20


def query_fields(query: str) -> dict[str, str]:
    """A raw query string's fields (the last of a repeated name wins), percent-decoded as UTF-8;
    a 400 past MAX_QUERY_FIELDS or for bytes that are not UTF-8. A plain split: parse_qs spends a
    tenth of a flag evaluation on checks we do not need."""
    fields: dict[str, str] = {}
    if not query:
        return fields
    parts = query.split("&")
    if len(parts) > MAX_QUERY_FIELDS:
        raise Rejection(400, ErrorCode.INVALID_PARAMETER, f"at most {MAX_QUERY_FIELDS} query parameters")
    for part in parts:
        name, _, value = part.partition("=")
        try:
            fields[_unquoted(name)] = _unquoted(value)
        except UnicodeDecodeError as exc:
            raise Rejection(400, ErrorCode.INVALID_PARAMETER, f"query string is not UTF-8: {exc}") from exc
    return fields


def _unquoted(text: str) -> str:
    return unquote_to_bytes(text.replace("+", " ")).decode()


def header_key(request: IngestRequest) -> str | None:
    header = request.authorization
    if not header:
        return None
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Rejection(401, ErrorCode.INVALID_API_KEY, "Authorization must be 'Bearer <api_key>'")
    return key.strip()


def authenticate(key: str | None) -> int:
    if not key:
        raise Rejection(
            401,
            ErrorCode.MISSING_API_KEY,
            "send the project API key as 'Authorization: Bearer <api_key>'",
        )
    try:
        project_id = project_id_for_api_key(key)
    except DatabaseUnavailable as exc:
        # Only for a key this process has not seen: a known one is served from the cache.
        raise Rejection(503, ErrorCode.DATABASE_UNAVAILABLE, "cannot check the API key now; retry later") from exc
    if project_id is None and key.startswith(PERSONAL_KEY_PREFIX):
        raise Rejection(
            401,
            ErrorCode.WRONG_KEY_KIND,
            f"this is a personal API key ({PERSONAL_KEY_PREFIX}…), which reads through the query API;"
            " ingestion takes the project's public API key",
        )
    if project_id is None:
        raise Rejection(401, ErrorCode.INVALID_API_KEY, "unknown project API key")
    return project_id


def enqueue(outcome: ingest.Outcome) -> None:
    try:
        buffer.append(encode_entry(outcome.entry))
        metrics.EVENTS_ACCEPTED.inc(len(outcome.entry.events))
        if outcome.entry.rejected:
            metrics.EVENTS_REJECTED.inc(len(outcome.entry.rejected))
    except buffer.BufferFull as exc:
        raise Rejection(503, ErrorCode.BUFFER_FULL, "ingestion is behind; retry later") from exc
    except (buffer.BufferUnavailable, buffer.BufferRefusing) as exc:
        raise Rejection(503, ErrorCode.BUFFER_UNAVAILABLE, "ingestion buffer unavailable; retry later") from exc


def keep_refused(project_id: int, error: EventError, raw: bytes, received_at: datetime) -> IngestResponse:
    """A body refused whole: answered 400, and kept whole as one bad event (its payload cut to
    limits.MAX_EVENT_BYTES), so that no refused input is dropped unseen."""
    enqueue(ingest.single_outcome(project_id=project_id, event=error, raw=raw, sent_at=None, received_at=received_at))
    return respond(400, event_error_body(error))


def readable_body(request: IngestRequest, key: str | None, received_at: datetime) -> bytes:
    """read_body, keeping a body that cannot be inflated (its key can only be the header's)."""
    try:
        return read_body(request)
    except UnreadableBody as unreadable:
        project_id = authenticate(key)
        keep_refused(project_id, EventError(unreadable.code, None, str(unreadable)), unreadable.raw, received_at)
        raise


def event_error_body(error: EventError) -> dict[str, Any]:
    body = error_body(error.code, error.message, error.field)
    if error.index is not None:
        body["index"] = error.index
    return body


def handle[**P](view: Callable[P, IngestResponse]) -> Callable[P, IngestResponse]:
    """Turn Rejections into their error response; 503s carry Retry-After."""

    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> IngestResponse:
        try:
            return view(*args, **kwargs)
        except Rejection as rejection:
            headers = {}
            if rejection.status == 503:
                headers["Retry-After"] = str(settings.TIDELOG_RETRY_AFTER_SECONDS)
                metrics.REQUESTS_UNAVAILABLE.labels(code=rejection.code).inc()
            return respond(
                rejection.status,
                error_body(rejection.code, str(rejection), rejection.field),
                headers,
            )

    return wrapped


def now() -> datetime:
    return datetime.now(UTC)


@handle
def capture(request: IngestRequest) -> IngestResponse:
    """One event. 200 when buffered; 400 when invalid (and the event is kept as a bad event)."""
    received_at = now()
    key = header_key(request)
    body = readable_body(request, key, received_at)
    decoded = decode_capture(body)
    project_id = authenticate(
        key or (decoded.api_key if not isinstance(decoded, EventError) else api_key_in_body(body))
    )
    sent_at = None if isinstance(decoded, EventError) else ingest.sent_at_in_utc(decoded.sent_at)
    if isinstance(sent_at, EventError):
        decoded, sent_at = sent_at, None
    outcome = ingest.single_outcome(
        project_id=project_id, event=decoded, raw=body, sent_at=sent_at, received_at=received_at
    )
    enqueue(outcome)
    if outcome.errors:
        return respond(400, event_error_body(outcome.errors[0]))
    return respond(200, {"accepted": 1, "uuid": str(outcome.entry.events[0].uuid)})


@handle
def batch(request: IngestRequest) -> IngestResponse:
    """Many events. Good ones are buffered, bad ones reported by index and kept as bad events."""
    received_at = now()
    key = header_key(request)
    body = readable_body(request, key, received_at)
    decoded = decode_batch(body)
    if isinstance(decoded, EventError):
        # Authenticated first, as capture and the session endpoints do: a request without a key
        # gets the same 401 on every endpoint, whatever its body.
        project_id = authenticate(key or api_key_in_body(body))
        return keep_refused(project_id, decoded, body, received_at)
    project_id = authenticate(key or decoded.api_key)
    if not decoded.events:
        raise Rejection(400, ErrorCode.NO_EVENTS, "the batch has no events", "events")
    if len(decoded.events) > limits.MAX_BATCH_EVENTS:
        raise Rejection(
            413, ErrorCode.TOO_MANY_EVENTS,
            f"{len(decoded.events)} events, over {limits.MAX_BATCH_EVENTS} a batch", "events",
        )  # fmt: skip
    sent_at = ingest.sent_at_in_utc(decoded.sent_at)
    if isinstance(sent_at, EventError):
        # The whole batch's clock is unknown: refused whole, and kept whole as one bad event.
        return keep_refused(project_id, sent_at, body, received_at)
    outcome = ingest.batch_outcome(
        project_id=project_id,
        raw_events=decoded.events,
        sent_at=sent_at,
        received_at=received_at,
    )
    enqueue(outcome)
    rejected = [event_error_body(error) for error in outcome.errors]
    if not outcome.accepted:
        error = error_body(ErrorCode.ALL_EVENTS_INVALID, "no event in the batch is valid", "events")
        return respond(400, {**error, "accepted": 0, "rejected": rejected})
    return respond(200, {"accepted": outcome.accepted, "rejected": rejected})


def session_event_uuid(project_id: int, session_id: str, event_type: str) -> uuid.UUID:
    # Deterministic: a retried session start/end is the same event and is stored once.
    return uuid.uuid5(_SESSION_NAMESPACE, f"{project_id}:{session_id}:{event_type}")


def session_event(
    request: IngestRequest,
    decode: Callable[[bytes], SessionStartIn | SessionEndIn | EventError],
    *,
    session_id: str | None,
    status: int,
    path_error: EventError | None = None,
) -> IngestResponse:
    """A session start or end: one `$session_…` event for the session, from the path or body.
    A session id refused in the path (`path_error`) refuses the body, which is kept."""
    received_at = now()
    key = header_key(request)
    body = readable_body(request, key, received_at)
    decoded = decode(body)
    project_id = authenticate(
        key or (decoded.api_key if not isinstance(decoded, EventError) else api_key_in_body(body))
    )
    if path_error is not None:
        return keep_refused(project_id, path_error, body, received_at)
    if isinstance(decoded, EventError):
        return keep_refused(project_id, decoded, body, received_at)
    if session_id is None:
        session_id = getattr(decoded, "session_id", None) or str(uuid.uuid4())
    event = decoded.as_event(session_id)
    sent_at = ingest.sent_at_in_utc(decoded.sent_at)
    outcome = ingest.single_outcome(
        project_id=project_id,
        event=sent_at if isinstance(sent_at, EventError) else check_event(event, size=len(body)) or event,
        raw=body, sent_at=None if isinstance(sent_at, EventError) else sent_at, received_at=received_at,
        event_uuid=session_event_uuid(project_id, session_id, decoded.event_type),
    )  # fmt: skip
    enqueue(outcome)
    if outcome.errors:
        return respond(400, event_error_body(outcome.errors[0]))
    return respond(status, {"session_id": session_id, "uuid": str(outcome.entry.events[0].uuid)})


@handle
def session_start(request: IngestRequest) -> IngestResponse:
    """Open a session: a `$session_start` event. 201 with the session_id (made here if absent)."""
    return session_event(request, decode_session_start, session_id=None, status=201)


def wsgi_path_text(raw: str) -> str:
    """A path as a WSGI server gives it (PEP 3333: the URL's bytes, each as one latin-1
    character) read as the UTF-8 SDKs send: '%C3%A9' is 'é', not 'Ã©'. Bytes that are not
    UTF-8 become lone surrogates (surrogateescape), which `session_end` refuses."""
    try:
        return raw.encode("latin-1").decode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        return raw  # a server that decoded it already (not PEP 3333): it is text


# Django hands its views a path whose bytes that are not UTF-8 are percent-escaped again
# ('%FF'); a literal '%FF' (sent as '%25FF') cannot be told from one, so both are refused, by
# both servers alike. Escapes of ASCII bytes ('%20') are fine: no broken UTF-8 looks like them.
# granian's RSGI decodes the path itself and puts U+FFFD where a byte was not UTF-8: refused too
# (an SDK's session id never holds the replacement character).
_NOT_UTF8 = re.compile(r"[\udc80-\udcff\ufffd]|%[89a-fA-F][0-9a-fA-F]")


@handle
def session_end(request: IngestRequest, session_id: str) -> IngestResponse:
    """Close a session: a `$session_end` event for the session in the path (as text: Django's
    URL kwarg, or the fast path's wsgi_path_text)."""
    path_error = None
    if _NOT_UTF8.search(session_id):
        path_error = EventError(ErrorCode.INVALID_VALUE, "session_id", "session_id in the path is not valid UTF-8")
    elif not 0 < len(session_id) <= limits.MAX_ID_LENGTH:
        path_error = EventError(ErrorCode.VALUE_TOO_LONG, "session_id", "session_id is too long")
    return session_event(request, decode_session_end, session_id=session_id, status=200, path_error=path_error)
