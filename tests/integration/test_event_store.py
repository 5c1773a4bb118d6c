"""The event store on whichever engine this database has: partitions, dedup ledger, pruning."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from command_side import event_store
from contracts.captured import BufferEntry, EventCaptured, EventRejected

pytestmark = pytest.mark.django_db


def captured(when: datetime, event_uuid: uuid.UUID | None = None) -> EventCaptured:
    return EventCaptured(
        uuid=event_uuid or uuid.uuid4(), event_type="e", distinct_id="u", timestamp=when,
        received_at=datetime.now(UTC), client_timestamp=when, sent_at=None, skew_ms=None,
        session_id=None, device_id=None, app_version=None, os_name=None, os_version=None,
        properties_json=b'{"k": [1, {"n": null}]}',
    )  # fmt: skip


def test_properties_are_stored_as_jsonb():
    event = captured(datetime.now(UTC))
    event_store.append([BufferEntry(project_id=1, events=[event])])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT properties -> 'k' -> 1 ->> 'n' IS NULL, properties FROM tidelog_events WHERE uuid = %s",
            [event.uuid],
        )
        is_null, properties = cursor.fetchone()
    assert is_null
    # Django leaves jsonb as text for its JSONField to parse.
    assert json.loads(properties) == {"k": [1, {"n": None}]}


def test_duplicates_inside_one_append_keep_the_first_arrival():
    shared = uuid.uuid4()
    first = captured(datetime.now(UTC) - timedelta(minutes=1), shared)
    second = captured(datetime.now(UTC), shared)
    result = event_store.append([BufferEntry(project_id=1, events=[first, second])])
    assert (result.stored, result.duplicates) == (1, 1)
    with connection.cursor() as cursor:
        cursor.execute('SELECT "timestamp" FROM tidelog_events WHERE uuid = %s', [shared])
        assert cursor.fetchall() == [(first.timestamp,)]


def test_the_same_uuid_in_two_projects_is_two_events():
    shared = uuid.uuid4()
    now = datetime.now(UTC)
    result = event_store.append(
        [
            BufferEntry(project_id=1, events=[captured(now, shared)]),
            BufferEntry(project_id=2, events=[captured(now, shared)]),
        ]
    )
    assert result.stored == 2


def test_rejected_events_are_kept_with_their_error():
    bad = EventRejected(
        received_at=datetime.now(UTC),
        code="missing_field",
        field="distinct_id",
        message="m",
        payload=b'{"event_type": "x"}',
    )
    result = event_store.append([BufferEntry(project_id=9, rejected=[bad])])
    assert result.rejected == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT error_code, field, payload FROM tidelog_bad_events WHERE project_id = 9")
        assert cursor.fetchall() == [("missing_field", "distinct_id", '{"event_type": "x"}')]


def test_events_of_an_old_day_get_their_own_partition_and_ancient_ones_the_default():
    if event_store.engine() != "postgres":
        pytest.skip("daily partitions are the plain-PostgreSQL engine's; TimescaleDB makes chunks")
    old = datetime.now(UTC) - timedelta(days=30)
    ancient = datetime(1970, 1, 2, tzinfo=UTC)
    event_store.append([BufferEntry(project_id=1, events=[captured(old), captured(ancient)])])
    with connection.cursor() as cursor:
        cursor.execute('SELECT tableoid::regclass::text FROM tidelog_events ORDER BY "timestamp"')
        partitions = [row[0] for row in cursor.fetchall()]
    assert partitions == ["tidelog_events_default", f"tidelog_events_p{old:%Y%m%d}"]


def test_the_dedup_ledger_forgets_ids_older_than_the_window(settings):
    settings.TIDELOG_DEDUP_WINDOW_DAYS = 7
    old, fresh = uuid.uuid4(), uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tidelog_event_ids (project_id, uuid, first_seen_at) VALUES (1, %s, now() - interval '8 days'), (1, %s, now() - interval '6 days')",
            [old, fresh],
        )
    assert event_store.event_ids_prune() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT uuid FROM tidelog_event_ids")
        assert cursor.fetchall() == [(fresh,)]


@pytest.mark.timescale
def test_on_timescaledb_the_events_table_is_a_hypertable_of_daily_chunks():
    if event_store.engine() != "timescaledb":
        pytest.skip("TimescaleDB is not preloaded in this PostgreSQL: the plain-PostgreSQL engine is in use")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'tidelog_events'"
        )
        assert cursor.fetchone()[0] == timedelta(days=1)
