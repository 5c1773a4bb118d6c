"""TimescaleDB's compression under the projection runner (command_side/storage.py,
projections/runner.py's _READ): exact reads over compressed chunks, late events into them,
batches behind a checkpoint skipped unread, erasure and retention through them. Skipped where
the database is plain PostgreSQL (CI's: TimescaleDB is not in this machine's registries)."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from command_side import event_store, storage
from command_side.erasure import person_erase
from contracts.follow import HORIZON
from projections import runner
from projections.registry import PROJECTIONS, projection_get
from projections.replay import replay
from projections.verify import verify
from query_side import user_sets
from tests.projection_helpers import insert_events, project, table_rows

pytestmark = [pytest.mark.timescale, pytest.mark.django_db(transaction=True)]

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def timescaledb_only() -> None:
    if event_store.engine() != "timescaledb":
        pytest.skip("TimescaleDB is not preloaded in this PostgreSQL: the plain-PostgreSQL engine is in use")


def day(n: int, hour: int = 12) -> datetime:
    return TODAY - timedelta(days=n) + timedelta(hours=hour)


def store_a_week_of_events() -> None:
    """40 events on each of the last 8 days, a transaction a day (as drains of a day would be)."""
    for n in range(7, -1, -1):
        insert_events([
            {"timestamp": day(n, hour=i % 24), "distinct_id": f"u{i % 7}", "event_type": f"e{i % 3}",
             "session_id": f"s{n}", "properties": {"i": i}}
            for i in range(40)
        ])  # fmt: skip


def compressed_days() -> list[datetime]:
    return [part.start for part in storage.parts() if part.compressed and part.start is not None]


def total_counted() -> int:
    counts = user_sets.event_counts(project_id=1, after=day(30), before=TODAY + timedelta(days=1))
    return sum(row["count"] for row in counts)


def verify_all() -> dict[str, list[object]]:
    return {name: verify(projection).differences for name, projection in PROJECTIONS.items()}


def test_on_timescaledb_compressed_batches_follow_the_runners_order():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings"
            " WHERE hypertable = 'tidelog_events'::regclass"
        )
        segmentby, orderby = cursor.fetchone()
    assert segmentby == "project_id"
    # TimescaleDB appends the time column itself.
    assert orderby.startswith('xact_id,"position"')


def test_on_timescaledb_the_compression_policy_follows_the_setting():
    assert storage.compression_policy_apply(5) is True
    assert storage.compression_policy() == 5
    assert storage.compression_policy_apply(5) is False
    out = StringIO()
    call_command("event_store", "compress", "--after-days", "3", "--policy-only", stdout=out)
    assert "compression policy: chunks older than 3 days" in out.getvalue()
    assert storage.compression_policy() == 3
    storage.compression_policy_apply(0)
    assert storage.compression_policy() is None


def test_on_timescaledb_the_runner_reads_compressed_chunks_and_late_events_in_them_exactly_once():
    store_a_week_of_events()
    project()
    compressed = storage.compress_now(3)
    # The chunks that ended over 3 days ago (TimescaleDB's own rule for its policy).
    assert [part.start for part in compressed] == [TODAY - timedelta(days=n) for n in range(7, 3, -1)]
    assert compressed_days() == [TODAY - timedelta(days=n) for n in range(7, 3, -1)]

    # Late events into compressed days, and new ones, then the runners go on.
    insert_events([{"timestamp": day(6, hour=3), "distinct_id": "late", "event_type": "e0"} for _ in range(3)])
    insert_events([{"timestamp": day(0, hour=1), "distinct_id": "new", "event_type": "e1"}])
    project()

    assert total_counted() == 8 * 40 + 4
    assert verify_all() == {name: [] for name in PROJECTIONS}
    # A replay reads every compressed chunk from the start, batch by batch.
    before = table_rows("rm_event_rollups")
    replay(projection_get("event_aggregates"))
    assert table_rows("rm_event_rollups") == before


def _read_plan(xact_id: str, position: int, *, lower_bound: bool) -> list[dict[str, object]]:
    sql = runner._READ_EVENTS
    args: list[object] = [xact_id, position, xact_id]
    if not lower_bound:  # the read as it was: the row comparison alone
        sql = sql.replace("  AND xact_id >= %s::xid8\n", "")
        args = [xact_id, position]
    with transaction.atomic(), runner.raw_cursor() as cursor:
        cursor.execute(runner._SETUP, [*runner.lock_key("plan"), "60000ms"])
        cursor.execute(HORIZON)
        (horizon,) = cursor.fetchone()
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, [*args, horizon, 1000])
        (plan,) = cursor.fetchone()
    nodes, stack = [], [(plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


def test_on_timescaledb_a_caught_up_runner_decompresses_nothing():
    store_a_week_of_events()
    project()
    storage.compress_now(3)
    checkpoint = runner.checkpoint_get("event_aggregates")
    assert checkpoint is not None

    def decompressed(lower_bound: bool) -> int:
        nodes = _read_plan(checkpoint.xact_id, checkpoint.position, lower_bound=lower_bound)
        scans = [n for n in nodes if str(n.get("Relation Name", "")).startswith("compress_hyper_")]
        assert scans, "the plan reads no compressed chunk: nothing was compressed"
        return sum(int(n["Actual Rows"]) for n in scans)

    # Each compressed batch's max xact_id is behind the checkpoint: none is even fetched.
    assert decompressed(lower_bound=True) == 0
    # The same read without the plain lower bound fetches every batch (the 12 ms idle read).
    assert decompressed(lower_bound=False) > 0


def test_on_timescaledb_erasure_reaches_events_in_compressed_chunks():
    store_a_week_of_events()
    project()
    storage.compress_now(3)

    person_erase(project_id=1, distinct_ids=("u3",), erased_by="test", via="test")

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tidelog_events WHERE distinct_id = 'u3'")
        assert cursor.fetchone()[0] == 0
    assert compressed_days()  # still compressed around the deleted rows
    assert verify_all() == {name: [] for name in PROJECTIONS}


def test_on_timescaledb_retention_drops_compressed_chunks_and_the_read_models_keep_them():
    store_a_week_of_events()
    project()
    storage.compress_now(2)

    run = storage.retention_run(4)

    assert [part.start for part in run.dropped if part.start >= day(30, 0)] == [
        TODAY - timedelta(days=n) for n in (7, 6, 5)
    ]
    assert all(part.compressed for part in run.dropped)
    assert storage.retained_from() == TODAY - timedelta(days=4)
    assert total_counted() == 8 * 40
    assert verify(projection_get("event_aggregates")).differences == []
