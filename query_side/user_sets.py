"""Unique users from sets (contracts/user_sets.py): read the rollup rows a range needs, union
their sets, map the union to persons, count. Exact: nothing here estimates.

Persons: the read models' sets hold each distinct_id's number (schema.USER_NUMBERS). An id
merged into a person with other ids is an alias (schema.PERSON_ALIASES) of the person's number,
so a set maps to its persons by swapping its aliases for their persons' numbers, at query time:
a merge recounts every past range at once. The person's number is an identified id's where it
has one (projections/people.py), so an app's usual merge (anonymous device id, then a login)
leaves only the anonymous days' numbers to swap.
"""

from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import connections
from pyroaring import AbstractBitMap, FrozenBitMap

from contracts import schema
from contracts.user_sets import BitMap, decode
from query_side.row_cache import cache, fetch_binary, fetch_cached, fetch_groups

Grain = Literal["hour", "day"]
MAX_POINTS = 20_000
"""The most values (buckets x series, or result rows) one aggregate answer may hold: its size
bound (an hourly breakdown over a month was 15.7 MB of JSON before there was one)."""
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _cursor() -> Any:
    return connections[settings.QUERY_DB_ALIAS].cursor()


@dataclass(frozen=True)
class Persons:
    """A project's aliases: `numbers` holds every alias; `aliases` (sorted) and `canonical` are
    the same aliases and their persons' numbers, as parallel uint32 arrays. Shared by the
    requests of a process (persons_of): never changed in place."""

    numbers: AbstractBitMap
    aliases: npt.NDArray[np.uint32]
    canonical: npt.NDArray[np.uint32]
    version: tuple[Any, ...] = ()
    """What names these aliases (the table's identity and the project's alias version): an
    answer computed with them may be kept under it."""
    _changed: tuple[tuple[Any, ...], AbstractBitMap] | None = field(default=None, compare=False, repr=False)
    """changed_since's last answer, by the other aliases' version (not the object: each would
    hold the one before it, a chain of every version a process saw)."""

    @cached_property
    def lookup(self) -> npt.NDArray[np.uint32]:
        """Each number up to the largest alias at its own index: an alias's person's number,
        any other number itself. One gather swaps a set's aliases, where a binary search in
        `aliases` cost 9 ms of a month's event-aggregates at 10M events (1,643 cells)."""
        found = np.arange(int(self.aliases.max(initial=0)) + 1, dtype=np.uint32)
        found[self.aliases] = self.canonical
        return found

    def persons(self, numbers: npt.NDArray[np.int64], top: int) -> npt.NDArray[np.int64]:
        """Each of these numbers' person's number (an alias's canonical, any other itself), in
        one gather: a funnel's events, not a set. `top`: the largest of the numbers. (int64
        indexes into the uint32 lookup, widened after: a third of the time of the other ways.)"""
        lookup = self.lookup
        if top >= len(lookup):  # numbers past the largest alias are no alias
            lookup = np.concatenate([lookup, np.arange(len(lookup), top + 1, dtype=np.uint32)])
        return lookup[numbers].astype(np.int64)

    def changed_since(self, before: "Persons") -> AbstractBitMap:
        """The numbers whose person differs between `before`'s aliases and these: a set of users
        holding none of them has the same persons under both (its count is unchanged). Usually
        the few ids a batch's logins merged; kept for the last `before` asked."""
        memo = self._changed
        if memo is not None and memo[0] == before.version:
            return memo[1]
        old, new = before.lookup, self.lookup
        size = max(len(old), len(new))
        # Each lookup to the same length: a number past one's end is no alias there (itself).
        old = np.concatenate([old, np.arange(len(old), size, dtype=np.uint32)])
        new = np.concatenate([new, np.arange(len(new), size, dtype=np.uint32)])
        changed = FrozenBitMap(array("I", np.flatnonzero(old != new).astype(np.uint32).tobytes()))
        object.__setattr__(self, "_changed", (before.version, changed))  # a memo: frozen otherwise
        return changed

    def of(self, users: BitMap) -> BitMap:
        """The persons' numbers of a set of users' numbers. Vectorized: the aliases present are
        found in the sorted array by binary search, swapped by one gather, and sorted before the
        set is built (Roaring builds from sorted input several times faster). A dict lookup per
        alias cost 0.3 s of a month's event-aggregates at 10M events."""
        merged = users & self.numbers
        if not merged:
            return users
        present = np.frombuffer(merged.to_array(), dtype=np.uint32)
        swapped = np.sort(self.lookup[present])
        return (users - self.numbers) | BitMap(array("I", swapped.tobytes()))

    def count(self, users: AbstractBitMap) -> int:
        """len(self.of(users)) without building it: the users who are no alias, plus the
        persons of the aliases present who are not among those users already. (A person's
        number is never an alias, so no person counts twice.)"""
        merged = users & self.numbers
        if not merged:
            return len(users)
        present = np.frombuffer(merged.to_array(), dtype=np.uint32)
        persons = BitMap(array("I", np.sort(self.lookup[present]).tobytes()))
        return len(users) - len(merged) + persons.difference_cardinality(users)


