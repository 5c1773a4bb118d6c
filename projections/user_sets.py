"""Read-model tables of counters with a set of users (contracts/user_sets.py): the rows'
columns are a key, then `event_count int8, user_count int4, users bytea`. A batch adds events
and users to some keys; an erasure takes some users and their events out again.

SQL cannot union two bitmaps, so a write reads the batch's rows, merges in Python and writes
them back whole: safe because only the projection's runner (holding its lock) or an erasure
(holding every runner's lock) writes its tables.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from contracts import schema
from contracts.user_sets import BitMap, decode, encode, fingerprint
from projections.projection import ReadModelDrift, VerifyQuery
from projections.upsert import delete_keys, upsert

Key = tuple[Any, ...]
SET_COLUMNS = ("event_count", "user_count", "users")


def _key_columns(table: schema.Table) -> tuple[schema.Column, ...]:
    return table.take(*table.key)


def _rows_of(cursor: Any, table: schema.Table, into: str, keys: Sequence[Key]) -> dict[Key, tuple[int, BitMap]]:
    """The stored rows of these keys: their count and their set."""
    if not keys:
        return {}
    columns = _key_columns(table)
    names = ", ".join(column.sql for column in columns)
    casts = ", ".join(f"%s::{column.type}[]" for column in columns)
    cursor.execute(
        f"""SELECT {", ".join(f"t.{c.sql}" for c in columns)}, t.event_count, t.users
            FROM {into} t JOIN unnest({casts}) k({names}) USING ({names})""",
        [[key[i] for key in keys] for i in range(len(columns))],
    )
    width = len(columns)
    return {tuple(row[:width]): (row[width], decode(row[width + 1])) for row in cursor.fetchall()}


def _write(cursor: Any, table: schema.Table, into: str, rows: list[tuple[Any, ...]]) -> None:
    """Rows as they are now (read and merged under the runner's lock): each replaces its old self."""
    upsert(
        cursor,
        table=table,
        into=into,
        update="event_count = EXCLUDED.event_count, user_count = EXCLUDED.user_count, users = EXCLUDED.users",
        rows=rows,
    )


def add_to_sets(cursor: Any, *, table: schema.Table, into: str, changes: Mapping[Key, tuple[int, BitMap]]) -> None:
    """Add each key's events and users to its row (a new key: a new row)."""
    if not changes:
        return
    keys = sorted(changes)
    stored = _rows_of(cursor, table, into, keys)
    rows = []
    for key in keys:
        count, users = changes[key]
        old = stored.get(key)
        if old is not None:
            count += old[0]
            users = users | old[1]
        rows.append((*key, count, len(users), encode(users)))
    _write(cursor, table, into, rows)


def remove_from_sets(cursor: Any, *, table: schema.Table, into: str, changes: Mapping[Key, int], users: BitMap) -> int:
    """Take `users` and `changes[key]` events out of each key's row: exactly what those users'
    events gave it; a row left without events is deleted. Returns the rows changed or deleted.
    Raises ReadModelDrift where a row is missing or holds fewer events than its share."""
    keys = sorted(changes)
    stored = _rows_of(cursor, table, into, keys)
    rows, gone = [], []
    for key in keys:
        old = stored.get(key)
        if old is None or old[0] < changes[key]:
            raise ReadModelDrift(
                f"{into}: the row {key} holds {old[0] if old else 'no'} events, fewer than the {changes[key]}"
                " being erased; verify and replay its projection"
            )
        count, remaining = old[0] - changes[key], old[1] - users
        if count == 0:
            gone.append(key)
        else:
            rows.append((*key, count, len(remaining), encode(remaining)))
    if rows:
        _write(cursor, table, into, rows)
    delete_keys(cursor, table=table, into=into, keys=gone)
    return len(rows) + len(gone)


def sets_verify_query(table: schema.Table, expected_per_user: str) -> VerifyQuery:
    """A VerifyQuery for a table of sets. `expected_per_user` selects the key's columns, then
    `number` (the user's, from USER_NUMBERS) and `events` (theirs in the key), one row per key
    and user, from the raw events restricted by {upto}. Both sides compare each key's count,
    set size and set fingerprint (contracts.user_sets.fingerprint)."""
    columns = _key_columns(table)
    names = [column.name for column in columns]
    keys = ", ".join(f"k{i}" for i in range(len(columns)))
    expected = f"""
        SELECT {keys}, sum(events)::int8, count(*)::int4, md5(string_agg(number::text, ',' ORDER BY number))
        FROM ({expected_per_user}) p({keys}, number, events)
        GROUP BY {keys}"""

    def stored(cursor: Any, upto: Mapping[str, Any]) -> dict[str, list[Any]]:
        cursor.execute(f"SELECT {table.column_list(without=('user_count',))} FROM {table}")
        result: dict[str, list[Any]] = {f"stored_{name}": [] for name in (*names, *SET_COLUMNS)}
        for *key, count, users in cursor.fetchall():
            numbers = decode(users)
            for name, value in zip(names, key, strict=True):
                result[f"stored_{name}"].append(value)
            result["stored_event_count"].append(count)
            result["stored_user_count"].append(len(numbers))
            result["stored_users"].append(fingerprint(numbers))
        return result

    actual = "SELECT * FROM unnest({})".format(
        ", ".join(f"%(stored_{c.name})s::{c.type}[]" for c in (*columns, *table.take("event_count", "user_count")))
        + ", %(stored_users)s::text[]"
    )
    return VerifyQuery(table, expected, params=stored, actual=actual, columns=[*names, *SET_COLUMNS])
