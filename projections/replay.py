"""Replay: rebuild one projection from position zero into shadow tables while every runner
(its own live one included) keeps going, then swap the shadow tables in atomically.
Each step is a short transaction: a replay interrupted anywhere is consistent and restarts.
"""

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from django.conf import settings
from django.db import OperationalError, connection, transaction

from contracts import schema
from projections import retention
from projections.projection import Projection
from projections.runner import LOCK_NAMESPACE, catch_up, checkpoint_ensure, checkpoint_get, lock_key, run_batch

log = logging.getLogger("tidelog.projections")

SHADOW = schema.SHADOW_SUFFIX


class ReplayRunning(Exception):
    """Another replay of this projection is under way (or an erasure, for its few seconds)."""


def shadow_checkpoint(projection: Projection) -> str:
    return f"{projection.name}{SHADOW}"


def shadow_tables(projection: Projection) -> dict[str, str]:
    return {table: f"{table}{SHADOW}" for table in projection.tables}


def replay_lock_key(name: str) -> tuple[int, str]:
    """Arguments for `pg_(try_)advisory_(xact_)lock(%s, hashtext(%s))`: held by a replay of the
    projection `name` for its whole length (an erasure holds it too, to keep replays out)."""
    return LOCK_NAMESPACE, f"replay:{name}"


def replay(
    projection: Projection, *, progress: Callable[[int], None] | None = None, retained_only: bool = False
) -> int:
    """Rebuild `projection` from zero and swap it in; return the events the live checkpoint
    has applied just after the swap. `progress` is called with each batch's event count.

    Past retention (projections/retention.py) the rebuild covers the retained window and the
    history before it is carried over from the live tables; a projection with lifetime tables
    raises HistoryWouldBeLost unless `retained_only` (then they hold the retained events' alone)."""
    shadows = shadow_tables(projection)
    shadow_name = shadow_checkpoint(projection)
    with connection.cursor() as cursor:
        watermark = retention.retained_from(cursor)
    if watermark is not None and retention.lifetime_tables(projection) and not retained_only:
        raise retention.HistoryWouldBeLost(retention.replay_refusal(projection, watermark))
    with _replay_lock(projection):
        checkpoint_ensure(projection.name)
        with transaction.atomic(), connection.cursor() as cursor:
            for live, shadow in shadows.items():
                cursor.execute(f"DROP TABLE IF EXISTS {shadow}")
                cursor.execute(f"CREATE TABLE {shadow} (LIKE {live} INCLUDING ALL)")
            deferred = _defer_indexes(cursor, shadows, getattr(projection, "deferred_indexes", ()))
            cursor.execute(f"DELETE FROM {schema.CHECKPOINTS} WHERE name = %s", [shadow_name])
            cursor.execute(f"INSERT INTO {schema.CHECKPOINTS} (name) VALUES (%s)", [shadow_name])
        while True:
            # Batches of short transactions, each committing its shadow rows with the shadow
            # checkpoint: a replay interrupted anywhere is consistent (and simply restarted).
            # Larger than the live runner's: no reader waits on a shadow table, and each batch
            # rewrites the rows it touches (a set of users whole), so fewer batches write less.
            catch_up(
                projection,
                checkpoint=shadow_name,
                tables=shadows,
                on_batch=progress,
                limit=settings.TIDELOG_REPLAY_BATCH,
            )
            if deferred:
                # Built once over the whole shadow, caught up: compact, and the rows were
                # written without their upkeep.
                with transaction.atomic(), connection.cursor() as cursor:
                    for statement in deferred:
                        cursor.execute(statement)
                deferred = []
            try:
                if _swap(projection, shadows, shadow_name, progress):
                    break
            except OperationalError as exc:
                if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                    raise
                log.warning(
                    "%s: swap waited %.1f s for readers; catching up and retrying",
                    projection.name,
                    settings.TIDELOG_REPLAY_SWAP_LOCK_TIMEOUT_SECONDS,
                )
                time.sleep(1)
    with connection.cursor() as cursor:
        for live in shadows:
            # Fresh tables have no statistics (without them the query side's plans are guesses)
            # and no visibility map (without it no index-only scan: retention's first-seen
            # cohorts at 10M, 138 to 88 ms).
            cursor.execute(f"VACUUM (ANALYZE) {live}")
    checkpoint = checkpoint_get(projection.name)
    return checkpoint.events_applied if checkpoint else 0


