"""Every query API error has the same shape: {"code", "field", "message"}, whether DRF raised it
(exception_handler) or Django answered outside a DRF view (not_found, server_error)."""

import logging
import sys
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from contracts.errors import ErrorCode, error_body
from tenancy.database import is_unavailable

log = logging.getLogger(__name__)


class InvalidParameter(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = ErrorCode.INVALID_PARAMETER

    def __init__(self, field: str, message: str) -> None:
        super().__init__(detail=message)
        self.field = field


_CODES = {
    status.HTTP_401_UNAUTHORIZED: ErrorCode.NOT_AUTHENTICATED,
    status.HTTP_403_FORBIDDEN: ErrorCode.PERMISSION_DENIED,
    status.HTTP_404_NOT_FOUND: ErrorCode.NOT_FOUND,
    status.HTTP_405_METHOD_NOT_ALLOWED: ErrorCode.METHOD_NOT_ALLOWED,
}


def _database_unavailable_body() -> dict[str, Any]:
    return error_body(ErrorCode.DATABASE_UNAVAILABLE, "the database is unavailable; retry later")


def _retry_after() -> dict[str, str]:
    return {"Retry-After": str(settings.TIDELOG_RETRY_AFTER_SECONDS)}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if is_unavailable(exc):
        log.warning("PostgreSQL unavailable: %s", exc)
        return Response(_database_unavailable_body(), status=503, headers=_retry_after())
    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API exception: a bug. Django's handler500 (server_error) answers it.
        return None
    if isinstance(exc, InvalidParameter):
        body = error_body(ErrorCode.INVALID_PARAMETER, str(exc.detail), exc.field)
    else:
        # Our own exception classes carry their code (auth.WrongKeyKind). Then the statuses above
        # have codes of ours; any other (406, 415, 429) keeps DRF's own code
        # ('unsupported_media_type', …) rather than a misleading 'invalid_parameter'.
        own = getattr(exc, "default_code", None)
        fallback = own or ErrorCode.INVALID_PARAMETER
        code = own if isinstance(own, ErrorCode) else _CODES.get(response.status_code, fallback)
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        body = {"code": str(code), "field": None, "message": str(detail)}
    response.data = body
    return response


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
        return JsonResponse(_database_unavailable_body(), status=503, headers=_retry_after())
    return JsonResponse(error_body(ErrorCode.INTERNAL_ERROR, "internal error"), status=500)
