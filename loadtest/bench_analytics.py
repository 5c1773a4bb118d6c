#!/usr/bin/env python
"""Analytics benchmark (issue 9): run by hand, prints figures; not a test.

On its own database (tidelog_bench_an, dropped and made anew unless --reuse):
  1. `manage.py generate_events` loads --events synthetic events (default 10M over 30 days,
     200k users, 50 event types) straight into the event store by COPY: events/s;
  2. every projection is replayed from zero (projections/replay.py, as `manage.py projections
     replay` does): events/s each, and for all of them one after the other;
  3. the query API (granian, as `make run` serves it, port 8301) answers every analytics and
     dashboard endpoint (query_side/urls.py, /tmp/h/contract.md of issue 9) over the last 30
     days, and over 7 where that is the dashboard's default: p50/p95 over --requests requests
     (3 when one request takes over 2 s). A 404 is reported "absent" (not built yet: re-run
     after merging). Beside each, once, the baseline: the same question as plain SQL over the
     raw events (statement_timeout --baseline-timeout);
  4. admin/events/ with each documented filter, known and unknown values, a week's range and
     the second (cursor) page: the event store's indexes at work (migration 0007);
  5. EXPLAIN (ANALYZE, BUFFERS) of the slowest endpoint's slowest statement, captured by running
     that request once in-process.

--reuse keeps the database and its events (after a merge: new projections, new endpoints) and
replays again unless --skip-replay.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import BIN, ROOT, fresh_database, log, psql, query_api, services_env
from bench_sessions_people import timed_get

BENCH_DB = "tidelog_bench_an"
QUERY_PORT = 8301
SLOW_SECONDS = 2.0
"""A request slower than this is measured 3 times, not --requests: 20 x 12 s is a coffee break."""


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    """Under /api/v1/analytics/admin/, with {after}, {week}, {before} to fill in."""
    baseline: str | None = None
    """The same question in plain SQL over tidelog_events, with %(after)s and %(before)s."""


_RAW = 'FROM tidelog_events WHERE project_id = 1 AND "timestamp" >= %(after)s AND "timestamp" < %(before)s'
_RAW_WEEK = _RAW.replace("%(after)s", "%(week)s")


def _per(unit: str, extra: str = "", where: str = "", raw: str = _RAW) -> str:
    return (
        f"SELECT date_trunc('{unit}', \"timestamp\"){extra}, count(*), count(DISTINCT distinct_id) {raw} {where}"
        f" GROUP BY 1{', 2' if extra else ''}"
    )


SESSIONS_RAW = f"""SELECT session_id, min("timestamp") AS start_at,
    extract(epoch FROM max("timestamp") - min("timestamp")) AS duration, count(*) AS events
    {_RAW} AND session_id IS NOT NULL GROUP BY 1"""
FUNNEL = ("app_opened", "product_viewed", "purchase_completed")
FUNNEL_RAW = f"""
WITH s1 AS (SELECT distinct_id, min("timestamp") AS t {_RAW} AND event_type = '{FUNNEL[0]}' GROUP BY 1),
s2 AS (SELECT s1.distinct_id, min(e."timestamp") AS t FROM s1 JOIN tidelog_events e ON e.project_id = 1
       AND e.distinct_id = s1.distinct_id AND e.event_type = '{FUNNEL[1]}'
       AND e."timestamp" > s1.t AND e."timestamp" <= s1.t + interval '14 days' GROUP BY 1),
s3 AS (SELECT s2.distinct_id FROM s2 JOIN s1 USING (distinct_id) JOIN tidelog_events e ON e.project_id = 1
       AND e.distinct_id = s2.distinct_id AND e.event_type = '{FUNNEL[2]}'
       AND e."timestamp" > s2.t AND e."timestamp" <= s1.t + interval '14 days' GROUP BY 1)
