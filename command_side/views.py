"""Django views over the ingestion endpoints: the adapter the Django test client and any
Django-served deployment use. The command API process serves the same endpoints through
fast_path.py, which skips Django's request machinery on the hot path.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from command_side import endpoints

Endpoint = Callable[..., endpoints.IngestResponse]


def as_view(endpoint: Endpoint, methods: tuple[str, ...]) -> Callable[..., HttpResponse]:
    @csrf_exempt
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if request.method not in methods:
            return as_response(endpoints.method_not_allowed(methods))
        ingest_request = endpoints.IngestRequest(
            authorization=request.META.get("HTTP_AUTHORIZATION", ""),
            content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""),
            content_length=endpoints.declared_length(request.META.get("CONTENT_LENGTH") or ""),
            read_body=lambda: request.body,
            method=request.method or "GET",
            query=request.META.get("QUERY_STRING", ""),
            content_type=request.META.get("CONTENT_TYPE", ""),
            origin=request.META.get("HTTP_ORIGIN", ""),
            cors_request_headers=request.META.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", ""),
            if_none_match=request.META.get("HTTP_IF_NONE_MATCH", ""),
        )
        return as_response(endpoint(ingest_request, **kwargs))

    view.__name__ = endpoint.__name__
    return view


def as_response(result: endpoints.IngestResponse) -> HttpResponse:
    response = HttpResponse(result.body, status=result.status, content_type=result.content_type)
    for name, value in result.headers.items():
        response[name] = value
    return response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400 of the command API's URL root."""
    return as_response(endpoints.bad_request())


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403 of the command API's URL root."""
    return as_response(endpoints.permission_denied())


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404 of the command API's URL root: the JSON error shape, not Django's HTML page."""
    return as_response(endpoints.not_found(request.path))


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500 of the command API's URL root (the fast path answers its own 500s alike)."""
    return as_response(endpoints.internal_error())


capture = as_view(endpoints.capture, ("POST",))
batch = as_view(endpoints.batch, ("POST",))
session_start = as_view(endpoints.session_start, ("POST",))
session_end = as_view(endpoints.session_end, ("PUT", "POST"))
