"""Sessions (schema.SESSIONS): explicit ones, grouped by the SDK's session_id, and inferred ones
for events without one, walked per (distinct_id, device_id) with the inactivity gap and the cap
of the settings. The rules are in the pure `sessions` package; this module reads and writes.

Never recomputes a session from all its events on the hot path (that made projection lag grow
with session length): explicit sessions are merged in SQL, commutatively; inferred ones read
events only when a late event reshapes them, and then only from the session it lands in.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

import psycopg
from django.conf import settings

from contracts import schema
from contracts.events import SESSION_END
from projections import session_durations
from projections.projection import EventsOnly, StoredEvent, VerifyQuery
from projections.upsert import stage_rows
from sessions.inferred import Key, Rewalk, Step, advance, near_since, rewalk, sessionize
from sessions.session import INFERRED_PREFIX, SCREEN_TYPES, Event, Session, fold_explicit

_COLUMNS: Final = schema.SESSIONS.column_list()
_C: Final = 'COLLATE "C"'  # the total order's string comparison: code points, as Python's


def _first_order(table: str) -> str:
    """The row's first event in the total order of sessions.session.Event, as a row value."""
    names = ("first_event", "distinct_id", "device_id", "app_version", "os_name", "os_version")
    return f"({table}.start_at, {', '.join(f'{table}.{name} {_C}' for name in names)})"


_FIRST_IS_NEW: Final = f"EXCLUDED.inferred OR {_first_order('EXCLUDED')} < {_first_order('t')}"
# Explicit rows are partial summaries merged commutatively (least, greatest, sums, the first
# event's values from the row whose first event is earlier in the total order, 'explicit' wins):
# any batching and any delivery order give one row. Inferred rows come whole (see write) and
# replace the old one.
_MERGE: Final = f"""
    inferred = EXCLUDED.inferred,
    distinct_id = CASE WHEN {_FIRST_IS_NEW} THEN EXCLUDED.distinct_id ELSE t.distinct_id END,
    device_id = CASE WHEN {_FIRST_IS_NEW} THEN EXCLUDED.device_id ELSE t.device_id END,
    app_version = CASE WHEN {_FIRST_IS_NEW} THEN EXCLUDED.app_version ELSE t.app_version END,
    os_name = CASE WHEN {_FIRST_IS_NEW} THEN EXCLUDED.os_name ELSE t.os_name END,
    os_version = CASE WHEN {_FIRST_IS_NEW} THEN EXCLUDED.os_version ELSE t.os_version END,
    first_event = CASE WHEN {_FIRST_IS_NEW} THEN EXCLUDED.first_event ELSE t.first_event END,
    start_at = CASE WHEN EXCLUDED.inferred THEN EXCLUDED.start_at ELSE least(t.start_at, EXCLUDED.start_at) END,
    end_at = CASE WHEN EXCLUDED.inferred THEN EXCLUDED.end_at ELSE greatest(t.end_at, EXCLUDED.end_at) END,
    last_event = CASE WHEN EXCLUDED.inferred
                        OR (EXCLUDED.end_at, EXCLUDED.last_event {_C}) > (t.end_at, t.last_event {_C})
                      THEN EXCLUDED.last_event ELSE t.last_event END,
    event_count = CASE WHEN EXCLUDED.inferred THEN 0 ELSE t.event_count END + EXCLUDED.event_count,
    screen_count = CASE WHEN EXCLUDED.inferred THEN 0 ELSE t.screen_count END + EXCLUDED.screen_count,
    ended_by = CASE WHEN EXCLUDED.inferred OR t.ended_by <> 'explicit' THEN EXCLUDED.ended_by ELSE t.ended_by END
"""

# An event belongs to an inferred session when it has no session_id, or one in the reserved form.
_IS_INFERRED: Final = "(e.session_id IS NULL OR starts_with(e.session_id, %(prefix)s))"
_EVENT_FIELDS: Final = """e."timestamp", e.event_type, e.distinct_id, coalesce(e.device_id, ''),
    coalesce(e.app_version, ''), coalesce(e.os_name, ''), coalesce(e.os_version, '')"""

# The existing inferred sessions `advance` needs, for every touched key at once: those ending
# at or after near_since; bounded below on start_at too (a session is shorter than the cap), so
# it is a range of the (project_id, distinct_id, device_id, start_at) index.
_NEAR: Final = """
SELECT {columns}
FROM unnest(%(project_ids)b::int8[], %(distinct_ids)b::text[], %(device_ids)b::text[],
            %(since)b::timestamptz[], %(starts_after)b::timestamptz[])
     AS k(project_id, distinct_id, device_id, since, starts_after)
JOIN {into} s ON s.project_id = k.project_id AND s.distinct_id = k.distinct_id AND s.device_id = k.device_id
             AND s.start_at > k.starts_after AND s.end_at >= k.since AND s.inferred
"""

