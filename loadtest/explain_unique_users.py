#!/usr/bin/env python
"""Unique users as persons: what the LEFT JOIN on rm_person_distinct_ids costs. Run by hand,
prints figures; not a test.

Fills a fresh database (tidelog_bench_unique_users, dropped and made anew) with one project's
30 days of rm_user_days and rm_event_users (a few hundred thousand rows each) and a people
mapping where half the users are an anonymous id merged with an identified one, then runs the
active-users (DAU, MAU) and event-aggregates queries as query_side.selectors writes them
(`after`: persons) and as they were before (`before`: count(DISTINCT distinct_id), no join),
each EXPLAIN ANALYZEd and timed (median of 5 runs after a warm-up).

    .venv/bin/python loadtest/explain_unique_users.py [--users 20000] [--days 30]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import BIN, ROOT, log, psql, services_env

BENCH_DB = "tidelog_bench_unique_users"


def fill(env: dict[str, str], users: int, days: int, start: datetime) -> None:
    # Each user is active on about a third of the days, in one hour of each, for two event
    # types; ids u0..u(n-1); the odd ones are the identified ids of the even ones' persons.
    psql(env, f"""
        INSERT INTO rm_user_days
        SELECT 1, d::date, 'u' || u, 3, d + interval '10 hours', d + interval '11 hours'
        FROM generate_series(0, {users - 1}) u,
             generate_series('{start.date()}'::date, '{start.date()}'::date + {days - 1}, interval '1 day') d
        WHERE hashint4(u * 31 + extract(doy FROM d)::int) % 3 = 0;
        INSERT INTO rm_event_users
        SELECT 1, t, day::timestamptz + make_interval(hours => u % 24), distinct_id, '1.' || (u % 5), 'iOS', 2
        FROM (SELECT day, distinct_id, substr(distinct_id, 2)::int AS u FROM rm_user_days) d,
             unnest(ARRAY['app_opened', 'screen_viewed']) t;
        INSERT INTO rm_event_counts
        SELECT project_id, event_type, bucket, app_version, os_name, sum(event_count)
        FROM rm_event_users GROUP BY 1, 2, 3, 4, 5;
        INSERT INTO rm_person_distinct_ids
        SELECT 1, 'u' || u, md5('person' || (u / 2))::uuid, now(), now(), 1 FROM generate_series(0, {users - 1}) u;
        ANALYZE;
    """)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database for a look at it")
    args = parser.parse_args()
    env = services_env()
    env["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0] + "/" + BENCH_DB
    log("fresh database " + BENCH_DB)
    psql(env, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)", db="postgres")
    psql(env, f"CREATE DATABASE {BENCH_DB}", db="postgres")
    subprocess.run([str(BIN / "python"), "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    fill(env, args.users, args.days, start)
    for table in ("rm_user_days", "rm_event_users", "rm_person_distinct_ids"):
        log(f"{table}: {psql(env, f'SELECT count(*) FROM {table}')} rows")

    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from query_side import selectors

    end = start + timedelta(days=args.days)
    cases = {
        "active users, day": lambda: selectors.active_user_list(project_id=1, interval="day", after=start, before=end),
        "active users, month": lambda: selectors.active_user_list(
            project_id=1, interval="month", after=start, before=end
        ),
        "event aggregates, day": lambda: selectors.event_aggregate_list(
            project_id=1, interval="day", after=start, before=end
        ),
    }
    for name, run in cases.items():
        with CaptureQueriesContext(connection) as captured:
            run()
        after_sql = captured.captured_queries[-1]["sql"]
        before_sql = after_sql.replace(selectors.USER, "u.distinct_id").replace(selectors.JOIN_PERSON, "")
        for label, sql in (("before", before_sql), ("after", after_sql)):
            with connection.cursor() as cursor:
                cursor.execute(sql)  # warm-up
                timings = []
                for _ in range(5):
                    began = time.perf_counter()
                    cursor.execute(sql)
                    rows = cursor.fetchall()
                    timings.append((time.perf_counter() - began) * 1000)
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = [line for (line,) in cursor.fetchall()]
            first = rows[0][-1] if rows else None
            print(f"\n== {name}, {label}: median {statistics.median(timings):.1f} ms over 5 runs, "
                  f"{len(rows)} rows, first bucket's users {first}")  # fmt: skip
            print("\n".join("   " + line for line in plan))
    if not args.keep:
        psql(env, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)", db="postgres")


if __name__ == "__main__":
    main()
