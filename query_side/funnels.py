"""Ordered funnels, per person (docs/api.md, "Funnels"). Never reads more than
TIDELOG_FUNNEL_MAX_EVENTS events: the event counts read model says beforehand how many a funnel
would read, and a larger one is refused.

The steps' events come from the event timelines read model (schema.EVENT_TIMELINES: each hour's
events of a type as arrays of user numbers, times and variants), up to the event_timelines
projection's checkpoint; the few past it (the projection lag) from the event store, in one
snapshot, so the answer is as current as the store; the rows of past hours, unchanged, come
decoded from the query process's cache (query_side/row_cache.py). The chains are then walked in
numpy, one per person at once, and every step-1 event's for the few persons that need it
(_walk). (Before the timelines, the whole scan came from the event store's
(project, event_type, time) index, joined to the numbers per event: ~1 s for a month of common
steps at 10M events; the same walk as nested window functions in SQL took 6 s.)
"""

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import psycopg
from django.conf import settings
from django.db import DatabaseError, connections, transaction

from contracts import schema
from contracts.timelines import EPOCH, US, hour_us
from query_side import row_cache, user_sets
from query_side.user_sets import JOIN_PERSON
from tenancy.api_errors import RangeTooLarge

MIN_STEPS = 2
MAX_STEPS = 10
Breakdown = Literal["app_version", "os_name"]
BREAKDOWNS: tuple[Breakdown, ...] = ("app_version", "os_name")
OTHER = "$other"
TIMELINES = "event_timelines"
"""The projection keeping schema.EVENT_TIMELINES: its checkpoint splits the two sources."""


@dataclass(frozen=True)
class FunnelStep:
    event_type: str
    count: int
    conversion: float | None
    """count / the first step's count (None when no one entered)."""
    conversion_from_previous: float | None
    drop_off: int
    """The previous step's count less this one's (0 for the first step)."""
    median_seconds_to_convert: float | None
    """From the step-1 event to this step's, over the persons who reached it (None: step 1 or no one)."""


@dataclass(frozen=True)
class FunnelBreakdown:
    breakdown_value: str | None
    steps: list[FunnelStep]


@dataclass(frozen=True)
class Funnel:
    steps: list[FunnelStep]
    breakdown: list[FunnelBreakdown] | None
    events_read_at_most: int
    """The estimate checked against the limit (the event counts read model's whole hours)."""


def funnel_event_estimate(*, project_id: int, steps: list[str], after: datetime, before: datetime) -> int:
    """The events of the steps' types in [after, before) by the event rollups: an upper bound
    (whole hours, from the hour of `after`), trailing the store by the projection lag."""
    counts = user_sets.event_counts(project_id=project_id, after=after, before=before, event_types=sorted(set(steps)))
    return sum(row["count"] for row in counts)


