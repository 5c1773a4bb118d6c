"""Experiment administration on the command host: create, list, detail, edit, archive; every
rule of an experiment refused with its field; one project never sees another's."""

import pytest

from command_side.flags.service import FlagCreate, flag_create
from command_side.models import Experiment
from flags.definition import Variant

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db]
BASE = "/api/v1/analytics/admin/experiments/"


@pytest.fixture
def flagged(project, redis_client):
    variants = [Variant("control", 50), Variant("test", 25), Variant("test-2", 25)]
    flag_create(project_id=project.project_id, fields=FlagCreate(key="checkout", variants=variants), actor="t")
    flag_create(project_id=project.project_id, fields=FlagCreate(key="boolean"), actor="t")
    return project


def post(client, project, body):
    return client.post(
        BASE, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}"
    )


def get(client, project, path=""):
    return client.get(BASE + path, HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}")


GOOD = {
    "key": "checkout-test",
    "flag_key": "checkout",
    "control": "control",
    "tests": ["test", "test-2"],
    "goal_event": "purchase",
    "goal_filter": {"key": "amount", "operator": "gt", "value": 10},
    "start_at": "2026-11-01T00:00:00Z",
    "end_at": "2026-12-01T00:00:00Z",
}


def test_an_experiment_is_created_listed_and_detailed(client, flagged):
    created = post(client, flagged, GOOD)
    assert created.status_code == 201, created.json()
    assert created.json()["tests"] == ["test", "test-2"] and created.json()["goal_filter"]["operator"] == "gt"
    assert [e["key"] for e in get(client, flagged).json()["results"]] == ["checkout-test"]
    assert get(client, flagged, "checkout-test/").json()["goal_event"] == "purchase"


def test_a_boolean_flags_experiment_compares_false_with_true(client, flagged):
    body = {"key": "b", "flag_key": "boolean", "control": "false", "tests": ["true"], "goal_event": "signup"}
    assert post(client, flagged, body).status_code == 201


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"flag_key": "nope"}, "invalid_value", "flag_key"),
        ({"control": "nope"}, "invalid_value", "control"),
        ({"tests": []}, "empty_value", "tests"),
        ({"tests": ["control"]}, "invalid_value", "tests.0"),
        ({"tests": ["test", "test"]}, "invalid_value", "tests.1"),
        ({"goal_event": " "}, "empty_value", "goal_event"),
        ({"goal_filter": {"key": "x", "operator": "regex", "value": "(["}}, "invalid_value", "goal_filter.value"),
        ({"end_at": "2026-10-01T00:00:00Z"}, "invalid_value", "end_at"),
        ({"start_at": "yesterday"}, "invalid_timestamp", "start_at"),
        ({"key": "no spaces"}, "invalid_value", "key"),
        ({"surprise": 1}, "invalid_value", None),
    ],
)
def test_a_bad_experiment_is_refused_naming_its_field(client, flagged, change, code, field):
    response = post(client, flagged, {**GOOD, **change})
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    if field is not None:
        assert response.json()["field"] == field
    assert not Experiment.objects.exists()


def test_a_duplicate_key_is_a_409(client, flagged):
    post(client, flagged, GOOD)
    duplicate = post(client, flagged, GOOD)
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "duplicate_key"


def test_an_edit_is_checked_whole_and_an_archived_experiment_stays_put(client, flagged):
    post(client, flagged, GOOD)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {flagged.personal_api_key}"}
    edited = client.patch(BASE + "checkout-test/", {"goal_event": "checkout"}, content_type="application/json", **auth)
    assert edited.status_code == 200 and edited.json()["goal_event"] == "checkout"
    bad = client.patch(BASE + "checkout-test/", {"control": "test"}, content_type="application/json", **auth)
    assert bad.status_code == 400 and bad.json()["field"] == "tests.0"
    assert client.delete(BASE + "checkout-test/", **auth).json()["archived"] is True
    assert get(client, flagged).json()["results"] == []
    refused = client.patch(BASE + "checkout-test/", {"name": "x"}, content_type="application/json", **auth)
    assert refused.status_code == 409 and refused.json()["code"] == "archived"


def test_another_projects_experiments_are_not_found(client, flagged, other_project):
    post(client, flagged, GOOD)
    assert get(client, other_project).json()["results"] == []
    assert get(client, other_project, "checkout-test/").status_code == 404
    assert post(client, other_project, GOOD).json()["field"] == "flag_key"
