"""A projection runner killed mid-batch (a real `manage.py projections run` process, killed as
kill -9 would) leaves its read model and checkpoint exactly as they were; the next run applies
every event exactly once."""

import signal
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from contracts import schema
from projections.registry import projection_get
from projections.runner import checkpoint_get
from projections.verify import verify
from tests.process_helpers import BIN, Processes, process_env, wait_for
from tests.projection_helpers import conninfo, insert_events, project, set_rows, table_rows

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def start_runner(processes: Processes, name: str, app_name: str) -> None:
    # PGAPPNAME names the runner's connection in pg_stat_activity (libpq reads it; Django sets
    # no application_name of its own).
    processes.start(
        name,
        [str(BIN / "python"), "manage.py", "projections", "run", "user_activity"],
        process_env(PGAPPNAME=app_name, TIDELOG_LOG_LEVEL="INFO"),
    )


# Where the batch is held, in its transaction, nothing committed: (a lock the test takes, the
# statement of the batch that waits for it).
HOLD_POINTS = {
    # Events read, their users numbered; the read of the rows to merge them into waits.
    "at the read-model write": (
        f"LOCK TABLE {schema.ACTIVE_DAYS} IN ACCESS EXCLUSIVE MODE",
        "SELECT t.project_id, t.day",
    ),
    # The read model is written (uncommitted); the checkpoint's update waits.
    "at the checkpoint update, after the read-model upsert": (
        f"SELECT 1 FROM {schema.CHECKPOINTS} WHERE name = 'user_activity' FOR UPDATE",
        f"UPDATE {schema.CHECKPOINTS}",
    ),
}


