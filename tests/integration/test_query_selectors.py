"""query_side.selectors against real PostgreSQL: what each read returns, its time boundaries, its
ordering and pagination, and that it never returns another project's rows."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contracts.follow import ANNOUNCE_APPENDER
from query_side import selectors
from query_side.selectors import EventFilter
from tests.projection_helpers import insert_events, write_as_projected

pytestmark = pytest.mark.django_db
# A Monday (2026-03-02), far enough back that nothing else a test writes lands near it.
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def at(day: int = 0, hour: int = 0, minute: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def add_hour(project_id, event_type, bucket, users, app_version="", os_name="", per_user=1):
    """One hour bucket of the event aggregates (and the users' active day), as the projections
    write it: `per_user` events of each user."""
    write_as_projected(
        [
            {"project_id": project_id, "event_type": event_type, "distinct_id": user, "timestamp": bucket,
             "app_version": app_version or None, "os_name": os_name or None}
            for user in users for _ in range(per_user)
        ]
    )  # fmt: skip


def add_user_days(project_id, day: date, users):
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    write_as_projected([{"project_id": project_id, "distinct_id": user, "timestamp": moment} for user in users])


def add_bad_events(project_id, received_at, count):
    with connection.cursor() as cursor:
        for i in range(count):
            cursor.execute(
                "INSERT INTO tidelog_bad_events (project_id, received_at, error_code, field, message, payload)"
                " VALUES (%s, %s, 'invalid_type', 'timestamp', 'not a time', %s)",
                [project_id, received_at, f'{{"n": {i}}}'],
            )


def walk(fetch, limit, cursor_of):
    """Every row of a keyset-paginated selector, page by page, as the view would fetch them."""
    seen, cursor = [], None
    while True:
        rows = fetch(limit=limit, cursor=cursor)
        seen += rows[:limit]
        if len(rows) <= limit:
            return seen
        cursor = cursor_of(rows[limit - 1])


# --- event_list ----------------------------------------------------------------------------


def test_event_list_returns_every_field_with_properties_as_json(project):
    event_uuid = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(ANNOUNCE_APPENDER)
        # Engine-neutral: the plain-PostgreSQL engine's partition function; TimescaleDB makes
        # its chunks by itself and has no such function.
        cursor.execute("SELECT to_regprocedure('tidelog_ensure_event_partition(date)') IS NOT NULL")
        if cursor.fetchone()[0]:
            cursor.execute("SELECT tidelog_ensure_event_partition(%s)", [MONDAY.date()])
        cursor.execute(
            'INSERT INTO tidelog_events (project_id, uuid, event_type, distinct_id, "timestamp", received_at,'
            " client_timestamp, sent_at, skew_ms, session_id, device_id, app_version, os_name, os_version, properties)"
            " VALUES (%s, %s, 'purchase', 'u1', %s, %s, %s, %s, -2000, 's1', 'd1', '2.1', 'iOS', '18.2',"
            """ '{"amount": 9.5, "items": ["a"]}')""",
            [
                project.project_id,
                event_uuid,
                at(hour=10),
                at(hour=10, minute=1),
                at(hour=10, minute=2),
                at(hour=10, minute=3),
            ],
        )
    [row] = selectors.event_list(project_id=project.project_id, filters=EventFilter(), limit=10)
    assert row == {
        "uuid": event_uuid, "event_type": "purchase", "distinct_id": "u1", "timestamp": at(hour=10),
        "received_at": at(hour=10, minute=1), "client_timestamp": at(hour=10, minute=2),
        "sent_at": at(hour=10, minute=3), "skew_ms": -2000, "session_id": "s1", "device_id": "d1",
        "app_version": "2.1", "os_name": "iOS", "os_version": "18.2",
        "properties": {"amount": 9.5, "items": ["a"]},
    }  # fmt: skip


def test_event_list_is_newest_first_and_filters_by_type_user_session_and_range(project):
    pid = project.project_id
    insert_events(
        [
            {"project_id": pid, "timestamp": at(hour=1), "event_type": "open", "distinct_id": "u1", "session_id": "s1"},
            {"project_id": pid, "timestamp": at(hour=2), "event_type": "buy", "distinct_id": "u1", "session_id": "s1"},
            {"project_id": pid, "timestamp": at(hour=3), "event_type": "open", "distinct_id": "u2", "session_id": "s2"},
            {"project_id": pid, "timestamp": at(day=1), "event_type": "open", "distinct_id": "u1", "session_id": "s3"},
        ]
    )

    def hours(**filters):
        rows = selectors.event_list(project_id=pid, filters=EventFilter(**filters), limit=100)
        return [(row["timestamp"] - MONDAY) / timedelta(hours=1) for row in rows]

    assert hours() == [24, 3, 2, 1]
    assert hours(event_type="open") == [24, 3, 1]
    assert hours(distinct_id="u1") == [24, 2, 1]
    assert hours(session_id="s1") == [2, 1]
    assert hours(event_type="open", distinct_id="u1", session_id="s1") == [1]
    # after is inclusive, before exclusive.
    assert hours(after=at(hour=2), before=at(hour=3)) == [2]
    assert hours(after=at(hour=2)) == [24, 3, 2]
    assert hours(before=at(hour=2)) == [1]
    assert hours(event_type="nothing") == []


def test_event_list_pages_walk_every_event_once_even_when_timestamps_are_equal(project):
    pid = project.project_id
    # Seven events share one timestamp (one SDK batch), in two day partitions around them.
    rows = [{"project_id": pid, "timestamp": at(hour=12)} for _ in range(7)]
    rows += [{"project_id": pid, "timestamp": at(hour=11)}, {"project_id": pid, "timestamp": at(day=1, hour=1)}]
    rows += [{"project_id": pid, "timestamp": at(day=-1, hour=23)}]
    insert_events(rows)

    def fetch(limit, cursor):
        return selectors.event_list(project_id=pid, filters=EventFilter(), limit=limit, cursor=cursor)

    for limit in (1, 2, 3, 7, 10, 11):
        seen = walk(fetch, limit, lambda row: (row["timestamp"], row["uuid"]))
        assert len(seen) == 10 and len({row["uuid"] for row in seen}) == 10, limit
        keys = [(row["timestamp"], row["uuid"]) for row in seen]
        assert keys == sorted(keys, reverse=True), limit


def test_event_list_after_a_cursor_skips_the_later_day_partitions(project):
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regprocedure('tidelog_ensure_event_partition(date)') IS NOT NULL")
        if not cursor.fetchone()[0]:
            pytest.skip("TimescaleDB: chunks are excluded by its own planner hooks, not by partition pruning")
    pid = project.project_id
    insert_events([{"project_id": pid, "timestamp": at(day=day)} for day in range(3)])
    with CaptureQueriesContext(connection) as queries:
        selectors.event_list(project_id=pid, filters=EventFilter(), limit=10, cursor=(at(day=1), uuid.uuid4()))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + queries[-1]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "tidelog_events_p20260303" in plan
    assert "tidelog_events_p20260304" not in plan, plan


def test_event_list_reads_limit_plus_one_so_the_caller_knows_a_next_page_exists(project):
    insert_events([{"project_id": project.project_id, "timestamp": at(minute=i)} for i in range(3)])
    assert len(selectors.event_list(project_id=project.project_id, filters=EventFilter(), limit=2)) == 3
    assert len(selectors.event_list(project_id=project.project_id, filters=EventFilter(), limit=3)) == 3


# --- event_count_by_type -------------------------------------------------------------------


def test_event_count_by_type_sums_every_version_and_os_most_frequent_first(project):
    pid = project.project_id
    add_hour(pid, "open", at(hour=10), ["u1", "u2"], app_version="1.0", os_name="iOS")
    add_hour(pid, "open", at(hour=10), ["u1"], app_version="2.0", os_name="Android")
    add_hour(pid, "open", at(hour=11), ["u3"])
    add_hour(pid, "buy", at(hour=10), ["u1"], per_user=3)
    add_hour(pid, "close", at(hour=10), ["u1"], per_user=4)
    assert selectors.event_count_by_type(project_id=pid, after=at(), before=at(day=1)) == [
        {"event_type": "close", "count": 4},
        {"event_type": "open", "count": 4},
        {"event_type": "buy", "count": 3},
    ]


def test_event_count_by_type_is_hour_granular(project):
    pid = project.project_id
    for hour, count in ((10, 1), (11, 2), (12, 4)):
        add_hour(pid, "open", at(hour=hour), ["u1"], per_user=count)

    def total(after, before):
        rows = selectors.event_count_by_type(project_id=pid, after=after, before=before)
        return sum(row["count"] for row in rows)

    assert total(at(hour=10), at(hour=13)) == 7
    # The hour of `after` counts whole; an hour starting at or after `before` does not count.
    assert total(at(hour=10, minute=30), at(hour=12)) == 3
    assert total(at(hour=11), at(hour=12, minute=1)) == 6
    assert total(at(hour=12, minute=59), at(hour=14)) == 4
    assert total(at(hour=13), at(hour=14)) == 0


# --- event_aggregate_list ------------------------------------------------------------------


def test_event_aggregate_list_counts_exact_unique_users_per_hour_and_per_day(project):
    pid = project.project_id
    add_hour(pid, "open", at(hour=10), ["u1", "u2"], per_user=2)
    add_hour(pid, "open", at(hour=11), ["u1", "u3"])
    add_hour(pid, "buy", at(hour=11), ["u1"])

    hourly = selectors.event_aggregate_list(project_id=pid, interval="hour", after=at(), before=at(day=1))
    assert [(r["bucket"], r["event_type"], r["count"], r["unique_users"]) for r in hourly] == [
        (at(hour=10), "open", 4, 2),
        (at(hour=11), "buy", 1, 1),
        (at(hour=11), "open", 2, 2),
    ]
    daily = selectors.event_aggregate_list(project_id=pid, interval="day", after=at(), before=at(day=1))
    # u1 is in both hours: three users over the day, not four.
    assert [(r["bucket"], r["event_type"], r["count"], r["unique_users"]) for r in daily] == [
        (at(), "buy", 1, 1),
        (at(), "open", 6, 3),
    ]


def test_event_aggregate_list_buckets_days_in_utc(project):
    pid = project.project_id
    add_hour(pid, "open", at(hour=23), ["u1"])
    add_hour(pid, "open", at(day=1), ["u1"])
    daily = selectors.event_aggregate_list(project_id=pid, interval="day", after=at(), before=at(day=2))
    assert [(r["bucket"], r["unique_users"]) for r in daily] == [(at(), 1), (at(day=1), 1)]
    assert all(r["bucket"].utcoffset() == timedelta(0) for r in daily)


def test_event_aggregate_list_breaks_down_by_app_version_or_os_with_unknown_as_none(project):
    pid = project.project_id
    add_hour(pid, "open", at(hour=10), ["u1", "u2"], app_version="1.0", os_name="iOS")
    add_hour(pid, "open", at(hour=10), ["u2"], app_version="2.0", os_name="iOS")
    add_hour(pid, "open", at(hour=11), ["u3"], app_version="", os_name="Android")

    def by(breakdown):
        rows = selectors.event_aggregate_list(
            project_id=pid, interval="day", after=at(), before=at(day=1), breakdown=breakdown
        )
        return {(r[breakdown], r["count"], r["unique_users"]) for r in rows}

    assert by("app_version") == {("1.0", 2, 2), ("2.0", 1, 1), (None, 1, 1)}
    assert by("os_name") == {("iOS", 3, 2), ("Android", 1, 1)}


def test_event_aggregate_list_filters_by_event_type_and_range(project):
    pid = project.project_id
    add_hour(pid, "open", at(hour=10), ["u1"])
    add_hour(pid, "buy", at(hour=10), ["u1"])
    add_hour(pid, "open", at(hour=12), ["u2"])
    rows = selectors.event_aggregate_list(
        project_id=pid, interval="hour", after=at(hour=10, minute=30), before=at(hour=12), event_type="open"
    )
    assert [(r["bucket"], r["event_type"], r["count"]) for r in rows] == [(at(hour=10), "open", 1)]


@pytest.mark.parametrize(("interval", "breakdown"), [("week", None), ("day", "distinct_id"), ("day", "1; DROP")])
def test_event_aggregate_list_refuses_an_unknown_interval_or_breakdown(project, interval, breakdown):
    with pytest.raises(ValueError):
        selectors.event_aggregate_list(
            project_id=project.project_id, interval=interval, after=at(), before=at(day=1), breakdown=breakdown
        )


# --- active_user_list ----------------------------------------------------------------------


def test_active_user_list_counts_distinct_users_per_day_week_and_month(project):
    pid = project.project_id
    # Sunday 1 March, Monday 2 and Tuesday 3 March, then Monday 9 March.
    add_user_days(pid, date(2026, 3, 1), ["u1", "u2"])
    add_user_days(pid, date(2026, 3, 2), ["u1", "u3"])
    add_user_days(pid, date(2026, 3, 3), ["u1"])
    add_user_days(pid, date(2026, 3, 9), ["u4"])
    after, before = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)

    def active(interval):
        rows = selectors.active_user_list(project_id=pid, interval=interval, after=after, before=before)
        return [(r["bucket"], r["active_users"]) for r in rows]

    assert active("day") == [
        (datetime(2026, 3, 1, tzinfo=UTC), 2),
        (datetime(2026, 3, 2, tzinfo=UTC), 2),
        (datetime(2026, 3, 3, tzinfo=UTC), 1),
        (datetime(2026, 3, 9, tzinfo=UTC), 1),
    ]
    # ISO weeks start on Monday: Sunday 1 March belongs to the week of 23 February.
    assert active("week") == [
        (datetime(2026, 2, 23, tzinfo=UTC), 2),
        (datetime(2026, 3, 2, tzinfo=UTC), 2),
        (datetime(2026, 3, 9, tzinfo=UTC), 1),
    ]
    assert active("month") == [(datetime(2026, 3, 1, tzinfo=UTC), 4)]


def test_active_user_list_range_is_day_granular(project):
    pid = project.project_id
    add_user_days(pid, date(2026, 3, 2), ["u1"])
    add_user_days(pid, date(2026, 3, 3), ["u2"])
    add_user_days(pid, date(2026, 3, 4), ["u3"])

    def days(after, before):
        rows = selectors.active_user_list(project_id=pid, interval="day", after=after, before=before)
        return [r["bucket"].day for r in rows]

    # The day of `after` counts; a day starting at or after `before` does not.
    assert days(at(hour=18), at(day=2)) == [2, 3]
    assert days(at(day=1), at(day=2, minute=1)) == [3, 4]


# --- bad_event_list ------------------------------------------------------------------------


def test_bad_event_list_is_newest_first_with_the_error_and_walks_equal_times_once(project):
    pid = project.project_id
    add_bad_events(pid, at(hour=1), 1)
    add_bad_events(pid, at(hour=2), 5)  # one rejected batch: five rows, one received_at
    add_bad_events(pid, at(hour=3), 1)

    def fetch(limit, cursor):
        return selectors.bad_event_list(project_id=pid, limit=limit, cursor=cursor)

    everything = fetch(limit=100, cursor=None)
    assert [row["received_at"].hour for row in everything] == [3, 2, 2, 2, 2, 2, 1]
    assert {k: everything[0][k] for k in ("error_code", "field", "message", "payload")} == {
        "error_code": "invalid_type", "field": "timestamp", "message": "not a time", "payload": '{"n": 0}',
    }  # fmt: skip
    for limit in (1, 2, 3, 6, 7):
        seen = walk(fetch, limit, lambda row: (row["received_at"], row["id"]))
        assert [row["id"] for row in seen] == [row["id"] for row in everything], limit


# --- tenant isolation ----------------------------------------------------------------------


def test_no_selector_returns_another_projects_rows(project, other_project):
    other = other_project.project_id
    insert_events([{"project_id": other, "timestamp": at(hour=10), "event_type": "open", "distinct_id": "u1"}])
    add_hour(other, "open", at(hour=10), ["u1"], app_version="1.0", os_name="iOS")
    add_user_days(other, at().date(), ["u1", "u2", "u3"])
    add_bad_events(other, at(hour=10), 1)
    # The same user and event type in `project` too, an hour later: only these may come back.
    add_hour(project.project_id, "open", at(hour=11), ["u1"])

    mine, window = project.project_id, {"after": at(), "before": at(day=1)}
    assert selectors.event_list(project_id=mine, filters=EventFilter(), limit=100) == []
    assert selectors.event_count_by_type(project_id=mine, **window) == [{"event_type": "open", "count": 1}]
    for breakdown in (None, "app_version"):
        rows = selectors.event_aggregate_list(project_id=mine, interval="day", breakdown=breakdown, **window)
        assert [(r["count"], r["unique_users"]) for r in rows] == [(1, 1)]
    # Only `project`'s own active day (its u1, from add_hour): not the other's three users.
    assert selectors.active_user_list(project_id=mine, interval="day", **window) == [
        {"bucket": at(), "active_users": 1}
    ]
    assert selectors.stickiness_list(project_id=mine, **window) == [{"active_days": 1, "users": 1}]
    assert selectors.bad_event_list(project_id=mine, limit=100) == []
    # ... and the other project's own reads do see them.
    assert len(selectors.event_list(project_id=other, filters=EventFilter(), limit=100)) == 1
    assert len(selectors.bad_event_list(project_id=other, limit=100)) == 1
    assert selectors.active_user_list(project_id=other, interval="day", **window)[0]["active_users"] == 3
