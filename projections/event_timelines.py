"""Event timelines: every event as (user number, time, app_version and os_name) per project,
event type and UTC hour, in columns (schema.EVENT_TIMELINES, contracts/timelines.py). What
funnels read: a month of three common steps at 10M events is ~2,000 rows of arrays to fetch, not
1.3M rows of the event store to join to their numbers (query_side/funnels.py).

A batch adds its events to the last chunk of each hour and type it reaches, rewriting that
chunk whole, and opens a new chunk once one holds CHUNK_EVENTS: a write never rewrites more than
CHUNK_EVENTS events a key, however busy the hour.
"""

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain, groupby
from typing import Any, Final

import numpy as np

from contracts import schema
from contracts.timelines import EPOCH, HOUR_US, US, Timeline, concat, decode
from projections.projection import EventsOnly, ReadModelDrift, StoredEvent, VerifyQuery
from projections.upsert import delete_keys, upsert
from projections.user_numbers import numbers_known, numbers_of

CHUNK_EVENTS: Final = 2_048
"""The most events a chunk is filled to (under contracts.timelines.MAX_VARIANTS): a batch rewrites
at most this many of an hour's events a type (20 KB), however many the hour holds: live, every
event is of the current hour, and each batch rewrites that hour's last chunks. A funnel's limit
on the events it reads bounds the chunks it reads too."""
_HOUR = timedelta(hours=1)
HourKey = tuple[int, str, datetime]
"""(project, event type, UTC hour)."""
# Per (project, event type, hour as hours since 2000-01-01 UTC): the events' distinct_ids,
# microseconds into the hour, app_versions and os_names.
Changes = dict[tuple[int, str, int], tuple[list[str], list[int], list[str], list[str]]]


def _chunks(cursor: Any, into: str, keys: Sequence[HourKey], *, last_only: bool) -> list[tuple[HourKey, int, Timeline]]:
    """The chunks of these hour keys (each key's last only, or all of them): key, number, events."""
    cursor.execute(
        f"""SELECT {"DISTINCT ON (t.project_id, t.event_type, t.hour)" if last_only else ""}
                   t.project_id, t.event_type, t.hour, t.chunk, t.app_versions, t.os_names, t.events
            FROM {into} t JOIN unnest(%s::int8[], %s::text[], %s::timestamptz[]) k(project_id, event_type, hour)
              USING (project_id, event_type, hour)
            {"ORDER BY t.project_id, t.event_type, t.hour, t.chunk DESC" if last_only else ""}""",
        [[key[0] for key in keys], [key[1] for key in keys], [key[2] for key in keys]],
    )
    return [
        ((project_id, event_type, hour), chunk, decode(blob, versions, os_names))
        for project_id, event_type, hour, chunk, versions, os_names, blob in cursor.fetchall()
    ]


def _row(key: HourKey, chunk: int, events: Timeline) -> tuple[Any, ...]:
    return (
        *key,
        chunk,
        len(events),
        [version for version, _ in events.variants],
        [os_name for _, os_name in events.variants],
        events.encode(),
    )


def _write(cursor: Any, into: str, rows: list[tuple[Any, ...]]) -> None:
    upsert(
        cursor,
        table=schema.EVENT_TIMELINES,
        into=into,
        update="""event_count = EXCLUDED.event_count, app_versions = EXCLUDED.app_versions,
                  os_names = EXCLUDED.os_names, events = EXCLUDED.events""",
        rows=rows,
    )


