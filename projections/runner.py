"""The one projection runner: reads events after a checkpoint in (xact_id, position) order,
applies them, and commits the read-model changes with the new checkpoint in ONE transaction.
Exactly once, restartable at any instant. Never swallows a projection's error.
"""

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import DatabaseError as DjangoDatabaseError
from django.db import connection, transaction

from contracts import schema
from contracts.follow import HORIZON
from projections.projection import (
    EVENT_COLUMNS,
    EVENT_COLUMNS_WITH_ALL_PROPERTIES,
    EVENT_COLUMNS_WITH_PROPERTIES,
    EVENT_COLUMNS_WITH_PROPERTIES_OR_KEYS,
    Projection,
    StoredEvent,
    property_keys_of,
    reads_every_property,
)
from projections.registry import PROJECTIONS, projection_get
from projections.user_numbers import batch_numbers

log = logging.getLogger("tidelog.projections")

# Namespace of the two-key advisory locks (pg_advisory_xact_lock(int4, int4)), so ours never
# collide with the one-key locks other code takes (the event store's partition creator).
LOCK_NAMESPACE = 0x7D1E

# TRICKY: why (xact_id, position) and a horizon, not `position > checkpoint`.
# Positions come from a sequence when a row is inserted, but rows become visible when their
# transaction commits: writer A can draw position 10, writer B position 11, and B commit first.
# A runner reading `position > 9` then sees 11, advances to 11 and never sees 10. Instead every
# row records its transaction id, and a runner reads only rows of transactions below a horizon
# that no appender still running can be under (contracts/follow.py proves it). So no row can
# ever appear behind a checkpoint taken from what was read. The horizon counts Tidelog's own
# appenders only: a stranger's long transaction, in this database or another, holds nothing.
_READ = f"""
SELECT {{columns}}
FROM {schema.EVENTS}
WHERE (xact_id, position) > (%s::xid8, %s)
  AND xact_id >= %s::xid8
  AND xact_id < %s::xid8
-- Qualified: a bare "xact_id" here would name the text column of the SELECT list and sort
-- by text, ignoring the (xact_id, position) index.
ORDER BY {schema.EVENTS}.xact_id, {schema.EVENTS}.position
LIMIT %s
"""
# TRICKY: `xact_id >= checkpoint` is implied by the row comparison and still written out. On
# TimescaleDB a compressed chunk keeps no btree index, only each compressed batch's min and max
# of xact_id, and only a plain comparison on the column is checked against them; the row
# comparison is not. Without it every read decompressed every compressed chunk: an idle runner's
# read went from 0.4 to 12 ms at 200k events (linear in the store). With it the batches behind
# the checkpoint are skipped unread (docs/performance.md, "Compressed chunks under the projection runner").
# The same read, with properties for the event types named by its first parameter, or without
# (projection.py: EVENT_COLUMNS_WITH_PROPERTIES).
_READ_EVENTS = _READ.replace("{columns}", EVENT_COLUMNS)
_READ_EVENTS_WITH_PROPERTIES = _READ.replace("{columns}", EVENT_COLUMNS_WITH_PROPERTIES)
_READ_EVENTS_WITH_PROPERTIES_OR_KEYS = _READ.replace("{columns}", EVENT_COLUMNS_WITH_PROPERTIES_OR_KEYS)
_READ_EVENTS_WITH_ALL_PROPERTIES = _READ.replace("{columns}", EVENT_COLUMNS_WITH_ALL_PROPERTIES)

# TRICKY: the read must walk the (xact_id, position) index of each partition and merge them.
# The planner misjudges the row comparison (measured: estimated 6 rows, found 200,000, after one
# large transaction) and then picks a bitmap scan that sorts every row past the checkpoint on
# every batch: 40x slower, and quadratic over a backlog. Forbid that plan for this transaction.
_SETUP = """
SELECT pg_advisory_xact_lock(%s, hashtext(%s)),
       set_config('statement_timeout', %s, true),
       set_config('enable_sort', 'off', true),
       set_config('enable_bitmapscan', 'off', true),
       -- The read is a prepared statement (below): planned once, with the same plan.
       set_config('plan_cache_mode', 'force_generic_plan', true),
       -- (JIT is off for every Tidelog connection: core/settings.py.)
       -- Quiet the "staging table already exists" notice of every batch (see upsert.py).
       set_config('client_min_messages', 'warning', true)
"""

