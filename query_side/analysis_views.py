"""The query API's funnel and picker views (docs/api.md, "Funnels" and "Pickers"): thin, as
views.py's. Resolve the project from the caller, parse parameters, call one selector, encode."""

from dataclasses import asdict
from datetime import timedelta

from django.http import QueryDict
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from query_side import funnels, params, pickers, selectors
from query_side.openapi import RANGE, choice, operation, query, ranged, text_filter
from tenancy.access import project_for
from tenancy.api_errors import InvalidParameter
from tenancy.openapi import BOOLEAN, INTEGER, NUMBER, TEXT, array, nullable, obj

DEFAULT_WINDOW_HOURS = 24 * 14
MAX_WINDOW_HOURS = 24 * 365
MAX_BREAKDOWN_LIMIT = 100
FUNNEL_STEP = obj(
    event_type=TEXT,
    count=INTEGER,
    conversion=nullable(NUMBER),
    conversion_from_previous=nullable(NUMBER),
    drop_off=INTEGER,
    median_seconds_to_convert=nullable(NUMBER),
)
JSON_SCALAR = {"type": ["string", "number", "boolean"]}


class FunnelView(APIView):
    """GET admin/funnels/: an ordered funnel of 2-10 steps per person, optionally broken down."""

    @operation(
        "An ordered funnel of 2-10 steps per person, with conversion, drop-off and median time",
        ranged(window_hours=INTEGER, events_read_at_most=INTEGER, steps=array(FUNNEL_STEP),
               breakdown=nullable(array(obj(breakdown_value=nullable(TEXT), steps=array(FUNNEL_STEP))))),
        query("steps", {"type": "string", "maxLength": params.MAX_TEXT},
              f"An event type; give {funnels.MIN_STEPS} to {funnels.MAX_STEPS}, in order.", many=True,
              required=("app_opened", "purchase")),
        query("window_hours", {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW_HOURS,
              "default": DEFAULT_WINDOW_HOURS}, "The conversion window, from the step-1 event."),
        choice("breakdown", funnels.BREAKDOWNS, "By the value at the person's step-1 event."),
        query("breakdown_limit", {"type": "integer", "minimum": 1, "maximum": MAX_BREAKDOWN_LIMIT, "default": 10},
              "Breakdown values shown; the rest are summed as $other."),
        *RANGE,
        bounded=True,
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        steps = params.parse_event_types(query, "steps", low=funnels.MIN_STEPS, high=funnels.MAX_STEPS)
        window_hours = params.parse_whole(
            query, "window_hours", default=DEFAULT_WINDOW_HOURS, low=1, high=MAX_WINDOW_HOURS
        )
        breakdown = params.parse_optional_choice(query, "breakdown", funnels.BREAKDOWNS)
        breakdown_limit = params.parse_whole(query, "breakdown_limit", default=10, low=1, high=MAX_BREAKDOWN_LIMIT)
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
            # null unless a breakdown was asked for
            "breakdown": None if funnel.breakdown is None else [asdict(group) for group in funnel.breakdown],
        }
        return Response(body)


class EventTypeView(APIView):
    """GET admin/event-types/: the most frequent event types of a range (the event picker)."""

    @operation(
        "The most frequent event types of a range (the event picker)",
        ranged(results=array(obj(event_type=TEXT, count=INTEGER))),
        query("limit", {"type": "integer", "minimum": 1, "maximum": params.MAX_LIMIT, "default": 100}, "Types shown."),
        *RANGE,
    )
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

    @operation(
        "An event type's property keys, most frequent first (the property picker)",
        obj(results=array(obj(key=TEXT, count=INTEGER, high_cardinality=BOOLEAN))),
        text_filter("event_type", "The event type.", required=("purchase",)),
        query("limit", {"type": "integer", "minimum": 1, "maximum": params.MAX_LIMIT, "default": 100}, "Keys shown."),
    )
    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        rows = pickers.event_property_list(
            project_id=project_id, event_type=_event_type(query), limit=params.parse_limit(query)
        )
        return Response({"results": rows})


class EventPropertyValueView(APIView):
    """GET admin/event-property-values/: a property's values for an event type, most frequent first."""

    @operation(
        "A property's values for an event type, most frequent first (the value picker)",
        obj(results=array(obj(value=JSON_SCALAR, count=INTEGER)), high_cardinality=nullable(BOOLEAN)),
        text_filter("event_type", "The event type.", required=("purchase",)),
        text_filter("key", "The property key.", required=("plan",)),
        query("limit", {"type": "integer", "minimum": 1, "maximum": params.MAX_LIMIT, "default": 100}, "Values shown."),
    )
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
