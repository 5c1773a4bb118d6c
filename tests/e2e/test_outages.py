"""Outages with real processes: `bin/tidelog-run` (supervisor and all) on a private PostgreSQL and
Redis; a worker killed mid-drain, Redis and PostgreSQL stopped and started while an SDK sends.
Every test asserts nothing is lost or stored twice, and prints how long recovery took (the
numbers docs/operations.md quotes)."""

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.private_stack import Sent, Stack, children_of, private_stack, wait_for

pytestmark = pytest.mark.skipif(
    not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or shutil.which("redis-server") is None,
    reason="needs PostgreSQL's server binaries and redis-server to start private instances",
)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # A 1 s key cache, so a PostgreSQL outage outlasts it: known keys must be served stale.
    with private_stack(TIDELOG_KEY_CACHE_SECONDS="1") as running:
        yield running
        deaths = [match.group(0) for match in running.said(r"\S+ exited with .*")]
        print("\n    [supervisor] " + ("; ".join(deaths) or "no process died"))
        # Only the worker the first test killed: no outage may kill a process (five deaths of one
        # within a minute would stop the whole stack).
        assert all(death.startswith("worker ") for death in deaths), deaths


@pytest.fixture
def report(capsys):  # type: ignore[no-untyped-def]
    """Writes a measured number to the terminal, with or without -s."""

    def write(message: str) -> None:
        with capsys.disabled():
            print(f"\n    [recovery] {message}", flush=True)

    return write


def test_a_worker_killed_mid_drain_is_restarted_and_nothing_is_lost_or_doubled(stack, report):
    with stack.sending(size=100) as sent:
        wait_for(lambda: len(sent.accepted) >= 2_000, 20, "events flowing")
        parent = stack.pid_of("worker")
        victims = children_of(parent)
        assert victims, "the Dramatiq worker has no child process"
        held = 0
        for _ in range(100):
            # Mid-drain: frozen while it holds entries it has read and not yet acknowledged.
            wait_for(lambda: any(stack.redis.pending_by_consumer().values()), 10, "a drain in flight", every=0.001)
            for pid in victims:
                os.kill(pid, signal.SIGSTOP)
            held = sum(
                n for name, n in stack.redis.pending_by_consumer().items() if int(name.split("-")[-2]) in victims
            )
            if held:
                break
            for pid in victims:  # it acknowledged in between: let it go on, try again
                os.kill(pid, signal.SIGCONT)
        assert held, "never caught a drain holding entries"
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        before_kill = list(sent.accepted)
        wait_for(lambda: stack.said(r"worker exited with .*restarting it in"), 20, "the supervisor to notice")
        wait_for(lambda: stack.pid_of("worker") != parent, 20, "the supervisor to restart the worker")
        restarted_after = time.monotonic() - killed_at
        stack.wait_stored(before_kill, timeout=40)
        recovered_after = time.monotonic() - killed_at
        time.sleep(1)
    everything = list(sent.accepted)
    stack.wait_stored(everything, timeout=40)
    assert all(status == 200 for _, status, _, _ in sent.statuses)
    assert stack.process.poll() is None, "the supervisor stopped"
    report(
        f"worker SIGKILLed mid-drain ({held} entries read, unacknowledged): restarted after {restarted_after:.1f}s;"
        f" every event accepted before the kill stored {recovered_after:.1f}s after it"
        f" ({len(everything)} events, none lost or doubled)"
    )


