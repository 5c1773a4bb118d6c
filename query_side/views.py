"""The query API's views: thin. Resolve the project from the caller, parse parameters, call one
selector, encode. Never reads a project id from anywhere but `project_for`."""

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flags import stats
from flags.definition import KEY_PATTERN
from query_side import catalog, params, people, selectors, sessions
from tenancy.access import project_for

EXPOSURE_RANGE = timedelta(days=30)


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


class StickinessView(APIView):
    """GET admin/stickiness/: users by how many days of the range they were active."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        window = params.parse_range(request.query_params)
        rows = selectors.stickiness_list(project_id=project_id, after=window.after, before=window.before)
        return Response({"after": window.after, "before": window.before, "results": rows})


class BadEventListView(APIView):
    """GET admin/bad-events/: rejected events with their error, newest first, cursor-paginated."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        limit = params.parse_limit(query)
        cursor = params.decode_cursor(query, params.aware_datetime, int)
        rows = selectors.bad_event_list(project_id=project_id, limit=limit, cursor=cursor)
        return page(request, rows, limit, lambda row: params.encode_cursor(row["received_at"], row["id"]))


def _known_key(key: str, kind: str) -> str:
    """A key from the path. One no flag or experiment can have (NUL, 201 characters, '..') is a
    404 here, before PostgreSQL sees it."""
    if not KEY_PATTERN.fullmatch(key):
        raise NotFound(f"no {kind} {key!r} in this project")
    return key


class FlagExposureView(APIView):
    """GET admin/feature-flags/{key}/exposures/: exposures per day and variant, users per variant."""

    def get(self, request: Request, key: str) -> Response:
        project_id = project_for(request)
        window = params.parse_range(request.query_params, default=EXPOSURE_RANGE)
        summary = selectors.flag_exposure_summary(
            project_id=project_id, flag_key=_known_key(key, "feature flag"), after=window.after, before=window.before
        )
        if summary is None:
            raise NotFound(f"no feature flag {key!r} in this project")
        return Response({"flag_key": key, "after": window.after, "before": window.before, **summary})


