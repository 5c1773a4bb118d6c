"""The sessions' duration histograms (schema.SESSION_DURATIONS), kept beside the sessions by the
sessions projection in the same statements that change the sessions: a DELETE or an upsert of
sessions returns the rows it removed or wrote, the rows as they stood before are read in the
same statement (one snapshot), and the difference, old rows out and new rows in, is merged into
the histograms. Erasure, which changes sessions by its own SQL, takes their share out before and
puts it back after (`shift`).
"""

from collections.abc import Collection
from typing import Any, Final

import psycopg

from contracts import schema
from contracts.session_durations import bin_sql

_KEY: Final = schema.SESSION_DURATIONS.key
_GROUP: Final = ", ".join(_KEY)
_CHANGED: Final = ("project_id", "start_at", "end_at", "app_version", "os_name", "event_count")


def _changed_columns(alias: str) -> str:
    """The columns a session's share depends on, of the table named `alias`."""
    return ", ".join(f"{alias}.{name}" for name in _CHANGED)


def _per_bin(changed: str) -> str:
    """The signed sessions `changed` (a FROM item named `c`: project_id, start_at, end_at,
    app_version, os_name, event_count and `sign`, 1 for a session in, -1 for one out) per
    histogram row and bin: how many sessions and events that bin gains. Bins that gain nothing
    (a session that grew within its bin) are left out of the count but not of the events."""
    seconds = "extract(epoch FROM c.end_at - c.start_at)::float8"
    return f"""
SELECT c.project_id, g.grain, date_trunc(g.grain, c.start_at, 'UTC') AS bucket, c.app_version, c.os_name,
       {bin_sql(seconds)} AS bin, sum(c.sign)::int4 AS sessions, sum(c.sign * c.event_count)::int8 AS events
FROM {changed} CROSS JOIN (VALUES ('hour'), ('day')) g(grain)
GROUP BY 1, 2, 3, 4, 5, 6
HAVING sum(c.sign) <> 0 OR sum(c.sign * c.event_count) <> 0"""


def durations_sql(sessions: str) -> str:
    """The histogram rows of the sessions `sessions` (a FROM item named `s` with SESSIONS'
    columns, as `rm_sessions s`): what the table must hold for them, column for column."""
    return f"""
SELECT {_GROUP}, sum(sessions)::int4, sum(events)::int8,
       array_agg(bin ORDER BY bin), array_agg(sessions ORDER BY bin)
FROM ({_per_bin(f"(SELECT s.*, 1 AS sign FROM {sessions}) c")}) AS x GROUP BY {_GROUP}"""


def _merge(durations: str, changed_ctes: str) -> str:
    """One statement: the CTEs `changed_ctes` (defining `changed`: signed sessions, see
    _per_bin), then each histogram row they touch gets its totals moved and its bins merged (a
    bin that reaches zero leaves the arrays). Returns each touched row's key and sessions."""
    return f"""
WITH {changed_ctes},
delta AS ({_per_bin("changed c")}),
keyed AS (SELECT {_GROUP}, sum(sessions) AS sessions, sum(events) AS events FROM delta GROUP BY {_GROUP}),
merged AS (
    SELECT {_GROUP}, bin, sum(n)::int4 AS n FROM (
        SELECT {", ".join(f"d.{name}" for name in _KEY)}, b.bin, b.n
        FROM {durations} d JOIN keyed USING ({_GROUP}) CROSS JOIN unnest(d.bins, d.counts) AS b(bin, n)
        UNION ALL
        SELECT {_GROUP}, bin, sessions FROM delta
    ) AS x GROUP BY {_GROUP}, bin HAVING sum(n) <> 0
),
arrays AS (
    SELECT {_GROUP}, array_agg(bin ORDER BY bin) AS bins, array_agg(n ORDER BY bin) AS counts
    FROM merged GROUP BY {_GROUP}
)
INSERT INTO {durations} AS d ({schema.SESSION_DURATIONS.column_list()})
SELECT {_GROUP}, k.sessions, k.events, coalesce(a.bins, '{{}}'::int4[]), coalesce(a.counts, '{{}}'::int4[])
FROM keyed k LEFT JOIN arrays a USING ({_GROUP})
ON CONFLICT ({_GROUP}) DO UPDATE
SET sessions = d.sessions + EXCLUDED.sessions, events = d.events + EXCLUDED.events,
    bins = EXCLUDED.bins, counts = EXCLUDED.counts
RETURNING {_GROUP}, sessions"""


