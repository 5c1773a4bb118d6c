"""Errors the query API's URL root answers outside DRF's views (an unknown path, a bug), in the
shape of tenancy.api_errors, which DRF's views answer with."""

import sys

from django.http import HttpRequest, JsonResponse

from contracts.errors import ErrorCode, error_body
from tenancy.api_errors import database_unavailable_body, retry_after
from tenancy.database import is_unavailable


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler400: a request Django refused before any view saw it (a Host not in ALLOWED_HOSTS, …)."""
    return JsonResponse(error_body(ErrorCode.BAD_REQUEST, "bad request"), status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler403, for PermissionDenied raised outside DRF's views."""
    return JsonResponse(error_body(ErrorCode.PERMISSION_DENIED, "permission denied"), status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler404 of the query API's URL root: an unknown path is JSON too, not Django's HTML."""
    return JsonResponse(error_body(ErrorCode.NOT_FOUND, f"nothing at {request.path}"), status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    """handler500 of the query API's URL root. Says nothing of the cause: that goes to the log.
    PostgreSQL being unreachable outside a DRF view (the admin's session middleware) is a 503."""
    # TRICKY: Django calls handler500 inside the `except` block that caught the exception, and
    # passes only the request: the exception is the one being handled.
    exc = sys.exc_info()[1]
    if exc is not None and is_unavailable(exc):
        return JsonResponse(database_unavailable_body(), status=503, headers=retry_after())
    return JsonResponse(error_body(ErrorCode.INTERNAL_ERROR, "internal error"), status=500)
