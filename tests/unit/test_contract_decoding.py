from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import limits
from contracts.captured import (
    BUFFER_VERSION,
    BufferEntry,
    EventCaptured,
    EventRejected,
    UnknownBufferVersion,
    decode_entry,
    encode_entry,
)
from contracts.errors import ErrorCode
from contracts.events import EventError, EventIn, decode_batch, decode_capture, decode_event


def event(**fields):
    return msgspec.json.encode({"event_type": "app_opened", "distinct_id": "user-1", **fields})


def test_a_valid_event_decodes_with_every_field():
    decoded = decode_event(
        event(
            timestamp="2026-05-01T12:00:00Z",
            uuid="0190a8f0-0000-7000-8000-000000000001",
            session_id="s1",
            device_id="d1",
            app_version="1.2.3",
            os_name="iOS",
            os_version="18.1",
            properties={"plan": "pro", "items": [1, 2]},
        )
    )
    assert isinstance(decoded, EventIn)
    assert decoded.properties == {"plan": "pro", "items": [1, 2]}
    assert str(decoded.uuid) == "0190a8f0-0000-7000-8000-000000000001"


def test_unknown_fields_from_newer_sdks_are_ignored():
    assert isinstance(decode_event(event(lib="tidelog-swift", screen_density=3)), EventIn)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b'{"distinct_id": "u"}', ErrorCode.MISSING_FIELD, "event_type"),
        (b'{"event_type": "a"}', ErrorCode.MISSING_FIELD, "distinct_id"),
        (b'{"event_type": 3, "distinct_id": "u"}', ErrorCode.INVALID_TYPE, "event_type"),
        (b'{"event_type": "", "distinct_id": "u"}', ErrorCode.EMPTY_VALUE, "event_type"),
        (event(event_type="x" * 201), ErrorCode.VALUE_TOO_LONG, "event_type"),
        (event(distinct_id="x" * 201), ErrorCode.VALUE_TOO_LONG, "distinct_id"),
        (event(app_version="x" * 101), ErrorCode.VALUE_TOO_LONG, "app_version"),
        (event(timestamp="yesterday"), ErrorCode.INVALID_TIMESTAMP, "timestamp"),
        (event(uuid="not-a-uuid"), ErrorCode.INVALID_UUID, "uuid"),
        (event(properties=[1]), ErrorCode.INVALID_TYPE, "properties"),
        (b"[1, 2]", ErrorCode.INVALID_TYPE, None),
        (b"{nope", ErrorCode.INVALID_JSON, None),
    ],
)
def test_a_bad_event_is_named_by_code_and_field(body, code, field):
    error = decode_event(body)
    assert isinstance(error, EventError)
    assert (error.code, error.field) == (code, field)


def test_properties_nested_past_the_limit_are_rejected():
    deep: object = "leaf"
    for _ in range(limits.MAX_PROPERTY_DEPTH):
        deep = [deep]
    assert isinstance(decode_event(event(properties={"a": deep})), EventError)
    shallow: object = "leaf"
    for _ in range(limits.MAX_PROPERTY_DEPTH - 1):
        shallow = [shallow]
    assert isinstance(decode_event(event(properties={"a": shallow})), EventIn)


def test_an_event_over_the_size_limit_is_rejected():
    error = decode_event(event(properties={"blob": "x" * limits.MAX_EVENT_BYTES}))
    assert isinstance(error, EventError)
    assert error.code is ErrorCode.EVENT_TOO_LARGE


def test_too_many_property_keys_are_rejected():
    error = decode_event(event(properties={f"k{i}": i for i in range(limits.MAX_PROPERTY_KEYS + 1)}))
    assert isinstance(error, EventError)
    assert (error.code, error.field) == (ErrorCode.TOO_MANY_PROPERTIES, "properties")


def test_a_batch_keeps_its_events_raw_for_one_by_one_decoding():
    batch = decode_batch(
        b'{"events": [{"a": 1}, {"event_type": "x", "distinct_id": "u"}], "sent_at": "2026-05-01T00:00:00Z"}'
    )
    assert not isinstance(batch, EventError)
    assert len(batch.events) == 2
    assert isinstance(decode_event(bytes(batch.events[0])), EventError)


def test_a_batch_without_an_events_list_is_named():
    error = decode_batch(b'{"events": {"a": 1}}')
    assert isinstance(error, EventError)
    assert (error.code, error.field) == (ErrorCode.INVALID_TYPE, "events")


def test_capture_takes_the_request_fields_beside_the_event():
    decoded = decode_capture(event(sent_at="2026-05-01T00:00:00Z", api_key="tlp_x"))
    assert not isinstance(decoded, EventError)
    assert decoded.api_key == "tlp_x"


