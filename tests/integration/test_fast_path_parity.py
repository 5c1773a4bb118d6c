"""The command API's servers answer the same bytes with the same status, body and headers: the
RSGI edge `make run` and docker serve (core.rsgi_command), the WSGI fast path (core.wsgi_command)
and the Django views (command_side/views.py); the same request, sent through each as its server
would send it."""

import asyncio
import gzip
import io
import json
from dataclasses import dataclass, field
from urllib.parse import unquote, unquote_to_bytes

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_started
from django.db import close_old_connections
from django.urls import resolve

from contracts import limits
from tests.command_helpers import make_event

pytestmark = pytest.mark.django_db
PREFIX = "/api/v1/analytics/"
KEY = "<the project's key>"  # replaced by the real key when the request is sent


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"HTTP_AUTHORIZATION": f"Bearer {KEY}"})
    query: str = ""
    prefix: str = PREFIX
    """Where `path` is: Tidelog's API, or "/" for PostHog's paths."""


def event_bytes(**fields) -> bytes:
    return json.dumps(make_event(**fields)).encode()


def batch_bytes(*events) -> bytes:
    return json.dumps({"events": list(events)}).encode()


BAD_EVENT = {"event_type": "app_opened"}  # no distinct_id
REQUESTS = {
    "good capture": Request("POST", "capture/", event_bytes()),
    "capture of an invalid event": Request("POST", "capture/", json.dumps(BAD_EVENT).encode()),
    "capture of bad JSON": Request("POST", "capture/", b'{"event_type": "a", nope'),
    "capture without a key": Request("POST", "capture/", event_bytes(), headers={}),
    "capture with an unknown key": Request(
        "POST", "capture/", event_bytes(), headers={"HTTP_AUTHORIZATION": "Bearer tlp_unknown"}
    ),
    "capture with a malformed Authorization": Request(
        "POST", "capture/", event_bytes(), headers={"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}
    ),
    "good batch with a bad event": Request("POST", "batch/", batch_bytes(make_event(), BAD_EVENT, make_event())),
    "batch of bad events only": Request("POST", "batch/", batch_bytes(BAD_EVENT)),
    "batch of bad JSON": Request("POST", "batch/", b"[nope"),
    "empty batch": Request("POST", "batch/", batch_bytes()),
    "gzip batch": Request(
        "POST", "batch/", gzip.compress(batch_bytes(make_event(), make_event())),
        {"HTTP_AUTHORIZATION": f"Bearer {KEY}", "HTTP_CONTENT_ENCODING": "gzip"},
    ),
    "truncated gzip": Request(
        "POST", "batch/", gzip.compress(batch_bytes(make_event()))[:-10],
        {"HTTP_AUTHORIZATION": f"Bearer {KEY}", "HTTP_CONTENT_ENCODING": "gzip"},
    ),
    "gzip inflating past the limit (413)": Request(
        "POST", "batch/", gzip.compress(b" " * (limits.MAX_BODY_BYTES + 1)),
        {"HTTP_AUTHORIZATION": f"Bearer {KEY}", "HTTP_CONTENT_ENCODING": "gzip"},
    ),
    "unsupported Content-Encoding": Request(
        "POST", "batch/", batch_bytes(make_event()), {"HTTP_AUTHORIZATION": f"Bearer {KEY}", "HTTP_CONTENT_ENCODING": "br"}
    ),
    "body too large (413)": Request("POST", "batch/", b" " * (limits.MAX_BODY_BYTES + 1)),
    "too many events (413)": Request("POST", "batch/", batch_bytes(*[BAD_EVENT] * (limits.MAX_BATCH_EVENTS + 1))),
    "wrong method on batch": Request("GET", "batch/"),
    "wrong method on capture": Request("PUT", "capture/", event_bytes()),
    "session start": Request("POST", "session/start/", json.dumps({"distinct_id": "u", "session_id": "s-1"}).encode()),
    "session end by PUT": Request("PUT", "session/s-1/end/", b'{"distinct_id": "u"}'),
    "session end by POST": Request("POST", "session/s-1/end/", b'{"distinct_id": "u"}'),
    "session end, wrong method": Request("GET", "session/s-1/end/"),
    "session end with a session_id too long": Request("PUT", f"session/{'s' * 201}/end/", b'{"distinct_id": "u"}'),
    "session end with a UTF-8 session_id": Request("PUT", "session/%C3%A9t%C3%A9/end/", b'{"distinct_id": "u"}'),
    "session end with a session_id not UTF-8": Request("PUT", "session/%FF/end/", b'{"distinct_id": "u"}'),
    "active flags": Request("GET", "public/feature-flags/"),
    "active flags, key in the query string": Request("GET", "public/feature-flags/", headers={}, query=f"api_key={KEY}"),
    "flags for a user": Request("GET", "public/feature-flags/for_user/", query="distinct_id=u1&person_properties=%7B%22plan%22%3A%22pro%22%7D"),
    "flags for a user by POST": Request("POST", "public/feature-flags/for_user/", b'{"distinct_id": "u1", "person_properties": {"plan": "pro"}}'),
    "flags for a UTF-8 user": Request("GET", "public/feature-flags/for_user/", query="distinct_id=%C3%A9t%C3%A9"),
    "flags with bad person_properties": Request("GET", "public/feature-flags/for_user/", query="distinct_id=u&person_properties=%7Bnope"),
    "flags with a query string not UTF-8": Request("GET", "public/feature-flags/for_user/", query="distinct_id=%FF"),
    "flags without a distinct_id": Request("GET", "public/feature-flags/for_user/"),
    "flags, wrong method": Request("DELETE", "public/feature-flags/for_user/"),
}  # fmt: skip


@pytest.fixture(autouse=True)
def flags_to_evaluate(project, redis_client):
    """Two flags, so the evaluation answers compared hold something: one on for `pro` users."""
    from command_side.flags.service import FlagCreate, flag_create
    from flags.definition import Condition, PropertyFilter, Variant

    pro = Condition(properties=(PropertyFilter("plan", "exact", "pro"),))
    variants = [Variant("control", 50), Variant("test", 50, payload={"n": 1})]
    flag_create(
        project_id=project.project_id, fields=FlagCreate(key="pro-only", enabled=True, conditions=[pro]), actor="t"
    )
    flag_create(
        project_id=project.project_id, fields=FlagCreate(key="split", enabled=True, variants=variants), actor="t"
    )


@pytest.fixture
def fast_path(redis_client):
    from core.wsgi_command import application

    return application


@pytest.fixture
def django_views(settings, redis_client):
    """Django's own WSGI handler with the command API process's settings (its URL root and its
    trimmed middleware): what a Django-served deployment of the command API runs."""
    import core.settings_command

    settings.ROOT_URLCONF = core.settings_command.ROOT_URLCONF
    settings.MIDDLEWARE = core.settings_command.MIDDLEWARE
    return WSGIHandler()


def call(app, request: Request, key: str) -> tuple[int, dict[str, str], bytes]:
    headers = {name: value.replace(KEY, key) for name, value in request.headers.items()}
    # PEP 3333: the path unquoted to bytes, each byte one latin-1 character.
    path = unquote_to_bytes(request.prefix + request.path).decode("latin-1")
    environ = {
        "REQUEST_METHOD": request.method, "PATH_INFO": path, "QUERY_STRING": request.query.replace(KEY, key),
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body), "wsgi.errors": io.StringIO(),
        "CONTENT_LENGTH": str(len(request.body)), "CONTENT_TYPE": "application/json",
        # Answered back by every path (observability/logs.py): a fixed one, so answers compare.
        "HTTP_X_REQUEST_ID": "parity-request", **headers,
    }  # fmt: skip
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(response_headers)

    # As Django's test client does: a request_started signal would close the test's
    # connection (and with it the test's transaction).
    request_started.disconnect(close_old_connections)
    try:
        result = app(environ, start_response)
        content = b"".join(result)
        if hasattr(result, "close"):
            result.close()
    finally:
        request_started.connect(close_old_connections)
    return seen["status"], seen["headers"], content


