"""One error shape everywhere: every error of both APIs, the ones Django answers outside the
endpoints included (an unknown path, a bug), is `{"code", "field", "message"}` as JSON.

The command API is exercised twice: through Django (the test client) and through the WSGI fast
path that fronts it in production (core.wsgi_command), which answers its routes itself.
"""

import json

import pytest
from django.test import Client, RequestFactory
from django.urls import get_resolver

from tests.command_helpers import make_event, post
from tests.integration.test_fast_path import call

pytestmark = pytest.mark.django_db
COMMAND = "/api/v1/analytics/"
QUERY = "/api/v1/analytics/admin/"
SHAPE = {"code", "field", "message"}
INGEST_PATHS = ["capture/", "batch/", "session/start/", "session/s-1/end/"]


@pytest.fixture
def fast_path(redis_client):
    from core.wsgi_command import application

    return application


@pytest.fixture
def lenient_client(settings):
    """A client that returns a 500 as the server answers it, instead of re-raising the error."""
    settings.DEBUG = False
    return Client(raise_request_exception=False)


def break_ingestion(monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("a bug in ingestion")

    monkeypatch.setattr("command_side.ingest.single_outcome", explode)


def assert_error(status, content_type, content, *, expected_status, code):
    assert status == expected_status
    assert content_type == "application/json"
    body = json.loads(content)
    assert set(body) == SHAPE
    assert body["code"] == code
    return body


# --- command API through Django --------------------------------------------------------------


@pytest.mark.urls("core.urls_command")
@pytest.mark.parametrize("path", ["/", "/nope/", COMMAND + "nope/", COMMAND + "capture/extra/"])
def test_it_answers_an_unknown_command_path_with_a_json_404(client, path):
    response = client.post(path, b"{}", content_type="application/json")
    body = assert_error(
        response.status_code, response["Content-Type"], response.content, expected_status=404, code="not_found"
    )
    assert body["message"] == f"nothing at {path}"


@pytest.mark.urls("core.urls_command")
def test_it_answers_a_wrong_method_on_the_command_api_with_a_json_405(client):
    response = client.get(COMMAND + "capture/")
    assert_error(
        response.status_code, response["Content-Type"], response.content, expected_status=405, code="method_not_allowed"
    )
    assert response["Allow"] == "POST"


@pytest.mark.urls("core.urls_command")
def test_it_answers_a_command_api_bug_with_a_json_500(lenient_client, project, monkeypatch, redis_client):
    break_ingestion(monkeypatch)
    response = post(lenient_client, "capture/", make_event(), key=project.api_key)
    body = assert_error(
        response.status_code, response["Content-Type"], response.content, expected_status=500, code="internal_error"
    )
    assert "a bug" not in body["message"]  # the cause goes to the log, not to the client


# --- command API through the fast path -------------------------------------------------------


@pytest.mark.urls("core.urls_command")
@pytest.mark.parametrize("path", ["/", "/nope/", COMMAND + "nope/", COMMAND + "session/s-1/"])
def test_the_fast_path_answers_an_unknown_path_with_a_json_404(fast_path, path):
    status, headers, content = call(fast_path, "POST", path, b"{}")
    assert_error(status, headers["Content-Type"], content, expected_status=404, code="not_found")


def test_the_fast_path_answers_a_wrong_method_with_a_json_405(fast_path):
    status, headers, content = call(fast_path, "GET", COMMAND + "session/s-1/end/")
    assert_error(status, headers["Content-Type"], content, expected_status=405, code="method_not_allowed")
    assert headers["Allow"] == "PUT, POST"


def test_the_fast_path_answers_a_bug_with_a_json_500(fast_path, project, monkeypatch, settings):
    settings.DEBUG = False
    break_ingestion(monkeypatch)
    status, headers, content = call(
        fast_path, "POST", COMMAND + "capture/", json.dumps(make_event()).encode(),
        {"HTTP_AUTHORIZATION": f"Bearer {project.api_key}"},
    )  # fmt: skip
    body = assert_error(status, headers["Content-Type"], content, expected_status=500, code="internal_error")
    assert "a bug" not in body["message"]


# --- the same request without a key gets the same answer on every endpoint -------------------

BODIES = {
    "valid": json.dumps({"events": [make_event()], **make_event()}).encode(),
    "empty object": b"{}",
    "not json": b"{",
    "empty": b"",
}


@pytest.mark.urls("core.urls_command")
@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_it_answers_a_request_without_a_key_with_the_same_401_on_every_endpoint(client, fast_path, project, body):
    answers = set()
    for path in INGEST_PATHS:
        response = post(client, path, None, raw=body)
        answers.add((response.status_code, response.content))
        status, _, content = call(fast_path, "POST", COMMAND + path, body)
        answers.add((status, content))
    assert len(answers) == 1, answers
    status, content = answers.pop()
    assert status == 401
    assert json.loads(content)["code"] == "missing_api_key"


# --- a key of the wrong kind -----------------------------------------------------------------


@pytest.mark.urls("core.urls_command")
@pytest.mark.parametrize("path", INGEST_PATHS)
def test_it_tells_a_personal_key_sent_to_the_command_api_apart(client, fast_path, project, path):
    event = make_event()
    response = post(client, path, event, key=project.personal_api_key)
    body = assert_error(
        response.status_code, response["Content-Type"], response.content, expected_status=401, code="wrong_key_kind"
    )
    assert "personal API key" in body["message"]
    status, _, content = call(
        fast_path, "POST", COMMAND + path, json.dumps(event).encode(),
        {"HTTP_AUTHORIZATION": f"Bearer {project.personal_api_key}"},
    )  # fmt: skip
    assert (status, json.loads(content)) == (401, json.loads(response.content))


@pytest.mark.urls("core.urls_command")
def test_it_tells_a_personal_key_in_the_body_apart(client, project):
    response = post(client, "capture/", {**make_event(), "api_key": project.personal_api_key})
    assert (response.status_code, response.json()["code"]) == (401, "wrong_key_kind")


@pytest.mark.urls("core.urls_command")
def test_an_unknown_key_that_looks_personal_is_still_the_wrong_kind(client, project):
    response = post(client, "capture/", make_event(), key="tls_not_issued")
    assert (response.status_code, response.json()["code"]) == (401, "wrong_key_kind")


def test_it_tells_a_project_key_sent_to_the_query_api_apart(client, project):
    response = client.get(QUERY + "events/", HTTP_AUTHORIZATION=f"Bearer {project.api_key}")
    body = assert_error(
        response.status_code, response["Content-Type"], response.content, expected_status=401, code="wrong_key_kind"
    )
    assert "personal API key" in body["message"]
    assert body["field"] is None


def test_an_unknown_personal_key_is_not_the_wrong_kind(client, project):
    response = client.get(QUERY + "events/", HTTP_AUTHORIZATION="Bearer tls_not_issued")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


# --- query API -------------------------------------------------------------------------------


@pytest.mark.parametrize("urls", ["core.urls_query", "core.urls_command"])
@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "bad_request"), (403, "permission_denied"), (404, "not_found"), (500, "internal_error")],
)
def test_every_error_handler_of_both_url_roots_answers_json(urls, status, code):
    handler = get_resolver(urls).resolve_error_handler(status)
    request = RequestFactory().get("/somewhere/")
    response = handler(request) if status == 500 else handler(request, exception=Exception("x"))
    assert_error(response.status_code, response["Content-Type"], response.content, expected_status=status, code=code)