# A rewalk's events: every event of the key in its range, by the (project_id, distinct_id,
# "timestamp") index. TRICKY: only up to the batch's last event. Everything at or before it has
# committed (the runner read it below the horizon) and is either applied already or in this
# batch; anything after belongs to a later batch, which would count it a second time.
_REWALK_EVENTS: Final = f"""
SELECT k.n, {_EVENT_FIELDS}
FROM unnest(%(ns)b::int4[], %(project_ids)b::int8[], %(distinct_ids)b::text[], %(device_ids)b::text[],
            %(since)b::timestamptz[], %(until)b::timestamptz[])
     AS k(n, project_id, distinct_id, device_id, since, until)
JOIN {schema.EVENTS} e ON e.project_id = k.project_id AND e.distinct_id = k.distinct_id
                       AND e."timestamp" >= k.since AND e."timestamp" < coalesce(k.until, 'infinity')
WHERE coalesce(e.device_id, '') = k.device_id AND {_IS_INFERRED}
  AND (e.xact_id, e.position) <= (%(xact_id)s::xid8, %(position)s)
"""


def _explicit_sessions_sql(where: str) -> str:
    """Explicit sessions recomputed from the events `e` matching `where`: verify's reference and
    erasure's recomputation. Named parameters: prefix, screen_types, session_end."""
    order = ", ".join(f"{name} {_C}" for name in ("event_type", "distinct_id", "device_id", "app_version", "os_name"))
    return f"""
WITH ev AS (
    SELECT e.project_id, e.session_id, e."timestamp" AS ts, e.event_type, e.distinct_id,
           coalesce(e.device_id, '') AS device_id, coalesce(e.app_version, '') AS app_version,
           coalesce(e.os_name, '') AS os_name, coalesce(e.os_version, '') AS os_version
    FROM {schema.EVENTS} e
    WHERE e.session_id IS NOT NULL AND NOT starts_with(e.session_id, %(prefix)s) AND {where}
), first AS (
    SELECT DISTINCT ON (project_id, session_id) * FROM ev
    ORDER BY project_id, session_id, ts, {order}, os_version {_C}
), last AS (
    SELECT DISTINCT ON (project_id, session_id) project_id, session_id, ts, event_type FROM ev
    ORDER BY project_id, session_id, ts DESC, event_type {_C} DESC
), totals AS (
    SELECT project_id, session_id, count(*) AS event_count,
           count(*) FILTER (WHERE event_type = ANY(%(screen_types)s::text[])) AS screen_count,
           bool_or(event_type = %(session_end)s) AS ended
    FROM ev GROUP BY project_id, session_id
)
SELECT t.project_id, t.session_id, false, f.distinct_id, f.device_id, f.app_version, f.os_name, f.os_version,
       f.ts, l.ts, t.event_count, t.screen_count, f.event_type, l.event_type,
       CASE WHEN t.ended THEN 'explicit' ELSE 'inactivity' END
FROM totals t JOIN first f USING (project_id, session_id) JOIN last l USING (project_id, session_id)
"""


def _sql_constants() -> dict[str, Any]:
    return {"prefix": INFERRED_PREFIX, "screen_types": sorted(SCREEN_TYPES), "session_end": SESSION_END}


def session_limits() -> tuple[timedelta, timedelta]:
    """(inactivity gap, cap) from the settings. Changing either needs a replay of `sessions`."""
    return (
        timedelta(minutes=settings.TIDELOG_SESSION_INACTIVITY_MINUTES),
        timedelta(hours=settings.TIDELOG_SESSION_MAX_HOURS),
    )


@dataclass
class Changes:
    explicit: list[Session] = field(default_factory=list)
    """One partial summary per explicit session the batch touched."""
    inferred: dict[Key, list[Event]] = field(default_factory=dict)
    """The batch's events without a session_id, per key, sorted."""
    upto: tuple[str, int] = ("0", 0)
    """The batch's last event's (xact_id, position)."""


def session_event(event: StoredEvent) -> Event:
    return Event(
        event.timestamp, event.event_type, event.distinct_id, event.device_id or "", event.app_version or "",
        event.os_name or "", event.os_version or "",
    )  # fmt: skip


