"""The query API on a real PostgreSQL streaming replica (QUERY_DATABASE_URL): a private primary, a
standby made from it by `pg_basebackup -R`, and every Tidelog process (bin/tidelog-run) writing
to the primary while the query API reads the standby. Answers are those of the primary once the
standby has replayed; /readyz and /metrics say how far behind it is."""

import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.private_stack import PrivatePostgres, PrivateRedis, Sent, Stack, _as_postgres, free_port, wait_for

pytestmark = pytest.mark.skipif(
    not list(Path("/usr/lib/postgresql").glob("*/bin/pg_basebackup")) or shutil.which("redis-server") is None,
    reason="needs PostgreSQL's server binaries (initdb, pg_basebackup) and redis-server for private instances",
)


class Standby:
    """A hot standby of `primary`, streaming from it: `pg_basebackup -R` writes standby.signal and
    primary_conninfo, as docs/deploy.md's steps do."""

    def __init__(self, root: Path, primary: PrivatePostgres) -> None:
        self.bin = primary.bin
        self.data = root / "standby"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/tidelog"
        _as_postgres(f"{self.bin}/pg_basebackup -h 127.0.0.1 -p {primary.port} -U postgres -D {self.data}"
                     " -R -X stream -c fast")  # fmt: skip
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c hot_standby=on"
        _as_postgres(f"{self.bin}/pg_ctl -D {self.data} -l {self.data}/log -o '{options}' -w start")

    def close(self) -> None:
        _as_postgres(f"{self.bin}/pg_ctl -D {self.data} -m immediate -w stop")


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[Stack, Standby]]:
    # Under /tmp itself: the postgres user must reach it (pytest's own tmp dirs are root's alone).
    root = Path(tempfile.mkdtemp(prefix="tidelog-replica-"))
    primary = PrivatePostgres(root)
    standby = redis = stack = None
    try:
        standby = Standby(root, primary)
        redis = PrivateRedis(root)
        stack = Stack(root, primary, redis, QUERY_DATABASE_URL=standby.url)
        yield stack, standby
    finally:
        for part in (stack, redis, standby, primary):
            if part is not None:
                part.close()
        shutil.rmtree(root, ignore_errors=True)


def event_counts(stack: Stack) -> dict[str, int]:
    status, body, _ = stack.request("GET", "/api/v1/analytics/admin/events/event_counts/", key=stack.personal_key,
                                    query=True)  # fmt: skip
    assert status == 200, body
    return {row["event_type"]: row["count"] for row in body["results"]}


def test_the_query_api_answers_from_the_standby_what_the_primary_holds(replicated):
    stack, standby = replicated
    with stack.postgres.connect() as primary:
        (state,) = primary.execute("SELECT state FROM pg_stat_replication").fetchone() or ("none",)
    assert state == "streaming"
    with psycopg.connect(standby.url, autocommit=True) as replica:
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    sent = Sent()
    for _ in range(10):
        assert stack.send_batch(sent, size=50) == 200
    accepted_at = time.monotonic()
    stack.wait_stored(list(sent.accepted), timeout=30)
    wait_for(lambda: event_counts(stack).get("screen_viewed") == 500, 30, "the standby's answer to reach 500")
    visible_after = time.monotonic() - accepted_at
    with psycopg.connect(standby.url, autocommit=True) as replica:
        replayed = replica.execute("SELECT count(*) FROM tidelog_events").fetchone()
        # The query API's own connections are there: its answers were read on the standby.
        readers = replica.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'tidelog'"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert replayed == (500,)
    assert readers is not None and readers[0] >= 1
    print(f"\n    [replica] 500 events accepted -> counted by the query API on the standby in {visible_after:.2f}s")


def test_readyz_and_metrics_report_the_standbys_replay_delay(replicated):
    stack, _ = replicated
    status, body, _ = stack.request("GET", "/readyz", query=True)
    assert status == 200, body
    check = body["checks"]["query_database"]
    assert check["ok"] and check["critical"] and check["in_recovery"] is True
    assert check["replay_delay_seconds"] == 0  # idle: everything received is replayed
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.query_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples["tidelog_query_replica_delay_seconds"] == 0
    assert samples["tidelog_probe_up"] == 1


def test_a_stopped_standby_makes_the_query_api_unready_and_not_the_command_api(replicated):
    stack, standby = replicated
    _as_postgres(f"{standby.bin}/pg_ctl -D {standby.data} -m fast -w stop")
    try:
        status, body, _ = stack.request("GET", "/readyz", query=True)
        assert status == 503 and body["checks"]["query_database"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True  # the primary: keys and staff sessions
        status, body, _ = stack.request("GET", "/readyz")
        assert status == 200, body  # ingestion never reads the replica
    finally:
        standby.start()
    wait_for(lambda: stack.request("GET", "/readyz", query=True)[0] == 200, 30, "the query API ready again")
