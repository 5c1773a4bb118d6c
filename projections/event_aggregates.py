"""Event rollups per project, event type, app version and OS, by UTC hour and by UTC day: the
events and the set of their users (schema.EVENT_ROLLUPS). Counts over a range sum the rows;
unique users over a range, a week or a breakdown union their sets, exactly. Beside them the same
per event type alone (schema.EVENT_TYPE_ROLLUPS), for the questions with no app_version or
os_name in them: one row a bucket and type to read instead of one for each version and OS.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from contracts import schema
from contracts.user_sets import BitMap
from projections.projection import EventsOnly, StoredEvent, VerifyQuery
from projections.user_numbers import numbers_known, numbers_of
from projections.user_sets import Key, add_to_sets, remove_from_sets, sets_verify_query

GRAINS = ("hour", "day")
# (project, event type, hour, distinct_id, app_version, os_name)
UserHour = tuple[int, str, datetime, str, str, str]


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour holding `moment` (which may carry any UTC offset)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def rollup_keys(project_id: int, event_type: str, hour: datetime, version: str, os_name: str) -> tuple[Key, Key]:
    """The hour's and the day's row keys of an event in `hour`."""
    day = hour.replace(hour=0)
    return (
        (project_id, "hour", hour, event_type, version, os_name),
        (project_id, "day", day, event_type, version, os_name),
    )


def type_key(key: Key) -> Key:
    """The EVENT_TYPE_ROLLUPS key of an EVENT_ROLLUPS key: its first four columns (project,
    grain, bucket, event type), without the version and the OS."""
    return key[:4]


def by_type(rows: Mapping[Key, tuple[int, BitMap]]) -> dict[Key, tuple[int, BitMap]]:
    """EVENT_ROLLUPS rows (or changes to them) summed into their EVENT_TYPE_ROLLUPS keys."""
    counts: dict[Key, int] = {}
    sets: dict[Key, list[BitMap]] = {}
    for key, (count, users) in rows.items():
        short = type_key(key)
        counts[short] = counts.get(short, 0) + count
        sets.setdefault(short, []).append(users)
    return {key: (counts[key], BitMap.union(*sets[key])) for key in counts}


class EventAggregates(EventsOnly):
    name: str = "event_aggregates"
    tables: Sequence[str] = (schema.EVENT_ROLLUPS.name, schema.EVENT_TYPE_ROLLUPS.name)
    # Past retention (projections/retention.py): a bucket that starts at or after the watermark.
    retained_windows: Mapping[str, str] = {
        schema.EVENT_ROLLUPS.name: "{t}.bucket >= %(retained_from)s",
        schema.EVENT_TYPE_ROLLUPS.name: "{t}.bucket >= %(retained_from)s",
    }

    def apply(self, events: Sequence[StoredEvent], inputs: None = None) -> Counter[UserHour]:
        # One C-speed Counter update per event; the rows are built from its (fewer) keys.
        return Counter(
            (e.project_id, e.event_type, hour_of(e.timestamp), e.distinct_id, e.app_version or "", e.os_name or "")
            for e in events
        )

    def write(self, cursor: Any, changes: Counter[UserHour], tables: Mapping[str, str]) -> None:
        if not changes:
            return
        numbers = numbers_of(cursor, {(key[0], key[3]) for key in changes})
        # Each key's events and its users' numbers, gathered in lists: a set built once from a
        # list is cheaper than one grown number by number.
        rows: dict[Key, tuple[list[int], list[int]]] = {}
        for (project_id, event_type, hour, distinct_id, version, os_name), n in changes.items():
            number = numbers[(project_id, distinct_id)]
            for key in rollup_keys(project_id, event_type, hour, version, os_name):
                row = rows.get(key)
                if row is None:
                    rows[key] = ([n], [number])
                else:
                    row[0].append(n)
                    row[1].append(number)
        detailed = {key: (sum(counts), BitMap(users)) for key, (counts, users) in rows.items()}
        add_to_sets(cursor, table=schema.EVENT_ROLLUPS, into=tables[schema.EVENT_ROLLUPS.name], changes=detailed)
        add_to_sets(
            cursor,
            table=schema.EVENT_TYPE_ROLLUPS,
            into=tables[schema.EVENT_TYPE_ROLLUPS.name],
            changes=by_type(detailed),
        )

    def erase(
        self,
        cursor: Any,
        tables: Mapping[str, str],
        project_id: int,
        distinct_ids: Sequence[str],
        upto: tuple[str, int],
    ) -> int:
        """Take the ids' users out of every row their events reached, and those events out of
        the counts; the rows are the buckets of their events at or before the checkpoint,
        still in the event store (an erasure calls this before it deletes them)."""
        cursor.execute(
            f"""SELECT event_type, date_trunc('hour', "timestamp", 'UTC'), coalesce(app_version, ''),
                       coalesce(os_name, ''), count(*)
                FROM {schema.EVENTS} e
                WHERE project_id = %s AND distinct_id = ANY(%s) AND (e.xact_id, e.position) <= (%s::xid8, %s)
                GROUP BY 1, 2, 3, 4""",
            [project_id, list(distinct_ids), *upto],
        )
        shares: Counter[Key] = Counter()
        for event_type, hour, version, os_name, n in cursor.fetchall():
            for key in rollup_keys(project_id, event_type, hour, version, os_name):
                shares[key] += n
        if not shares:
            return 0
        users = BitMap(numbers_known(cursor, project_id, distinct_ids))
        type_shares: Counter[Key] = Counter()
        for key, n in shares.items():
            type_shares[type_key(key)] += n
        return sum(
            remove_from_sets(cursor, table=table, into=tables[table.name], changes=changed, users=users)
            for table, changed in ((schema.EVENT_ROLLUPS, shares), (schema.EVENT_TYPE_ROLLUPS, type_shares))
        )

    def verify_queries(self) -> list[VerifyQuery]:
        return [
            sets_verify_query(
                schema.EVENT_ROLLUPS, _expected("coalesce(e.app_version, '')", "coalesce(e.os_name, '')")
            ),
            sets_verify_query(schema.EVENT_TYPE_ROLLUPS, _expected()),
        ]


def _expected(*split: str) -> str:
    """Per rollup key (with `split`'s columns after the event type) and user: their events."""
    columns = ["e.project_id", "g.grain", """date_trunc(g.grain, e."timestamp", 'UTC')""", "e.event_type", *split]
    return f"""SELECT {", ".join(columns)}, n.number, count(*)
               FROM {schema.EVENTS} e
               JOIN {schema.USER_NUMBERS} n ON n.project_id = e.project_id AND n.distinct_id = e.distinct_id
               CROSS JOIN (VALUES ('hour'), ('day')) g(grain)
               WHERE {{upto}} GROUP BY {", ".join(str(i) for i in range(1, len(columns) + 2))}"""
