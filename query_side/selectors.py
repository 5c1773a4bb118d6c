"""The query side's reads, in plain SQL: read models for aggregates, the event store for raw
event listings. Every selector takes a project id and filters by it first: no query here may
ever return another project's rows.
"""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from uuid import UUID

import msgspec
from django.conf import settings
from django.db import connections

from contracts import schema
from contracts.schema import (
    BAD_EVENTS,
    EVENTS,
    EXPERIMENT_CONVERSIONS,
    EXPERIMENTS,
    FLAG_DEFINITIONS,
    FLAG_EXPOSURE_DAYS,
    FLAG_EXPOSURES,
)
from contracts.user_sets import BitMap
from flags.definition import FlagDefinition
from flags.stats import VariantCounts, assignment_weights
from query_side import user_sets
from tenancy.api_errors import RangeTooLarge


def _rows(sql: str, params: list[Any] | dict[str, Any]) -> list[dict[str, Any]]:
    with connections[settings.QUERY_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@dataclass(frozen=True)
class EventFilter:
    event_type: str | None = None
    distinct_id: str | None = None
    session_id: str | None = None
    after: datetime | None = None
    before: datetime | None = None


# What the API lists of an event: all an SDK sent and the server stamped, less the tenant key.
EVENT_FIELDS = EVENTS.column_list(without=("project_id", *schema.EVENT_STORE_OWN))


def event_list(
    *, project_id: int, filters: EventFilter, limit: int, cursor: tuple[datetime, UUID] | None = None
) -> list[dict[str, Any]]:
    """Raw events newest first, keyset-paginated on (timestamp, uuid) so that events sharing a
    timestamp are neither repeated nor skipped; `limit + 1` rows are read so the caller knows
    whether a next page exists. `timestamp` is the skew-corrected event time."""
    clauses = ["project_id = %(project_id)s"]
    params: dict[str, Any] = {"project_id": project_id, "limit": limit + 1}
    for name in ("event_type", "distinct_id", "session_id"):
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"{name} = %({name})s")
            params[name] = value
    if filters.after is not None:
        clauses.append('"timestamp" >= %(after)s')
        params["after"] = filters.after
    if filters.before is not None:
        clauses.append('"timestamp" < %(before)s')
        params["before"] = filters.before
    if cursor is not None:
        # The plain `"timestamp" <= …` repeats the row comparison's first half so that the
        # planner prunes the day partitions after the cursor; the row comparison alone does not.
        clauses.append('"timestamp" <= %(cursor_time)s AND ("timestamp", uuid) < (%(cursor_time)s, %(cursor_uuid)s)')
        params["cursor_time"], params["cursor_uuid"] = cursor
    rows = _rows(
        f"SELECT {EVENT_FIELDS} FROM {EVENTS} WHERE {' AND '.join(clauses)}"
        ' ORDER BY "timestamp" DESC, uuid DESC LIMIT %(limit)s',
        params,
    )
    for row in rows:
        # Django's psycopg setup leaves jsonb as text for JSONField; this is not a JSONField.
        if isinstance(row["properties"], str):
            row["properties"] = json.loads(row["properties"])
    return rows


def event_count_by_type(*, project_id: int, after: datetime, before: datetime) -> list[dict[str, Any]]:
    """Events per type, most first. Hour-granular: an hour counts when it starts at or after the
    hour of `after` and before `before` (so the range is [floor_hour(after), ceil_hour(before))),
    read from day rollups where whole days fit and hour rollups at the edges, summed in SQL."""
    return user_sets.event_counts(project_id=project_id, after=after, before=before)


Interval = Literal["hour", "day"]
Breakdown = Literal["app_version", "os_name"]
ActiveInterval = Literal["day", "week", "month"]
INTERVALS: tuple[Interval, ...] = ("hour", "day")
BREAKDOWNS: tuple[Breakdown, ...] = ("app_version", "os_name")
ACTIVE_INTERVALS: tuple[ActiveInterval, ...] = ("day", "week", "month")


