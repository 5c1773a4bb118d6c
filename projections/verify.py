"""Verify: recompute a read model from the raw events up to its checkpoint and list every row
that differs. Reads only; never repairs (replay does that).
"""

from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from contracts import schema
from projections.projection import Projection


@dataclass(frozen=True)
class Difference:
    table: str
    side: str
    """'missing' (in the events, not the read model) or 'unexpected' (the other way round)."""
    row: tuple[Any, ...]


@dataclass
class VerifyReport:
    projection: str
    checkpoint: tuple[str, int] = ("0", 0)
    checked_rows: dict[str, int] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)


def verify(projection: Projection, *, limit: int = 100) -> VerifyReport:
    """Compare each read-model table with its recomputation from raw events, both read in one
    REPEATABLE READ snapshot and up to the projection's checkpoint; report up to `limit`
    differing rows per table."""
    report = VerifyReport(projection.name)
    is_nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if not is_nested:  # inside a caller's transaction (a test), its snapshot rules
            # One snapshot for the checkpoint, the events and the read model: a runner
            # committing meanwhile moves neither side of the comparison.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute(
            f"SELECT xact_id::text, position FROM {schema.CHECKPOINTS} WHERE name = %s",
            [projection.name],
        )
        row = cursor.fetchone()
        report.checkpoint = (row[0], row[1]) if row else ("0", 0)
        # Exact, not approximate: every event at or before the checkpoint had committed when
        # the runner read past it, and none can appear there later (see runner._READ).
        upto = "(e.xact_id, e.position) <= (%(xact_id)s::xid8, %(position)s)"
        upto_params: dict[str, Any] = {"xact_id": report.checkpoint[0], "position": report.checkpoint[1]}
        for query in projection.verify_queries():
            actual = query.actual or f"SELECT {query.table.column_list()} FROM {query.table}"
            expected = query.expected.replace("{upto}", upto)
            params = {**upto_params, **(query.params(cursor, upto_params) if query.params else {})}
            cursor.execute(
                f"""WITH expected AS ({expected}), actual AS ({actual})
                    (SELECT 'missing', * FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM actual) m)
                    UNION ALL
                    (SELECT 'unexpected', * FROM (SELECT * FROM actual EXCEPT ALL SELECT * FROM expected) u)
                    LIMIT {int(limit)}""",
                params,
            )
            for side, *values in cursor.fetchall():
                report.differences.append(Difference(query.table.name, side, tuple(values)))
            cursor.execute(f"SELECT count(*) FROM {query.table}")
            report.checked_rows[query.table.name] = cursor.fetchone()[0]
    return report