class Sessions(EventsOnly):
    name: str = "sessions"
    tables: Sequence[str] = (schema.SESSIONS.name, schema.SESSION_DURATIONS.name)

    def apply(self, events: Sequence[StoredEvent], inputs: None = None) -> Changes:
        explicit: dict[tuple[int, str], list[Event]] = {}
        inferred: dict[Key, list[Event]] = {}
        for stored in events:
            event = session_event(stored)
            session_id = stored.session_id
            if session_id is not None and not session_id.startswith(INFERRED_PREFIX):
                group = explicit.get((stored.project_id, session_id))
                if group is None:
                    explicit[(stored.project_id, session_id)] = [event]
                else:
                    group.append(event)
            else:
                key = (stored.project_id, stored.distinct_id, event.device_id)
                same_key = inferred.get(key)
                if same_key is None:
                    inferred[key] = [event]
                else:
                    same_key.append(event)
        for same_key in inferred.values():
            same_key.sort()
        last = events[-1] if events else None
        return Changes(
            [fold_explicit(project_id, session_id, group) for (project_id, session_id), group in explicit.items()],
            inferred,
            (last.xact_id, last.position) if last else ("0", 0),
        )

    def write(self, cursor: psycopg.Cursor, changes: Changes, tables: Mapping[str, str]) -> None:
        into = tables[schema.SESSIONS.name]
        rows: list[Session] = list(changes.explicit)
        deletes: list[tuple[int, str]] = []
        if changes.inferred:
            gap, cap = session_limits()
            near = _near_sessions(cursor, into, changes.inferred, gap, cap)
            plans: dict[Key, Rewalk] = {}
            steps: list[tuple[Key, Step]] = []
            for key, new in changes.inferred.items():
                step = advance(key, near.get(key, ()), new, gap=gap, cap=cap)
                if isinstance(step, Rewalk):
                    plans[key] = step
                else:
                    steps.append((key, step))
            if plans:
                events = _rewalk_events(cursor, plans, changes.upto)
                steps.extend(
                    (key, rewalk(key, plan, events.get(key, ()), gap=gap, cap=cap)) for key, plan in plans.items()
                )
            for (project_id, _, _), step in steps:
                rows.extend(step.upserts)
                deletes.extend((project_id, session_id) for session_id in step.deletes)
        durations = tables[schema.SESSION_DURATIONS.name]
        emptied = session_durations.delete_sessions(cursor, into, durations, deletes) if deletes else []
        if rows:
            stage = stage_rows(cursor, table=schema.SESSIONS, into=into, rows=rows)
            emptied += session_durations.upsert_sessions(cursor, into, durations, stage, _MERGE)
        session_durations.drop_emptied(cursor, durations, emptied)

    def erase(
        self,
        cursor: psycopg.Cursor,
        tables: Mapping[str, str],
        project_id: int,
        distinct_ids: Iterable[str],
        upto: tuple[str, int],
    ) -> int:
        """Before a person's events are deleted, under the runner's lock, with `upto` this
        projection's checkpoint: drop their inferred sessions (all of their events go), and
        recompute each explicit session holding any of their events from the events that stay,
        or drop it if none stay. Returns the rows deleted or rewritten."""
        into = tables[schema.SESSIONS.name]
        durations = tables[schema.SESSION_DURATIONS.name]
        params = {
            **_sql_constants(), "project_id": project_id, "erased": list(distinct_ids), "xact_id": upto[0],
            "position": upto[1],
        }  # fmt: skip
        theirs = "project_id = %(project_id)s AND inferred AND distinct_id = ANY(%(erased)s::text[])"
        cursor.execute(f"SELECT session_id FROM {into} WHERE {theirs}", params)
        inferred = [row[0] for row in cursor.fetchall()]
        upto_sql = "(e.xact_id, e.position) <= (%(xact_id)s::xid8, %(position)s)"
        cursor.execute(
            f"""SELECT DISTINCT e.session_id FROM {schema.EVENTS} e
                WHERE e.project_id = %(project_id)s AND e.distinct_id = ANY(%(erased)s::text[])
                  AND e.session_id IS NOT NULL AND NOT starts_with(e.session_id, %(prefix)s) AND {upto_sql}""",
            params,
        )
        touched = [row[0] for row in cursor.fetchall()]
        changed = {(project_id, session_id) for session_id in (*inferred, *touched)}
        emptied = session_durations.shift(cursor, into, durations, changed, -1)
        cursor.execute(f"DELETE FROM {into} WHERE {theirs}", params)
        if touched:
            params["touched"] = touched
            cursor.execute(
                f"DELETE FROM {into} WHERE project_id = %(project_id)s AND session_id = ANY(%(touched)s::text[])",
                params,
            )
            remaining = (
                f"e.project_id = %(project_id)s AND e.session_id = ANY(%(touched)s::text[])"
                f" AND NOT (e.distinct_id = ANY(%(erased)s::text[])) AND {upto_sql}"
            )
            cursor.execute(f"INSERT INTO {into} ({_COLUMNS}) {_explicit_sessions_sql(remaining)}", params)
        session_durations.shift(cursor, into, durations, changed, 1)
        session_durations.drop_emptied(cursor, durations, emptied)
        return len(inferred) + len(touched)

    def verify_queries(self) -> list[VerifyQuery]:
        inferred = f"""SELECT * FROM jsonb_to_recordset(%(inferred_sessions)s::jsonb) AS x(
            {", ".join(f"{column.sql} {column.type}" for column in schema.SESSIONS.columns)})"""
        expected = f"{_explicit_sessions_sql('{upto}')} UNION ALL {inferred}"
        return [
            VerifyQuery(schema.SESSIONS, expected, params=_inferred_expected),
            VerifyQuery(
                schema.SESSION_DURATIONS,
                session_durations.durations_sql(f"({expected}) AS s({_COLUMNS})"),
                params=_inferred_expected,
            ),
        ]