def backend_waiting_on(app_name: str, blocker_pid: int, statement: str) -> int | None:
    """The pid of the runner's backend while `statement` waits for the test's lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT pid FROM pg_stat_activity
               WHERE datname = current_database() AND application_name = %s AND wait_event_type = 'Lock'
                 AND %s = ANY(pg_blocking_pids(pid)) AND query LIKE %s""",
            [app_name, blocker_pid, f"{statement}%"],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def backend_gone(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", [pid])
        return bool(cursor.fetchone()[0])


@pytest.mark.parametrize("hold_point", list(HOLD_POINTS))
def test_a_runner_killed_mid_batch_leaves_read_model_and_checkpoint_unchanged(processes, hold_point):
    lock, statement = HOLD_POINTS[hold_point]
    # A read model that already holds something, so "unchanged" is not just "empty".
    insert_events([{"timestamp": T0 + timedelta(minutes=i), "distinct_id": f"u{i % 3}"} for i in range(6)])
    project(["user_activity"])
    rows_before = table_rows(schema.ACTIVE_DAYS.name)
    checkpoint_before = checkpoint_get("user_activity")
    assert checkpoint_before.events_applied == 6
    # The next batch adds to those rows (u0..u2) and makes new ones (u3, u4).
    insert_events([{"timestamp": T0 + timedelta(minutes=10 + i), "distinct_id": f"u{i % 5}"} for i in range(20)])

    app_name = f"tidelog-test-runner-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo()) as blocker:
        # TRICKY: the batch waits on this lock inside its transaction, mid-batch. The row lock
        # gives the blocker an xid, but a newer one than the events': they stay readable.
        blocker.execute(lock)
        blocker_pid = blocker.info.backend_pid
        start_runner(processes, "victim", app_name)
        backend = wait_for(
            lambda: backend_waiting_on(app_name, blocker_pid, statement),
            f"the runner's '{statement} …' to wait on our lock (pg_stat_activity)",
            timeout=60,
            processes=processes,
        )
        assert processes.signal("victim", signal.SIGKILL) == -signal.SIGKILL
        blocker.rollback()  # releases the lock: the orphaned backend runs on, then finds no client
    # Its transaction can never commit (no one is left to send COMMIT); wait until PostgreSQL has
    # rolled it back and released its locks, so what we read next is final.
    wait_for(lambda: backend_gone(backend), f"the killed runner's backend (pid {backend}) to end")

    assert table_rows(schema.ACTIVE_DAYS.name) == rows_before
    assert checkpoint_get("user_activity") == checkpoint_before

    start_runner(processes, "survivor", app_name)
    wait_for(
        lambda: checkpoint_get("user_activity").events_applied >= 26,
        "the restarted runner's checkpoint to count all 26 events",
        timeout=60,
        processes=processes,
    )
    assert processes.signal("survivor", signal.SIGTERM) == 0

    checkpoint = checkpoint_get("user_activity")
    assert checkpoint.events_applied == 26
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(position) FROM tidelog_events")
        assert checkpoint.position == cursor.fetchone()[0]
    # One day: its 26 events, once each, and its five users.
    assert [(row[2], row[3]) for row in set_rows(schema.ACTIVE_DAYS.name)] == [(26, ["u0", "u1", "u2", "u3", "u4"])]
    assert verify(projection_get("user_activity")).differences == []


def test_a_runner_killed_mid_shared_batch_leaves_every_projection_unchanged(processes):
    """`projections run` of every projection shares one batch among those at one checkpoint:
    killed after some members wrote their rows (uncommitted) and while another's write waits,
    none of them has moved; the next run applies every event exactly once to each."""
    from projections.registry import PROJECTIONS

    tables = [table for projection in PROJECTIONS.values() for table in projection.tables]
    insert_events([{"timestamp": T0 + timedelta(minutes=i), "distinct_id": f"u{i % 3}", "session_id": f"s{i % 2}"}
                   for i in range(6)])  # fmt: skip
    project()
    rows_before = {table: table_rows(table) for table in tables}
    checkpoints_before = {name: checkpoint_get(name) for name in PROJECTIONS}
    assert {checkpoint.events_applied for checkpoint in checkpoints_before.values()} == {6}
    insert_events([{"timestamp": T0 + timedelta(minutes=10 + i), "distinct_id": f"u{i % 5}", "session_id": f"s{i % 3}"}
                   for i in range(20)])  # fmt: skip

    app_name = f"tidelog-test-runner-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo()) as blocker:
        # sessions writes after event_aggregates, user_activity, flag_exposures and
        # experiment_conversions have written theirs in the same transaction.
        blocker.execute(f"LOCK TABLE {schema.SESSIONS} IN ACCESS EXCLUSIVE MODE")
        processes.start(
            "victim",
            [str(BIN / "python"), "manage.py", "projections", "run"],
            process_env(PGAPPNAME=app_name, TIDELOG_LOG_LEVEL="INFO"),
        )
        backend = wait_for(
            # Any statement: only the sessions projection reads rm_sessions (its first, the
            # histograms' share taken out, does).
            lambda: backend_waiting_on(app_name, blocker.info.backend_pid, ""),
            "the shared batch's sessions write to wait on our lock (pg_stat_activity)",
            timeout=60,
            processes=processes,
        )
        assert processes.signal("victim", signal.SIGKILL) == -signal.SIGKILL
        blocker.rollback()
    wait_for(lambda: backend_gone(backend), f"the killed runner's backend (pid {backend}) to end")

    assert {table: table_rows(table) for table in tables} == rows_before
    assert {name: checkpoint_get(name) for name in PROJECTIONS} == checkpoints_before

    processes.start(
        "survivor", [str(BIN / "python"), "manage.py", "projections", "run"], process_env(PGAPPNAME=app_name)
    )
    wait_for(
        lambda: all(checkpoint_get(name).events_applied >= 26 for name in PROJECTIONS),
        "every projection's checkpoint to count all 26 events",
        timeout=60,
        processes=processes,
    )
    assert processes.signal("survivor", signal.SIGTERM) == 0
    for name, projection in PROJECTIONS.items():
        assert checkpoint_get(name).events_applied == 26, name
        assert verify(projection).differences == [], name
