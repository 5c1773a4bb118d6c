"""Clock-skew correction: a pure function, no I/O.

Phones' clocks are often wrong by minutes or days. The SDK stamps each event with its own clock
(`timestamp`) and the flush with the same clock (`sent_at`); the server knows the true
`received_at`. The device's offset is `sent_at - received_at` (network latency is folded in and
ignored: it is milliseconds against clock errors of minutes), so the true event time is
`timestamp - (sent_at - received_at)`. This is PostHog's and Segment's rule.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.limits import MAX_FUTURE_SECONDS

_MAX_FUTURE = timedelta(seconds=MAX_FUTURE_SECONDS)


@dataclass(frozen=True, slots=True)
class EventTime:
    timestamp: datetime
    """The time the event is filed under."""
    skew_ms: int | None
    """How far the device clock ran ahead of the server's (negative: behind); None if unknown."""
    is_clamped: bool


def corrected_time(*, timestamp: datetime | None, sent_at: datetime | None, received_at: datetime) -> EventTime:
    """The event's time after skew correction, clamped to `received_at` when too far ahead."""
    if timestamp is None:
        # No client time: the best we know is when it reached us.
        return EventTime(received_at, None, False)
    skew_ms: int | None = None
    corrected = timestamp
    if sent_at is not None:
        skew = sent_at - received_at
        skew_ms = int(skew / timedelta(milliseconds=1))
        corrected = timestamp - skew
    if corrected - received_at > _MAX_FUTURE:
        return EventTime(received_at, skew_ms, True)
    return EventTime(corrected, skew_ms, False)
