"""admin/events/'s filters each have an index that serves them in the selector's own SQL, newest
first: distinct_id (migration 0005), session_id and event_type (0007), alone, with a range and on
a cursor page, so a page never scans a partition (docs/performance.md: < 50 ms at 10M events).
The plan is read with sequential scans priced out: on a test's few rows the planner would
rightly prefer them, and the question here is whether an index can serve the query at all."""

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from django.db import connection, transaction

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


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("breakdown", [None, "app_version", "os_name"])
def test_a_funnels_scan_reads_the_event_type_index_alone(project, breakdown):
    # Migration 0009: the index INCLUDEs every column a funnel reads, so no heap page is read
    # for its steps' events once their pages are all-visible (vacuumed, as autovacuum does).
    insert_events([
        {"project_id": project.project_id, "timestamp": NOW - timedelta(days=d, minutes=m), "event_type": t}
        for d in (0, 1, 3) for m in range(30) for t in "abc"
    ])  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) tidelog_events")
    params = {"project_id": project.project_id, "types": ["a", "b"], "after": NOW - timedelta(days=7), "before": NOW}
    value = f"coalesce(u.{breakdown}, '')" if breakdown else "''"
    with transaction.atomic(), connection.cursor() as cursor:
        # Priced out, as above, and so are the joins a few rows make cheap (a merge join over
        # the distinct_id index): hash joins, as at 10M events.
        for plan_type in ("seqscan", "bitmapscan", "mergejoin", "nestloop"):
            cursor.execute(f"SET LOCAL enable_{plan_type} = off")
        cursor.execute("EXPLAIN " + funnels._EVENTS_SQL.format(value=value), params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # Each day's partition (or chunk) that holds events; not the empty default partition.
    scans = re.findall(r"(Index Only Scan|Index Scan)(?: Backward)? using (\S+) on (\S+)", plan)
    days = [(kind, index) for kind, index, table in scans if "user_numbers" not in index
            and "aliases" not in index and not table.endswith("_default")]  # fmt: skip
    assert len(days) >= 3 and all(kind == "Index Only Scan" and "event_type" in index for kind, index in days), plan