def _number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a number that does not exist is null."""
    return value if value is not None and math.isfinite(value) else None


def _variant_body(result: stats.VariantResult) -> dict[str, Any]:
    return {
        "key": result.key,
        "exposed": result.exposed,
        "converted": result.converted,
        "rate": _number(result.rate),
        "interval": {"low": _number(result.interval_low), "high": _number(result.interval_high)},
        "uplift": _number(result.uplift),
        "p_value": _number(result.p_value),
        "probability_to_beat_control": _number(result.probability_to_beat_control),
    }


class ExperimentResultView(APIView):
    """GET admin/experiments/{key}/results/: each test variant against control, and SRM."""

    def get(self, request: Request, key: str) -> Response:
        project_id = project_for(request)
        counts = selectors.experiment_counts(
            project_id=project_id, key=_known_key(key, "experiment"), now=datetime.now(UTC)
        )
        if counts is None:
            raise NotFound(f"no experiment {key!r} in this project")
        results = stats.experiment_results(counts.control, counts.tests, counts.weights)
        srm = results.srm
        return Response(
            {
                "key": counts.key,
                "flag_key": counts.flag_key,
                "archived": counts.archived,
                "window": {"start_at": counts.start_at, "end_at": counts.end_at, "counted_until": counts.counted_until},
                "control": _variant_body(results.control),
                "tests": [_variant_body(test) for test in results.tests],
                "srm": {
                    "chi2": _number(srm.chi2),
                    "df": srm.df,
                    "p_value": _number(srm.p_value),
                    "srm_suspected": srm.srm_suspected,
                    "weights": counts.weights,
                },
                "users_with_several_variants": counts.users_with_several_variants,
                "methods": stats.METHODS,
            }
        )


class FlagDefinitionListView(APIView):
    """GET admin/flag-definitions/: the project's flags (not archived), by key, for pickers.
    (admin/feature-flags/ is the command host's, which administers them.)"""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        limit = params.parse_limit(request.query_params)
        cursor = params.decode_cursor(request.query_params, params.read_text_part)
        after_key = cursor[0] if cursor else None
        rows = catalog.flag_definition_list(project_id=project_id, limit=limit, cursor=after_key)
        return page(request, rows, limit, lambda row: params.encode_cursor(params.text_part(row["key"])))


class ExperimentDefinitionListView(APIView):
    """GET admin/experiment-definitions/: the project's experiments, by key, for pickers.
    (admin/experiments/ is the command host's, which administers them.)"""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        limit = params.parse_limit(request.query_params)
        cursor = params.decode_cursor(request.query_params, params.read_text_part)
        after_key = cursor[0] if cursor else None
        rows = catalog.experiment_definition_list(project_id=project_id, limit=limit, cursor=after_key)
        return page(request, rows, limit, lambda row: params.encode_cursor(params.text_part(row["key"])))


# --- Sessions and people -------------------------------------------------------------------


def _session_cursor(row: dict[str, Any]) -> str:
    return params.encode_cursor(row["start"], params.text_part(row["session_id"]))


def _session_id(session_id: str) -> str:
    """A session id from the path. One no session can have (NUL, over 200 characters) is a 404
    here, before PostgreSQL sees it."""
    if "\x00" in session_id or len(session_id) > params.MAX_TEXT:
        raise NotFound(f"no session {session_id!r} in this project")
    return session_id


class SessionListView(APIView):
    """GET admin/sessions/: sessions newest first, filtered, cursor-paginated."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        limit = params.parse_limit(query)
        after, before = params.parse_bounds(query)
        cursor = params.decode_cursor(query, params.aware_datetime, params.read_text_part)
        filters = sessions.SessionFilter(
            after=after,
            before=before,
            distinct_id=params.parse_text(query, "distinct_id"),
            device_id=params.parse_text(query, "device_id"),
            app_version=params.parse_text(query, "app_version"),
            os_name=params.parse_text(query, "os_name"),
            min_duration=params.parse_seconds(query, "min_duration"),
            max_duration=params.parse_seconds(query, "max_duration"),
            ended_by=params.parse_optional_choice(query, "ended_by", sessions.ENDED_BY),
            active=params.parse_bool(query, "active"),
        )
        rows = sessions.session_list(
            project_id=project_id, filters=filters, now=datetime.now(UTC), limit=limit, cursor=cursor
        )
        return page(request, rows, limit, _session_cursor)


class SessionDetailView(APIView):
    """GET admin/sessions/{session_id}/: the session and one page of its events, oldest first."""

    def get(self, request: Request, session_id: str) -> Response:
        project_id = project_for(request)
        query = request.query_params
        limit = params.parse_limit(query)
        cursor = params.decode_cursor(query, params.aware_datetime, UUID)
        session = sessions.session_get(project_id=project_id, session_id=_session_id(session_id), now=datetime.now(UTC))
        if session is None:
            raise NotFound(f"no session {session_id!r} in this project")
        rows = sessions.session_event_list(project_id=project_id, session=session, limit=limit, cursor=cursor)
        events = page(request, rows, limit, lambda row: params.encode_cursor(row["timestamp"], row["uuid"])).data
        return Response({**session, "events": events["results"], "next": events["next"]})


class SessionMetricView(APIView):
    """GET admin/session-metrics/: sessions, median and p90 duration, events per session per bucket."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        interval = params.parse_choice(query, "interval", sessions.METRICS_INTERVALS, "day")
        breakdown = params.parse_optional_choice(query, "breakdown", sessions.METRICS_BREAKDOWNS)
        window = params.parse_range(query)
        rows = sessions.session_metric_list(
            project_id=project_id, interval=interval, after=window.after, before=window.before, breakdown=breakdown
        )
        return Response({"interval": interval, "after": window.after, "before": window.before, "results": rows})


class PersonListView(APIView):
    """GET admin/people/: people last seen first, by distinct_id or properties, cursor-paginated."""

    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        limit = params.parse_limit(query)
        cursor = params.decode_cursor(query, params.aware_datetime, UUID)
        rows = people.person_list(
            project_id=project_id,
            limit=limit,
            distinct_id=params.parse_text(query, "distinct_id"),
            properties=params.parse_properties(query),
            cursor=cursor,
        )
        return page(request, rows, limit, lambda row: params.encode_cursor(row["last_seen"], row["person_id"]))


class PersonDetailView(APIView):
    """GET admin/people/{person_id}/: a person, their ids, identity links and newest sessions."""

    def get(self, request: Request, person_id: str) -> Response:
        project_id = project_for(request)
        try:
            wanted = UUID(person_id)
        except ValueError:
            raise NotFound(f"no person {person_id!r} in this project") from None
        person = people.person_get(project_id=project_id, person_id=wanted, now=datetime.now(UTC))
        if person is None:
            raise NotFound(f"no person {person_id!r} in this project")
        return Response(person)
