"""Fuzzing the command API with hostile requests (issue 6): random bytes, broken JSON and UTF-8,
wrong types in every field, extreme numbers and times, deep nesting, huge strings, NULs, gzip
garbage, odd content types, odd keys and paths; on every ingestion endpoint (PostHog's paths
too), through the WSGI fast path (core.wsgi_command, called with a WSGI environ) and through
the Django views.

Whatever comes in: never a 500; every 4xx in the documented shape {"code", "field", "message"};
and every event the answer says it rejected is in tidelog_bad_events after a drain, with its
code and field. Seeded (derandomize) and bounded: 2,200 examples, ~35 s here.
"""

import base64
import gzip
import io
import json
import uuid
import zlib
from collections.abc import Callable
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.command_helpers import bad_events, drain_all
from tests.fuzz_helpers import rolled_back

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db]
PREFIX = "/api/v1/analytics/"
SHAPE = {"code", "field", "message"}
FUZZ = settings(
    derandomize=True,
    deadline=None,
    max_examples=1000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# --- hostile JSON, built as raw bytes (so that it can be what json.dumps never makes) ----------


def dumps(value: object) -> bytes:
    return json.dumps(value).encode()


TIMES = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z", "9999-12-31T23:59:59+23:59", "0001-01-01T00:00:00-23:59",
            "2026-11-25T10:00:00+25:00", "2026-13-45T99:99:99Z", "2026-11-25", "2026-11-25 10:00:00",
            "2026-11-25T10:00:00.123456789Z", "", "now", "1732528800", "2026-11-25T10:00:00\x00Z",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
).map(dumps)  # fmt: skip
NUMBERS = st.one_of(
    st.sampled_from([b"1e400", b"-1e400", b"1" + b"0" * 400, b"-0", b"NaN", b"Infinity", b"1e-999", b"0x10", b"01"]),
    st.integers().map(lambda number: str(number).encode()),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda number: repr(number).encode()),
)
TEXT = st.one_of(
    st.text(max_size=30).map(dumps),  # NULs and any code point json.dumps escapes
    st.text(max_size=30).map(lambda text: json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.binary(max_size=20).map(lambda raw: b'"' + raw.replace(b'"', b"").replace(b"\\", b"") + b'"'),  # broken UTF-8
    st.sampled_from([b'"\\ud800"', b'"\\u0000"', b'"\\x41"', b'"unterminated', b'"a\\"', b'"\xed\xa0\x80"']),
    st.integers(201, 70_000).map(lambda size: b'"' + b"a" * size + b'"'),  # long and huge
    st.just(dumps(str(uuid.uuid4()))),
)
SCALARS = st.one_of(st.sampled_from([b"null", b"true", b"false", b"{}", b"[]"]), NUMBERS, TEXT, TIMES)
KEYS = st.one_of(st.sampled_from(["properties", "$screen", "", "\x00", "a.b"]), st.text(max_size=8)).map(dumps)


def json_object(members: list[tuple[bytes, bytes]]) -> bytes:
    return b"{" + b",".join(key + b":" + value for key, value in members) + b"}"


VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: b"[" + b",".join(items) + b"]"),
        st.lists(st.tuples(KEYS, inner), max_size=4).map(json_object),
    ),
    max_leaves=8,
)
DEEP = st.tuples(st.integers(9, 3_000), st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")])).map(
    lambda spec: spec[1][0] * spec[0] + b"1" + spec[1][1] * spec[0]
)
FIELDS = [
    "event_type", "distinct_id", "uuid", "timestamp", "session_id", "device_id", "app_version",
    "os_name", "os_version", "properties", "sent_at", "api_key", "extra",
]  # fmt: skip
GOOD = {
    "event_type": st.sampled_from(["app_opened", "$screen", "e" * 200]).map(dumps),
    "distinct_id": st.sampled_from(["user-1", "é" * 200]).map(dumps),
    "uuid": st.uuids().map(lambda value: dumps(str(value))),
    "timestamp": st.datetimes(timezones=st.timezones()).map(lambda moment: dumps(moment.isoformat())),
    "properties": st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3).map(dumps),
}


