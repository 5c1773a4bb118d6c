#!/usr/bin/env python
"""Sessions and people benchmark: run by hand, prints figures; not a test.

One database (tidelog_bench_sp, dropped and made anew) is filled by binary COPY with 30 days of
a mobile app's traffic, as it arrives rather than as it happened:

  - sessions of 5-80 events a few seconds to two minutes apart, on one or two devices a user;
    70% carry an SDK session_id ($session_start first, $session_end last in 4 of 5), the rest
    none (their sessions are inferred);
  - 40% of users start anonymous and log in: an `$identify` with `$anon_distinct_id` and a
    `$set`; 2% of other events carry a `$set`;
  - 5% of sessions were queued offline and arrive 2-12 hours late, after later traffic.

Then, in the same run, each projection is replayed from zero (projections/replay.py, the path
`manage.py projections replay` takes): event_aggregates and user_activity, the projections every
install has had since the start, are the baseline beside sessions and people. `verify` must find both new ones
clean. Last, the query API (granian, as `make run` serves it) answers each endpoint's request
`--requests` times over the 30 days; active-users (shipped before) is the baseline there.
"""

import argparse
import os
import random
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import ROOT, fresh_database, log, pct, psql, query_api, services_env

BENCH_DB = "tidelog_bench_sp"
QUERY_PORT = 8201
SCREENS = ("Home", "Search", "ProductDetail", "Cart", "Checkout", "Profile")
TYPES = ("$screen", "$screen", "button_tapped", "button_tapped", "search_performed", "product_added_to_cart")
PLATFORMS = (("iOS", "18.1"), ("iOS", "17.5"), ("Android", "14"), ("Android", "15"))
VERSIONS = ("3.4.0", "3.4.1", "3.5.0")
CHUNK = 5_000  # rows a transaction, as the drain appends them


