"""Read-model rows decoded once per query process, and answers computed from them, reused while
the rows are unchanged.

A dashboard asks the same months again and again, and almost all of a month's read-model rows
(a day's rollup of a type, an hour's timelines chunk) stop changing once their hour is past:
only late events, an erasure or a replay rewrite them. Two ways to keep what they give:

- fetch_cached: each row's large column (a set of users) read and decoded once, kept by the
  row's version; a query reads the rows' keys and versions, and the large column of the rows it
  does not hold.
- fetch_groups: per group of rows (a bucket of event-aggregates, a day of a funnel's step type),
  the answer computed from them, kept by a digest of the group's row versions; a query reads one
  digest a group (at 10M events, a month of event-aggregates by app_version: 30 digests of
  15,343 rows) and computes only the groups that changed.

A row version is its key (or its tuple id), its xmin (the transaction that wrote it, widened to
64 bits) and its cmin (the command within that transaction): PostgreSQL gives every rewrite of a
row a new tuple with its writer's xmin and cmin, so the same version is the same content (VACUUM
FULL and CLUSTER move tuples but keep both). Keys are per database and table. What a cache hit
returns is shared by every request: never mutate it (sets are frozen, arrays copied first).

Bounded by TIDELOG_QUERY_CACHE_MB per process, least recently used out first; 0 turns it off.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections, transaction

from observability.metrics import QUERY_CACHE_GROUPS, QUERY_CACHE_ROWS

Key = tuple[Any, ...]


def fetch_binary(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of `sql` in PostgreSQL's binary format: a bytea (a set of users) arrives as its
    bytes, not as hex text to decode (the rollups' sets of a month at 10M: 138 to 60 ms). On the
    query side's connection and transaction; its errors are Django's, as every other query's."""
    wrapper = connections[settings.QUERY_DB_ALIAS]
    with wrapper.wrap_database_errors:
        wrapper.ensure_connection()
        with psycopg.Cursor(wrapper.connection) as cursor:
            cursor.execute(sql, params, binary=True)
            return cursor.fetchall()


class RowCache:
    """Decoded values by row version, within a byte budget (each value's size as its caller
    tells it: the bytes it was decoded from, about what it holds in memory)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self._values: OrderedDict[Key, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()  # the query API serves requests on several threads

    def get(self, key: Key) -> Any | None:
        with self._lock:
            found = self._values.get(key)
            if found is None:
                return None
            self._values.move_to_end(key)
            return found[0]

    def put(self, key: Key, value: Any, size: int) -> None:
        if size > self.budget:
            return
        with self._lock:
            old = self._values.pop(key, None)
            if old is not None:
                self.size -= old[1]
            self._values[key] = (value, size)
            self.size += size
            evicted = 0
            while self.size > self.budget:
                _, (_, dropped) = self._values.popitem(last=False)
                self.size -= dropped
                evicted += 1
        if evicted:
            QUERY_CACHE_ROWS.labels("evicted").inc(evicted)

    def __len__(self) -> int:
        return len(self._values)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self.size = 0


_cache: RowCache | None = None


def cache() -> RowCache:
    global _cache
    budget = settings.TIDELOG_QUERY_CACHE_MB * 1024 * 1024
    if _cache is None or _cache.budget != budget:
        _cache = RowCache(budget)
    return _cache


RETRIES = 3


def fetch_cached(
    *,
    table: str,
    keys: Sequence[str],
    columns: str,
    where: str,
    params: Sequence[Any],
    payload: Sequence[str],
    decode: Callable[..., tuple[Any, int]],
) -> list[tuple[Any, ...]]:
    """`SELECT {columns}, {payload} FROM {table} WHERE {where}` (binary), with each row's
    payload (expressions over the row) passed through `decode` (which returns the value and its
    size in bytes), the values served from the cache where the row, its `keys` columns and its
    version, is unchanged. Returns each row's `columns`, then its value."""
    rows_cache = cache()
    if rows_cache.budget > 0:
        for _ in range(RETRIES):
            found = _through_cache(rows_cache, table, keys, columns, where, params, payload, decode)
            if found is not None:
                return found
    # No cache, or rows that kept changing under the reads: everything as it is now.
    rows = fetch_binary(f"SELECT {columns}, {', '.join(payload)} FROM {table} WHERE {where}", params)
    width = len(rows[0]) - len(payload) if rows else 0
    return [(*row[:width], decode(*row[width:])[0]) for row in rows]


# A row version: its key, and its xmin and cmin (the transaction and the command within it that
# wrote it; a transaction that rewrites a row sees its own rewrites, with its one xmin), as one
# text (a record's text quotes what would make it ambiguous): one object a row, not eight.
# TRICKY: xmin is 32 bits and wraps around; widened to the 64-bit transaction id nearest the
# snapshot's (every live row's is within 2^31 of it), a version never repeats. (A row frozen
# more than 2^31 transactions ago widens differently after a wraparound: a new key, a miss.)
_XMIN_64 = (
    "snapshot + ((t.xmin::text::int8 - (snapshot & 4294967295)) %% 4294967296 + 6442450944) %% 4294967296 - 2147483648"
)
_VERSION = "ROW({keys}, " + _XMIN_64 + ", t.cmin)::text, t.ctid::text"
_FROM = "{table} t CROSS JOIN (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8 AS snapshot) s"