@st.composite
def events(draw: st.DrawFn) -> bytes:
    """An event: mostly well-formed, with hostile values in some of its fields."""
    members = {
        name: draw(strategy)
        for name, strategy in GOOD.items()
        if draw(st.booleans()) or name in ("event_type", "distinct_id")
    }
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        members[name] = draw(st.one_of(VALUES, DEEP) if name in ("properties", "extra") else VALUES)
    return json_object([(dumps(name), value) for name, value in members.items()])


@st.composite
def bodies(draw: st.DrawFn, endpoint: str) -> bytes:
    if endpoint == "batch/":
        members = [(b'"events"', b"[" + b",".join(draw(st.lists(events(), min_size=1, max_size=4))) + b"]")]
        members += [
            (dumps(name), draw(VALUES))
            for name in draw(st.lists(st.sampled_from(["sent_at", "api_key", "events", "x"]), max_size=2))
        ]
        body = json_object(members)
    else:
        body = draw(events())
    mutation = draw(st.sampled_from(["none"] * 6 + ["truncate", "insert", "bytes", "not_json", "deep"]))
    if mutation == "truncate":
        body = body[: draw(st.integers(0, len(body)))]
    elif mutation == "insert":
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.binary(min_size=1, max_size=3)) + body[at:]
    elif mutation == "bytes":
        body = draw(st.binary(max_size=200))
    elif mutation == "not_json":
        body = draw(st.sampled_from([b"", b"null", b"[]", b"1e400", b'"x"', b"\xef\xbb\xbf{}", b"{,}", b"\x00"]))
    elif mutation == "deep":
        body = draw(DEEP)
    return body


# --- requests ---------------------------------------------------------------------------------------

ENDPOINTS = ["capture/", "batch/", "session/start/", "session/{}/end/"]
SESSION_SEGMENTS = st.one_of(
    st.just("s-1"),
    st.text(min_size=1, max_size=210).filter(lambda text: "/" not in text).map(lambda text: quote(text, safe="")),
    st.sampled_from(["%FF", "%C3", "%00", "%25FF", "%ED%A0%80", "." * 300, "%C3%A9" * 201]),
)


@st.composite
def requests(draw: st.DrawFn, project) -> dict:
    endpoint = draw(st.sampled_from(ENDPOINTS))
    path = endpoint.format(draw(SESSION_SEGMENTS)) if "{}" in endpoint else endpoint
    right_method = "PUT" if "{}" in endpoint else "POST"
    method = draw(st.sampled_from([right_method] * 8 + ["GET", "DELETE", "POST"]))
    body = draw(bodies(endpoint))
    headers: dict[str, str] = {}
    key = draw(
        st.sampled_from(
            [project.api_key] * 6 + [None, "", "tlp_nope", "tlp_\x00", project.personal_api_key, "ä" * 70, "Basic x"]
        )
    )
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = key if key == "Basic x" else f"Bearer {key}"
    encoding = draw(st.sampled_from(["none"] * 6 + ["gzip", "gzip_truncated", "gzip_garbage", "deflate", "GZIP "]))
    if encoding == "gzip":
        body, headers["HTTP_CONTENT_ENCODING"] = gzip.compress(body), "gzip"
    elif encoding == "gzip_truncated":
        compressed = gzip.compress(body)
        body, headers["HTTP_CONTENT_ENCODING"] = compressed[: len(compressed) // 2], "gzip"
    elif encoding == "gzip_garbage":
        body, headers["HTTP_CONTENT_ENCODING"] = b"\x1f\x8b\x08" + draw(st.binary(max_size=40)), "gzip"
    elif encoding == "deflate":
        body, headers["HTTP_CONTENT_ENCODING"] = zlib.compress(body), "deflate"
    elif encoding == "GZIP ":
        body, headers["HTTP_CONTENT_ENCODING"] = gzip.compress(body), "GZIP "
    content_type = draw(
        st.sampled_from(
            ["application/json"] * 4
            + ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/json; charset=latin-1"]
        )
    )  # fmt: skip
    length = draw(st.sampled_from([str(len(body))] * 12 + ["", "-1", "\u00b2", "9" * 5000, " 1 ", "0", "1e3"]))
    return {
        "path": PREFIX + path, "method": method, "body": body, "headers": headers, "content_type": content_type,
        "content_length": length,
    }  # fmt: skip


def through_fast_path(request: dict) -> tuple[int, str, bytes]:
    from core.wsgi_command import application

    environ = {
        "REQUEST_METHOD": request["method"],
        # As a WSGI server gives it (PEP 3333): the path's bytes, unquoted, as latin-1.
        "PATH_INFO": _unquoted(request["path"]).decode("latin-1"),
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request["body"]), "CONTENT_LENGTH": request["content_length"],
        "CONTENT_TYPE": request["content_type"], "wsgi.errors": io.StringIO(), **request["headers"],
    }  # fmt: skip
    seen: dict = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    content = b"".join(application(environ, start_response))
    return seen["status"], seen["headers"].get("Content-Type", ""), content


