"""The query API's funnel and picker views (docs/api.md, "Funnels" and "Pickers"): thin, as
views.py's. Resolve the project from the caller, parse parameters, call one selector, encode."""

from dataclasses import asdict
from datetime import timedelta

from django.http import QueryDict
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from query_side import funnels, params, pickers, selectors
from tenancy.access import project_for
from tenancy.api_errors import InvalidParameter

DEFAULT_WINDOW_HOURS = 24 * 14
MAX_WINDOW_HOURS = 24 * 365
MAX_BREAKDOWN_LIMIT = 100


def _steps(query: QueryDict) -> list[str]:
    steps = query.getlist("steps")
    if not funnels.MIN_STEPS <= len(steps) <= funnels.MAX_STEPS:
        raise InvalidParameter(
            "steps", f"steps must be given {funnels.MIN_STEPS} to {funnels.MAX_STEPS} times (event types, in order)"
        )
    for step in steps:
        if not step or len(step) > params.MAX_TEXT or "\x00" in step:
            raise InvalidParameter("steps", f"each step is an event type of 1 to {params.MAX_TEXT} characters, no NUL")
    return steps


class FunnelView(APIView):
    """GET admin/funnels/: an ordered funnel of 2-10 steps per person, optionally broken down."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        steps = _steps(query)
        window_hours = params.parse_whole(
            query, "window_hours", default=DEFAULT_WINDOW_HOURS, low=1, high=MAX_WINDOW_HOURS
        )
        breakdown = params.parse_optional_choice(query, "breakdown", funnels.BREAKDOWNS)
        breakdown_limit = params.parse_whole(
            query, "breakdown_limit", default=10, low=1, high=MAX_BREAKDOWN_LIMIT
        )
        window = params.parse_range(query)
        funnel = funnels.funnel_compute(
            project_id=project_id, steps=steps, window=timedelta(hours=window_hours), after=window.after,
            before=window.before, breakdown=breakdown, breakdown_limit=breakdown_limit,
        )  # fmt: skip
        body = {
            "after": window.after,
            "before": window.before,
            "window_hours": window_hours,
            "events_read_at_most": funnel.events_read_at_most,
            "steps": [asdict(step) for step in funnel.steps],
        }
        if funnel.breakdown is not None:
            body["breakdown"] = [asdict(group) for group in funnel.breakdown]
        return Response(body)


class EventTypeView(APIView):
    """GET admin/event-types/: the most frequent event types of a range (the event picker)."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        limit = params.parse_limit(request.query_params)
        window = params.parse_range(request.query_params)
        rows = selectors.event_count_by_type(project_id=project_id, after=window.after, before=window.before)
        return Response({"results": rows[:limit], "after": window.after, "before": window.before})


def _event_type(query: QueryDict) -> str:
    event_type = params.parse_text(query, "event_type")
    if event_type is None:
        raise InvalidParameter("event_type", "event_type is required")
    return event_type


class EventPropertyView(APIView):
    """GET admin/event-properties/: an event type's property keys, most frequent first."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        rows = pickers.event_property_list(
            project_id=project_id, event_type=_event_type(query), limit=params.parse_limit(query)
        )
        return Response({"results": rows})


class EventPropertyValueView(APIView):
    """GET admin/event-property-values/: a property's values for an event type, most frequent first."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        event_type = _event_type(query)
        key = params.parse_text(query, "key")
        if key is None:
            raise InvalidParameter("key", "key is required")
        found = pickers.event_property_value_list(
            project_id=project_id, event_type=event_type, key=key, limit=params.parse_limit(query)
        )
        return Response(found)
