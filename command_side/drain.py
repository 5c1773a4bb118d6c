"""Moves entries from the Redis buffer into the event store: read a batch, append it in one
transaction, acknowledge it after commit. Crash anywhere and the batch is re-delivered; the
event store's dedup ledger makes the re-delivery harmless.
"""

import logging
import os
import socket
import time
from dataclasses import dataclass

import msgspec
from django.conf import settings

from command_side import buffer, event_store
from command_side.faults import fault_point
from contracts.captured import BufferEntry, UnknownBufferVersion, decode_entry

log = logging.getLogger(__name__)


@dataclass
class DrainStats:
    entries: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0


def consumer_name(slot: int | str) -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{slot}"


# Requests carry 1 to 1,000 events, so a fixed entry count per read gives transactions of wildly
# different sizes. Aim each transaction at TIDELOG_DRAIN_EVENTS events from the recent mean.
_events_per_entry = 20.0


def entries_to_read() -> int:
    return max(10, min(2_000, int(settings.TIDELOG_DRAIN_EVENTS / _events_per_entry)))


def drain_batch(consumer: str, *, count: int | None = None, reclaim_idle_ms: int | None = None) -> DrainStats:
    """One read-append-ack cycle. Returns what it did; `entries == 0` means the buffer is empty."""
    global _events_per_entry
    entries = buffer.read(consumer, count or entries_to_read(), reclaim_idle_ms=reclaim_idle_ms)
    stats = DrainStats()
    if not entries:
        return stats
    decoded: list[BufferEntry] = []
    done: list[bytes] = []
    for entry in entries:
        try:
            decoded.append(decode_entry(entry.data))
            done.append(entry.entry_id)
        except UnknownBufferVersion:
            # Written by a newer Tidelog mid-deploy: leave it pending; a newer drainer reclaims it.
            log.warning("entry %s has a newer schema version; left for a newer drainer", entry.entry_id)
        except (msgspec.DecodeError, ValueError, TypeError):
            # Not ours or corrupt: keep it aside, never silently drop it.
            log.error("entry %s cannot be decoded; moved to the dead-letter stream", entry.entry_id)
            buffer.client().xadd(f"{buffer.stream_key()}:dead", {"e": entry.data, "id": entry.entry_id})
            done.append(entry.entry_id)
    if decoded:
        mean = sum(len(e.events) + len(e.rejected) for e in decoded) / len(decoded)
        _events_per_entry = 0.7 * _events_per_entry + 0.3 * max(mean, 1.0)
    result = event_store.append(decoded)
    fault_point("after_commit")
    # Acknowledged only now: the transaction above has committed.
    buffer.ack(done)
    stats.entries = len(entries)
    stats.stored = result.stored
    stats.duplicates = result.duplicates
    stats.rejected = result.rejected
    stats.batches = 1
    return stats


def drain(
    consumer: str, *, budget_seconds: float = 5.0, reclaim_idle_ms: int | None = None, keep_going: bool = False
) -> DrainStats:
    """Drain until the buffer runs low (empty, with `keep_going`) or the time budget is spent."""
    total = DrainStats()
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        wanted = entries_to_read()
        stats = drain_batch(consumer, count=wanted, reclaim_idle_ms=reclaim_idle_ms)
        if stats.entries == 0:
            break
        total.entries += stats.entries
        total.stored += stats.stored
        total.duplicates += stats.duplicates
        total.rejected += stats.rejected
        total.batches += 1
        if stats.entries < wanted and not keep_going:
            # The buffer is nearly empty: stop and free the slot. The scheduler sends the next
            # drain on its next tick, by when a trickle has gathered into a worthwhile batch.
            break
    if total.entries:
        log.info(
            "drained %d entries: %d events stored, %d duplicates skipped, %d rejected kept",
            total.entries, total.stored, total.duplicates, total.rejected,
        )  # fmt: skip
    return total
