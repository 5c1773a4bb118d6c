"""PostHog's wire protocol on the command API (command_side/posthog/, docs/posthog-compat.md), as
its SDKs send it, through the command API's WSGI application; the RSGI edge `make run` serves
answers every PostHog request alike. The SDKs themselves are driven in tests/e2e and
tests/browser."""

import base64
import gzip
import json
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from command_side import fast_path as fast_path_module
from tests.command_helpers import bad_events, drain_all, stored_count
from tests.integration.test_fast_path_parity import KEY, Request, call, call_rsgi, same_headers

pytestmark = pytest.mark.django_db

CAPTURE_PATHS = ("batch", "e", "capture", "i/v0/e", "track")


@pytest.fixture
def fast_path(redis_client):
    from core.wsgi_command import application

    return application


@pytest.fixture
def rsgi_edge(redis_client):
    from core.rsgi_command import application

    return application


@pytest.fixture
def flags(project, redis_client):
    from command_side.flags.service import FlagCreate, flag_create
    from flags.definition import Condition, PropertyFilter, Variant

    create = [
        FlagCreate(key="beta", enabled=True, rollout_percentage=50, payload={"color": "blue"}),
        FlagCreate(
            key="checkout",
            enabled=True,
            variants=[Variant("control", 50), Variant("test", 50, payload=[1, 2])],
            conditions=[Condition(properties=(PropertyFilter("plan", "exact", ["pro"]),))],
        ),
        FlagCreate(key="vip", enabled=True, rollout_percentage=0, overrides={"u-vip": True}),
        FlagCreate(key="off", enabled=False),
    ]
    for fields in create:
        flag_create(project_id=project.project_id, fields=fields, actor="t")


def posthog_event(**fields: Any) -> dict[str, Any]:
    event = {"event": "app_opened", "distinct_id": "u1", "uuid": str(uuid.uuid4()), "properties": {}}
    event.update(fields)
    return event


def send(app, method: str, path: str, body: bytes = b"", *, query: str = "", **headers: str):
    """A request to a PostHog path (under "/"), with no Authorization unless given."""
    request = Request(method, path, body, headers=headers, query=query, prefix="/")
    status, answer_headers, content = call(app, request, "")
    kind = answer_headers.get("Content-Type", "")
    return status, answer_headers, json.loads(content) if kind == "application/json" and content else content


def batch(key: str, *events: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"api_key": key, "batch": list(events), **extra}, ensure_ascii=False).encode()


