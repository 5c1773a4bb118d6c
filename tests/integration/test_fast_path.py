"""The command API process's WSGI application (fast path in front of Django), called as a WSGI
server would call it."""

import io
import json

import pytest

from command_side import buffer
from tests.command_helpers import drain_all, make_event, stored_count

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(redis_client):
    from core.wsgi_command import application

    return application


def call(app, method, path, body=b"", headers=None):
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json", **(headers or {}),
    }  # fmt: skip
    seen = {}

    def start_response(status, response_headers):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(response_headers)

    content = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], content


def test_capture_through_the_fast_path_is_stored(app, project):
    event = make_event()
    status, headers, content = call(
        app, "POST", "/api/v1/analytics/capture/", json.dumps(event).encode(),
        {"HTTP_AUTHORIZATION": f"Bearer {project.api_key}"},
    )  # fmt: skip
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(content) == {"accepted": 1, "uuid": event["uuid"]}
    drain_all()
    assert stored_count(project.project_id, uuid=event["uuid"]) == 1


def test_session_end_is_routed_with_its_session_id(app, project):
    status, _, content = call(
        app, "PUT", "/api/v1/analytics/session/abc-123/end/", b'{"distinct_id": "u"}',
        {"HTTP_AUTHORIZATION": f"Bearer {project.api_key}"},
    )  # fmt: skip
    assert status == 200
    assert json.loads(content)["session_id"] == "abc-123"


def test_a_wrong_method_is_a_405_with_allow(app):
    status, headers, _ = call(app, "GET", "/api/v1/analytics/batch/")
    assert status == 405
    assert headers["Allow"] == "POST"


def test_errors_carry_the_same_codes_as_the_django_views(app, project):
    status, _, content = call(app, "POST", "/api/v1/analytics/batch/", b"{}", {"HTTP_AUTHORIZATION": "Bearer nope"})
    assert status == 401
    assert json.loads(content)["code"] == "invalid_api_key"


def test_a_503_carries_retry_after(app, project, settings):
    settings.TIDELOG_BUFFER_MAX_ENTRIES = 0
    status, headers, _ = call(
        app, "POST", "/api/v1/analytics/capture/", json.dumps(make_event()).encode(),
        {"HTTP_AUTHORIZATION": f"Bearer {project.api_key}"},
    )  # fmt: skip
    assert status == 503
    assert headers["Retry-After"] == str(settings.TIDELOG_RETRY_AFTER_SECONDS)
    assert buffer.backlog() == 0


def test_other_paths_fall_through_to_django(app):
    status, _, _ = call(app, "GET", "/api/v1/analytics/nothing-here/")
    assert status == 404
