"""Appends captured events to the event store: binary COPY into a staging table, then one
INSERT that keeps only (project, uuid) pairs never seen before. One transaction per call.

Knows the events table and nothing of Redis. Never updates or deletes an event row (a person's
erasure, projections/erasure.py, is the one code that deletes them).
"""

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from psycopg.abc import Buffer
from psycopg.adapt import Dumper
from psycopg.pq import Format

from command_side.faults import fault_point
from contracts.captured import BufferEntry
from contracts.follow import ANNOUNCE_APPENDER
from contracts.schema import APPENDED, BAD_EVENTS, EVENT_IDS, EVENTS, Column

log = logging.getLogger(__name__)

# The appended columns plus the arrival order; no constraints: the events table enforces them.
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS tidelog_staging (seq int4, "
    + ", ".join(f"{column.sql} {column.type}" for column in APPENDED)
    + ") ON COMMIT DELETE ROWS"
)
_STAGING_TYPES = ["int4", *(column.type for column in APPENDED)]
_COLUMNS = ", ".join(column.sql for column in APPENDED)

# TRICKY: the ledger insert and the events insert are one statement, so a (project, uuid) is in
# the ledger if and only if its event was stored (an erasure deletes the event, keeps the uuid).
# Two drainers storing the same uuid at once: the second's ON CONFLICT waits for the first to
# commit, then skips; if the first rolls back, the second inserts. DISTINCT ON drops duplicates
# inside one batch; the first arrival wins.
# ORDER BY: every drainer takes the ledger's keys in one order. Two drainers with overlapping
# uuids in different orders each wait on a key the other inserted first: a deadlock, which
# PostgreSQL breaks after a second by rolling one back (its entries then wait for reclaim).
_INSERT = f"""
WITH fresh AS (
    INSERT INTO {EVENT_IDS} (project_id, uuid)
    SELECT DISTINCT project_id, uuid FROM tidelog_staging
    ORDER BY project_id, uuid
    ON CONFLICT DO NOTHING
    RETURNING project_id, uuid
)
INSERT INTO {EVENTS} ({_COLUMNS})
SELECT {_COLUMNS} FROM (
    SELECT DISTINCT ON (s.project_id, s.uuid) s.*
    FROM tidelog_staging s JOIN fresh USING (project_id, uuid)
    ORDER BY s.project_id, s.uuid, s.seq
) first_arrivals
ORDER BY seq
"""
_COPY_BAD = f"COPY {BAD_EVENTS} ({BAD_EVENTS.column_list(without=('id',))}) FROM STDIN"


class _JsonbBytesDumper(Dumper):
    """Binary COPY of properties the API already encoded as JSON: jsonb's binary form is a
    version byte then the text, so the bytes go through without a decode-encode round."""

    format = Format.BINARY
    oid = 3802  # jsonb

    def dump(self, obj: bytes) -> Buffer:
        return b"\x01" + obj


@dataclass(frozen=True, slots=True)
class AppendResult:
    stored: int
    duplicates: int
    rejected: int


_ensured_days: set[date] = set()
_ensured_lock = threading.Lock()


def is_partitioned_natively() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regprocedure('tidelog_ensure_event_partition(date)') IS NOT NULL")
        return bool(cursor.fetchone()[0])


def engine() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
            " AND to_regprocedure('tidelog_ensure_event_partition(date)') IS NULL"
        )
        return "timescaledb" if cursor.fetchone()[0] else "postgres"


_native: bool | None = None


def partitions_ensure(days: Iterable[date]) -> None:
    """Create missing daily partitions (plain PostgreSQL) before rows for those days arrive.

    Days older than TIDELOG_PARTITIONS_BACKFILL_DAYS go to the default partition instead: a
    phone with a clock in 1970 must not create a partition a day for fifty years.
    """
    global _native
    if _native is None:
        _native = is_partitioned_natively()
    if not _native:
        return
    today = datetime.now(UTC).date()
    horizon = today - timedelta(days=settings.TIDELOG_PARTITIONS_BACKFILL_DAYS)
    missing = sorted(d for d in set(days) if d >= horizon and d not in _ensured_days)
    if not missing:
        return
    with _ensured_lock:
        # Its own short transaction: creating a partition takes a strong lock on the parent,
        # held until commit. Kept out of the append transaction, it is held for milliseconds.
        with transaction.atomic(), connection.cursor() as cursor:
            for day in missing:
                cursor.execute("SELECT tidelog_ensure_event_partition(%s)", [day])
        _ensured_days.update(missing)


def partitions_forget(days: Iterable[date]) -> None:
    """Retention dropped these days' partitions: ensure them again before trusting them (the
    partition creator then refuses a day the watermark has passed; its events go to default)."""
    with _ensured_lock:
        _ensured_days.difference_update(days)


def partitions_ensure_ahead() -> None:
    today = datetime.now(UTC).date()
    partitions_ensure(today + timedelta(days=d) for d in range(-1, settings.TIDELOG_PARTITIONS_AHEAD_DAYS + 1))