# Each event of the steps' types as (person, time, type): the person's number (an alias's
# person's, see user_sets.PERSON) as int4, the time as timestamptz_send gives it (µs since
# 2000-01-01, int8), the type's position in %(types)s as int2; all big-endian. Events of ids no
# projection has numbered yet (the newest, within the projection lag) come apart, each with its
# distinct_id, and count as a person of their own, as user_sets.PERSON has them. One aggregate
# each, so each blob's rows keep together whatever order the rows came in.
_TYPE = "int2send(array_position(%(types)s::text[], u.event_type)::int2)"
# TRICKY: the events' bytes are made in a subquery and only concatenated above it, so the scan,
# the joins and the bytes can run in parallel workers below a Gather (string_agg has no parallel
# form before PostgreSQL 16); funnel_compute prices the Gather's tuples as cheap, which they are
# here (a month of three common steps at 10M events: 1.34 to 0.95 s on 2 cores).
_EVENTS_SQL = f"""
SELECT value,
       coalesce(string_agg(piece, ''::bytea) FILTER (WHERE numbered), ''::bytea),
       coalesce(string_agg(piece, ''::bytea) FILTER (WHERE NOT numbered), ''::bytea)
FROM (
    SELECT {{value}} AS value, un.number IS NOT NULL AS numbered,
           CASE WHEN un.number IS NOT NULL
                THEN int4send(coalesce(pa.canonical, un.number)) || timestamptz_send(u."timestamp") || {_TYPE}
                ELSE timestamptz_send(u."timestamp") || {_TYPE}
                     || int4send(octet_length(convert_to(u.distinct_id, 'UTF8'))) || convert_to(u.distinct_id, 'UTF8')
           END AS piece
    FROM {schema.EVENTS} u {JOIN_PERSON}
    WHERE u.project_id = %(project_id)s AND u.event_type = ANY(%(types)s)
      AND u."timestamp" >= %(after)s AND u."timestamp" < %(before)s
      -- Past the timelines' checkpoint only (the runner's order; the plain comparison lets the
      -- planner see, from the index's end, how few events that is).
      AND (u.xact_id, u.position) > (%(xact_id)s::xid8, %(position)s) AND u.xact_id >= %(xact_id)s::xid8
) e
GROUP BY 1"""
# The timelines rows of the range, a group per UTC day and type (its key: the day as YYYY-MM-DD,
# then the type), each group's events decoded once and kept while its rows are unchanged
# (row_cache.fetch_groups): a month asked again reads only the groups' digests and decodes the
# days that changed (today's). Each row's hour (µs since 2000) and events, then its numbers and
# µs into the hour (the first two of its three arrays, contracts/timelines.py, apart), and for a
# breakdown its events' variant codes and its values of the breakdown's column.
_DAY_GROUP = "to_char(t.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD') || t.event_type"
_TIMELINE_WHERE = "t.project_id = %s AND t.event_type = ANY(%s) AND t.hour >= %s AND t.hour < %s"
_TIMELINE_ARRAYS = (
    f"(extract(epoch FROM t.hour)::int8 - {int(EPOCH.timestamp())}) * 1000000, t.event_count,"
    " substring(t.events FROM 1 FOR 4 * t.event_count),"
    " substring(t.events FROM 4 * t.event_count + 1 FOR 4 * t.event_count)"
)
_TIMELINE_COLUMNS = {
    None: _TIMELINE_ARRAYS,
    "app_version": f"{_TIMELINE_ARRAYS}, substring(t.events FROM 8 * t.event_count + 1), t.app_versions",
    "os_name": f"{_TIMELINE_ARRAYS}, substring(t.events FROM 8 * t.event_count + 1), t.os_names",
}


@dataclass(frozen=True)
class _Day:
    """A day's events of one type, decoded from its timelines rows, in hour order: numbers
    (users', not persons': the aliases change apart), times (µs since 2000), and for a breakdown
    each event's value as an index into `values` (the day's, sorted). Shared by the requests of
    a process (row_cache.fetch_groups): never changed in place."""

    numbers: npt.NDArray[np.uint32]
    top: int
    """The largest of the numbers."""
    ts: npt.NDArray[np.int64]
    codes: npt.NDArray[np.uint16] | None
    values: list[str]


def _day(rows: list[tuple[Any, ...]]) -> tuple[_Day, int]:
    """A day group's rows (_TIMELINE_COLUMNS) as a _Day, and its size in bytes."""
    rows = sorted(rows, key=lambda row: row[0])
    hours, counts = [row[0] for row in rows], [row[1] for row in rows]
    numbers = np.frombuffer(b"".join(row[2] for row in rows), "<u4")
    ts = np.repeat(np.array(hours, np.int64), counts)
    ts += np.frombuffer(b"".join(row[3] for row in rows), "<u4")
    codes, values = None, [""]
    if len(rows[0]) > 4:
        row_values = [row[5] for row in rows]
        values = sorted({value for row in row_values for value in row})
        index = {value: n for n, value in enumerate(values)}
        # Each row's values' indexes in one table; a row's codes index its stretch of it.
        table = np.array([index[value] for row in row_values for value in row], np.uint16)
        base = np.repeat(np.cumsum([0, *map(len, row_values[:-1])]), counts)
        codes = table[base + np.frombuffer(b"".join(row[4] for row in rows), "<u2")]
    found = _Day(numbers, int(numbers.max()), ts, codes, values)
    return found, numbers.nbytes + ts.nbytes + (codes.nbytes if codes is not None else 0)


