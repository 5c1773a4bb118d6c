"""The command API's hot path as a lean WSGI layer: the four ingestion routes are answered here
without Django's request, middleware and URL machinery; anything else falls through to Django
(whose 404 and 500 are the same JSON error bodies, core/urls_command.py).

Why: on this machine kind Django's per-request overhead (~350 us) was most of a capture's cost
(docs/performance.md). The endpoints are the same functions the Django views call.
"""

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any

from command_side import endpoints
from command_side.flags import public
from command_side.posthog import capture as posthog_capture
from command_side.posthog import flags as posthog_flags
from contracts import limits
from observability import logs

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
    prefix: str = PREFIX

    @property
    def path(self) -> str:
        return self.prefix + self.template


ROUTES: tuple[FastRoute, ...] = (
    FastRoute("capture/", endpoints.capture, ("POST",)),
    FastRoute("batch/", endpoints.batch, ("POST",)),
    FastRoute("session/start/", endpoints.session_start, ("POST",)),
    # POST too: for HTTP clients that cannot send a PUT.
    FastRoute("session/{session_id}/end/", endpoints.session_end, ("PUT", "POST")),
    FastRoute("public/feature-flags/", public.active_flags, ("GET",)),
    FastRoute("public/feature-flags/for_user/", public.for_user, ("GET", "POST")),
)

_POSTHOG_METHODS = ("GET", "POST", "OPTIONS")


def _both(template: str, endpoint: Callable[..., endpoints.IngestResponse]) -> tuple[FastRoute, ...]:
    """A PostHog path with and without its trailing slash (SDKs send either)."""
    return tuple(FastRoute(t, endpoint, _POSTHOG_METHODS, prefix="/") for t in (template + "/", template))


POSTHOG_ROUTES: tuple[FastRoute, ...] = (
    *(route for path in ("batch", "e", "capture", "i/v0/e", "track") for route in _both(path, posthog_capture.capture)),
    *_both("engage", posthog_capture.engage),
    *_both("flags", posthog_flags.flags),
    *_both("decide", posthog_flags.decide),
    *_both("flags/definitions", posthog_flags.definitions),
    *_both("api/feature_flag/local_evaluation", posthog_flags.definitions),
    *_both("array/{token}/config", posthog_flags.remote_config),
    FastRoute("array/{token}/config.js", posthog_flags.remote_config_js, _POSTHOG_METHODS, prefix="/"),
)
"""PostHog's own paths, for PostHog's SDKs (docs/posthog-compat.md). Outside Tidelog's API and
its OpenAPI schema: the protocol is PostHog's."""


def _pattern(path: str) -> re.Pattern[str]:
    """A templated path as a regex: each `{name}` is one path part, named."""
    parts = re.split(r"\{(\w+)\}", path)  # literal, name, literal, ...
    return re.compile("^" + "".join(f"(?P<{p}>[^/]+)" if i % 2 else re.escape(p) for i, p in enumerate(parts)) + "$")


_EXACT = {r.path: (r.endpoint, r.methods) for r in (*ROUTES, *POSTHOG_ROUTES) if "{" not in r.template}
_TEMPLATED = tuple((_pattern(r.path), r) for r in (*ROUTES, *POSTHOG_ROUTES) if "{" in r.template)
_STATUS = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _answer(start_response: StartResponse, result: endpoints.IngestResponse) -> list[bytes]:
    start_response(
        _STATUS.get(result.status, str(result.status)),
        [
            ("Content-Type", result.content_type),
            ("Content-Length", str(len(result.body))),
            *result.headers.items(),
        ],
    )
    return [result.body]


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
    """The endpoint's answer, with the request's id on it and on what it logs (as Django's
    RequestIdMiddleware does for the routes Django serves)."""
    request_id = logs.request_id_from(request.request_id)
    token = logs.REQUEST_ID.set(request_id)
    try:
        result = found.endpoint(request, **found.kwargs)
    except Exception:
        log.exception("ingestion endpoint %s failed", found.endpoint.__name__)
        result = endpoints.internal_error()
    finally:
        logs.REQUEST_ID.reset(token)
    return identified(result, request_id)


def identified(result: endpoints.IngestResponse, request_id: str) -> endpoints.IngestResponse:
    """The answer with its X-Request-ID (one logs.request_id_from has given)."""
    return replace(result, headers={**result.headers, logs.HEADER: request_id})


def wrap(django_app: WSGIApp) -> WSGIApp:
    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        found = route(environ.get("PATH_INFO", ""), path_text=endpoints.wsgi_path_text)
        if found is None:
            return django_app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in found.methods:
            refusal = endpoints.method_not_allowed(found.methods)
            request_id = logs.request_id_from(environ.get("HTTP_X_REQUEST_ID"))
            return _answer(start_response, identified(refusal, request_id))
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
            content_type=environ.get("CONTENT_TYPE", ""),
            origin=environ.get("HTTP_ORIGIN", ""),
            cors_request_headers=environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", ""),
            if_none_match=environ.get("HTTP_IF_NONE_MATCH", ""),
            request_id=environ.get("HTTP_X_REQUEST_ID", ""),
        )
        return _answer(start_response, answer(found, request))

    return application