def captured_event(**fields):
    moment = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    return EventCaptured(
        **{
            "uuid": UUID("0190a8f0-0000-7000-8000-000000000001"),
            "event_type": "purchase_completed",
            "distinct_id": "user-1",
            "timestamp": moment,
            "received_at": moment + timedelta(seconds=2),
            "client_timestamp": moment + timedelta(minutes=5),
            "sent_at": moment + timedelta(minutes=5, seconds=1),
            "skew_ms": 299_000,
            "session_id": "s1",
            "device_id": "d1",
            "app_version": "1.2.3",
            "os_name": "iOS",
            "os_version": "18.1",
            "properties_json": b'{"plan":"pro","amount":9.5,"items":["a","\\u00e9"]}',
            **fields,
        }
    )


def test_a_buffer_entry_round_trips_with_every_field_of_its_events_and_rejected_events():
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    entry = BufferEntry(
        project_id=7,
        events=[
            captured_event(),
            # The optional fields absent, as for an event sent without them.
            captured_event(
                uuid=UUID("0190a8f0-0000-7000-8000-000000000002"), client_timestamp=None, sent_at=None,
                skew_ms=None, session_id=None, device_id=None, app_version=None, os_name=None,
                os_version=None, properties_json=b"{}",
            ),
        ],
        rejected=[
            EventRejected(received_at=moment, code="missing_field", field="distinct_id",
                          message="distinct_id is required", payload=b'{"event_type": "x"}'),
            EventRejected(received_at=moment, code="invalid_json", field=None, message="not JSON",
                          payload=b"\xff\x00{nope"),
        ],
    )  # fmt: skip
    decoded = decode_entry(encode_entry(entry))
    assert decoded == entry
    assert decoded.v == BUFFER_VERSION
    # Equality of aware datetimes ignores the offset: check the times come back in UTC too.
    assert all(e.timestamp.tzinfo == UTC and e.received_at.tzinfo == UTC for e in decoded.events)
    assert [r.payload for r in decoded.rejected] == [r.payload for r in entry.rejected]


optional = st.none() | st.text(min_size=1, max_size=20)
utc_times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
captured_events = st.builds(
    EventCaptured,
    uuid=st.uuids(), event_type=st.text(min_size=1, max_size=20), distinct_id=st.text(min_size=1, max_size=20),
    timestamp=utc_times, received_at=utc_times, client_timestamp=st.none() | utc_times,
    sent_at=st.none() | utc_times, skew_ms=st.none() | st.integers(-(2**40), 2**40), session_id=optional,
    device_id=optional, app_version=optional, os_name=optional, os_version=optional,
    properties_json=st.binary(max_size=50),
)  # fmt: skip
rejected_events = st.builds(
    EventRejected, received_at=utc_times, code=st.text(min_size=1, max_size=20), field=optional,
    message=st.text(max_size=50), payload=st.binary(max_size=50),
)  # fmt: skip


@given(
    st.integers(min_value=1, max_value=2**62),
    st.lists(captured_events, max_size=5),
    st.lists(rejected_events, max_size=5),
)
def test_any_buffer_entry_decodes_to_what_was_encoded(project_id, events, rejected):
    entry = BufferEntry(project_id=project_id, events=events, rejected=rejected)
    assert decode_entry(encode_entry(entry)) == entry


def test_a_buffer_entry_from_a_newer_tidelog_is_refused_not_misread():
    data = msgspec.msgpack.encode({"v": BUFFER_VERSION + 1, "project_id": 1, "events": [], "rejected": []})
    with pytest.raises(UnknownBufferVersion):
        decode_entry(data)


def test_an_old_buffer_entry_is_upcast(monkeypatch):
    from contracts import captured

    def from_v0(raw):
        return {"project_id": raw["project"], "events": [], "rejected": []}

    monkeypatch.setattr(captured, "UPCASTERS", {0: from_v0})
    assert decode_entry(msgspec.msgpack.encode({"v": 0, "project": 5})).project_id == 5


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values) | json_values)
def test_decoding_never_raises_whatever_the_input(value):
    result = decode_event(msgspec.json.encode(value))
    assert isinstance(result, EventIn | EventError)
    if isinstance(result, EventError):
        assert result.code in set(ErrorCode)


@given(st.binary(max_size=200))
def test_decoding_arbitrary_bytes_never_raises(body):
    assert isinstance(decode_event(body), EventIn | EventError)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"distinct_id": "a\u0000b"}, "distinct_id"),
        ({"event_type": "\u0000"}, "event_type"),
        ({"properties": {"k": ["ok", {"deep": "x\u0000"}]}}, "properties"),
        ({"properties": {"ke\u0000y": 1}}, "properties"),
    ],
)
def test_a_nul_character_postgresql_cannot_store_is_refused_with_its_field(fields, field):
    error = decode_event(event(**fields))
    assert isinstance(error, EventError)
    assert (error.code, error.field) == (ErrorCode.INVALID_VALUE, field)
