"""Backups as docs/deploy.md says to take them: `pg_dump` of a running Tidelog while events keep
flowing, then `pg_restore` into a new database, which `manage.py projections verify` passes. The
dump is one snapshot, so its read models and checkpoints match its events exactly."""

import json
import subprocess
import threading
import time

import psycopg
import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from tests.command_helpers import make_event
from tests.e2e.stack import http, running_tidelog
from tests.process_helpers import BIN, REPO, database_url, process_env, wait_for
from tests.projection_helpers import conninfo

pytestmark = pytest.mark.django_db(transaction=True)


class Sender(threading.Thread):
    """Batches of 50 events, one after another, until stopped; keeps what was accepted and when."""

    def __init__(self, command: str, api_key: str) -> None:
        super().__init__(daemon=True)
        self.url = command + "batch/"
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.accepted: list[tuple[float, list[str]]] = []
        self.statuses: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            events = [make_event(event_type="backup_tap") for _ in range(50)]
            status, _ = http("POST", self.url, json.dumps({"events": events}).encode(), self.headers)
            self.statuses.append(status)
            if status == 200:
                self.accepted.append((time.monotonic(), [e["uuid"] for e in events]))
            time.sleep(0.01)

    def uuids(self) -> list[str]:
        return [uuid for _, batch in self.accepted for uuid in batch]


def counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT uuid) FROM tidelog_events").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def projection_lags(query: str) -> list[float]:
    """Each projection's lag behind the store, from the query API's /metrics."""
    _, text = http("GET", query.removesuffix("api/v1/analytics/") + "metrics")
    return [sample.value for family in text_string_to_metric_families(text.decode())
            for sample in family.samples if sample.name == "tidelog_projection_lag_events"]  # fmt: skip


def test_a_dump_taken_while_events_flow_restores_into_a_tidelog_that_verify_passes(tmp_path, project, redis_client):
    source = database_url()
    dump = tmp_path / "tidelog.dump"
    with running_tidelog(tmp_path, interface="rsgi") as (processes, command, query):
        sender = Sender(command, project.api_key)
        sender.start()
        try:
            wait_for(lambda: counts(source)[0] >= 500, "events stored before the dump", timeout=30, processes=processes)
            started = time.monotonic()
            subprocess.run(["pg_dump", "-Fc", "--no-owner", "-f", str(dump), source], check=True, timeout=300)
            dumped = time.monotonic()
            time.sleep(0.5)
        finally:
            sender.stop.set()
            sender.join(timeout=15)
        during = [uuids for at, uuids in sender.accepted if started <= at <= dumped]
        assert during, "no batch was accepted while pg_dump ran"
        assert set(sender.statuses) == {200}, sender.statuses
        # Everything accepted is stored once, and the projections catch up with it.
        wait_for(lambda: counts(source) == (len(sender.uuids()),) * 2, "every accepted event stored once",
                 timeout=60, processes=processes)  # fmt: skip
        wait_for(lambda: (lags := projection_lags(query)) and not any(lags), "the projections to catch up", timeout=60,
                 processes=processes)  # fmt: skip
    restored_name = f"{connection.settings_dict['NAME']}_restored"
    admin = psycopg.connect(conninfo(dbname="postgres"), autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{restored_name}"')
    admin.execute(f'CREATE DATABASE "{restored_name}"')
    try:
        restored = source.rsplit("/", 1)[0] + "/" + restored_name
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", "-d", restored, str(dump)], check=True, timeout=300
        )
        rows, distinct = counts(restored)
        assert rows == distinct and 500 <= rows <= len(sender.uuids())
        verified = subprocess.run(
            [str(BIN / "python"), "manage.py", "projections", "verify"], cwd=REPO, capture_output=True, text=True,
            env={**process_env(), "DATABASE_URL": restored}, timeout=300,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stdout + verified.stderr
        lines = verified.stdout.strip().splitlines()
        assert lines and all(": OK up to" in line for line in lines if not line.startswith(" ")), verified.stdout
        assert "event_aggregates: OK" in verified.stdout
        print(f"\n    [backup] pg_dump of a running Tidelog: {dumped - started:.1f}s, {len(during)} batches accepted"
              f" meanwhile; restored {rows} events; projections verify: OK")  # fmt: skip
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{restored_name}" WITH (FORCE)')
        admin.close()
