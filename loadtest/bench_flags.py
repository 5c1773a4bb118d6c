#!/usr/bin/env python
"""Flag evaluation benchmark: run by hand, prints figures; not a test.

`for_user` with 50 flags defined in one project (10 multivariate, 20 with property conditions,
20 plain rollouts), each request a different user with person properties, served two ways in
the same run, one after the other, on the same machine with everything on it:

  tidelog   the command API as `make run` serves it (granian, --interface rsgi by default):
            definitions from the in-process cache, no database query
  baseline  the same evaluation code behind one ORM query per request for the definitions
            (loadtest/flags_orm_baseline.py, granian WSGI, the same worker count)

Each side gets the same requests over keep-alive connections from the asyncio load generator
of bench_ingest.py; figures are requests/s and p50/p99 latency. Own database
(tidelog_bench_flags, dropped and made anew) and Redis prefix; ports 8100 and 8101.
"""

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import BIN, ROOT, fresh_database, load, log, pct, services_env, wait_port

BENCH_DB = "tidelog_bench_flags"
TIDELOG_PORT, BASELINE_PORT = 8100, 8101
PLANS = ["free", "pro", "team", "enterprise"]


def flag_definitions() -> list[dict]:
    flags: list[dict] = []
    for i in range(10):
        flags.append({
            "key": f"multi-{i}", "enabled": True, "rollout_percentage": 80,
            "variants": [{"key": "control", "rollout_percentage": 34}, {"key": "a", "rollout_percentage": 33,
                          "payload": {"color": "green"}}, {"key": "b", "rollout_percentage": 33}],
        })  # fmt: skip
    for i in range(20):
        flags.append({
            "key": f"targeted-{i}", "enabled": True,
            "conditions": [
                {"properties": [{"key": "plan", "operator": "exact", "value": ["pro", "team"]},
                                {"key": "app_version", "operator": "semver_gte", "value": "3.2.0"}],
                 "rollout_percentage": 50},
                {"properties": [{"key": "email", "operator": "icontains", "value": "@example.com"}]},
                {"properties": [{"key": "country", "operator": "regex", "value": "^(DE|FR|NL)$"}],
                 "rollout_percentage": 10},
            ],
        })  # fmt: skip
    for i in range(20):
        flags.append({"key": f"rollout-{i}", "enabled": i % 5 != 0, "rollout_percentage": 5 * i})
    return flags


def http_json(method: str, url: str, key: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def build_requests(key: str, count: int) -> list[bytes]:
    requests = []
    for i in range(count):
        properties = {"plan": PLANS[i % 4], "app_version": f"3.{i % 5}.0", "country": ["DE", "US", "FR"][i % 3],
                      "email": f"user{i}@{'example.com' if i % 7 == 0 else 'mail.test'}"}  # fmt: skip
        query = urlencode({"distinct_id": f"user-{i}", "person_properties": json.dumps(properties)})
        requests.append(
            f"GET /api/v1/analytics/public/feature-flags/for_user/?{query} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
        )
    return requests


def measure(name: str, port: int, key: str, seconds: float, connections: int) -> dict:
    asyncio.run(load(port, build_requests(key, 2000), 2.0, connections))  # warm every worker
    elapsed, latencies, codes = asyncio.run(load(port, build_requests(key, int(seconds * 12_000)), seconds, connections))
    result = {"name": name, "rps": sum(codes.values()) / elapsed, "p50": pct(latencies, 50), "p99": pct(latencies, 99),
              "codes": codes}  # fmt: skip
    log(f"{name}: {result['rps']:,.0f} requests/s, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, {codes}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="granian workers of each server")
    parser.add_argument("--interface", choices=["rsgi", "wsgi"], default="rsgi")
    args = parser.parse_args()

    env = services_env()
    project = fresh_database(env, BENCH_DB)
    granian = [str(BIN / "granian"), "--host", "127.0.0.1", "--workers", str(args.workers), "--no-ws",
               "--backlog", "2048", "--log-level", "warning"]  # fmt: skip
    servers = {
        "tidelog": [*granian, "--interface", args.interface, "--port", str(TIDELOG_PORT),
                    *(["--blocking-threads", "1"] if args.interface == "wsgi" else []),
                    f"core.{args.interface}_command:application"],
        "baseline": [*granian, "--interface", "wsgi", "--port", str(BASELINE_PORT), "--blocking-threads", "1",
                     "loadtest.flags_orm_baseline:application"],
    }  # fmt: skip
    children = {name: subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True) for name, argv in servers.items()}
    try:
        for port in (TIDELOG_PORT, BASELINE_PORT):
            wait_port(port)
        time.sleep(1.0)
        admin = f"http://127.0.0.1:{TIDELOG_PORT}/api/v1/analytics/admin/feature-flags/"
        flags = flag_definitions()
        for flag in flags:
            http_json("POST", admin, project["personal_api_key"], flag)
        log(f"{len(flags)} flags defined: 10 multivariate, 20 with property conditions, 20 rollouts")
        # The two answer alike: the same flags, the same evaluation.
        probe = build_requests(project["api_key"], 1)[0].split(b" ")[1].decode()
        answers = [http_json("GET", f"http://127.0.0.1:{port}{probe}", project["api_key"]) for port in (TIDELOG_PORT, BASELINE_PORT)]
        assert answers[0] == answers[1] and len(answers[0]["flags"]) == len(flags), "the two servers disagree"
        results = [measure(name, port, project["api_key"], args.seconds, args.connections)
                   for name, port in (("tidelog", TIDELOG_PORT), ("baseline", BASELINE_PORT))]  # fmt: skip
    finally:
        for child in children.values():
            child.terminate()
        for child in children.values():
            child.wait(timeout=15)
    tidelog, baseline = results
    print()
    print(f"for_user, 50 flags, {args.connections} connections, {args.workers} workers each, {args.seconds:g} s")
    print(f"{'':10} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(f"{r['name']:10} {r['rps']:>11,.0f} {r['p50']:>8.1f} {r['p99']:>8.1f}")
    print(f"tidelog / baseline: {tidelog['rps'] / baseline['rps']:.1f}x requests/s")


if __name__ == "__main__":
    main()