def persons_of(project_id: int) -> Persons:
    """The project's aliases, kept decoded in the process's cache (query_side/row_cache.py) by
    their version (schema.PERSON_ALIAS_VERSIONS) and the aliases table's own identity (a replay
    swaps in another table): one small read while they are unchanged, where reading them was
    ~10 ms of every request at 10M events (44k aliases)."""
    rows_cache = cache()
    database = connections[settings.QUERY_DB_ALIAS].settings_dict["NAME"]
    if rows_cache.budget > 0:
        [version] = fetch_binary(f"SELECT {_ALIASES_VERSION}", [project_id])
        held = rows_cache.get((database, str(schema.PERSON_ALIASES), "persons", *version))
        if held is not None:
            return held  # type: ignore[no-any-return]
    [row] = fetch_binary(f"SELECT {_ALIASES_VERSION}, {_ALIASES}", [project_id, project_id])
    persons = _persons(bytes(row[-1]), (database, *row[:-1]))
    if rows_cache.budget > 0:
        # Held with its lookup built, what it takes counted: 4 bytes a number up to the largest
        # alias, and ~16 an alias.
        size = 4 * len(persons.lookup) + 2 * len(row[-1])
        rows_cache.put((database, str(schema.PERSON_ALIASES), "persons", *row[:-1]), persons, size)
    return persons


# The aliases table's identity and the project's alias version, in the snapshot of the statement
# that reads the aliases themselves where they are read (a version read before the aliases could
# name newer ones than were read). With the version row's cmin: a transaction that changes the
# aliases twice writes its one id twice (only a test reads inside a writer's transaction).
_ALIASES_VERSION = f"""'{schema.PERSON_ALIASES}'::regclass::oid::int8,
    (SELECT ROW(version, cmin)::text FROM {schema.PERSON_ALIAS_VERSIONS} WHERE project_id = %s)"""
# The aliases in one bytea of (number, canonical) pairs, 4-byte big-endian each, sorted in
# Python: unordered and binary, the load costs a third of two ordered int4 arrays (10 ms against
# 34 ms for 44k aliases; array_agg's ORDER BY and the arrays' text were the rest).
_ALIASES = f"""(SELECT coalesce(string_agg(int4send(number) || int4send(canonical), ''), '')
    FROM {schema.PERSON_ALIASES} WHERE project_id = %s)"""


def _persons(blob: bytes, version: tuple[Any, ...]) -> Persons:
    pairs = np.frombuffer(blob, dtype=">u4").reshape(-1, 2).astype(np.uint32)
    pairs = pairs[np.argsort(pairs[:, 0])]
    aliases, canonical = np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])
    return Persons(FrozenBitMap(array("I", aliases.tobytes())), aliases, canonical, version)


# The same in SQL, for the questions only raw events answer (a funnel, a property filter): the
# person of each row of `u` (any table with project_id and distinct_id), as text: its person's
# number, or its own where it has no alias, or 'id:' and the id where no projection numbered it yet.
JOIN_PERSON = f"""LEFT JOIN {schema.USER_NUMBERS} un ON un.project_id = u.project_id AND un.distinct_id = u.distinct_id
    LEFT JOIN {schema.PERSON_ALIASES} pa ON pa.project_id = u.project_id AND pa.number = un.number"""