class EventTimelines(EventsOnly):
    name: str = "event_timelines"
    tables: Sequence[str] = (schema.EVENT_TIMELINES.name,)
    # Past retention (projections/retention.py): an hour that starts at or after the watermark.
    retained_windows: Mapping[str, str] = {schema.EVENT_TIMELINES.name: "{t}.hour >= %(retained_from)s"}

    def apply(self, events: Sequence[StoredEvent], inputs: None = None) -> Changes:
        changes: Changes = {}
        for e in events:
            # In integers: one subtraction an event, not a datetime built for its hour.
            hour, offset = divmod((e.timestamp - EPOCH) // US, HOUR_US)
            key = (e.project_id, e.event_type, hour)
            found = changes.get(key)
            if found is None:
                found = changes[key] = ([], [], [], [])
            found[0].append(e.distinct_id)
            found[1].append(offset)
            found[2].append(e.app_version or "")
            found[3].append(e.os_name or "")
        return changes

    def write(self, cursor: Any, changes: Changes, tables: Mapping[str, str]) -> None:
        if not changes:
            return
        into = tables[schema.EVENT_TIMELINES.name]
        numbers = numbers_of(cursor, {(key[0], d) for key, found in changes.items() for d in found[0]})
        by_key = {(project, kind, EPOCH + hour * _HOUR): found for (project, kind, hour), found in changes.items()}
        keys = sorted(by_key)
        last = {key: (chunk, events) for key, chunk, events in _chunks(cursor, into, keys, last_only=True)}
        rows = []
        for key in keys:
            distinct_ids, offsets, versions, os_names = by_key[key]
            index: dict[tuple[str, str], int] = {}
            codes = [index.setdefault(pair, len(index)) for pair in zip(versions, os_names, strict=True)]
            new = Timeline(
                np.array([numbers[(key[0], d)] for d in distinct_ids], np.uint32),
                np.array(offsets, np.uint32),
                np.array(codes, np.uint32),
                list(index),
            )
            chunk, parts = 0, [new]
            stored = last.get(key)
            if stored is not None:
                chunk = stored[0]
                if len(stored[1]) < CHUNK_EVENTS:
                    parts.insert(0, stored[1])
                else:
                    chunk += 1
            whole = concat(parts)
            for start in range(0, len(whole), CHUNK_EVENTS):
                rows.append(_row(key, chunk, whole.take(slice(start, start + CHUNK_EVENTS))))
                chunk += 1
        _write(cursor, into, rows)

    def erase(
        self,
        cursor: Any,
        tables: Mapping[str, str],
        project_id: int,
        distinct_ids: Sequence[str],
        upto: tuple[str, int],
    ) -> int:
        """Take the ids' events out of every chunk of the hours and types their events at or
        before the checkpoint reached (still in the event store: an erasure calls this before
        it deletes them); a chunk left empty is deleted. Raises ReadModelDrift where the chunks
        hold fewer of their events than the store."""
        into = tables[schema.EVENT_TIMELINES.name]
        cursor.execute(
            f"""SELECT event_type, date_trunc('hour', "timestamp", 'UTC'), count(*)
                FROM {schema.EVENTS} e
                WHERE project_id = %s AND distinct_id = ANY(%s) AND (e.xact_id, e.position) <= (%s::xid8, %s)
                GROUP BY 1, 2""",
            [project_id, list(distinct_ids), *upto],
        )
        shares = {(project_id, event_type, hour): n for event_type, hour, n in cursor.fetchall()}
        if not shares:
            return 0
        erased = np.array(sorted(numbers_known(cursor, project_id, distinct_ids)), np.uint32)
        keys = sorted(shares)
        taken: dict[HourKey, int] = dict.fromkeys(keys, 0)
        rows, gone = [], []
        for key, chunk, events in _chunks(cursor, into, keys, last_only=False):
            theirs = np.isin(events.numbers, erased)
            if not theirs.any():
                continue
            taken[key] += int(theirs.sum())
            if theirs.all():
                gone.append((*key, chunk))
            else:
                rows.append(_row(key, chunk, events.take(~theirs)))
        short = [key for key in keys if taken[key] != shares[key]]
        if short:
            key = short[0]
            raise ReadModelDrift(
                f"{into}: the hour {key} holds {taken[key]} events of the ids being erased, not the"
                f" {shares[key]} the event store holds; verify and replay its projection"
            )
        if rows:
            _write(cursor, into, rows)
        delete_keys(cursor, table=schema.EVENT_TIMELINES, into=into, keys=gone)
        return len(rows) + len(gone)

    def verify_queries(self) -> list[VerifyQuery]:
        return [VerifyQuery(schema.EVENT_TIMELINES, _EXPECTED, params=_stored, actual=_ACTUAL, columns=_COLUMNS)]


# Verify compares each hour key's events (its chunks together, in any order) by their count and
# a fingerprint: md5 of 'number:offset:app_version:os_name' per event, sorted, joined by ','.
_COLUMNS: Final = ["project_id", "event_type", "hour", "event_count", "events"]
_OFFSET: Final = """(extract(epoch FROM e."timestamp" - date_trunc('hour', e."timestamp", 'UTC')) * 1000000)::int8"""
_EXPECTED: Final = f"""
    SELECT project_id, event_type, hour, count(*)::int8,
           md5(string_agg(item, ',' ORDER BY number, us, app_version COLLATE "C", os_name COLLATE "C"))
    FROM (SELECT e.project_id, e.event_type, date_trunc('hour', e."timestamp", 'UTC') AS hour, n.number,
                 {_OFFSET} AS us, coalesce(e.app_version, '') AS app_version, coalesce(e.os_name, '') AS os_name,
                 concat_ws(':', n.number, {_OFFSET}, coalesce(e.app_version, ''), coalesce(e.os_name, '')) AS item
          FROM {schema.EVENTS} e
          JOIN {schema.USER_NUMBERS} n ON n.project_id = e.project_id AND n.distinct_id = e.distinct_id
          WHERE {{upto}}) x
    GROUP BY 1, 2, 3"""
_ACTUAL: Final = """SELECT * FROM unnest(%(stored_project_id)s::int8[], %(stored_event_type)s::text[],
    %(stored_hour)s::timestamptz[], %(stored_event_count)s::int8[], %(stored_events)s::text[])"""


def _stored(cursor: Any, upto: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Each hour key's chunks, their events fingerprinted as _EXPECTED does; read in key order,
    a key at a time in memory."""
    cursor.execute(
        f"""SELECT project_id, event_type, hour, app_versions, os_names, events FROM {schema.EVENT_TIMELINES}
            ORDER BY project_id, event_type, hour"""
    )
    result: dict[str, list[Any]] = {f"stored_{name}": [] for name in _COLUMNS}
    rows = iter(lambda: cursor.fetchmany(1_000), [])
    for (project_id, event_type, hour), chunks in groupby(chain.from_iterable(rows), key=lambda row: row[:3]):
        items: list[tuple[int, int, str, str]] = []
        for *_, versions, os_names, blob in chunks:
            events = decode(blob, versions, os_names)
            items.extend(
                (number, offset, *events.variants[code])
                for number, offset, code in zip(events.numbers.tolist(), events.offsets.tolist(),
                                                events.codes.tolist(), strict=True)
            )  # fmt: skip
        items.sort()
        text = ",".join(f"{number}:{offset}:{version}:{os_name}" for number, offset, version, os_name in items)
        result["stored_project_id"].append(project_id)
        result["stored_event_type"].append(event_type)
        result["stored_hour"].append(hour.astimezone(UTC))
        result["stored_event_count"].append(len(items))
        result["stored_events"].append(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest())
    return result


assert HOUR_US < 1 << 32  # an offset into the hour fits the uint32 column
