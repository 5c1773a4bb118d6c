"""End to end through the real processes, started as bin/tidelog-run starts them: events posted
over HTTP to the command API (granian), drained by the scheduler and a Dramatiq worker into
PostgreSQL, projected by the projection runner, and counted by the query API (granian)."""

import gzip
import json
import signal
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.command_helpers import make_event
from tests.process_helpers import BIN, Processes, free_port, process_env, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, kind, content = response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        status, kind, content = error.code, error.headers.get_content_type(), error.read()
    return status, json.loads(content) if kind == "application/json" and content else content


def answers(url: str) -> bool:
    try:
        http("GET", url)
    except OSError:  # refused or reset: not listening yet
        return False
    return True


@pytest.fixture
def tidelog(tmp_path, redis_client):
    """Every Tidelog process on free ports against this test's database and Redis prefix;
    yields the command and query API base URLs; kills everything it started."""
    command_port, query_port = free_port(), free_port()
    env = process_env(dramatiq_queue_prefetch="100", TIDELOG_PROJECTION_POLL_SECONDS="0.05")
    # The same commands as bin/tidelog-run, with one worker each and our ports.
    granian = [str(BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--no-ws", "--workers", "1"]
    commands = {
        "command-api": [*granian, "--port", str(command_port), "--blocking-threads", "1", "core.wsgi_command:application"],
        "query-api": [*granian, "--port", str(query_port), "--blocking-threads", "4", "core.wsgi_query:application"],
        "worker": [str(BIN / "dramatiq"), "command_side.worker", "--processes", "1", "--threads", "2"],
        "scheduler": [str(BIN / "python"), "manage.py", "schedule_drains"],
        "projections": [str(BIN / "python"), "manage.py", "projections", "run"],
    }  # fmt: skip
    processes = Processes(tmp_path)
    try:
        for name, argv in commands.items():
            processes.start(name, argv, env)
        command = f"http://127.0.0.1:{command_port}/api/v1/analytics/"
        query = f"http://127.0.0.1:{query_port}/api/v1/analytics/"
        for url in (command, query):
            wait_for(lambda url=url: answers(url), f"{url} to answer HTTP", processes=processes)
        yield processes, command, query
    finally:
        processes.stop_all()


def test_events_posted_over_http_are_counted_by_the_query_api_exactly_once(tidelog, project):
    processes, command, query = tidelog
    auth = {"Authorization": f"Bearer {project.api_key}", "Content-Type": "application/json"}
    events = [make_event(event_type="app_opened") for _ in range(3)] + [make_event(event_type="purchase_completed")]
    batch = json.dumps({"events": events}).encode()
    assert http("POST", command + "batch/", batch, auth) == (200, {"accepted": 4, "rejected": []})
    # An SDK retrying the same batch (gzipped this time): stored once all the same.
    status, _ = http("POST", command + "batch/", gzip.compress(batch), {**auth, "Content-Encoding": "gzip"})
    assert status == 200
    single = make_event(event_type="app_opened")
    assert http("POST", command + "capture/", json.dumps(single).encode(), auth) == (
        200, {"accepted": 1, "uuid": single["uuid"]},
    )  # fmt: skip

    def counts() -> dict[str, int]:
        status, body = http(
            "GET", query + "admin/events/event_counts/", headers={"Authorization": f"Bearer {project.personal_api_key}"}
        )
        assert status == 200, body
        return {row["event_type"]: row["count"] for row in body["results"]}

    expected = {"app_opened": 4, "purchase_completed": 1}
    seen: dict[str, dict[str, int]] = {}

    def reached() -> bool:
        seen["counts"] = counts()
        return seen["counts"] == expected

    wait_for(
        reached,
        lambda: f"the query API's event_counts to reach {expected} (they were {seen.get('counts')})",
        timeout=60,
        processes=processes,
    )
    status, body = http(
        "GET", query + "admin/events/?limit=10", headers={"Authorization": f"Bearer {project.personal_api_key}"}
    )
    assert status == 200
    assert sorted(row["uuid"] for row in body["results"]) == sorted([e["uuid"] for e in events] + [single["uuid"]])
    # Every process stops cleanly when asked, as `make run`'s Ctrl-C asks them.
    for name in list(processes.running):
        assert processes.signal(name, signal.SIGTERM) == 0, processes.log(name)