def stored(project_id: int) -> list[dict[str, Any]]:
    drain_all()
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT uuid::text, event_type, distinct_id, "timestamp", session_id, device_id, app_version, os_name,
                      os_version, properties FROM tidelog_events WHERE project_id = %s ORDER BY "timestamp", uuid""",
            [project_id],
        )
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        if isinstance(row["properties"], str):
            row["properties"] = json.loads(row["properties"])
    return rows


# --- capture: paths, encodings, shapes -----------------------------------------------------------


@pytest.mark.parametrize("path", [p + slash for p in CAPTURE_PATHS for slash in ("/", "")])
def test_every_capture_path_stores_a_batch_with_or_without_its_slash(fast_path, project, path):
    events = [posthog_event(), posthog_event(event="purchase")]
    status, _, answer = send(fast_path, "POST", path, batch(project.api_key, *events))
    assert (status, answer) == (200, {"status": 1, "accepted": 2, "rejected": []})
    assert sorted(e["uuid"] for e in stored(project.project_id)) == sorted(e["uuid"] for e in events)


def encodings(key: str, body: bytes) -> dict[str, tuple[bytes, str, dict[str, str]]]:
    b64 = base64.b64encode(body)
    return {
        "json": (body, "", {}),
        "gzip by Content-Encoding (python, node, mobile)": (gzip.compress(body), "", {"HTTP_CONTENT_ENCODING": "gzip"}),
        "gzip by magic bytes, as text/plain (posthog-js)": (gzip.compress(body), "", {"CONTENT_TYPE": "text/plain"}),
        "gzip-js in the query (older posthog-js)": (gzip.compress(body), "compression=gzip-js", {}),
        "base64 body": (b64, "", {"CONTENT_TYPE": "text/plain"}),
        # A form turns an unescaped '+' into ' ': restored, as PostHog's server does.
        "data= form, base64": (
            b"data=" + b64.replace(b"+", b" ") + b"&compression=base64",
            "compression=base64",
            {"CONTENT_TYPE": "application/x-www-form-urlencoded"},
        ),
        "data= form, url-escaped JSON": (
            b"data=" + urllib.parse.quote(body).encode(),
            "",
            {"CONTENT_TYPE": "application/x-www-form-urlencoded; charset=UTF-8"},
        ),
    }


@pytest.mark.parametrize("name", list(encodings("k", b"{}")))
def test_each_encoding_the_sdks_send_is_read(fast_path, project, name):
    # Properties with '+' and '/' in their base64: the form's '+' restoration is exercised.
    event = posthog_event(properties={"text": "a>>b??c~~" * 20, "price": "12 €"})
    body, query, headers = encodings(project.api_key, batch(project.api_key, event))[name]
    status, _, answer = send(fast_path, "POST", "e/", body, query=query, **headers)
    assert (status, answer["accepted"]) == (200, 1), answer
    [row] = stored(project.project_id)
    assert (row["uuid"], row["properties"]) == (event["uuid"], event["properties"])


def test_a_get_carries_its_events_in_the_data_field(fast_path, project):
    event = posthog_event(properties={"token": project.api_key})
    data = base64.b64encode(json.dumps(event).encode()).decode()
    status, _, _ = send(fast_path, "GET", "e/", query=urllib.parse.urlencode({"data": data}))
    assert status == 200
    assert [row["uuid"] for row in stored(project.project_id)] == [event["uuid"]]


def test_lz64_is_refused_as_unsupported(fast_path, project):
    status, _, answer = send(fast_path, "POST", "e/", b"N4Ig", query=f"compression=lz64&api_key={project.api_key}")
    assert (status, answer["code"]) == (415, "unsupported_encoding")


def test_an_array_of_events_names_its_key_in_each_event(fast_path, project):
    # posthog-js before the batch object: a bare array, the key in each event's properties.
    events = [posthog_event(properties={"token": project.api_key, "distinct_id": "d-1"}) for _ in range(2)]
    for event in events:
        del event["distinct_id"]
    status, _, answer = send(fast_path, "POST", "e/", json.dumps(events).encode())
    assert (status, answer["accepted"]) == (200, 2)
    rows = stored(project.project_id)
    assert {row["distinct_id"] for row in rows} == {"d-1"}
    assert all("token" not in row["properties"] for row in rows)  # the key is not kept as data


def test_a_single_event_with_its_key_is_one_event(fast_path, project):
    event = posthog_event(api_key=project.api_key)
    status, _, answer = send(fast_path, "POST", "capture/", json.dumps(event).encode())
    assert (status, answer["accepted"]) == (200, 1)
    assert [row["uuid"] for row in stored(project.project_id)] == [event["uuid"]]


# posthog-js names the OS `$os`; PostHog's mobile SDKs name it `$os_name` (posthog-android's
# PostHogAndroidContext, posthog-ios's PostHogContext).
@pytest.mark.parametrize("os_property", ["$os", "$os_name"])
def test_posthogs_properties_fill_tidelogs_columns(fast_path, project, os_property):
    properties = {
        "$session_id": "s-9", "$device_id": "dev-1", "$app_version": "3.1.0", os_property: "Android",
        "$os_version": "14", "$lib": "posthog-android", "plan": "pro",
    }  # fmt: skip
    event = posthog_event(distinct_id=42, properties=properties)
    assert send(fast_path, "POST", "batch/", batch(project.api_key, event))[0] == 200
    [row] = stored(project.project_id)
    assert (row["distinct_id"], row["session_id"], row["device_id"]) == ("42", "s-9", "dev-1")
    assert (row["app_version"], row["os_name"], row["os_version"]) == ("3.1.0", "Android", "14")
    assert row["properties"] == properties  # kept as sent, too


def test_top_level_set_and_set_once_join_the_properties_the_people_projection_reads(fast_path, project):
    event = posthog_event(
        event="$identify",
        properties={"$anon_distinct_id": "anon-1", "$set": {"a": 1, "b": 1}},
        **{"$set": {"b": 2, "c": 3}, "$set_once": {"first": "x"}},
    )
    assert send(fast_path, "POST", "e/", batch(project.api_key, event))[0] == 200
    [row] = stored(project.project_id)
    assert row["properties"]["$set"] == {"a": 1, "b": 2, "c": 3}
    assert row["properties"]["$set_once"] == {"first": "x"}


def test_engage_sets_person_properties_as_an_identify(fast_path, project):
    body = {"$token": project.api_key, "$distinct_id": "u-7", "$set": {"plan": "team"}}
    assert send(fast_path, "POST", "engage/", json.dumps(body).encode())[0] == 200
    [row] = stored(project.project_id)
    assert (row["event_type"], row["distinct_id"], row["properties"]) == (
        "$identify",
        "u-7",
        {"$set": {"plan": "team"}},
    )


def test_offset_times_an_event_before_its_arrival_and_sent_at_corrects_a_skewed_clock(fast_path, project):
    now = datetime.now(UTC)
    skewed = now + timedelta(hours=2)  # the device's clock runs two hours ahead
    by_offset = posthog_event(offset=60_000)
    del by_offset["uuid"]
    by_offset["uuid"] = str(uuid.uuid4())
    by_time = posthog_event(timestamp=(skewed - timedelta(minutes=5)).isoformat())
    body = batch(project.api_key, by_offset, by_time, sent_at=skewed.isoformat())
    assert send(fast_path, "POST", "batch/", body)[0] == 200
    times = {row["uuid"]: row["timestamp"] for row in stored(project.project_id)}
    assert abs(times[by_offset["uuid"]] - (now - timedelta(minutes=1))) < timedelta(seconds=5)
    assert abs(times[by_time["uuid"]] - (now - timedelta(minutes=5))) < timedelta(seconds=5)


def test_a_batch_sent_twice_is_stored_once(fast_path, project):
    body = batch(project.api_key, posthog_event(), posthog_event())
    for _ in range(2):
        assert send(fast_path, "POST", "batch/", body)[0] == 200
    assert len(stored(project.project_id)) == 2


def test_a_beacon_gets_a_bodiless_204(fast_path, project):
    status, _, content = send(fast_path, "POST", "e/", batch(project.api_key, posthog_event()), query="beacon=1")
    assert (status, content) == (204, b"")


# --- capture: refusals, in the status codes PostHog's SDKs act on ------------------------------


def test_a_bad_event_is_kept_and_named_as_posthog_names_it_while_the_others_go_on(fast_path, project):
    good, nameless, long_version = (
        posthog_event(),
        posthog_event(),
        posthog_event(properties={"$app_version": "9" * 101}),
    )
    del nameless["event"]
    status, _, answer = send(fast_path, "POST", "batch/", batch(project.api_key, good, nameless, long_version))
    assert (status, answer["status"], answer["accepted"]) == (200, 1, 1)  # 200: the SDK must not resend it
    assert [(r["index"], r["code"], r["field"]) for r in answer["rejected"]] == [
        (1, "missing_field", "event"),
        (2, "value_too_long", "properties.$app_version"),
    ]
    assert [row["uuid"] for row in stored(project.project_id)] == [good["uuid"]]
    assert [(code, field) for code, field, _ in bad_events(project.project_id)] == [
        ("missing_field", "event"),
        ("value_too_long", "properties.$app_version"),
    ]


def test_a_batch_without_a_good_event_is_a_400_and_kept(fast_path, project):
    nameless = posthog_event()
    del nameless["distinct_id"]
    status, _, answer = send(fast_path, "POST", "batch/", batch(project.api_key, nameless))
    assert (status, answer["code"], answer["accepted"]) == (400, "all_events_invalid", 0)
    drain_all()
    assert [(code, field) for code, field, _ in bad_events(project.project_id)] == [("missing_field", "distinct_id")]


def test_a_body_that_is_not_json_is_a_400_kept_whole(fast_path, project):
    status, _, answer = send(fast_path, "POST", "batch/", b'{"batch": [nope', query=f"api_key={project.api_key}")
    assert (status, answer["code"]) == (400, "invalid_json")
    drain_all()
    assert [
        bytes(payload, "utf-8") if isinstance(payload, str) else bytes(payload)
        for _, _, payload in bad_events(project.project_id)
    ] == [b'{"batch": [nope']


@pytest.mark.parametrize(
    ("key", "code"),
    [(None, "missing_api_key"), ("tlp_unknown", "invalid_api_key"), ("tls_personal", "wrong_key_kind")],
)
def test_a_bad_key_is_a_401_no_sdk_retries(fast_path, project, key, code):
    body = json.dumps({"batch": [posthog_event()], **({"api_key": key} if key else {})}).encode()
    status, _, answer = send(fast_path, "POST", "batch/", body)
    assert (status, answer["code"]) == (401, code)
    assert stored_count(project.project_id) == 0


def test_two_different_keys_in_one_request_are_refused(fast_path, project, other_project):
    event = posthog_event(properties={"token": other_project.api_key})
    status, _, answer = send(
        fast_path, "POST", "e/", json.dumps([event, posthog_event(token=project.api_key)]).encode()
    )
    assert (status, answer["code"]) == (401, "invalid_api_key")
    drain_all()
    assert stored_count(project.project_id) == stored_count(other_project.project_id) == 0


def test_a_full_buffer_is_a_503_the_sdks_retry_after(fast_path, project, settings):
    settings.TIDELOG_BUFFER_MAX_ENTRIES = 0
    status, headers, answer = send(fast_path, "POST", "batch/", batch(project.api_key, posthog_event()))
    assert (status, answer["code"], headers["Retry-After"]) == (
        503,
        "buffer_full",
        str(settings.TIDELOG_RETRY_AFTER_SECONDS),
    )


def test_an_empty_batch_is_a_400(fast_path, project):
    status, _, answer = send(fast_path, "POST", "batch/", batch(project.api_key))
    assert (status, answer["code"]) == (400, "no_events")


# --- CORS: posthog-js posts from the app's origin ---------------------------------------------


def test_a_preflight_is_answered_for_the_origin_that_asks(fast_path):
    status, headers, _ = send(
        fast_path,
        "OPTIONS",
        "e/",
        HTTP_ORIGIN="https://app.example",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Allow-Headers"] == "content-type"


def test_answers_to_a_browser_carry_its_origin_errors_too(fast_path, project):
    ok = send(fast_path, "POST", "e/", batch(project.api_key, posthog_event()), HTTP_ORIGIN="https://a.example")
    refused = send(fast_path, "POST", "e/", batch("tlp_unknown", posthog_event()), HTTP_ORIGIN="https://a.example")
    assert (ok[0], refused[0]) == (200, 401)
    assert ok[1]["Access-Control-Allow-Origin"] == refused[1]["Access-Control-Allow-Origin"] == "https://a.example"
    assert (
        "Access-Control-Allow-Origin" not in send(fast_path, "POST", "e/", batch(project.api_key, posthog_event()))[1]
    )


# --- flags ---------------------------------------------------------------------------------------


def for_user(fast_path, project, distinct_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"distinct_id": distinct_id, "person_properties": properties}).encode()
    request = Request("POST", "public/feature-flags/for_user/", body)
    status, _, content = call(fast_path, request, project.api_key)
    assert status == 200
    return json.loads(content)["flags"]  # type: ignore[no-any-return]


def flags_request(project, distinct_id: str = "u1", **fields: Any) -> bytes:
    return json.dumps({"token": project.api_key, "distinct_id": distinct_id, **fields}).encode()


@pytest.mark.parametrize("version", ["2", "4"])
def test_flags_v2_answers_every_live_flag_as_for_user_does(fast_path, project, flags, version):
    for n in range(20):
        properties = {"plan": ("pro", "free")[n % 2]}
        expected = for_user(fast_path, project, f"u{n}", properties)
        body = flags_request(project, f"u{n}", person_properties=properties)
        status, _, answer = send(fast_path, "POST", "flags/", body, query=f"v={version}")
        assert status == 200
        assert answer["errorsWhileComputingFlags"] is False and answer["requestId"]
        assert set(answer["flags"]) == {"beta", "checkout", "vip", "off"}
        for key, detail in answer["flags"].items():
            mine = expected[key]
            assert (detail["key"], detail["enabled"], detail["variant"]) == (key, mine["enabled"], mine["variant"])
            payload = detail["metadata"]["payload"]
            assert (json.loads(payload) if payload is not None else None) == mine["payload"]
            assert detail["reason"]["code"] == {"out_of_rollout": "out_of_rollout_bound"}.get(
                mine["reason"], mine["reason"]
            )
            assert isinstance(detail["metadata"]["id"], int) and detail["metadata"]["version"] >= 1


def test_posthogs_mobile_sdks_requests_as_posthog_android_sends_them(fast_path, project, flags):
    """posthog-android's PostHogApi: every body gzipped by its GzipRequestInterceptor, `/batch`
    (no slash) with PostHogBatchEvent's {api_key, batch, sent_at}, `/flags/?v=2` with
    PostHogFlagsRequest's fields, `/array/<key>/config` by GET. posthog-ios sends the same."""
    gz = {
        "Content-Type": "application/json; charset=utf-8",
        "Content-Encoding": "gzip",
        "User-Agent": "posthog-android/3.21.0",
    }
    context = {"$app_version": "1.4.0", "$app_build": 140, "$os_name": "Android", "$os_version": "15",
               "$device_manufacturer": "Google", "$device_model": "Pixel 8", "$device_type": "Mobile",
               "$lib": "posthog-android", "$lib_version": "3.21.0", "$session_id": "0193e2d4-session", "$is_emulator": False}  # fmt: skip
    events = [
        posthog_event(event="Application Opened", distinct_id="anon-7", timestamp="2026-11-27T09:00:00.120Z",
                      properties={**context, "from_background": False, "version": "1.4.0", "build": 140}),
        posthog_event(event="$screen", distinct_id="anon-7", timestamp="2026-11-27T09:00:01.500Z",
                      properties={**context, "$screen_name": "Checkout"}),
    ]  # fmt: skip
    body = gzip.compress(batch(project.api_key, *events, sent_at="2026-11-27T09:00:02.000Z"))
    assert send(fast_path, "POST", "batch", body, **gz)[0] == 200
    rows = {row["event_type"]: row for row in stored(project.project_id)}
    assert set(rows) == {"Application Opened", "$screen"}
    for row in rows.values():
        fields = (row["session_id"], row["app_version"], row["os_name"], row["os_version"])
        assert fields == ("0193e2d4-session", "1.4.0", "Android", "15")
    assert rows["$screen"]["properties"]["$screen_name"] == "Checkout"
    flag_request = {"api_key": project.api_key, "distinct_id": "user-42", "$anon_distinct_id": "anon-7",
                    "person_properties": {"plan": "pro"}}  # fmt: skip
    status, _, answer = send(
        fast_path, "POST", "flags/", gzip.compress(json.dumps(flag_request).encode()), query="v=2", **gz
    )
    expected = for_user(fast_path, project, "user-42", {"plan": "pro"})
    assert status == 200
    assert {k: (f["enabled"], f["variant"]) for k, f in answer["flags"].items()} == {
        k: (f["enabled"], f["variant"]) for k, f in expected.items()
    }
    status, _, config = send(fast_path, "GET", f"array/{project.api_key}/config", **{"User-Agent": gz["User-Agent"]})
    assert status == 200 and config["sessionRecording"] is False


