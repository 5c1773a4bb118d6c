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
from projections.projection import EventsOnly, ReadModelDrift, StoredEvent, VerifyQuery
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

    def erase(
        self,
        cursor: Any,
        tables: Mapping[str, str],
        project_id: int,
        distinct_ids: Sequence[str],
        upto: tuple[str, int],
    ) -> int:
        """Delete the ids' per-user rows and subtract their sums from the counts. The per-user
        rows hold exactly what these ids' events at or before the checkpoint added to each
        count (write() adds the same per-user sums to both tables), so `upto` is not needed."""
        users, counts = tables[schema.EVENT_USERS.name], tables[schema.EVENT_COUNTS.name]
        same_key = (
            "(c.event_type, c.bucket, c.app_version, c.os_name) = (s.event_type, s.bucket, s.app_version, s.os_name)"
        )
        # TRICKY: one statement, so every part sees the same snapshot; a count row is either
        # deleted (its whole count was these ids') or lowered, never both.
        cursor.execute(
            f"""WITH gone AS (
                    DELETE FROM {users} WHERE project_id = %(project_id)s AND distinct_id = ANY(%(distinct_ids)s)
                    RETURNING event_type, bucket, app_version, os_name, event_count),
                share AS (
                    SELECT event_type, bucket, app_version, os_name, sum(event_count)::int8 AS n
                    FROM gone GROUP BY 1, 2, 3, 4),
                emptied AS (
                    DELETE FROM {counts} c USING share s
                    WHERE c.project_id = %(project_id)s AND {same_key} AND c.event_count = s.n
                    RETURNING 1),
                lowered AS (
                    UPDATE {counts} c SET event_count = c.event_count - s.n FROM share s
                    WHERE c.project_id = %(project_id)s AND {same_key} AND c.event_count <> s.n
                    RETURNING c.event_count)
                SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM share), (SELECT count(*) FROM emptied),
                       (SELECT count(*) FROM lowered), (SELECT count(*) FROM lowered WHERE event_count < 0)""",
            {"project_id": project_id, "distinct_ids": list(distinct_ids)},
        )
        gone, shares, emptied, lowered, negative = cursor.fetchone()
        if emptied + lowered != shares or negative:
            raise ReadModelDrift(
                f"{counts}: {shares - emptied - lowered} counts missing and {negative} smaller than the per-user"
                f" rows of {users} that make them up; verify and replay {self.name}"
            )
        return int(gone + emptied + lowered)

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
