"""What the Redis buffer carries from the command API to the event store: one `BufferEntry` per
accepted request, holding its `EventCaptured` facts and its `EventRejected` ones.

Entries outlive deploys (a buffer may hold a backlog across an upgrade), so every entry carries
its schema version and older versions are upcast on read. Bump `BUFFER_VERSION` on any change
to these structs and add an upcaster from the previous version.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import msgspec

BUFFER_VERSION: Final = 1


class EventCaptured(msgspec.Struct, frozen=True, array_like=True):
    """An accepted event, normalised: server-side uuid and skew-corrected time."""

    uuid: UUID
    event_type: str
    distinct_id: str
    timestamp: datetime
    """Skew-corrected, clamped: the time the event is filed under."""
    received_at: datetime
    client_timestamp: datetime | None
    sent_at: datetime | None
    skew_ms: int | None
    """sent_at - received_at, in milliseconds: how far the device clock ran ahead."""
    session_id: str | None
    device_id: str | None
    app_version: str | None
    os_name: str | None
    os_version: str | None
    properties_json: bytes
    """The properties object, already JSON-encoded (the event store stores it as jsonb)."""


class EventRejected(msgspec.Struct, frozen=True, array_like=True):
    """An event that failed validation, kept with its error rather than dropped."""

    received_at: datetime
    code: str
    field: str | None
    message: str
    payload: bytes
    """The event's raw bytes as received, cut to contracts.limits.MAX_EVENT_BYTES."""


class BufferEntry(msgspec.Struct, frozen=True, kw_only=True):
    v: int = BUFFER_VERSION
    project_id: int
    events: list[EventCaptured] = msgspec.field(default_factory=list)
    rejected: list[EventRejected] = msgspec.field(default_factory=list)


class UnknownBufferVersion(ValueError):
    """An entry written by a newer Tidelog than this one: leave it for a newer drainer."""


# version N -> function turning a decoded version-N entry (plain msgpack data) into version N+1.
UPCASTERS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(BufferEntry)


class _VersionProbe(msgspec.Struct):
    v: int = BUFFER_VERSION


_probe = msgspec.msgpack.Decoder(_VersionProbe)


def encode_entry(entry: BufferEntry) -> bytes:
    return _encoder.encode(entry)


def decode_entry(data: bytes) -> BufferEntry:
    version = _probe.decode(data).v
    if version == BUFFER_VERSION:
        return _decoder.decode(data)
    if version > BUFFER_VERSION:
        raise UnknownBufferVersion(f"buffer entry version {version} > {BUFFER_VERSION}")
    raw: dict[str, Any] = msgspec.msgpack.decode(data)
    while version < BUFFER_VERSION:
        upcast = UPCASTERS.get(version)
        if upcast is None:
            raise UnknownBufferVersion(f"no upcaster from buffer entry version {version}")
        raw = upcast(raw)
        version += 1
        raw["v"] = version
    return msgspec.convert(raw, BufferEntry)
