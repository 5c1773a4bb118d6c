"""The projection runner against real PostgreSQL: exactly once, restartable, safe under
concurrent writers, loud about errors."""

import json
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from contracts import schema
from projections.registry import PROJECTIONS, projection_get
from projections.runner import (
    CheckpointMoved,
    catch_up,
    checkpoint_ensure,
    checkpoint_get,
    run_batch,
    run_forever,
    run_until_caught_up,
)
from tests.projection_helpers import conninfo, event_counts, insert_events, project, set_rows, table_rows

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def test_the_runner_applies_events_once_however_often_it_runs():
    insert_events([{"timestamp": T0 + timedelta(minutes=i), "event_type": "a" if i % 2 else "b"} for i in range(10)])
    # Every registered projection, by name: a new one is in it without editing this test.
    assert project() == dict.fromkeys(PROJECTIONS, 10)
    assert project() == dict.fromkeys(PROJECTIONS, 0)
    assert event_counts() == {"a": 5, "b": 5}
    checkpoint = checkpoint_get("event_aggregates")
    assert checkpoint.events_applied == 10
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(position) FROM tidelog_events")
        assert checkpoint.position == cursor.fetchone()[0]


def test_events_arriving_later_are_added_to_the_same_buckets():
    insert_events([{"timestamp": T0, "distinct_id": "u1"}])
    project()
    insert_events([{"timestamp": T0 + timedelta(minutes=5), "distinct_id": "u2"}])
    project()
    day = T0.replace(hour=0)
    assert set_rows(schema.EVENT_ROLLUPS.name) == [
        (1, "day", day, "e", "", "", 2, ["u1", "u2"]),
        (1, "hour", T0, "e", "", "", 2, ["u1", "u2"]),
    ]
    assert set_rows(schema.EVENT_TYPE_ROLLUPS.name) == [
        (1, "day", day, "e", 2, ["u1", "u2"]),
        (1, "hour", T0, "e", 2, ["u1", "u2"]),
    ]
    assert set_rows(schema.ACTIVE_DAYS.name) == [(1, day.date(), 2, ["u1", "u2"])]


def test_small_batches_give_the_same_read_model_as_one_big_one(settings):
    events = [
        {"timestamp": T0 + timedelta(minutes=7 * i), "distinct_id": f"u{i % 5}", "os_name": ["iOS", None][i % 2]}
        for i in range(60)
    ]
    insert_events(events)
    project()
    tables = (schema.EVENT_ROLLUPS.name, schema.EVENT_TYPE_ROLLUPS.name, schema.ACTIVE_DAYS.name)
    whole = [table_rows(t) for t in tables]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE projection_checkpoints, {', '.join(tables)}")
    settings.TIDELOG_PROJECTION_BATCH = 7
    project()
    # Byte for byte, sets included: the users keep their numbers (the directory is not truncated).
    assert [table_rows(t) for t in tables] == whole


def test_a_lower_position_committing_last_is_not_skipped():
    # The day's partition or chunk exists before the writers race (on TimescaleDB the first
    # insert into a new chunk holds a lock the second writer would wait on until A commits).
    insert_events([{"timestamp": T0, "event_type": "warm_up"}])
    # Writer A draws the lower position but commits last; writer B commits first.
    with psycopg.connect(conninfo()) as writer_a, psycopg.connect(conninfo()) as writer_b:
        insert_events([{"timestamp": T0, "event_type": "from_a"}], cursor=writer_a.cursor())
        insert_events([{"timestamp": T0, "event_type": "from_b"}], cursor=writer_b.cursor())
        with writer_a.cursor() as cur:
            cur.execute("SELECT position FROM tidelog_events WHERE event_type = 'from_a'")
            position_a = cur.fetchone()[0]
        writer_b.commit()
        with writer_b.cursor() as cur:
            cur.execute("SELECT position FROM tidelog_events WHERE event_type = 'from_b'")
            assert cur.fetchone()[0] > position_a

        run_until_caught_up(["event_aggregates"])
        # B's event must wait: applying it would move the checkpoint past A's position.
        assert event_counts() == {"warm_up": 1}
        assert checkpoint_get("event_aggregates").position < position_a

        writer_a.commit()
    project(["event_aggregates"])
    assert event_counts() == {"warm_up": 1, "from_a": 1, "from_b": 1}
    project(["event_aggregates"])
    assert event_counts() == {"warm_up": 1, "from_a": 1, "from_b": 1}


def test_a_batch_is_rolled_back_when_its_checkpoint_moves_underneath(monkeypatch):
    insert_events([{"timestamp": T0 + timedelta(minutes=i)} for i in range(3)])
    projection = projection_get("event_aggregates")
    checkpoint_ensure("event_aggregates")
    original_write = type(projection).write

    def write_while_another_moves_the_checkpoint(self, cursor, changes, tables):
        original_write(self, cursor, changes, tables)
        with psycopg.connect(conninfo(), autocommit=True) as other:
            other.execute("UPDATE projection_checkpoints SET position = 1 WHERE name = 'event_aggregates'")

    monkeypatch.setattr(type(projection), "write", write_while_another_moves_the_checkpoint)
    with pytest.raises(CheckpointMoved):
        run_batch(projection)
    assert table_rows(schema.EVENT_ROLLUPS.name) == []
    assert checkpoint_get("event_aggregates").position == 1


def test_two_runners_of_one_projection_never_apply_a_batch_twice(settings):
    settings.TIDELOG_PROJECTION_BATCH = 500
    insert_events([{"timestamp": T0 + timedelta(seconds=i)} for i in range(3000)])
    errors = []

    def runner():
        try:
            catch_up(projection_get("event_aggregates"))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert event_counts() == {"e": 3000}
    assert checkpoint_get("event_aggregates").events_applied == 3000


