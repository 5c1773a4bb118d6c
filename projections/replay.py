"""Replay: rebuild one projection from position zero into shadow tables while every runner keeps
going, then swap the shadow tables in atomically. Verify: recompute a read model from raw events
and list every row that differs.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from projections import read_models
from projections.projection import Projection
from projections.runner import catch_up, checkpoint_get, lock_key, run_batch

SHADOW = "__shadow"


def shadow_checkpoint(projection: Projection) -> str:
    return f"{projection.name}{SHADOW}"


def _shadow_tables(projection: Projection) -> dict[str, str]:
    return {table: f"{table}{SHADOW}" for table in projection.tables}


def replay(projection: Projection, *, progress: Callable[[int], None] | None = None) -> int:
    """Rebuild `projection` from zero; return the events the rebuilt model holds."""
    shadows = _shadow_tables(projection)
    shadow_name = shadow_checkpoint(projection)
    with transaction.atomic(), connection.cursor() as cursor:
        for live, shadow in shadows.items():
            cursor.execute(f"DROP TABLE IF EXISTS {shadow}")
            cursor.execute(f"CREATE TABLE {shadow} (LIKE {live} INCLUDING ALL)")
        cursor.execute(f"DELETE FROM {read_models.CHECKPOINTS} WHERE name = %s", [shadow_name])
        cursor.execute(f"INSERT INTO {read_models.CHECKPOINTS} (name) VALUES (%s)", [shadow_name])
    # Batches of short transactions: one long one would hold back every runner's horizon.
    while True:
        catch_up(projection, checkpoint=shadow_name, tables=shadows, on_batch=progress)
        if _swap(projection, shadows, shadow_name):
            break
    checkpoint = checkpoint_get(projection.name)
    return checkpoint.events_applied if checkpoint else 0


def _swap(projection: Projection, shadows: dict[str, str], shadow_name: str) -> bool:
    with transaction.atomic(), connection.cursor() as cursor:
        # The live runner takes this lock for each batch: holding it, no live batch is in
        # flight, so renaming its tables cannot deadlock against it or lose its work.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(projection.name)])
        # Last catch-up under the lock. Reading after this transaction took locks is
        # conservative (its own xid may lower the horizon): anything not read stays after the
        # checkpoint we hand over, so the live runner applies it next.
        if run_batch(projection, checkpoint=shadow_name, tables=shadows) >= _batch_limit():
            return False  # still far behind: catch up outside the lock first
        for live, shadow in shadows.items():
            cursor.execute(f"ALTER TABLE {live} RENAME TO {live}__old")
            cursor.execute(f"ALTER TABLE {shadow} RENAME TO {live}")
            cursor.execute(f"DROP TABLE {live}__old")
            # LIKE … INCLUDING ALL named the shadow's indexes after the shadow: take the names
            # back, or the next replay's shadow indexes would collide with them.
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [live])
            for (index,) in cursor.fetchall():
                if SHADOW in index:
                    cursor.execute(f'ALTER INDEX "{index}" RENAME TO "{index.replace(SHADOW, "")}"')
        cursor.execute(
            f"""UPDATE {read_models.CHECKPOINTS} live
                SET xact_id = shadow.xact_id, position = shadow.position,
                    events_applied = shadow.events_applied, updated_at = now()
                FROM {read_models.CHECKPOINTS} shadow
                WHERE live.name = %s AND shadow.name = %s""",
            [projection.name, shadow_name],
        )
        cursor.execute(f"DELETE FROM {read_models.CHECKPOINTS} WHERE name = %s", [shadow_name])
    return True


def _batch_limit() -> int:
    from django.conf import settings

    return int(settings.TIDELOG_PROJECTION_BATCH)


@dataclass
class Difference:
    table: str
    side: str
    """'missing' (in the events, not the read model) or 'unexpected' (the other way round)."""
    row: tuple[Any, ...]


@dataclass
class VerifyReport:
    projection: str
    checked_rows: dict[str, int] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)


def verify(projection: Projection, *, limit: int = 100) -> VerifyReport:
    """Compare each read-model table with its recomputation from raw events, both read in one
    REPEATABLE READ snapshot and up to the projection's checkpoint."""
    report = VerifyReport(projection.name)
    is_nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if not is_nested:  # inside a caller's transaction (a test), its snapshot rules
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute(
            f"SELECT xact_id::text, position FROM {read_models.CHECKPOINTS} WHERE name = %s",
            [projection.name],
        )
        row = cursor.fetchone()
        xact_id, position = row if row else ("0", 0)
        upto = "(e.xact_id, e.position) <= (%(xact_id)s::xid8, %(position)s)"
        for query in projection.verify_queries():
            columns = ", ".join(query.columns)
            expected = query.expected.replace("{upto}", upto)
            params = {"xact_id": xact_id, "position": position}
            cursor.execute(
                f"""WITH expected AS ({expected}), actual AS (SELECT {columns} FROM {query.table})
                    (SELECT 'missing', * FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM actual) m)
                    UNION ALL
                    (SELECT 'unexpected', * FROM (SELECT * FROM actual EXCEPT ALL SELECT * FROM expected) u)
                    LIMIT {int(limit)}""",
                params,
            )
            for side, *values in cursor.fetchall():
                report.differences.append(Difference(query.table, side, tuple(values)))
            cursor.execute(f"SELECT count(*) FROM {query.table}")
            report.checked_rows[query.table] = cursor.fetchone()[0]
    return report