def test_flags_without_a_version_and_decide_answer_the_older_shapes(fast_path, project, flags):
    expected = for_user(fast_path, project, "u-vip", {"plan": "pro"})
    body = flags_request(project, "u-vip", person_properties={"plan": "pro"})
    values = {k: f["variant"] or f["enabled"] for k, f in expected.items()}
    on = {k: v for k, v in values.items() if v}
    payloads = {
        k: json.dumps(f["payload"], separators=(",", ":")) for k, f in expected.items() if f["payload"] is not None
    }
    legacy = send(fast_path, "POST", "flags", body)[2]
    assert (legacy["featureFlags"], legacy["featureFlagPayloads"]) == (values, payloads)
    assert send(fast_path, "POST", "decide/", body, query="v=1")[2]["featureFlags"] == sorted(on)
    assert send(fast_path, "POST", "decide/", body, query="v=2")[2]["featureFlags"] == on
    assert send(fast_path, "POST", "decide/", body, query="v=3")[2]["featureFlags"] == values
    v4 = send(fast_path, "POST", "decide/", body, query="v=4")[2]
    assert {k: f["variant"] or f["enabled"] for k, f in v4["flags"].items()} == values
    assert v4["supportedCompression"] == ["gzip", "gzip-js"]  # /decide/ carried the config