def test_a_failing_projection_is_stopped_loudly_and_the_others_go_on(monkeypatch, caplog):
    insert_events([{"timestamp": T0 + timedelta(minutes=i)} for i in range(4)])
    projection = projection_get("event_aggregates")

    def broken_apply(self, events, inputs=None):
        raise ValueError("a bug in apply")

    monkeypatch.setattr(type(projection), "apply", broken_apply)
    rounds = iter(range(3))
    stopped = run_forever(should_stop=lambda: next(rounds, None) is None)
    assert stopped == ["event_aggregates"]
    assert "a bug in apply" in caplog.text and "event_aggregates: STOPPED" in caplog.text
    assert checkpoint_get("event_aggregates").position == 0
    assert table_rows(schema.ACTIVE_DAYS.name)[0][2] == 4


def test_run_forever_stops_when_asked_after_the_batch_in_hand():
    insert_events([{"timestamp": T0}])
    asked = iter([False, True])
    assert run_forever(["user_activity"], should_stop=lambda: next(asked)) == []
    assert checkpoint_get("user_activity").events_applied == 1


def test_status_counts_the_events_each_projection_has_yet_to_apply():
    from projections.status import projection_status_list

    insert_events([{"timestamp": T0 + timedelta(minutes=i)} for i in range(3)])
    project(["user_activity"])
    lag = {status.name: status.lag_events for status in projection_status_list()}
    assert lag == {**dict.fromkeys(PROJECTIONS, 3), "user_activity": 0}


def spy_on_batches(monkeypatch):
    """The checkpoints of each batch the runner applies, one list per batch (a shared batch names
    several)."""
    from projections import runner

    batches: list[list[str]] = []
    original = runner._apply_batch

    def counting(members, limit):
        batches.append(sorted(member.checkpoint for member in members))
        return original(members, limit)

    monkeypatch.setattr(runner, "_apply_batch", counting)
    return batches


def test_projections_at_one_checkpoint_share_one_batch_and_each_gets_the_properties_it_asked_for(monkeypatch):
    from projections.registry import PROJECTIONS
    from projections.verify import verify

    insert_events([
        {"timestamp": T0, "event_type": "$feature_flag_called", "properties": {"$feature_flag": "f", "$feature_flag_response": "b"}},
        {"timestamp": T0 + timedelta(minutes=1), "event_type": "opened", "properties": {"$set": {"plan": "pro"}}},
        {"timestamp": T0 + timedelta(minutes=2), "event_type": "$identify", "distinct_id": "user-1",
         "properties": {"$anon_distinct_id": "u"}},
    ])  # fmt: skip
    batches = spy_on_batches(monkeypatch)
    rounds = iter(range(2))
    assert run_forever(should_stop=lambda: next(rounds, None) is None) == []
    assert batches[0] == sorted(PROJECTIONS)  # one read, one transaction for all
    for name, projection in PROJECTIONS.items():
        assert checkpoint_get(name).events_applied == 3, name
        assert verify(projection).differences == [], name
    assert table_rows(schema.FLAG_EXPOSURES)[0][3] == "b"
    # people read the $set of a plain event and the $identify's link: one person, both ids.
    assert [json.loads(row[3]) for row in table_rows(schema.PERSONS)] == [{"plan": "pro"}]


def test_a_projection_behind_the_others_runs_alone_until_it_catches_up(monkeypatch, settings):
    settings.TIDELOG_PROJECTION_BATCH = 4
    insert_events([{"timestamp": T0 + timedelta(minutes=i)} for i in range(10)])
    for name in ("event_aggregates", "user_activity"):
        checkpoint_ensure(name)
    run_batch(projection_get("event_aggregates"))  # 4 events ahead of user_activity
    batches = spy_on_batches(monkeypatch)
    rounds = iter(range(4))
    assert run_forever(["event_aggregates", "user_activity"], should_stop=lambda: next(rounds, None) is None) == []
    assert batches[:2] == [["event_aggregates"], ["user_activity"]]
    assert ["event_aggregates", "user_activity"] in batches  # once caught up to one checkpoint
    assert checkpoint_get("event_aggregates").events_applied == 10
    assert checkpoint_get("user_activity").events_applied == 10
    assert event_counts() == {"e": 10}


def test_the_prepared_read_sees_partitions_made_and_dropped_after_it_was_planned():
    """The read runs one generic plan per connection (prepared: runner._READ): a day partition or chunk
    made after it was planned, and one dropped by retention, must change what it reads."""
    from command_side import storage

    checkpoint_ensure("event_aggregates")
    insert_events([{"timestamp": T0, "distinct_id": "a"}])
    assert run_batch(projection_get("event_aggregates")) == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE generic_plans > 0")
        assert cursor.fetchone()[0] >= 1  # the read was prepared, and ran its generic plan

    far = T0 + timedelta(days=40)  # a day with no partition or chunk until this event
    insert_events([{"timestamp": far, "distinct_id": "b"}])
    assert run_batch(projection_get("event_aggregates")) == 1

    insert_events([{"timestamp": T0 - timedelta(days=20), "distinct_id": "c"}])
    assert run_batch(projection_get("event_aggregates")) == 1
    storage.retention_run(10)  # drops the day of "c" (applied), and every older empty day
    insert_events([{"timestamp": T0 - timedelta(days=21), "distinct_id": "d"}])  # a late event past the watermark
    assert run_batch(projection_get("event_aggregates")) == 1
    assert event_counts() == {"e": 4}
