"""Trends and retention: an analyst's questions, answered from the event rollups and the active
days (query_side/user_sets.py), exactly. What the rollups cannot answer (a filter or breakdown on
an event property, the median of events per user) is counted from the raw events, in one
bounded scan: the rollups say beforehand how many events it would read, and past
TIDELOG_RAW_SCAN_MAX_EVENTS the answer is a 400 `range_too_large`, never a slow query.
"""

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.db import connections
from pyroaring import AbstractBitMap

from contracts import schema
from contracts.user_sets import BitMap, decode
from query_side import row_cache, user_sets
from query_side.selectors import bucket_start
from query_side.user_sets import ceil_hour, floor_hour
from tenancy.api_errors import RangeTooLarge

Math = Literal["total", "unique_users", "per_user_avg", "per_user_median"]
TrendInterval = Literal["hour", "day", "week", "month"]
Period = Literal["day", "week"]
MATHS: tuple[Math, ...] = ("total", "unique_users", "per_user_avg", "per_user_median")
TREND_INTERVALS: tuple[TrendInterval, ...] = ("hour", "day", "week", "month")
PERIODS: tuple[Period, ...] = ("day", "week")
ALL_EVENTS = "$all"
OTHER = "$other"
PROPERTY_BREAKDOWN = "property:"
MAX_SERIES = 10
MAX_BREAKDOWN_LIMIT = 50
MAX_RETENTION_PERIODS = 60
MAX_COHORTS = 60


def next_bucket(bucket: datetime, interval: str) -> datetime:
    if interval == "hour":
        return bucket + timedelta(hours=1)
    if interval == "day":
        return bucket + timedelta(days=1)
    if interval == "week":
        return bucket + timedelta(days=7)
    return (bucket.replace(day=28) + timedelta(days=4)).replace(day=1)


def labels(after: datetime, before: datetime, interval: str) -> list[datetime]:
    """Every bucket of the hour-granular range [floor_hour(after), ceil_hour(before)), the
    first and last possibly partial."""
    end = ceil_hour(before)
    bucket, found = bucket_start(floor_hour(after), interval), []
    while bucket < end:
        found.append(bucket)
        bucket = next_bucket(bucket, interval)
    return found


# --- Trends ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    event_type: str
    """An event type, or ALL_EVENTS."""
    math: Math


@dataclass(frozen=True)
class TrendQuery:
    project_id: int
    series: tuple[Series, ...]
    interval: TrendInterval
    after: datetime
    before: datetime
    app_version: str | None = None
    os_name: str | None = None
    properties: tuple[dict[str, Any], ...] = ()
    """Each a one-key object the event's properties must contain (jsonb @>)."""
    breakdown: str | None = None
    """'app_version', 'os_name' or PROPERTY_BREAKDOWN + a property key."""
    breakdown_limit: int = 10
    compare: bool = False


@dataclass
class _Cell:
    """One bucket (or the whole range) of one breakdown value: events and who sent them."""

    events: int = 0
    sets: list[AbstractBitMap] = field(default_factory=list)
    """Rollup path: the sets of users to union."""
    per_person: dict[Any, int] = field(default_factory=dict)
    """Raw path: events per person."""

    def add(self, other: "_Cell") -> None:
        self.events += other.events
        self.sets.extend(other.sets)
        for person, n in other.per_person.items():
            self.per_person[person] = self.per_person.get(person, 0) + n


def _value(cell: _Cell, math: Math, persons: user_sets.Persons | None, raw: bool) -> float | int:
    if math == "total":
        return cell.events
    if raw:
        users = len(cell.per_person)
    else:
        assert persons is not None  # trends() loads them for every rollup series that counts users
        users = persons.count(user_sets.union(cell.sets)) if cell.sets else 0
    if math == "unique_users":
        return users
    if math == "per_user_avg":
        return round(cell.events / users, 4) if users else 0
    return statistics.median(cell.per_person.values()) if cell.per_person else 0


def _needs_raw(query: TrendQuery, series: Series) -> bool:
    return (
        bool(query.properties)
        or series.math == "per_user_median"
        or (query.breakdown is not None and query.breakdown.startswith(PROPERTY_BREAKDOWN))
    )


