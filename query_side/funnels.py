"""Ordered funnels, per person, from a bounded scan of the raw events of the steps' types
(docs/api.md, "Funnels"). Never scans more than TIDELOG_FUNNEL_MAX_EVENTS events: the event
counts read model says beforehand how many a funnel would read, and a larger one is refused.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from django.conf import settings
from django.db import DatabaseError, connections, transaction

from contracts import schema
from query_side import user_sets
from query_side.user_sets import JOIN_PERSON, PERSON
from tenancy.api_errors import RangeTooLarge

MIN_STEPS = 2
MAX_STEPS = 10
Breakdown = Literal["app_version", "os_name"]
BREAKDOWNS: tuple[Breakdown, ...] = ("app_version", "os_name")
OTHER = "$other"

# TRICKY: how one pass per step finds every step-1 event's greedy chain without a loop.
# For a person's events sorted by time, N_k(t) = the time of their first step-k event strictly
# after t. A step-1 event at t1 reaches step 2 at N_2(t1), step 3 at N_3(N_2(t1)), and so on:
# the earliest event at each step is the best choice (any chain within the window has each of
# its steps no earlier than the greedy one's). Every N_k is non-decreasing in t, so
# H(t) = N_3(N_2(t)) is the minimum of N_3(ts) over the step-2 events at ts > t. A window
# aggregate over "every later row" (ORDER BY ts DESC, frame from the start to 1 µs before the
# current row: ts strictly greater; its head is fixed, so PostgreSQL adds each row once) gives
# it, and each level of nesting composes one more step. Level L carries h_k = time of step k
# reached from a step-L event at this row's time, for k > L; level 1's row of a step-1 event
# holds its whole chain.
_LATER = "(PARTITION BY who ORDER BY ts DESC RANGE BETWEEN UNBOUNDED PRECEDING AND '1 microsecond' PRECEDING)"


@dataclass(frozen=True)
class FunnelStep:
    event_type: str
    count: int
    conversion: float | None
    """count / the first step's count (None when no one entered)."""
    conversion_from_previous: float | None
    drop_off: int
    """The previous step's count less this one's (0 for the first step)."""
    median_seconds_to_convert: float | None
    """From the step-1 event to this step's, over the persons who reached it (None: step 1 or no one)."""


@dataclass(frozen=True)
class FunnelBreakdown:
    breakdown_value: str | None
    steps: list[FunnelStep]


@dataclass(frozen=True)
class Funnel:
    steps: list[FunnelStep]
    breakdown: list[FunnelBreakdown] | None
    events_read_at_most: int
    """The estimate checked against the limit (the event counts read model's whole hours)."""


def funnel_event_estimate(*, project_id: int, steps: list[str], after: datetime, before: datetime) -> int:
    """The events of the steps' types in [after, before) by the event rollups: an upper bound
    (whole hours, from the hour of `after`), trailing the store by the projection lag."""
    counts = user_sets.event_counts(project_id=project_id, after=after, before=before, event_types=sorted(set(steps)))
    return sum(row["count"] for row in counts)


def _chain_sql(steps: list[str], breakdown: Breakdown | None) -> str:
    """Every step-1 event's row with its chain h2..hn (None where not reached, at any time)."""
    n = len(steps)
    value = f", coalesce(u.{breakdown}, '') AS bd" if breakdown else ""
    sql = f"""SELECT {PERSON} AS who, u."timestamp" AS ts, u.event_type AS t{value}
        FROM {schema.EVENTS} u {JOIN_PERSON}
        WHERE u.project_id = %(project_id)s AND u.event_type = ANY(%(types)s)
          AND u."timestamp" >= %(after)s AND u."timestamp" < %(before)s"""
    carried = ", bd" if breakdown else ""
    for level in range(n - 1, 0, -1):
        is_next = f"t = %(step_{level + 1})s"  # the step after this level's
        columns = [f"min(ts) FILTER (WHERE {is_next}) OVER later AS h{level + 1}"]
        columns += [f"min(h{k}) FILTER (WHERE {is_next}) OVER later AS h{k}" for k in range(level + 2, n + 1)]
        sql = f"SELECT who, ts, t{carried}, {', '.join(columns)} FROM ({sql}) level_{level} WINDOW later AS {_LATER}"
        # The levels below read only the rows of steps 1..level (their own steps and the
        # events they aggregate): the rows of later steps only are done with.
        sql = f"SELECT * FROM ({sql}) done_{level} WHERE t = ANY(%(types_to_{level})s)"
    return sql