def test_redis_stopped_during_a_send_answers_503_then_recovers_with_nothing_lost(stack, report):
    with stack.sending() as sent:
        wait_for(lambda: len(sent.accepted) >= 200, 20, "events flowing")
        stack.redis.stop()
        stopped_at = time.monotonic()
        wait_for(lambda: any(s == 503 for t, s, _, _ in sent.statuses if t > stopped_at), 10, "a 503")
        time.sleep(2)
        stack.redis.start()
        started_at = time.monotonic()
        wait_for(lambda: any(s == 200 for t, s, _, _ in sent.statuses if t > started_at), 20, "a 200 again")
        accepting_after = min(t for t, s, _, _ in sent.statuses if t > started_at and s == 200) - started_at
        time.sleep(1)
    during = [(s, body, headers) for t, s, body, headers in sent.statuses if stopped_at < t < started_at]
    assert during and all(s in (200, 503) for s, _, _ in during)
    refusals = [(body, headers) for s, body, headers in during if s == 503]
    assert refusals
    assert all(b["code"] == "buffer_unavailable" and h["retry-after"] == "5" for b, h in refusals)
    stored_after = stack.wait_stored(list(sent.accepted), timeout=40)
    report(
        f"Redis down {started_at - stopped_at:.1f}s: 503 buffer_unavailable with Retry-After throughout; 200s"
        f" {accepting_after:.2f}s after Redis was back; every accepted event stored {stored_after:.1f}s after the"
        f" sending stopped ({len(sent.accepted)} events, none lost or doubled)"
    )


def test_an_app_on_the_python_sdk_loses_nothing_through_a_redis_outage(stack, report, tmp_path):
    """The example client (sdk_examples/python), as an app uses it: it keeps tracking while the
    buffer is away, waits the Retry-After it is given, and delivers everything once."""
    from tidelog_sdk import Tidelog, TidelogConfig
    from tidelog_sdk.transport import Answer, UrllibTransport

    answered: list[tuple[float, int]] = []  # (when the answer came, its status), a batch at a time

    class Recording(UrllibTransport):
        def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Answer:
            answer = super().send(method, url, body, headers)
            answered.append((time.monotonic(), answer.status))
            return answer

    config = TidelogConfig(host=f"http://127.0.0.1:{stack.command_port}", api_key=stack.api_key,
                           storage_dir=tmp_path / "app", flush_at=20, flush_interval_seconds=0.2,
                           base_backoff_seconds=0.2, max_backoff_seconds=2, app_version="2.0.0")  # fmt: skip
    app = Tidelog(config, transport=Recording())
    app.start()
    app.on_foreground()
    tracked = []
    try:
        for _ in range(100):
            tracked.append(app.track("outage_tap"))
            time.sleep(0.005)
        stack.redis.stop()
        stopped_at = time.monotonic()
        for _ in range(200):
            tracked.append(app.track("outage_tap"))
            time.sleep(0.005)
        wait_for(lambda: any(status == 503 for _, status in answered), 10, "a 503")
        stack.redis.start()
        started_at = time.monotonic()
        for _ in range(100):
            tracked.append(app.track("outage_tap"))
        wait_for(lambda: len(app.queue) == 0, 40, "the client's queue to empty")
        delivered_after = time.monotonic() - started_at
    finally:
        app.shutdown()
    refused_at = next(at for at, status in answered if status == 503)
    next_try = next(at for at, _ in answered if at > refused_at)
    # Retry-After: 5, times 1 to 1.2; the next answer comes a moment after the next request.
    assert 5.0 <= next_try - refused_at <= 6.5, answered
    stored_after = stack.wait_stored(tracked, timeout=40)
    report(
        f"Python SDK through a Redis outage of {started_at - stopped_at:.1f}s: retried {next_try - refused_at:.1f}s"
        f" after a 503 with Retry-After 5; queue empty {delivered_after:.1f}s after Redis was back; all"
        f" {len(tracked)} tracked events stored once {stored_after:.1f}s later"
    )