@contextmanager
def _replay_lock(projection: Projection) -> Iterator[None]:
    # A session-level advisory lock: held across the replay's many transactions, released if
    # the process dies. Two replays of one projection would drop each other's shadow tables.
    key = replay_lock_key(projection.name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", key)
        if not cursor.fetchone()[0]:
            raise ReplayRunning(
                f"a replay of {projection.name!r} is already running, or a person's erasure holds it off"
                " for a moment (projections/erasure.py): retry"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)


def _swap(
    projection: Projection, shadows: dict[str, str], shadow_name: str, progress: Callable[[int], None] | None
) -> bool:
    with transaction.atomic(), connection.cursor() as cursor:
        # The live runner holds this lock for each batch: once we hold it, no live batch is in
        # flight, and none starts until the swap has committed. (Its conditional checkpoint
        # UPDATE would also refuse a batch that straddled the swap.)
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", lock_key(projection.name))
        # TRICKY: whatever commits after this last catch-up's read stays after the checkpoint
        # handed over below, and the live runner applies it next.
        applied = run_batch(projection, checkpoint=shadow_name, tables=shadows)
        if applied and progress:
            progress(applied)
        if applied >= settings.TIDELOG_PROJECTION_BATCH:
            return False  # still behind: commit this batch, catch up outside the lock first
        # Under the live lock: the live history is final (no batch in flight), and the watermark
        # read now is the one the swapped-in tables answer for.
        watermark = retention.retained_from(cursor)
        if watermark is not None:
            for live, shadow in shadows.items():
                if live in retention.windows(projection):
                    carried = retention.carry_history(cursor, projection, live, shadow, watermark)
                    log.info("%s: %s keeps %d rows of history before %s", projection.name, live, carried, watermark)
        timeout_ms = int(settings.TIDELOG_REPLAY_SWAP_LOCK_TIMEOUT_SECONDS * 1000)
        cursor.execute(f"SET LOCAL lock_timeout = '{timeout_ms}ms'")
        for live, shadow in shadows.items():
            index_names = _matching_index_names(cursor, live, shadow)
            cursor.execute(f"ALTER TABLE {live} RENAME TO {live}__old")
            cursor.execute(f"ALTER TABLE {shadow} RENAME TO {live}")
            cursor.execute(f"DROP TABLE {live}__old")
            # LIKE … INCLUDING ALL named the shadow's indexes (and its primary key constraint)
            # after the shadow: give them the live names back, so migrations that name an
            # index keep working and the next replay's shadow names do not collide.
            for shadow_index, live_index in index_names:
                cursor.execute(f'ALTER INDEX "{shadow_index}" RENAME TO "{live_index}"')
        cursor.execute(
            f"""INSERT INTO {schema.CHECKPOINTS} (name, xact_id, position, events_applied)
                SELECT %s, xact_id, position, events_applied FROM {schema.CHECKPOINTS} WHERE name = %s
                ON CONFLICT (name) DO UPDATE SET xact_id = EXCLUDED.xact_id, position = EXCLUDED.position,
                    events_applied = EXCLUDED.events_applied, updated_at = now()""",
            [projection.name, shadow_name],
        )
        cursor.execute(f"DELETE FROM {schema.CHECKPOINTS} WHERE name = %s", [shadow_name])
    return True


def _defer_indexes(cursor, shadows: dict[str, str], names: Sequence[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """Drop from the shadow tables the indexes `names` (their live names: ones the projection's
    own writes never read, only the query side); return the statements that build them again,
    as they were, for once the shadow has caught up.

    A replay otherwise keeps every index up to date through millions of upserts: the people
    projection's persons, rewritten once a batch per person, left `rm_persons_first_seen` at
    54 MB for 177k rows (its table: 34 MB), which the planner then rightly passed over."""
    statements, found = [], set()
    for live, shadow in shadows.items():
        for shadow_index, live_index in _matching_index_names(cursor, live, shadow):
            if live_index not in names:
                continue
            # The shadow index's own definition is the statement that builds it again.
            cursor.execute("SELECT pg_get_indexdef(%s::regclass)", [f'"{shadow_index}"'])
            statements.append(cursor.fetchone()[0])
            cursor.execute(f'DROP INDEX "{shadow_index}"')
            found.add(live_index)
    if set(names) - found:
        raise ValueError(f"deferred_indexes names no plain index of its tables: {sorted(set(names) - found)}")
    return statements


def _matching_index_names(cursor, live: str, shadow: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(shadow index, live index) pairs with the same definition, name aside."""
    definition = "regexp_replace(pg_get_indexdef({0}.indexrelid), '^.* USING ', '')"
    cursor.execute(
        f"""SELECT si.relname, li.relname
            FROM pg_index l
            JOIN pg_index s
              ON s.indrelid = %s::regclass AND s.indisunique = l.indisunique
             AND s.indisprimary = l.indisprimary AND {definition.format("s")} = {definition.format("l")}
            JOIN pg_class si ON si.oid = s.indexrelid
            JOIN pg_class li ON li.oid = l.indexrelid
            WHERE l.indrelid = %s::regclass""",
        [shadow, live],
    )
    return [(shadow_index, live_index) for shadow_index, live_index in cursor.fetchall()]
