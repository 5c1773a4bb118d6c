"""Replay rebuilds a projection into shadow tables and swaps them in without losing or doubling
an event, while its live runner and the writers keep going; verify finds any drift."""

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from contracts import schema
from contracts.user_sets import decode, encode
from projections.registry import projection_get
from projections.replay import ReplayRunning, replay
from projections.runner import LOCK_NAMESPACE, checkpoint_get, run_batch_logged
from projections.verify import verify
from tests.projection_helpers import conninfo, event_counts, insert_events, project, set_rows, table_rows

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
ALL_TABLES = (schema.EVENT_ROLLUPS.name, schema.EVENT_TYPE_ROLLUPS.name, schema.ACTIVE_DAYS.name)


def index_names() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexname FROM pg_indexes WHERE tablename = ANY(%s) ORDER BY 1, 2", [list(ALL_TABLES)]
        )
        return cursor.fetchall()


def test_replay_rebuilds_the_same_read_model_row_for_row():
    insert_events(
        [
            {"timestamp": T0 + timedelta(minutes=i), "distinct_id": f"u{i % 7}", "app_version": f"{i % 3}.0"}
            for i in range(300)
        ]
    )
    project()
    live = [table_rows(table) for table in ALL_TABLES]
    live_checkpoints = {name: checkpoint_get(name) for name in ("event_aggregates", "user_activity")}
    indexes = index_names()

    assert replay(projection_get("event_aggregates")) == 300
    assert replay(projection_get("user_activity")) == 300

    assert [table_rows(table) for table in ALL_TABLES] == live
    assert {name: checkpoint_get(name) for name in live_checkpoints} == live_checkpoints
    # The live names come back (a migration naming an index must still find it), and so a
    # second replay's shadow names do not collide.
    assert index_names() == indexes
    assert verify(projection_get("event_aggregates")).differences == []
    assert verify(projection_get("user_activity")).differences == []

    insert_events([{"timestamp": T0, "event_type": "after_replay"}])
    project()
    replay(projection_get("event_aggregates"))
    assert event_counts() == {"e": 300, "after_replay": 1}


def test_replaying_a_projection_that_never_ran_hands_over_its_checkpoint():
    insert_events([{"timestamp": T0 + timedelta(minutes=i)} for i in range(4)])
    replay(projection_get("user_activity"))
    assert checkpoint_get("user_activity").events_applied == 4
    project()
    assert [row[2] for row in table_rows(schema.ACTIVE_DAYS.name)] == [4]


def test_replay_applies_batches_of_its_own_size(settings):
    settings.TIDELOG_PROJECTION_BATCH = 7
    settings.TIDELOG_REPLAY_BATCH = 100
    insert_events([{"timestamp": T0 + timedelta(seconds=i), "distinct_id": f"u{i % 13}"} for i in range(250)])
    project()
    live = [table_rows(table) for table in ALL_TABLES]
    batches: list[int] = []
    assert replay(projection_get("event_aggregates"), progress=batches.append) == 250
    # Two full replay batches, the rest short of one (caught up), then nothing left for the
    # swap's batch under the live lock.
    assert batches == [100, 100, 50]
    assert [table_rows(table) for table in ALL_TABLES] == live


def test_replay_loses_and_doubles_nothing_while_writers_and_the_live_runner_go_on(settings):
    settings.TIDELOG_PROJECTION_BATCH = 100
    settings.TIDELOG_REPLAY_BATCH = 100
    insert_events([{"timestamp": T0 + timedelta(seconds=i), "distinct_id": f"u{i % 13}"} for i in range(1000)])
    project()
    done = threading.Event()
    written = [1000]
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with psycopg.connect(conninfo()) as conn:
                while not done.is_set():
                    insert_events([{"timestamp": T0, "event_type": "meanwhile"} for _ in range(10)], conn.cursor())
                    conn.commit()
                    written[0] += 10
        except BaseException as exc:
            errors.append(exc)

    def live_runner() -> None:
        try:
            while not done.is_set():
                run_batch_logged(projection_get("event_aggregates"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer), threading.Thread(target=live_runner)]
    for thread in threads:
        thread.start()
    try:
        replay(projection_get("event_aggregates"))
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert errors == []
    project()
    assert sum(event_counts().values()) == written[0]
    assert event_counts()["meanwhile"] == written[0] - 1000 > 0
    assert verify(projection_get("event_aggregates")).differences == []