def test_flags_read_the_key_and_user_wherever_the_sdks_put_them(fast_path, project, flags):
    body = json.dumps({"api_key": project.api_key, "$distinct_id": 7, "flag_keys_to_evaluate": ["beta"]}).encode()
    status, _, answer = send(
        fast_path, "POST", "flags/", gzip.compress(body), query="v=2", HTTP_CONTENT_ENCODING="gzip"
    )
    assert (status, set(answer["flags"])) == (200, {"beta"})
    assert answer["flags"]["beta"]["enabled"] == for_user(fast_path, project, "7", {})["beta"]["enabled"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"distinct_id": "u1"}, 401, "missing_api_key", None),
        ({"token": "<key>"}, 400, "missing_field", "distinct_id"),
        ({"token": "<key>", "distinct_id": "u" * 201}, 400, "value_too_long", "distinct_id"),
        ({"token": "<key>", "distinct_id": "u", "person_properties": [1]}, 400, "invalid_type", "person_properties"),
    ],
)
def test_bad_flag_requests_are_refused_naming_the_field(fast_path, project, flags, body, status, code, field):
    raw = json.dumps(body).replace("<key>", project.api_key).encode()
    answer = send(fast_path, "POST", "flags/", raw, query="v=2")
    assert (answer[0], answer[2]["code"], answer[2]["field"]) == (status, code, field)


