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
from query_side import analytics, catalog, params, people, selectors, sessions
from query_side.openapi import (
    EVENT,
    IDENTITY_LINK,
    LIST_AFTER,
    LIST_BEFORE,
    PAGE,
    PERSON_FIELDS,
    RANGE,
    SESSION,
    VARIANT_RESULT,
    breakdown_row,
    choice,
    operation,
    query,
    ranged,
    text_filter,
    time_range,
)
from tenancy.access import project_for
from tenancy.api_errors import InvalidParameter
from tenancy.openapi import BOOLEAN, INTEGER, JSON_OBJECT, NUMBER, TEXT, TIME, array, nullable, obj, page_of

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

    @operation(
        "Raw events, newest first",
        page_of(EVENT),
        text_filter("event_type", "Only events of this type."),
        text_filter("distinct_id", "Only this distinct_id's events."),
        text_filter("session_id", "Only this session's events."),
        LIST_AFTER,
        LIST_BEFORE,
        *PAGE,
    )
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

    @operation(
        "Events per type over a range (hour-granular), most frequent first",
        ranged(results=array(obj(event_type=TEXT, count=INTEGER))),
        *RANGE,
    )
    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        window = params.parse_range(request.query_params)
        rows = selectors.event_count_by_type(project_id=project_id, after=window.after, before=window.before)
        return Response({"results": rows, "after": window.after, "before": window.before})


class EventAggregateView(APIView):
    """GET admin/event-aggregates/: counts and unique users per hour or day and event type."""

    @operation(
        "Event counts and unique users per bucket and event type",
        ranged(
            interval={"type": "string", "enum": list(selectors.INTERVALS)},
            results=array(
                breakdown_row(selectors.BREAKDOWNS, bucket=TIME, event_type=TEXT, count=INTEGER, unique_users=INTEGER)
            ),
        ),
        choice("interval", selectors.INTERVALS, "Bucket size.", "day"),
        text_filter("event_type", "Only this event type."),
        choice("breakdown", selectors.BREAKDOWNS, "Also split each bucket by this field (unknown: null)."),
        *RANGE,
        bounded=True,
    )
    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        interval = params.parse_choice(query, "interval", selectors.INTERVALS, "day")
        breakdown = params.parse_optional_choice(query, "breakdown", selectors.BREAKDOWNS)
        window = params.parse_range(query)
        rows = selectors.event_aggregate_list(
            project_id=project_id,
            interval=interval,
            after=window.after,
            before=window.before,
            event_type=params.parse_text(query, "event_type"),
            breakdown=breakdown,
        )
        return Response({"interval": interval, "after": window.after, "before": window.before, "results": rows})


class ActiveUserView(APIView):
    """GET admin/active-users/: DAU, WAU or MAU."""

    @operation(
        "Active users (DAU, WAU or MAU) per calendar bucket, counting persons",
        ranged(
            interval={"type": "string", "enum": list(selectors.ACTIVE_INTERVALS)},
            results=array(obj(bucket=TIME, active_users=INTEGER)),
        ),
        choice("interval", selectors.ACTIVE_INTERVALS, "Bucket size (weeks start on Monday).", "day"),
        *RANGE,
    )
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

    @operation(
        "Users by how many days of the range they were active",
        ranged(results=array(obj(active_days=INTEGER, users=INTEGER))),
        *RANGE,
    )
    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        window = params.parse_range(request.query_params)
        rows = selectors.stickiness_list(project_id=project_id, after=window.after, before=window.before)
        return Response({"after": window.after, "before": window.before, "results": rows})


