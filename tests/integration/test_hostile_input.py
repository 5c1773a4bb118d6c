"""Hostile input, one reproduction per case of issue 6: every ingestion endpoint answers it with
a 4xx in the documented error shape (never a 500), through Django and through the WSGI fast
path alike, and whatever it rejects is kept in tidelog_bad_events."""

import json
from urllib.parse import quote, unquote_to_bytes

import pytest

from tests.command_helpers import bad_events, drain_all, make_event, stored_count
from tests.integration.test_fast_path import call

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db]
PREFIX = "/api/v1/analytics/"
SHAPE = {"code", "field", "message"}
# (path, method): every ingestion endpoint.
ENDPOINTS = [
    ("capture/", "POST"),
    ("batch/", "POST"),
    ("session/start/", "POST"),
    ("session/s-1/end/", "PUT"),
]


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
        # As a WSGI server gives it (PEP 3333): unquoted, its bytes as latin-1.
        path_info = unquote_to_bytes(PREFIX + path).decode("latin-1")
        status, _, content = call(application, method, path_info, body, headers)
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


# --- 2. times out of range --------------------------------------------------------------------

OUT_OF_RANGE = [
    ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp"),
    ({"timestamp": "9999-12-31T23:59:59-01:00"}, "timestamp"),
    ({"sent_at": "9999-12-31T23:59:59-01:00"}, "sent_at"),
    ({"sent_at": "0001-01-01T00:00:00+01:00"}, "sent_at"),
    # Each in range, but the skew correction (timestamp - (sent_at - received_at)) is not.
    ({"timestamp": "9999-12-31T00:00:00Z", "sent_at": "0001-01-02T00:00:00Z"}, "timestamp"),
    ({"timestamp": "0001-01-02T00:00:00Z", "sent_at": "9999-12-31T00:00:00Z"}, "timestamp"),
]


@pytest.mark.parametrize(("path", "method"), [e for e in ENDPOINTS if e[0] != "batch/"])
@pytest.mark.parametrize(("times", "field"), OUT_OF_RANGE)
def test_a_time_out_of_range_is_a_400_naming_it(send, project, path, method, times, field):
    event = {"event_type": "e", "distinct_id": "u", **times}
    status, body = send(path, method, json.dumps(event).encode(), auth(project))
    assert status == 400, body
    assert_shape(body)
    assert (body["code"], body["field"]) == ("invalid_timestamp", field)
    drain_all()
    assert [row[:2] for row in bad_events(project.project_id)] == [("invalid_timestamp", field)]


@pytest.mark.parametrize(("times", "field"), [t for t in OUT_OF_RANGE if "sent_at" not in t[0]])
def test_a_batch_event_out_of_range_is_rejected_alone(send, project, times, field):
    good = make_event()
    status, body = send("batch/", "POST", json.dumps({"events": [good, make_event(**times)]}).encode(), auth(project))
    assert status == 200, body
    assert body["accepted"] == 1
    assert [(r["index"], r["code"], r["field"]) for r in body["rejected"]] == [(1, "invalid_timestamp", field)]
    drain_all()
    assert stored_count(project.project_id, uuid=good["uuid"]) == 1
    assert [row[:2] for row in bad_events(project.project_id)] == [("invalid_timestamp", field)]


