"""The rollups per event type (schema.EVENT_TYPE_ROLLUPS) are the rollups per type, version and
OS (schema.EVENT_ROLLUPS) summed over version and OS: as the projection keeps them, as the
migration fills them, and as the query side reads them where no version or OS is asked about."""

import importlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import connection, transaction

from contracts import schema
from projections.registry import projection_get
from projections.verify import verify
from query_side import selectors
from tests.projection_helpers import insert_events, project, set_rows

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


def events() -> list[dict]:
    """Users on several versions and OSes (one switching version), two projects, two days."""
    return [
        {
            "project_id": 1 + i % 2,
            "timestamp": T0 + timedelta(minutes=37 * i),
            "event_type": ("open", "tap", "buy")[i % 3],
            "distinct_id": f"u{i % 7}",
            "app_version": ("1.0", "1.1", None)[(i // 5) % 3],
            "os_name": ("iOS", "Android", None)[i % 4 % 3],
        }
        for i in range(90)
    ]


def summed() -> list[tuple]:
    """EVENT_ROLLUPS summed over version and OS, as set_rows(EVENT_TYPE_ROLLUPS) shows its rows."""
    totals: dict[tuple, int] = defaultdict(int)
    users: dict[tuple, set[str]] = defaultdict(set)
    for project_id, grain, bucket, event_type, _version, _os, count, members in set_rows(schema.EVENT_ROLLUPS.name):
        key = (project_id, grain, bucket, event_type)
        totals[key] += count
        users[key].update(members)
    return sorted((*key, totals[key], sorted(users[key])) for key in totals)


def test_the_type_rollups_are_the_rollups_summed_over_version_and_os(settings):
    settings.TIDELOG_PROJECTION_BATCH = 11  # rows grow over many batches
    insert_events(events())
    project(["event_aggregates"])
    rows = set_rows(schema.EVENT_TYPE_ROLLUPS.name)
    assert rows == summed()
    # Each type's users on both grains, with their versions and OSes mixed in one row.
    assert {(row[1], row[3]) for row in rows} == {(g, t) for g in ("hour", "day") for t in ("open", "tap", "buy")}
    assert max(len(row[5]) for row in rows if row[1] == "day") > 1
    assert verify(projection_get("event_aggregates")).differences == []


def test_the_migration_fills_the_type_rollups_from_the_rollups_that_exist():
    fill = importlib.import_module("projections.migrations.0010_event_type_rollups").fill
    insert_events(events())
    project(["event_aggregates"])
    kept = set_rows(schema.EVENT_TYPE_ROLLUPS.name)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {schema.EVENT_TYPE_ROLLUPS}")
    with transaction.atomic():  # as migrate runs it
        fill(None, SimpleNamespace(connection=connection))
    assert set_rows(schema.EVENT_TYPE_ROLLUPS.name) == kept == summed()
    assert verify(projection_get("event_aggregates")).differences == []


def test_verify_finds_a_type_rollup_that_lost_a_user():
    insert_events(events())
    project(["event_aggregates"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {schema.EVENT_TYPE_ROLLUPS} SET users = (SELECT users FROM {schema.EVENT_TYPE_ROLLUPS}
                WHERE user_count = 1 LIMIT 1), user_count = 1 WHERE user_count > 1
                AND ctid = (SELECT ctid FROM {schema.EVENT_TYPE_ROLLUPS} WHERE user_count > 1 LIMIT 1)"""
        )
        assert cursor.rowcount == 1
    tables = {d.table for d in verify(projection_get("event_aggregates")).differences}
    assert tables == {schema.EVENT_TYPE_ROLLUPS.name}


def test_an_answer_without_version_or_os_reads_the_type_rollups():
    insert_events(events())
    project(["event_aggregates"])
    window = {"project_id": 1, "interval": "day", "after": T0 - timedelta(days=1), "before": T0 + timedelta(days=3)}
    whole = selectors.event_aggregate_list(**window)
    by_os = selectors.event_aggregate_list(**window, breakdown="os_name")
    assert whole and by_os
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {schema.EVENT_ROLLUPS}")
    # Without the per version and OS rows, the answer per type alone is unchanged; a
    # breakdown by OS (which only they hold) is empty.
    assert selectors.event_aggregate_list(**window) == whole
    assert selectors.event_aggregate_list(**window, breakdown="os_name") == []