class BadEventListView(APIView):
    """GET admin/bad-events/: rejected events with their error, newest first, cursor-paginated."""

    @operation(
        "Rejected events with their error, newest first",
        page_of(
            obj(
                id=INTEGER,
                received_at=TIME,
                error_code=TEXT,
                field=nullable(TEXT),
                message=TEXT,
                payload=nullable(TEXT),
            )
        ),
        *PAGE,
    )
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

    @operation(
        "A flag's exposures per day and variant, and users per variant",
        obj(
            flag_key=TEXT,
            after=TIME,
            before=TIME,
            days=array(obj(day=TIME, variant=TEXT, exposures=INTEGER)),
            users=array(obj(variant=TEXT, users=INTEGER)),
            users_with_several_variants=INTEGER,
        ),
        *time_range(EXPOSURE_RANGE.days),
    )
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

    @operation(
        "An experiment's results: each test variant against control, and sample ratio mismatch",
        obj(
            key=TEXT,
            flag_key=TEXT,
            archived=BOOLEAN,
            window=obj(start_at=TIME, end_at=nullable(TIME), counted_until=TIME),
            control=VARIANT_RESULT,
            tests=array(VARIANT_RESULT),
            srm=obj(
                chi2=nullable(NUMBER),
                df=INTEGER,
                p_value=nullable(NUMBER),
                srm_suspected=BOOLEAN,
                weights={"type": "object", "additionalProperties": NUMBER},
            ),
            users_with_several_variants=INTEGER,
            methods=JSON_OBJECT,
        ),
    )
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


def _by_key(request: Request, rows_after: Callable[..., list[dict[str, Any]]]) -> Response:
    """One page of a list ordered by key, its cursor the last key shown."""
    project_id = project_for(request)
    limit = params.parse_limit(request.query_params)
    cursor = params.decode_cursor(request.query_params, params.read_text_part)
    rows = rows_after(project_id=project_id, limit=limit, cursor=cursor[0] if cursor else None)
    return page(request, rows, limit, lambda row: params.encode_cursor(params.text_part(row["key"])))