def bucket_start(moment: datetime | date, interval: str) -> datetime:
    """The UTC bucket of `interval` (hour, day, week from Monday, month) holding `moment`."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC)
        if interval == "hour":
            return moment.replace(minute=0, second=0, microsecond=0)
        moment = moment.date()
    elif interval == "hour":
        raise ValueError("a day has no hour bucket")
    if interval == "week":
        moment -= timedelta(days=moment.weekday())
    elif interval == "month":
        moment = moment.replace(day=1)
    elif interval != "day":
        raise ValueError(f"unknown interval {interval!r}")
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _at_most_max_points(cells: int) -> None:
    """Refuse, before a set is read, an answer of more rows (buckets x types x values) than
    user_sets.MAX_POINTS: an hourly month of 50 types was 47,000 sets read and decoded, then
    refused."""
    if cells > user_sets.MAX_POINTS:
        raise RangeTooLarge(
            "interval",
            f"{cells:,} rows (buckets x event types x breakdown values) is more than {user_sets.MAX_POINTS:,}:"
            " choose a longer interval, a shorter range, an event_type or no breakdown",
        )


def event_aggregate_list(
    *,
    project_id: int,
    interval: Interval,
    after: datetime,
    before: datetime,
    event_type: str | None = None,
    breakdown: Breakdown | None = None,
) -> list[dict[str, Any]]:
    """Counts and exact unique users (persons: query_side/user_sets.py) per interval bucket (UTC)
    and event type, and per breakdown value when asked (an unknown value, stored as '', comes out
    as None). Hour-granular like event_count_by_type: the first bucket may be partial."""
    if interval not in INTERVALS or (breakdown is not None and breakdown not in BREAKDOWNS):
        raise ValueError(f"unknown interval {interval!r} or breakdown {breakdown!r}")
    cells = user_sets.bucket_cells(
        user_sets.Buckets(
            project_id, after, before, interval, None if event_type is None else [event_type], breakdown=breakdown
        ),
        check=_at_most_max_points,
    )
    answer = []
    for bucket, value, type_, count, unique_users in cells:
        item: dict[str, Any] = {"bucket": bucket, "event_type": type_}
        if breakdown:
            item[breakdown] = value or None
        item["count"] = count
        item["unique_users"] = unique_users
        answer.append(item)
    return answer


def day_range(after: datetime, before: datetime) -> tuple[date, date] | None:
    """The UTC days from the day of `after` to the last day starting before `before`."""
    first = after.astimezone(UTC).date()
    end = before.astimezone(UTC)
    last = end.date() if end.time() != time(0) else end.date() - timedelta(days=1)
    return (first, last) if first <= last else None


def active_user_list(
    *, project_id: int, interval: ActiveInterval, after: datetime, before: datetime
) -> list[dict[str, Any]]:
    """Distinct active users (persons) per UTC day, week (ISO, from Monday) or calendar month:
    DAU / WAU / MAU. Day-granular: a day counts when it starts before `before` and is not before
    the day of `after`, so the first and last week or month may be partial."""
    if interval not in ACTIVE_INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    days = day_range(after, before)
    if days is None:
        return []
    sets: dict[datetime, list[BitMap]] = {}
    for day, users in user_sets.active_days(project_id=project_id, first=days[0], last=days[1]).items():
        sets.setdefault(bucket_start(day, interval), []).append(users)
    persons = user_sets.persons_of(project_id)
    return [{"bucket": bucket, "active_users": persons.count(user_sets.union(sets[bucket]))} for bucket in sorted(sets)]


def stickiness_list(*, project_id: int, after: datetime, before: datetime) -> list[dict[str, Any]]:
    """Stickiness: how many users (persons) were active on exactly N of the UTC days in the
    range, for each N that has any; day-granular as active_user_list."""
    days = day_range(after, before)
    if days is None:
        return []
    persons = user_sets.persons_of(project_id)
    daily = user_sets.active_days(project_id=project_id, first=days[0], last=days[1]).values()
    # TRICKY: at_least[k] = the persons active on at least k + 1 of the days so far, kept with
    # set operations only (a bit-sliced counter): each day raises, top level first, the persons
    # of every level it meets to the level above. Days x levels set operations, no loop per person.
    at_least: list[BitMap] = []
    for users in (persons.of(day) for day in daily):
        for level in range(len(at_least), 0, -1):
            raised = at_least[level - 1] & users
            if level == len(at_least):
                if raised:
                    at_least.append(raised)
            else:
                at_least[level] |= raised
        if at_least:
            at_least[0] |= users
        else:
            at_least.append(BitMap(users))
    counts = [len(level) for level in at_least] + [0]
    return [
        {"active_days": n, "users": counts[n - 1] - counts[n]}
        for n in range(1, len(at_least) + 1)
        if counts[n - 1] > counts[n]
    ]


def bad_event_list(*, project_id: int, limit: int, cursor: tuple[datetime, int] | None = None) -> list[dict[str, Any]]:
    """Rejected events newest first, keyset-paginated on (received_at, id); reads limit + 1."""
    where = "project_id = %s"
    params: list[Any] = [project_id]
    if cursor is not None:
        where += " AND (received_at, id) < (%s, %s)"
        params.extend(cursor)
    return _rows(
        f"""SELECT {BAD_EVENTS.column_list(without=("project_id",))} FROM {BAD_EVENTS}
            WHERE {where} ORDER BY received_at DESC, id DESC LIMIT %s""",
        [*params, limit + 1],
    )


# --- Feature-flag exposures and experiment results ---------------------------------------------


def _json(value: Any) -> Any:
    # Django's psycopg setup leaves jsonb as text outside JSONFields (see event_list).
    return json.loads(value) if isinstance(value, str) else value


def flag_exposure_summary(
    *, project_id: int, flag_key: str, after: datetime, before: datetime
) -> dict[str, Any] | None:
    """A flag's exposures per UTC day and variant, and its users per variant; None when the
    project has no such flag. Days are day-granular, as active_user_list: a day counts when it
    starts before `before` and is not before the day of `after`. Users are counted by the time of
    their first exposure, `after` <= first_at < `before`, in their one variant; a user seen with
    several variants (ever, not only in the range) is counted apart, in none of them."""
    if not _rows(
        f"SELECT 1 AS found FROM {FLAG_DEFINITIONS} WHERE project_id = %s AND key = %s", [project_id, flag_key]
    ):
        return None
    where = {"project_id": project_id, "flag_key": flag_key, "after": after, "before": before}
    days = _rows(
        f"""SELECT day, variant, exposure_count AS exposures
            FROM {FLAG_EXPOSURE_DAYS}
            WHERE project_id = %(project_id)s AND flag_key = %(flag_key)s
              AND day >= (%(after)s::timestamptz AT TIME ZONE 'UTC')::date
              AND (day::timestamp AT TIME ZONE 'UTC') < %(before)s
            ORDER BY day, variant""",
        where,
    )
    users = _rows(
        f"""SELECT CASE WHEN cardinality(variants) > 1 THEN NULL ELSE first_variant END AS variant,
                   count(*) AS users
            FROM {FLAG_EXPOSURES}
            WHERE project_id = %(project_id)s AND flag_key = %(flag_key)s
              AND first_at >= %(after)s AND first_at < %(before)s
            GROUP BY 1 ORDER BY 1""",
        where,
    )
    several = sum(row["users"] for row in users if row["variant"] is None)
    return {
        "days": days,
        "users": [row for row in users if row["variant"] is not None],
        "users_with_several_variants": several,
    }


@dataclass(frozen=True)
class ExperimentCounts:
    """An experiment's exposed and converted users per variant over its window, and what SRM
    weighs them against."""

    key: str
    flag_key: str
    start_at: datetime
    end_at: datetime | None
    """As defined: None while the experiment is open."""
    counted_until: datetime
    """The window's end: end_at, or now for an open experiment."""
    archived: bool
    """An archived experiment has no conversions left (the conversions projection drops them)."""
    control: VariantCounts
    tests: tuple[VariantCounts, ...]
    weights: dict[str, float]
    """The flag's assignment weights of control and tests; empty when the flag is gone."""
    users_with_several_variants: int


