"""An entry PostgreSQL refuses (here: a NUL byte slipped past validation) is dead-lettered on its
own; the rest of its batch is stored, and ingestion does not stall."""

import uuid
from datetime import UTC, datetime

import pytest

from command_side import buffer
from command_side.drain import drain
from contracts.captured import BufferEntry, EventCaptured, encode_entry
from tests.command_helpers import stored_count

pytestmark = pytest.mark.django_db


def entry(distinct_id: str, project_id: int = 5) -> bytes:
    now = datetime.now(UTC)
    event = EventCaptured(
        uuid=uuid.uuid4(), event_type="e", distinct_id=distinct_id, timestamp=now, received_at=now,
        client_timestamp=None, sent_at=None, skew_ms=None, session_id=None, device_id=None,
        app_version=None, os_name=None, os_version=None, properties_json=b"{}",
    )  # fmt: skip
    return encode_entry(BufferEntry(project_id=project_id, events=[event]))


def test_a_poison_entry_is_dead_lettered_and_its_batch_mates_are_stored(redis_client):
    for distinct_id in ["good-1", "bad\x00", "good-2"]:
        buffer.append(entry(distinct_id))
    stats = drain("poison-test", keep_going=True)
    assert stats.stored == 2
    assert stored_count(5) == 2
    assert buffer.backlog() == 0
    dead = redis_client.xrange(f"{buffer.stream_key()}:dead")
    assert len(dead) == 1
    assert b"0x00" in dead[0][1][b"why"] or b"NUL" in dead[0][1][b"why"].upper()
