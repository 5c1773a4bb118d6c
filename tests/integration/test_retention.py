"""Retention on whichever engine this database has (command_side/storage.py): whole days dropped
past the policy, never an event a projection has not applied, an exact watermark, and read
models that keep their history while verify and replay work within the retained window
(projections/retention.py)."""

import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from command_side import event_store, storage
from contracts.captured import BufferEntry, EventCaptured
from projections.registry import projection_get
from projections.replay import replay
from projections.retention import HistoryWouldBeLost
from projections.verify import verify
from query_side import user_sets
from tests.projection_helpers import insert_events, project, table_rows

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
TODAY = datetime(NOW.year, NOW.month, NOW.day, tzinfo=UTC)


def day(n: int, hour: int = 12) -> datetime:
    """`hour` o'clock UTC, n days before today."""
    return TODAY - timedelta(days=n) + timedelta(hours=hour)


def events_on(days: range, per_day: int = 3, **fields: object) -> list[dict[str, object]]:
    return [
        {"timestamp": day(n, hour=1 + i), "distinct_id": f"u{i}", "event_type": "open", **fields}
        for n in days
        for i in range(per_day)
    ]


def recent(parts: list[storage.Part]) -> list[datetime | None]:
    """The days of the last month among `parts` (other tests' old, empty ones go too)."""
    return [part.start for part in parts if part.start and part.start >= TODAY - timedelta(days=30)]


def stored_days() -> list[datetime]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT date_trunc('day', \"timestamp\", 'UTC') FROM tidelog_events ORDER BY 1")
        return [row[0] for row in cursor.fetchall()]


def total_counted(after: datetime) -> int:
    return sum(
        row["count"] for row in user_sets.event_counts(project_id=1, after=after, before=NOW + timedelta(days=1))
    )


def flagged(when: datetime, distinct_id: str, variant: str) -> dict[str, object]:
    return {
        "timestamp": when, "distinct_id": distinct_id, "event_type": "$feature_flag_called",
        "properties": {"$feature_flag": "f", "$feature_flag_response": variant},
    }  # fmt: skip


def test_retention_drops_the_days_past_the_policy_whole_and_records_the_watermark():
    insert_events(events_on(range(0, 10)))
    project()
    before = storage.parts()

    run = storage.retention_run(6)

    assert run.cutoff == TODAY - timedelta(days=6)
    # Six whole days before today are kept, and today.
    assert recent(run.dropped) == [TODAY - timedelta(days=n) for n in (9, 8, 7)]
    assert stored_days() == [TODAY - timedelta(days=n) for n in range(6, -1, -1)]
    assert storage.retained_from() == run.retained_from == TODAY - timedelta(days=6)
    # Exactly those parts are gone; every other is where it was.
    assert {p.name for p in storage.parts()} == {p.name for p in before} - {p.name for p in run.dropped}
    # The read models keep what the dropped days gave them.
    assert total_counted(day(12)) == 30
    # A second run at the same policy has nothing left to drop.
    assert storage.retention_run(6).dropped == []


def test_retention_never_drops_an_event_a_projection_has_not_applied():
    insert_events(events_on(range(0, 8)))
    project()
    insert_events([{"timestamp": day(6, hour=20), "distinct_id": "late"}])  # a late event, not yet applied

    run = storage.retention_run(3)

    # Day 7 goes; day 6 holds an unapplied event, so it and every later day wait.
    assert recent(run.dropped) == [TODAY - timedelta(days=7)]
    assert run.held is not None and "has not applied" in run.held
    assert storage.retained_from() == TODAY - timedelta(days=6)
    project()
    assert recent(storage.retention_run(3).dropped) == [TODAY - timedelta(days=n) for n in (6, 5, 4)]
    assert total_counted(day(9)) == 25


def test_a_dry_run_drops_nothing_and_says_what_it_would():
    insert_events(events_on(range(0, 5)))
    project()
    out = StringIO()
    call_command("event_store", "retention", "--days", "2", "--dry-run", stdout=out)
    assert f"({day(4):%Y-%m-%d}," in out.getvalue() and f"({day(2):%Y-%m-%d}," not in out.getvalue()
    assert len(stored_days()) == 5
    assert storage.retained_from() is None