def _emptied(cursor: psycopg.Cursor) -> list[tuple[Any, ...]]:
    return [row[:-1] for row in cursor.fetchall() if row[-1] == 0]


_KEYS: Final = "unnest(%(project_ids)s::int8[], %(session_ids)s::text[]) AS k(project_id, session_id)"


def _keys(keys: Collection[tuple[int, str]]) -> dict[str, list[Any]]:
    return {"project_ids": [key[0] for key in keys], "session_ids": [key[1] for key in keys]}


def delete_sessions(
    cursor: psycopg.Cursor, sessions: str, durations: str, keys: Collection[tuple[int, str]]
) -> list[tuple[Any, ...]]:
    """Deletes the sessions `keys` and takes their share out. Returns the rows left empty."""
    gone = f"""changed AS (
        DELETE FROM {sessions} t USING {_KEYS}
        WHERE t.project_id = k.project_id AND t.session_id = k.session_id
        RETURNING {_changed_columns("t")}, -1 AS sign)"""
    cursor.execute(_merge(durations, gone), _keys(keys))
    return _emptied(cursor)


def upsert_sessions(
    cursor: psycopg.Cursor, sessions: str, durations: str, stage: str, update: str
) -> list[tuple[Any, ...]]:
    """Upserts the sessions staged in `stage` (DO UPDATE SET `update`; `t` the row, EXCLUDED the
    new one) and moves each one's share from what it was to what it is. Returns the rows left
    empty (a session whose start moved to another hour)."""
    table = schema.SESSIONS
    upserted = f"""old AS (
        SELECT {_changed_columns("s")}
        FROM {sessions} s JOIN {stage} n USING (project_id, session_id)
    ),
    up AS (
        INSERT INTO {sessions} AS t ({table.column_list()}) SELECT {table.column_list()} FROM {stage}
        ON CONFLICT ({", ".join(table.key)}) DO UPDATE SET {update}
        RETURNING {_changed_columns("t")}
    ),
    changed AS (SELECT *, -1 AS sign FROM old UNION ALL SELECT *, 1 AS sign FROM up)"""
    cursor.execute(_merge(durations, upserted))
    return _emptied(cursor)


def shift(
    cursor: psycopg.Cursor, sessions: str, durations: str, keys: Collection[tuple[int, str]], sign: int
) -> list[tuple[Any, ...]]:
    """Puts in (sign 1) or takes out (sign -1) the share of the sessions `keys` as they stand
    now: for changes made by other SQL, out before them and in after. Returns the rows left
    empty."""
    if not keys:
        return []
    changed = f"""changed AS (
        SELECT {_changed_columns("s")}, {sign} AS sign
        FROM {sessions} s JOIN {_KEYS} USING (project_id, session_id))"""
    cursor.execute(_merge(durations, changed), _keys(keys))
    return _emptied(cursor)


def drop_emptied(cursor: psycopg.Cursor, durations: str, emptied: list[tuple[Any, ...]]) -> None:
    """Deletes the histogram rows `emptied` that are still empty (after every change of the
    batch: a row one statement emptied, another may fill again)."""
    if not emptied:
        return
    columns = list(zip(*emptied, strict=True))
    cursor.execute(
        f"""DELETE FROM {durations} d
            USING unnest(%s::int8[], %s::text[], %s::timestamptz[], %s::text[], %s::text[]) AS z({_GROUP})
            WHERE {" AND ".join(f"d.{name} = z.{name}" for name in _KEY)} AND d.sessions = 0""",
        [list(column) for column in columns],
    )
