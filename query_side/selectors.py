"""The query side's reads, in plain SQL: read models for aggregates, the event store for raw
event listings. Every selector takes a project id and filters by it first: no query here may
ever return another project's rows.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connections

from projections import read_models


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


EVENT_FIELDS = (
    'uuid, event_type, distinct_id, "timestamp", received_at, client_timestamp, sent_at, skew_ms, '
    "session_id, device_id, app_version, os_name, os_version, properties"
)


def event_list(
    *, project_id: int, filters: EventFilter, limit: int, cursor: tuple[datetime, UUID] | None = None
) -> list[dict[str, Any]]:
    """Raw events newest first, keyset-paginated on (timestamp, uuid); `limit + 1` rows are read
    so the caller knows whether a next page exists."""
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
        clauses.append('("timestamp", uuid) < (%(cursor_time)s, %(cursor_uuid)s)')
        params["cursor_time"], params["cursor_uuid"] = cursor
    rows = _rows(
        f"SELECT {EVENT_FIELDS} FROM tidelog_events WHERE {' AND '.join(clauses)}"
        ' ORDER BY "timestamp" DESC, uuid DESC LIMIT %(limit)s',
        params,
    )
    for row in rows:
        # Django's psycopg setup leaves jsonb as text for JSONField; this is not a JSONField.
        if isinstance(row["properties"], str):
            row["properties"] = json.loads(row["properties"])
    return rows


def event_count_by_type(*, project_id: int, after: datetime, before: datetime) -> list[dict[str, Any]]:
    """Events per type over hour buckets in [hour(after), before)."""
    return _rows(
        f"""SELECT event_type, sum(event_count)::bigint AS count
            FROM {read_models.EVENT_COUNTS}
            WHERE project_id = %s AND bucket >= date_trunc('hour', %s::timestamptz, 'UTC') AND bucket < %s
            GROUP BY event_type ORDER BY count DESC, event_type""",
        [project_id, after, before],
    )


def event_aggregate_list(
    *,
    project_id: int,
    interval: str,
    after: datetime,
    before: datetime,
    event_type: str | None,
    breakdown: str | None,
) -> list[dict[str, Any]]:
    """Counts and exact unique users per interval bucket and event type (and breakdown value)."""
    assert interval in ("hour", "day") and breakdown in (None, "app_version", "os_name")
    extra = f", {breakdown}" if breakdown else ""
    where = (
        "project_id = %(project_id)s AND bucket < %(before)s"
        " AND bucket >= date_trunc('hour', %(after)s::timestamptz, 'UTC')"
    )
    params: dict[str, Any] = {"project_id": project_id, "after": after, "before": before, "interval": interval}
    if event_type is not None:
        where += " AND event_type = %(event_type)s"
        params["event_type"] = event_type
    bucket = "date_trunc(%(interval)s, bucket, 'UTC')"
    return _rows(
        f"""WITH counts AS (
                SELECT {bucket} AS bucket, event_type{extra}, sum(event_count)::bigint AS count
                FROM {read_models.EVENT_COUNTS} WHERE {where} GROUP BY 1, 2{", 3" if breakdown else ""}
            ), users AS (
                SELECT {bucket} AS bucket, event_type{extra}, count(DISTINCT distinct_id) AS unique_users
                FROM {read_models.EVENT_USERS} WHERE {where} GROUP BY 1, 2{", 3" if breakdown else ""}
            )
            SELECT bucket, event_type{extra}, count, coalesce(unique_users, 0) AS unique_users
            FROM counts LEFT JOIN users USING (bucket, event_type{extra})
            ORDER BY bucket, event_type{extra}""",
        params,
    )


def active_user_list(*, project_id: int, interval: str, after: datetime, before: datetime) -> list[dict[str, Any]]:
    """Distinct active users per day, week (ISO, from Monday) or month: DAU / WAU / MAU."""
    assert interval in ("day", "week", "month")
    return _rows(
        f"""SELECT date_trunc(%s, day::timestamp)::date AS bucket, count(DISTINCT distinct_id) AS active_users
            FROM {read_models.USER_DAYS}
            WHERE project_id = %s AND day >= (%s::timestamptz AT TIME ZONE 'UTC')::date
              AND (day::timestamp AT TIME ZONE 'UTC') < %s
            GROUP BY 1 ORDER BY 1""",
        [interval, project_id, after, before],
    )


def bad_event_list(*, project_id: int, limit: int, cursor: tuple[datetime, int] | None = None) -> list[dict[str, Any]]:
    """Rejected events newest first, keyset-paginated on (received_at, id); reads limit + 1."""
    where = "project_id = %s"
    params: list[Any] = [project_id]
    if cursor is not None:
        where += " AND (received_at, id) < (%s, %s)"
        params.extend(cursor)
    return _rows(
        f"""SELECT id, received_at, error_code, field, message, payload FROM tidelog_bad_events
            WHERE {where} ORDER BY received_at DESC, id DESC LIMIT %s""",
        [*params, limit + 1],
    )