def test_a_late_event_of_a_dropped_day_is_counted_and_goes_at_the_next_run():
    insert_events(events_on(range(0, 6)))
    project()
    storage.retention_run(3)
    parts = {part.name for part in storage.parts()}

    late = BufferEntry(project_id=1, events=[captured(day(5, hour=9), distinct_id="late")])
    assert event_store.append([late]).stored == 1
    if event_store.engine() == "postgres":
        # No partition comes back for a day past the watermark: the event lies in the default
        # partition. (TimescaleDB makes the day's chunk again; retention drops it again.)
        assert {part.name for part in storage.parts()} == parts
    project()
    assert total_counted(day(7)) == 19  # the history bucket took it

    run = storage.retention_run(3)
    assert stored_days() == [TODAY - timedelta(days=n) for n in (3, 2, 1, 0)]
    if event_store.engine() == "postgres":
        assert run.default_rows_deleted == 1  # it lay in the default partition
    assert total_counted(day(7)) == 19


def test_a_retry_of_a_dropped_event_is_still_a_duplicate_inside_the_dedup_window():
    old = captured(day(5))
    assert event_store.append([BufferEntry(project_id=1, events=[old])]).stored == 1
    project()
    storage.retention_run(2)
    assert stored_days() == []

    again = event_store.append([BufferEntry(project_id=1, events=[old])])

    assert (again.stored, again.duplicates) == (0, 1)
    project()
    assert total_counted(day(9)) == 1  # counted once, in history


def test_verify_checks_the_retained_window_and_leaves_the_history():
    insert_events(events_on(range(0, 6)))
    project()
    storage.retention_run(3)

    report = verify(projection_get("event_aggregates"))
    assert report.differences == []
    assert report.retained_from == TODAY - timedelta(days=3)
    # 2 dropped days (5 and 4): one day row and three hour rows each, per type with its version
    # and OS and per type alone.
    assert report.history_rows == {"rm_event_rollups": 8, "rm_event_type_rollups": 8}

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE rm_event_rollups SET event_count = event_count + 5 WHERE bucket < %s", [TODAY - timedelta(days=3)]
        )
    assert verify(projection_get("event_aggregates")).differences == []  # history: not checked
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rm_event_rollups SET event_count = event_count + 1 WHERE bucket = %s", [day(1, hour=0)])
    drift = verify(projection_get("event_aggregates")).differences
    assert {(d.side, d.row[2]) for d in drift} == {("missing", day(1, hour=0)), ("unexpected", day(1, hour=0))}


SESSIONS = [
    {"timestamp": day(3, hour=1), "session_id": "s1"},
    {"timestamp": day(1, hour=1), "session_id": "s2"},
    {"timestamp": day(1, hour=2), "session_id": "s2"},
]


def test_verify_names_the_lifetime_tables_it_cannot_check_past_retention():
    insert_events(SESSIONS)
    project()
    assert verify(projection_get("sessions")).unverified == []
    storage.retention_run(2)

    report = verify(projection_get("sessions"))

    assert report.unverified == ["rm_sessions", "rm_session_durations"]
    assert report.differences == [] and report.checked_rows == {}
    out = StringIO()
    call_command("projections", "verify", "sessions", stdout=out)
    assert "not checked" in out.getvalue() and "rm_sessions" in out.getvalue()


def test_replay_past_retention_rebuilds_the_window_and_carries_the_history_over():
    insert_events(events_on(range(0, 6)))
    project()
    storage.retention_run(3)
    tables = ("rm_event_rollups", "rm_event_type_rollups")
    history = {t: [row for row in table_rows(t) if row[2] < TODAY - timedelta(days=3)] for t in tables}
    assert [len(rows) for rows in history.values()] == [8, 8]
    with connection.cursor() as cursor:  # drift in the window, which replay must heal
        cursor.execute("UPDATE rm_event_rollups SET event_count = 99 WHERE bucket = %s", [day(0, hour=0)])

    replay(projection_get("event_aggregates"))

    for table in tables:
        assert [row for row in table_rows(table) if row[2] < TODAY - timedelta(days=3)] == history[table]
    assert verify(projection_get("event_aggregates")).differences == []
    assert total_counted(day(8)) == 18


def test_replay_keeps_a_user_first_exposed_before_the_watermark_as_the_live_row():
    insert_events([flagged(day(5), "early", "a"), flagged(day(1), "early", "b"), flagged(day(1), "new", "b")])
    project()
    storage.retention_run(3)
    live = table_rows("rm_flag_exposures")

    # Recomputed from the retained events, "early" would look first exposed on day 1 to "b":
    # verify must not call that a difference, and replay must keep the live row.
    assert verify(projection_get("flag_exposures")).differences == []
    replay(projection_get("flag_exposures"))

    assert table_rows("rm_flag_exposures") == live
    early = next(row for row in live if row[2] == "early")
    assert (early[3], early[4], early[5], early[6]) == ("a", day(5), ["a", "b"], 2)


