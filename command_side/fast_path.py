"""The command API's hot path as a lean WSGI layer: the four ingestion routes are answered here
without Django's request, middleware and URL machinery; anything else falls through to Django
(whose 404 and 500 are the same JSON error bodies, core/urls_command.py).

Why: on this machine kind Django's per-request overhead (~350 us) was most of a capture's cost
(docs/performance.md). The endpoints are the same functions the Django views call.
"""

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from command_side import endpoints
from command_side.flags import public
from contracts import limits

log = logging.getLogger(__name__)

PREFIX = "/api/v1/analytics/"


@dataclass(frozen=True, slots=True)
class FastRoute:
    """One route the fast path answers: a path template under PREFIX (`{name}` is one path part,
    passed to the endpoint as a keyword), its endpoint and methods. The OpenAPI schema documents
    exactly these (core/openapi.py)."""

    template: str
    endpoint: Callable[..., endpoints.IngestResponse]
    methods: tuple[str, ...]


ROUTES: tuple[FastRoute, ...] = (
    FastRoute("capture/", endpoints.capture, ("POST",)),
    FastRoute("batch/", endpoints.batch, ("POST",)),
    FastRoute("session/start/", endpoints.session_start, ("POST",)),
    # POST too: for HTTP clients that cannot send a PUT.
    FastRoute("session/{session_id}/end/", endpoints.session_end, ("PUT", "POST")),
    FastRoute("public/feature-flags/", public.active_flags, ("GET",)),
    FastRoute("public/feature-flags/for_user/", public.for_user, ("GET", "POST")),
)


def _pattern(template: str) -> re.Pattern[str]:
    """A template's whole path as a regex: each `{name}` is one path part, named."""
    parts = re.split(r"\{(\w+)\}", PREFIX + template)  # literal, name, literal, ...
    return re.compile("^" + "".join(f"(?P<{p}>[^/]+)" if i % 2 else re.escape(p) for i, p in enumerate(parts)) + "$")


_EXACT = {PREFIX + r.template: (r.endpoint, r.methods) for r in ROUTES if "{" not in r.template}
_TEMPLATED = tuple((_pattern(r.template), r) for r in ROUTES if "{" in r.template)
_STATUS = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _answer(start_response: StartResponse, status: int, body: bytes, headers: dict[str, str]) -> list[bytes]:
    start_response(
        _STATUS.get(status, str(status)),
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *headers.items(),
        ],
    )
    return [body]


@dataclass(frozen=True, slots=True)
class Route:
    endpoint: Callable[..., endpoints.IngestResponse]
    methods: tuple[str, ...]
    kwargs: dict[str, str]


def route(path: str, *, path_text: Callable[[str], str] = str) -> Route | None:
    """The ingestion route at `path`, or None: Django answers everything else. `path_text`
    turns a path part into the text it stands for (a WSGI server gives latin-1 bytes)."""
    found = _EXACT.get(path)
    if found is not None:
        return Route(found[0], found[1], {})
    for pattern, templated in _TEMPLATED:
        match = pattern.match(path)
        if match is not None:
            kwargs = {name: path_text(value) for name, value in match.groupdict().items()}
            return Route(templated.endpoint, templated.methods, kwargs)
    return None


def answer(found: Route, request: endpoints.IngestRequest) -> endpoints.IngestResponse:
    try:
        return found.endpoint(request, **found.kwargs)
    except Exception:
        log.exception("ingestion endpoint %s failed", found.endpoint.__name__)
        return endpoints.internal_error()


def wrap(django_app: WSGIApp) -> WSGIApp:
    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        found = route(environ.get("PATH_INFO", ""), path_text=endpoints.wsgi_path_text)
        if found is None:
            return django_app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in found.methods:
            refusal = endpoints.method_not_allowed(found.methods)
            return _answer(start_response, refusal.status, refusal.body, refusal.headers)
        length = endpoints.declared_length(environ.get("CONTENT_LENGTH") or "")
        stream = environ["wsgi.input"]

        def read_body() -> bytes:
            # Without a Content-Length (chunked), read one byte past the limit, no more.
            return stream.read(length if length is not None else limits.MAX_BODY_BYTES + 1)  # type: ignore[no-any-return]

        request = endpoints.IngestRequest(
            authorization=environ.get("HTTP_AUTHORIZATION", ""),
            content_encoding=environ.get("HTTP_CONTENT_ENCODING", ""),
            content_length=length,
            read_body=read_body,
            method=environ["REQUEST_METHOD"],
            query=environ.get("QUERY_STRING", ""),
        )
        result = answer(found, request)
        return _answer(start_response, result.status, result.body, result.headers)

    return application