def _unquoted(path: str) -> bytes:
    from urllib.parse import unquote_to_bytes

    return unquote_to_bytes(path)


def through_django(client) -> Callable[[dict], tuple[int, str, bytes]]:
    def send(request: dict) -> tuple[int, str, bytes]:
        response = client.generic(
            request["method"],
            request["path"],
            request["body"],
            content_type=request["content_type"],
            **request["headers"],
        )
        return response.status_code, response.get("Content-Type", ""), response.content

    return send


def kept_for(status: int, answer: dict) -> list[tuple[str, str | None]]:
    """What the answer says was rejected, hence kept: (code, field) of each bad event."""
    if "rejected" in answer:
        return [(rejected["code"], rejected["field"]) for rejected in answer["rejected"]]
    if status == 400 and answer["code"] != "no_events":
        return [(answer["code"], answer["field"])]
    return []


def check(send: Callable[[dict], tuple[int, str, bytes]], request: dict, project_id: int) -> None:
    with rolled_back():
        check_answer(send, request, project_id)


def check_answer(send: Callable[[dict], tuple[int, str, bytes]], request: dict, project_id: int) -> None:
    before = len(bad_events(project_id))
    status, content_type, content = send(request)
    assert status in (200, 201, 400, 401, 405, 413, 415), (status, content[:300])
    assert content_type == "application/json"
    answer = json.loads(content)
    if status >= 400:
        assert SHAPE <= set(answer), answer
        assert isinstance(answer["code"], str) and isinstance(answer["message"], str)
        assert answer["field"] is None or isinstance(answer["field"], str)
    drain_all()
    kept = [(code, field) for code, field, _ in bad_events(project_id)[before:]]
    assert kept == kept_for(status, answer), (status, answer)


@pytest.fixture
def lenient_client(settings):
    from django.test import Client

    settings.DEBUG = False
    return Client(raise_request_exception=False)


def test_hostile_requests_through_the_fast_path(project, redis_client):
    @FUZZ
    @given(request=requests(project))
    def one(request: dict) -> None:
        check(through_fast_path, request, project.project_id)

    one()


def test_hostile_requests_through_the_django_views(project, redis_client, lenient_client):
    @settings(FUZZ, max_examples=600)
    @given(request=requests(project))
    def one(request: dict) -> None:
        check(through_django(lenient_client), request, project.project_id)

    one()


# --- PostHog's paths (command_side/posthog/capture.py): PostHog-shaped bodies, hostile --------