def traffic(total: int, days: int, seed: int) -> list[tuple[float, tuple[Any, ...]]]:
    """(arrival time, row in schema.APPENDED order) for about `total` events."""
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=13)
    start = end - timedelta(days=days)
    span = (end - start).total_seconds()
    users = max(1, total // 85)  # about 85 events a user: 2 sessions of ~42
    out: list[tuple[float, tuple[Any, ...]]] = []
    for u in range(users):
        user = f"user-{u}"
        anon = f"anon-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}" if rng.random() < 0.4 else None
        devices = [
            (f"device-{u}-{d}", rng.choice(VERSIONS), *rng.choice(PLATFORMS)) for d in range(1 + (rng.random() < 0.3))
        ]
        session_starts = sorted(rng.uniform(0, span) for _ in range(rng.randint(1, 3)))
        identify_at = len(session_starts) // 2
        for n, offset in enumerate(session_starts):
            device_id, version, os_name, os_version = rng.choice(devices)
            who = anon if anon and n <= identify_at else user
            explicit = rng.random() < 0.7
            session_id = str(uuid.UUID(int=rng.getrandbits(128))) if explicit else None
            late = rng.uniform(2 * 3600, 12 * 3600) if rng.random() < 0.05 else 0.0
            moment = offset
            count = rng.randint(5, 80)
            for i in range(count):
                if explicit and i == 0:
                    kind, props = "$session_start", {}
                elif explicit and i == count - 1 and rng.random() < 0.8:
                    kind, props = "$session_end", {}
                else:
                    kind = rng.choice(TYPES)
                    props = {"$screen_name": rng.choice(SCREENS)} if kind == "$screen" else {"n": i}
                    if rng.random() < 0.02:
                        props["$set"] = {"last_screen": rng.choice(SCREENS)}
                if anon and n == identify_at and i == count // 2:
                    who = user  # logs in half-way through this session
                    kind = "$identify"
                    props = {"$anon_distinct_id": anon, "$set": {"plan": rng.choice(("free", "pro")),
                                                                 "email": f"{user}@example.com"}}  # fmt: skip
                when = start + timedelta(seconds=moment)
                row = (
                    1, uuid.UUID(int=rng.getrandbits(128)), kind, who, when, when, when, when, 0,
                    session_id, device_id, version, os_name, os_version, props,
                )  # fmt: skip
                out.append((moment + rng.uniform(0, 10) + late, row))
                moment += rng.uniform(3, 120)
    out.sort(key=lambda pair: pair[0])
    return out


def fill(rows: list[tuple[Any, ...]]) -> float:
    """COPY the rows in arrival order, CHUNK a transaction, as an appender; return rows/s."""
    from django.db import connection, transaction
    from psycopg.types.json import Jsonb

    from command_side.event_store import partitions_ensure
    from contracts.follow import ANNOUNCE_APPENDER
    from contracts.schema import APPENDED, EVENTS
    from projections.runner import raw_cursor

    partitions_ensure({row[4].date() for row in rows})
    columns = ", ".join(column.sql for column in APPENDED)
    started = time.perf_counter()
    for at in range(0, len(rows), CHUNK):
        with transaction.atomic(), raw_cursor() as cursor:
            cursor.execute(ANNOUNCE_APPENDER)
            with cursor.copy(f"COPY {EVENTS} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([column.type for column in APPENDED])
                for row in rows[at : at + CHUNK]:
                    copy.write_row((*row[:-1], Jsonb(row[-1])))
        if at // CHUNK % 40 == 0:
            log(f"  stored {at + CHUNK:,} of {len(rows):,}")
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tidelog_events")
    return len(rows) / elapsed


def replay_rate(name: str, total: int) -> float:
    from projections.registry import projection_get
    from projections.replay import replay

    started = time.perf_counter()
    replay(projection_get(name))
    rate = total / (time.perf_counter() - started)
    log(f"  replay {name}: {rate:,.0f} events/s")
    return rate


def timed_get(url: str, key: str, count: int) -> tuple[float, float, int]:
    latencies = []
    size = 0
    for _ in range(count):
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            size = len(response.read())
        latencies.append(time.perf_counter() - started)  # seconds: pct() gives ms
    return pct(latencies, 50), pct(latencies, 95), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=100, help="requests per endpoint")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()

    env = services_env()
    project = fresh_database(env, BENCH_DB)
    assert project["project_id"] == 1, project

    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "core.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from projections.registry import projection_get
    from projections.verify import verify

    log(f"generating ~{args.events:,} events over {args.days} days")
    rows = [row for _, row in traffic(args.events, args.days, args.seed)]
    total = len(rows)
    log(f"storing {total:,} events in arrival order ({CHUNK:,} a transaction)")
    copy_rate = fill(rows)
    del rows
    rates = {name: replay_rate(name, total) for name in ("event_aggregates", "user_activity", "sessions", "people")}
    for name in ("sessions", "people"):
        report = verify(projection_get(name))
        log(f"  verify {name}: {len(report.differences)} differences over {report.checked_rows}")
        assert not report.differences, report.differences[:5]
    counts = psql(env, "SELECT (SELECT count(*) FROM rm_sessions) || ' sessions, ' || "
                       "(SELECT count(*) FILTER (WHERE inferred) FROM rm_sessions) || ' inferred, ' || "
                       "(SELECT count(*) FROM rm_persons) || ' persons, ' || "
                       "(SELECT count(*) FROM rm_person_distinct_ids) || ' distinct_ids'")  # fmt: skip

    now = datetime.now(UTC)
    since = (now - timedelta(days=args.days + 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    week = (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    api = f"http://127.0.0.1:{QUERY_PORT}/api/v1/analytics/admin"
    endpoints = {
        "active-users, 30 days (baseline)": f"{api}/active-users/?after={since}",
        "sessions, first page": f"{api}/sessions/?after={since}",
        "sessions, one user": f"{api}/sessions/?after={since}&distinct_id=user-77",
        "sessions, version + min duration": f"{api}/sessions/?after={since}&app_version=3.5.0&min_duration=600",
        "session-metrics, day, 30 days": f"{api}/session-metrics/?after={since}&interval=day",
        "session-metrics, hour by os_name, 7 days": f"{api}/session-metrics/?after={week}&interval=hour&breakdown=os_name",
        "people, first page": f"{api}/people/",
        "people, by property": f"{api}/people/?property=plan:pro",
    }  # fmt: skip
    figures = {}
    with query_api(env, QUERY_PORT):
        for name, url in endpoints.items():
            timed_get(url, project["personal_api_key"], 5)  # warm
            figures[name] = timed_get(url, project["personal_api_key"], args.requests)
            log(f"  {name}: p50 {figures[name][0]:.1f} ms, p95 {figures[name][1]:.1f} ms")

    print()
    print(f"{total:,} events over {args.days} days: {counts}")
    print(f"stored by binary COPY at {copy_rate:,.0f} events/s")
    print(f"{'replay from zero':<42} {'events/s':>10}")
    for name, rate in rates.items():
        print(f"{name + (' (baseline)' if name in ('event_aggregates', 'user_activity') else ''):<42} {rate:>10,.0f}")
    print(f"{'query API, ' + str(args.requests) + ' requests each':<42} {'p50 ms':>8} {'p95 ms':>8} {'bytes':>8}")
    for name, (p50, p95, size) in figures.items():
        print(f"{name:<42} {p50:>8.1f} {p95:>8.1f} {size:>8}")


if __name__ == "__main__":
    main()