# --- local evaluation ------------------------------------------------------------------------


def definitions(fast_path, project, path: str = "flags/definitions", **headers: str):
    return send(
        fast_path, "GET", path, query=f"token={project.api_key}&send_cohorts",
        HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}", **headers,
    )  # fmt: skip


@pytest.mark.parametrize("path", ["flags/definitions", "api/feature_flag/local_evaluation/"])
def test_local_evaluation_gets_the_definitions_in_posthogs_format(fast_path, project, flags, path):
    status, headers, answer = definitions(fast_path, project, path)
    assert status == 200 and headers["ETag"].startswith('W/"')
    by_key = {flag["key"]: flag for flag in answer["flags"]}
    assert (answer["group_type_mapping"], answer["cohorts"]) == ({}, {})
    assert by_key["beta"]["filters"]["groups"] == [{"properties": [], "rollout_percentage": 50.0, "variant": None}]
    assert by_key["beta"]["filters"]["payloads"] == {"true": '{"color":"blue"}'}
    checkout = by_key["checkout"]["filters"]
    assert checkout["groups"][0]["properties"] == [
        {"key": "plan", "operator": "exact", "value": ["pro"], "type": "person"}
    ]
    assert [v["key"] for v in checkout["multivariate"]["variants"]] == ["control", "test"]
    assert checkout["payloads"] == {"test": "[1,2]"}
    # An override has no place in PostHog's filters: the SDKs are told to ask the server.
    assert [k for k, f in by_key.items() if f["ensure_experience_continuity"]] == ["vip"]
    assert (by_key["off"]["active"], by_key["beta"]["active"]) == (False, True)


