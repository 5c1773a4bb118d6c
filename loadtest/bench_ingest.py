#!/usr/bin/env python
"""Ingestion benchmark: run by hand (`make bench`), prints figures; not a test.

One run on this machine with everything on it (command API, Dramatiq worker, scheduler,
projection runner, PostgreSQL, Redis, and this load generator, all sharing the cores):

  1. batch/   : events/s accepted at 100 events a request, p50/p99 accept latency
  2. durable  : events/s stored in the event store over the batch phase and its drain tail
  3. capture/ : requests/s of single events, p50/p99
  3b. PostHog /batch/ : events/s accepted at 100 events a request in posthog-python's shape
                (docs/posthog-compat.md), beside batch/ with the same events in Tidelog's shape
  4. lag      : with projections on, a steady --lag-rate events/s (default 10,000) of batches,
                and probe events among them: accept -> visible in the query API's event_counts,
                p50 / p99 / max
  5. ceiling  : the same number of events by raw binary COPY straight into the same table

It uses its own database (tidelog_bench, dropped and made anew) and Redis prefix.
The load generator is plain asyncio over keep-alive sockets with request bodies built before
the clock starts, so it measures the server, not the client's JSON encoding.
"""

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH_DB = "tidelog_bench"
EVENT_TYPES = [
    "app_opened",
    "screen_viewed",
    "button_tapped",
    "purchase_completed",
    "app_backgrounded",
]


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def services_env() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(ROOT / "bin" / "ensure-services")],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export ") :].partition("=")
            env[name] = value
    base = env.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tidelog")
    env["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + BENCH_DB
    env["TIDELOG_REDIS_PREFIX"] = f"tidelog-bench-{os.getpid()}"
    env["PYTHONUNBUFFERED"] = "1"
    # Metrics counted across processes, as under bin/tidelog-run (observability/metrics.py).
    env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tidelog-bench-metrics-")
    # A throwaway stack: any key will do, but one it must have (DEBUG is off, as in production).
    env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    env.setdefault("TIDELOG_LOG_LEVEL", "WARNING")
    return env


def psql(env: dict[str, str], sql: str, db: str | None = None) -> str:
    url = env["DATABASE_URL"] if db is None else env["DATABASE_URL"].rsplit("/", 1)[0] + "/" + db
    return subprocess.run(["psql", url, "-tAqc", sql], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def fresh_database(env: dict[str, str], name: str) -> dict:
    """Drop and create database `name`, point env's DATABASE_URL at it, migrate it and make one
    project, 'bench'; return create_project's JSON (project_id, api_key, personal_api_key)."""
    env["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0] + "/" + name
    log("fresh database " + name)
    psql(env, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", db="postgres")
    psql(env, f"CREATE DATABASE {name}", db="postgres")
    py = str(BIN / "python")
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    created = subprocess.run([py, "manage.py", "create_project", "bench", "--json"], cwd=ROOT, env=env, check=True,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    return json.loads(created.stdout)


def event_json(distinct_id: str, session_id: str, now: str) -> dict:
    return {
        "event_type": EVENT_TYPES[hash(distinct_id + session_id) % len(EVENT_TYPES)],
        "distinct_id": distinct_id,
        "uuid": str(uuid.uuid4()),
        "timestamp": now,
        "session_id": session_id,
        "app_version": "3.4.1",
        "os_name": "iOS",
        "os_version": "18.1",
        "device_id": distinct_id + "-device",
        "properties": {"$screen_name": "Checkout", "cart_items": 3, "ab_group": "b"},
    }


def posthog_event_json(distinct_id: str, session_id: str, now: str) -> dict:
    """The same event as event_json, as posthog-python sends it (Tidelog's columns as PostHog's
    properties, the SDK's own properties beside them)."""
    event = event_json(distinct_id, session_id, now)
    properties = {
        **event["properties"], "$session_id": session_id, "$app_version": event["app_version"],
        "$os": event["os_name"], "$os_version": event["os_version"], "$device_id": event["device_id"],
        "$lib": "posthog-python", "$lib_version": "7.91.1", "$geoip_disable": True,
    }  # fmt: skip
    return {"event": event["event_type"], "distinct_id": distinct_id, "uuid": event["uuid"], "timestamp": now,
            "properties": properties}  # fmt: skip


def rich_event_json(distinct_id: str, session_id: str, now: str) -> dict:
    """event_json with posthog_event_json's properties: the same content, Tidelog's shape."""
    return {
        **event_json(distinct_id, session_id, now),
        "properties": posthog_event_json(distinct_id, session_id, now)["properties"],
    }


def build_requests(
    path: str, key: str, count: int, per_request: int, *, posthog: bool = False, rich: bool = False
) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    requests = []
    for i in range(count):
        user = f"user-{i % 5000}"
        if posthog:
            events = [posthog_event_json(user, f"s-{i % 9000}", now) for _ in range(per_request)]
            body = {"batch": events, "historical_migration": False, "sent_at": now, "api_key": key}
        elif rich:
            body = {"events": [rich_event_json(user, f"s-{i % 9000}", now) for _ in range(per_request)], "sent_at": now}
        elif per_request == 1:
            body = {**event_json(user, f"s-{i % 9000}", now), "sent_at": now}
        else:
            body = {
                "events": [event_json(user, f"s-{i % 9000}", now) for _ in range(per_request)],
                "sent_at": now,
            }
        payload = json.dumps(body, separators=(",", ":")).encode()
        authorization = "" if posthog else f"Authorization: Bearer {key}\r\n"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{authorization}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        requests.append(head + payload)
    return requests


async def one_connection(port: int, requests: list[bytes], deadline: float, latencies: list[float], codes: dict) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        while requests and time.perf_counter() < deadline:
            request = requests.pop()
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            codes[status] = codes.get(status, 0) + 1
            sent += 1
    finally:
        writer.close()
    return sent


async def load(port: int, requests: list[bytes], seconds: float, connections: int) -> tuple[float, list[float], dict]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(one_connection(port, requests, deadline, latencies, codes) for _ in range(connections)))
    return time.perf_counter() - started, latencies, codes


async def paced(port: int, requests: list[bytes], seconds: float, rate: float, connections: int) -> dict:
    """Send `rate` requests/s spread over `connections`, whatever the answers' speed (an open
    model, as a fleet of phones is): each connection keeps its own schedule."""
    codes: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def one(offset: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        due = time.perf_counter() + offset
        try:
            while requests and due < deadline:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                due += connections / rate
                writer.write(requests.pop())
                status, _ = await read_response(reader)
                codes[status] = codes.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(one(i / rate) for i in range(connections)))
    return codes


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return int(head[9:12]), (await reader.readexactly(length) if length else b"")


async def lag_probes(
    key: str, personal_key: str, seconds: float, tail: float, every: float = 0.1
) -> tuple[list[float], int]:
    """Every `every` s send one event of a type of its own; poll the query API's event_counts
    every 20 ms; return each probe's accept-to-visible seconds, and how many never showed."""
    accepted: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop_sending = time.perf_counter() + seconds

    async def send() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", 8000)
        n = 0
        while time.perf_counter() < stop_sending:
            name = f"lag_probe_{n}"
            n += 1
            body = json.dumps({"events": [{"event_type": name, "distinct_id": "prober", "uuid": str(uuid.uuid4())}]})
            writer.write(
                f"POST /api/v1/analytics/batch/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
            )
            status, _ = await read_response(reader)
            if status == 200:
                accepted[name] = time.perf_counter()
            await asyncio.sleep(every)
        writer.close()

    async def poll() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", 8001)
        request = (
            "GET /api/v1/analytics/admin/events/event_counts/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {personal_key}\r\n\r\n"
        ).encode()
        while time.perf_counter() < stop_sending + tail:
            if time.perf_counter() > stop_sending and set(accepted) <= set(seen):
                break
            writer.write(request)
            status, body = await read_response(reader)
            now = time.perf_counter()
            if status == 200:
                for row in json.loads(body)["results"]:
                    if row["event_type"].startswith("lag_probe_"):
                        seen.setdefault(row["event_type"], now)
            await asyncio.sleep(0.02)
        writer.close()

    await asyncio.gather(send(), poll())
    lags = [seen[name] - at for name, at in accepted.items() if name in seen]
    return lags, len(accepted) - len(lags)


def settle(env: dict[str, str], accepted: int, projections: bool, limit: float = 300) -> None:
    """Wait until `accepted` events are stored and, with projections, every projection has
    applied them: the next phase starts from a quiet system."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if stored(env) >= accepted and (
            not projections
            or int(psql(env, "SELECT coalesce(min(events_applied), 0) FROM projection_checkpoints") or 0) >= accepted
        ):
            return
        time.sleep(0.2)


def batch_phase(env: dict[str, str], requests: list[bytes], seconds: float, connections: int) -> dict:
    """Batches of 100 for `seconds`: accepted events/s, latency, and how many were stored."""
    before = stored(env)
    elapsed, latencies, codes = asyncio.run(load(8000, requests, seconds, connections))
    accepted = codes.get(200, 0) * 100
    deadline = time.perf_counter() + 120
    while stored(env) < before + accepted and time.perf_counter() < deadline:
        time.sleep(0.1)
    return {"events_per_s": accepted / elapsed, "p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99),
            "codes": codes, "accepted": accepted, "stored": stored(env) - before}  # fmt: skip


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def stored(env: dict[str, str]) -> int:
    return int(psql(env, "SELECT count(*) FROM tidelog_events"))


def stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each child's process group, then SIGKILL to any still there after 15 s."""
    for child in children:
        os.killpg(child.pid, signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on :{port}")


@contextlib.contextmanager
def query_api(env: dict[str, str], port: int) -> Iterator[None]:
    """The query API as `make run` serves it (granian, WSGI) on `port` for the block. Refuses
    when something already listens there: an earlier run's orphaned server would be measured."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"something already listens on :{port}: stop it first")
    server = subprocess.Popen(
        [str(BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--blocking-threads", "4", "--no-ws", "--log-level", "warning",
         "core.wsgi_query:application"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        wait_port(port)
        yield
    finally:
        server.terminate()
        server.wait(timeout=15)


def copy_ceiling(env: dict[str, str], count: int) -> float:
    """The same kind of events by raw binary COPY into the same table: the store's ceiling."""
    import psycopg

    sys.path.insert(0, str(ROOT))
    from contracts.follow import ANNOUNCE_APPENDER
    from contracts.schema import APPENDED, EVENTS

    now = datetime.now(UTC)
    props = json.dumps({"$screen_name": "Checkout", "cart_items": 3, "ab_group": "b"})
    rows = [
        (999_999, uuid.uuid4(), EVENT_TYPES[i % 5], f"user-{i % 5000}", now, now, now, now, 0,
         f"s-{i % 9000}", "d", "3.4.1", "iOS", "18.1", props)
        for i in range(count)
    ]  # fmt: skip
    with psycopg.connect(env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        cur.execute(ANNOUNCE_APPENDER)  # as every appender must (contracts/follow.py)
        columns = ", ".join(column.sql for column in APPENDED)
        with cur.copy(f"COPY {EVENTS} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([column.type for column in APPENDED])
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--batch-connections", type=int, default=16)
    parser.add_argument("--capture-connections", type=int, default=32)
    parser.add_argument("--command-workers", type=int, default=2)
    parser.add_argument("--worker-processes", type=int, default=1, help="Dramatiq worker processes")
    parser.add_argument("--worker-threads", type=int, default=2, help="Dramatiq threads a process")
    parser.add_argument("--no-projections", action="store_true", help="leave the projection runner out")
    parser.add_argument("--lag-rate", type=float, default=10_000, help="events/s offered in the lag phase")
    parser.add_argument("--interface", choices=["rsgi", "wsgi"], default="rsgi",
                        help="the command API's server interface: rsgi as make run serves it, wsgi to compare")  # fmt: skip
    args = parser.parse_args()

    env = services_env()
    project = fresh_database(env, BENCH_DB)
    py = str(BIN / "python")
    procs = {
        # As bin/tidelog-run starts it (RSGI: bodies read on the event loop within their deadline).
        "command-api": [str(BIN / "granian"), "--interface", args.interface, "--host", "127.0.0.1", "--port", "8000",
                        "--workers", str(args.command_workers), "--no-ws", "--backlog", "2048",
                        "--backpressure", "1024", "--log-level", "warning",  # 1024: TIDELOG_COMMAND_MAX_CONNECTIONS
                        *(["--blocking-threads", "1"] if args.interface == "wsgi" else []),
                        f"core.{args.interface}_command:application"],
        "worker": [str(BIN / "dramatiq"), "command_side.worker", "--processes", str(args.worker_processes),
                   "--threads", str(args.worker_threads)],
        "scheduler": [py, "manage.py", "schedule_drains"],
    }  # fmt: skip
    if not args.no_projections:
        procs["projections"] = [py, "manage.py", "projections", "run"]
        procs["query-api"] = [str(BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", "8001",
                              "--workers", "1", "--no-ws", "--log-level", "warning", "core.wsgi_query:application"]  # fmt: skip
    children = [subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True) for argv in procs.values()]
    try:
        wait_port(8000)
        time.sleep(1.5)
        key = project["api_key"]
        # Enough requests that the clock, not the supply, ends each phase.
        log("building request bodies")
        batch_requests = build_requests("/api/v1/analytics/batch/", key, int(args.seconds * 600), 100)
        capture_requests = build_requests("/api/v1/analytics/capture/", key, int(args.seconds * 8000), 1)
        posthog_requests = build_requests("/batch/", key, int(args.seconds * 600), 100, posthog=True)
        rich_requests = build_requests("/api/v1/analytics/batch/", key, int(args.seconds * 600), 100, rich=True)

        log(f"batch/ for {args.seconds}s, {args.batch_connections} connections, 100 events a request")
        t0 = time.perf_counter()
        elapsed, latencies, codes = asyncio.run(load(8000, batch_requests, args.seconds, args.batch_connections))
        accepted_events = codes.get(200, 0) * 100
        stored_at_end = stored(env)
        while stored(env) < accepted_events and time.perf_counter() - t0 < args.seconds + 120:
            time.sleep(0.1)
        durable_elapsed = time.perf_counter() - t0
        all_stored = stored(env)
        batch = {
            "events_per_s": accepted_events / elapsed,
            "p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99), "codes": codes,
            "durable_per_s": all_stored / durable_elapsed,
            "stored_during_load_per_s": stored_at_end / elapsed,
            "stored": all_stored, "accepted": accepted_events,
        }  # fmt: skip
        log(f"batch: {batch}")
        if not args.no_projections:
            # Each phase starts from a quiet system: let the projections finish the batch phase.
            caught_up_started = time.perf_counter()
            while time.perf_counter() - caught_up_started < 300:
                applied = psql(env, "SELECT coalesce(min(events_applied), 0) FROM projection_checkpoints")
                if int(applied or 0) >= batch["stored"]:
                    break
                time.sleep(0.2)
            batch["projections_caught_up_s"] = time.perf_counter() - t0
            log(f"projections caught up {batch['projections_caught_up_s']:.1f}s after the batch phase began")

        log(f"capture/ for {args.seconds}s, {args.capture_connections} connections, 1 event a request")
        before = stored(env)
        elapsed, latencies, codes = asyncio.run(load(8000, capture_requests, args.seconds, args.capture_connections))
        capture = {"requests_per_s": codes.get(200, 0) / elapsed, "p50_ms": pct(latencies, 50),
                   "p99_ms": pct(latencies, 99), "codes": codes}  # fmt: skip
        deadline = time.perf_counter() + 120
        while stored(env) < before + codes.get(200, 0) and time.perf_counter() < deadline:
            time.sleep(0.1)
        capture["stored"] = stored(env) - before
        log(f"capture: {capture}")

        # PostHog's shape beside Tidelog's with the same events (posthog-python's properties), each
        # from a settled system, one after the other.
        settle(env, stored(env), not args.no_projections)
        log(f"batch/ with posthog-python's properties for {args.seconds}s, {args.batch_connections} connections")
        rich = batch_phase(env, rich_requests, args.seconds, args.batch_connections)
        log(f"rich: {rich}")
        settle(env, stored(env), not args.no_projections)
        log(f"PostHog /batch/ for {args.seconds}s, {args.batch_connections} connections, 100 events a request")
        posthog = batch_phase(env, posthog_requests, args.seconds, args.batch_connections)
        log(f"posthog: {posthog}")

        lag: dict = {}
        if not args.no_projections:
            wait_port(8001)
            rate = args.lag_rate / 100
            log(f"lag: {args.lag_rate:,.0f} events/s offered for {args.seconds}s, probes every 0.1 s")
            lag_requests = build_requests("/api/v1/analytics/batch/", key, int(args.seconds * rate) + 10, 100)

            async def lag_phase() -> tuple[dict, list[float], int]:
                load_codes, (lags, unseen) = await asyncio.gather(
                    paced(8000, lag_requests, args.seconds, rate, 8),
                    lag_probes(key, project["personal_api_key"], args.seconds, tail=30),
                )
                return load_codes, lags, unseen

            lag_codes, lags, unseen = asyncio.run(lag_phase())
            lag = {"codes": lag_codes, "probes": len(lags), "unseen": unseen, "p50_ms": pct(lags, 50),
                   "p99_ms": pct(lags, 99), "max_ms": max(lags, default=float("nan")) * 1000}  # fmt: skip
            log(f"lag: {lag}")
    finally:
        stop(children)

    import redis

    bench_redis = redis.Redis.from_url(env.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    for key in bench_redis.scan_iter(match=f"{env['TIDELOG_REDIS_PREFIX']}:*", count=1000):
        bench_redis.delete(key)

    log("ceiling: raw binary COPY of the same number of events into tidelog_events")
    ceiling = copy_ceiling(env, min(batch["accepted"], 500_000) or 100_000)

    print()
    print(f"Tidelog ingestion benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"{args.command_workers} command-API workers ({args.interface}), projections {'off' if args.no_projections else 'on'}")  # fmt: skip
    print("| measure | result | target |")
    print("|---|---|---|")
    print(f"| batch/ accepted (100 events a request) | {batch['events_per_s']:,.0f} events/s | >= 30,000 |")
    print(f"| batch/ accept latency p50 / p99 | {batch['p50_ms']:.1f} / {batch['p99_ms']:.1f} ms | |")
    print(f"| durably stored, batch phase incl. drain tail | {batch['durable_per_s']:,.0f} events/s | >= 20,000 |")
    print(f"| stored while accepting (during the phase) | {batch['stored_during_load_per_s']:,.0f} events/s | |")
    print(f"| capture/ accepted | {capture['requests_per_s']:,.0f} requests/s | >= 3,000 |")
    print(f"| capture/ latency p50 / p99 | {capture['p50_ms']:.1f} / {capture['p99_ms']:.1f} ms | p99 < 50 ms |")
    print(f"| batch/, the same events as PostHog's below (Tidelog's shape) | {rich['events_per_s']:,.0f} events/s, "
          f"p50 / p99 {rich['p50_ms']:.1f} / {rich['p99_ms']:.1f} ms | |")  # fmt: skip
    print(f"| PostHog /batch/ (100 events a request, posthog-python's shape) | {posthog['events_per_s']:,.0f} events/s "
          f"({posthog['events_per_s'] / rich['events_per_s']:.0%} of the same in batch/), p50 / p99 "
          f"{posthog['p50_ms']:.1f} / {posthog['p99_ms']:.1f} ms | |")  # fmt: skip
    print(f"| ceiling: raw binary COPY into tidelog_events | {ceiling:,.0f} rows/s | |")
    if lag:
        print(f"| accept -> visible in the query API at {args.lag_rate:,.0f} events/s, p50 / p99 / max "
              f"({lag['probes']} probes, {lag['unseen']} unseen) | {lag['p50_ms']:.0f} / {lag['p99_ms']:.0f} / "
              f"{lag['max_ms']:.0f} ms | |")  # fmt: skip
    if "projections_caught_up_s" in batch:
        rate = batch["stored"] / batch["projections_caught_up_s"]
        print(f"| read models current (every projection), batch phase incl. tail | {rate:,.0f} events/s | |")
    print(f"| stored exactly: batch {batch['stored']:,} of {batch['accepted']:,} accepted; "
          f"capture {capture['stored']:,} of {capture['codes'].get(200, 0):,}; "
          f"rich {rich['stored']:,} of {rich['accepted']:,}; PostHog {posthog['stored']:,} of {posthog['accepted']:,}"
          " | | |")  # fmt: skip
    print(f"| non-200 answers: batch {dict((k, v) for k, v in batch['codes'].items() if k != 200)}, "
          f"capture {dict((k, v) for k, v in capture['codes'].items() if k != 200)}, "
          f"rich {dict((k, v) for k, v in rich['codes'].items() if k != 200)}, "
          f"PostHog {dict((k, v) for k, v in posthog['codes'].items() if k != 200)} | | |")  # fmt: skip


if __name__ == "__main__":
    main()