def test_a_second_replay_of_the_same_projection_is_refused():
    with psycopg.connect(conninfo(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, hashtext('replay:user_activity'))", [LOCK_NAMESPACE])
        with pytest.raises(ReplayRunning):
            replay(projection_get("user_activity"))


def test_verify_reports_a_tampered_read_model():
    insert_events([{"timestamp": T0}, {"timestamp": T0, "distinct_id": "v"}])
    project()
    assert verify(projection_get("user_activity")).differences == []
    assert verify(projection_get("event_aggregates")).differences == []
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rm_active_days SET event_count = 99")
        cursor.execute("DELETE FROM rm_event_rollups WHERE grain = 'day'")
    report = verify(projection_get("user_activity"))
    assert {(d.table, d.side, d.row[2], d.row[3]) for d in report.differences} == {
        ("rm_active_days", "missing", 2, 2),
        ("rm_active_days", "unexpected", 99, 2),
    }
    assert [(d.table, d.side, d.row[1]) for d in verify(projection_get("event_aggregates")).differences] == [
        ("rm_event_rollups", "missing", "day")
    ]


def test_verify_finds_a_set_that_lost_a_user_though_its_counts_are_right():
    insert_events([{"timestamp": T0}, {"timestamp": T0, "distinct_id": "v"}])
    project(["user_activity"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT users FROM rm_active_days")
        users = decode(cursor.fetchone()[0])
        users.remove(max(users))
        cursor.execute("UPDATE rm_active_days SET users = %s", [encode(users)])
    differences = verify(projection_get("user_activity")).differences
    # Same count, same size (the size column is recomputed from the set): the fingerprint differs.
    assert sorted((d.side, d.row[3]) for d in differences) == [("missing", 2), ("unexpected", 1)]


def test_verify_stops_at_the_checkpoint_so_events_not_yet_applied_are_no_difference():
    insert_events([{"timestamp": T0}])
    project(["user_activity"])
    # The first event is applied: the checkpoint counts it and the read model holds its row.
    checkpoint = checkpoint_get("user_activity")
    assert checkpoint.events_applied == 1
    assert [(row[2], row[3]) for row in set_rows(schema.ACTIVE_DAYS.name)] == [(1, ["u"])]
    insert_events([{"timestamp": T0, "distinct_id": "later"}])
    report = verify(projection_get("user_activity"))
    # Verify compared exactly up to that checkpoint: the one applied row, and "later" (past
    # the checkpoint, not yet applied) is neither missing nor unexpected.
    assert report.checkpoint == (checkpoint.xact_id, checkpoint.position)
    assert report.checked_rows == {schema.ACTIVE_DAYS.name: 1}
    assert report.differences == []


def test_a_replay_builds_the_query_sides_indexes_after_the_rows_and_under_their_live_names():
    insert_events(
        [
            {"timestamp": T0 + timedelta(minutes=i), "distinct_id": f"u{i % 9}", "event_type": "$identify"}
            if i % 10 == 0
            else {"timestamp": T0 + timedelta(minutes=i), "distinct_id": f"u{i % 9}"}
            for i in range(200)
        ]
    )
    project()
    people = projection_get("people")
    assert people.deferred_indexes  # type: ignore[attr-defined]

    def definitions() -> list[tuple[str, str]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1", [schema.PERSONS.name]
            )
            return cursor.fetchall()

    before, rows = definitions(), table_rows(schema.PERSONS.name)
    assert {name for name, _ in before} >= set(people.deferred_indexes)  # type: ignore[attr-defined]
    shadow_indexes_while_filling: list[int] = []

    def count_shadow_indexes(_: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [schema.PERSONS.name + "__shadow"])
            shadow_indexes_while_filling.append(cursor.fetchone()[0])

    replay(people, progress=count_shadow_indexes)
    # While its rows were written the shadow had its primary key only; then the rest, once.
    assert shadow_indexes_while_filling and shadow_indexes_while_filling[0] == len(before) - len(
        people.deferred_indexes
    )  # type: ignore[attr-defined]
    assert definitions() == before
    assert table_rows(schema.PERSONS.name) == rows
    assert verify(people).differences == []
    replay(people)  # the shadow's names do not collide with a previous replay's
    assert definitions() == before
