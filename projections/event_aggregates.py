"""Event counts and unique users per project, event type and UTC hour, by app version and OS.

Counts go to rm_event_counts; one row per (user, event type, hour, version, OS) goes to
rm_event_users, from which any range's unique users are counted exactly.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from projections import read_models
from projections.projection import StoredEvent, VerifyQuery
from projections.upsert import upsert

CountKey = tuple[int, str, datetime, str, str]
UserKey = tuple[int, str, datetime, str, str, str]
# The primary keys, in key-tuple order, with their PostgreSQL types.
COUNT_KEY = [
    ("project_id", "int8"),
    ("event_type", "text"),
    ("bucket", "timestamptz"),
    ("app_version", "text"),
    ("os_name", "text"),
]
USER_KEY = [*COUNT_KEY[:3], ("distinct_id", "text"), *COUNT_KEY[3:]]


@dataclass
class Changes:
    counts: Counter[CountKey] = field(default_factory=Counter)
    users: Counter[UserKey] = field(default_factory=Counter)


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour holding `moment` (which may carry any UTC offset)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


class EventAggregates:
    name: str = "event_aggregates"
    tables: Sequence[str] = (read_models.EVENT_COUNTS, read_models.EVENT_USERS)

    def apply(self, events: Sequence[StoredEvent]) -> Changes:
        # One counter update per event (C-speed Counter over a generator), then the counts
        # summed from the per-user rows: half the hashing of updating both per event.
        users: Counter[UserKey] = Counter(
            (e.project_id, e.event_type, hour_of(e.timestamp), e.distinct_id, e.app_version or "", e.os_name or "")
            for e in events
        )
        counts: Counter[CountKey] = Counter()
        for (project_id, event_type, bucket, _, version, os_name), n in users.items():
            counts[(project_id, event_type, bucket, version, os_name)] += n
        return Changes(counts, users)

    def write(self, cursor: Any, changes: Changes, tables: Mapping[str, str]) -> None:
        if changes.counts:
            upsert(
                cursor,
                table=tables[read_models.EVENT_COUNTS],
                columns=[*COUNT_KEY, ("event_count", "int8")],
                key=[name for name, _ in COUNT_KEY],
                update="event_count = t.event_count + EXCLUDED.event_count",
                rows=((*key, n) for key, n in changes.counts.items()),
            )
        if changes.users:
            upsert(
                cursor,
                table=tables[read_models.EVENT_USERS],
                columns=[*USER_KEY, ("event_count", "int8")],
                key=[name for name, _ in USER_KEY],
                update="event_count = t.event_count + EXCLUDED.event_count",
                rows=((*key, n) for key, n in changes.users.items()),
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
