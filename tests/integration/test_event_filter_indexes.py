"""admin/events/'s filters each have an index that serves them in the selector's own SQL, newest
first: distinct_id (migration 0005), session_id and event_type (0007), alone, with a range and on
a cursor page, so a page never scans a partition (docs/performance.md: < 50 ms at 10M events).
The plan is read with sequential scans priced out: on a test's few rows the planner would
rightly prefer them, and the question here is whether an index can serve the query at all."""

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from django.db import connection

from query_side import selectors
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
