"""Liveness, readiness and the figures only a look at PostgreSQL or Redis can give (the buffer's
depth, each projection's lag), for /healthz, /readyz and /metrics on both hosts.

Each check is cheap and bounded: its statements by PROBE_TIMEOUT_MS, a connection attempt by
TIDELOG_DATABASE_CONNECT_TIMEOUT_SECONDS (3 s), Redis by a socket timeout. A probe must answer
within a load balancer's timeout even when what it probes hangs.
"""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import redis
from django.conf import settings
from django.db import connections

from contracts import schema

PROBE_TIMEOUT_MS: Final = 2_000
LAG_CAP: Final = 1_000_000
"""A lag is counted exactly up to this, and answered as LAG_CAP + 1 past it (a bounded count)."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    critical: bool
    """Whether this host is unready when the check fails (a failed check that is not critical
    is reported, and the host still takes traffic)."""
    detail: dict[str, Any]


def buffer_stream() -> str:
    return f"{settings.REDIS_PREFIX}:{schema.BUFFER_STREAM}"


_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis:
    """One client (and connection pool) per Redis URL for the probes of this process: a probe
    every few seconds must not open a connection each time."""
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_MS / 1000,
                                                      socket_connect_timeout=PROBE_TIMEOUT_MS / 1000)  # fmt: skip
    return client


@dataclass(frozen=True)
class BufferDepth:
    entries: int
    """Entries not yet stored (each a request's events): unread plus read but unacknowledged."""
    oldest_age_seconds: float
    """How long the oldest entry has waited (0 when empty): an entry id is its arrival in ms."""
    dead_letters: int


def buffer_depth(client: redis.Redis) -> BufferDepth:
    stream = buffer_stream()
    with client.pipeline(transaction=False) as pipe:
        pipe.xlen(stream)
        pipe.xrange(stream, count=1)
        pipe.xlen(f"{stream}:{schema.DEAD_LETTER_SUFFIX}")
        entries, first, dead = pipe.execute()
    age = 0.0
    if first:
        arrived_ms = int(first[0][0].split(b"-")[0])
        age = max(0.0, time.time() - arrived_ms / 1000)
    return BufferDepth(int(entries), age, int(dead))


@dataclass(frozen=True)
class ProjectionLag:
    name: str
    xact_id: str
    position: int
    events_applied: int
    updated_at: datetime | None
    """When its checkpoint last moved; None before its first batch."""
    lag_events: int
    """Events stored but not yet applied: exact up to the cap, cap + 1 meaning "more"."""


_registered: list[str] = []


def register_projections(names: Iterable[str]) -> None:
    """The projections the runner runs (projections/apps.py says so at start): each is counted,
    one that has no checkpoint yet (it has never run) included."""
    _registered[:] = list(names)


def projection_lags(
    names: Iterable[str] | None = None, cap: int = LAG_CAP, *, alias: str = "default", timeout_ms: int | None = None
) -> list[ProjectionLag]:
    """Each projection's checkpoint and lag behind the event store, counted along the
    (xact_id, position) index and bounded by `cap`: a probe must stay cheap when a projection is
    millions of events behind. `names`: these projections; None: the registered ones and any
    other with a checkpoint. `alias`: the database read (the query API's replica: its lag as
    the query API sees it)."""
    with connections[alias].cursor() as cursor:
        if timeout_ms is not None:
            cursor.execute(f"SET statement_timeout = {int(timeout_ms)}")
        try:
            return _lags(cursor, names, cap)
        finally:
            if timeout_ms is not None:
                cursor.execute("RESET statement_timeout")


def _lags(cursor: Any, names: Iterable[str] | None, cap: int) -> list[ProjectionLag]:
    cursor.execute(f"SELECT name, xact_id::text, position, events_applied, updated_at FROM {schema.CHECKPOINTS}")
    rows = {row[0]: row for row in cursor.fetchall()}
    result = []
    for name in names if names is not None else sorted({*_registered, *rows}):
        _, xact_id, position, applied, updated_at = rows.get(name, (name, "0", 0, 0, None))
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {schema.EVENTS}"
            " WHERE (xact_id, position) > (%s::xid8, %s) LIMIT %s) behind",
            [xact_id, position, cap + 1],
        )
        lag = cursor.fetchone()[0]
        result.append(ProjectionLag(name, xact_id, position, applied, updated_at, lag))
    return result


def _probe(name: str, critical: bool, probe: Callable[[], tuple[bool, dict[str, Any]]]) -> Check:
    started = time.monotonic()
    try:
        ok, detail = probe()
    except Exception as exc:  # any failure to look is a failed check, never a 500
        ok, detail = False, {"error": f"{type(exc).__name__}: {str(exc).strip()[:200]}"}
    detail["ms"] = round((time.monotonic() - started) * 1000, 1)
    return Check(name, ok, critical, detail)


def database_check(*, critical: bool, alias: str = "default") -> Check:
    """`SELECT 1` on the database of `alias`. A replica (the query API's QUERY_DATABASE_URL) is
    named `query_database` and reports how far its replay is behind the primary: 0 when it has
    replayed all it received, else the time since the last transaction it replayed."""

    def probe() -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {}
        with connections[alias].cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {PROBE_TIMEOUT_MS}")
            try:
                cursor.execute(
                    "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN NULL"
                    " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
                    " ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
                )
                in_recovery, delay = cursor.fetchone()
            finally:
                cursor.execute("RESET statement_timeout")
        if alias != "default":
            detail["in_recovery"] = in_recovery
            detail["replay_delay_seconds"] = float(delay) if delay is not None else None
        return True, detail

    return _probe("database" if alias == "default" else "query_database", critical, probe)


def redis_check(*, critical: bool) -> Check:
    return _probe("redis", critical, lambda: (bool(redis_client().ping()), {}))


def buffer_check(*, critical: bool) -> Check:
    """The buffer is not nearly full: past TIDELOG_READY_MAX_BUFFER_FILL of its bound, ingestion
    is about to answer 503 buffer_full."""

    def probe() -> tuple[bool, dict[str, Any]]:
        depth = buffer_depth(redis_client())
        bound = settings.TIDELOG_BUFFER_MAX_ENTRIES
        fill = depth.entries / bound if bound else 0.0
        detail = {"entries": depth.entries, "max_entries": bound,
                  "oldest_age_seconds": round(depth.oldest_age_seconds, 3)}  # fmt: skip
        return fill < settings.TIDELOG_READY_MAX_BUFFER_FILL, detail

    return _probe("buffer", critical, probe)


def projections_check(*, critical: bool, alias: str = "default") -> Check:
    """Every projection within TIDELOG_READY_MAX_PROJECTION_LAG events of the store: past it, the
    query API's answers are that far behind."""

    def probe() -> tuple[bool, dict[str, Any]]:
        bound = settings.TIDELOG_READY_MAX_PROJECTION_LAG
        lags = projection_lags(cap=bound, alias=alias, timeout_ms=PROBE_TIMEOUT_MS)
        behind = {lag.name: lag.lag_events for lag in lags if lag.lag_events > bound}
        return not behind, {"max_lag_events": bound, "behind": behind}

    return _probe("projections", critical, probe)


def readiness(checks: list[Check]) -> tuple[int, dict[str, Any]]:
    """503 when a critical check failed, else 200; the body names every check."""
    ready = all(check.ok for check in checks if check.critical)
    body = {
        "status": "ready" if ready else "unready",
        "checks": {c.name: {"ok": c.ok, "critical": c.critical, **c.detail} for c in checks},
    }
    return (200 if ready else 503), body