def test_redis_refusing_writes_answers_503_with_retry_after(stack, report):
    sent = Sent()
    assert stack.send_batch(sent) == 200
    for refuse, undo in [
        (
            ("config", "set", "min-replicas-to-write", "1"),
            ("config", "set", "min-replicas-to-write", "0"),
        ),  # NOREPLICAS
        (("replicaof", "127.0.0.1", "1"), ("replicaof", "no", "one")),  # READONLY, as after a failover
    ]:
        assert stack.redis.cli(*refuse) == "OK"
        try:
            assert stack.send_batch(sent) == 503
            _, _, body, headers = sent.statuses[-1]
            assert body["code"] == "buffer_unavailable" and headers["retry-after"] == "5"
        finally:
            stack.redis.cli(*undo)
        assert stack.send_batch(sent) == 200
    assert stack.send_batch(sent) == 200
    stack.wait_stored(list(sent.accepted), timeout=30)
    report("Redis refusing writes (NOREPLICAS, READONLY): 503 buffer_unavailable + Retry-After; 200 once undone")


def test_redis_unable_to_persist_misconf_answers_503_with_retry_after(stack, report):
    """A full or failing disk: snapshots fail, and Redis refuses writes until one succeeds."""
    sent = Sent()
    assert stack.send_batch(sent) == 200
    home = stack.redis.cli("config", "get", "dir").splitlines()[1]
    gone = stack.redis.dir / "vanished"
    gone.mkdir()
    assert stack.redis.cli("config", "set", "dir", str(gone)) == "OK"
    gone.rmdir()
    try:
        assert stack.redis.cli("config", "set", "save", "3600 1") == "OK"
        stack.redis.cli("bgsave")
        wait_for(lambda: "rdb_last_bgsave_status:err" in stack.redis.cli("info", "persistence"), 10, "a failed save")
        assert stack.send_batch(sent) == 503
        _, _, body, headers = sent.statuses[-1]
        assert body["code"] == "buffer_unavailable" and headers["retry-after"] == "5"
    finally:
        stack.redis.cli("config", "set", "save", "")
        stack.redis.cli("config", "set", "dir", home)
    assert stack.send_batch(sent) == 200
    stack.wait_stored(list(sent.accepted), timeout=30)
    report("Redis unable to persist (MISCONF): 503 buffer_unavailable + Retry-After; 200 once it can write again")


def test_postgres_stopped_during_a_send_keeps_ingestion_going_and_the_query_api_answers_503(stack, report):
    events_url = "/api/v1/analytics/admin/events/event_counts/"
    assert stack.request("GET", events_url, key=stack.personal_key, query=True)[0] == 200
    with stack.sending() as sent:
        wait_for(lambda: len(sent.accepted) >= 200, 20, "events flowing")
        stack.postgres.stop()
        stopped_at = time.monotonic()
        time.sleep(1.5)  # past the 1 s key cache: the key is now served stale
        status, body, headers = stack.request("GET", events_url, key=stack.personal_key, query=True)
        assert (status, body.get("code"), headers.get("retry-after")) == (503, "database_unavailable", "5")
        assert headers["content-type"].startswith("application/json")
        unknown = stack.request("POST", "/api/v1/analytics/capture/", {"event_type": "x", "distinct_id": "u"},
                                key="tlp_not_cached_anywhere_0123456789")  # fmt: skip
        assert (unknown[0], unknown[1]["code"], unknown[2]["retry-after"]) == (503, "database_unavailable", "5")
        time.sleep(2)
        stack.postgres.start()
        started_at = time.monotonic()
        during = [s for t, s, _, _ in sent.statuses if stopped_at < t < started_at]
        time.sleep(1)
    assert during and all(s == 200 for s in during), f"ingestion stopped while PostgreSQL was down: {set(during)}"
    stored_after = stack.wait_stored(list(sent.accepted), timeout=45)
    recovered = time.monotonic() - started_at
    wait_for(lambda: stack.request("GET", events_url, key=stack.personal_key, query=True)[0] == 200, 20, "queries")
    report(
        f"PostgreSQL down {started_at - stopped_at:.1f}s: {len(during)} batches accepted for the cached key (all 200),"
        f" uncached key and query API 503 database_unavailable + Retry-After; every accepted event stored"
        f" {recovered:.1f}s after PostgreSQL was back ({stored_after:.1f}s after sending stopped;"
        f" {len(sent.accepted)} events, none lost or doubled)"
    )