PERSON = "coalesce(pa.canonical::text, un.number::text, 'id:' || u.distinct_id)"


# --- Ranges over the rollups -------------------------------------------------------------------


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


@dataclass(frozen=True)
class Span:
    """The rollup rows of one grain with start <= bucket < end."""

    grain: Grain
    start: datetime
    end: datetime


def spans(after: datetime, before: datetime, *, hourly: bool) -> list[Span]:
    """The rows covering [floor_hour(after), ceil_hour(before)): whole days from the day rows,
    the hours at the edges from the hour rows (or hours throughout, for hourly buckets). The
    range is hour-granular: an hour counts when it starts before `before`."""
    start, end = floor_hour(after), ceil_hour(before)
    if start >= end:
        return []
    first_day = start.replace(hour=0)
    if first_day < start:
        first_day += DAY
    last_day = end.replace(hour=0)
    if hourly or first_day >= last_day:
        return [Span("hour", start, end)]
    parts = [Span("day", first_day, last_day)]
    if start < first_day:
        parts.insert(0, Span("hour", start, first_day))
    if last_day < end:
        parts.append(Span("hour", last_day, end))
    return parts


def rollup_where(
    project_id: int,
    after: datetime,
    before: datetime,
    hourly: bool,
    event_types: Sequence[str] | None,
    app_version: str | None,
    os_name: str | None,
) -> tuple[str, list[Any]] | None:
    """The WHERE clause and parameters of the rollup rows covering the range (see spans),
    filtered: of EVENT_ROLLUPS, or of any table keyed the same way by project, grain and bucket
    (EVENT_TYPE_ROLLUPS with no version or OS; SESSION_DURATIONS, with no event_types)."""
    parts = spans(after, before, hourly=hourly)
    if not parts:
        return None
    params: list[Any] = [project_id]
    ranges = []
    for part in parts:
        ranges.append("(grain = %s AND bucket >= %s AND bucket < %s)")
        params.extend((part.grain, part.start, part.end))
    where = f"project_id = %s AND ({' OR '.join(ranges)})"
    if event_types is not None:
        where += " AND event_type = ANY(%s)"
        params.append(list(event_types))
    if app_version is not None:
        where += " AND app_version = %s"
        params.append(app_version)
    if os_name is not None:
        where += " AND os_name = %s"
        params.append(os_name)
    return where, params


@dataclass(frozen=True)
class Buckets:
    """Rollup rows covering a range (see spans), filtered, grouped by the UTC bucket of
    `interval` (hour, day, week from Monday, month) and by `breakdown`'s value ('' without one),
    both computed in SQL."""

    project_id: int
    after: datetime
    before: datetime
    interval: str
    event_types: Sequence[str] | None = None
    app_version: str | None = None
    os_name: str | None = None
    breakdown: str | None = None

    def query(self, columns: str) -> tuple[str, str, list[Any]] | None:
        """The SELECT list (bucket, breakdown value, then `columns`), the WHERE clause and their
        parameters; None where the range holds no rows."""
        if self.breakdown not in (None, "app_version", "os_name"):
            # Spliced into the SQL as a column name: only known names pass.
            raise ValueError(f"unknown breakdown {self.breakdown!r}")
        found = rollup_where(
            self.project_id, self.after, self.before, self.interval == "hour", self.event_types, self.app_version,
            self.os_name,
        )  # fmt: skip
        if found is None:
            return None
        where, params = found
        selected = f"date_trunc(%s, bucket, 'UTC'), {self.breakdown or "''::text"}, {columns}"
        return selected, where, [self.interval, *params]

    def select(self, columns: str, tail: str = "") -> list[tuple[Any, ...]]:
        """SELECT bucket, breakdown value, `columns` FROM the rows (in binary), then `tail`."""
        found = self.query(columns)
        if found is None:
            return []
        selected, where, params = found
        return fetch_binary(f"SELECT {selected} FROM {self.table} WHERE {where} {tail}", params)

    @property
    def table(self) -> schema.Table:
        """The rollups per event type where neither version nor OS is asked about (one row a
        bucket and type: a month of every type at 10M, 14,311 rows to 1,643), else per type,
        version and OS."""
        split = self.app_version is not None or self.os_name is not None or self.breakdown is not None
        return schema.EVENT_ROLLUPS if split else schema.EVENT_TYPE_ROLLUPS


