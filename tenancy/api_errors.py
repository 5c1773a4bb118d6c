"""The error shape of every DRF view of both hosts (the query API and the command host's flag
administration): {"code", "field", "message"}; PostgreSQL unreachable is a 503 with Retry-After.
Each URL root's handler400/404/500 (query_side/errors.py, command_side/views.py) answers the
same shape outside DRF."""

import logging
from typing import Any

from django.conf import settings
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


class RangeTooLarge(exceptions.APIException):
    """A bounded raw-event scan (a funnel) would read more events than its limit: narrow `field`."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = ErrorCode.RANGE_TOO_LARGE

    def __init__(self, field: str, message: str) -> None:
        super().__init__(detail=message)
        self.field = field


_CODES = {
    status.HTTP_401_UNAUTHORIZED: ErrorCode.NOT_AUTHENTICATED,
    status.HTTP_403_FORBIDDEN: ErrorCode.PERMISSION_DENIED,
    status.HTTP_404_NOT_FOUND: ErrorCode.NOT_FOUND,
    status.HTTP_405_METHOD_NOT_ALLOWED: ErrorCode.METHOD_NOT_ALLOWED,
}


def database_unavailable_body() -> dict[str, Any]:
    return error_body(ErrorCode.DATABASE_UNAVAILABLE, "the database is unavailable; retry later")


def retry_after() -> dict[str, str]:
    return {"Retry-After": str(settings.TIDELOG_RETRY_AFTER_SECONDS)}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if is_unavailable(exc):
        log.warning("PostgreSQL unavailable: %s", exc)
        return Response(database_unavailable_body(), status=503, headers=retry_after())
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
        body = {"code": str(code), "field": getattr(exc, "field", None), "message": str(detail)}
        body.update(getattr(exc, "extra", {}))
    response.data = body
    return response