def append(entries: list[BufferEntry]) -> AppendResult:
    """Store the entries' events exactly once and their rejected events, in one transaction."""
    rows = []
    bad_rows = []
    days: set[date] = set()
    seq = 0
    for entry in entries:
        for event in entry.events:
            rows.append(
                (
                    seq, entry.project_id, event.uuid, event.event_type, event.distinct_id,
                    event.timestamp, event.received_at, event.client_timestamp, event.sent_at,
                    event.skew_ms, event.session_id, event.device_id, event.app_version,
                    event.os_name, event.os_version, event.properties_json,
                )
            )  # fmt: skip
            days.add(event.timestamp.astimezone(UTC).date())
            seq += 1
        for bad in entry.rejected:
            bad_rows.append(
                (
                    entry.project_id, bad.received_at, bad.code, bad.field, bad.message,
                    # text cannot hold NUL; the payload is kept readable, not refused.
                    bad.payload.decode("utf-8", errors="replace").replace("\x00", "\\u0000"),
                )
            )  # fmt: skip
    partitions_ensure(days)
    stored = 0
    with transaction.atomic(), connection.cursor() as cursor:
        # First, before this transaction writes anything: projection runners bound their reads
        # by the appenders they can see (contracts/follow.py), not by every writer on the server.
        cursor.execute(ANNOUNCE_APPENDER)
        if rows:
            cursor.execute(_STAGING)
            # Emptied at every commit; emptied here too for callers inside an outer
            # transaction (a test, a savepoint), where no commit came between two appends.
            cursor.execute("DELETE FROM tidelog_staging")
            cursor.cursor.adapters.register_dumper(bytes, _JsonbBytesDumper)
            with cursor.copy("COPY tidelog_staging FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_STAGING_TYPES)
                for row in rows:
                    copy.write_row(row)
            cursor.execute(_INSERT)
            stored = cursor.rowcount
        if bad_rows:
            with cursor.copy(_COPY_BAD) as copy:
                for bad_row in bad_rows:
                    copy.write_row(bad_row)
        fault_point("before_commit")
    return AppendResult(stored=stored, duplicates=len(rows) - stored, rejected=len(bad_rows))


# Binary COPY's framing: signature, flags, header extension length; the trailer is a -1 count.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"


def append_encoded(
    *, columns: tuple[Column, ...], rows: bytes, ledger: bytes, count: int, days: Iterable[date],
    expect_duplicates: bool = False,
) -> AppendResult:  # fmt: skip
    """Store `count` events already encoded as binary COPY tuples of `columns` (`rows`), with
    their (project_id, uuid) ledger tuples (`ledger`), exactly once, in one transaction: the
    bulk loader's path (command_side/synthetic.py), several times append()'s speed.

    Fresh uuids, the common case, go straight in: the ledger's COPY first (its primary key
    refuses any uuid already stored), then the events' COPY, no staging and no anti-join. If
    the ledger refuses one (a rerun of the same batch), or the caller expects duplicates, the
    batch goes through append()'s staging and ON CONFLICT instead, which stores only the new.
    The same invariants as append(): announced appender, ledger iff stored, partitions first.
    """
    partitions_ensure(days)
    names = ", ".join(column.sql for column in columns)
    if not expect_duplicates:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(ANNOUNCE_APPENDER)
                _copy_binary(cursor, f"COPY {EVENT_IDS} (project_id, uuid) FROM STDIN (FORMAT BINARY)", ledger)
                _copy_binary(cursor, f"COPY {EVENTS} ({names}) FROM STDIN (FORMAT BINARY)", rows)
                fault_point("before_commit")
            return AppendResult(stored=count, duplicates=0, rejected=0)
        except (IntegrityError, psycopg.errors.UniqueViolation):
            pass  # some were stored before: rolled back whole, done again below
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(ANNOUNCE_APPENDER)
        cursor.execute(_STAGING)
        cursor.execute("DELETE FROM tidelog_staging")
        # seq stays NULL: the uuids within one batch are distinct, no arrival order to keep.
        _copy_binary(cursor, f"COPY tidelog_staging ({names}) FROM STDIN (FORMAT BINARY)", rows)
        cursor.execute(_INSERT)
        stored = cursor.rowcount
        fault_point("before_commit")
    return AppendResult(stored=stored, duplicates=count - stored, rejected=0)


def _copy_binary(cursor: Any, sql: str, tuples: bytes) -> None:
    with cursor.copy(sql) as copy:
        copy.write(_COPY_HEADER)
        copy.write(tuples)
        copy.write(_COPY_TRAILER)


def event_ids_prune(*, batch: int = 50_000) -> int:
    """Forget (project, uuid) pairs older than the dedup window, in small transactions."""
    removed = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {EVENT_IDS} WHERE ctid = ANY (ARRAY("
                f"  SELECT ctid FROM {EVENT_IDS}"
                "  WHERE first_seen_at < now() - make_interval(days => %s) LIMIT %s))",
                [settings.TIDELOG_DEDUP_WINDOW_DAYS, batch],
            )
            count: int = cursor.rowcount
        removed += count
        if count < batch:
            return removed
