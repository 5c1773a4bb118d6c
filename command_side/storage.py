"""The event store's storage policies: compression (TimescaleDB) and retention (both engines).

The settings are the policy: TIDELOG_EVENT_COMPRESS_AFTER_DAYS and TIDELOG_EVENT_RETENTION_DAYS
(0: off). The scheduler's upkeep applies them hourly (command_side/actors.py); `manage.py
event_store compress|retention` applies them at once, or with other days for one run.

Retention drops whole days: the partitions (plain PostgreSQL) or chunks (TimescaleDB) that end at
or before midnight UTC `days` ago. It never drops an event a projection has not applied (a read
model would miss it forever): a day holding one waits, and so does every later day, so that the
watermark (schema.EVENT_RETENTION) stays exact: every event at or after it is still stored. The
read models keep their history; what verify and replay do past the watermark is in
projections/retention.py. The dedup ledger keeps its own window (TIDELOG_DEDUP_WINDOW_DAYS, by
arrival): a retry of an event retention dropped is still refused while the ledger remembers it,
because the aggregates that counted it keep their history.

Why not TimescaleDB's own retention policy (add_retention_policy): its job drops chunks whatever
the projections have read, and nothing would record the watermark. Compression loses nothing,
so TimescaleDB's own compression policy runs it.
"""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import OperationalError, connection, transaction

from command_side import event_store
from contracts.schema import CHECKPOINTS, EVENT_RETENTION, EVENTS, SHADOW_SUFFIX

log = logging.getLogger("tidelog.storage")

DAY = timedelta(days=1)
_PARTITION = re.compile(rf"^{EVENTS.name}_p(\d{{8}})$")
# Dropping a partition takes an ACCESS EXCLUSIVE lock on the events table: waiting behind a long
# query there would queue every appender behind us. Give up quickly instead; the next run retries.
LOCK_TIMEOUT = "2s"


class CompressionUnavailable(Exception):
    """Compression needs TimescaleDB; this database stores events in plain PostgreSQL."""


@dataclass(frozen=True)
class Part:
    """A day partition (plain PostgreSQL) or chunk (TimescaleDB) of the events table."""

    name: str
    start: datetime | None
    """None: plain PostgreSQL's default partition (events older than the backfill horizon, or of
    days retention dropped), which has no range."""
    end: datetime | None
    total_bytes: int
    compressed: bool = False


def parts() -> list[Part]:
    """Every partition or chunk, oldest first (the default partition last)."""
    with connection.cursor() as cursor:
        if event_store.engine() == "timescaledb":
            cursor.execute(
                """SELECT format('%%I.%%I', c.chunk_schema, c.chunk_name), c.range_start, c.range_end,
                          coalesce(s.total_bytes, 0), c.is_compressed
                   FROM timescaledb_information.chunks c
                   LEFT JOIN chunks_detailed_size(%s) s
                     ON s.chunk_schema = c.chunk_schema AND s.chunk_name = c.chunk_name
                   WHERE c.hypertable_name = %s ORDER BY c.range_start""",
                [EVENTS.name, EVENTS.name],
            )
            return [Part(*row) for row in cursor.fetchall()]
        cursor.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            [EVENTS.name],
        )
        found = []
        for name, size in cursor.fetchall():
            match = _PARTITION.match(name)
            if match:
                day = datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC)
                found.append(Part(name, day, day + DAY, size))
            else:
                found.append(Part(name, None, None, size))
    return sorted(found, key=lambda part: (part.start is None, part.start or datetime.min.replace(tzinfo=UTC)))


