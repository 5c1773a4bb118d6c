"""The command API over HTTP (Django's test client), buffered into the real Redis and drained
into the real PostgreSQL."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from command_side import buffer
from contracts import limits
from tests.command_helpers import bad_events, drain_all, make_event, post, stored_count

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db]


@pytest.fixture(autouse=True)
def clean_redis(redis_client):
    return redis_client


def test_capture_buffers_one_event_and_a_drain_stores_it(client, project):
    event = make_event()
    response = post(client, "capture/", event, key=project.api_key)
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "uuid": event["uuid"]}
    assert buffer.backlog() == 1
    assert drain_all() == 1
    assert stored_count(project.project_id, uuid=event["uuid"]) == 1
    assert buffer.backlog() == 0


def test_the_key_may_come_in_the_body(client, project):
    response = post(client, "capture/", {**make_event(), "api_key": project.api_key})
    assert response.status_code == 200


def test_batch_keeps_good_events_and_reports_bad_ones_by_index(client, project):
    good = [make_event(), make_event()]
    body = {"events": [good[0], {"event_type": "x"}, good[1], {"distinct_id": "u", "event_type": 5}]}
    response = post(client, "batch/", body, key=project.api_key)
    assert response.status_code == 200
    payload = response.json()
    assert payload["accepted"] == 2
    assert [(r["index"], r["code"], r["field"]) for r in payload["rejected"]] == [
        (1, "missing_field", "distinct_id"),
        (3, "invalid_type", "event_type"),
    ]
    drain_all()
    assert stored_count(project.project_id) == 2
    kept = bad_events(project.project_id)
    assert [(code, field) for code, field, _ in kept] == [
        ("missing_field", "distinct_id"),
        ("invalid_type", "event_type"),
    ]
    assert json.loads(kept[0][2]) == {"event_type": "x"}


def test_a_batch_of_only_bad_events_is_a_400_and_they_are_still_kept(client, project):
    response = post(client, "batch/", {"events": [{"event_type": "x"}]}, key=project.api_key)
    assert response.status_code == 400
    assert response.json()["code"] == "all_events_invalid"
    drain_all()
    assert len(bad_events(project.project_id)) == 1


def test_a_bad_single_event_is_a_400_naming_the_field_and_is_kept(client, project):
    response = post(client, "capture/", make_event(timestamp="soon"), key=project.api_key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_timestamp"
    assert response.json()["field"] == "timestamp"
    drain_all()
    assert [row[0] for row in bad_events(project.project_id)] == ["invalid_timestamp"]


def test_gzip_bodies_are_accepted(client, project):
    response = post(client, "batch/", {"events": [make_event(), make_event()]}, key=project.api_key, gzip=True)
    assert response.status_code == 200
    assert response.json()["accepted"] == 2


def test_a_broken_gzip_body_is_a_400(client, project):
    response = post(client, "batch/", None, raw=b"\x1f\x8bnot gzip", key=project.api_key)
    # Sent without the header it is just invalid JSON; with it, invalid gzip.
    assert response.status_code == 400
    response = client.post(
        "/api/v1/analytics/batch/", data=b"\x1f\x8b\x08nope", content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {project.api_key}", HTTP_CONTENT_ENCODING="gzip",
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_gzip"


def test_an_unknown_content_encoding_is_a_415(client, project):
    response = client.post(
        "/api/v1/analytics/capture/", data=b"{}", content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {project.api_key}", HTTP_CONTENT_ENCODING="br",
    )  # fmt: skip
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_encoding"


def test_the_size_limit_applies_after_decompression(client, project):
    # ~6 MB of JSON that gzips to a few KB: a compression bomb, refused without inflating it all.
    filler = "a" * (limits.MAX_BODY_BYTES + 1024)
    response = post(client, "capture/", make_event(properties={"x": filler}), key=project.api_key, gzip=True)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_an_uncompressed_body_over_the_limit_is_a_413(client, project):
    response = post(client, "batch/", None, raw=b" " * (limits.MAX_BODY_BYTES + 1), key=project.api_key)
    assert response.status_code == 413


def test_too_many_events_in_a_batch_is_a_413(client, project):
    events = [{"event_type": "e", "distinct_id": "u"}] * (limits.MAX_BATCH_EVENTS + 1)
    response = post(client, "batch/", {"events": events}, key=project.api_key)
    assert response.status_code == 413
    assert (response.json()["code"], response.json()["field"]) == ("too_many_events", "events")


def test_an_empty_batch_is_a_400(client, project):
    response = post(client, "batch/", {"events": []}, key=project.api_key)
    assert (response.status_code, response.json()["code"]) == (400, "no_events")


def test_invalid_json_is_a_400(client, project):
    response = post(client, "batch/", None, raw=b'{"events": [', key=project.api_key)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_json")


@pytest.mark.parametrize("path", ["capture/", "batch/", "session/start/"])
def test_no_key_is_a_401(client, project, path):
    response = post(client, path, {"events": [make_event()], **make_event()})
    assert response.status_code == 401
    assert response.json()["code"] == "missing_api_key"


@pytest.mark.parametrize("path", ["capture/", "batch/", "session/start/"])
def test_a_wrong_key_is_a_401(client, project, path):
    response = post(client, path, {"events": [make_event()], **make_event()}, key="tlp_wrong")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


def test_a_wrong_key_is_refused_even_with_a_bad_body(client, project):
    response = post(client, "batch/", None, raw=b"{", key="tlp_wrong")
    assert response.status_code == 401


def test_a_full_buffer_answers_503_with_retry_after(client, project, settings):
    settings.TIDELOG_BUFFER_MAX_ENTRIES = 1
    assert post(client, "capture/", make_event(), key=project.api_key).status_code == 200
    response = post(client, "capture/", make_event(), key=project.api_key)
    assert response.status_code == 503
    assert response.json()["code"] == "buffer_full"
    assert response["Retry-After"] == str(settings.TIDELOG_RETRY_AFTER_SECONDS)
    assert buffer.backlog() == 1


def test_redis_down_answers_503_with_retry_after(client, project, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = post(client, "batch/", {"events": [make_event()]}, key=project.api_key)
    assert response.status_code == 503
    assert response.json()["code"] == "buffer_unavailable"
    assert "Retry-After" in response


def test_wrong_method_is_a_405(client, project):
    assert client.get("/api/v1/analytics/capture/").status_code == 405


def test_session_start_and_end_become_events(client, project):
    response = post(
        client,
        "session/start/",
        {"distinct_id": "u1", "app_version": "2.0", "os_name": "Android"},
        key=project.api_key,
    )
    assert response.status_code == 201
    session_id = response.json()["session_id"]
    uuid.UUID(session_id)
    response = post(
        client,
        f"session/{session_id}/end/",
        {"distinct_id": "u1"},
        key=project.api_key,
        method="put",
    )
    assert response.status_code == 200
    drain_all()
    assert stored_count(project.project_id, session_id=session_id, event_type="$session_start") == 1
    assert stored_count(project.project_id, session_id=session_id, event_type="$session_end") == 1


def test_a_retried_session_start_is_stored_once(client, project):
    body = {"distinct_id": "u1", "session_id": "s-42"}
    for _ in range(3):
        assert post(client, "session/start/", body, key=project.api_key).status_code == 201
    drain_all()
    assert stored_count(project.project_id, session_id="s-42") == 1


def test_session_start_without_distinct_id_is_a_400(client, project):
    response = post(client, "session/start/", {"session_id": "s"}, key=project.api_key)
    assert (response.status_code, response.json()["field"]) == (400, "distinct_id")


def test_the_same_uuid_posted_twice_is_stored_once(client, project):
    event = make_event()
    for _ in range(2):
        assert post(client, "capture/", event, key=project.api_key).status_code == 200
    drain_all()
    assert stored_count(project.project_id, uuid=event["uuid"]) == 1


def test_a_batch_retried_with_a_new_sent_at_is_stored_once_at_the_same_time(client, project):
    # The phone's clock is an hour ahead. The first flush's answer was lost, so it retries later.
    skew = timedelta(hours=1)
    events = [make_event(timestamp=(datetime.now(UTC) + skew - timedelta(seconds=30)).isoformat()) for _ in range(5)]
    first = {"events": events, "sent_at": (datetime.now(UTC) + skew).isoformat()}
    assert post(client, "batch/", first, key=project.api_key).status_code == 200
    retry = {
        "events": events,
        "sent_at": (datetime.now(UTC) + skew + timedelta(seconds=2)).isoformat(),
    }
    assert post(client, "batch/", retry, key=project.api_key).status_code == 200
    assert drain_all() == 5
    assert stored_count(project.project_id) == 5
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT min(received_at - "timestamp"), max(skew_ms) FROM tidelog_events WHERE project_id = %s',
            [project.project_id],
        )
        lag, skew_ms = cursor.fetchone()
    # Filed about 30 s before it was received, not an hour in the future.
    assert timedelta(seconds=25) < lag < timedelta(seconds=40)
    assert abs(skew_ms - 3_600_000) < 5_000


def test_the_client_timestamp_and_skew_are_kept_beside_the_corrected_time(client, project):
    now = datetime.now(UTC)
    event = make_event(timestamp=(now + timedelta(minutes=10)).isoformat())
    body = {"events": [event], "sent_at": (now + timedelta(minutes=10)).isoformat()}
    post(client, "batch/", body, key=project.api_key)
    drain_all()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT "timestamp", client_timestamp, skew_ms FROM tidelog_events WHERE uuid = %s',
            [event["uuid"]],
        )
        stored_at, client_ts, skew_ms = cursor.fetchone()
    assert client_ts == datetime.fromisoformat(event["timestamp"])
    assert abs((stored_at - now).total_seconds()) < 5
    assert 595_000 < skew_ms < 605_000


def test_an_event_far_in_the_future_is_clamped_to_now(client, project):
    event = make_event(timestamp=(datetime.now(UTC) + timedelta(days=3)).isoformat())
    post(client, "capture/", event, key=project.api_key)
    drain_all()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute('SELECT "timestamp" - received_at FROM tidelog_events WHERE uuid = %s', [event["uuid"]])
        assert cursor.fetchone()[0] == timedelta(0)


def test_events_of_two_projects_never_mix(client, project, other_project):
    post(client, "capture/", make_event(), key=project.api_key)
    post(client, "batch/", {"events": [make_event(), make_event()]}, key=other_project.api_key)
    drain_all()
    assert stored_count(project.project_id) == 1
    assert stored_count(other_project.project_id) == 2