@pytest.mark.parametrize("sent_at", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_a_batch_whose_sent_at_is_out_of_range_is_a_400_kept_whole(send, project, sent_at):
    status, body = send(
        "batch/", "POST", json.dumps({"events": [make_event()], "sent_at": sent_at}).encode(), auth(project)
    )
    assert status == 400, body
    assert_shape(body)
    assert (body["code"], body["field"]) == ("invalid_timestamp", "sent_at")
    drain_all()
    assert [row[:2] for row in bad_events(project.project_id)] == [("invalid_timestamp", "sent_at")]


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T05:00:00+01:00"])
def test_times_at_the_edges_of_the_range_are_stored(send, project, timestamp):
    event = make_event(timestamp=timestamp)
    status, body = send("capture/", "POST", json.dumps(event).encode(), auth(project))
    assert status == 200, body
    drain_all()
    assert stored_count(project.project_id, uuid=event["uuid"]) == 1


# --- 4. a malformed api_key ---------------------------------------------------------------------

MALFORMED_KEYS = ["tlp_\x00", "tlp_a\x00b", "\x00", "tlp_é", "tlp_" + "a" * 500, "tlp_a b"]


@pytest.mark.parametrize(("path", "method"), ENDPOINTS)
@pytest.mark.parametrize("key", MALFORMED_KEYS)
def test_a_malformed_key_in_the_body_is_a_401(send, project, path, method, key):
    event = {**make_event(), "distinct_id": "u", "api_key": key}
    body = {"events": [event], "api_key": key} if path == "batch/" else event
    status, answer = send(path, method, json.dumps(body).encode())
    assert (status, answer["code"]) == (401, "invalid_api_key")
    assert_shape(answer)


@pytest.mark.parametrize(("path", "method"), ENDPOINTS)
@pytest.mark.parametrize("key", MALFORMED_KEYS)
def test_a_malformed_key_in_the_header_is_a_401(send, project, path, method, key):
    body = json.dumps({"events": [make_event()], **make_event()}).encode()
    status, answer = send(path, method, body, {"HTTP_AUTHORIZATION": f"Bearer {key}"})
    assert (status, answer["code"]) == (401, "invalid_api_key")
    assert_shape(answer)


def test_a_personal_key_is_still_told_apart(send, project):
    status, answer = send(
        "capture/",
        "POST",
        json.dumps(make_event()).encode(),
        {"HTTP_AUTHORIZATION": f"Bearer {project.personal_api_key}"},
    )
    assert (status, answer["code"]) == (401, "wrong_key_kind")


# --- 9. a session id in the path that is not ASCII ----------------------------------------------


@pytest.mark.parametrize("session_id", ["été", "会话-1", "é" * 200])
def test_a_non_ascii_session_id_in_the_path_is_read_as_utf8(send, project, session_id):
    body = json.dumps({"distinct_id": "u", "session_id": session_id}).encode()
    assert send("session/start/", "POST", body, auth(project))[0] == 201
    status, answer = send(f"session/{quote(session_id)}/end/", "PUT", b'{"distinct_id": "u"}', auth(project))
    assert (status, answer.get("session_id")) == (200, session_id), answer
    drain_all()
    assert stored_count(project.project_id, session_id=session_id) == 2


def test_the_session_ids_length_limit_counts_characters_in_the_path_too(send, project):
    status, answer = send(f"session/{quote('é' * 201)}/end/", "PUT", b'{"distinct_id": "u"}', auth(project))
    assert (status, answer["code"], answer["field"]) == (400, "value_too_long", "session_id")


# "%25FF" is a literal "%FF": Django re-escapes broken bytes so, and cannot tell them apart.
@pytest.mark.parametrize("segment", ["%FF", "a%C3", "%C3%28", "%ED%A0%80", "%25FF"])
def test_a_session_id_in_the_path_that_is_not_utf8_is_a_400(send, project, segment):
    status, answer = send(f"session/{segment}/end/", "PUT", b'{"distinct_id": "u"}', auth(project))
    assert (status, answer["code"], answer["field"]) == (400, "invalid_value", "session_id"), answer
    assert_shape(answer)


# --- 8. every rejected event is kept, on every endpoint -------------------------------------------

REFUSED_BODIES = [
    (b"not json", "invalid_json"),
    (b'{"distinct_id": 123, "event_type": "e", "events": 7}', "invalid_type"),
    (b"[1, 2]", "invalid_type"),
    # api_key is a field of every body: its bad byte is seen on all four (unknown fields are skipped).
    (b'{"event_type":"e","distinct_id":"u","api_key":"tlp_\xff","events":[]}', "invalid_json"),
]


@pytest.mark.parametrize(("path", "method"), ENDPOINTS)
@pytest.mark.parametrize(("raw", "code"), REFUSED_BODIES)
def test_a_body_refused_whole_is_kept_whole_as_one_bad_event(send, project, path, method, raw, code):
    status, body = send(path, method, raw, auth(project))
    assert (status, body["code"]) == (400, code), body
    assert_shape(body)
    drain_all()
    assert bad_events(project.project_id) == [(code, body["field"], raw.decode("utf-8", errors="replace"))]


def test_a_session_start_without_a_valid_distinct_id_is_kept(send, project):
    status, body = send("session/start/", "POST", b'{"distinct_id": 123}', auth(project))
    assert (status, body["code"], body["field"]) == (400, "invalid_type", "distinct_id")
    drain_all()
    assert bad_events(project.project_id) == [("invalid_type", "distinct_id", '{"distinct_id": 123}')]


def test_a_session_end_whose_path_is_refused_is_kept_with_its_body(send, project):
    status, body = send(f"session/{'s' * 201}/end/", "PUT", b'{"distinct_id": "u"}', auth(project))
    assert (status, body["code"], body["field"]) == (400, "value_too_long", "session_id")
    drain_all()
    assert bad_events(project.project_id) == [("value_too_long", "session_id", '{"distinct_id": "u"}')]


@pytest.mark.parametrize(("path", "method"), ENDPOINTS)
def test_a_broken_gzip_body_is_kept_as_sent(send, project, path, method):
    status, body = send(path, method, b"\x1f\x8b\x08nope", {**auth(project), "HTTP_CONTENT_ENCODING": "gzip"})
    assert (status, body["code"]) == (400, "invalid_gzip")
    drain_all()
    assert [row[0] for row in bad_events(project.project_id)] == ["invalid_gzip"]


@pytest.mark.parametrize(("path", "method"), ENDPOINTS)
def test_a_broken_gzip_body_without_a_key_is_a_401(send, project, path, method):
    status, body = send(path, method, b"\x1f\x8b\x08nope", {"HTTP_CONTENT_ENCODING": "gzip"})
    assert (status, body["code"]) == (401, "missing_api_key")


def test_an_empty_batch_has_no_event_to_keep(send, project):
    status, body = send("batch/", "POST", b'{"events": []}', auth(project))
    assert (status, body["code"]) == (400, "no_events")
    drain_all()
    assert bad_events(project.project_id) == []


# --- 3. deep nesting ----------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("path", "method", "depth"), [(*ENDPOINTS[0], 10_000), (*ENDPOINTS[2], 5_000), (*ENDPOINTS[3], 5_000)]
)
def test_properties_nested_thousands_deep_are_a_400_and_kept(send, project, path, method, depth):
    raw = b'{"event_type": "e", "distinct_id": "u", "properties": {"a": ' + nested(depth) + b"}}"
    status, body = send(path, method, raw, auth(project))
    assert (status, body["code"], body["field"]) == (400, "properties_too_deep", "properties"), body
    assert_shape(body)
    drain_all()
    assert [row[:2] for row in bad_events(project.project_id)] == [("properties_too_deep", "properties")]