def bucket_sets(buckets: Buckets) -> list[tuple[datetime, str, str, int, AbstractBitMap]]:
    """Each rollup row as (bucket, breakdown value, event type, events, set of users): no Python
    object per row but the set (a month at 10M: 12,661 rows, ~40 ms less than an object a row).

    The rollups per type (EVENT_TYPE_ROLLUPS: few rows, large sets) come through the process's
    cache (query_side/row_cache.py): their sets are shared and frozen, never to be changed in
    place. The rollups per type, version and OS do not: many small sets (a month by day at 10M:
    15,343 rows, ~900 bytes a set), which cost as much to list and look up as to read (by
    app_version, in-process: 248 ms read, 233-271 ms through the cache, more the first time)."""
    if buckets.table != schema.EVENT_TYPE_ROLLUPS:
        rows = buckets.select("event_type, event_count, users")
        return [(bucket, value, event_type, count, decode(blob)) for bucket, value, event_type, count, blob in rows]
    found = buckets.query("event_type, event_count")
    if found is None:
        return []
    selected, where, params = found
    table = buckets.table
    return fetch_cached(
        table=str(table), keys=table.key, columns=selected, where=where, params=params, payload=["users"],
        decode=_frozen_set,
    )  # fmt: skip


def _frozen_set(blob: bytes) -> tuple[AbstractBitMap, int]:
    return FrozenBitMap.deserialize(blob), len(blob)


def bucket_counts(buckets: Buckets) -> list[tuple[datetime, str, int]]:
    """Events per bucket and breakdown value, summed in SQL: a count never reads a set."""
    return buckets.select("sum(event_count)::int8", "GROUP BY 1, 2")


Cell = tuple[datetime, str, str, int, int]
"""(bucket, breakdown value, event type, events, unique persons)."""


@dataclass
class _BucketCells:
    """A bucket's cells, kept in the process (row_cache.fetch_groups) while its rows are
    unchanged: per (event type, breakdown value), events and the union of the users' sets
    (frozen: shared). Their persons counted with one version of the aliases are kept beside them
    (`counted`, with those aliases). A system whose users log in has its aliases change every
    batch: after a change only the cells holding a number whose person changed are counted again
    (Persons.changed_since), without reading or unioning a set."""

    cells: list[tuple[str, str, int, AbstractBitMap]]
    counted: tuple["Persons", list[int]] | None = None

    def unique(self, persons: "Persons") -> list[int]:
        counted = self.counted
        if counted is not None and counted[0].version == persons.version:
            return counted[1]
        if counted is None:
            counts = [persons.count(users) for _, _, _, users in self.cells]
        else:
            changed = persons.changed_since(counted[0])
            counts = [
                persons.count(users) if users.intersect(changed) else count
                for (_, _, _, users), count in zip(self.cells, counted[1], strict=True)
            ]
        # Replaced whole, never changed in place: another request may be reading the last.
        self.counted = (persons, counts)
        return counts