@pytest.fixture
def rsgi_edge(redis_client):
    from core.rsgi_command import application

    return application


def call_rsgi(edge, request: Request, key: str) -> tuple[int, dict[str, str], bytes]:
    """As granian's RSGI server calls the edge: the path percent-decoded as UTF-8 (a byte that is
    not UTF-8 becomes U+FFFD, as granian does), header names lower-case, the body in one chunk."""
    from tests.integration.test_rsgi_edge import Headers, Protocol, Scope

    headers = Headers({name[5:].lower().replace("_", "-"): value.replace(KEY, key)
                       for name, value in request.headers.items() if name.startswith("HTTP_")})  # fmt: skip
    headers.setdefault("x-request-id", "parity-request")
    headers["content-length"] = str(len(request.body))
    headers["content-type"] = request.headers.get("CONTENT_TYPE", "application/json")
    protocol = Protocol([request.body])
    request_started.disconnect(close_old_connections)
    try:
        scope = Scope(request.method, unquote(request.prefix + request.path, errors="replace"), headers,
                      query_string=request.query.replace(KEY, key))  # fmt: skip
        asyncio.run(edge(scope, protocol))
    finally:
        request_started.connect(close_old_connections)
    assert protocol.answer is not None
    status, answer_headers, body = protocol.answer
    return status, answer_headers, body