def _through_cache(
    rows_cache: RowCache, table: str, keys: Sequence[str], columns: str, where: str, params: Sequence[Any],
    payload: Sequence[str], decode: Callable[..., tuple[Any, int]],
) -> list[tuple[Any, ...]] | None:  # fmt: skip
    """fetch_cached's answer through the cache, or None where a row changed between the two
    reads (the list of versions, then the rows the cache lacks)."""
    database = connections[settings.QUERY_DB_ALIAS].settings_dict["NAME"]
    version_of = _VERSION.format(keys=", ".join(keys))
    source = _FROM.format(table=table)
    listed = fetch_binary(f"SELECT {columns}, {version_of} FROM {source} WHERE {where}", params)
    width = len(listed[0]) - 2 if listed else 0
    found: dict[str, Any] = {}
    wanted: dict[str, str] = {}
    for row in listed:
        value = rows_cache.get((database, table, row[-2]))
        if value is None:
            wanted[row[-1]] = row[-2]
        else:
            found[row[-1]] = value
    if wanted:
        # The rows not held, with their version again: a row rewritten since it was listed is
        # not the one listed. A few of many by their tuple ids (a TID scan: no index, no
        # filter); most of them (a first read) by the same WHERE, which sends no list of ids.
        select = f"SELECT {version_of}, {', '.join(payload)} FROM {source}"
        if len(wanted) * 2 < len(listed):
            fetched = fetch_binary(f"{select} WHERE t.ctid = ANY(%s::tid[])", [list(wanted)])
        else:
            fetched = fetch_binary(f"{select} WHERE {where}", _where_params(columns, params))
        for version, tid, *got in fetched:
            if tid not in wanted:
                continue  # held already (the second way reads every row)
            if wanted[tid] != version:
                return None
            value, size = decode(*got)
            rows_cache.put((database, table, version), value, size)
            found[tid] = value
    if len(found) < len(listed):
        return None
    QUERY_CACHE_ROWS.labels("hit").inc(len(listed) - len(wanted))
    QUERY_CACHE_ROWS.labels("miss").inc(len(wanted))
    return [(*row[:width], found[row[-1]]) for row in listed]


def _where_params(columns: str, params: Sequence[Any]) -> Sequence[Any]:
    """`params` less those of the SELECT list's placeholders (they come first)."""
    return params[columns.count("%s") :]


# --- Answers per group of rows -----------------------------------------------------------------

# A group's digest: every row's tuple id, 64-bit xmin and cmin, in tuple id order. The three name
# one tuple version (a slot is reused only by a later transaction's tuple), so an equal digest is
# the same rows, unchanged, whatever the range or filters that chose them.
_DIGEST = "sha256(string_agg(tidsend(t.ctid) || int8send(" + _XMIN_64 + ") || int4send(t.cmin::text::int4), ''"
_DIGEST += " ORDER BY t.ctid))"


def fetch_groups(
    *,
    table: str,
    group: str,
    tally: str,
    columns: str,
    where: str,
    params: Sequence[Any],
    compute: Callable[[list[tuple[Any, ...]]], tuple[Any, int]],
    kind: str,
    check: Callable[[list[tuple[Any, Any]]], None] | None = None,
) -> list[tuple[Any, Any]]:
    """Per group of the rows of `SELECT … FROM {table} t WHERE {where}` (`group`, an expression
    over a row with no placeholder): `compute` of the group's rows (their `columns`, after the
    group), which returns the group's answer and its size in bytes. Served from the cache where
    the group's rows are unchanged (their digest), so a month asked again computes only the
    buckets that changed. `kind` names everything else an answer depends on (how the rows are
    computed: which columns, with a breakdown's values or without). `check`, given each group's
    `tally` (an aggregate over its rows) before any of `columns` is read, may refuse by raising.
    In one snapshot, so the digests and the rows read agree. Returns (group, answer) per group,
    in no order."""
    alias = settings.QUERY_DB_ALIAS
    rows_cache = cache()
    on = rows_cache.budget > 0
    is_nested = connections[alias].in_atomic_block
    # No savepoint inside a caller's transaction: nothing here writes, and an error ends the
    # caller's transaction anyway.
    with transaction.atomic(using=alias, savepoint=False):
        if not is_nested:  # a caller's transaction (a funnel's: REPEATABLE READ) keeps its own
            with connections[alias].cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        digest = f", {_DIGEST}" if on else ""
        listed = fetch_binary(
            f"SELECT {group}, {tally}{digest} FROM {_FROM.format(table=table)} WHERE {where} GROUP BY 1", params
        )
        if check is not None:
            check([(row[0], row[1]) for row in listed])
        database = connections[alias].settings_dict["NAME"]
        answers: list[tuple[Any, Any]] = []
        missing: dict[Any, Key] = {}
        for row in listed:
            key = (database, table, kind, row[0], row[-1])
            answer = rows_cache.get(key) if on else None
            if answer is None:
                missing[row[0]] = key
            else:
                answers.append((row[0], answer))
        rows: list[tuple[Any, ...]] = []
        if len(missing) == len(listed):  # everything (a first request; the cache off)
            rows = fetch_binary(f"SELECT {group}, {columns} FROM {table} t WHERE {where}", params)
        elif missing:
            rows = fetch_binary(
                f"SELECT {group}, {columns} FROM {table} t WHERE {where} AND {group} = ANY(%s)",
                [*params, list(missing)],
            )
    if on:
        QUERY_CACHE_GROUPS.labels("hit").inc(len(answers))
        QUERY_CACHE_GROUPS.labels("miss").inc(len(missing))
    if missing:
        grouped: dict[Any, list[tuple[Any, ...]]] = {}
        for row in rows:
            grouped.setdefault(row[0], []).append(row[1:])
        for found, group_rows in grouped.items():
            answer, size = compute(group_rows)
            if on:
                rows_cache.put(missing[found], answer, size)
            answers.append((found, answer))
    return answers