def test_a_batch_event_nested_10000_deep_is_rejected_alone(send, project):
    good = make_event()
    deep = b'{"event_type": "e", "distinct_id": "u", "properties": {"a": ' + nested(10_000) + b"}}"
    raw = b'{"events": [' + json.dumps(good).encode() + b", " + deep + b", " + deep + b"]}"
    status, body = send("batch/", "POST", raw, auth(project))
    assert status == 200, body
    assert body["accepted"] == 1
    assert [(r["index"], r["code"], r["field"]) for r in body["rejected"]] == [
        (1, "properties_too_deep", "properties"),
        (2, "properties_too_deep", "properties"),
    ]
    drain_all()
    assert stored_count(project.project_id, uuid=good["uuid"]) == 1
    assert [row[:2] for row in bad_events(project.project_id)] == [("properties_too_deep", "properties")] * 2


@pytest.mark.parametrize(("path", "method"), ENDPOINTS)
@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_type": "e", "distinct_id": "u", "extra": ' + nested(10_000) + b', "events": []}',
        b'{"event_type": "e", "distinct_id": "u", "events": [{"extra": ' + nested(10_000) + b"}]}",
        nested(10_000),
        b"[" * 10_000,  # truncated
        b'{"properties": {"a": ' + b"[" * 10_000,  # truncated, in properties
    ],
)
def test_deep_nesting_outside_properties_refuses_the_body(send, project, path, method, raw):
    status, body = send(path, method, raw, auth(project))
    assert status == 400, body
    assert_shape(body)
    drain_all()
    assert [row[:2] for row in bad_events(project.project_id)] == [(body["code"], body["field"])]
    if raw.startswith(b'{"properties"') and path != "batch/":
        assert body["code"] == "properties_too_deep"
    else:
        assert (body["code"], body["field"]) == ("invalid_json", None)


@pytest.mark.parametrize(("path", "method"), ENDPOINTS)
def test_brackets_in_strings_are_not_nesting(send, project, path, method):
    event = make_event(distinct_id="u", properties={"s": "[" * 10_000, "t": '\\"{' * 5_000, "u": "]" * 9_000})
    body = {"events": [event]} if path == "batch/" else event
    status, answer = send(path, method, json.dumps(body).encode(), auth(project))
    assert status in (200, 201), answer
    assert answer.get("rejected", []) == []


@pytest.mark.parametrize(("path", "method"), ENDPOINTS)
def test_a_key_in_a_deep_body_still_authenticates_it(send, project, path, method):
    raw = b'{"api_key": "%s", "distinct_id": "u", "properties": {"a": %s}, "events": "x"}' % (
        project.api_key.encode(), nested(5_000),
    )  # fmt: skip
    status, body = send(path, method, raw)
    assert status == 400, body


# --- a Content-Length that is not a number --------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "status"), [("²", 200), ("\u0661", 200), ("9" * 5000, 413), ("-1", 200), (" 2 ", 400)]
)
def test_a_content_length_that_is_not_a_number_is_never_a_500(project, redis_client, length, status):
    from core.wsgi_command import application

    body = json.dumps(make_event()).encode()
    answer = call(application, "POST", PREFIX + "capture/", body, {**auth(project), "CONTENT_LENGTH": length})
    assert answer[0] == status, answer
