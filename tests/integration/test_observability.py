"""/healthz, /readyz and /metrics on both hosts (observability/), the request id every answer
carries, and JSON logs. The metrics are scraped from a live Tidelog after a small load: what the
command API accepted, the drains stored and the projections applied must add up."""

import importlib
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from observability import logs
from tests.command_helpers import make_event
from tests.e2e.stack import http, running_tidelog
from tests.process_helpers import wait_for
from tests.projection_helpers import insert_events

pytestmark = pytest.mark.django_db


class Host:
    """A Django test client on one host's URL root and middleware (the command API's are its own
    process's settings: core/settings_command.py)."""

    def __init__(self, settings_module: str) -> None:
        module = importlib.import_module(settings_module)
        self.overrides = {"ROOT_URLCONF": module.ROOT_URLCONF, "MIDDLEWARE": module.MIDDLEWARE}
        self.client = Client()

    def get(self, path: str, **kwargs: Any) -> Any:
        with override_settings(**self.overrides):
            return self.client.get(path, **kwargs)

    def post(self, path: str, body: bytes, **kwargs: Any) -> Any:
        with override_settings(**self.overrides):
            return self.client.post(path, body, content_type="application/json", **kwargs)


@pytest.fixture
def command_host(redis_client):
    return Host("core.settings_command")


@pytest.fixture
def query_host(redis_client):
    return Host("core.settings")


@pytest.mark.parametrize("host", ["command_host", "query_host"])
def test_healthz_answers_without_looking_at_anything(request, host, settings):
    client = request.getfixturevalue(host)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens: healthz must not care
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    "host, checks",
    [("command_host", {"database", "redis", "buffer"}), ("query_host", {"database", "redis", "buffer", "projections"})],
)
def test_readyz_is_ready_and_names_every_check(request, host, checks):
    response = request.getfixturevalue(host).get("/readyz")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ready"
    assert set(body["checks"]) == checks
    assert all(check["ok"] for check in body["checks"].values())


def test_redis_away_makes_the_command_api_unready_and_not_the_query_api(command_host, query_host, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = command_host.get("/readyz")
    checks = response.json()["checks"]
    assert response.status_code == 503 and response.json()["status"] == "unready"
    assert checks["redis"]["ok"] is False and checks["redis"]["critical"] is True and checks["redis"]["error"]
    # The query API reads PostgreSQL only: it still serves.
    response = query_host.get("/readyz")
    assert response.status_code == 200 and response.json()["checks"]["redis"] == {
        **response.json()["checks"]["redis"],
        "ok": False,
        "critical": False,
    }


def test_a_nearly_full_buffer_makes_the_command_api_unready(command_host, settings, project):
    from command_side import buffer

    settings.TIDELOG_BUFFER_MAX_ENTRIES = 10
    for _ in range(9):
        buffer.append(b"x")
    response = command_host.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["buffer"] | {"ms": 0} == {
        "ok": False, "critical": True, "entries": 9, "max_entries": 10,
        "oldest_age_seconds": response.json()["checks"]["buffer"]["oldest_age_seconds"], "ms": 0,
    }  # fmt: skip


def test_projections_behind_make_the_query_api_unready_and_say_which(query_host, command_host, settings, project):
    settings.TIDELOG_READY_MAX_PROJECTION_LAG = 2
    now = datetime.now(UTC)
    insert_events([{"project_id": project.project_id, "distinct_id": "u1", "timestamp": now} for _ in range(3)])
    response = query_host.get("/readyz")
    check = response.json()["checks"]["projections"]
    assert response.status_code == 503 and check["ok"] is False
    assert check["behind"] and all(lag == 3 for lag in check["behind"].values())
    # The command API takes events all the same: the lag is not its to report.
    response = command_host.get("/readyz")
    assert response.status_code == 200 and "projections" not in response.json()["checks"]


@pytest.mark.parametrize("host", ["command_host", "query_host"])
def test_every_answer_carries_a_request_id_the_callers_when_sane(request, host):
    client = request.getfixturevalue(host)
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"})["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "no spaces\nor newlines"})["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/healthz")["X-Request-ID"]
    # The fast path too (command host): an ingestion answer.
    if host == "command_host":
        answer = client.post("/api/v1/analytics/capture/", b"{}", headers={"X-Request-ID": "from-nginx"})
        assert answer["X-Request-ID"] == "from-nginx"