def experiment_counts(*, project_id: int, key: str, now: datetime) -> ExperimentCounts | None:
    """The counts `flags.stats.experiment_results` takes, in two queries: the experiment with its
    flag's definition, then every exposed user of the flag in the window with, per user, whether
    they converted. None when the project has no such experiment.

    The window is closed, [start_at, end_at or now], as the conversions projection keeps it
    (projections/experiment_conversions.py). Exposed: first exposure in the window, seen with
    exactly one variant (a user seen with several, ever, is counted apart in
    users_with_several_variants, never in a variant). Converted: an exposed user with a
    conversion of this experiment at or after their first exposure and not after the window's
    end; a goal event before exposure is not caused by the variant."""
    found = _rows(
        f"""SELECT e.id, e.key, e.flag_key, e.control, e.tests, e.start_at, e.end_at, e.archived, f.definition
            FROM {EXPERIMENTS} e
            LEFT JOIN {FLAG_DEFINITIONS} f ON f.project_id = e.project_id AND f.key = e.flag_key
            WHERE e.project_id = %s AND e.key = %s""",
        [project_id, key],
    )
    if not found:
        return None
    [experiment] = found
    variants = [experiment["control"], *experiment["tests"]]
    end = experiment["end_at"] if experiment["end_at"] is not None else now
    # TRICKY: the conversions' EXISTS walks their primary key (project, experiment, user, time)
    # once per exposed user: one query for the whole experiment, never one per user.
    rows = _rows(
        f"""SELECT CASE WHEN cardinality(x.variants) > 1 THEN NULL ELSE x.first_variant END AS variant,
                   count(*) AS exposed,
                   count(*) FILTER (WHERE EXISTS (
                       SELECT FROM {EXPERIMENT_CONVERSIONS} c
                       WHERE c.project_id = x.project_id AND c.experiment_id = %(experiment_id)s
                         AND c.distinct_id = x.distinct_id
                         AND c."timestamp" >= x.first_at AND c."timestamp" <= %(end)s
                   )) AS converted
            FROM {FLAG_EXPOSURES} x
            WHERE x.project_id = %(project_id)s AND x.flag_key = %(flag_key)s
              AND x.first_at >= %(start)s AND x.first_at <= %(end)s
              AND (cardinality(x.variants) > 1 OR x.first_variant = ANY(%(variants)s))
            GROUP BY 1""",
        {
            "experiment_id": experiment["id"], "project_id": project_id, "flag_key": experiment["flag_key"],
            "start": experiment["start_at"], "end": end, "variants": variants,
        },
    )  # fmt: skip
    by_variant = {row["variant"]: row for row in rows}

    def counts(variant: str) -> VariantCounts:
        row = by_variant.get(variant, {"exposed": 0, "converted": 0})
        return VariantCounts(key=variant, exposed=row["exposed"], converted=row["converted"])

    weights: dict[str, float] = {}
    if experiment["definition"] is not None:
        definition = msgspec.convert(_json(experiment["definition"]), FlagDefinition)
        weights = {k: w for k, w in assignment_weights(definition).items() if k in variants}
    several = by_variant.get(None)
    return ExperimentCounts(
        key=experiment["key"],
        flag_key=experiment["flag_key"],
        start_at=experiment["start_at"],
        end_at=experiment["end_at"],
        counted_until=end,
        archived=experiment["archived"],
        control=counts(experiment["control"]),
        tests=tuple(counts(test) for test in experiment["tests"]),
        weights=weights,
        users_with_several_variants=several["exposed"] if several else 0,
    )