def _event_types(series: Series) -> list[str] | None:
    return None if series.event_type == ALL_EVENTS else [series.event_type]


def _rollup_cells(
    query: TrendQuery, series: Series, after: datetime, before: datetime
) -> dict[str, dict[datetime, _Cell]]:
    """Per breakdown value ('' without one), per bucket: from the rollups. Every event's users,
    unfiltered and by day or longer, come from the active days for whole days (one set a day
    instead of one per type, version and OS: 29 rows instead of ~10,000 for a month at 10M)."""
    every_event = (
        series.event_type == ALL_EVENTS and query.interval != "hour" and query.breakdown is None
        and query.app_version is None and query.os_name is None
    )  # fmt: skip
    cells: dict[str, dict[datetime, _Cell]] = defaultdict(dict)
    buckets = user_sets.Buckets(
        query.project_id, after, before, query.interval, _event_types(series), query.app_version, query.os_name,
        query.breakdown,
    )  # fmt: skip
    if series.math != "total" and not every_event:
        for bucket, value, _, events, users in user_sets.bucket_sets(buckets):
            cell = cells[value].setdefault(bucket, _Cell())
            cell.events += events
            cell.sets.append(users)
    else:  # counts alone: summed in SQL per bucket (and breakdown value)
        for bucket, value, events in user_sets.bucket_counts(buckets):
            cells[value].setdefault(bucket, _Cell()).events += events
    if every_event and series.math != "total":
        for bucket, users in user_sets.every_events_users(project_id=query.project_id, after=after, before=before):
            cells[""].setdefault(bucket_start(bucket, query.interval), _Cell()).sets.append(users)
    return cells


def _raw_cells(
    query: TrendQuery, series: Series, after: datetime, before: datetime
) -> dict[str, dict[datetime, _Cell]]:
    """Per breakdown value, per bucket: events per person, scanned from the raw events (after the
    rollups said the scan is within bounds). A person is its number with aliases resolved (as
    user_sets.Persons): user_sets.PERSON."""
    counted = user_sets.bucket_counts(
        user_sets.Buckets(
            query.project_id, after, before, "day", _event_types(series), query.app_version, query.os_name
        )
    )
    scanned = sum(events for _, _, events in counted)
    limit = settings.TIDELOG_RAW_SCAN_MAX_EVENTS
    if scanned > limit:
        raise RangeTooLarge(
            "after",
            f"this question reads raw events (a property filter or breakdown, or the median per user) and the"
            f" range holds {scanned:,} of them, more than {limit:,}: narrow the range or drop those parameters",
        )
    clauses = ["u.project_id = %(project_id)s", 'u."timestamp" >= %(start)s', 'u."timestamp" < %(end)s']
    params: dict[str, Any] = {
        "project_id": query.project_id, "start": floor_hour(after), "end": ceil_hour(before),
        "interval": query.interval,
    }  # fmt: skip
    if series.event_type != ALL_EVENTS:
        clauses.append("u.event_type = %(event_type)s")
        params["event_type"] = series.event_type
    for name in ("app_version", "os_name"):
        if getattr(query, name) is not None:
            clauses.append(f"coalesce(u.{name}, '') = %({name})s")
            params[name] = getattr(query, name)
    for index, wanted in enumerate(query.properties):
        clauses.append(f"u.properties @> %(property_{index})s::jsonb")
        params[f"property_{index}"] = json.dumps(wanted)
    if query.breakdown is None:
        value = "''"
    elif query.breakdown.startswith(PROPERTY_BREAKDOWN):
        value = "coalesce(u.properties ->> %(breakdown_key)s, '')"
        params["breakdown_key"] = query.breakdown[len(PROPERTY_BREAKDOWN) :]
    else:
        value = f"coalesce(u.{query.breakdown}, '')"  # a checked column name (parse_breakdown)
    with connections[settings.QUERY_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            f"""SELECT date_trunc(%(interval)s, u."timestamp", 'UTC'), {value},
                       {user_sets.PERSON}, count(*)
                FROM {schema.EVENTS} u {user_sets.JOIN_PERSON}
                WHERE {" AND ".join(clauses)}
                GROUP BY 1, 2, 3""",
            params,
        )
        rows_found = cursor.fetchall()
    cells: dict[str, dict[datetime, _Cell]] = defaultdict(dict)
    for bucket, breakdown_value, person, n in rows_found:
        cell = cells[breakdown_value].setdefault(bucket.astimezone(UTC), _Cell())
        cell.events += n
        cell.per_person[person] = cell.per_person.get(person, 0) + n
    return cells


