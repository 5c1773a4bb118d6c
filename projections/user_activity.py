"""User-day activity: one row per project, UTC day and user (events, first and last seen).
Powers DAU/WAU/MAU and retention."""

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from contracts import schema
from projections.projection import EventsOnly, StoredEvent, VerifyQuery
from projections.upsert import upsert

DayKey = tuple[int, date, str]


class UserActivity(EventsOnly):
    name: str = "user_activity"
    tables: Sequence[str] = (schema.USER_DAYS.name,)

    def apply(self, events: Sequence[StoredEvent], inputs: None = None) -> dict[DayKey, list[Any]]:
        days: dict[DayKey, list[Any]] = {}
        for event in events:
            moment: datetime = event.timestamp
            key = (event.project_id, moment.astimezone(UTC).date(), event.distinct_id)
            seen = days.get(key)
            if seen is None:
                days[key] = [1, moment, moment]
            else:
                seen[0] += 1
                if moment < seen[1]:
                    seen[1] = moment
                if moment > seen[2]:
                    seen[2] = moment
        return days

    def write(self, cursor: Any, changes: dict[DayKey, list[Any]], tables: Mapping[str, str]) -> None:
        if not changes:
            return
        upsert(
            cursor,
            table=schema.USER_DAYS,
            into=tables[schema.USER_DAYS.name],
            update="""event_count = t.event_count + EXCLUDED.event_count,
                first_seen = least(t.first_seen, EXCLUDED.first_seen),
                last_seen = greatest(t.last_seen, EXCLUDED.last_seen)""",
            rows=((*key, *seen) for key, seen in changes.items()),
        )

    def erase(
        self,
        cursor: Any,
        tables: Mapping[str, str],
        project_id: int,
        distinct_ids: Sequence[str],
        upto: tuple[str, int],
    ) -> int:
        """Every row is one user's: delete the ids' rows."""
        cursor.execute(
            f"DELETE FROM {tables[schema.USER_DAYS.name]} WHERE project_id = %s AND distinct_id = ANY(%s)",
            [project_id, list(distinct_ids)],
        )
        return int(cursor.rowcount)

    def verify_queries(self) -> list[VerifyQuery]:
        return [
            VerifyQuery(
                schema.USER_DAYS,
                f"""SELECT e.project_id, (e."timestamp" AT TIME ZONE 'UTC')::date, e.distinct_id,
                          count(*), min(e."timestamp"), max(e."timestamp")
                   FROM {schema.EVENTS} e WHERE {{upto}} GROUP BY 1, 2, 3""",
            )
        ]
