"""The SDK-facing flag endpoints with the project's public key: the active flags, every flag for
one user, the refusals, and that evaluation does no database query once the process holds the
project's definitions (pinned by counting queries)."""

import json
import time
from urllib.parse import urlencode

import pytest

from command_side import endpoints, fast_path
from command_side.flags import cache
from command_side.flags.service import FlagCreate, FlagPatch, flag_create, flag_update

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db]
PUBLIC = "/api/v1/analytics/public/feature-flags/"


@pytest.fixture
def flags(project, redis_client):
    flag_create(project_id=project.project_id, fields=FlagCreate(key="on", enabled=True, payload={"x": 1}), actor="t")
    flag_create(project_id=project.project_id, fields=FlagCreate(key="off"), actor="t")
    archived = flag_create(project_id=project.project_id, fields=FlagCreate(key="gone", enabled=True), actor="t")
    from command_side.flags.service import flag_archive

    flag_archive(project_id=project.project_id, key="gone", version=archived.version, actor="t")
    return project


def for_user(client, project, **query):
    return client.get(PUBLIC + "for_user/", query, HTTP_AUTHORIZATION=f"Bearer {project.api_key}")


def test_the_active_list_holds_the_enabled_flags_only(client, flags):
    response = client.get(PUBLIC, HTTP_AUTHORIZATION=f"Bearer {flags.api_key}")
    assert response.status_code == 200
    assert [flag["key"] for flag in response.json()["flags"]] == ["on"]
    assert response.json()["flags"][0]["has_payload"] is True


def test_the_key_may_come_in_the_query_string(client, flags):
    assert client.get(PUBLIC, {"api_key": flags.api_key}).status_code == 200


def test_for_user_answers_every_live_flag_with_its_reason(client, flags):
    body = for_user(client, flags, distinct_id="u1").json()
    assert body["distinct_id"] == "u1"
    assert set(body["flags"]) == {"on", "off"}
    assert body["flags"]["off"]["enabled"] is False and body["flags"]["off"]["reason"] == "disabled"
    assert body["flags"]["on"]["enabled"] is True and body["flags"]["on"]["payload"] == {"x": 1}
    assert set(body["flags"]["on"]) >= {"enabled", "variant", "payload", "reason", "condition_index"}


def test_for_user_by_post_takes_person_properties_in_the_body(client, flags):
    response = client.post(
        PUBLIC + "for_user/",
        {"distinct_id": "u1", "person_properties": {"plan": "pro"}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {flags.api_key}",
    )
    assert response.status_code == 200 and set(response.json()["flags"]) == {"on", "off"}


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ({}, "missing_field", "distinct_id"),
        ({"distinct_id": " "}, "missing_field", "distinct_id"),
        ({"distinct_id": "x" * 201}, "value_too_long", "distinct_id"),
        ({"distinct_id": "u", "person_properties": "{nope"}, "invalid_parameter", "person_properties"),
        ({"distinct_id": "u", "person_properties": "[1, 2]"}, "invalid_parameter", "person_properties"),
    ],
)
def test_bad_parameters_are_400s_naming_the_field(client, flags, query, code, field):
    response = for_user(client, flags, **query)
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == (code, field)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"person_properties": {}}, "missing_field", "distinct_id"),
        ({"distinct_id": "u", "person_properties": [1]}, "invalid_type", "person_properties"),
        ({"distinct_id": 5}, "invalid_type", "distinct_id"),
    ],
)
def test_bad_post_bodies_are_400s_naming_the_field(client, flags, body, code, field):
    response = client.post(
        PUBLIC + "for_user/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {flags.api_key}"
    )
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == (code, field)


def test_keys_are_checked_before_parameters(client, flags):
    assert client.get(PUBLIC + "for_user/").json()["code"] == "missing_api_key"
    wrong = client.get(
        PUBLIC + "for_user/", {"distinct_id": "u"}, HTTP_AUTHORIZATION=f"Bearer {flags.personal_api_key}"
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == "wrong_key_kind"
    assert client.get(PUBLIC, {"api_key": "tlp_nope"}).json()["code"] == "invalid_api_key"


def test_only_get_and_post_are_answered(client, flags):
    response = client.delete(PUBLIC + "for_user/", HTTP_AUTHORIZATION=f"Bearer {flags.api_key}")
    assert response.status_code == 405


def test_a_project_never_sees_another_projects_flags(client, flags, other_project):
    body = for_user(client, other_project, distinct_id="u1").json()
    assert body["flags"] == {}
    listed = client.get(PUBLIC, HTTP_AUTHORIZATION=f"Bearer {other_project.api_key}").json()
    assert listed["flags"] == []


def fast_for_user(project, distinct_id: str, properties: dict | None = None) -> dict:
    """for_user as the production servers call it: through the fast path, no Django."""
    query = {"distinct_id": distinct_id}
    if properties is not None:
        query["person_properties"] = json.dumps(properties)
    found = fast_path.route(PUBLIC + "for_user/")
    assert found is not None
    request = endpoints.IngestRequest(
        authorization=f"Bearer {project.api_key}", content_encoding="", content_length=None,
        read_body=lambda: b"", method="GET", query=urlencode(query),
    )  # fmt: skip
    result = fast_path.answer(found, request)
    assert result.status == 200, result.body
    return json.loads(result.body)


def test_evaluation_does_no_database_query_once_the_definitions_are_held(flags, django_assert_num_queries):
    fast_for_user(flags, "warm-up")  # the key and the definitions, once
    with django_assert_num_queries(0):
        for i in range(50):
            assert fast_for_user(flags, f"user-{i}", {"plan": "pro"})["flags"]["on"]["enabled"] is True


def test_a_change_reaches_this_processs_evaluations_within_a_second(flags):
    assert fast_for_user(flags, "u1")["flags"]["off"]["enabled"] is False
    flag_update(project_id=flags.project_id, key="off", patch=FlagPatch(version=1, enabled=True), actor="t")
    started = time.monotonic()
    while not fast_for_user(flags, "u1")["flags"]["off"]["enabled"]:
        assert time.monotonic() - started < 1.0, "the change did not reach the evaluator within a second"
        time.sleep(0.02)


def test_a_redis_that_lost_its_snapshots_is_refilled_from_postgresql(flags, redis_client):
    redis_client.delete(cache.snapshot_key(flags.project_id), cache.generation_key())
    cache.flag_cache()._checked_at = float("-inf")  # as if the half second had passed
    assert fast_for_user(flags, "u1")["flags"]["on"]["enabled"] is True
    assert redis_client.exists(cache.snapshot_key(flags.project_id))