NEVER = np.iinfo(np.int64).max
"""A time no event has: a person's step not found, an event outside the range."""

_NUMBERED = np.dtype([("who", ">i4"), ("ts", ">i8"), ("type", ">i2")])
_UNNUMBERED = struct.Struct(">qhi")
"""An unnumbered id's event: time, type, the id's length in bytes (the UTF-8 id follows)."""


@dataclass
class _Events:
    """The scanned events, parallel arrays ordered by type: person (numbered ids their number,
    the others negative codes), time (µs since 2000; NEVER: outside the range), breakdown value
    (its index in `values`, which are sorted by code point, PostgreSQL's COLLATE "C"). The events
    of the n-th of the sorted step types (from 1) are those from starts[n - 1] to starts[n]."""

    who: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    value: npt.NDArray[np.int64]
    starts: list[int]
    values: list[str]

    def of(self, n: int) -> slice:
        return slice(self.starts[n - 1], self.starts[n])

    def take(self, where: npt.NDArray[np.bool_]) -> "_Events":
        """The events `where` selects, less those outside the range (NEVER), still ordered by
        type (by their indexes: a few of many are three small gathers, where a mask would be
        read three times)."""
        taken = np.flatnonzero(where)
        taken = taken[self.ts[taken] != NEVER]
        starts = np.searchsorted(taken, self.starts).tolist()
        return _Events(self.who[taken], self.ts[taken], self.value[taken], starts, self.values)


def _unpack(found: list[tuple[str, bytes, bytes]], days: list[tuple[str, _Day]], persons: user_sets.Persons,
            span: tuple[int, int], types: list[str]) -> _Events:  # fmt: skip
    """The events of both sources as one _Events: the timelines' days (per type, day by day;
    their numbers mapped to persons through `persons`, their times outside `span`, [after,
    before) in µs since 2000, as NEVER) and the event store's tail (`found`, per breakdown
    value: _EVENTS_SQL's bytes). No Python object per event, none per row but its bytes."""
    code = {event_type: n for n, event_type in enumerate(types, start=1)}
    days = sorted(days, key=lambda day: (code[day[0][10:]], day[0][:10]))  # by type, then day
    kinds = [code[key[10:]] for key, _ in days]
    breakdown = bool(days) and days[0][1].codes is not None
    values = sorted({row[0] for row in found} | {v for _, day in days for v in day.values})
    index = {value: n for n, value in enumerate(values)}
    # The days' events, each column one array (by type, then day): type n's from at[n - 1] to
    # at[n]. The times are a copy (the days are shared) to mark.
    sizes = {n: [len(day.ts) for kind, (_, day) in zip(kinds, days, strict=True) if kind == n] for n in code.values()}
    at = np.cumsum([0, *(sum(sizes[n]) for n in code.values())]).tolist()
    numbers = np.concatenate([day.numbers for _, day in days] or [np.zeros(0, np.uint32)], dtype=np.int64)
    who = persons.persons(numbers, max((day.top for _, day in days), default=0))
    ts = np.concatenate([day.ts for _, day in days] or [np.zeros(0, np.int64)])
    if breakdown:
        # A day whose values are all of them (most: a few OS names, the current app versions)
        # has its codes as they are; another's go through its values' indexes.
        parts = []
        for _, day in days:
            assert day.codes is not None  # every day read with a breakdown has its codes
            parts.append(day.codes if day.values == values else np.array([index[v] for v in day.values])[day.codes])
        value = np.concatenate(parts, dtype=np.int64)
    else:
        value = np.zeros(len(ts), np.int64)  # index[""]: "" sorts first
    # A type's first and last days hold the hours at the range's edges, and in them events
    # outside it: their times become NEVER, which no step matches (_walk), rather than a copy of
    # every array without them.
    for n, ours in sizes.items():
        if ours:
            for edge in (slice(at[n - 1], at[n - 1] + ours[0]), slice(at[n] - ours[-1], at[n])):
                moments = ts[edge]
                moments[(moments < span[0]) | (moments >= span[1])] = NEVER
    # The event store's tail, per type after its days.
    tail: dict[int, list[tuple[npt.NDArray[np.int64], ...]]] = {n: [] for n in code.values()}
    orphans: dict[str, int] = {}
    for found_value, numbered_bytes, unnumbered in found:
        events = np.frombuffer(bytes(numbered_bytes), dtype=_NUMBERED)
        for n in np.unique(events["type"]).tolist():
            mine = events[events["type"] == n]
            tail[n].append((mine["who"].astype(np.int64), mine["ts"].astype(np.int64),
                            np.full(len(mine), index[found_value], np.int64)))  # fmt: skip
        raw, offset = bytes(unnumbered), 0
        while offset < len(raw):  # few: only ids the projections have not reached yet
            time, kind, size = _UNNUMBERED.unpack_from(raw, offset)
            offset += _UNNUMBERED.size + size
            person = -orphans.setdefault(raw[offset - size : offset].decode(), len(orphans) + 1)
            tail[kind].append((np.array([person]), np.array([time]), np.array([index[found_value]])))
    if not any(tail.values()):  # the days' arrays as they are
        return _Events(who, ts, value, at, values)
    columns = (who, ts, value)
    ordered = [
        piece for n in code.values() for piece in [tuple(column[at[n - 1] : at[n]] for column in columns), *tail[n]]
    ]
    lengths = [at[n] - at[n - 1] + sum(len(piece[0]) for piece in tail[n]) for n in code.values()]
    who, ts, value = (np.concatenate([piece[c] for piece in ordered]) for c in range(3))
    return _Events(who, ts, value, np.cumsum([0, *lengths]).tolist(), values)


