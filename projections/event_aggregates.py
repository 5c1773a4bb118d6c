"""Event counts and unique users per project, event type and UTC hour, by app version and OS.

Counts go to rm_event_counts; one row per (user, event type, hour, version, OS) goes to
rm_event_users, from which any range's unique users are counted exactly.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from projections import read_models
from projections.projection import StoredEvent, VerifyQuery

CountKey = tuple[int, str, datetime, str, str]
UserKey = tuple[int, str, datetime, str, str, str]


@dataclass
class Changes:
    counts: Counter[CountKey] = field(default_factory=Counter)
    users: Counter[UserKey] = field(default_factory=Counter)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


class EventAggregates:
    name = "event_aggregates"
    tables = (read_models.EVENT_COUNTS, read_models.EVENT_USERS)

    def apply(self, events: Sequence[StoredEvent]) -> Changes:
        changes = Changes()
        counts, users = changes.counts, changes.users
        for event in events:
            bucket = hour_of(event.timestamp)
            version = event.app_version or ""
            os_name = event.os_name or ""
            counts[(event.project_id, event.event_type, bucket, version, os_name)] += 1
            users[(event.project_id, event.event_type, bucket, event.distinct_id, version, os_name)] += 1
        return changes

    def write(self, cursor: Any, changes: Changes, tables: Mapping[str, str]) -> None:
        if changes.counts:
            keys = list(changes.counts)
            cursor.execute(
                f"""
                INSERT INTO {tables[read_models.EVENT_COUNTS]} AS t
                    (project_id, event_type, bucket, app_version, os_name, event_count)
                SELECT * FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[],
                                     %s::text[], %s::bigint[])
                ON CONFLICT (project_id, event_type, bucket, app_version, os_name)
                DO UPDATE SET event_count = t.event_count + EXCLUDED.event_count
                """,
                [*map(list, zip(*keys, strict=True)), [changes.counts[k] for k in keys]],
            )
        if changes.users:
            keys_u = list(changes.users)
            cursor.execute(
                f"""
                INSERT INTO {tables[read_models.EVENT_USERS]} AS t
                    (project_id, event_type, bucket, distinct_id, app_version, os_name, event_count)
                SELECT * FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[],
                                     %s::text[], %s::text[], %s::bigint[])
                ON CONFLICT (project_id, event_type, bucket, distinct_id, app_version, os_name)
                DO UPDATE SET event_count = t.event_count + EXCLUDED.event_count
                """,
                [*map(list, zip(*keys_u, strict=True)), [changes.users[k] for k in keys_u]],
            )

    def verify_queries(self) -> list[VerifyQuery]:
        hour = "date_trunc('hour', e.\"timestamp\", 'UTC')"
        return [
            VerifyQuery(
                read_models.EVENT_COUNTS,
                ["project_id", "event_type", "bucket", "app_version", "os_name", "event_count"],
                f"""SELECT e.project_id, e.event_type, {hour}, coalesce(e.app_version, ''),
                           coalesce(e.os_name, ''), count(*)
                    FROM tidelog_events e WHERE {{upto}} GROUP BY 1, 2, 3, 4, 5""",
            ),
            VerifyQuery(
                read_models.EVENT_USERS,
                [
                    "project_id",
                    "event_type",
                    "bucket",
                    "distinct_id",
                    "app_version",
                    "os_name",
                    "event_count",
                ],
                f"""SELECT e.project_id, e.event_type, {hour}, e.distinct_id,
                           coalesce(e.app_version, ''), coalesce(e.os_name, ''), count(*)
                    FROM tidelog_events e WHERE {{upto}} GROUP BY 1, 2, 3, 4, 5, 6""",
            ),
        ]
