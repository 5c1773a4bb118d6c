"""Hostile input, one reproduction per case of issue 6: every ingestion endpoint answers it with
a 4xx in the documented error shape (never a 500), through Django and through the WSGI fast
path alike, and whatever it rejects is kept in tidelog_bad_events."""

import json

import pytest

from tests.command_helpers import bad_events, drain_all, make_event
from tests.integration.test_fast_path import call

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db]
PREFIX = "/api/v1/analytics/"
SHAPE = {"code", "field", "message"}
# (path, method, how the body's event is wrapped): every ingestion endpoint.
ENDPOINTS = [
    ("capture/", "POST"),
    ("batch/", "POST"),
    ("session/start/", "POST"),
    ("session/s-1/end/", "PUT"),
]


@pytest.fixture
def fast_path(redis_client):
    from core.wsgi_command import application

    return application


@pytest.fixture(params=["django", "fast_path"])
def send(request, redis_client, settings):
    """send(path, method, body, headers) -> (status, json body), through either server."""
    if request.param == "django":
        from django.test import Client

        settings.DEBUG = False
        client = Client(raise_request_exception=False)

        def through_django(path, method, body, headers=None):
            response = getattr(client, method.lower())(
                PREFIX + path, data=body, content_type="application/json", **(headers or {})
            )
            return response.status_code, json.loads(response.content)

        return through_django
    from core.wsgi_command import application

    def through_fast_path(path, method, body, headers=None):
        status, _, content = call(application, method, PREFIX + path, body, headers)
        return status, json.loads(content)

    return through_fast_path


def auth(project):
    return {"HTTP_AUTHORIZATION": f"Bearer {project.api_key}"}


def wrap(path, event: bytes) -> bytes:
    """The body an endpoint takes, around one raw event."""
    return b'{"events": [' + event + b"]}" if path == "batch/" else event


def assert_shape(body):
    assert SHAPE <= set(body), body


# --- 1. invalid UTF-8 inside a JSON string --------------------------------------------------


@pytest.mark.parametrize(("path", "method"), ENDPOINTS)
def test_invalid_utf8_in_a_string_is_a_400(send, project, path, method):
    status, body = send(path, method, wrap(path, b'{"event_type":"e\xff","distinct_id":"u\xff"}'), auth(project))
    assert status == 400, body
    assert_shape(body)
    assert body["code"] in ("invalid_json", "all_events_invalid")
    if path == "batch/":
        assert body["rejected"][0]["code"] == "invalid_json"


def test_invalid_utf8_in_one_batch_event_rejects_that_event_alone(send, project):
    good = json.dumps(make_event()).encode()
    status, body = send(
        "batch/", "POST", b'{"events": [' + good + b',{"event_type":"e\xff","distinct_id":"u"}]}', auth(project)
    )
    assert status == 200
    assert body["accepted"] == 1
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "invalid_json")]
    drain_all()
    assert [row[0] for row in bad_events(project.project_id)] == ["invalid_json"]
