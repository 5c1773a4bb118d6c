"""An hour's events of one type as columns (schema.EVENT_TIMELINES), one encoding for both sides:
the projection writes it (projections/event_timelines.py), a funnel reads it
(query_side/funnels.py) without a Python object per event.

The bytea holds three little-endian arrays of the same length, one after the other: the users'
numbers (uint32), the events' microseconds into the hour (uint32: an hour is 3.6e9 us, under
2^32) and each event's variant (uint16), its index into the row's app_versions / os_names.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

HOUR_US = 3_600_000_000
MAX_VARIANTS = 1 << 16
"""A chunk's (app_version, os_name) pairs are indexed by uint16 in its bytes: a chunk never holds
more events than this (projections.event_timelines.CHUNK_EVENTS), so never more pairs."""
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""What PostgreSQL's timestamptz_send counts microseconds from: the unit funnels compare times in."""
US = timedelta(microseconds=1)


@dataclass
class Timeline:
    """Events as parallel arrays, and the (app_version, os_name) pairs their codes index (uint32
    in memory; a chunk's are written as uint16)."""

    numbers: npt.NDArray[np.uint32]
    offsets: npt.NDArray[np.uint32]
    codes: npt.NDArray[np.uint32]
    variants: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.numbers)

    def encode(self) -> bytes:
        if len(self.variants) > MAX_VARIANTS:
            raise ValueError(f"{len(self.variants)} (app_version, os_name) pairs in one chunk: at most {MAX_VARIANTS}")
        return (
            self.numbers.astype("<u4", copy=False).tobytes()
            + self.offsets.astype("<u4", copy=False).tobytes()
            + self.codes.astype("<u2", copy=False).tobytes()
        )

    def take(self, where: npt.NDArray[np.bool_] | slice) -> "Timeline":
        """The events `where` selects, with the pairs they still use (renumbered)."""
        used, inverse = np.unique(self.codes[where], return_inverse=True)
        return Timeline(
            self.numbers[where], self.offsets[where], inverse.astype(np.uint32), [self.variants[int(c)] for c in used]
        )


def columns(blob: bytes) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.uint16]]:
    """The three arrays of a chunk's bytes, as read-only views of them (no copy)."""
    if len(blob) % 10:
        raise ValueError(f"a timeline's bytes are 10 an event, not {len(blob)}")
    n = len(blob) // 10
    return (
        np.frombuffer(blob, "<u4", n, 0).astype(np.uint32, copy=False),
        np.frombuffer(blob, "<u4", n, 4 * n).astype(np.uint32, copy=False),
        np.frombuffer(blob, "<u2", n, 8 * n).astype(np.uint16, copy=False),
    )


def decode(blob: bytes | memoryview, app_versions: list[str], os_names: list[str]) -> Timeline:
    numbers, offsets, codes = columns(bytes(blob))
    return Timeline(numbers, offsets, codes.astype(np.uint32), list(zip(app_versions, os_names, strict=True)))


def concat(parts: list[Timeline]) -> Timeline:
    """The events of every part, one after the other, their pairs merged."""
    index: dict[tuple[str, str], int] = {}
    codes = []
    for part in parts:
        remap = np.array([index.setdefault(pair, len(index)) for pair in part.variants] or [0], np.uint32)
        codes.append(remap[part.codes])
    variants = list(index)
    return Timeline(
        np.concatenate([part.numbers for part in parts]).astype(np.uint32),
        np.concatenate([part.offsets for part in parts]).astype(np.uint32),
        np.concatenate(codes).astype(np.uint32),
        variants,
    )


def hour_us(hour: datetime) -> int:
    """The hour's start in microseconds since 2000-01-01 UTC: PostgreSQL's timestamptz_send,
    the unit funnels compare times in."""
    return (hour - EPOCH) // US
