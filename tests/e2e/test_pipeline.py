"""End to end: HTTP into the command API, a real Dramatiq worker drains the Redis buffer into
PostgreSQL, the projection runner updates the read models, the query API answers."""

import time

import dramatiq
import pytest
from django.test import Client

from tests.command_helpers import make_event, post, stored_count

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(redis_client):
    from command_side import actors

    broker = dramatiq.get_broker()
    assert broker is actors.broker
    broker.flush_all()
    running = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    running.start()
    yield actors
    running.stop()
    broker.flush_all()


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_an_event_posted_to_the_command_api_is_counted_by_the_query_api(worker, project, settings):
    from projections.runner import run_until_caught_up

    command = Client()
    settings.ROOT_URLCONF = "core.urls_command"
    events = [make_event(event_type="app_opened") for _ in range(3)] + [make_event(event_type="purchase_completed")]
    assert post(command, "batch/", {"events": events}, key=project.api_key).status_code == 200

    # What the scheduler does on its tick: send a drain message for a free slot.
    worker.drain_buffer.send(0)
    assert wait_for(lambda: stored_count(project.project_id) == 4)

    run_until_caught_up()
    settings.ROOT_URLCONF = "core.urls_query"
    query = Client()
    response = query.get(
        "/api/v1/analytics/admin/events/event_counts/", HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}"
    )
    assert response.status_code == 200
    counts = {row["event_type"]: row["count"] for row in response.json()["results"]}
    assert counts == {"app_opened": 3, "purchase_completed": 1}
