#!/usr/bin/env python
"""Slow-client probe: run by hand against a running command API (`make run`); prints figures.

Opens --slow connections that declare `Content-Length: 1000` and send 13 bytes of it, then
nothing more; meanwhile sends one capture every 0.2 s on a fresh connection for --seconds, each
given up after 5 s. Prints how many captures were answered 200 and how fast, and what each slow
connection got back, and when (docs/operations.md, "Slow clients").

    .venv/bin/python loadtest/slow_bodies.py --key tlp_... [--port 8000] [--slow 2] [--seconds 10]
"""

import argparse
import json
import socket
import threading
import time
import uuid

STALLED_HEAD = (
    "POST /api/v1/analytics/capture/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
    "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
)


def stall(port: int, key: str, give_up: float, outcome: dict[str, object]) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(STALLED_HEAD.format(key=key).encode() + b'{"event_type"')
        started = time.monotonic()
        s.settimeout(give_up)
        try:
            answer = s.recv(65536)
            outcome["status"] = answer[9:12].decode() if answer else "closed"
            outcome["closed"] = not answer or s.recv(65536) == b""
        except TimeoutError:
            outcome["status"] = "still open"
        outcome["seconds"] = time.monotonic() - started


def capture(port: int, key: str) -> tuple[str, float]:
    body = json.dumps({"event_type": "probe", "distinct_id": "slow-bodies", "uuid": str(uuid.uuid4())}).encode()
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(
                f"POST /api/v1/analytics/capture/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            status = s.recv(65536)[9:12].decode() or "closed"
    except TimeoutError:
        status = "timeout"
    return status, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--key", required=True, help="a project's public API key (tlp_...)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--slow", type=int, default=2, help="stalled connections")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()

    outcomes: list[dict[str, object]] = [{} for _ in range(args.slow)]
    stalled = [
        threading.Thread(target=stall, args=(args.port, args.key, args.seconds + 5, outcome), daemon=True)
        for outcome in outcomes
    ]
    for thread in stalled:
        thread.start()
    time.sleep(0.5)
    answers = []
    until = time.monotonic() + args.seconds
    while time.monotonic() < until:
        answers.append(capture(args.port, args.key))
        time.sleep(0.2)
    for thread in stalled:
        thread.join()

    ok = sorted(seconds for status, seconds in answers if status == "200")
    failed = [status for status, _ in answers if status != "200"]
    print(f"{args.slow} stalled connections, {args.seconds:g} s of captures")
    print(f"captures answered 200: {len(ok)} of {len(answers)}; others: {sorted(set(failed)) or 'none'}")
    if ok:
        print(f"  latency p50 {ok[len(ok) // 2] * 1000:.0f} ms, max {ok[-1] * 1000:.0f} ms")
    for index, outcome in enumerate(outcomes):
        print(f"stalled connection {index}: {outcome.get('status')} after {outcome.get('seconds', 0):.1f} s"
              f"{', then closed' if outcome.get('closed') else ''}")  # fmt: skip


if __name__ == "__main__":
    main()