def _top(cells: Mapping[str, Mapping[datetime, _Cell]], limit: int) -> tuple[list[str], list[str]]:
    """The breakdown values with the most events (ties: by value), and the rest."""
    ranked = sorted(cells, key=lambda value: (-sum(cell.events for cell in cells[value].values()), value))
    return ranked[:limit], ranked[limit:]


def trends(query: TrendQuery) -> dict[str, Any]:
    """Each series per bucket (and per breakdown value, the top `breakdown_limit` and OTHER for
    the rest), its total over the range (unique users over the whole range, not a sum of
    buckets), and with `compare` the same for the period of equal length before."""
    shown = labels(query.after, query.before, query.interval)
    per_series = (query.breakdown_limit + 1 if query.breakdown else 1) * (2 if query.compare else 1)
    if len(shown) * per_series * len(query.series) > user_sets.MAX_POINTS:
        raise RangeTooLarge(
            "interval",
            f"{len(shown)} {query.interval}s x {len(query.series)} series x {per_series} breakdown values and"
            f" periods is more than {user_sets.MAX_POINTS:,} points: choose a longer interval, a shorter range or"
            " a smaller breakdown_limit",
        )
    # The aliases (a query of their own) only where a series counts users from the rollups.
    counts_users = any(s.math != "total" and not _needs_raw(query, s) for s in query.series)
    persons = user_sets.persons_of(query.project_id) if counts_users else None
    length = query.before - query.after
    periods = [("current", query.after, query.before)]
    if query.compare:
        periods.append(("previous", query.after - length, query.after))
    results = []
    for index, series in enumerate(query.series):
        raw = _needs_raw(query, series)
        kept: list[str] | None = None
        for period, after, before in periods:
            cells = (_raw_cells if raw else _rollup_cells)(query, series, after, before)
            if kept is None:  # the current period ranks the values; the previous one follows it
                kept, _ = _top(cells, query.breakdown_limit) if query.breakdown else ([""], [])
            rest = [value for value in cells if value not in kept]
            buckets = labels(after, before, query.interval)
            groups = [(value, [cells.get(value, {})]) for value in kept]
            if query.breakdown and rest:
                groups.append((OTHER, [cells[value] for value in rest]))
            for value, parts in groups:
                merged: dict[datetime, _Cell] = defaultdict(_Cell)
                whole = _Cell()
                for part in parts:
                    for bucket, cell in part.items():
                        merged[bucket].add(cell)
                        whole.add(cell)
                data = [_value(merged[b], series.math, persons, raw) if b in merged else 0 for b in buckets]
                data = (data + [0] * len(shown))[: len(shown)]
                results.append({
                    "series": index, "event_type": series.event_type, "math": series.math,
                    "breakdown_value": value or None,  # '' (no breakdown, or an unknown value): null
                    "compare": period, "data": data, "total": _value(whole, series.math, persons, raw),
                    "exact": True,
                })  # fmt: skip
    return {"labels": shown, "results": results}


# --- Retention ---------------------------------------------------------------------------------


def _period_start(day: date, period: Period) -> date:
    return day - timedelta(days=day.weekday()) if period == "week" else day


def _period_length(period: Period) -> timedelta:
    return timedelta(days=7 if period == "week" else 1)


def _day_sets(rows: Iterable[tuple[date, BitMap]]) -> dict[date, list[BitMap]]:
    found: dict[date, list[BitMap]] = defaultdict(list)
    for day, users in rows:
        found[day].append(users)
    return found