SELECT (SELECT count(*) FROM s1), (SELECT count(*) FROM s2), (SELECT count(*) FROM s3)"""
RETENTION_RAW = """
WITH firsts AS (SELECT distinct_id, min("timestamp")::date AS cohort FROM tidelog_events WHERE project_id = 1 GROUP BY 1),
days AS (SELECT DISTINCT distinct_id, "timestamp"::date AS day {raw})
SELECT f.cohort, d.day - f.cohort, count(*) FROM firsts f JOIN days d USING (distinct_id)
WHERE f.cohort >= %(after)s::date AND d.day >= f.cohort GROUP BY 1, 2""".replace("{raw}", _RAW)

CASES = [
    Case("event_counts, 7 days (default)", "events/event_counts/?after={week}",
         f"SELECT event_type, count(*) {_RAW_WEEK} GROUP BY 1"),
    Case("event_counts, 30 days", "events/event_counts/?after={after}", f"SELECT event_type, count(*) {_RAW} GROUP BY 1"),
    Case("event-aggregates, day, 30 days", "event-aggregates/?interval=day&after={after}",
         _per("day", ", event_type")),
    Case("event-aggregates, hour, 30 days", "event-aggregates/?interval=hour&after={after}",
         _per("hour", ", event_type")),
    Case("event-aggregates, day by app_version, 30 days",
         "event-aggregates/?interval=day&breakdown=app_version&after={after}",
         f"SELECT date_trunc('day', \"timestamp\"), event_type, app_version, count(*), count(DISTINCT distinct_id)"
         f" {_RAW} GROUP BY 1, 2, 3"),
    Case("active-users, day, 30 days", "active-users/?interval=day&after={after}",
         f"SELECT date_trunc('day', \"timestamp\"), count(DISTINCT distinct_id) {_RAW} GROUP BY 1"),
    Case("active-users, week, 30 days", "active-users/?interval=week&after={after}",
         f"SELECT date_trunc('week', \"timestamp\"), count(DISTINCT distinct_id) {_RAW} GROUP BY 1"),
    Case("active-users, month, 30 days", "active-users/?interval=month&after={after}",
         f"SELECT date_trunc('month', \"timestamp\"), count(DISTINCT distinct_id) {_RAW} GROUP BY 1"),
    Case("stickiness, 7 days (default)", "stickiness/?after={week}",
         f"SELECT d, count(*) FROM (SELECT distinct_id, count(DISTINCT \"timestamp\"::date) AS d {_RAW_WEEK}"
         " GROUP BY 1) u GROUP BY 1"),
    Case("stickiness, 30 days", "stickiness/?after={after}",
         f"SELECT d, count(*) FROM (SELECT distinct_id, count(DISTINCT \"timestamp\"::date) AS d {_RAW}"
         " GROUP BY 1) u GROUP BY 1"),
    Case("trends, $screen total, day, 7 days (default)", "trends/?series=$screen&after={week}",
         _per("day", where="AND event_type = '$screen'", raw=_RAW_WEEK)),
    Case("trends, $screen total, day, 30 days", "trends/?series=$screen&math=total&interval=day&after={after}",
         _per("day", where="AND event_type = '$screen'")),
    Case("trends, $all unique users, day, 30 days",
         "trends/?series=$all&math=unique_users&interval=day&after={after}", _per("day")),
    Case("trends, 3 series, week, 30 days",
         "trends/?series=$screen&series=button_tapped&series=purchase_completed&math=unique_users&interval=week"
         "&after={after}",
         _per("week", ", event_type", "AND event_type IN ('$screen', 'button_tapped', 'purchase_completed')")),
    Case("trends, by app_version, hour, 30 days",
         "trends/?series=$screen&breakdown=app_version&interval=hour&after={after}",
         _per("hour", ", app_version", "AND event_type = '$screen'")),
    Case("trends, per_user_avg, compare previous, 30 days",
         "trends/?series=button_tapped&math=per_user_avg&compare=previous&after={after}",
         _per("day", where="AND event_type = 'button_tapped'")),
    Case("retention, day, 30 days", "retention/?period=day&after={after}", RETENTION_RAW),
    Case("retention, week, 30 days", "retention/?period=week&after={after}", RETENTION_RAW),
    Case("funnel, 3 steps, 30 days", "funnels/?" + "&".join(f"steps={s}" for s in FUNNEL) + "&after={after}",
         FUNNEL_RAW),
    Case("funnel, 3 steps by os_name, 30 days",
         "funnels/?" + "&".join(f"steps={s}" for s in FUNNEL) + "&breakdown=os_name&after={after}", FUNNEL_RAW),
    Case("event-types (picker), 30 days", "event-types/?after={after}", f"SELECT event_type, count(*) {_RAW} GROUP BY 1"),
    Case("event-properties (picker), button_tapped", "event-properties/?event_type=button_tapped&after={after}",
         f"SELECT k, count(*) {_RAW.replace('FROM tidelog_events', 'FROM tidelog_events, jsonb_object_keys(properties) k')}"
         " AND event_type = 'button_tapped' GROUP BY 1"),
    Case("event-property-values (picker), button",
         "event-property-values/?event_type=button_tapped&key=button&after={after}",
         f"SELECT properties ->> 'button', count(*) {_RAW} AND event_type = 'button_tapped' GROUP BY 1"),
    Case("sessions, first page, 30 days", "sessions/?after={after}",
         f"SELECT * FROM ({SESSIONS_RAW}) s ORDER BY start_at DESC LIMIT 100"),
    Case("sessions, one user, 30 days", "sessions/?after={after}&distinct_id=user-77",
         SESSIONS_RAW.replace("IS NOT NULL", "IS NOT NULL AND distinct_id = 'user-77'")),
    Case("session-metrics, day, 30 days", "session-metrics/?interval=day&after={after}",
         "SELECT date_trunc('day', start_at), count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY duration),"
         f" avg(events) FROM ({SESSIONS_RAW}) s GROUP BY 1"),
    Case("session-metrics, hour by os_name, 7 days", "session-metrics/?interval=hour&breakdown=os_name&after={week}",
         "SELECT date_trunc('hour', start_at), count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY duration)"
         f" FROM ({SESSIONS_RAW.replace('%(after)s', '%(week)s')}) s GROUP BY 1"),
    Case("people, first page", "people/",
         "SELECT distinct_id, max(\"timestamp\") FROM tidelog_events WHERE project_id = 1 GROUP BY 1 ORDER BY 2 DESC"
         " LIMIT 100"),
    Case("people, plan:pro", "people/?property=plan:pro",
         "SELECT DISTINCT distinct_id FROM tidelog_events WHERE project_id = 1 AND properties -> '$set' ->> 'plan' = 'pro'"),
    Case("bad-events, first page", "bad-events/"),
]  # fmt: skip


def event_cases(env: dict[str, str]) -> list[Case]:
    """admin/events/ with each documented filter: values known to be there and unknown ones."""
    session = psql(env, "SELECT session_id FROM tidelog_events WHERE project_id = 1 AND session_id IS NOT NULL"
                        " ORDER BY position DESC LIMIT 1")  # fmt: skip
    rare = psql(env, "SELECT event_type FROM rm_event_rollups WHERE project_id = 1 AND grain = 'day' GROUP BY 1"
                     " ORDER BY sum(event_count) LIMIT 1")  # fmt: skip
    cases = [
        ("no filter", ""),
        ("distinct_id", "distinct_id=user-77"),
        ("distinct_id unknown", "distinct_id=nobody"),
        ("session_id", f"session_id={session}"),
        ("session_id unknown", "session_id=nothing"),
        ("event_type common ($screen)", "event_type=$screen"),
        (f"event_type rare ({rare})", f"event_type={rare}"),
        ("event_type unknown", "event_type=nothing_happened"),
        ("event_type + distinct_id", "event_type=$screen&distinct_id=user-77"),
        ("event_type, 7 days", "event_type=$screen&after={week}&before={before}"),
        ("session_id unknown, 7 days", "session_id=nothing&after={week}&before={before}"),
        ("distinct_id unknown, 7 days", "distinct_id=nobody&after={week}&before={before}"),
        ("event_type rare, 7 days", f"event_type={rare}&after={{week}}&before={{before}}"),
    ]
    return [Case(f"events/ {name}", f"events/?{query}") for name, query in cases]


def load(args: argparse.Namespace, env: dict[str, str]) -> tuple[int, float, float]:
    """Generate the events; return (count, events/s, ANALYZE seconds)."""
    log(f"generate_events: {args.events:,} events, {args.days} days, {args.users:,} users, {args.types} types")
    command = [str(BIN / "python"), "manage.py", "generate_events", "--project", "1", "--events", str(args.events),
               "--days", str(args.days), "--users", str(args.users), "--event-types", str(args.types),
               "--seed", str(args.seed), "--jobs", str(args.jobs), "--no-analyze"]  # fmt: skip
    out = subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        log("  " + line)
    rate = float(re.search(r"\(([\d,]+) events/s\)\s*$", out.strip().splitlines()[-1]).group(1).replace(",", ""))  # type: ignore[union-attr]
    started = time.perf_counter()
    psql(env, "ANALYZE tidelog_events")
    return int(psql(env, "SELECT count(*) FROM tidelog_events")), rate, time.perf_counter() - started


def replay_all(total: int) -> dict[str, tuple[float, float]]:
    """Each projection rebuilt from zero, one after the other: name -> (seconds, events/s)."""
    from projections.registry import PROJECTIONS
    from projections.replay import replay

    figures = {}
    for name, projection in PROJECTIONS.items():
        started = time.perf_counter()
        replay(projection)
        elapsed = time.perf_counter() - started
        figures[name] = (elapsed, total / elapsed)
        log(f"  replay {name}: {elapsed:.1f} s, {total / elapsed:,.0f} events/s")
    return figures


def baseline_seconds(sql: str, params: dict[str, Any], timeout_s: float) -> float | None:
    """Seconds the plain SQL takes, once; None past the timeout."""
    from django.db import OperationalError, connection, transaction

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
            started = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            return time.perf_counter() - started
    except OperationalError:
        return None


def measure(url: str, key: str, requests: int) -> tuple[str, float, float, int, int, float]:
    """(status, p50 ms, p95 ms, bytes, n, first ms): "absent" for a 404, "400: …" for a refusal.
    The first request is timed apart: it reads what the query process's cache does not hold yet
    (this question's buckets, days and rows; query_side/row_cache.py), the others are p50/p95."""
    try:
        started = time.perf_counter()
        with urllib.request.urlopen(
            urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"}), timeout=120
        ):
            first = time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")[:120]
        return ("absent" if exc.code == 404 else f"{exc.code}: {body}"), 0.0, 0.0, 0, 0, 0.0
    count = 3 if first > SLOW_SECONDS else requests
    p50, p95, size = timed_get(url, key, count)
    return "ok", p50, p95, size, count, first * 1000


def next_page(url: str, key: str) -> str | None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        link = json.loads(response.read()).get("next")
    return str(link) if link else None


def explain_slowest(path: str, key: str) -> str:
    """Run the request in-process, capture its SQL, EXPLAIN (ANALYZE, BUFFERS) the slowest."""
    from django.db import connection
    from django.test import Client

    captured: list[tuple[float, str, Any]] = []

    def capture(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            captured.append((time.perf_counter() - started, sql, params))

    with connection.execute_wrapper(capture):
        Client().get(path, HTTP_AUTHORIZATION=f"Bearer {key}")
    if not captured:
        return "(no SQL captured)"
    _, sql, params = max(captured, key=lambda c: c[0])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return sql.strip() + "\n\n" + "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--types", type=int, default=50)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--jobs", type=int, default=2, help="generate_events' writers")
    parser.add_argument("--requests", type=int, default=20, help="requests per endpoint")
    parser.add_argument("--baseline-timeout", type=float, default=120, help="seconds a baseline SQL may take")
    parser.add_argument("--reuse", action="store_true", help="keep the database and its events")
    parser.add_argument("--skip-replay", action="store_true", help="with --reuse: leave the read models as they are")
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args()

    env = services_env()
    if args.reuse:
        env["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0] + "/" + BENCH_DB
        subprocess.run([str(BIN / "python"), "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        key = subprocess.run([str(BIN / "python"), "manage.py", "shell", "-c",
                              "from tenancy.models import Project; from tenancy.services import personal_api_key_issue;"
                              " print(personal_api_key_issue(project=Project.objects.get(pk=1), label='bench'))"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True).stdout.split()[-1]  # fmt: skip
        project = {"project_id": 1, "personal_api_key": key}
        total = int(psql(env, "SELECT count(*) FROM tidelog_events"))
        load_rate, analyze_s = float("nan"), float("nan")
    else:
        project = fresh_database(env, BENCH_DB)
        assert project["project_id"] == 1, project
        total, load_rate, analyze_s = load(args, env)
    key = project["personal_api_key"]

    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "core.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    replays = {} if args.skip_replay else replay_all(total)
    psql(env, "ANALYZE")

    now = datetime.now(UTC)
    times = {
        "after": (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "week": (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "before": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    params = {name: datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) for name, value in times.items()}
    api = f"http://127.0.0.1:{QUERY_PORT}/api/v1/analytics/admin/"
    cases = CASES + event_cases(env)
    results: list[tuple[Case, tuple[str, float, float, int, int, float], float | None]] = []
    with query_api(env, QUERY_PORT):
        for case in cases:
            url = api + case.path.format(**{k: urllib.parse.quote(v) for k, v in times.items()})
            figures = measure(url, key, args.requests)
            seconds = None
            if case.baseline and not args.no_baselines:
                seconds = baseline_seconds(case.baseline, params, args.baseline_timeout)
            results.append((case, figures, seconds))
            base_text = (
                ""
                if not case.baseline
                else f"; baseline {'timeout' if seconds is None else f'{seconds * 1000:,.0f} ms'}"
            )
            log(
                f"  {case.name}: {figures[0]}, p50 {figures[1]:.1f} ms, p95 {figures[2]:.1f} ms ({figures[4]} requests){base_text}"
            )
            if case.path.startswith("events/?") and figures[0] == "ok":
                link = next_page(url, key)
                if link:
                    second = Case(case.name + ", page 2", link)
                    figures = measure(link, key, args.requests)
                    results.append((second, figures, None))
                    log(f"  {second.name}: p50 {figures[1]:.1f} ms, p95 {figures[2]:.1f} ms")

    slowest = max((r for r in results if r[1][0] == "ok"), key=lambda r: r[1][2], default=None)
    plan = ""
    if slowest is not None:
        path = slowest[0].path
        if not path.startswith("http"):
            path = "/api/v1/analytics/admin/" + path.format(**{k: urllib.parse.quote(v) for k, v in times.items()})
        plan = explain_slowest(path.replace(f"http://127.0.0.1:{QUERY_PORT}", ""), key)

    print()
    print(f"Tidelog analytics benchmark, {now:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores (shared), "
          + (f"{total:,} events (reused)" if args.reuse
             else f"{total:,} events over {args.days} days, {args.users:,} users, {args.types} event types"))  # fmt: skip
    if not args.reuse:
        print(f"load: generate_events {load_rate:,.0f} events/s (--jobs {args.jobs}); ANALYZE {analyze_s:.1f} s")
    if replays:
        print("| replay from zero | seconds | events/s |")
        print("|---|---:|---:|")
        for name, (seconds, rate) in replays.items():
            print(f"| {name} | {seconds:,.1f} | {rate:,.0f} |")
        whole = sum(seconds for seconds, _ in replays.values())
        print(f"| all projections, one after the other | {whole:,.1f} | {total / whole:,.0f} |")
    print(
        f"| endpoint (query API, {args.requests} requests each) | first request ms (cache cold) | p50 ms | p95 ms"
        " | bytes | baseline: plain SQL ms |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for case, (status, p50, p95, size, count, first), base in results:
        base_text = (
            "—"
            if case.baseline is None or args.no_baselines
            else ("timeout" if base is None else f"{base * 1000:,.0f}")
        )  # type: ignore[operator]
        if status == "ok":
            note = "" if count == args.requests else f" ({count} requests)"
            print(f"| {case.name}{note} | {first:,.1f} | {p50:,.1f} | {p95:,.1f} | {size:,} | {base_text} |")
        else:
            print(f"| {case.name} | {status} | | | | {base_text} |")
    if plan:
        print()
        print(f"slowest endpoint: {slowest[0].name} (p95 {slowest[1][2]:,.1f} ms); its slowest statement:")  # type: ignore[index]
        print(plan)


if __name__ == "__main__":
    main()
