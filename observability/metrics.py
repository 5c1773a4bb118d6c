"""Tidelog's Prometheus metrics. Counted where things happen (the command API accepts, a drain
stores, a query answers), in every process; served together by the query API's /metrics.

With PROMETHEUS_MULTIPROC_DIR set (`make run` and docker set it), every process writes its
counts to files there and /metrics adds them up (prometheus_client's multiprocess mode): granian
and Dramatiq run several processes, and each has its own memory. Without it, a process counts
for itself alone (tests, a shell).
"""

import os
import socket
from typing import Final

from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR: Final = settings.PROMETHEUS_MULTIPROC_DIR or None

if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)
    # TRICKY: files are named by process id by default, and containers sharing the folder (docker)
    # each number their processes from 1: two pid 7s would write one file. Host and pid are unique.
    _host = socket.gethostname().replace("_", "-")  # the collector splits file names on "_"
    values.ValueClass = values.MultiProcessValue(lambda: f"{_host}-{os.getpid()}")  # type: ignore[no-untyped-call]

# Latencies from 1 ms to 30 s: a query answers in milliseconds, a drain batch in tens of them.
_SECONDS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

EVENTS_ACCEPTED: Final = Counter(
    "tidelog_events_accepted", "Events the command API accepted into the buffer (each is stored exactly once)."
)
EVENTS_REJECTED: Final = Counter(
    "tidelog_events_rejected",
    "Events the command API refused (answered 400, or named in a batch's rejected list); kept as bad events.",
)
REQUESTS_UNAVAILABLE: Final = Counter(
    "tidelog_ingest_unavailable",
    "Ingestion requests answered 503 (buffer full or unavailable, database unavailable): the SDK retries.",
    ["code"],
)
EVENTS_STORED: Final = Counter("tidelog_events_stored", "Events a drain wrote to the event store.")
EVENTS_DUPLICATE: Final = Counter(
    "tidelog_events_duplicate", "Events a drain skipped because their (project, uuid) was already stored (SDK retries)."
)
BAD_EVENTS_STORED: Final = Counter("tidelog_bad_events_stored", "Refused events a drain kept in the bad-events list.")
ENTRIES_DEAD_LETTERED: Final = Counter(
    "tidelog_entries_dead_lettered", "Buffer entries moved to the dead-letter stream: the store could not take them."
)
DRAIN_BATCH_SECONDS: Final = Histogram(
    "tidelog_drain_batch_seconds", "One drain batch: read from the buffer, append to the store, acknowledge.",
    buckets=_SECONDS,
)  # fmt: skip
QUERY_CACHE_ROWS: Final = Counter(
    "tidelog_query_cache_rows",
    "Read-model rows a query needed decoded, by whether the query process's cache held them (hit) or they were"
    " read (miss); and what the cache dropped for room, rows or groups' answers (evicted).",
    ["result"],
)
QUERY_CACHE_GROUPS: Final = Counter(
    "tidelog_query_cache_groups",
    "Buckets of an answer (a bucket's rows computed) the query process's cache held, their rows unchanged"
    " (hit), or computed anew (miss).",
    ["result"],
)
QUERY_SECONDS: Final = Histogram(
    "tidelog_query_seconds", "Query API requests, by endpoint (its URL pattern) and status class.",
    ["endpoint", "status"], buckets=_SECONDS,
)  # fmt: skip


def registry() -> CollectorRegistry:
    """What /metrics serves: every process's counts (multiprocess), or this process's."""
    if MULTIPROCESS_DIR:
        collected = CollectorRegistry()
        MultiProcessCollector(collected, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
        return collected
    from prometheus_client import REGISTRY

    return REGISTRY
