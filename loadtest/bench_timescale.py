#!/usr/bin/env python
"""TimescaleDB benchmark: run by hand, prints figures; not a test.

    .venv/bin/python loadtest/bench_timescale.py \\
        --database-url postgres://postgres@127.0.0.1:5439/tidelog_bench_ts --events 1000000 --days 30

On its own database (the last part of --database-url, which must start with tidelog_bench_ts:
dropped and made anew, and dropped again at the end unless --keep), on whichever server the URL
names, a TimescaleDB one (the event store a hypertable of 1-day chunks) or plain PostgreSQL
(natively range-partitioned by day):
  1. migrate, `create_project`, `generate_events` (COPY), `projections run --once`: timings;
  2. storage: the events table (hypertable_size, or the partitions' pg_total_relation_size) and
     the dedup ledger (tidelog_event_ids), each also per million events;
  3. the projection runner's read of the events, as projections/runner.py runs it (one
     transaction each: _SETUP with lock_key("bench") and a 60 s timeout, HORIZON, then
     _READ_EVENTS in binary, its SQL and argument order taken from the module at run time):
     (a) the replay walk, the whole store batch by batch from checkpoint zero: batches, p50/p95
     of the read statement, and the walk's wall time; (b) the idle read at the final
     checkpoint, --runs times: p50/p95. Beside each, the baseline: the same read the old way,
     without `AND xact_id >= %s::xid8` (the lower bound the row comparison implies; where the
     runner has no such bound yet the two are one and it is measured once);
  4. TimescaleDB only: compression (segmentby project_id, orderby xact_id, position) of every
     chunk older than --compress-after-days, ANALYZE, then storage and the runner's reads again,
     side by side with the uncompressed figures, and the ratio;
  5. event counts per type over the last 1, 7 and 30 days: p50/p95 over --runs calls of
     query_side.user_sets.event_counts (the read model's rollups) and, on TimescaleDB, of the same
     answer from two continuous aggregates (bench_cagg_hourly and bench_cagg_daily, real-time:
     whole UTC days from the daily one, the hours at the edges from the hourly one, the rollups'
     hour-granular range exactly: query_side.user_sets.spans); the baseline, plain SQL over the
     raw events for the same range (--baseline-runs calls). Every answer is checked against the
     rollups': MISMATCH if any differs. The continuous aggregates are dropped at the end.

Progress goes to stderr, the figures to stdout.
"""

