"""Moves entries from the Redis buffer into the event store: read a batch, append it in one
transaction, acknowledge it after commit. Crash anywhere and the batch is re-delivered; the
event store's dedup ledger makes the re-delivery harmless.
"""

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import psycopg
from django.conf import settings
from django.db import DataError, IntegrityError, OperationalError

from command_side import buffer, event_store
from command_side.buffer import Entry
from command_side.event_store import AppendResult
from command_side.faults import fault_point
from contracts.captured import BufferEntry, UnknownBufferVersion, decode_entry
from observability import metrics

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


def dead_letter(entry: Entry, reason: str) -> None:
    """Keep an entry the store cannot take beside the stream, with why: never drop it silently."""
    log.error("entry %s moved to the dead-letter stream: %s", entry.entry_id, reason)
    buffer.dead_letter(entry, reason)
    metrics.ENTRIES_DEAD_LETTERED.inc()


def append_isolating_poison(batch: list[tuple[Entry, BufferEntry]]) -> AppendResult:
    """Append the batch in one transaction; if PostgreSQL refuses a row in it, append entry by
    entry instead and dead-letter the ones it refuses, so one bad entry cannot stall ingestion."""
    try:
        return event_store.append([decoded for _, decoded in batch])
    # psycopg's own classes too: COPY runs on the raw cursor, outside Django's error wrapping.
    except (DataError, IntegrityError, psycopg.DataError, psycopg.IntegrityError) as exc:
        if len(batch) == 1:
            dead_letter(batch[0][0], str(exc).strip())
            return AppendResult(0, 0, 0)
        log.warning("the store refused a row of a %d-entry batch (%s); isolating it", len(batch), exc)
    stored = duplicates = rejected = 0
    for pair in batch:
        result = append_isolating_poison([pair])
        stored, duplicates, rejected = (
            stored + result.stored,
            duplicates + result.duplicates,
            rejected + result.rejected,
        )
    return AppendResult(stored, duplicates, rejected)


# A deadlock or serialization victim was rolled back whole: append it again at once rather than
# leave its entries pending until another drainer reclaims them (TIDELOG_RECLAIM_IDLE_MS later).
_RETRY_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
_APPEND_ATTEMPTS = 3


def append_retrying(
    batch: list[tuple[Entry, BufferEntry]],
    append: Callable[[list[tuple[Entry, BufferEntry]]], AppendResult] = append_isolating_poison,
) -> AppendResult:
    for attempt in range(1, _APPEND_ATTEMPTS + 1):
        try:
            return append(batch)
        except (OperationalError, psycopg.OperationalError) as exc:
            cause = exc.__cause__ if isinstance(exc, OperationalError) else exc
            if getattr(cause, "sqlstate", None) not in _RETRY_SQLSTATES or attempt == _APPEND_ATTEMPTS:
                raise
            log.warning("append rolled back (%s); attempt %d of %d", cause, attempt + 1, _APPEND_ATTEMPTS)
    raise AssertionError("unreachable")


def drain_batch(consumer: str, *, count: int | None = None, reclaim_idle_ms: int | None = None) -> DrainStats:
    """One read-append-ack cycle. Returns what it did; `entries == 0` means the buffer is empty."""
    global _events_per_entry
    started = time.perf_counter()
    entries = buffer.read(consumer, count or entries_to_read(), reclaim_idle_ms=reclaim_idle_ms)
    stats = DrainStats()
    if not entries:
        return stats
    batch: list[tuple[Entry, BufferEntry]] = []
    done: list[bytes] = []
    for entry in entries:
        try:
            batch.append((entry, decode_entry(entry.data)))
            done.append(entry.entry_id)
        except UnknownBufferVersion:
            # Written by a newer Tidelog mid-deploy: leave it pending; a newer drainer reclaims it.
            log.warning("entry %s has a newer schema version; left for a newer drainer", entry.entry_id)
        except (msgspec.DecodeError, ValueError, TypeError):
            dead_letter(entry, "cannot be decoded")  # and acknowledged with it
    if batch:
        mean = sum(len(d.events) + len(d.rejected) for _, d in batch) / len(batch)
        # A heuristic shared by this process's drain threads: a lost update only skews a guess.
        _events_per_entry = 0.7 * _events_per_entry + 0.3 * max(mean, 1.0)
    result = append_retrying(batch) if batch else AppendResult(0, 0, 0)
    fault_point("after_commit")
    # Acknowledged only now: the transaction above has committed.
    buffer.ack(done)
    metrics.DRAIN_BATCH_SECONDS.observe(time.perf_counter() - started)
    metrics.EVENTS_STORED.inc(result.stored)
    metrics.EVENTS_DUPLICATE.inc(result.duplicates)
    metrics.BAD_EVENTS_STORED.inc(result.rejected)
    stats.entries = len(entries)
    stats.stored = result.stored
    stats.duplicates = result.duplicates
    stats.rejected = result.rejected
    stats.batches = 1
    return stats


def drain(
    consumer: str,
    *,
    budget_seconds: float = 5.0,
    reclaim_idle_ms: int | None = None,
    keep_going: bool = False,
    between_batches: Callable[[], None] | None = None,
) -> DrainStats:
    """Drain until the buffer runs low (empty, with `keep_going`) or the time budget is spent.
    `between_batches` runs after each batch (the actor refreshes its drain slot there)."""
    total = DrainStats()
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        if total.batches and between_batches is not None:
            between_batches()
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
