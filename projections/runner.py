"""The one projection runner: reads events after a checkpoint in (xact_id, position) order,
applies them, and commits the read-model changes with the new checkpoint in ONE transaction.
Exactly once, restartable at any instant. Never swallows a projection's error.
"""

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from zlib import crc32

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction

from projections import read_models
from projections.projection import EVENT_COLUMNS, Projection, StoredEvent
from projections.registry import PROJECTIONS, projection_get

log = logging.getLogger("tidelog.projections")

# TRICKY: why (xact_id, position) and the xmin horizon, not `position > checkpoint`.
# Positions come from a sequence when a row is inserted, but rows become visible when their
# transaction commits: writer A can draw position 10, writer B position 11, and B commit first.
# A runner reading `position > 9` then sees 11, advances to 11 and never sees 10. Instead every
# row records its transaction id, and a runner reads only rows of transactions below the
# horizon `pg_snapshot_xmin(pg_current_snapshot())`: all of those have finished, and every
# transaction still running or yet to start has an id at or above it. So no row can ever appear
# behind a checkpoint taken from what was read. The read must happen before this transaction
# takes an xid of its own (any write or row lock does), or its own xid would hold the horizon.
_READ = f"""
SELECT {EVENT_COLUMNS}
FROM tidelog_events
WHERE (xact_id, position) > (%s::xid8, %s)
  AND xact_id < pg_snapshot_xmin(pg_current_snapshot())
-- Qualified: a bare "xact_id" here would name the text column of the SELECT list and sort
-- by text, ignoring the (xact_id, position) index.
ORDER BY tidelog_events.xact_id, tidelog_events.position
LIMIT %s
"""


class CheckpointMoved(Exception):
    """Another runner advanced this checkpoint first: this batch was rolled back, not applied."""


@dataclass(frozen=True)
class Checkpoint:
    name: str
    xact_id: str
    position: int
    events_applied: int


def lock_key(checkpoint: str) -> int:
    # Advisory locks take no transaction id, so taking one keeps the horizon rule intact.
    return crc32(f"tidelog-projection:{checkpoint}".encode())


def checkpoint_ensure(name: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {read_models.CHECKPOINTS} (name) VALUES (%s) ON CONFLICT DO NOTHING",
            [name],
        )


def checkpoint_get(name: str) -> Checkpoint | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT xact_id::text, position, events_applied FROM {read_models.CHECKPOINTS} WHERE name = %s",
            [name],
        )
        row = cursor.fetchone()
    return Checkpoint(name, row[0], row[1], row[2]) if row else None


def run_batch(
    projection: Projection,
    *,
    checkpoint: str | None = None,
    tables: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> int:
    """Apply the next batch; return how many events it applied (0: caught up)."""
    name = checkpoint or projection.name
    tables = tables or {table: table for table in projection.tables}
    limit = limit or settings.TIDELOG_PROJECTION_BATCH
    with transaction.atomic(), connection.cursor() as cursor:
        # One runner per checkpoint at a time; a replay's swap takes the same lock.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(name)])
        cursor.execute(f"SELECT xact_id::text, position FROM {read_models.CHECKPOINTS} WHERE name = %s", [name])
        row = cursor.fetchone()
        if row is None:
            raise CheckpointMoved(f"checkpoint {name!r} does not exist")
        start_xact, start_position = row
        cursor.execute(_READ, [start_xact, start_position, limit])
        events = [StoredEvent(*r) for r in cursor.fetchall()]
        if not events:
            return 0
        changes = projection.apply(events)
        projection.write(cursor, changes, tables)
        last = events[-1]
        # Conditional: if anything moved the checkpoint since we read it, apply nothing.
        cursor.execute(
            f"""UPDATE {read_models.CHECKPOINTS}
                SET xact_id = %s::xid8, position = %s, events_applied = events_applied + %s,
                    updated_at = now()
                WHERE name = %s AND xact_id = %s::xid8 AND position = %s""",
            [last.xact_id, last.position, len(events), name, start_xact, start_position],
        )
        if cursor.rowcount != 1:
            raise CheckpointMoved(name)
    return len(events)


def catch_up(
    projection: Projection,
    *,
    checkpoint: str | None = None,
    tables: Mapping[str, str] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Run batches until one comes back empty; return the events applied."""
    total = 0
    checkpoint_ensure(checkpoint or projection.name)
    while True:
        applied = run_batch(projection, checkpoint=checkpoint, tables=tables)
        if not applied:
            return total
        total += applied
        if on_batch:
            on_batch(applied)


def run_until_caught_up(names: Iterable[str] | None = None) -> dict[str, int]:
    """Bring the named projections (default: all) up to the present; for tests and `--once`."""
    chosen = list(names) if names else list(PROJECTIONS)
    return {name: catch_up(projection_get(name)) for name in chosen}


def run_forever(names: Iterable[str] | None = None, *, should_stop: Callable[[], bool]) -> None:
    """The `projections run` loop: one batch per projection a round, sleep when all idle."""
    chosen = [projection_get(name) for name in (names or PROJECTIONS)]
    for projection in chosen:
        checkpoint_ensure(projection.name)
    while not should_stop():
        busy = False
        for projection in chosen:
            started = time.monotonic()
            try:
                applied = run_batch(projection)
            except CheckpointMoved:
                log.info("%s: another runner moved the checkpoint; retrying", projection.name)
                continue
            except (OperationalError, InterfaceError):
                # The database went away or chose us as a deadlock victim: nothing was
                # committed, so reconnect and retry. Any other error is a bug: let it stop us.
                log.exception("%s: database error; retrying in 1 s", projection.name)
                connection.close()
                time.sleep(1)
                continue
            if applied >= settings.TIDELOG_PROJECTION_BATCH:
                # A full batch: more is waiting, go again at once. A partial one means caught
                # up: sleeping lets a trickle gather into one transaction instead of hundreds.
                busy = True
            if applied:
                elapsed = time.monotonic() - started
                log.info(
                    "%s: applied %d events in %.0f ms (%.0f events/s)",
                    projection.name, applied, elapsed * 1000, applied / max(elapsed, 1e-6),
                )  # fmt: skip
        if not busy:
            time.sleep(settings.TIDELOG_PROJECTION_POLL_SECONDS)
