"""The query API's views: thin. Resolve the project from the caller, parse parameters, call one
selector, encode. Never reads a project id from anywhere but `project_for`."""

from collections.abc import Callable
from typing import Any
from uuid import UUID

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from query_side import params, selectors
from tenancy.access import project_for


def page(
    request: Request, rows: list[dict[str, Any]], limit: int, cursor_of: Callable[[dict[str, Any]], str]
) -> Response:
    """One page of `limit` rows (the selector read one more to tell whether another follows)."""
    has_next = len(rows) > limit
    rows = rows[:limit]
    next_url = None
    if has_next:
        query = request.query_params.copy()
        query["cursor"] = cursor_of(rows[-1])
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return Response({"results": rows, "next": next_url})


class EventListView(APIView):
    """GET admin/events/: raw events, newest first, cursor-paginated."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        limit = params.parse_limit(query)
        after, before = params.parse_bounds(query)
        cursor = params.decode_cursor(query, params.aware_datetime, UUID)
        filters = selectors.EventFilter(
            event_type=params.parse_text(query, "event_type"),
            distinct_id=params.parse_text(query, "distinct_id"),
            session_id=params.parse_text(query, "session_id"),
            after=after,
            before=before,
        )
        rows = selectors.event_list(project_id=project_id, filters=filters, limit=limit, cursor=cursor)
        return page(request, rows, limit, lambda row: params.encode_cursor(row["timestamp"], row["uuid"]))


class EventCountView(APIView):
    """GET admin/events/event_counts/: events per type over a range (hour-granular)."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        window = params.parse_range(request.query_params)
        rows = selectors.event_count_by_type(project_id=project_id, after=window.after, before=window.before)
        return Response({"results": rows, "after": window.after, "before": window.before})


class EventAggregateView(APIView):
    """GET admin/event-aggregates/: counts and unique users per hour or day and event type."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        interval = params.parse_choice(query, "interval", selectors.INTERVALS, "day")
        breakdown = params.parse_optional_choice(query, "breakdown", selectors.BREAKDOWNS)
        window = params.parse_range(query)
        rows = selectors.event_aggregate_list(
            project_id=project_id, interval=interval, after=window.after, before=window.before,
            event_type=params.parse_text(query, "event_type"), breakdown=breakdown,
        )  # fmt: skip
        return Response({"interval": interval, "after": window.after, "before": window.before, "results": rows})


class ActiveUserView(APIView):
    """GET admin/active-users/: DAU, WAU or MAU."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        interval = params.parse_choice(query, "interval", selectors.ACTIVE_INTERVALS, "day")
        window = params.parse_range(query)
        rows = selectors.active_user_list(
            project_id=project_id, interval=interval, after=window.after, before=window.before
        )
        return Response({"interval": interval, "after": window.after, "before": window.before, "results": rows})


class BadEventListView(APIView):
    """GET admin/bad-events/: rejected events with their error, newest first, cursor-paginated."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        limit = params.parse_limit(query)
        cursor = params.decode_cursor(query, params.aware_datetime, int)
        rows = selectors.bad_event_list(project_id=project_id, limit=limit, cursor=cursor)
        return page(request, rows, limit, lambda row: params.encode_cursor(row["received_at"], row["id"]))
