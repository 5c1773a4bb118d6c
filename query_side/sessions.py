"""The query side's reads of sessions (rm_sessions, filled by projections/sessions.py) and of a
session's events (the event store). Each selector filters by project first; a session's person
is resolved here, at query time, from rm_person_distinct_ids, so a merge shows at once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, Literal
from uuid import UUID

from django.conf import settings
from django.db import connections

from contracts.events import INFERRED_SESSION_PREFIX
from contracts.schema import EVENTS, PERSON_DISTINCT_IDS, SESSION_DURATIONS, SESSIONS
from contracts.session_durations import RELATIVE_ERROR, merge_histograms, percentile
from query_side.selectors import EVENT_FIELDS, _json, _rows
from query_side.user_sets import rollup_where

EndedBy = Literal["explicit", "inactivity", "cap"]
ENDED_BY: tuple[EndedBy, ...] = ("explicit", "inactivity", "cap")
MetricsInterval = Literal["hour", "day", "week"]
METRICS_INTERVALS: tuple[MetricsInterval, ...] = ("hour", "day", "week")
MetricsBreakdown = Literal["app_version", "os_name"]
METRICS_BREAKDOWNS: tuple[MetricsBreakdown, ...] = ("app_version", "os_name")
ESTIMATED: dict[str, float] = {"median_duration_seconds": RELATIVE_ERROR, "p90_duration_seconds": RELATIVE_ERROR}
"""session-metrics' estimated fields, each with the largest relative error it may have."""
RECENT_SESSIONS = 20
"""How many of a person's sessions the person detail shows (the newest)."""

# What a session is reported as, from `s` (rm_sessions) and `pd` (its distinct_id's person row).
# Unknown device, version and OS are stored as '' and reported as null.
SESSION_FIELDS = """s.session_id, s.inferred, s.distinct_id, pd.person_id, nullif(s.device_id, '') AS device_id,
    nullif(s.app_version, '') AS app_version, nullif(s.os_name, '') AS os_name,
    nullif(s.os_version, '') AS os_version, s.start_at AS start, s.end_at AS "end",
    extract(epoch FROM s.end_at - s.start_at)::float8 AS duration_seconds, s.event_count, s.screen_count,
    s.first_event, s.last_event, s.ended_by,
    (s.ended_by = 'inactivity' AND s.end_at >= %(active_since)s AND s.start_at >= %(active_oldest)s) AS active"""
FROM_SESSIONS = f"""{SESSIONS} s
    LEFT JOIN {PERSON_DISTINCT_IDS} pd ON pd.project_id = s.project_id AND pd.distinct_id = s.distinct_id"""


def active_params(now: datetime) -> dict[str, datetime]:
    """A session not explicitly ended is still active when its last event is at or after
    `active_since` (the next event within the inactivity gap would extend it) and it started at
    or after `active_oldest` (the cap closes any session, an SDK's own id included, at
    TIDELOG_SESSION_MAX_HOURS: PostHog's SDKs rotate theirs at 24 hours). The bound on the start
    also lets the list's index skip every older session."""
    since = now - timedelta(minutes=settings.TIDELOG_SESSION_INACTIVITY_MINUTES)
    return {"active_since": since, "active_oldest": since - timedelta(hours=settings.TIDELOG_SESSION_MAX_HOURS)}


@dataclass(frozen=True)
class SessionFilter:
    after: datetime | None = None
    before: datetime | None = None
    distinct_id: str | None = None
    """Any distinct_id of the person: their sessions under every id they have."""
    device_id: str | None = None
    app_version: str | None = None
    os_name: str | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    ended_by: EndedBy | None = None
    active: bool | None = None


def _person_ids_sql(distinct_id: str) -> str:
    """The distinct_ids of the person who has `distinct_id` (an SQL parameter), and that id
    itself (known to no person yet while the people projection trails). Uncorrelated: PostgreSQL
    runs it once, before the outer query, whose index scans then take its ids."""
    return f"""(SELECT other.distinct_id FROM {PERSON_DISTINCT_IDS} one
                JOIN {PERSON_DISTINCT_IDS} other
                  ON other.project_id = one.project_id AND other.person_id = one.person_id
                WHERE one.project_id = %(project_id)s AND one.distinct_id = {distinct_id}
                UNION SELECT {distinct_id})"""


def session_list(
    *, project_id: int, filters: SessionFilter, now: datetime, limit: int, cursor: tuple[datetime, str] | None = None
) -> list[dict[str, Any]]:
    """Sessions newest first, keyset-paginated on (start_at, session_id) along rm_sessions_list;
    reads `limit + 1` rows so the caller knows whether a next page exists."""
    clauses = ["s.project_id = %(project_id)s"]
    params: dict[str, Any] = {"project_id": project_id, "limit": limit + 1, **active_params(now)}
    if filters.after is not None:
        clauses.append("s.start_at >= %(after)s")
        params["after"] = filters.after
    if filters.before is not None:
        clauses.append("s.start_at < %(before)s")
        params["before"] = filters.before
    if filters.distinct_id is not None:
        clauses.append(f"s.distinct_id IN {_person_ids_sql('%(distinct_id)s')}")
        params["distinct_id"] = filters.distinct_id
    for name in ("device_id", "app_version", "os_name", "ended_by"):
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"s.{name} = %({name})s")
            params[name] = value
    if filters.min_duration is not None:
        clauses.append("s.end_at - s.start_at >= make_interval(secs => %(min_duration)s)")
        params["min_duration"] = filters.min_duration
    if filters.max_duration is not None:
        clauses.append("s.end_at - s.start_at <= make_interval(secs => %(max_duration)s)")
        params["max_duration"] = filters.max_duration
    active = "s.ended_by = 'inactivity' AND s.end_at >= %(active_since)s AND s.start_at >= %(active_oldest)s"
    if filters.active is True:
        clauses.append(active)
    elif filters.active is False:
        clauses.append(f"NOT ({active})")
    if cursor is not None:
        clauses.append(
            "s.start_at <= %(cursor_start)s AND (s.start_at, s.session_id) < (%(cursor_start)s, %(cursor_id)s)"
        )
        params["cursor_start"], params["cursor_id"] = cursor
    return _rows(
        f"""SELECT {SESSION_FIELDS} FROM {FROM_SESSIONS} WHERE {" AND ".join(clauses)}
            ORDER BY s.start_at DESC, s.session_id DESC LIMIT %(limit)s""",
        params,
    )