def _near_sessions(
    cursor: psycopg.Cursor, into: str, inferred: Mapping[Key, list[Event]], gap: timedelta, cap: timedelta
) -> dict[Key, list[Session]]:
    keys = list(inferred)
    since = [near_since(inferred[key][0].timestamp, gap) for key in keys]
    cursor.execute(
        _NEAR.format(columns=", ".join(f"s.{column.sql}" for column in schema.SESSIONS.columns), into=into),
        {
            "project_ids": [key[0] for key in keys],
            "distinct_ids": [key[1] for key in keys],
            "device_ids": [key[2] for key in keys],
            "since": since,
            "starts_after": [moment - cap for moment in since],
        },
        binary=True,
    )
    near: dict[Key, list[Session]] = {}
    for row in cursor.fetchall():
        session = Session(*row)
        near.setdefault((session.project_id, session.distinct_id, session.device_id), []).append(session)
    for sessions in near.values():
        sessions.sort(key=lambda session: session.start_at)
    return near


def _rewalk_events(
    cursor: psycopg.Cursor, plans: Mapping[Key, Rewalk], upto: tuple[str, int]
) -> dict[Key, list[Event]]:
    keys = list(plans)
    cursor.execute(
        _REWALK_EVENTS,
        {
            "prefix": INFERRED_PREFIX,
            "ns": list(range(len(keys))),
            "project_ids": [key[0] for key in keys],
            "distinct_ids": [key[1] for key in keys],
            "device_ids": [key[2] for key in keys],
            "since": [plans[key].since for key in keys],
            "until": [plans[key].until for key in keys],
            "xact_id": upto[0],
            "position": upto[1],
        },
        binary=True,
    )
    events: dict[Key, list[Event]] = {}
    for n, *fields in cursor.fetchall():
        events.setdefault(keys[n], []).append(Event(*fields))
    return events


def _inferred_expected(cursor: Any, upto: Mapping[str, Any]) -> dict[str, Any]:
    """verify's inferred sessions: the plain walk over every event up to the checkpoint, one
    (project, distinct_id, device_id) at a time (the rows come sorted by it)."""
    gap, cap = session_limits()
    cursor.execute(
        f"""SELECT e.project_id, {_EVENT_FIELDS} FROM {schema.EVENTS} e
            WHERE {_IS_INFERRED} AND (e.xact_id, e.position) <= (%(xact_id)s::xid8, %(position)s)
            ORDER BY 1, 4, 5""",
        {**upto, "prefix": INFERRED_PREFIX},
    )
    sessions: list[Session] = []
    key: Key | None = None
    same_key: list[Event] = []
    while rows := cursor.fetchmany(10_000):
        for project_id, *fields in rows:
            event = Event(*fields)
            if (project_id, event.distinct_id, event.device_id) != key:
                if key is not None:
                    sessions.extend(sessionize(key, same_key, gap=gap, cap=cap))
                key, same_key = (project_id, event.distinct_id, event.device_id), []
            same_key.append(event)
    if key is not None:
        sessions.extend(sessionize(key, same_key, gap=gap, cap=cap))
    rows_json = [
        {name: value.isoformat() if hasattr(value, "isoformat") else value for name, value in session._asdict().items()}
        for session in sessions
    ]
    return {**_sql_constants(), "inferred_sessions": json.dumps(rows_json)}