def test_an_unchanged_definition_list_is_a_bodiless_304(fast_path, project, flags):
    _, headers, _ = definitions(fast_path, project)
    status, again, content = definitions(fast_path, project, HTTP_IF_NONE_MATCH=headers["ETag"])
    assert (status, content, again["ETag"]) == (304, b"", headers["ETag"])
    assert definitions(fast_path, project, HTTP_IF_NONE_MATCH='W/"other"')[0] == 200


def test_local_evaluation_needs_a_personal_key_of_the_tokens_project(fast_path, project, other_project, flags):
    query = f"token={project.api_key}"
    assert send(fast_path, "GET", "flags/definitions", query=query)[0] == 401
    project_key = send(
        fast_path, "GET", "flags/definitions", query=query, HTTP_AUTHORIZATION=f"Bearer {project.api_key}"
    )
    assert (project_key[0], project_key[2]["code"]) == (401, "invalid_api_key")
    other = f"Bearer {other_project.personal_api_key}"
    status, _, answer = send(fast_path, "GET", "flags/definitions", query=query, HTTP_AUTHORIZATION=other)
    assert (status, answer["code"], answer["field"]) == (403, "permission_denied", "token")


# --- posthog-js's remote config ---------------------------------------------------------------


def test_posthog_js_gets_its_remote_config_as_json_and_as_a_script(fast_path, project):
    status, _, config = send(fast_path, "GET", f"array/{project.api_key}/config")
    assert (status, config["supportedCompression"], config["sessionRecording"]) == (200, ["gzip", "gzip-js"], False)
    status, headers, script = send(fast_path, "GET", f"array/{project.api_key}/config.js")
    assert (status, headers["Content-Type"]) == (200, "application/javascript")
    assert f'window._POSTHOG_REMOTE_CONFIG["{project.api_key}"]=' in script.decode()
    assert send(fast_path, "GET", "array/tlp_unknown/config")[0] == 401