def _event_days(project_id: int, event_type: str, first: date | None, last: date) -> dict[date, list[BitMap]]:
    """The day rollups' sets of one event type, per UTC day."""
    clauses = ["project_id = %s", "grain = 'day'", "event_type = %s", "bucket < %s"]
    params: list[Any] = [project_id, event_type, _midnight(last) + timedelta(days=1)]
    if first is not None:
        clauses.append("bucket >= %s")
        params.append(_midnight(first))
    rows = row_cache.fetch_binary(
        f"SELECT bucket, users FROM {schema.EVENT_TYPE_ROLLUPS} WHERE {' AND '.join(clauses)}", params
    )
    return _day_sets((bucket.astimezone(UTC).date(), decode(blob)) for bucket, blob in rows)


def retention(
    *,
    project_id: int,
    period: Period,
    after: datetime,
    before: datetime,
    periods: int,
    cohort_event: str | None = None,
    return_event: str | None = None,
    today: date | None = None,
) -> list[dict[str, Any]]:
    """Cohorts of persons by the UTC day or ISO week they were first seen (cohort_event None:
    their first event of any type, the people read model's first_seen) or did `cohort_event` for
    the first time ever; for each, how many of them were active (did `return_event`, or any
    event) in each of the `periods` periods from the cohort's own. returned[0] is the cohort's
    size; a period that starts after `today` is None. Cohorts: each period starting from the
    one holding the day of `after` up to the last one starting before `before`."""
    today = today or datetime.now(UTC).date()
    step = _period_length(period)
    first_cohort = _period_start(after.astimezone(UTC).date(), period)
    cohort_starts = []
    start = first_cohort
    while datetime(start.year, start.month, start.day, tzinfo=UTC) < before:
        cohort_starts.append(start)
        start += step
    if len(cohort_starts) > MAX_COHORTS:
        raise RangeTooLarge("after", f"{len(cohort_starts)} cohorts: at most {MAX_COHORTS}; narrow the range")
    if not cohort_starts:
        return []
    persons = user_sets.persons_of(project_id)
    cohort_end = cohort_starts[-1] + step  # exclusive
    cohorts: dict[date, BitMap] = defaultdict(BitMap)
    if cohort_event is None:
        # The people projection's sets of persons a day (schema.PERSON_COHORTS): a row a day
        # rather than every person of the range (177k grouped in SQL: 60-80 ms at 10M events).
        rows = row_cache.fetch_binary(
            f"SELECT day, persons FROM {schema.PERSON_COHORTS} WHERE project_id = %s AND day >= %s AND day < %s",
            [project_id, first_cohort, cohort_end],
        )
        for day, blob in rows:
            cohorts[_period_start(day, period)] |= decode(blob)
    else:
        seen = BitMap()
        history = _event_days(project_id, cohort_event, None, cohort_end - timedelta(days=1))
        for day in sorted(history):
            did = persons.of(user_sets.union(history[day]))
            new = did - seen
            seen |= did
            if first_cohort <= day < cohort_end and new:
                cohorts[_period_start(day, period)] |= new
    last_day = min(today, cohort_starts[-1] + step * periods - timedelta(days=1))
    if return_event is None:
        days = user_sets.active_days(project_id=project_id, first=first_cohort, last=last_day)
        returns_by_day = {day: [users] for day, users in days.items()}
    else:
        returns_by_day = _event_days(project_id, return_event, first_cohort, last_day)
    returned_in: dict[date, BitMap] = {}
    by_period: dict[date, list[BitMap]] = defaultdict(list)
    for day, sets in returns_by_day.items():
        by_period[_period_start(day, period)].extend(sets)
    for start, sets in by_period.items():
        returned_in[start] = persons.of(user_sets.union(sets))
    answer = []
    for start in cohort_starts:
        cohort = cohorts.get(start, BitMap())
        row: list[int | None] = []
        for k in range(periods):
            at = start + step * k
            if at > today:
                row.append(None)
            elif k == 0:
                row.append(len(cohort))
            else:
                row.append(cohort.intersection_cardinality(returned_in.get(at, BitMap())))
        answer.append({"cohort": start, "size": len(cohort), "returned": row})
    return answer


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
