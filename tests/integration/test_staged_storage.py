"""Read models' sets and timelines are stored as their tables declare them, STORAGE EXTERNAL:
never compressed, though they pass through a staging table (projections/upsert.py) on the way."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from contracts import schema
from tests.projection_helpers import insert_events, project

pytestmark = pytest.mark.django_db(transaction=True)
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


def test_a_compressible_timeline_chunk_is_stored_uncompressed_as_its_column_declares():
    # One user's 1,500 events a second apart: a chunk of 15 KB that pglz would shrink to little.
    insert_events(
        [{"timestamp": HOUR + timedelta(seconds=n), "event_type": "tick", "distinct_id": "u"} for n in range(1500)]
    )
    project(["event_timelines"])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT octet_length(events), pg_column_compression(events) FROM {schema.EVENT_TIMELINES}")
        [(size, compression)] = cursor.fetchall()
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'events'",
            [schema.EVENT_TIMELINES.name],
        )
        [(storage,)] = cursor.fetchall()
    assert size == 15_000 and storage == "e"
    assert compression is None