POSTHOG_PATHS = ["/batch/", "/batch", "/e/", "/capture/", "/i/v0/e/", "/track/", "/engage/"]
POSTHOG_GOOD = {
    "event": st.sampled_from(["$pageview", "app_opened", "e" * 200]).map(dumps),
    "distinct_id": st.one_of(st.sampled_from(["user-1", "é" * 200]).map(dumps), st.integers().map(dumps)),
    "uuid": st.uuids().map(lambda value: dumps(str(value))),
    "timestamp": st.datetimes(timezones=st.timezones()).map(lambda moment: dumps(moment.isoformat())),
    "offset": st.integers(-(10**12), 10**12).map(dumps),
    "properties": st.fixed_dictionaries(
        {},
        optional={
            "$session_id": st.text(max_size=5),
            "$app_version": st.text(max_size=120),
            "$os": st.integers(),
            "token": st.sampled_from(["tlp_x", ""]),
            "distinct_id": st.text(max_size=3),
            "$set": st.integers(),
        },
    ).map(dumps),
    "$set": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3).map(dumps),
}
POSTHOG_FIELDS = [*POSTHOG_GOOD, "$set_once", "$distinct_id", "token", "api_key", "$token"]


@st.composite
def posthog_events(draw: st.DrawFn, key: str) -> bytes:
    members = {
        name: draw(strategy)
        for name, strategy in POSTHOG_GOOD.items()
        if draw(st.booleans()) or name in ("event", "distinct_id")
    }
    for name in draw(st.lists(st.sampled_from(POSTHOG_FIELDS), max_size=3)):
        members[name] = draw(st.one_of(VALUES, DEEP, st.just(dumps(key))) if name != "properties" else VALUES)
    return json_object([(dumps(name), value) for name, value in members.items()])


@st.composite
def posthog_requests(draw: st.DrawFn, project) -> dict:
    key = draw(st.sampled_from([project.api_key] * 6 + ["tlp_nope", project.personal_api_key, ""]))
    events = draw(st.lists(posthog_events(key), min_size=0, max_size=4))
    shape = draw(st.sampled_from(["batch", "batch", "array", "single", "garbage"]))
    if shape == "batch":
        extra = [(b'"sent_at"', draw(VALUES))] if draw(st.booleans()) else []
        body = json_object([(b'"api_key"', dumps(key)), (b'"batch"', b"[" + b",".join(events) + b"]"), *extra])
    elif shape == "array":
        body = b"[" + b",".join(events) + b"]"
    elif shape == "single":
        body = events[0] if events else b"{}"
    else:
        body = draw(st.one_of(st.binary(max_size=200), DEEP, st.sampled_from([b"", b"null", b"[]", b"{,}"])))
    headers: dict[str, str] = {}
    query = draw(st.sampled_from(["", f"api_key={key}", "compression=gzip-js", "compression=base64", "compression=lz64",
                                  f"token={key}&_=1700000000000", "_=nope", "sent_at=99999999999999999999"]))  # fmt: skip
    content_type = draw(st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]))
    encoding = draw(st.sampled_from(["none"] * 4 + ["gzip header", "gzip magic", "base64", "form", "gzip garbage"]))
    if encoding == "gzip header":
        body, headers["HTTP_CONTENT_ENCODING"] = gzip.compress(body), "gzip"
    elif encoding == "gzip magic":
        body = gzip.compress(body)
    elif encoding == "base64":
        body = base64.b64encode(body)
    elif encoding == "form":
        content_type = "application/x-www-form-urlencoded"
        body = b"data=" + quote(base64.b64encode(draw(st.sampled_from([body, gzip.compress(body)])))).encode()
    elif encoding == "gzip garbage":
        body = b"\x1f\x8b\x08" + draw(st.binary(max_size=40))
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT"]))
    path = draw(st.sampled_from(POSTHOG_PATHS))
    return {
        "path": path + (f"?{query}" if query else ""), "method": method, "body": body, "headers": headers,
        "content_type": content_type, "content_length": str(len(body)),
    }  # fmt: skip


def through_fast_path_with_query(request: dict) -> tuple[int, str, bytes]:
    path, _, query = request["path"].partition("?")
    return through_fast_path({**request, "path": path, "headers": {**request["headers"], "QUERY_STRING": query}})


def test_hostile_posthog_requests_through_the_fast_path(project, redis_client):
    @settings(FUZZ, max_examples=600)
    @given(request=posthog_requests(project))
    def one(request: dict) -> None:
        check(through_fast_path_with_query, request, project.project_id)

    one()
