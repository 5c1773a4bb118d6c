"""admin/events/'s filters each have an index that serves them in the selector's own SQL, newest
first: distinct_id (migration 0005), session_id and event_type (0007), alone, with a range and on
a cursor page, so a page never scans a partition (docs/performance.md: < 50 ms at 10M events).
The plan is read with sequential scans priced out: on a test's few rows the planner would
rightly prefer them, and the question here is whether an index can serve the query at all."""

import json
import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from django.db import connection

from query_side import funnels, selectors
from tests.projection_helpers import insert_events

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)
FILTERS = ("distinct_id", "session_id", "event_type")


def plan_of_event_list(**kwargs) -> str:
    """EXPLAIN of the SQL selectors.event_list runs for these arguments."""
    statements: list[tuple[str, object]] = []

    def capture(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        selectors.event_list(**kwargs)
    (sql, params), *_ = statements
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize(
    "window",
    [
        {},
        {"after": NOW - timedelta(days=7), "before": NOW},
    ],
)
@pytest.mark.parametrize("cursor", [None, (NOW - timedelta(days=1), UUID(int=7))])
def test_each_filter_is_served_by_its_index(project, name, window, cursor):
    # Days with a partition or chunk to plan over: a TimescaleDB hypertable has none until an
    # event of that day is stored (and another test may have emptied it).
    insert_events([{"project_id": project.project_id, "timestamp": NOW - timedelta(days=d)} for d in (0, 1, 3)])
    filters = selectors.EventFilter(after=window.get("after"), before=window.get("before"), **{name: "some-value"})
    plan = plan_of_event_list(project_id=project.project_id, filters=filters, limit=50, cursor=cursor)
    # Each partition's copy of the parent's index is named after its columns (PostgreSQL:
    # tidelog_events_p20261126_project_id_session_id_timestamp_idx; TimescaleDB: the chunk's
    # name, then the parent index's name, tidelog_events_session_id).
    scans = re.findall(r"Index Scan(?: Backward)? using (\S+)", plan)
    assert scans and all(name in index for index in scans), plan
    assert "Seq Scan" not in plan and "Bitmap" not in plan, plan


def _nodes(node: dict) -> list[dict]:
    return [node, *(found for child in node.get("Plans", []) for found in _nodes(child))]


@pytest.mark.parametrize("breakdown", [None, "app_version", "os_name"])
def test_the_event_type_index_holds_every_column_a_funnels_scan_reads(project, breakdown):
    # Migration 0009: so a funnel's scan of its steps' events can be index-only, which it was at
    # 10M events (docs/performance.md). Funnels now read the event timelines, and the store only
    # past their checkpoint; before the timelines have caught up (a new deployment) that is
    # every event, and this index still serves it: every column but the checkpoint's own
    # (xact_id, position). Which scan the planner picks on a test's few rows, with the suite's
    # stranger holding the visibility horizon back, says nothing; what the scan reads, and what
    # each partition's (or chunk's) index holds, does.
    insert_events([{"project_id": project.project_id, "timestamp": NOW - timedelta(days=d)} for d in (0, 1, 3)])
    params = {
        "project_id": project.project_id, "types": ["a", "b"], "after": NOW - timedelta(days=7), "before": NOW,
        "xact_id": "0", "position": 0,
    }  # fmt: skip
    value = f"coalesce(u.{breakdown}, '')" if breakdown else "''"
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN (VERBOSE, FORMAT JSON) " + funnels._EVENTS_SQL.format(value=value), params)
        [(plan,)] = cursor.fetchall()
        plan = plan if isinstance(plan, list) else json.loads(plan)
        scans = [
            n for n in _nodes(plan[0]["Plan"]) if re.fullmatch(r"u(_\d+)?", n.get("Alias", "")) and "Relation Name" in n
        ]
        assert len(scans) >= 3, plan
        for scan in scans:
            text = json.dumps(
                {k: v for k, v in scan.items() if k in ("Output", "Filter", "Index Cond", "Recheck Cond")}
            )
            read = set(re.findall(rf'{scan["Alias"]}\.\\?"?([a-z_]+)', text)) - {"xact_id", "position"}
            assert {"distinct_id", "event_type", "timestamp"} <= read and (breakdown is None or breakdown in read), text
            cursor.execute(
                """SELECT array_agg(a.attname::text) FROM pg_index i
                   JOIN pg_class x ON x.oid = i.indexrelid
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                   WHERE i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass
                     AND x.relname LIKE '%%event_type%%'
                   GROUP BY i.indexrelid""",
                [scan["Schema"], scan["Relation Name"]],
            )
            covering = [set(columns) for (columns,) in cursor.fetchall()]
            assert any(read <= columns for columns in covering), (scan["Relation Name"], read, covering)