def session_get(*, project_id: int, session_id: str, now: datetime) -> dict[str, Any] | None:
    """One session as the list reports it, or None when the project has no such session."""
    rows = _rows(
        f"SELECT {SESSION_FIELDS} FROM {FROM_SESSIONS} WHERE s.project_id = %(project_id)s AND s.session_id = %(id)s",
        {"project_id": project_id, "id": session_id, **active_params(now)},
    )
    return rows[0] if rows else None


def session_event_list(
    *, project_id: int, session: dict[str, Any], limit: int, cursor: tuple[datetime, UUID] | None = None
) -> list[dict[str, Any]]:
    """A session's events (`session` as session_get reads it) oldest first, keyset-paginated on
    (timestamp, uuid); reads limit + 1.

    Exactly the events the sessions projection counted in it, between its start and end: for an
    inferred session, its (distinct_id, device_id)'s events without a session_id (or with one in
    the reserved `inferred-` form, as the projection reads them), along the index (project_id,
    distinct_id, "timestamp"); for an explicit one, every event carrying its session_id whatever
    its distinct_id (an $identify mid-session, a merge refused or not projected yet), along
    (project_id, "timestamp") over the session's time range."""
    clauses = ["project_id = %(project_id)s", '"timestamp" >= %(start)s AND "timestamp" <= %(end)s']
    params: dict[str, Any] = {
        "project_id": project_id, "start": session["start"], "end": session["end"], "limit": limit + 1,
    }  # fmt: skip
    if session["inferred"]:
        clauses.append(
            "distinct_id = %(distinct_id)s AND coalesce(device_id, '') = %(device_id)s"
            " AND (session_id IS NULL OR starts_with(session_id, %(prefix)s))"
        )
        params.update(
            distinct_id=session["distinct_id"], device_id=session["device_id"] or "", prefix=INFERRED_SESSION_PREFIX
        )
    else:
        clauses.append("session_id = %(session_id)s")
        params["session_id"] = session["session_id"]
    if cursor is not None:
        clauses.append('"timestamp" >= %(cursor_time)s AND ("timestamp", uuid) > (%(cursor_time)s, %(cursor_uuid)s)')
        params["cursor_time"], params["cursor_uuid"] = cursor
    rows = _rows(
        f"""SELECT {EVENT_FIELDS} FROM {EVENTS} WHERE {" AND ".join(clauses)}
            ORDER BY "timestamp", uuid LIMIT %(limit)s""",
        params,
    )
    for row in rows:
        row["properties"] = _json(row["properties"])
    return rows


def session_metric_list(
    *,
    project_id: int,
    interval: MetricsInterval,
    after: datetime,
    before: datetime,
    breakdown: MetricsBreakdown | None = None,
) -> list[dict[str, Any]]:
    """Per UTC bucket of start_at (weeks from Monday), and per breakdown value when asked: the
    sessions that started in the range, their median and 90th-percentile duration in seconds
    (interpolated, as percentile_cont) and their mean events per session. Read from the duration
    histograms (SESSION_DURATIONS): counts and events exact, percentiles within
    RELATIVE_ERROR of the exact ones (ESTIMATED). The range is hour-granular, as trends' (a session
    counts when the hour it started in starts in [floor_hour(after), before))."""
    if interval not in METRICS_INTERVALS or (breakdown is not None and breakdown not in METRICS_BREAKDOWNS):
        # The breakdown is spliced into the SQL as a column name: only known names pass.
        raise ValueError(f"unknown interval {interval!r} or breakdown {breakdown!r}")
    found = rollup_where(project_id, after, before, interval == "hour", None, None, None)
    if found is None:
        return []
    where, params = found
    shown = f", nullif({breakdown}, '')" if breakdown else ""
    with connections[settings.QUERY_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            f"""SELECT date_trunc(%s, bucket, 'UTC') AS b{shown}, sessions, events, bins, counts
                FROM {SESSION_DURATIONS} WHERE {where}
                ORDER BY 1{", 2" if breakdown else ""}""",
            [interval, *params],
        )
        histograms = cursor.fetchall()
    results: list[dict[str, Any]] = []
    for key, rows in groupby(histograms, key=lambda row: row[: 2 if breakdown else 1]):
        listed = list(rows)
        sessions = sum(row[-4] for row in listed)
        histogram = merge_histograms((row[-2], row[-1]) for row in listed)
        result: dict[str, Any] = {"bucket": key[0]}
        if breakdown:
            result[breakdown] = key[1]
        result |= {
            "sessions": sessions,
            "median_duration_seconds": percentile(histogram, 0.5),
            "p90_duration_seconds": percentile(histogram, 0.9),
            "events_per_session": sum(row[-3] for row in listed) / sessions,
        }
        results.append(result)
    return results
