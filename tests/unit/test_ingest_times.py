"""Times at the ends of datetime's range, in the pure ingest rules: an error naming the field,
never an OverflowError (issue 6, item 2)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from command_side.ingest import captured, sent_at_in_utc
from contracts.captured import EventCaptured
from contracts.errors import ErrorCode
from contracts.events import EventError, EventIn

NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)
EAST = timezone(timedelta(hours=1))
WEST = timezone(timedelta(hours=-1))


def event(timestamp: datetime | None) -> EventIn:
    return EventIn(event_type="e", distinct_id="u", timestamp=timestamp)


@pytest.mark.parametrize("sent_at", [datetime(1, 1, 1, tzinfo=EAST), datetime(9999, 12, 31, 23, 59, tzinfo=WEST)])
def test_a_sent_at_out_of_range_in_utc_is_an_error_naming_it(sent_at):
    assert sent_at_in_utc(sent_at) == EventError(
        ErrorCode.INVALID_TIMESTAMP, "sent_at", "sent_at is out of range once in UTC"
    )


def test_a_sent_at_in_range_is_given_in_utc():
    assert sent_at_in_utc(datetime(2026, 11, 25, 11, tzinfo=EAST)) == NOW
    assert sent_at_in_utc(None) is None


@pytest.mark.parametrize(
    ("timestamp", "sent_at"),
    [
        (datetime(1, 1, 1, tzinfo=EAST), None),
        (datetime(9999, 12, 31, 23, tzinfo=WEST), None),
        # In range each, not once corrected by a clock millennia off.
        (datetime(9999, 12, 31, tzinfo=UTC), datetime(1, 1, 2, tzinfo=UTC)),
        (datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)),
    ],
)
def test_a_timestamp_out_of_range_is_an_error_naming_it(timestamp, sent_at):
    result = captured(event(timestamp), sent_at=sent_at, received_at=NOW)
    assert isinstance(result, EventError)
    assert (result.code, result.field) == (ErrorCode.INVALID_TIMESTAMP, "timestamp")


@pytest.mark.parametrize("timestamp", [datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 1, 5, tzinfo=EAST)])
def test_the_first_instant_in_utc_is_kept(timestamp):
    result = captured(event(timestamp), sent_at=None, received_at=NOW)
    assert isinstance(result, EventCaptured)
    assert result.timestamp == timestamp
    assert result.timestamp.tzinfo is UTC
