"""Event counts and unique users per project, event type and UTC hour, by app version and OS.

Counts go to schema.EVENT_COUNTS; one row per (user, event type, hour, version, OS) goes to
schema.EVENT_USERS, from which any range's unique users are counted exactly.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contracts import schema
from projections.projection import EventsOnly, StoredEvent, VerifyQuery
from projections.upsert import upsert

CountKey = tuple[int, str, datetime, str, str]
UserKey = tuple[int, str, datetime, str, str, str]


@dataclass
class Changes:
    counts: Counter[CountKey] = field(default_factory=Counter)
    users: Counter[UserKey] = field(default_factory=Counter)


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour holding `moment` (which may carry any UTC offset)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


class EventAggregates(EventsOnly):
    name: str = "event_aggregates"
    tables: Sequence[str] = (schema.EVENT_COUNTS.name, schema.EVENT_USERS.name)

    def apply(self, events: Sequence[StoredEvent], inputs: None = None) -> Changes:
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
                table=schema.EVENT_COUNTS,
                into=tables[schema.EVENT_COUNTS.name],
                update="event_count = t.event_count + EXCLUDED.event_count",
                rows=((*key, n) for key, n in changes.counts.items()),
            )
        if changes.users:
            upsert(
                cursor,
                table=schema.EVENT_USERS,
                into=tables[schema.EVENT_USERS.name],
                update="event_count = t.event_count + EXCLUDED.event_count",
                rows=((*key, n) for key, n in changes.users.items()),
            )

    def verify_queries(self) -> list[VerifyQuery]:
        hour = "date_trunc('hour', e.\"timestamp\", 'UTC')"
        return [
            VerifyQuery(
                schema.EVENT_COUNTS,
                f"""SELECT e.project_id, e.event_type, {hour}, coalesce(e.app_version, ''),
                           coalesce(e.os_name, ''), count(*)
                    FROM {schema.EVENTS} e WHERE {{upto}} GROUP BY 1, 2, 3, 4, 5""",
            ),
            VerifyQuery(
                schema.EVENT_USERS,
                f"""SELECT e.project_id, e.event_type, {hour}, e.distinct_id,
                           coalesce(e.app_version, ''), coalesce(e.os_name, ''), count(*)
                    FROM {schema.EVENTS} e WHERE {{upto}} GROUP BY 1, 2, 3, 4, 5, 6""",
            ),
        ]