class FlagDefinitionListView(APIView):
    """GET admin/flag-definitions/: the project's flags (not archived), by key, for pickers.
    (admin/feature-flags/ is the command host's, which administers them.)"""

    @operation(
        "The project's flags that are not archived, by key (for pickers)",
        page_of(obj(key=TEXT, name=TEXT, description=TEXT, enabled=BOOLEAN, version=INTEGER,
                    rollout_percentage=nullable(NUMBER), variants=array(TEXT), updated_at=TIME)),
        *PAGE,
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        return _by_key(request, catalog.flag_definition_list)


class ExperimentDefinitionListView(APIView):
    """GET admin/experiment-definitions/: the project's experiments, by key, for pickers.
    (admin/experiments/ is the command host's, which administers them.)"""

    @operation(
        "The project's experiments, archived ones included, by key (for pickers)",
        page_of(obj(key=TEXT, name=TEXT, description=TEXT, flag_key=TEXT, control=TEXT, tests=array(TEXT),
                    goal_event=TEXT, start_at=TIME, end_at=nullable(TIME), archived=BOOLEAN)),
        *PAGE,
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        return _by_key(request, catalog.experiment_definition_list)


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

    @operation(
        "Sessions newest first, filtered",
        page_of(SESSION),
        query("after", TIME, "Only sessions that started at or after this time. No default."),
        query("before", TIME, "Only sessions that started before this time. No default."),
        text_filter("distinct_id", "The sessions of the person who has this id, under any of their ids."),
        text_filter("device_id", "Exact match."),
        text_filter("app_version", "Exact match."),
        text_filter("os_name", "Exact match."),
        query("min_duration", {"type": "number", "minimum": 0}, "Seconds, inclusive."),
        query("max_duration", {"type": "number", "minimum": 0}, "Seconds, inclusive."),
        choice("ended_by", sessions.ENDED_BY, "How the session ended."),
        choice("active", ("true", "false"), "Only active sessions, or only the others."),
        *PAGE,
    )
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

    @operation(
        "A session and one page of its events, oldest first",
        obj(**SESSION["properties"], events=array(EVENT), next=nullable(TEXT)),
        *PAGE,
    )
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

    @operation(
        "Sessions, median and p90 duration, events per session per bucket",
        ranged(
            interval={"type": "string", "enum": list(sessions.METRICS_INTERVALS)},
            estimated=obj(**dict.fromkeys(sessions.ESTIMATED, NUMBER)),
            results=array(
                breakdown_row(
                    sessions.METRICS_BREAKDOWNS,
                    bucket=TIME,
                    sessions=INTEGER,
                    median_duration_seconds=NUMBER,
                    p90_duration_seconds=NUMBER,
                    events_per_session=NUMBER,
                )
            ),
        ),
        choice("interval", sessions.METRICS_INTERVALS, "Bucket size (weeks start on Monday).", "day"),
        choice("breakdown", sessions.METRICS_BREAKDOWNS, "Also split each bucket by this field (unknown: null)."),
        *RANGE,
    )
    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        interval = params.parse_choice(query, "interval", sessions.METRICS_INTERVALS, "day")
        breakdown = params.parse_optional_choice(query, "breakdown", sessions.METRICS_BREAKDOWNS)
        window = params.parse_range(query)
        rows = sessions.session_metric_list(
            project_id=project_id, interval=interval, after=window.after, before=window.before, breakdown=breakdown
        )
        return Response(
            {
                "interval": interval,
                "after": window.after,
                "before": window.before,
                "estimated": sessions.ESTIMATED,
                "results": rows,
            }
        )


class PersonListView(APIView):
    """GET admin/people/: people last seen first, by distinct_id or properties, cursor-paginated."""

    @operation(
        "People, last seen first",
        page_of(obj(**PERSON_FIELDS)),
        text_filter("distinct_id", "The one person who has this id, whichever of their ids it is."),
        query(
            "property",
            {"type": "string", "maxLength": params.MAX_TEXT, "pattern": "^[^:]+:"},
            "`key:value`: people whose properties hold `key` with this value (JSON when it parses as JSON,"
            " else the text). Repeat for several (AND).",
            many=True,
        ),
        *PAGE,
    )
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

    @operation(
        "A person: all their distinct_ids, identity links and newest sessions",
        obj(**PERSON_FIELDS, identity_links=array(IDENTITY_LINK), sessions=array(SESSION)),
    )
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


TREND_RESULT = obj(
    series=INTEGER, event_type=TEXT, math={"type": "string", "enum": list(analytics.MATHS)},
    breakdown_value=nullable(TEXT), compare={"type": "string", "enum": ["current", "previous"]},
    data=array(NUMBER), total=NUMBER, exact=BOOLEAN,
)  # fmt: skip


class TrendsView(APIView):
    """GET admin/trends/: series of events over time: totals, unique users, events per user."""

    @operation(
        "Series of events per bucket: total, unique users (persons), average or median events per user",
        ranged(interval={"type": "string", "enum": list(analytics.TREND_INTERVALS)}, labels=array(TIME),
               results=array(TREND_RESULT)),
        query("series", {"type": "string", "maxLength": params.MAX_TEXT}, "An event type, or $all (default); "
              f"repeat for up to {analytics.MAX_SERIES} series.", many=True),
        query("math", {"type": "string", "enum": list(analytics.MATHS)}, "Once for every series, or once per "
              "series in order (default total).", many=True),
        choice("interval", analytics.TREND_INTERVALS, "Bucket size (weeks start on Monday).", "day"),
        text_filter("app_version", "Only events of this app version."),
        text_filter("os_name", "Only events of this OS."),
        query("property", {"type": "string", "maxLength": params.MAX_TEXT}, "key:value the event's "
              "properties must hold (repeatable); answered from raw events, bounded.", many=True),
        query("breakdown", {"type": "string", "maxLength": params.MAX_TEXT,
                            "pattern": "^(app_version|os_name|property:.+)$",
                            "examples": [*selectors.BREAKDOWNS, "property:plan"]},
              "app_version, os_name or property:<key>."),
        query("breakdown_limit", {"type": "integer", "minimum": 1, "maximum": analytics.MAX_BREAKDOWN_LIMIT,
              "default": 10}, "Breakdown values shown; the rest are summed as $other."),
        choice("compare", ("previous",), "Add each series for the period of equal length before."),
        *RANGE,
        bounded=True,
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        names = params.parse_event_types(
            query, "series", low=1, high=analytics.MAX_SERIES, default=(analytics.ALL_EVENTS,)
        )
        maths = query.getlist("math")
        if len(maths) not in (0, 1, len(names)) or any(math not in analytics.MATHS for math in maths):
            raise InvalidParameter(
                "math", f"math is one of {', '.join(analytics.MATHS)}, given once for all series or once for each"
            )
        chosen = maths if len(maths) == len(names) else [maths[0] if maths else "total"] * len(names)
        breakdown = params.parse_text(query, "breakdown")
        if (
            breakdown is not None
            and breakdown not in selectors.BREAKDOWNS
            and not (
                breakdown.startswith(analytics.PROPERTY_BREAKDOWN)
                and len(breakdown) > len(analytics.PROPERTY_BREAKDOWN)
            )
        ):
            raise InvalidParameter("breakdown", "breakdown is app_version, os_name or property:<key>")
        window = params.parse_range(query)
        trend = analytics.TrendQuery(
            project_id=project_id,
            series=tuple(analytics.Series(name, math) for name, math in zip(names, chosen, strict=True)),  # type: ignore[arg-type]
            interval=params.parse_choice(query, "interval", analytics.TREND_INTERVALS, "day"),
            after=window.after,
            before=window.before,
            app_version=params.parse_text(query, "app_version"),
            os_name=params.parse_text(query, "os_name"),
            properties=params.parse_properties(query),
            breakdown=breakdown,
            breakdown_limit=params.parse_whole(
                query, "breakdown_limit", default=10, low=1, high=analytics.MAX_BREAKDOWN_LIMIT
            ),
            compare=params.parse_optional_choice(query, "compare", ("previous",)) is not None,
        )
        answer = analytics.trends(trend)
        return Response({"interval": trend.interval, "after": window.after, "before": window.before, **answer})


class RetentionView(APIView):
    """GET admin/retention/: cohorts by first seen (or first `cohort_event`) and their returns."""

    @operation(
        "Cohorts of persons by first seen (or first cohort_event) and how many came back each period",
        ranged(period={"type": "string", "enum": list(analytics.PERIODS)}, periods=INTEGER,
               cohorts=array(obj(cohort={"type": "string", "format": "date"}, size=INTEGER,
                                 returned=array(nullable(INTEGER))))),
        choice("period", analytics.PERIODS, "Cohort and return period (weeks start on Monday).", "day"),
        query("periods", {"type": "integer", "minimum": 1, "maximum": analytics.MAX_RETENTION_PERIODS},
              "Columns of the grid (default 14 days or 8 weeks)."),
        text_filter("cohort_event", "Cohorts by the first time of this event (default: first seen at all)."),
        text_filter("return_event", "Returning means doing this event (default: any event)."),
        *RANGE,
        bounded=True,
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        query = request.query_params
        period = params.parse_choice(query, "period", analytics.PERIODS, "day")
        periods = params.parse_whole(
            query, "periods", default=14 if period == "day" else 8, low=1, high=analytics.MAX_RETENTION_PERIODS
        )
        window = params.parse_range(query, default=timedelta(days=(1 if period == "day" else 7) * periods))
        cohorts = analytics.retention(
            project_id=project_id, period=period, after=window.after, before=window.before, periods=periods,
            cohort_event=params.parse_text(query, "cohort_event"),
            return_event=params.parse_text(query, "return_event"),
        )  # fmt: skip
        return Response(
            {"period": period, "periods": periods, "after": window.after, "before": window.before, "cohorts": cohorts}
        )