def bucket_cells(buckets: Buckets, check: Callable[[int], None] | None = None) -> list[Cell]:
    """Events and unique persons per bucket, breakdown value and event type, sorted. Each
    bucket's cells (their sets unioned per cell) are computed once from its rollup rows and kept
    while the rows are unchanged (row_cache.fetch_groups), their persons counted once per version
    of the aliases: a month asked again reads only its buckets' digests and computes the ones
    that changed (today's). At 10M events by app_version: 15,343 rows, 5,372 cells. `check`,
    given the number of cells before any set is read, may refuse by raising."""
    if buckets.interval not in ("hour", "day", "week", "month"):
        # Spliced into the SQL (a group has no placeholder): only known names pass.
        raise ValueError(f"unknown interval {buckets.interval!r}")
    found = rollup_where(
        buckets.project_id, buckets.after, buckets.before, buckets.interval == "hour", buckets.event_types,
        buckets.app_version, buckets.os_name,
    )  # fmt: skip
    if found is None:
        return []
    where, params = found
    value = f"t.{buckets.breakdown}" if buckets.breakdown else "''::text"

    def checked(tallies: list[tuple[Any, Any]]) -> None:
        if check is not None:
            check(sum(tallied for _, tallied in tallies))

    groups = fetch_groups(
        table=str(buckets.table), group=f"date_trunc('{buckets.interval}', t.bucket, 'UTC')",
        tally=f"count(DISTINCT (t.event_type, {value}))::int8",
        columns=f"t.event_type, {value}, t.event_count, t.users", where=where, params=params, compute=_bucket_cells,
        kind=f"cells {value}", check=checked,
    )  # fmt: skip
    persons = persons_of(buckets.project_id)
    return [
        (bucket, found_value, event_type, count, unique)
        for bucket, cells in sorted(groups, key=lambda group: group[0])
        for (event_type, found_value, count, _), unique in zip(cells.cells, cells.unique(persons), strict=True)
    ]


def _bucket_cells(rows: list[tuple[Any, ...]]) -> tuple[_BucketCells, int]:
    """A bucket's rows (event type, breakdown value, events, set) as its cells, and their size
    (the sets' bytes read: at least what their unions take)."""
    blobs: dict[tuple[str, str], list[bytes]] = {}
    events: dict[tuple[str, str], int] = {}
    for event_type, found_value, count, blob in rows:
        key = (event_type, found_value)
        blobs.setdefault(key, []).append(blob)
        events[key] = events.get(key, 0) + count
    cells: list[tuple[str, str, int, AbstractBitMap]] = []
    for key in sorted(blobs):
        parts = blobs[key]
        if len(parts) == 1:
            users: AbstractBitMap = _frozen_set(parts[0])[0]
        else:
            users = FrozenBitMap().union(*(decode(part) for part in parts))
        cells.append((*key, events[key], users))
    return _BucketCells(cells), 64 * len(cells) + sum(len(blob) for parts in blobs.values() for blob in parts)


def event_counts(
    *, project_id: int, after: datetime, before: datetime, event_types: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Events per type over the range (see spans), most first (ties: by type), summed in SQL."""
    found = rollup_where(project_id, after, before, False, event_types, None, None)
    if found is None:
        return []
    where, params = found
    with _cursor() as cursor:
        cursor.execute(
            f"""SELECT event_type, sum(event_count)::int8 AS count FROM {schema.EVENT_TYPE_ROLLUPS} WHERE {where}
                GROUP BY event_type ORDER BY count DESC, event_type""",
            params,
        )
        return [{"event_type": event_type, "count": count} for event_type, count in cursor.fetchall()]


def active_days(*, project_id: int, first: date, last: date) -> dict[date, BitMap]:
    """The set of users active on each UTC day first <= day <= last that has any."""
    rows = fetch_binary(
        f"SELECT day, users FROM {schema.ACTIVE_DAYS} WHERE project_id = %s AND day >= %s AND day <= %s",
        [project_id, first, last],
    )
    return {day: decode(blob) for day, blob in rows}


def every_events_users(*, project_id: int, after: datetime, before: datetime) -> list[tuple[datetime, AbstractBitMap]]:
    """The users of every event per bucket of the range (see spans): whole days from the active
    days (ACTIVE_DAYS: one set a day), the hours at the edges from the hour rollups."""
    found: list[tuple[datetime, AbstractBitMap]] = []
    for part in spans(after, before, hourly=False):
        if part.grain == "day":
            days = active_days(project_id=project_id, first=part.start.date(), last=(part.end - DAY).date())
            found.extend((datetime(day.year, day.month, day.day, tzinfo=UTC), users) for day, users in days.items())
        else:
            hours = bucket_sets(Buckets(project_id, part.start, part.end, "hour"))
            found.extend((bucket, users) for bucket, _, _, _, users in hours)
    return found


def union(sets: Iterable[AbstractBitMap]) -> BitMap:
    """One set of many (Roaring's multi-way union: one pass, not pairwise), a new one: the sets
    may be the cache's, frozen."""
    return BitMap().union(*sets)
