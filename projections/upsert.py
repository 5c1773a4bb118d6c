"""Add a batch of deltas to a read-model table at COPY speed: binary COPY into a temp staging
table, then one INSERT … ON CONFLICT DO UPDATE. Never commits: the runner's transaction does.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from contracts.schema import Table


def upsert(
    cursor: psycopg.Cursor,
    *,
    table: Table,
    into: str,
    update: str | None,
    rows: Iterable[Sequence[Any]],
) -> None:
    """Upsert `rows` (values in the order of `table`'s columns) into `into`, the live table or its
    shadow, keyed by `table.key`; `update` is the DO UPDATE SET clause (`t` is the table,
    EXCLUDED the new row), or None: DO NOTHING (a set of rows, not of counters)."""
    stage = stage_rows(cursor, table=table, into=into, rows=rows)
    names = table.column_list()
    cursor.execute(
        f"""INSERT INTO {into} AS t ({names}) SELECT {names} FROM {stage}
            ON CONFLICT ({", ".join(table.key)}) {"DO NOTHING" if update is None else f"DO UPDATE SET {update}"}"""
    )


def delete_keys(cursor: psycopg.Cursor, *, table: Table, into: str, keys: Sequence[Sequence[Any]]) -> None:
    """Delete the rows of these keys (values in the order of `table.key`) from `into`."""
    if not keys:
        return
    columns = table.take(*table.key)
    names = ", ".join(column.sql for column in columns)
    casts = ", ".join(f"%s::{column.type}[]" for column in columns)
    cursor.execute(
        f"DELETE FROM {into} t USING unnest({casts}) k({names}) WHERE ({', '.join(f't.{c.sql}' for c in columns)})"
        f" = ({', '.join(f'k.{c.sql}' for c in columns)})",
        [[key[i] for key in keys] for i in range(len(columns))],
    )


def _copy_type(typname: str) -> str:
    # pg_type names an array of text `_text`; psycopg's registry knows it as `text[]`.
    return f"{typname[1:]}[]" if typname.startswith("_") else typname


def stage_rows(cursor: psycopg.Cursor, *, table: Table, into: str, rows: Iterable[Sequence[Any]]) -> str:
    """COPY `rows` into the session's staging table for `into` (emptied at commit) and return
    its name: for a projection whose INSERT from it is its own (upsert's is the common one)."""
    # Measured on 5,000-row batches of rm_event_users: binary COPY + one INSERT 50-75 ms,
    # unnest() of binary array parameters 75-105 ms, text arrays 170 ms (psycopg dumps array
    # elements in Python; COPY rows in C).
    stage = f"stage_{into}"
    names = table.column_list()
    # Temp, so per session; created once and emptied at every commit (or rolled back with
    # the batch). IF NOT EXISTS: a batch that rolled back also rolled back its creation.
    # TRICKY: LIKE the target, for its columns' storage. A staged value is copied into the
    # target as it is: staged with the default storage (EXTENDED), a set or a timeline over
    # 2 KB was compressed by pglz here, and the target's STORAGE EXTERNAL (sets and timelines
    # are declared uncompressed) never applied: at 10M events 1,937 timeline chunks and 162 sets
    # were stored compressed, every batch paying pglz for them. (An ALTER TABLE … SET STORAGE
    # would do too, but psycopg deallocates the connection's prepared statements after any
    # ALTER, the runner's prepared read among them.) schema.Table's columns are the table's,
    # in order and type (tests/integration/test_schema.py).
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {into} INCLUDING STORAGE) ON COMMIT DELETE ROWS")
    # Emptied at commit, but a transaction may stage for the same table twice (a test's, an
    # erasure's): what the last call staged must not be staged again.
    cursor.execute(f"DELETE FROM {stage}")
    with cursor.copy(f"COPY {stage} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([_copy_type(column.type) for column in table.columns])
        for row in rows:
            copy.write_row(row)
    return stage
