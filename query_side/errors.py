"""Every query API error has the same shape: {"code", "field", "message"}."""

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from contracts.errors import ErrorCode


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
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, InvalidParameter):
        body = {"code": str(ErrorCode.INVALID_PARAMETER), "field": exc.field, "message": str(exc.detail)}
    else:
        # The statuses above have codes of ours; any other (405, 406, 415, 429) keeps DRF's own
        # code ('method_not_allowed', …) rather than a misleading 'invalid_parameter'.
        code = _CODES.get(response.status_code) or getattr(exc, "default_code", ErrorCode.INVALID_PARAMETER)
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        body = {"code": str(code), "field": None, "message": str(detail)}
    response.data = body
    return response
