from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from command_side.skew import corrected_time

RECEIVED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_a_fast_device_clock_is_corrected_back():
    # The phone's clock runs 10 minutes ahead: it says sent at 12:10 when we receive at 12:00.
    result = corrected_time(
        timestamp=datetime(2026, 5, 1, 12, 5, tzinfo=UTC),
        sent_at=datetime(2026, 5, 1, 12, 10, tzinfo=UTC),
        received_at=RECEIVED,
    )
    assert result.timestamp == datetime(2026, 5, 1, 11, 55, tzinfo=UTC)
    assert result.skew_ms == 600_000
    assert not result.is_clamped


def test_a_slow_device_clock_is_corrected_forward():
    result = corrected_time(
        timestamp=datetime(2026, 4, 30, 12, 0, tzinfo=UTC),
        sent_at=datetime(2026, 4, 30, 12, 1, tzinfo=UTC),
        received_at=RECEIVED,
    )
    assert result.timestamp == datetime(2026, 5, 1, 11, 59, tzinfo=UTC)
    assert result.skew_ms == -(24 * 3600 - 60) * 1000


def test_without_sent_at_the_client_timestamp_is_kept():
    ts = datetime(2026, 5, 1, 11, 0, tzinfo=UTC)
    result = corrected_time(timestamp=ts, sent_at=None, received_at=RECEIVED)
    assert result.timestamp == ts
    assert result.skew_ms is None


def test_without_timestamp_the_event_is_filed_when_received():
    result = corrected_time(timestamp=None, sent_at=RECEIVED, received_at=RECEIVED)
    assert result.timestamp == RECEIVED


def test_more_than_23_hours_ahead_is_clamped_to_now():
    result = corrected_time(timestamp=RECEIVED + timedelta(hours=23, seconds=1), sent_at=None, received_at=RECEIVED)
    assert result.timestamp == RECEIVED
    assert result.is_clamped


def test_23_hours_ahead_is_kept():
    ahead = RECEIVED + timedelta(hours=23)
    result = corrected_time(timestamp=ahead, sent_at=None, received_at=RECEIVED)
    assert result.timestamp == ahead
    assert not result.is_clamped


@given(
    offset=st.integers(min_value=-(10**9), max_value=10**9),
    age=st.integers(min_value=0, max_value=10**8),
)
def test_a_retry_with_another_sent_at_files_the_event_at_the_same_time(offset, age):
    # The same event, flushed twice: both flushes use the same (wrong) device clock, so the
    # corrected time does not depend on when the flush happened.
    true_time = RECEIVED - timedelta(milliseconds=age)
    skew = timedelta(milliseconds=offset)
    first = corrected_time(timestamp=true_time + skew, sent_at=RECEIVED + skew, received_at=RECEIVED)
    later = RECEIVED + timedelta(minutes=7)
    second = corrected_time(timestamp=true_time + skew, sent_at=later + skew, received_at=later)
    assert first.timestamp == second.timestamp == true_time
