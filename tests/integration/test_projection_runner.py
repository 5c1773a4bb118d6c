"""The projection runner against real PostgreSQL: exactly once, restartable, safe under
concurrent writers, replayable and verifiable."""

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from projections import read_models
from projections.registry import projection_get
from projections.replay import replay, verify
from projections.runner import checkpoint_ensure, checkpoint_get, run_batch, run_until_caught_up
from tests.projection_helpers import insert_events, table_rows

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def counts(project_id=1) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_type, sum(event_count) FROM rm_event_counts WHERE project_id = %s GROUP BY 1", [project_id]
        )
        return {name: int(total) for name, total in cursor.fetchall()}


def conninfo() -> str:
    db = connection.settings_dict
    return f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']}"


def test_the_runner_applies_events_once_however_often_it_runs():
    insert_events([{"timestamp": T0 + timedelta(minutes=i), "event_type": "a" if i % 2 else "b"} for i in range(10)])
    assert run_until_caught_up() == {"event_aggregates": 10, "user_activity": 10}
    assert run_until_caught_up() == {"event_aggregates": 0, "user_activity": 0}
    assert counts() == {"a": 5, "b": 5}
    assert checkpoint_get("event_aggregates").events_applied == 10


def test_events_arriving_later_are_added_to_the_same_buckets():
    insert_events([{"timestamp": T0, "distinct_id": "u1"}])
    run_until_caught_up()
    insert_events([{"timestamp": T0 + timedelta(minutes=5), "distinct_id": "u2"}])
    run_until_caught_up()
    assert table_rows(read_models.EVENT_COUNTS) == [(1, "e", T0, "", "", 2)]
    assert len(table_rows(read_models.EVENT_USERS)) == 2


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
        assert counts() == {"warm_up": 1}
        assert checkpoint_get("event_aggregates").position < position_a

        writer_a.commit()
    run_until_caught_up(["event_aggregates"])
    assert counts() == {"warm_up": 1, "from_a": 1, "from_b": 1}
    run_until_caught_up(["event_aggregates"])
    assert counts() == {"warm_up": 1, "from_a": 1, "from_b": 1}


def test_a_crash_mid_batch_leaves_read_model_and_checkpoint_unchanged(monkeypatch):
    insert_events([{"timestamp": T0 + timedelta(minutes=i)} for i in range(5)])
    projection = projection_get("user_activity")
    run_until_caught_up(["event_aggregates"])
    original_write = type(projection).write

    def write_then_crash(self, cursor, changes, tables):
        original_write(self, cursor, changes, tables)
        raise RuntimeError("killed after the upsert, before the checkpoint")

    checkpoint_ensure("user_activity")
    monkeypatch.setattr(type(projection), "write", write_then_crash)
    with pytest.raises(RuntimeError):
        run_batch(projection)
    assert table_rows(read_models.USER_DAYS) == []
    assert checkpoint_get("user_activity").position == 0
    monkeypatch.undo()
    run_until_caught_up(["user_activity"])
    assert table_rows(read_models.USER_DAYS)[0][3] == 5


def test_two_runners_of_one_projection_never_apply_a_batch_twice():
    insert_events([{"timestamp": T0 + timedelta(seconds=i)} for i in range(3000)])
    errors = []

    def runner():
        try:
            from projections.runner import catch_up

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
    assert counts() == {"e": 3000}


def test_replay_rebuilds_the_same_read_model_and_loses_nothing_written_meanwhile():
    insert_events(
        [
            {"timestamp": T0 + timedelta(minutes=i), "distinct_id": f"u{i % 7}", "app_version": f"{i % 3}.0"}
            for i in range(300)
        ]
    )
    run_until_caught_up()
    live_before = table_rows(read_models.EVENT_USERS)
    replay(projection_get("event_aggregates"))
    assert table_rows(read_models.EVENT_USERS) == live_before
    assert verify(projection_get("event_aggregates")).differences == []

    insert_events([{"timestamp": T0, "event_type": "after_replay"}])
    run_until_caught_up()
    assert counts()["after_replay"] == 1
    # A second replay works too (the shadow's index names were taken back).
    replay(projection_get("event_aggregates"))
    assert counts()["after_replay"] == 1
    assert sum(counts().values()) == 301


def test_verify_reports_a_tampered_read_model():
    insert_events([{"timestamp": T0}, {"timestamp": T0, "distinct_id": "v"}])
    run_until_caught_up()
    assert verify(projection_get("user_activity")).differences == []
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rm_user_days SET event_count = 99 WHERE distinct_id = 'v'")
    report = verify(projection_get("user_activity"))
    assert {(d.table, d.side) for d in report.differences} == {
        ("rm_user_days", "missing"),
        ("rm_user_days", "unexpected"),
    }


def test_status_counts_the_events_each_projection_has_yet_to_apply():
    from projections.status import projection_status_list

    insert_events([{"timestamp": T0 + timedelta(minutes=i)} for i in range(3)])
    run_until_caught_up(["user_activity"])
    lag = {status.name: status.lag_events for status in projection_status_list()}
    assert lag == {"event_aggregates": 3, "user_activity": 0}