# TRICKY: the read is prepared once per connection and runs a generic plan (`plan_cache_mode`
# above; `prepare=True` on its execute). Planning it was most of an idle read's cost, and it grows with the
# partitions or chunks: on TimescaleDB with 27 compressed chunks of 31, 4 ms planning and 0.3 ms
# executing (docs/performance.md, "Compressed chunks"). The generic plan is the one the settings
# above force anyway (each partition's (xact_id, position) order merged) and holds no value of a
# parameter, so it serves every checkpoint. A partition or chunk made, dropped, compressed or
# decompressed since invalidates it (PostgreSQL's plan cache; tests/integration/test_projection_runner.py
# and test_timescale_storage.py read through those changes).
# Django turns psycopg's preparation off (prepare_threshold None: statement poolers); with this
# threshold nothing is prepared but what asks to be (execute(..., prepare=True)).
_ONLY_WHEN_ASKED = 2**31 - 1

# The read's plan forbidden, the writes planned as usual: with sorts forbidden, a join of the
# batch's persons with the user directory walked all of it (73 s for 2,000 persons at 221k ids,
# measured; 55 ms planned as usual).
_PLANNER_DEFAULTS = "SET LOCAL enable_sort TO DEFAULT; SET LOCAL enable_bitmapscan TO DEFAULT"

# Errors after which a batch is simply retried: the connection dropped, a statement timed out,
# a deadlock or serialization victim. Nothing was committed. Anything else is a bug.
TRANSIENT_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)


class CheckpointMoved(Exception):
    """Another runner advanced this checkpoint first: this batch was rolled back, not applied."""


@dataclass(frozen=True)
class Checkpoint:
    name: str
    xact_id: str
    position: int
    events_applied: int


def lock_key(checkpoint: str) -> tuple[int, str]:
    """Arguments for `pg_advisory_xact_lock(%s, hashtext(%s))`."""
    return LOCK_NAMESPACE, checkpoint


def checkpoint_ensure(name: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {schema.CHECKPOINTS} (name) VALUES (%s) ON CONFLICT DO NOTHING",
            [name],
        )


def checkpoint_get(name: str) -> Checkpoint | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT xact_id::text, position, events_applied FROM {schema.CHECKPOINTS} WHERE name = %s",
            [name],
        )
        row = cursor.fetchone()
    return Checkpoint(name, row[0], row[1], row[2]) if row else None


def raw_cursor() -> psycopg.Cursor:
    """A plain psycopg cursor on Django's connection, so inside its transactions: binary
    results and binary COPY, which Django's client-side cursor wrapper does not offer."""
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        connection.connection.prepare_threshold = _ONLY_WHEN_ASKED
    return psycopg.Cursor(connection.connection)