import argparse
import inspect
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB_PREFIX = "tidelog_bench_ts"
LOCK_NAME = "bench"
STATEMENT_TIMEOUT = "60000ms"
CAGGS = {"hour": "bench_cagg_hourly", "day": "bench_cagg_daily"}
RANGES_DAYS = (1, 7, 30)
MIB = 1024 * 1024


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of them at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def manage(env: dict[str, str], *args: str) -> tuple[str, float]:
    """Run `manage.py args` with env; relay its output to stderr; return (stdout, seconds)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True
    )
    elapsed = time.perf_counter() - started
    for line in done.stdout.splitlines():
        log("  " + line)
    return done.stdout, elapsed


def fresh_database(server_url: str, name: str) -> None:
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- The runner's read -----------------------------------------------------------------------

_LOWER_BOUND = re.compile(r"[ \t]*AND\s+(?:\w+\.)?xact_id\s*>=\s*%s::xid8[ \t]*\n?")


def old_read(sql: str) -> str:
    """The read without the `xact_id >= checkpoint` lower bound (unchanged where it has none)."""
    return _LOWER_BOUND.sub("", sql)


def runner_argument_order() -> list[str] | None:
    """How runner._apply_batch passes _READ_EVENTS its arguments, as names among xact, position,
    horizon and limit; None when its source does not say plainly."""
    from projections import runner

    source = inspect.getsource(runner._apply_batch)
    # `_READ_EVENTS, [a, b, ...]`, or `_READ_EVENTS, name` with `name = [a, b, ...]` above it.
    call = re.search(r"\(\s*_READ_EVENTS\s*,\s*(?:\[([^\]]*)\]|(\w+))", source)
    if call is None:
        return None
    listed = call.group(1)
    if listed is None:
        assigned = re.search(rf"^\s*{call.group(2)}\s*=\s*\[([^\]]*)\]", source, re.MULTILINE)
        if assigned is None:
            return None
        listed = assigned.group(1)
    order = []
    for argument in (part.strip() for part in listed.split(",") if part.strip()):
        if "horizon" in argument:
            order.append("horizon")
        elif "limit" in argument:
            order.append("limit")
        elif "position" in argument:
            order.append("position")
        elif "xact" in argument:
            order.append("xact")
        else:
            return None
    return order


def read_arguments(sql: str, order: list[str] | None) -> Callable[[str, int, str, int], list[Any]]:
    """A builder of the read's arguments (checkpoint xact, position, horizon, limit): in `order`
    (from runner_argument_order) when it fits the SQL, else by the number of its %s."""
    count = sql.count("%s")
    if order is not None and len(order) == count:
        chosen = order
    elif count == 4:
        chosen = ["xact", "position", "horizon", "limit"]
    elif count == 5:
        chosen = ["xact", "position", "xact", "horizon", "limit"]
    else:
        raise SystemExit(f"the runner's read takes {count} arguments; this bench knows 4 and 5:\n{sql}")

    def build(xact: str, position: int, horizon: str, limit: int) -> list[Any]:
        values = {"xact": xact, "position": position, "horizon": horizon, "limit": limit}
        return [values[name] for name in chosen]

    return build


@dataclass(frozen=True)
class Read:
    name: str
    sql: str
    arguments: Callable[[str, int, str, int], list[Any]]


@dataclass
class Walk:
    batches: int = 0
    events: int = 0
    read_ms: list[float] | None = None
    total_ms: float = 0.0
    last: tuple[str, int] = ("0", 0)
    stopped: str = ""
    """Why the walk ended before the end of the store ('' when it did not)."""


def timed_read(read: Read, at: tuple[str, int], limit: int) -> tuple[float, list[tuple[Any, ...]]]:
    """One runner transaction: _SETUP, HORIZON, then the read from `at`; (read ms, rows)."""
    from django.db import transaction

    from contracts.follow import HORIZON
    from projections import runner

    with transaction.atomic(), runner.raw_cursor() as cursor:
        cursor.execute(runner._SETUP, [*runner.lock_key(LOCK_NAME), STATEMENT_TIMEOUT])
        cursor.execute(HORIZON)
        (horizon,) = cursor.fetchone() or (None,)
        started = time.perf_counter()
        # As the runner executes it: prepared, with the generic plan _SETUP asks for.
        cursor.execute(read.sql, read.arguments(at[0], at[1], str(horizon), limit), binary=True, prepare=True)
        rows = cursor.fetchall()
        return (time.perf_counter() - started) * 1000, rows


def walk(read: Read, limit: int, total: int, budget_s: float) -> Walk:
    """The whole store, batch by batch from checkpoint zero, as a replay reads it."""
    from projections.projection import StoredEvent

    result = Walk(read_ms=[])
    assert result.read_ms is not None
    started = time.perf_counter()
    report = started + 10
    while True:
        try:
            ms, rows = timed_read(read, result.last, limit)
        except psycopg.errors.QueryCanceled:
            result.stopped = f"a read passed the {STATEMENT_TIMEOUT} statement timeout"
            break
        if not rows:
            break
        result.read_ms.append(ms)
        result.batches += 1
        result.events += len(rows)
        last = StoredEvent(*rows[-1])
        result.last = (last.xact_id, last.position)
        now = time.perf_counter()
        if now > report:
            report = now + 10
            log(f"    {read.name}: {result.events:,} of {total:,} events, {result.batches} batches")
        if len(rows) < limit:
            break
        if now - started > budget_s:
            result.stopped = f"stopped after {budget_s:.0f} s (--walk-budget)"
            break
    result.total_ms = (time.perf_counter() - started) * 1000
    return result


def idle(read: Read, at: tuple[str, int], limit: int, runs: int) -> list[float]:
    """The read at the final checkpoint (nothing after it), `runs` times: ms each."""
    timings = []
    for _ in range(runs):
        ms, rows = timed_read(read, at, limit)
        assert not rows, f"{read.name}: {len(rows)} events after the final checkpoint"
        timings.append(ms)
    return timings


@dataclass
class Reads:
    walks: dict[str, Walk]
    idles: dict[str, list[float]]


def measure_reads(reads: Sequence[Read], limit: int, total: int, runs: int, budget_s: float, state: str) -> Reads:
    found = Reads({}, {})
    for read in reads:
        log(f"  {state}: replay walk, {read.name} (batches of {limit:,})")
        result = walk(read, limit, total, budget_s)
        found.walks[read.name] = result
        assert result.read_ms is not None
        log(
            f"    {result.batches} batches, {result.events:,} events, p50 {percentile(result.read_ms, 0.5):.2f} ms,"
            f" p95 {percentile(result.read_ms, 0.95):.2f} ms, total {result.total_ms:,.0f} ms {result.stopped}"
        )
        if not result.stopped and result.events != total:
            log(f"    WARNING: the walk read {result.events:,} events of {total:,}")
    final = next(iter(found.walks.values())).last
    for read in reads:
        timings = idle(read, final, limit, runs)
        found.idles[read.name] = timings
        log(
            f"  {state}: idle read, {read.name}: p50 {percentile(timings, 0.5):.2f} ms, p95 {percentile(timings, 0.95):.2f} ms"
        )
    return found


# --- Storage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Storage:
    events: int
    ledger: int


def storage(conn: psycopg.Connection[Any], engine: str) -> Storage:
    if engine == "timescaledb":
        row = conn.execute("SELECT hypertable_size('tidelog_events')").fetchone()
    else:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('tidelog_events')"
        ).fetchone()
    assert row is not None
    ledger = conn.execute("SELECT pg_total_relation_size('tidelog_event_ids')").fetchone()
    assert ledger is not None
    return Storage(int(row[0] or 0), int(ledger[0]))


# --- TimescaleDB: compression and continuous aggregates --------------------------------------


def compressed_chunks(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'tidelog_events' AND is_compressed"
    ).fetchone()
    return int(row[0]) if row else 0


def compress(conn: psycopg.Connection[Any], older_than_days: int) -> tuple[int, int, float, bool]:
    """Compression on (unless it is already), every chunk older than the days compressed, then
    ANALYZE; return (chunks compressed, chunks in all, seconds, whether the ALTER was run)."""
    enabled = conn.execute(
        "SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = 'tidelog_events'"
    ).fetchone()
    settings = conn.execute(
        "SELECT count(*) FROM timescaledb_information.compression_settings WHERE hypertable_name = 'tidelog_events'"
    ).fetchone()
    altered = not ((enabled and enabled[0]) or (settings and settings[0]))
    if not altered:
        log("  compression already enabled on tidelog_events (by a migration): ALTER skipped")
    else:
        conn.execute(
            "ALTER TABLE tidelog_events SET (timescaledb.compress, timescaledb.compress_segmentby = 'project_id',"
            " timescaledb.compress_orderby = 'xact_id, position')"
        )
    everything = conn.execute("SELECT count(*) FROM show_chunks('tidelog_events')").fetchone()
    chunks = [
        row[0]
        for row in conn.execute(
            "SELECT c::text FROM show_chunks('tidelog_events', older_than => now() - make_interval(days => %s)) c",
            [older_than_days],
        ).fetchall()
    ]
    started = time.perf_counter()
    for n, chunk in enumerate(chunks, 1):
        conn.execute("SELECT compress_chunk(%s::regclass, if_not_compressed => true)", [chunk])
        if n % 5 == 0 or n == len(chunks):
            log(f"  compressed {n} of {len(chunks)} chunks ({time.perf_counter() - started:.1f} s)")
    conn.execute("ANALYZE tidelog_events")
    return len(chunks), int(everything[0] if everything else 0), time.perf_counter() - started, altered


def caggs_create(conn: psycopg.Connection[Any]) -> float:
    started = time.perf_counter()
    for grain, name in CAGGS.items():
        conn.execute(f"DROP MATERIALIZED VIEW IF EXISTS {name} CASCADE")
        conn.execute(
            f"""CREATE MATERIALIZED VIEW {name}
                WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                SELECT project_id, time_bucket(INTERVAL '1 {grain}', "timestamp") AS bucket, event_type,
                       count(*) AS events
                FROM tidelog_events
                GROUP BY project_id, bucket, event_type
                WITH DATA"""
        )
        log(f"  {name} created and materialized ({time.perf_counter() - started:.1f} s)")
    return time.perf_counter() - started


def caggs_drop(conn: psycopg.Connection[Any]) -> None:
    for name in CAGGS.values():
        conn.execute(f"DROP MATERIALIZED VIEW IF EXISTS {name} CASCADE")


# --- Counts ----------------------------------------------------------------------------------

Answer = list[dict[str, Any]]


def cagg_counts(project_id: int, after: datetime, before: datetime) -> Answer:
    """event_counts' answer from the continuous aggregates, over the rollups' very spans."""
    from django.conf import settings
    from django.db import connections

    from query_side.user_sets import spans

    parts = spans(after, before, hourly=False)
    if not parts:
        return []
    selects: list[str] = []
    params: list[Any] = []
    for part in parts:
        selects.append(
            f"SELECT event_type, events FROM {CAGGS[part.grain]} WHERE project_id = %s AND bucket >= %s AND bucket < %s"
        )
        params.extend([project_id, part.start, part.end])
    with connections[settings.QUERY_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            f"""SELECT event_type, sum(events)::int8 AS count FROM ({" UNION ALL ".join(selects)}) s
                GROUP BY event_type ORDER BY count DESC, event_type""",
            params,
        )
        return [{"event_type": event_type, "count": count} for event_type, count in cursor.fetchall()]


def raw_counts(project_id: int, after: datetime, before: datetime) -> Answer:
    """The same from the raw events: [floor_hour(after), ceil_hour(before)), as spans covers."""
    from django.conf import settings
    from django.db import connections

    from query_side.user_sets import ceil_hour, floor_hour

    start, end = floor_hour(after), ceil_hour(before)
    if start >= end:
        return []
    with connections[settings.QUERY_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            """SELECT event_type, count(*)::int8 AS count FROM tidelog_events
               WHERE project_id = %s AND "timestamp" >= %s AND "timestamp" < %s
               GROUP BY event_type ORDER BY count DESC, event_type""",
            [project_id, start, end],
        )
        return [{"event_type": event_type, "count": count} for event_type, count in cursor.fetchall()]


def timed(call: Callable[[], Answer], runs: int) -> tuple[list[float], Answer]:
    timings, answer = [], []
    for _ in range(runs):
        started = time.perf_counter()
        answer = call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, answer


@dataclass
class CountRow:
    days: int
    rollup: list[float]
    types: int
    events: int
    cagg: list[float] | None
    raw: list[float]
    checks: list[str]


def measure_counts(project_id: int, timescale: bool, runs: int, baseline_runs: int) -> list[CountRow]:
    from query_side.user_sets import event_counts

    now = datetime.now(UTC)
    rows = []
    for days in RANGES_DAYS:
        after, before = now - timedelta(days=days), now
        rollup, answer = timed(partial(event_counts, project_id=project_id, after=after, before=before), runs)
        checks = []
        cagg: list[float] | None = None
        from_cagg: Answer = []
        if timescale:
            cagg, from_cagg = timed(partial(cagg_counts, project_id, after, before), runs)
            checks.append("cagg ok" if from_cagg == answer else "cagg MISMATCH")
        raw, from_raw = timed(partial(raw_counts, project_id, after, before), baseline_runs)
        checks.append("raw ok" if from_raw == answer else "raw MISMATCH")
        row = CountRow(days, rollup, len(answer), sum(item["count"] for item in answer), cagg, raw, checks)
        rows.append(row)
        log(
            f"  {days} days: rollup p50 {percentile(rollup, 0.5):.2f} ms"
            + (f", cagg p50 {percentile(cagg, 0.5):.2f} ms" if cagg is not None else "")
            + f", raw p50 {percentile(raw, 0.5):.2f} ms; {row.types} types, {row.events:,} events; {', '.join(checks)}"
        )
        for check in checks:
            if "MISMATCH" in check:
                log(f"  !!! MISMATCH over {days} days: {check}")
                log(f"      rollups: {json.dumps(answer)}")
                log(f"      other:   {json.dumps(from_cagg if check.startswith('cagg') else from_raw)}")
    return rows


# --- Report ----------------------------------------------------------------------------------


def mib(size: int) -> str:
    return f"{size / MIB:,.1f}"


def ratio(after: float, before: float) -> str:
    return f"{after / before:.2f}x" if before else "—"


def print_storage(events: int, before: Storage, after: Storage | None, compressed: str) -> None:
    millions = events / 1_000_000
    print()
    if after is None:
        print("| storage | MiB | MiB per million events |")
        print("|---|---:|---:|")
        print(f"| events table | {mib(before.events)} | {mib(int(before.events / millions))} |")
        print(f"| dedup ledger (tidelog_event_ids) | {mib(before.ledger)} | {mib(int(before.ledger / millions))} |")
        return
    print(f"| storage | uncompressed MiB | per M events | compressed MiB ({compressed}) | per M events | compressed / uncompressed |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for name, b, a in (
        ("events table (hypertable_size)", before.events, after.events),
        ("dedup ledger (tidelog_event_ids)", before.ledger, after.ledger),
    ):
        print(f"| {name} | {mib(b)} | {mib(int(b / millions))} | {mib(a)} | {mib(int(a / millions))} | {ratio(a, b)} |")


def read_cells(reads: Reads | None, name: str, kind: str) -> tuple[str, str, str, str, float, float]:
    """(batches, p50, p95, total) as text and p50, total as numbers."""
    if reads is None:
        return "", "", "", "", math.nan, math.nan
    if kind == "walk":
        result = reads.walks[name]
        assert result.read_ms is not None
        p50, p95 = percentile(result.read_ms, 0.5), percentile(result.read_ms, 0.95)
        batches = f"{result.batches:,}" + (f" ({result.stopped})" if result.stopped else "")
        return batches, f"{p50:,.2f}", f"{p95:,.2f}", f"{result.total_ms:,.0f}", p50, result.total_ms
    timings = reads.idles[name]
    p50, p95 = percentile(timings, 0.5), percentile(timings, 0.95)
    return f"{len(timings)} runs", f"{p50:,.2f}", f"{p95:,.2f}", "—", p50, math.nan


def print_reads(names: list[str], plain: Reads, compressed: Reads | None, limit: int) -> None:
    print()
    if compressed is None:
        print(f"| runner read (batches of {limit:,}) | batches / runs | p50 ms | p95 ms | total ms |")
        print("|---|---:|---:|---:|---:|")
        for kind, label in (("walk", "replay walk"), ("idle", "idle read")):
            for name in names:
                batches, p50, p95, total, _, _ = read_cells(plain, name, kind)
                print(f"| {label}, {name} | {batches} | {p50} | {p95} | {total} |")
        return
    print(
        f"| runner read (batches of {limit:,}) | uncompressed: batches / runs | p50 ms | p95 ms | total ms"
        " | compressed: batches / runs | p50 ms | p95 ms | total ms | compressed / uncompressed: p50, total |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, label in (("walk", "replay walk"), ("idle", "idle read")):
        for name in names:
            b1, p50a, p95a, ta, n50a, nta = read_cells(plain, name, kind)
            b2, p50b, p95b, tb, n50b, ntb = read_cells(compressed, name, kind)
            ratios = ratio(n50b, n50a) + ("" if math.isnan(nta) else ", " + ratio(ntb, nta))
            print(f"| {label}, {name} | {b1} | {p50a} | {p95a} | {ta} | {b2} | {p50b} | {p95b} | {tb} | {ratios} |")


def print_counts(rows: list[CountRow], timescale: bool, runs: int, baseline_runs: int) -> None:
    print()
    head = f"| event counts, last N days ({runs} runs; raw: {baseline_runs}) | types | events | rollups p50 ms | p95 ms"
    if timescale:
        head += " | caggs p50 ms | p95 ms"
    print(head + " | baseline: raw SQL p50 ms | p95 ms | same answer |")
    print("|---" + "|---:" * (8 if timescale else 6) + "|---|")
    for row in rows:
        line = (
            f"| {row.days} day{'s' if row.days > 1 else ''} | {row.types} | {row.events:,}"
            f" | {percentile(row.rollup, 0.5):,.2f} | {percentile(row.rollup, 0.95):,.2f}"
        )
        if row.cagg is not None:
            line += f" | {percentile(row.cagg, 0.5):,.2f} | {percentile(row.cagg, 0.95):,.2f}"
        line += f" | {percentile(row.raw, 0.5):,.2f} | {percentile(row.raw, 0.95):,.2f} | {', '.join(row.checks)} |"
        print(line)
    if any("MISMATCH" in check for row in rows for check in row.checks):
        print()
        print("!!! MISMATCH: an answer differs from the rollups' (details on stderr) !!!")


# --- Main ------------------------------------------------------------------------------------


@contextmanager
def autocommit(url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"postgres://postgres@127.0.0.1:5439/{DB_PREFIX}")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--types", type=int, default=50, help="event types")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--jobs", type=int, default=2, help="generate_events' writers")
    parser.add_argument("--runs", type=int, default=50, help="idle reads and event counts per figure")
    parser.add_argument("--baseline-runs", type=int, default=10, help="raw SQL counts per figure")
    parser.add_argument("--compress-after-days", type=int, default=3, help="compress chunks older than this")
    parser.add_argument("--walk-budget", type=float, default=600, help="seconds a replay walk may take")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    args = parser.parse_args()

    name = urlsplit(args.database_url).path.lstrip("/")
    if not name.startswith(DB_PREFIX) or not re.fullmatch(r"\w+", name):
        parser.error(f"the database's name must start with {DB_PREFIX} (it is dropped and made anew): {name!r}")

    env = dict(os.environ)
    env["DATABASE_URL"] = args.database_url
    env.setdefault("DJANGO_SECRET_KEY", "x")
    env["DJANGO_SETTINGS_MODULE"] = "core.settings"
    env["PYTHONUNBUFFERED"] = "1"
    # The runner logs every batch at INFO: 1,400 lines at 1M events. Its summary is enough.
    env.setdefault("TIDELOG_LOG_LEVEL", "WARNING")
    env.pop("QUERY_DATABASE_URL", None)
    timings: dict[str, float] = {}

    log(f"fresh database {name} on {urlsplit(args.database_url).netloc}")
    fresh_database(args.database_url, name)
    try:
        run(args, env, name, timings)
    finally:
        if not args.keep:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # Django not set up yet
                pass
            log(f"dropping {name}")
            drop_database(args.database_url, name)


def run(args: argparse.Namespace, env: dict[str, str], name: str, timings: dict[str, float]) -> None:
    _, timings["migrate"] = manage(env, "migrate", "-v0")
    created, _ = manage(env, "create_project", "bench", "--json")
    project_id = int(json.loads(created)["project_id"])
    log(f"generate_events: {args.events:,} events, {args.days} days, {args.users:,} users")
    _, timings["generate_events"] = manage(
        env, "generate_events", "--project", str(project_id), "--events", str(args.events), "--days", str(args.days),
        "--users", str(args.users), "--event-types", str(args.types), "--seed", str(args.seed), "--jobs", str(args.jobs),
    )  # fmt: skip
    log(f"  generate_events (with its ANALYZE): {timings['generate_events']:.1f} s")
    log("projections run --once")
    _, timings["projections"] = manage(env, "projections", "run", "--once")
    log(f"  projections run --once: {timings['projections']:.1f} s")

    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    from command_side.event_store import engine as store_engine
    from projections import runner

    engine = store_engine()
    timescale = engine == "timescaledb"
    limit = int(settings.TIDELOG_PROJECTION_BATCH)
    bench_url = args.database_url

    with autocommit(bench_url) as conn:
        row = conn.execute("SELECT count(*) FROM tidelog_events").fetchone()
        total = int(row[0]) if row else 0
        before = storage(conn, engine)
        if timescale and compressed_chunks(conn):
            log(f"  WARNING: {compressed_chunks(conn)} chunks compressed already: the uncompressed figures are not")
    log(f"engine {engine}: {total:,} events; events table {mib(before.events)} MiB, ledger {mib(before.ledger)} MiB")

    current_sql = runner._READ_EVENTS
    order = runner_argument_order()
    current = Read("current", current_sql, read_arguments(current_sql, order))
    legacy_sql = old_read(current_sql)
    reads = [current]
    bound = legacy_sql != current_sql
    if bound:
        reads.append(Read("old, no lower bound", legacy_sql, read_arguments(legacy_sql, None)))
    log(
        f"runner read: {current_sql.count('%s')} arguments, {'[' + ', '.join(order) + ']' if order else 'by count'}"
        f"; lower bound {'present: the old read measured beside it' if bound else 'absent: current read is the old one'}"
    )

    log("runner reads, uncompressed")
    plain = measure_reads(reads, limit, total, args.runs, args.walk_budget, "uncompressed")

    compressed: Reads | None = None
    after: Storage | None = None
    compressed_text = ""
    if timescale:
        log(f"compressing chunks older than {args.compress_after_days} days")
        with autocommit(bench_url) as conn:
            done, chunks, timings["compress"], altered = compress(conn, args.compress_after_days)
            after = storage(conn, engine)
            stats = conn.execute(
                "SELECT coalesce(sum(before_compression_total_bytes), 0), coalesce(sum(after_compression_total_bytes), 0)"
                " FROM hypertable_compression_stats('tidelog_events')"
            ).fetchone()
        compressed_text = f"{done} of {chunks} chunks" + ("" if altered else "; layout set by migrate, ALTER skipped")
        log(f"  {done} of {chunks} chunks compressed in {timings['compress']:.1f} s (with ANALYZE)")
        if stats:
            timings["chunks_before"], timings["chunks_after"] = float(stats[0]), float(stats[1])
        log("runner reads, compressed")
        compressed = measure_reads(reads, limit, total, args.runs, args.walk_budget, "compressed")

    counts: list[CountRow] = []
    with autocommit(bench_url) as conn:
        try:
            if timescale:
                log("continuous aggregates")
                timings["caggs"] = caggs_create(conn)
                conn.execute("ANALYZE")
            log(f"event counts over {', '.join(str(d) for d in RANGES_DAYS)} days")
            counts = measure_counts(project_id, timescale, args.runs, args.baseline_runs)
        finally:
            if timescale:
                caggs_drop(conn)
                log("continuous aggregates dropped")

    print()
    print(
        f"Tidelog event store on {engine} ({urlsplit(bench_url).netloc}), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC,"
        f" {os.cpu_count()} cores (shared): {total:,} events over {args.days} days, {args.users:,} users,"
        f" {args.types} event types"
    )
    print(
        f"load: migrate {timings['migrate']:.1f} s; generate_events {timings['generate_events']:.1f} s"
        f" ({total / timings['generate_events']:,.0f} events/s, with its ANALYZE); projections run --once"
        f" {timings['projections']:.1f} s ({total / timings['projections']:,.0f} events/s)"
        + (f"; compression {timings['compress']:.1f} s; caggs {timings['caggs']:.1f} s" if timescale else "")
    )
    print_storage(total, before, after, compressed_text)
    if "chunks_before" in timings:
        print(
            f"compressed chunks alone (hypertable_compression_stats): {mib(int(timings['chunks_before']))} MiB"
            f" -> {mib(int(timings['chunks_after']))} MiB"
            f" ({ratio(timings['chunks_before'], timings['chunks_after'])} smaller)"
        )
    print_reads([read.name for read in reads], plain, compressed, limit)
    if not bound:
        print("(runner._READ_EVENTS has no `AND xact_id >= %s::xid8`: the current read is the old one)")
    print_counts(counts, timescale, args.runs, args.baseline_runs)


if __name__ == "__main__":
    main()