def retained_from() -> datetime | None:
    """The watermark: events before it may have been dropped; None: retention never dropped any."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT retained_from FROM {EVENT_RETENTION}")
        row = cursor.fetchone()
    return row[0] if row else None


# --- Compression (TimescaleDB) ----------------------------------------------------------------


def _require_timescaledb() -> None:
    if event_store.engine() != "timescaledb":
        raise CompressionUnavailable(
            "compression needs TimescaleDB; this database stores events in plain PostgreSQL (where large"
            " properties are already TOAST-compressed, and retention drops old days whole)"
        )


def compression_policy() -> int | None:
    """The days after which TimescaleDB's compression job compresses a chunk; None: no policy."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT extract(epoch FROM (config ->> 'compress_after')::interval) / 86400
               FROM timescaledb_information.jobs
               WHERE proc_name = 'policy_compression' AND hypertable_name = %s""",
            [EVENTS.name],
        )
        row = cursor.fetchone()
    return None if row is None else round(row[0])


def compression_policy_apply(after_days: int) -> bool:
    """Make TimescaleDB's compression policy compress chunks older than `after_days` days (0:
    remove the policy). Returns whether anything changed."""
    _require_timescaledb()
    current = compression_policy()
    wanted = after_days or None
    if current == wanted:
        return False
    with transaction.atomic(), connection.cursor() as cursor:
        if current is not None:
            cursor.execute("SELECT remove_compression_policy(%s)", [EVENTS.name])
        if wanted is not None:
            cursor.execute(
                "SELECT add_compression_policy(%s, compress_after => make_interval(days => %s))",
                [EVENTS.name, wanted],
            )
    log.info("compression policy: %s", f"chunks older than {wanted} days" if wanted else "off")
    return True


def compress_now(after_days: int, *, progress: Callable[[Part], None] | None = None) -> list[Part]:
    """Compress now every uncompressed chunk that ended more than `after_days` days ago, one
    transaction each; return them (as they were before)."""
    _require_timescaledb()
    cutoff = datetime.now(UTC) - timedelta(days=after_days)
    done = []
    for part in parts():
        if part.compressed or part.end is None or part.end > cutoff:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT compress_chunk(%s::regclass, if_not_compressed => true)", [part.name])
        done.append(part)
        if progress:
            progress(part)
    return done


def storage_by_state(found: list[Part] | None = None) -> dict[str, int]:
    """Bytes of the events table's uncompressed and compressed parts, and what the compressed
    ones took before compression (TimescaleDB's own statistics; 0 on plain PostgreSQL). `found`:
    the parts() a caller already has."""
    found = parts() if found is None else found
    plain = sum(part.total_bytes for part in found if not part.compressed)
    if not any(part.compressed for part in found):
        return {"uncompressed": plain, "compressed": 0, "compressed_before": 0}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(before_compression_total_bytes), 0)::int8,"
            " coalesce(sum(after_compression_total_bytes), 0)::int8 FROM chunk_compression_stats(%s)",
            [EVENTS.name],
        )
        before, after = cursor.fetchone()
    return {"uncompressed": plain, "compressed": after, "compressed_before": before}


# --- Retention (both engines) -------------------------------------------------------------------


@dataclass
class RetentionRun:
    cutoff: datetime
    """Midnight UTC `days` ago: days that end at or before it are dropped."""
    dropped: list[Part] = field(default_factory=list)
    default_rows_deleted: int = 0
    held: str | None = None
    """Why retention stopped short of the cutoff (a projection behind, a lock not granted)."""
    retained_from: datetime | None = None


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return _midnight(today - timedelta(days=days))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _slowest_checkpoint(cursor) -> tuple[str, str, int] | None:  # type: ignore[no-untyped-def]
    """The live checkpoint furthest behind: (name, xact_id, position); None: no projection yet.
    A replay's shadow is left out: a rebuild keeps the history of days it can no longer read
    (projections/retention.py), and an abandoned one would otherwise hold retention forever."""
    cursor.execute(
        f"""SELECT name, xact_id::text, position FROM {CHECKPOINTS}
            WHERE right(name, %s) <> %s ORDER BY xact_id, position LIMIT 1""",
        [len(SHADOW_SUFFIX), SHADOW_SUFFIX],
    )
    row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2])


def _unapplied(cursor, relation: str, checkpoint: tuple[str, str, int] | None, before: datetime) -> bool:  # type: ignore[no-untyped-def]
    """Whether `relation` holds an event before `before` that the slowest projection has not
    applied. (The plain `xact_id >=` lets a compressed chunk skip its batches behind the
    checkpoint: runner._READ; the time, every chunk or partition after `before`.)"""
    if checkpoint is None:
        cursor.execute(f'SELECT EXISTS (SELECT 1 FROM {relation} WHERE "timestamp" < %s)', [before])
        return bool(cursor.fetchone()[0])
    _, xact_id, position = checkpoint
    cursor.execute(
        f"""SELECT EXISTS (SELECT 1 FROM {relation}
                           WHERE "timestamp" < %s AND xact_id >= %s::xid8 AND (xact_id, position) > (%s::xid8, %s))""",
        [before, xact_id, xact_id, position],
    )
    return bool(cursor.fetchone()[0])


def retention_run(
    days: int, *, dry_run: bool = False, now: datetime | None = None, progress: Callable[[Part], None] | None = None
) -> RetentionRun:
    """Drop the days that ended `days` days ago or earlier (whole partitions or chunks, and the
    default partition's rows of that time), oldest first, one transaction each, each moving the
    watermark with it. Stops at the first day holding an event a projection has not applied."""
    if days <= 0:
        raise ValueError("retention days must be at least 1")
    run = RetentionRun(cutoff=retention_cutoff(days, now))
    timescale = event_store.engine() == "timescaledb"
    for part in parts():
        if part.start is None or part.end is None or part.end > run.cutoff:
            continue
        try:
            if not _drop_part(part, timescale, run, dry_run):
                break
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            run.held = f"{part.name}: the events table was busy for {LOCK_TIMEOUT} (a long query); the next run retries"
            break
        run.dropped.append(part)
        if progress:
            progress(part)
    if not timescale and run.held is None:
        run.default_rows_deleted = _trim_default(run, dry_run)
    run.retained_from = retained_from()
    if not dry_run and (run.dropped or run.default_rows_deleted):
        log.info(
            "retention: dropped %d days and %d rows of the default partition; events retained from %s",
            len(run.dropped), run.default_rows_deleted, run.retained_from,
        )  # fmt: skip
    if run.held:
        log.warning("retention held: %s", run.held)
    return run


def _advance_watermark(cursor, to: datetime) -> None:  # type: ignore[no-untyped-def]
    cursor.execute(
        f"""INSERT INTO {EVENT_RETENTION} (retained_from) VALUES (%s)
            ON CONFLICT (singleton) DO UPDATE
            SET retained_from = greatest({EVENT_RETENTION}.retained_from, EXCLUDED.retained_from),
                updated_at = now()""",
        [to],
    )


def _drop_part(part: Part, timescale: bool, run: RetentionRun, dry_run: bool) -> bool:
    assert part.end is not None
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        if not timescale:
            # The partition creator's lock: no drainer re-creates a day between our drop and the
            # watermark (both commit together; then the creator sees the watermark).
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('tidelog_events_partitions'))")
        if not dry_run:
            # TRICKY: locked BEFORE the check. An appender's late event for this day, committed
            # between a check and the drop, would be dropped unapplied. Held for milliseconds (one
            # index probe, one drop); the events table first, as every appender and DROP take it.
            cursor.execute(f"LOCK TABLE ONLY {EVENTS.name} IN ACCESS EXCLUSIVE MODE")
            cursor.execute(f"LOCK TABLE {part.name} IN ACCESS EXCLUSIVE MODE")
        slowest = _slowest_checkpoint(cursor)
        # TRICKY: on TimescaleDB, drop_chunks takes every chunk older than this one's end, and a
        # late event may have made a chunk of a day dropped before (a new one, not in `parts()`
        # when this run began): the check covers all of them, the whole hypertable before the end
        # (locked above: no chunk can be made meanwhile). A partition is dropped by its name.
        if _unapplied(cursor, EVENTS.name if timescale else part.name, slowest, part.end):
            who = f"projection {slowest[0]!r}" if slowest else "no projection"
            run.held = f"{part.name}: {who} has not applied all its events yet; the next run retries"
            return False
        if dry_run:
            transaction.set_rollback(True)
            return True
        if timescale:
            # drop_chunks by time: this chunk and every older one, all checked just above.
            cursor.execute("SELECT count(*) FROM drop_chunks(%s, older_than => %s)", [EVENTS.name, part.end])
        else:
            cursor.execute(f"DROP TABLE {part.name}")
        _advance_watermark(cursor, part.end)
    if not timescale and part.start is not None:
        event_store.partitions_forget([part.start.date()])
    return True


def _trim_default(run: RetentionRun, dry_run: bool) -> int:
    """Delete the default partition's events before the watermark, the projections' applied
    ones only (the rest stay until applied: then they are late events of kept history)."""
    watermark = retained_from()
    if watermark is None:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        slowest = _slowest_checkpoint(cursor)
        if slowest is None:
            return 0
        _, xact_id, position = slowest
        cursor.execute(
            f"""DELETE FROM {EVENTS.name}_default
                WHERE "timestamp" < %s AND (xact_id, position) <= (%s::xid8, %s)""",
            [watermark, xact_id, position],
        )
        deleted: int = cursor.rowcount
        if dry_run:
            transaction.set_rollback(True)
    return deleted