def _percentile_cont_half(durations: npt.NDArray[np.int64]) -> float | None:
    """PostgreSQL's percentile_cont(0.5) of the durations in seconds (`durations` in µs): the
    middle value, or the two middle ones interpolated as it does (lo + (hi - lo) * 0.5, float8)."""
    if len(durations) == 0:
        return None
    position = 0.5 * (len(durations) - 1)
    low = int(position)
    # The one or two middle values by a partial sort (np.partition: linear, where np.sort of
    # ~80k times took 3-4 ms a step).
    ordered = np.partition(durations, [low, min(low + 1, len(durations) - 1)])
    lo, hi = float(ordered[low] / 1_000_000), float(ordered[min(low + 1, len(durations) - 1)] / 1_000_000)
    if position == low:
        return lo
    return lo + (hi - lo) * (position - low)


class _Keys:
    """Every event's (person, time) as one int64 that sorts by person, then time: `person` is
    the person's offset from the smallest, and the time its offset from the earliest in µs,
    bit-packed below it where both fit in 62 bits (a month of 200k persons takes 18 + 42), else
    its rank among the distinct times (np.unique: two sorts of every event more)."""

    def __init__(self, events: _Events) -> None:
        # TRICKY: not min(initial=0), which is 0 for any positive times (µs since 2000): the
        # offsets would then take 50 bits, not a month's 42, and miss the 62-bit packing.
        low = events.who.min() if len(events.who) else 0
        self.person = events.who - low
        self.start = int(events.ts.min()) if len(events.ts) else 0
        offset = events.ts - self.start
        self.bits = int(offset.max(initial=0)).bit_length()
        self.times: npt.NDArray[np.int64] | None = None
        if int(self.person.max(initial=0)).bit_length() + self.bits <= 62:
            self.width = 1 << self.bits
            self.key = (self.person << self.bits) | offset
        else:
            self.times, rank = np.unique(events.ts, return_inverse=True)
            self.width = len(self.times) + 1
            self.key = self.person * self.width + rank

    def person_of(self, key: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return key // self.width

    def time_of(self, key: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        if self.times is None:
            return (key & (self.width - 1)) + self.start
        return self.times[key % self.width]


def _every_entry(events: _Events, steps: list[str], types: list[str], window: timedelta) -> dict[str, Any]:
    """Each person's entry by walking the greedy chain of every step-1 event: the furthest step
    within the window, then the earliest step-1 event reaching it, then the smallest breakdown
    value. Every (person, time) is one sortable int64 (_Keys), so "the person's first event of
    a type strictly after t" is one binary search over that type's sorted keys, for every chain
    at once. Returns what _walk does."""
    code = {event_type: n for n, event_type in enumerate(types, start=1)}
    keys_of = _Keys(events)
    key = keys_of.key
    by_type = {n: np.sort(key[events.of(n)]) for n in code.values()}
    entry = events.of(code[steps[0]])
    ties = len(events.values) > 1
    # The entries in (person, time) order: one sort, which makes each step's binary searches
    # look up keys in order, and each person's entries one stretch.
    if ties:
        order = np.argsort(key[entry])
        start, values = key[entry][order], events.value[entry][order]
    else:  # one value (or none): the sorted keys of step 1 are the entries
        start = by_type[code[steps[0]]]
        values = np.zeros(len(start), np.int64)
    if len(start) == 0:
        return _no_entries(len(steps))
    entry_person, start_ts = keys_of.person_of(start), keys_of.time_of(start)
    reached = np.ones(len(start), np.int64)
    chain = np.zeros((len(steps), len(start)), np.int64)
    chain[0] = start_ts
    current, alive = start, np.ones(len(start), bool)
    window_us = window // US
    for k, step in enumerate(steps[1:], start=1):
        keys = by_type[code[step]]
        if len(keys) == 0:
            break
        at = np.searchsorted(keys, current, side="right")
        later = keys[np.minimum(at, len(keys) - 1)]
        alive &= (at < len(keys)) & (keys_of.person_of(later) == entry_person)
        chain[k] = keys_of.time_of(later)
        reached[alive & (chain[k] - start_ts <= window_us)] = k + 1
        current = np.where(alive, later, current)
    # Each person's entry: of the entries reaching their furthest step, the first in time, and
    # of those at that instant (the same chain), the smallest breakdown value.
    stretch = _stretches(entry_person)
    furthest = np.maximum.reduceat(reached, stretch)
    candidate = np.flatnonzero(reached == np.repeat(furthest, np.diff(np.append(stretch, len(start)))))
    who = entry_person[candidate]
    firsts = _stretches(who)
    best = candidate[firsts]
    if ties:
        # Ties at the first instant: the argsort left them in no order.
        same = start[candidate] == np.repeat(start[best], np.diff(np.append(firsts, len(candidate))))
        tied = candidate[same]
        values = values.copy()
        values[best] = np.minimum.reduceat(values[tied], _stretches(entry_person[tied]))
    return {"reached": reached[best], "start": start_ts[best], "value": values[best], "chain": chain[:, best]}


def _stretches(ordered: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Where each run of equal values starts in a sorted array (not empty)."""
    return np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))


def _no_entries(n: int) -> dict[str, Any]:
    none = np.zeros(0, np.int64)
    return {"reached": none, "start": none, "value": none, "chain": np.zeros((n, 0), np.int64)}


def _walk(events: _Events, steps: list[str], types: list[str], window: timedelta) -> dict[str, Any]:
    """Each person's entry: the furthest step within the window over the greedy chains of their
    step-1 events, then the earliest step-1 event reaching it, then the smallest breakdown value.
    Returns the entries: step-1 event times, breakdown values, the step reached, and each step's
    time (n x entries).

    TRICKY: the earliest event at each step is the best choice (any chain within the window has
    each of its steps no earlier than the greedy one's), so a chain is step 1's event, the first
    step-2 event of the person strictly after it, the first step-3 event strictly after that...
    and a later step-1 event's chain is never earlier, step by step, than an earlier one's.
    So where the chain of a person's first step-1 event ends because no event of the next step
    follows, no chain of theirs gets further; and where the window cut nothing of it, no later
    entry reaches further than it: that first event is the entry. One chain per person is a
    grouped minimum per step ("the person's first event of the step after their time"), with no
    sort: np.minimum.at into an array indexed by person. Only the persons whose first chain the
    window cut have every step-1 event walked (_every_entry, which sorts): a month of three
    common steps at 10M events, 6,772 of 119,371 persons and 41,017 of 648,471 step-1 events."""
    if len(events.who) == 0:
        return _no_entries(len(steps))
    # Each person as an index: the numbers themselves where they are dense enough (a project's
    # persons are numbered from 1), their offset from the smallest where some are negative (ids
    # not numbered yet), else their rank (one sort).
    low, high = int(events.who.min()), int(events.who.max())
    if 0 <= low and high < 4 * len(events.who) + (1 << 16):
        person, size = events.who, high + 1  # the numbers themselves, no copy
    elif high - low < 4 * len(events.who) + (1 << 16):
        person, size = events.who - low, high - low + 1
    else:
        uniques, person = np.unique(events.who, return_inverse=True)
        size = len(uniques)
    code = {event_type: n for n, event_type in enumerate(types, start=1)}
    window_us = window // US
    of_step = [events.of(code[step]) for step in steps]
    first = np.full(size, NEVER, np.int64)
    np.minimum.at(first, person[of_step[0]], events.ts[of_step[0]])
    entering = first != NEVER
    chain, current, alive = [first], first, entering.copy()
    found, reached = entering.astype(np.int64), entering.astype(np.int64)
    for k, where in enumerate(of_step[1:], start=1):
        who, ts = person[where], events.ts[where]
        # The events not after their person's chain as NEVER, rather than two copies without
        # them (a dead chain's NEVER: nothing is after it).
        later = np.full(size, NEVER, np.int64)
        np.minimum.at(later, who, np.where(ts > current[who], ts, NEVER))
        alive &= later != NEVER
        found[alive] = k + 1
        reached[alive & (later - first <= window_us)] = k + 1
        chain.append(later)
        current = np.where(alive, later, NEVER)
    final = np.flatnonzero(entering & (reached == found))
    # The entry's breakdown value: the smallest of the person's step-1 events at its instant.
    values = np.zeros(size, np.int64)
    if len(events.values) > 1:
        values[:] = NEVER
        entries, moments = person[of_step[0]], events.ts[of_step[0]]
        np.minimum.at(values, entries, np.where(moments == first[entries], events.value[of_step[0]], NEVER))
    rest = _every_entry(events.take((entering & (reached != found))[person]), steps, types, window)
    return {
        "reached": np.concatenate((reached[final], rest["reached"])),
        "start": np.concatenate((first[final], rest["start"])),
        "value": np.concatenate((values[final], rest["value"])),
        "chain": np.concatenate((np.stack([times[final] for times in chain]), rest["chain"]), axis=1),
    }


def _row(entries: dict[str, Any], where: npt.NDArray[np.bool_] | None, n: int) -> dict[str, Any]:
    """count_k and median_k (seconds from step 1, percentile_cont) over the entries `where`
    (None: all of them). Each step's times from step 1 are taken once, in µs, and only the middle
    ones become seconds (the same values: the order is the same)."""
    reached = entries["reached"]
    row: dict[str, Any] = {}
    for k in range(1, n + 1):
        got = reached >= k
        if where is not None:
            got &= where
        row[f"count_{k}"] = int(np.count_nonzero(got))
        if k > 1:
            row[f"median_{k}"] = _percentile_cont_half(entries["chain"][k - 1][got] - entries["start"][got])
    return row


def _steps(steps: list[str], row: dict[str, Any]) -> list[FunnelStep]:
    counts = [int(row.get(f"count_{k}", 0)) for k in range(1, len(steps) + 1)]
    found = []
    for k, event_type in enumerate(steps, start=1):
        count, first = counts[k - 1], counts[0]
        previous = counts[k - 2] if k > 1 else count
        found.append(
            FunnelStep(
                event_type=event_type,
                count=count,
                conversion=count / first if first else None,
                conversion_from_previous=count / previous if previous else None,
                drop_off=previous - count,
                median_seconds_to_convert=row.get(f"median_{k}"),
            )
        )
    return found


def funnel_compute(
    *,
    project_id: int,
    steps: list[str],
    window: timedelta,
    after: datetime,
    before: datetime,
    breakdown: Breakdown | None = None,
    breakdown_limit: int = 10,
) -> Funnel:
    """The ordered funnel of `steps` per person (user_sets.PERSON), step-1 events in [after,
    before), later steps strictly after the previous one, at most `window` after the step-1
    event and before `before`. Raises RangeTooLarge (before reading any event) when the steps'
    events in the range exceed TIDELOG_FUNNEL_MAX_EVENTS by the event counts read model."""
    if not MIN_STEPS <= len(steps) <= MAX_STEPS or (breakdown is not None and breakdown not in BREAKDOWNS):
        # The breakdown is spliced into the SQL as a column name: only known names pass.
        raise ValueError(f"{len(steps)} steps or unknown breakdown {breakdown!r}")
    estimate = funnel_event_estimate(project_id=project_id, steps=steps, after=after, before=before)
    limit = settings.TIDELOG_FUNNEL_MAX_EVENTS
    if estimate > limit:
        raise RangeTooLarge(
            "after",
            f"this funnel would read about {estimate:,} events (its steps' events from after to before);"
            f" at most {limit:,} are read per funnel: narrow the range",
        )
    types = sorted(set(steps))
    value = f"coalesce(u.{breakdown}, '')" if breakdown else "''"
    timeout = f"{int(settings.TIDELOG_FUNNEL_TIMEOUT_SECONDS * 1000)}ms"
    alias = settings.QUERY_DB_ALIAS
    is_nested = connections[alias].in_atomic_block
    try:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            if not is_nested:  # inside a caller's transaction (a test), its snapshot rules
                # One snapshot for the checkpoint, the timelines, the aliases and the tail: a
                # runner committing meanwhile gives neither source a batch the other lacks.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # The timeout guards what the estimate cannot see: events the counts have not reached.
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [timeout])
            cursor.execute("SET LOCAL parallel_tuple_cost = 0.001")
            cursor.execute(f"SELECT xact_id::text, position FROM {schema.CHECKPOINTS} WHERE name = %s", [TIMELINES])
            checkpoint = cursor.fetchone() or ("0", 0)
            days = row_cache.fetch_groups(
                table=str(schema.EVENT_TIMELINES), group=_DAY_GROUP, tally="count(*)",
                columns=_TIMELINE_COLUMNS[breakdown], where=_TIMELINE_WHERE,
                params=[project_id, types, user_sets.floor_hour(after), before], compute=_day,
                kind=f"funnel days {breakdown}",
            )  # fmt: skip
            persons = user_sets.persons_of(project_id)
            params: dict[str, Any] = {
                "project_id": project_id, "types": types, "after": after, "before": before,
                "xact_id": checkpoint[0], "position": checkpoint[1],
            }  # fmt: skip
            cursor.execute(_EVENTS_SQL.format(value=value), params)
            found = cursor.fetchall()
    except DatabaseError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
            raise
        raise RangeTooLarge(
            "after",
            f"this funnel ran past {settings.TIDELOG_FUNNEL_TIMEOUT_SECONDS:g} s and was stopped: narrow the range",
        ) from exc
    span = (hour_us(after.astimezone(UTC)), hour_us(before.astimezone(UTC)))
    events = _unpack(found, days, persons, span, types)
    entries = _walk(events, steps, types, window)
    n = len(steps)
    total = _row(entries, None, n)
    groups = None
    if breakdown:
        # The values by persons entering with them (most first, then by value: code points), the
        # first breakdown_limit apart, the rest as one OTHER group.
        present, entering = np.unique(entries["value"], return_counts=True)
        ranked = sorted(zip(present.tolist(), entering.tolist(), strict=True), key=lambda pair: (-pair[1], pair[0]))
        kept = [index for index, _ in ranked[:breakdown_limit]]
        groups = [
            FunnelBreakdown(events.values[index] or None, _steps(steps, _row(entries, entries["value"] == index, n)))
            for index in kept
        ]
        if len(ranked) > breakdown_limit:
            rest = ~np.isin(entries["value"], kept)
            groups.append(FunnelBreakdown(OTHER, _steps(steps, _row(entries, rest, n))))
    return Funnel(_steps(steps, total), groups, estimate)
