"""End to end through the real processes, started as bin/tidelog-run starts them: events posted
over HTTP to the command API (granian), drained by the scheduler and a Dramatiq worker into
PostgreSQL, projected by the projection runner, and counted by the query API (granian)."""

import gzip
import json
import signal

import pytest

from tests.command_helpers import make_event
from tests.e2e.stack import http, running_tidelog
from tests.process_helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tidelog(tmp_path, redis_client):
    """Every Tidelog process, the command API on granian's WSGI interface (docker's)."""
    with running_tidelog(tmp_path, interface="wsgi") as stack:
        yield stack


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
