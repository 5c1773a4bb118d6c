#!/usr/bin/env python
"""Sessions projection micro-benchmark: run by hand, prints figures; not a test.

apply + write per event, through Sessions' own code and a real rm_sessions table in a private
database (tidelog_bench_sessions, made anew and dropped), for in-order traffic shaped like
bench_ingest.py's: 5,000 users, 9,000 session ids, 5,000-event batches, each committed as the
runner does. "python" is this process's CPU time (time.process_time); "wall" includes the
PostgreSQL server's side of write (COPY and the upsert). "baseline" is event_aggregates on
the same events, for scale. Events are handed to apply directly:
explicit and in-order inferred batches never read the event store.

    .venv/bin/python loadtest/bench_sessions.py [--events 200000]
"""

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "tidelog_bench_sessions"
EVENT_TYPES = ["app_opened", "$screen", "button_tapped", "purchase_completed", "app_backgrounded"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    server = base.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DB}")
    os.environ["DATABASE_URL"] = f"{server}/{BENCH_DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        for kind in ("explicit", "inferred", "baseline"):
            run(kind, args.events, args.batch)
    finally:
        from django.db import connection

        connection.close()
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def event(kind: str, i: int, start: datetime) -> Any:
    from projections.projection import StoredEvent

    return StoredEvent(
        "1000", i, 1, EVENT_TYPES[i % 5], f"user-{i % 5000}", start + timedelta(milliseconds=2 * i),
        None if kind == "inferred" else f"s-{i % 9000}", "3.4.1", "iOS", f"user-{i % 5000}-device", "18.1",
    )  # fmt: skip


def run(kind: str, total: int, batch: int) -> None:
    from django.db import transaction

    from projections.event_aggregates import EventAggregates
    from projections.runner import raw_cursor
    from projections.sessions import Sessions

    # baseline: event_aggregates, a plain counting projection, on the explicit events.
    projection: Any = EventAggregates() if kind == "baseline" else Sessions()
    tables = {name: name for name in projection.tables}
    start = datetime.now(UTC) - timedelta(days=1)
    # One event every 2 ms overall: each user's events ~10 s apart, so inferred sessions are
    # extended batch after batch (the hot path), never rewalked.
    events = [event(kind, i, start) for i in range(total)]
    apply_cpu = write_cpu = wall = 0.0
    with raw_cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)}")
    for offset in range(0, total, batch):
        chunk = events[offset : offset + batch]
        wall_started = time.perf_counter()
        with transaction.atomic(), raw_cursor() as cursor:
            cpu = time.process_time()
            changes = projection.apply(chunk)
            applied = time.process_time()
            projection.write(cursor, changes, tables)
            written = time.process_time()
        wall += time.perf_counter() - wall_started
        apply_cpu += applied - cpu
        write_cpu += written - applied
    with raw_cursor() as cursor:
        cursor.execute(f"SELECT count(*), sum(event_count) FROM {projection.tables[0]}")
        sessions, counted = cursor.fetchone()
    micro = 1e6 / total
    print(
        f"{kind:9s} {total} events -> {sessions} rows ({counted} counted): "
        f"python {(apply_cpu + write_cpu) * micro:.1f} µs/event (apply {apply_cpu * micro:.1f}, "
        f"write {write_cpu * micro:.1f}); wall {wall * micro:.1f} µs/event, {total / wall:,.0f} events/s"
    )


if __name__ == "__main__":
    main()
