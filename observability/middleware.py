"""Django middleware of both hosts: the request id (logs.py), and the query API's latency by
endpoint (metrics.QUERY_SECONDS)."""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from observability import logs, metrics

Handler = Callable[[HttpRequest], HttpResponse]


class RequestIdMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = logs.request_id_from(request.headers.get(logs.HEADER))
        token = logs.REQUEST_ID.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            logs.REQUEST_ID.reset(token)
        response[logs.HEADER] = request_id
        return response


class QueryLatencyMiddleware:
    """Each answer's time, labelled by its URL pattern (`api/v1/analytics/admin/trends/`), not
    its path: a label per session id or person would be a series each."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        endpoint = match.route if match is not None else "unmatched"
        status = f"{response.status_code // 100}xx"
        metrics.QUERY_SECONDS.labels(endpoint=endpoint, status=status).observe(time.perf_counter() - started)
        return response