def _funnel_sql(steps: list[str], breakdown: Breakdown | None) -> str:
    n = len(steps)
    chain = ", ".join(f"h{k}" for k in range(2, n + 1))
    # The furthest step within the window; h_k grows with k, so the first from the end that fits.
    reached = " ".join(f"WHEN h{k} <= ts + %(window)s THEN {k}" for k in range(n, 1, -1))
    counts = ", ".join(f"count(*) FILTER (WHERE reached >= {k}) AS count_{k}" for k in range(1, n + 1))
    medians = ", ".join(
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM h{k} - ts)::float8)"
        f" FILTER (WHERE reached >= {k}) AS median_{k}"
        for k in range(2, n + 1)
    )
    bd = ", bd" if breakdown else ""
    # Each person's entry: the furthest step, then the earliest step-1 event reaching it (then
    # the smallest breakdown value, for step-1 events at the same instant).
    best = f"""WITH entries AS (
            SELECT who, ts{bd}, {chain}, CASE {reached} ELSE 1 END AS reached
            FROM ({_chain_sql(steps, breakdown)}) chains WHERE t = %(step_1)s
        ), best AS (
            SELECT DISTINCT ON (who) * FROM entries ORDER BY who, reached DESC, ts{' , bd COLLATE "C"' if bd else ""}
        )"""
    if not breakdown:
        return f"{best} SELECT false AS is_total, NULL AS bd, false AS is_other, {counts}, {medians} FROM best"
    return f"""{best}, ranked AS (
            SELECT bd, row_number() OVER (ORDER BY count(*) DESC, bd COLLATE "C") > %(breakdown_limit)s AS is_other
            FROM best GROUP BY bd
        ), labelled AS (
            SELECT best.*, ranked.is_other, CASE WHEN ranked.is_other THEN NULL ELSE bd END AS label
            FROM best JOIN ranked USING (bd)
        )
        SELECT grouping(is_other) = 1 AS is_total, label AS bd, is_other, {counts}, {medians}
        FROM labelled GROUP BY GROUPING SETS ((), (label, is_other))"""


def _steps(steps: list[str], row: dict[str, Any]) -> list[FunnelStep]:
    counts = [int(row.get(f"count_{k}", 0)) for k in range(1, len(steps) + 1)]
    found = []
    for k, event_type in enumerate(steps, start=1):
        count, first = counts[k - 1], counts[0]
        previous = counts[k - 2] if k > 1 else count
        found.append(
            FunnelStep(
                event_type=event_type,
                count=count,
                conversion=count / first if first else None,
                conversion_from_previous=count / previous if previous else None,
                drop_off=previous - count,
                median_seconds_to_convert=row.get(f"median_{k}"),
            )
        )
    return found


def funnel_compute(
    *,
    project_id: int,
    steps: list[str],
    window: timedelta,
    after: datetime,
    before: datetime,
    breakdown: Breakdown | None = None,
    breakdown_limit: int = 10,
) -> Funnel:
    """The ordered funnel of `steps` per person (user_sets.PERSON), step-1 events in [after,
    before), later steps strictly after the previous one, at most `window` after the step-1
    event and before `before`. Raises RangeTooLarge (before reading any event) when the steps'
    events in the range exceed TIDELOG_FUNNEL_MAX_EVENTS by the event counts read model."""
    if not MIN_STEPS <= len(steps) <= MAX_STEPS or (breakdown is not None and breakdown not in BREAKDOWNS):
        # The breakdown is spliced into the SQL as a column name: only known names pass.
        raise ValueError(f"{len(steps)} steps or unknown breakdown {breakdown!r}")
    estimate = funnel_event_estimate(project_id=project_id, steps=steps, after=after, before=before)
    limit = settings.TIDELOG_FUNNEL_MAX_EVENTS
    if estimate > limit:
        raise RangeTooLarge(
            "after",
            f"this funnel would read about {estimate:,} events (its steps' events from after to before);"
            f" at most {limit:,} are read per funnel: narrow the range",
        )
    params: dict[str, Any] = {
        "project_id": project_id, "types": sorted(set(steps)), "after": after, "before": before,
        "window": window, "breakdown_limit": breakdown_limit,
        **{f"step_{k}": step for k, step in enumerate(steps, start=1)},
        **{f"types_to_{k}": sorted(set(steps[:k])) for k in range(1, len(steps))},
    }  # fmt: skip
    timeout = f"{int(settings.TIDELOG_FUNNEL_TIMEOUT_SECONDS * 1000)}ms"
    try:
        with (
            transaction.atomic(using=settings.QUERY_DB_ALIAS),
            connections[settings.QUERY_DB_ALIAS].cursor() as cursor,
        ):
            # The sort by (person, time) holds up to TIDELOG_FUNNEL_MAX_EVENTS rows of ~60 bytes:
            # in memory, not in temporary files (PostgreSQL's default work_mem is 4 MB). The
            # timeout guards what the estimate cannot see: events the counts have not reached.
            cursor.execute(
                "SELECT set_config('work_mem', '64MB', true), set_config('statement_timeout', %s, true)", [timeout]
            )
            cursor.execute(_funnel_sql(steps, breakdown), params)
            columns = [column.name for column in cursor.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    except DatabaseError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
            raise
        raise RangeTooLarge(
            "after",
            f"this funnel ran past {settings.TIDELOG_FUNNEL_TIMEOUT_SECONDS:g} s and was stopped: narrow the range",
        ) from exc
    # GROUPING SETS over no rows gives no grand total; a plain aggregate always gives one row.
    total = next((row for row in rows if row["is_total"] or not breakdown), {})
    groups = None
    if breakdown:
        parts = sorted(
            (row for row in rows if not row["is_total"]),
            key=lambda row: (row["is_other"], -row["count_1"], row["bd"] or ""),
        )
        groups = [
            FunnelBreakdown(OTHER if row["is_other"] else (row["bd"] or None), _steps(steps, row)) for row in parts
        ]
    return Funnel(_steps(steps, total), groups, estimate)
