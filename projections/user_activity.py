"""Active days: per project and UTC day, the events and the set of users active that day
(schema.ACTIVE_DAYS). Powers DAU/WAU/MAU, stickiness and retention's returns."""

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date
from typing import Any

from contracts import schema
from contracts.user_sets import BitMap
from projections.projection import EventsOnly, StoredEvent, VerifyQuery
from projections.user_numbers import numbers_known, numbers_of
from projections.user_sets import Key, add_to_sets, remove_from_sets, sets_verify_query

UserDay = tuple[int, date, str]


class UserActivity(EventsOnly):
    name: str = "user_activity"
    tables: Sequence[str] = (schema.ACTIVE_DAYS.name,)
    # Past retention (projections/retention.py): a UTC day that starts at or after the watermark.
    retained_windows: Mapping[str, str] = {
        schema.ACTIVE_DAYS.name: "({t}.day::timestamp AT TIME ZONE 'UTC') >= %(retained_from)s"
    }

    def apply(self, events: Sequence[StoredEvent], inputs: None = None) -> Counter[UserDay]:
        return Counter((e.project_id, e.timestamp.astimezone(UTC).date(), e.distinct_id) for e in events)

    def write(self, cursor: Any, changes: Counter[UserDay], tables: Mapping[str, str]) -> None:
        if not changes:
            return
        numbers = numbers_of(cursor, {(project_id, distinct_id) for project_id, _, distinct_id in changes})
        rows: dict[Key, tuple[int, BitMap]] = {}
        for (project_id, day, distinct_id), n in changes.items():
            key = (project_id, day)
            count, users = rows.get(key) or (0, BitMap())
            users.add(numbers[(project_id, distinct_id)])
            rows[key] = (count + n, users)
        add_to_sets(cursor, table=schema.ACTIVE_DAYS, into=tables[schema.ACTIVE_DAYS.name], changes=rows)

    def erase(
        self,
        cursor: Any,
        tables: Mapping[str, str],
        project_id: int,
        distinct_ids: Sequence[str],
        upto: tuple[str, int],
    ) -> int:
        """Take the ids' users and events out of the days of their events at or before the
        checkpoint (still in the event store: an erasure calls this before it deletes them)."""
        cursor.execute(
            f"""SELECT ("timestamp" AT TIME ZONE 'UTC')::date, count(*) FROM {schema.EVENTS} e
                WHERE project_id = %s AND distinct_id = ANY(%s) AND (e.xact_id, e.position) <= (%s::xid8, %s)
                GROUP BY 1""",
            [project_id, list(distinct_ids), *upto],
        )
        shares: dict[Key, int] = {(project_id, day): n for day, n in cursor.fetchall()}
        if not shares:
            return 0
        users = BitMap(numbers_known(cursor, project_id, distinct_ids))
        table = tables[schema.ACTIVE_DAYS.name]
        return remove_from_sets(cursor, table=schema.ACTIVE_DAYS, into=table, changes=shares, users=users)

    def verify_queries(self) -> list[VerifyQuery]:
        return [
            sets_verify_query(
                schema.ACTIVE_DAYS,
                f"""SELECT e.project_id, (e."timestamp" AT TIME ZONE 'UTC')::date, n.number, count(*)
                    FROM {schema.EVENTS} e
                    JOIN {schema.USER_NUMBERS} n ON n.project_id = e.project_id AND n.distinct_id = e.distinct_id
                    WHERE {{upto}} GROUP BY 1, 2, 3""",
            )
        ]
