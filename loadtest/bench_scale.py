#!/usr/bin/env python
"""Scale-out benchmark: run by hand, prints figures; not a test.

The stateless tiers as docker-compose.yml scales them, on this machine: N command-API processes
(granian WSGI, one worker each, as `--scale command-api=N` makes) behind an nginx upstream, and
N Dramatiq worker processes (2 threads each, TIDELOG_DRAIN_PARALLELISM = 2N), for N = 1, 2, 4.
For each N, batches of 100 events are offered through nginx for --seconds, then the drain tail
is waited for:

  accepted : events/s the command APIs accepted (answered 200)
  stored   : events/s durably in the event store, the tail included
  direct   : the same batches straight to one granian with N workers (its own processes), the
             baseline without nginx

Projections are off (bench_ingest.py measures them). Needs nginx (Debian's `nginx-light` will
do; this config avoids `server ... resolve`, which needs 1.27.3): apt-get install nginx-light.
Uses the tidelog_bench database and its own Redis prefix, like bench_ingest.py.

    .venv/bin/python loadtest/bench_scale.py [--seconds 15] [--scales 1,2,4]
"""

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ingest as bench

NGINX_PORT = 8080


def nginx_conf(ports: list[int], folder: Path) -> Path:
    """docker/nginx.conf's upstream and proxy settings, for fixed local ports."""
    servers = "\n".join(f"        server 127.0.0.1:{port};" for port in ports)
    conf = folder / "nginx.conf"
    conf.write_text(f"""
worker_processes auto;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    client_max_body_size 5m;
    client_body_buffer_size 1m;
    upstream command_api {{
{servers}
        keepalive 64;
        keepalive_timeout 20s;
    }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header X-Request-ID $request_id;
    proxy_request_buffering on;
    server {{
        listen {NGINX_PORT};
        location / {{ proxy_pass http://command_api; }}
    }}
}}
""")
    return conf


def run_scale(env: dict[str, str], key: str, scale: int, seconds: float, connections: int, direct: bool) -> dict:
    """One measurement at `scale`: through nginx to `scale` one-worker APIs, or `direct` to one
    granian with `scale` workers."""
    env = {**env, "TIDELOG_DRAIN_PARALLELISM": str(2 * scale), "TIDELOG_COMMAND_INTERFACE": "wsgi"}
    granian = [str(bench.BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--no-ws",
               "--blocking-threads", "1", "--backlog", "2048", "--backpressure", "1024", "--log-level", "warning"]  # fmt: skip
    py = str(bench.BIN / "python")
    argvs = [
        [str(bench.BIN / "dramatiq"), "command_side.worker", "--processes", str(scale), "--threads", "2"],
        [py, "manage.py", "schedule_drains"],
    ]
    ports = [8100 + n for n in range(scale)]
    folder = Path(tempfile.mkdtemp(prefix="tidelog-scale-"))
    if direct:
        argvs.append([*granian, "--port", "8000", "--workers", str(scale), "core.wsgi_command:application"])
        target = 8000
    else:
        argvs += [[*granian, "--port", str(port), "--workers", "1", "core.wsgi_command:application"] for port in ports]
        argvs.append(["nginx", "-c", str(nginx_conf(ports, folder)), "-g", "daemon off;"])
        target = NGINX_PORT
    children = [subprocess.Popen(argv, cwd=bench.ROOT, env=env, start_new_session=True) for argv in argvs]
    try:
        for port in [8000] if direct else [*ports, NGINX_PORT]:
            bench.wait_port(port)
        time.sleep(1.5)
        requests = bench.build_requests("/api/v1/analytics/batch/", key, int(seconds * 800), 100)
        before = bench.stored(env)
        started = time.perf_counter()
        elapsed, latencies, codes = asyncio.run(bench.load(target, requests, seconds, connections))
        accepted = codes.get(200, 0) * 100
        while bench.stored(env) < before + accepted and time.perf_counter() - started < seconds + 120:
            time.sleep(0.1)
        stored = bench.stored(env) - before
        return {"accepted_per_s": accepted / elapsed, "stored_per_s": stored / (time.perf_counter() - started),
                "p99_ms": bench.pct(latencies, 99), "codes": codes, "accepted": accepted, "stored": stored}  # fmt: skip
    finally:
        bench.stop(children)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--scales", default="1,2,4")
    args = parser.parse_args()
    if shutil.which("nginx") is None:
        raise SystemExit("needs nginx: apt-get install nginx-light")
    env = bench.services_env()
    project = bench.fresh_database(env, bench.BENCH_DB)
    results = {}
    for scale in (int(s) for s in args.scales.split(",")):
        for direct in (False, True):
            what = f"{scale} worker process(es), " + ("one granian, direct" if direct else "behind nginx")
            bench.log(f"{what}: {args.seconds}s of batches of 100")
            results[(scale, direct)] = run_scale(env, project["api_key"], scale, args.seconds, args.connections, direct)
            bench.log(f"{what}: {results[(scale, direct)]}")
    print()
    print(f"Tidelog scale-out, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, projections off")
    print("| processes (command API + Dramatiq) | through nginx: accepted / stored events/s | one granian direct: accepted / stored events/s | exactly stored |")  # fmt: skip
    print("|---|---|---|---|")
    for scale in sorted({s for s, _ in results}):
        via, direct = results[(scale, False)], results[(scale, True)]
        exact = all(r["stored"] == r["accepted"] for r in (via, direct))
        print(f"| {scale} + {scale} | {via['accepted_per_s']:,.0f} / {via['stored_per_s']:,.0f} | "
              f"{direct['accepted_per_s']:,.0f} / {direct['stored_per_s']:,.0f} | {'yes' if exact else 'NO'} |")  # fmt: skip


if __name__ == "__main__":
    main()