def test_json_logs_carry_the_request_id():
    record = logging.LogRecord("tidelog.x", logging.ERROR, __file__, 1, "drained %d", (3,), None)
    token = logs.REQUEST_ID.set("req-7")
    try:
        logs.RequestIdFilter().filter(record)
    finally:
        logs.REQUEST_ID.reset(token)
    line = json.loads(logs.JsonFormatter().format(record))
    assert (line["message"], line["level"], line["logger"], line["request_id"]) == (
        "drained 3",
        "ERROR",
        "tidelog.x",
        "req-7",
    )
    outside = logging.LogRecord("tidelog.x", logging.INFO, __file__, 1, "idle", (), None)
    logs.RequestIdFilter().filter(outside)
    assert json.loads(logs.JsonFormatter().format(outside))["request_id"] is None


def scrape(query: str) -> dict[str, float]:
    """Every sample of the query API's /metrics, by name and labels."""
    status, text = http("GET", query.removesuffix("api/v1/analytics/") + "metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


@pytest.mark.django_db(transaction=True)
def test_the_metrics_of_a_small_load_add_up(tmp_path, project, redis_client):
    with running_tidelog(tmp_path, interface="rsgi") as (processes, command, query):
        auth = {"Authorization": f"Bearer {project.api_key}", "Content-Type": "application/json"}
        good = [make_event(event_type="metric_tap") for _ in range(40)]
        bad = [{"event_type": "", "distinct_id": "u1", "uuid": str(uuid.uuid4())} for _ in range(5)]
        batch = json.dumps({"events": good + bad}).encode()
        assert http("POST", command + "batch/", batch, auth)[1]["accepted"] == 40
        assert http("POST", command + "batch/", batch, auth)[0] == 200  # an SDK's retry: 40 duplicates
        for event in good[:3]:
            assert http("POST", command + "capture/", json.dumps(event).encode(), auth)[0] == 200
        personal = {"Authorization": f"Bearer {project.personal_api_key}"}

        def settled() -> dict[str, float] | None:
            samples = scrape(query)
            stored = samples.get("tidelog_events_stored_total", 0) + samples.get("tidelog_events_duplicate_total", 0)
            lags = [v for k, v in samples.items() if k.startswith("tidelog_projection_lag_events{")]
            return samples if stored == 83 and lags and not any(lags) else None

        samples = wait_for(settled, "the load stored and projected", timeout=60, processes=processes)
        assert http("GET", query + "admin/events/event_counts/", headers=personal)[0] == 200
        after_query = scrape(query)
    assert samples["tidelog_events_accepted_total"] == 83  # 40 + 40 again + 3
    assert samples["tidelog_events_rejected_total"] == 10
    assert samples["tidelog_events_stored_total"] == 40  # each once
    assert samples["tidelog_events_duplicate_total"] == 43  # the retried batch, and the 3 captures
    assert samples["tidelog_bad_events_stored_total"] == 10
    assert samples["tidelog_entries_dead_lettered_total"] == 0
    assert samples["tidelog_buffer_entries"] == 0 and samples["tidelog_dead_letter_entries"] == 0
    assert samples["tidelog_drain_batch_seconds_count"] >= 1
    assert samples["tidelog_probe_up{source=database}"] == samples["tidelog_probe_up{source=redis}"] == 1
    applied = {k: v for k, v in samples.items() if k.startswith("tidelog_projection_events_applied_total{")}
    assert applied and all(v == 40 for v in applied.values())
    key = "tidelog_query_seconds_count{endpoint=api/v1/analytics/admin/events/event_counts/,status=2xx}"
    assert after_query[key] >= 1