def run_batch(
    projection: Projection,
    *,
    checkpoint: str | None = None,
    tables: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> int:
    """Apply the next batch; return how many events it applied (0: nothing to read).

    Call it outside any transaction: inside one that appends events itself, the horizon stops
    at its own xid and newer events wait until it ends."""
    return _apply_next_batch(projection, checkpoint or projection.name, tables, limit)[0]


def _apply_next_batch(
    projection: Projection, name: str, tables: Mapping[str, str] | None, limit: int | None
) -> tuple[int, StoredEvent | None]:
    return _apply_batch([Member(projection, name, tables or {table: table for table in projection.tables})], limit)


@dataclass(frozen=True)
class Member:
    """A projection in a batch: the checkpoint it follows and the tables it writes."""

    projection: Projection
    checkpoint: str
    tables: Mapping[str, str]


def _apply_batch(members: Sequence[Member], limit: int | None) -> tuple[int, StoredEvent | None]:
    """One batch for every member, whose checkpoints must all be the same: one read of the events
    (with the properties any of them asks for), each member's apply and write, and every
    checkpoint moved, in one transaction. Raises CheckpointMoved when the checkpoints differ
    or one moved meanwhile: nothing was applied."""
    limit = limit or settings.TIDELOG_PROJECTION_BATCH
    names = sorted(member.checkpoint for member in members)
    with transaction.atomic(), raw_cursor() as cursor:
        # One runner per checkpoint at a time; a replay's swap takes the same lock. Several
        # checkpoints: their locks in name order, the order erasure takes them all in.
        timeout = f"{int(settings.TIDELOG_PROJECTION_STATEMENT_TIMEOUT_SECONDS * 1000)}ms"
        for name in names:
            cursor.execute(_SETUP, [*lock_key(name), timeout])
        cursor.execute(f"SELECT name, xact_id::text, position FROM {schema.CHECKPOINTS} WHERE name = ANY(%s)", [names])
        found = {name: (xact_id, position) for name, xact_id, position in cursor.fetchall()}
        if len(found) != len(names):
            missing = sorted(set(names) - set(found))
            raise LookupError(f"checkpoint {missing[0]!r} does not exist (checkpoint_ensure creates it)")
        if len(set(found.values())) != 1:
            raise CheckpointMoved(", ".join(names))
        start_xact, start_position = found[names[0]]
        # Under the locks, from the checkpoint just read: each projection's inputs (experiments)
        # and any rows it must first bring up to them for the events already applied.
        inputs = [member.projection.load(cursor, member.tables, (start_xact, start_position)) for member in members]
        # Its own statement, before the read: the read's snapshot must be newer than the scan
        # of the appenders (contracts/follow.py). READ COMMITTED gives each statement its own.
        cursor.execute(HORIZON)
        (horizon,) = cursor.fetchone() or (None,)  # always one row: an aggregate over one
        # The union of what the members ask for: a projection may see properties it did not
        # ask for (another member's), never lack one it did.
        property_types = sorted(
            {t for m, i in zip(members, inputs, strict=True) for t in m.projection.property_types(i)}
        )
        property_keys = sorted(
            {k for m, i in zip(members, inputs, strict=True) for k in property_keys_of(m.projection, i)}
        )
        # _READ's parameters after the columns' own (see the TRICKY above it for the repeat).
        bounds = [start_xact, start_position, start_xact, horizon, limit]
        # Binary results: Django registers a Python loader for text timestamptz (5 µs a row).
        if any(reads_every_property(member.projection) for member in members):
            cursor.execute(_READ_EVENTS_WITH_ALL_PROPERTIES, bounds, binary=True, prepare=True)
        elif property_keys:
            cursor.execute(
                _READ_EVENTS_WITH_PROPERTIES_OR_KEYS,
                [property_types, property_keys, *bounds],
                binary=True,
                prepare=True,
            )
        elif property_types:
            cursor.execute(_READ_EVENTS_WITH_PROPERTIES, [property_types, *bounds], binary=True, prepare=True)
        else:
            cursor.execute(_READ_EVENTS, bounds, binary=True, prepare=True)
        events = [StoredEvent(*r) for r in cursor.fetchall()]
        if not events:
            return 0, None
        cursor.execute(_PLANNER_DEFAULTS)
        with batch_numbers():  # the members number the batch's ids once between them
            for member, member_inputs in zip(members, inputs, strict=True):
                member.projection.write(cursor, member.projection.apply(events, member_inputs), member.tables)
        last = events[-1]
        # Conditional, claimed in SQL. The advisory lock keeps runners of this checkpoint apart,
        # but anything else that writes the row (a replay's handover, an operator resetting
        # it) does not take it. If the checkpoint moved since we read it, these upserts were
        # computed from a stale starting point: roll the whole batch back rather than count
        # events twice or skip them. The caller retries from the new checkpoint.
        cursor.execute(
            f"""UPDATE {schema.CHECKPOINTS}
                SET xact_id = %s::xid8, position = %s, events_applied = events_applied + %s,
                    updated_at = now()
                WHERE name = ANY(%s) AND xact_id = %s::xid8 AND position = %s""",
            [last.xact_id, last.position, len(events), names, start_xact, start_position],
        )
        if cursor.rowcount != len(names):
            raise CheckpointMoved(", ".join(names))
    return len(events), last


def run_batch_logged(
    projection: Projection,
    *,
    checkpoint: str | None = None,
    tables: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> int:
    """run_batch, logging each applied batch at INFO, retrying a batch rolled back because the
    checkpoint moved, and logging any error (then re-raising it: never swallowed)."""
    name = checkpoint or projection.name
    while True:
        started = time.monotonic()
        try:
            applied, last = _apply_next_batch(projection, name, tables, limit)
        except CheckpointMoved:
            log.info("%s: the checkpoint moved under this batch; rolled back, retrying", name)
            continue
        except Exception:
            log.exception("%s: batch failed and was rolled back; the checkpoint has not moved", name)
            raise
        if last is not None:
            elapsed = max(time.monotonic() - started, 1e-6)
            log.info(
                "%s: applied %d events in %.0f ms (%.0f events/s), checkpoint now (%s, %d)",
                name, applied, elapsed * 1000, applied / elapsed, last.xact_id, last.position,
            )  # fmt: skip
        return applied


def catch_up(
    projection: Projection,
    *,
    checkpoint: str | None = None,
    tables: Mapping[str, str] | None = None,
    on_batch: Callable[[int], None] | None = None,
    limit: int | None = None,
) -> int:
    """Run batches of `limit` events (default TIDELOG_PROJECTION_BATCH) until one comes back
    short of a full batch (nothing more was safe to read when it started); return the events
    applied. Errors propagate."""
    total = 0
    limit = limit or settings.TIDELOG_PROJECTION_BATCH
    checkpoint_ensure(checkpoint or projection.name)
    while True:
        applied = run_batch_logged(projection, checkpoint=checkpoint, tables=tables, limit=limit)
        total += applied
        if applied and on_batch:
            on_batch(applied)
        if applied < limit:
            return total


def run_until_caught_up(names: Iterable[str] | None = None) -> dict[str, int]:
    """Bring the named projections (default: all) up to the present; for tests and `--once`."""
    chosen = list(names) if names else list(PROJECTIONS)
    return {name: catch_up(projection_get(name)) for name in chosen}


def run_forever(names: Iterable[str] | None = None, *, should_stop: Callable[[], bool]) -> list[str]:
    """The `projections run` loop: one batch per projection a round, sleep when all idle.
    Projections at the same checkpoint (all of them, once caught up together) share one batch:
    one read of the events and one transaction for all (`_run_group_logged`).

    A projection whose batch fails for any but a transient reason is stopped (its error is
    logged; its read model stays exactly at its checkpoint) and the others go on. Returns the
    names of the stopped ones: the command exits non-zero when there are any."""
    running = [projection_get(name) for name in (names or PROJECTIONS)]
    stopped: list[str] = []
    for projection in running:
        checkpoint_ensure(projection.name)
    while running and not should_stop():
        busy = False
        try:
            groups = _same_checkpoint_groups(running)
        except Exception as exc:
            if not _is_transient(exc):
                raise
            # PostgreSQL away: nothing to do but wait for it, as a failed batch does.
            connection.close()
            time.sleep(1)
            continue
        for group in groups:
            if len(group) > 1:
                applied = _run_group_logged(group)
                if applied is not None:
                    busy = busy or applied >= settings.TIDELOG_PROJECTION_BATCH
                    continue
            # Alone, or the shared batch failed: each on its own, so only a failing one stops.
            for projection in group:
                try:
                    applied = run_batch_logged(projection)
                except Exception as exc:
                    if _is_transient(exc):
                        # Nothing was committed: reconnect and retry after a pause.
                        connection.close()
                        time.sleep(1)
                        continue
                    running.remove(projection)
                    stopped.append(projection.name)
                    log.error("%s: STOPPED until restarted; the others go on", projection.name)
                    continue
                if applied >= settings.TIDELOG_PROJECTION_BATCH:
                    # A full batch: more is waiting, go again at once. A partial one means caught
                    # up: sleeping lets a trickle gather into one transaction instead of hundreds.
                    busy = True
        if not busy:
            time.sleep(settings.TIDELOG_PROJECTION_POLL_SECONDS)
    return stopped


def _same_checkpoint_groups(projections: Sequence[Projection]) -> list[list[Projection]]:
    """The projections grouped by their checkpoint (read without a lock: `_apply_batch` checks
    again under its locks), in the order given."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT name, xact_id::text, position FROM {schema.CHECKPOINTS} WHERE name = ANY(%s)",
            [[projection.name for projection in projections]],
        )
        at = {name: (xact_id, position) for name, xact_id, position in cursor.fetchall()}
    groups: dict[tuple[str, int] | None, list[Projection]] = {}
    for projection in projections:
        groups.setdefault(at.get(projection.name), []).append(projection)
    return list(groups.values())


def _run_group_logged(group: Sequence[Projection]) -> int | None:
    """One shared batch for projections at one checkpoint; how many events it applied, or None
    when it applied nothing and each must run alone this round: the checkpoints parted (a
    replay's handover), or a member failed (rolled back with the rest; alone, it is found and
    stopped while the others go on)."""
    names = ", ".join(projection.name for projection in group)
    started = time.monotonic()
    try:
        applied, last = _apply_batch([Member(p, p.name, {table: table for table in p.tables}) for p in group], None)
    except CheckpointMoved:
        return None
    except Exception as exc:
        if not _is_transient(exc):
            log.warning("%s: the shared batch failed and was rolled back; each runs alone now", names, exc_info=True)
        return None
    if last is not None:
        elapsed = max(time.monotonic() - started, 1e-6)
        log.info(
            "%s: applied %d events in %.0f ms (%.0f events/s), checkpoint now (%s, %d)",
            names, applied, elapsed * 1000, applied / elapsed, last.xact_id, last.position,
        )  # fmt: skip
    return applied


def _is_transient(exc: BaseException) -> bool:
    # Django wraps errors raised through its own cursors; the runner's are raw psycopg ones.
    cause = exc.__cause__ if isinstance(exc, DjangoDatabaseError) else exc
    return isinstance(cause, TRANSIENT_ERRORS)