def test_replay_of_a_lifetime_projection_past_retention_needs_retained_only():
    insert_events(SESSIONS)
    project()
    storage.retention_run(2)
    assert [row[1] for row in table_rows("rm_sessions")] == ["s1", "s2"]

    with pytest.raises(HistoryWouldBeLost, match="--retained-only"):
        replay(projection_get("sessions"))
    with pytest.raises(CommandError, match="--retained-only"):
        call_command("projections", "replay", "sessions")

    out = StringIO()
    call_command("projections", "replay", "sessions", "--retained-only", stdout=out)
    assert "now hold the retained events' alone" in out.getvalue()
    # s1's only event was dropped: the rebuilt sessions know s2 alone.
    assert [row[1] for row in table_rows("rm_sessions")] == ["s2"]


def test_event_store_info_reports_the_policy_and_the_retained_window(settings):
    settings.TIDELOG_EVENT_RETENTION_DAYS = 2
    insert_events(events_on(range(0, 4)))
    project()
    out = StringIO()
    call_command("event_store", "retention", stdout=out)
    assert f"({day(3):%Y-%m-%d}," in out.getvalue() and f"({day(2):%Y-%m-%d}," not in out.getvalue()
    info = StringIO()
    call_command("event_store", stdout=info)
    assert f"events from {TODAY - timedelta(days=2):%Y-%m-%d} 00:00 UTC" in info.getvalue()
    assert stored_days() == [TODAY - timedelta(days=n) for n in (2, 1, 0)]
    assert "retention       2 days" in info.getvalue()


def test_retention_off_keeps_everything(settings):
    settings.TIDELOG_EVENT_RETENTION_DAYS = 0
    insert_events(events_on(range(0, 3)))
    out = StringIO()
    call_command("event_store", "retention", stdout=out)
    assert "retention is off" in out.getvalue()
    assert len(stored_days()) == 3
    with pytest.raises(CommandError, match="at least 1"):
        call_command("event_store", "retention", "--days", "0")


def test_the_upkeep_applies_the_retention_setting(settings):
    from command_side import actors

    settings.TIDELOG_EVENT_RETENTION_DAYS = 1
    settings.TIDELOG_EVENT_COMPRESS_AFTER_DAYS = 0  # on TimescaleDB: no job compressing under later tests
    insert_events(events_on(range(0, 3)))
    project()
    actors.apply_storage_policies.fn()
    assert stored_days() == [TODAY - timedelta(days=1), TODAY]


def captured(when: datetime, distinct_id: str = "u") -> EventCaptured:
    return EventCaptured(
        uuid=uuid.uuid4(), event_type="open", distinct_id=distinct_id, timestamp=when, received_at=NOW,
        client_timestamp=when, sent_at=None, skew_ms=None, session_id=None, device_id=None, app_version=None,
        os_name=None, os_version=None, properties_json=b"{}",
    )  # fmt: skip


def test_retention_racing_late_events_of_the_days_it_drops_loses_none_of_them():
    """A drainer storing late events of the very days retention is dropping, at the same time:
    each is either still stored or was applied before its day went, so the read models count
    every one exactly once."""
    import threading

    from django.db import connections

    insert_events(events_on(range(0, 10)))
    project()
    late = 150
    stored: list[int] = []

    def drainer() -> None:
        try:
            for i in range(late):
                when = day(9 - i % 2, hour=i % 24)  # days 9 and 8, which retention drops
                result = event_store.append([BufferEntry(project_id=1, events=[captured(when, distinct_id=f"l{i}")])])
                stored.append(result.stored)
        finally:
            connections.close_all()

    thread = threading.Thread(target=drainer)
    thread.start()
    while thread.is_alive():
        project()
        storage.retention_run(5)
    thread.join()
    project()
    storage.retention_run(5)

    assert sum(stored) == late
    assert total_counted(day(12)) == 30 + late
    assert stored_days() == [TODAY - timedelta(days=n) for n in range(5, -1, -1)]
    assert verify(projection_get("event_aggregates")).differences == []


@pytest.mark.parametrize("action", [[], ["retention", "--days", "3"], ["compress"]])
def test_event_store_on_a_database_without_the_event_store_says_to_migrate(action):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tidelog_events RENAME TO tidelog_events_elsewhere")
        try:
            with pytest.raises(CommandError, match=r"run `manage\.py migrate` first"):
                call_command("event_store", *action)
        finally:
            cursor.execute("ALTER TABLE tidelog_events_elsewhere RENAME TO tidelog_events")