# --- the RSGI edge answers alike -------------------------------------------------------------

PARITY = {
    "batch": Request("POST", "batch/", json.dumps({"api_key": KEY, "batch": [posthog_event()]}).encode(), {}, prefix="/"),
    "gzip by magic bytes": Request(
        "POST", "e", gzip.compress(json.dumps({"api_key": KEY, "batch": [posthog_event()]}).encode()),
        {"CONTENT_TYPE": "text/plain", "HTTP_ORIGIN": "https://a.example"}, prefix="/",
    ),
    "bad JSON": Request("POST", "i/v0/e/", b"{nope", {}, query=f"api_key={KEY}", prefix="/"),
    "preflight": Request("OPTIONS", "e/", headers={"HTTP_ORIGIN": "https://a.example"}, prefix="/"),
    "flags v2": Request("POST", "flags/", json.dumps({"token": KEY, "distinct_id": "u1"}).encode(), {}, "v=2", "/"),
    "decide": Request("POST", "decide/", json.dumps({"token": KEY, "distinct_id": "u1"}).encode(), {}, "v=3", "/"),
    "remote config": Request("GET", f"array/{KEY}/config.js", headers={}, prefix="/"),
    "wrong method": Request("PUT", "batch/", b"{}", {}, prefix="/"),
}  # fmt: skip


def _without_ids(body: bytes) -> bytes:
    """An answer without what differs per request (flags' requestId and evaluatedAt)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    if isinstance(answer, dict):
        answer.pop("requestId", None)
        answer.pop("evaluatedAt", None)
    return json.dumps(answer).encode()


@pytest.mark.parametrize("name", list(PARITY))
def test_the_rsgi_edge_answers_posthogs_paths_as_the_wsgi_fast_path(rsgi_edge, fast_path, project, flags, name):
    request = PARITY[name]
    status, headers, body = call_rsgi(rsgi_edge, request, project.api_key)
    fast_status, fast_headers, fast_body = call(fast_path, request, project.api_key)
    assert (status, _without_ids(body)) == (fast_status, _without_ids(fast_body))
    server_own = {"connection", "content-length"}
    assert {k: v for k, v in same_headers(headers).items() if k not in server_own} == {
        k: v for k, v in same_headers(fast_headers).items() if k not in server_own
    }


def test_every_posthog_path_is_routed():
    paths = {route.path for route in fast_path_module.POSTHOG_ROUTES}
    for path in ("/batch/", "/batch", "/e/", "/i/v0/e/", "/capture", "/track/", "/engage/", "/flags/", "/decide/"):
        assert path in paths
    assert fast_path_module.route("/array/tlp_x/config.js") is not None


def test_nginx_sends_every_posthog_path_to_the_command_api():
    from tests.integration.test_openapi import nginx_host

    for route in fast_path_module.POSTHOG_ROUTES:
        assert nginx_host(route.path.replace("{token}", "tlp_x")) == "command", route.path
    assert nginx_host("/") == nginx_host("/events/") == nginx_host("/api/v1/analytics/admin/events/") == "query"