@pytest.mark.parametrize("urls", ["core.urls_query", "core.urls_command"])
def test_it_answers_a_request_django_refuses_with_a_json_400(lenient_client, settings, urls):
    settings.ROOT_URLCONF = urls
    response = lenient_client.get("/nope/", HTTP_HOST="not-an-allowed-host.example")
    assert_error(
        response.status_code, response["Content-Type"], response.content, expected_status=400, code="bad_request"
    )


# ("/" is the dashboard's: it opens the overview.)
@pytest.mark.parametrize("path", ["/api/", "/nope/", QUERY + "nope/", "/api/v1/analytics/capture/"])
def test_it_answers_an_unknown_query_path_with_a_json_404(client, project, path):
    response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}")
    body = assert_error(
        response.status_code, response["Content-Type"], response.content, expected_status=404, code="not_found"
    )
    assert body["message"] == f"nothing at {path}"


def test_it_answers_a_query_api_bug_with_a_json_500(lenient_client, project, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("a bug in a selector")

    monkeypatch.setattr("query_side.selectors.event_list", explode)
    response = lenient_client.get(QUERY + "events/", HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}")
    body = assert_error(
        response.status_code, response["Content-Type"], response.content, expected_status=500, code="internal_error"
    )
    assert "a bug" not in body["message"]