def same_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_the_rsgi_edge_answers_exactly_as_the_wsgi_fast_path(rsgi_edge, fast_path, project, name):
    request = REQUESTS[name]
    status, headers, body = call_rsgi(rsgi_edge, request, project.api_key)
    fast_status, fast_headers, fast_body = call(fast_path, request, project.api_key)
    assert (status, body) == (fast_status, fast_body)
    # granian writes content-length for RSGI (the bodies are equal), and the edge adds connection:
    # close where it stops reading; every other header is the same.
    server_own = {"connection", "content-length"}
    assert {k: v for k, v in same_headers(headers).items() if k not in server_own} == {
        k: v for k, v in same_headers(fast_headers).items() if k not in server_own
    }


@pytest.mark.parametrize("name", list(REQUESTS))
def test_the_fast_path_answers_exactly_as_the_django_view(fast_path, django_views, project, name):
    request = REQUESTS[name]
    fast = call(fast_path, request, project.api_key)
    django = call(django_views, request, project.api_key)
    assert fast == django
    # Both answered from the ingestion endpoints, not a fall-through page.
    assert fast[1]["Content-Type"] == "application/json"


def test_a_full_buffer_gets_the_same_503_and_retry_after_from_both(fast_path, django_views, project, settings):
    settings.TIDELOG_BUFFER_MAX_ENTRIES = 0
    request = REQUESTS["good capture"]
    fast = call(fast_path, request, project.api_key)
    assert fast == call(django_views, request, project.api_key)
    assert (fast[0], fast[1]["Retry-After"]) == (503, str(settings.TIDELOG_RETRY_AFTER_SECONDS))


def test_the_requests_cover_every_route_the_fast_path_serves():
    """Every route whose Django view wraps an endpoint (command_side.views.as_view) is one the
    fast path and the RSGI edge answer themselves; the flag administration (DRF) is Django's."""
    from command_side import fast_path
    from command_side.urls import urlpatterns

    sent = {resolve(PREFIX + request.path, urlconf="core.urls_command").url_name for request in REQUESTS.values()}
    served = {pattern.name for pattern in urlpatterns if pattern.callback.__module__ == "command_side.views"}
    assert sent == served
    assert all(fast_path.route(PREFIX + request.path) is not None for request in REQUESTS.values())


def batch_on_three_servers(rsgi_edge, fast_path, django_views, project, events: list[dict]) -> dict:
    """POST `events` as one batch/ to the RSGI edge, the WSGI fast path and the Django views;
    assert all three answer 200 with the same bytes, and return that answer decoded."""
    body = json.dumps({"events": events}).encode()
    request = Request("POST", "batch/", body, headers={"HTTP_AUTHORIZATION": f"Bearer {project.api_key}"})
    answers = [
        call_rsgi(rsgi_edge, request, project.api_key),
        call(fast_path, request, project.api_key),
        call(django_views, request, project.api_key),
    ]
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert answers[0][2] == answers[1][2] == answers[2][2]
    return json.loads(answers[0][2])


def rejected(answer: dict) -> list[tuple[int, str, str | None]]:
    return [(r["index"], r["code"], r["field"]) for r in answer["rejected"]]
