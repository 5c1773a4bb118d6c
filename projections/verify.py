"""Verify: recompute a read model from the raw events up to its checkpoint and list every row
that differs. Reads only; never repairs (replay does that).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from contracts import schema
from projections import retention
from projections.projection import Projection, VerifyQuery


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
    retained_from: datetime | None = None
    """Set when retention has dropped events: only the retained window was checked."""
    history_rows: dict[str, int] = field(default_factory=dict)
    """Per table, the rows of history before `retained_from`: kept, not checked."""
    unverified: list[str] = field(default_factory=list)
    """Lifetime tables that cannot be checked once events were dropped (projections/retention.py)."""


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
        report.retained_from = retention.retained_from(cursor)
        for query in projection.verify_queries():
            if report.retained_from is not None and query.table.name not in retention.windows(projection):
                report.unverified.append(query.table.name)
                continue
            actual = query.actual or f"SELECT {query.table.column_list()} FROM {query.table}"
            expected = query.expected.replace("{upto}", upto)
            params = {**upto_params, **(query.params(cursor, upto_params) if query.params else {})}
            if report.retained_from is not None:
                params["retained_from"] = report.retained_from
                expected, actual = _retained_window(projection, query, expected, actual)
                cursor.execute(
                    f"SELECT count(*) FROM {query.table} t"
                    f" WHERE NOT {retention.in_window(projection, query.table.name, 't')}",
                    params,
                )
                report.history_rows[query.table.name] = cursor.fetchone()[0]
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


def _retained_window(projection: Projection, query: VerifyQuery, expected: str, actual: str) -> tuple[str, str]:
    """Both sides cut to the retained window (projections/retention.py): the rows the window's
    predicate admits, less, on the recomputed side, those of a key the read model holds as
    history (a user first exposed before the watermark, recomputed from their later exposures
    alone, is not a missing row)."""
    table = query.table.name
    names = ", ".join(query.columns or [column.name for column in query.table.columns])
    window = retention.in_window(projection, table, "x")
    history = f"NOT {retention.in_window(projection, table, 'o')}"
    # By the key's columns the comparison has (a table of chunks compares whole hours).
    key = retention.same_key([k for k in query.table.key if query.columns is None or k in query.columns], "o", "x")
    return (
        f"""SELECT x.* FROM ({expected}) x({names}) WHERE {window}
            AND NOT EXISTS (SELECT 1 FROM ({actual}) o({names}) WHERE {history} AND {key})""",
        f"SELECT x.* FROM ({actual}) x({names}) WHERE {window}",
    )
