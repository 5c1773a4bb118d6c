"""Turns decoded requests into a `BufferEntry`: per-event validation results, server-side uuid,
skew-corrected time. Pure: no I/O, so every rule here is tested without a server.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from command_side.skew import corrected_time
from contracts import limits
from contracts.captured import BufferEntry, EventCaptured, EventRejected
from contracts.errors import ErrorCode
from contracts.events import EventError, EventIn, as_utc, decode_event

_json = msgspec.json.Encoder()


@dataclass(frozen=True)
class Outcome:
    entry: BufferEntry
    errors: list[EventError] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.entry.events)


def sent_at_in_utc(sent_at: datetime | None) -> datetime | EventError | None:
    """The request's `sent_at` in UTC, or why it cannot be: a year-9999 time west of UTC (or
    year 1 east of it) is out of datetime's range once normalised."""
    if sent_at is None:
        return None
    try:
        return as_utc(sent_at)
    except OverflowError:
        return EventError(ErrorCode.INVALID_TIMESTAMP, "sent_at", "sent_at is out of range once in UTC")


def captured(
    event: EventIn,
    *,
    sent_at: datetime | None,
    received_at: datetime,
    event_uuid: uuid.UUID | None = None,
) -> EventCaptured | EventError:
    """The accepted event, or why its time cannot be filed (`sent_at` is already in UTC)."""
    try:
        timestamp = as_utc(event.timestamp) if event.timestamp is not None else None
    except OverflowError:
        return EventError(ErrorCode.INVALID_TIMESTAMP, "timestamp", "timestamp is out of range once in UTC")
    try:
        when = corrected_time(timestamp=timestamp, sent_at=sent_at, received_at=received_at)
    except OverflowError:
        # A device clock off by millennia moves an edge-of-range time out of range.
        return EventError(
            ErrorCode.INVALID_TIMESTAMP,
            "timestamp",
            "timestamp is out of range once corrected for the device clock (sent_at)",
        )
    if event_uuid is None:
        # An SDK that sends no uuid cannot be deduplicated across its own retries; PostHog's,
        # Amplitude's and our mobile SDKs all send one.
        event_uuid = event.uuid if event.uuid is not None else uuid.uuid4()
    return EventCaptured(
        uuid=event_uuid,
        event_type=event.event_type,
        distinct_id=event.distinct_id,
        timestamp=when.timestamp,
        received_at=received_at,
        client_timestamp=timestamp,
        sent_at=sent_at,
        skew_ms=when.skew_ms,
        session_id=event.session_id,
        device_id=event.device_id,
        app_version=event.app_version,
        os_name=event.os_name,
        os_version=event.os_version,
        properties_json=_json.encode(event.properties),
    )


def storable(text: str) -> str:
    """Text PostgreSQL can store: no NUL, no lone surrogate (an error's field or message must
    never fail the drain's whole batch)."""
    return text.encode("utf-8", errors="replace").decode().replace("\x00", "\\u0000")


def rejected(error: EventError, raw: bytes, *, received_at: datetime) -> EventRejected:
    return EventRejected(
        received_at=received_at,
        code=str(error.code),
        field=None if error.field is None else storable(error.field),
        message=storable(error.message),
        payload=bytes(raw[: limits.MAX_EVENT_BYTES]),
    )


def _decode_event(raw: bytes) -> EventIn | EventError:
    # Within the depth limit: these are parts of a body decode_batch measured.
    return decode_event(raw, is_depth_checked=True)


def batch_outcome(
    *,
    project_id: int,
    raw_events: Sequence[msgspec.Raw | bytes],
    sent_at: datetime | None,
    received_at: datetime,
    decode: Callable[[bytes], EventIn | EventError] = _decode_event,
) -> Outcome:
    """Decode each event on its own (`decode`: Tidelog's wire event by default, PostHog's from
    command_side/posthog/): a bad one is reported and kept aside, the good ones go on."""
    events: list[EventCaptured] = []
    bad: list[EventRejected] = []
    errors: list[EventError] = []
    for index, raw in enumerate(raw_events):
        raw_bytes = bytes(raw)
        decoded = decode(raw_bytes)
        event = decoded if isinstance(decoded, EventError) else captured(
            decoded, sent_at=sent_at, received_at=received_at
        )  # fmt: skip
        if isinstance(event, EventError):
            error = EventError(event.code, event.field, event.message, index)
            errors.append(error)
            bad.append(rejected(error, raw_bytes, received_at=received_at))
        else:
            events.append(event)
    return Outcome(BufferEntry(project_id=project_id, events=events, rejected=bad), errors)


def single_outcome(
    *,
    project_id: int,
    event: EventIn | EventError,
    raw: bytes,
    sent_at: datetime | None,
    received_at: datetime,
    event_uuid: uuid.UUID | None = None,
) -> Outcome:
    result = event if isinstance(event, EventError) else captured(
        event, sent_at=sent_at, received_at=received_at, event_uuid=event_uuid
    )  # fmt: skip
    if isinstance(result, EventError):
        return Outcome(
            BufferEntry(project_id=project_id, rejected=[rejected(result, raw, received_at=received_at)]),
            [result],
        )
    return Outcome(BufferEntry(project_id=project_id, events=[result]))
