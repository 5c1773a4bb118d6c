"""The sessions projection through the real event store and runner: live processing equals
verify's recomputation equals a replay from zero, whatever the delivery order, duplicates and
batch boundaries; erasure leaves sessions verify agrees with."""

import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from command_side import event_store
from contracts import schema
from contracts.captured import BufferEntry, EventCaptured
from projections.registry import projection_get
from projections.replay import replay
from projections.runner import checkpoint_get, raw_cursor, run_batch
from projections.sessions import Sessions
from projections.verify import verify
from tests.projection_helpers import project, table_rows

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


def captured(
    minutes: float,
    event_type: str = "e",
    distinct_id: str = "u",
    session_id: str | None = None,
    device_id: str | None = "phone",
    app_version: str | None = "1.0",
    event_uuid: uuid.UUID | None = None,
) -> EventCaptured:
    when = T0 + timedelta(minutes=minutes)
    return EventCaptured(
        uuid=event_uuid or uuid.uuid4(), event_type=event_type, distinct_id=distinct_id, timestamp=when,
        received_at=when, client_timestamp=when, sent_at=None, skew_ms=None, session_id=session_id,
        device_id=device_id, app_version=app_version, os_name="iOS", os_version="18.1", properties_json=b"{}",
    )  # fmt: skip


def append(events: list[EventCaptured], project_id: int = 1) -> None:
    event_store.append([BufferEntry(project_id=project_id, events=events)])


def mixed_workload() -> list[list[EventCaptured]]:
    """Appends in arrival order: explicit sessions with an end before its start, a duplicate end,
    events after an end and a start never ended; inferred sessions with a gap, a cap, an
    offline queue flushed hours late and a late event bridging two sessions."""
    return [
        [
            captured(0, "$session_start", session_id="s1"),
            captured(2, "$screen", session_id="s1"),
            captured(10, "$session_end", session_id="s1"),
            captured(5, "$session_start", "w", session_id="s2"),
            captured(0, "e", "v"),
            captured(10, "$screen", "v"),
            captured(60, "e", "v"),
        ],
        [
            captured(1, "$session_end", "w", session_id="s2"),
            captured(10, "$session_end", session_id="s1"),
            captured(12, "after_end", session_id="s1"),
            captured(20, "$session_start", "x", session_id="s3"),
            captured(35, "e", "v"),  # bridges 0-10 and 60 into one session
            *[captured(200 + m, "tick", "v", device_id=None) for m in range(0, 26 * 60, 25)],  # capped at 24 h
        ],
        [
            # An offline queue flushed hours late, before and after what came meanwhile.
            *[captured(m, "$screen", "y", app_version="0.9") for m in (30, 35, 90)],
            captured(-5, "e", "v"),
            captured(6, "screen_view", session_id="s1"),
        ],
    ]


def sessions_rows() -> list[tuple]:
    return table_rows(schema.SESSIONS.name)


def test_live_sessions_equal_verify_and_a_replay_from_zero(settings):
    settings.TIDELOG_PROJECTION_BATCH = 4
    for events in mixed_workload():
        append(events)
        project(["sessions"])
    assert verify(projection_get("sessions")).differences == []
    live = sessions_rows()
    by_id = {row[1]: row for row in live}
    assert by_id["s1"][10:] == (6, 2, "$session_start", "after_end", "explicit")
    assert (by_id["s2"][8], by_id["s2"][9], by_id["s2"][14]) == (
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=5),
        "explicit",
    )
    assert by_id["s3"][14] == "inactivity"
    inferred = sorted((row[3], row[4], row[8], row[10], row[14]) for row in live if row[2])
    assert inferred[:4] == [
        ("v", "", T0 + timedelta(minutes=200), 58, "cap"),
        ("v", "", T0 + timedelta(minutes=200 + 58 * 25), 5, "inactivity"),
        ("v", "phone", T0 + timedelta(minutes=-5), 5, "inactivity"),
        ("y", "phone", T0 + timedelta(minutes=30), 2, "inactivity"),
    ]
    assert replay(projection_get("sessions")) == checkpoint_get("sessions").events_applied
    assert sessions_rows() == live
    assert verify(projection_get("sessions")).differences == []


def test_a_rewalk_reads_no_event_past_its_batch(settings):
    append([captured(0, "e", "v"), captured(60, "e", "v")])
    project(["sessions"])
    # One append, two events: the bridge at 30 makes a rewalk; the event at 45 is committed
    # but in the next batch, so the rewalk must not count it (the next batch would again).
    append([captured(30, "bridge", "v"), captured(45, "e", "v")])
    assert run_batch(projection_get("sessions"), limit=1) == 1
    assert verify(projection_get("sessions")).differences == []
    [session] = sessions_rows()
    assert session[10] == 3
    project(["sessions"])
    assert [row[10] for row in sessions_rows()] == [4]
    assert verify(projection_get("sessions")).differences == []


def test_verify_reports_a_session_that_drifted():
    append(mixed_workload()[0])
    project(["sessions"])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rm_sessions SET event_count = event_count + 1 WHERE session_id = 's1'")
    sides = sorted(d.side for d in verify(projection_get("sessions")).differences)
    assert sides == ["missing", "unexpected"]


def test_a_session_growing_batch_by_batch_leaves_one_histogram_bin_per_grain_and_no_empty_one():
    for minutes in (0, 0.001, 0.5, 3, 40, 50):
        append([captured(minutes, "e", session_id="long")])
        project(["sessions"])
    rows = table_rows(schema.SESSION_DURATIONS.name)
    # 50 minutes: bin 1 + ceil(ln(3000 / 1e-6) / ln(1.01 / 0.99)) = 1093; it moved up a bin with
    # each batch, and each bin it left is gone.
    assert [(row[1], row[5], row[6], row[7], row[8]) for row in rows] == [
        ("day", 1, 6, [1093], [1]), ("hour", 1, 6, [1093], [1]),
    ]  # fmt: skip
    assert verify(projection_get("sessions")).differences == []
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rm_session_durations SET counts = '{2}' WHERE grain = 'day'")
    sides = sorted(d.side for d in verify(projection_get("sessions")).differences)
    assert sides == ["missing", "unexpected"]


def test_erasing_a_person_recomputes_the_explicit_sessions_they_shared_and_drops_their_own():
    append([
        captured(0, "$session_start", "u", session_id="shared"), captured(3, "e", "w", session_id="shared"),
        captured(9, "$session_end", "w", session_id="shared"), captured(1, "e", "u", session_id="only-u"),
        captured(2, "e", "u"), captured(4, "e", "w"),
    ])  # fmt: skip
    project(["sessions"])
    checkpoint = checkpoint_get("sessions")
    projection = Sessions()
    with transaction.atomic(), raw_cursor() as cursor:
        projection.erase(cursor, {t: t for t in projection.tables}, 1, ["u"], (checkpoint.xact_id, checkpoint.position))
        cursor.execute("DELETE FROM tidelog_events WHERE project_id = 1 AND distinct_id = 'u'")
    assert verify(projection_get("sessions")).differences == []
    rows = {row[1]: row for row in sessions_rows()}
    assert set(rows) == {"shared", next(i for i in rows if i.startswith("inferred-"))}
    assert rows["shared"][3] == "w" and rows["shared"][8] == T0 + timedelta(minutes=3)
    assert rows["shared"][10] == 2
    append([captured(5, "e", "w")])
    project(["sessions"])
    assert verify(projection_get("sessions")).differences == []


def _reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {schema.EVENTS}, {schema.EVENT_IDS}, {schema.SESSIONS}, {schema.SESSION_DURATIONS}")
        cursor.execute(f"DELETE FROM {schema.CHECKPOINTS} WHERE name = 'sessions'")


FIXED = [event for batch in mixed_workload() for event in batch][:60]


@settings(
    max_examples=15, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(data=st.data())
def test_the_same_events_in_any_delivery_order_and_duplicated_give_the_same_sessions(data, django_settings):
    _reset()
    django_settings.TIDELOG_PROJECTION_BATCH = 5
    append(FIXED)
    project(["sessions"])
    expected = sessions_rows()
    _reset()
    order = data.draw(st.permutations(FIXED))
    again = data.draw(st.lists(st.sampled_from(FIXED), max_size=10))  # re-delivered: same uuids
    deliveries = order + again
    cuts = sorted(data.draw(st.lists(st.integers(1, len(deliveries) - 1), max_size=6)))
    bounds = [0, *cuts, len(deliveries)]
    for start, end in pairwise(bounds):
        if start < end:
            append(deliveries[start:end])
            project(["sessions"])
    assert sessions_rows() == expected
    assert verify(projection_get("sessions")).differences == []


@pytest.fixture
def django_settings(settings):
    return settings
