"""Flag administration over HTTP on the command host: create, list, detail, edit, archive and
history; each edit as the aggregate's events with who did it; optimistic concurrency (a stale
edit is a 409 naming the current version, never a lost update, also between two real
connections racing); and every refusal in the error shape of docs/api.md."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from command_side.flags.application import flag_app
from command_side.models import FlagRow

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db]
BASE = "/api/v1/analytics/admin/feature-flags/"


@pytest.fixture
def key(project):
    return project.personal_api_key


@pytest.fixture
def other_key(other_project):
    return other_project.personal_api_key


def call(client, method, path, key, body=None, **query):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    if method == "get":
        return client.get(path, query, **headers)
    if method == "delete":
        suffix = f"?{'&'.join(f'{k}={v}' for k, v in query.items())}" if query else ""
        return client.delete(path + suffix, **headers)
    return getattr(client, method)(path, body, content_type="application/json", **headers)


MULTIVARIATE = {
    "key": "checkout-flow",
    "name": "New checkout",
    "rollout_percentage": 50,
    "variants": [
        {"key": "control", "rollout_percentage": 50},
        {"key": "test", "rollout_percentage": 50, "payload": {"color": "blue"}},
    ],
    "conditions": [{"properties": [{"key": "plan", "operator": "exact", "value": "pro"}], "rollout_percentage": 100}],
    "overrides": {"qa-user": "test"},
    "enabled": True,
}


def test_a_created_flag_is_listed_detailed_and_has_its_creation_in_history(client, key):
    created = call(client, "post", BASE, key, MULTIVARIATE)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["key"] == "checkout-flow" and body["version"] == 1 and body["enabled"] is True
    assert body["variants"][1]["payload"] == {"color": "blue"}
    assert body["created_by"].startswith("key:tls_")

    listed = call(client, "get", BASE, key).json()
    assert [flag["key"] for flag in listed["results"]] == ["checkout-flow"]
    assert call(client, "get", BASE + "checkout-flow/", key).json()["version"] == 1

    history = call(client, "get", BASE + "checkout-flow/history/", key).json()["results"]
    assert [(entry["version"], entry["event"]) for entry in history] == [(1, "Created")]
    assert history[0]["actor"] == body["created_by"]
    assert history[0]["changes"]["variants"][1]["key"] == "test"


def test_each_changed_field_is_its_own_event_and_unchanged_ones_emit_nothing(client, key):
    call(client, "post", BASE, key, {"key": "f", "rollout_percentage": 20})
    edited = call(
        client, "patch", BASE + "f/", key,
        {"version": 1, "rollout_percentage": 30, "enabled": True, "name": "F", "payload": {"a": 1}, "overrides": {}},
    )  # fmt: skip
    assert edited.status_code == 200, edited.json()
    assert edited.json()["version"] == 5
    events = [entry["event"] for entry in call(client, "get", BASE + "f/history/", key).json()["results"]]
    assert events == ["Created", "Described", "RolloutChanged", "PayloadChanged", "Enabled"]
    row = FlagRow.objects.get(key="f")
    assert (row.version, row.enabled, row.definition["rollout_percentage"]) == (5, True, 30.0)


def test_every_event_of_the_aggregate_names_who_made_it(client, key):
    user = get_user_model().objects.create_user("ada", password="x", is_staff=True, is_superuser=True)
    call(client, "post", BASE, key, {"key": "f"})
    staff = Client()
    staff.force_login(user)
    project_id = FlagRow.objects.get(key="f").project_id
    response = staff.patch(
        f"{BASE}f/?project_id={project_id}", {"version": 1, "enabled": True}, content_type="application/json"
    )
    assert response.status_code == 200, response.json()
    actors = [entry["actor"] for entry in call(client, "get", BASE + "f/history/", key).json()["results"]]
    assert actors[0].startswith("key:tls_") and actors[1] == "user:ada"


def test_a_stale_edit_is_a_409_naming_the_current_version_and_changes_nothing(client, key):
    call(client, "post", BASE, key, {"key": "f"})
    assert call(client, "patch", BASE + "f/", key, {"version": 1, "rollout_percentage": 10}).status_code == 200
    stale = call(client, "patch", BASE + "f/", key, {"version": 1, "rollout_percentage": 90})
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_conflict" and stale.json()["current_version"] == 2
    assert stale.json()["field"] == "version"
    assert call(client, "get", BASE + "f/", key).json()["rollout_percentage"] == 10


@pytest.mark.django_db(transaction=True)
def test_two_edits_racing_from_the_same_version_one_wins_one_gets_409(key):
    Client().post(BASE, {"key": "race"}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def edit(rollout: int) -> None:
        try:
            barrier.wait()
            response = Client().patch(
                BASE + "race/", {"version": 1, "rollout_percentage": rollout},
                content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}",
            )  # fmt: skip
            answers.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(rollout,)) for rollout in (10, 90)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 409]
    row = FlagRow.objects.get(key="race")
    events = list(flag_app().events.get(row.aggregate_id))
    assert [type(e).__name__ for e in events] == ["Created", "RolloutChanged"]
    assert row.version == 2 and row.definition["rollout_percentage"] == events[1].rollout_percentage


def test_a_duplicate_key_is_a_409_and_keys_are_per_project(client, key, other_key):
    assert call(client, "post", BASE, key, {"key": "f"}).status_code == 201
    duplicate = call(client, "post", BASE, key, {"key": "f", "rollout_percentage": 5})
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "duplicate_key"
    assert duplicate.json()["field"] == "key"
    assert call(client, "post", BASE, other_key, {"key": "f"}).status_code == 201


def test_archive_hides_the_flag_from_the_list_refuses_edits_and_keeps_history(client, key):
    call(client, "post", BASE, key, {"key": "f"})
    stale = call(client, "delete", BASE + "f/", key, version=7)
    assert stale.status_code == 409 and stale.json()["current_version"] == 1
    archived = call(client, "delete", BASE + "f/", key, version=1)
    assert archived.status_code == 200 and archived.json()["archived"] is True
    assert call(client, "get", BASE, key).json()["results"] == []
    assert [f["key"] for f in call(client, "get", BASE, key, archived="true").json()["results"]] == ["f"]
    refused = call(client, "patch", BASE + "f/", key, {"version": 2, "enabled": True})
    assert refused.status_code == 409 and refused.json()["code"] == "archived"
    events = [e["event"] for e in call(client, "get", BASE + "f/history/", key).json()["results"]]
    assert events == ["Created", "Archived"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"key": "bad key!"}, 400, "invalid_value", "key"),
        ({"key": ""}, 400, "invalid_value", "key"),
        ({}, 400, "missing_field", "key"),
        ({"key": "f", "colour": 1}, 400, "invalid_value", None),
        ({"key": "f", "rollout_percentage": "x"}, 400, "invalid_type", "rollout_percentage"),
        ({"key": "f", "rollout_percentage": 101}, 400, "invalid_value", "rollout_percentage"),
        (
            {"key": "f", "variants": [{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 40}]},
            400, "invalid_value", "variants",
        ),
        (
            {"key": "f", "variants": [{"key": "a", "rollout_percentage": 50}, {"key": "a", "rollout_percentage": 50}]},
            400, "invalid_value", "variants.1.key",
        ),
        (
            {"key": "f", "conditions": [{"properties": [{"key": "email", "operator": "regex", "value": "(["}]}]},
            400, "invalid_value", "conditions.0.properties.0.value",
        ),
        (
            {"key": "f", "conditions": [{"properties": [{"key": "email", "operator": "near", "value": "x"}]}]},
            400, "invalid_value", "conditions.0.properties.0.operator",
        ),
        ({"key": "f", "overrides": {"u1": "nope"}}, 400, "invalid_value", "overrides.u1"),
        ({"key": "f", "variants": [{"key": "a", "rollout_percentage": "x"}]}, 400, "invalid_type", "variants.0.rollout_percentage"),
    ],
)  # fmt: skip
def test_a_bad_definition_is_refused_naming_its_field_and_nothing_is_stored(client, key, body, status, code, field):
    response = call(client, "post", BASE, key, body)
    assert response.status_code == status, response.json()
    assert response.json()["code"] == code
    if field is not None:
        assert response.json()["field"] == field
    assert set(response.json()) >= {"code", "field", "message"}
    assert not FlagRow.objects.exists()


def test_an_invalid_edit_leaves_no_event_behind(client, key):
    call(client, "post", BASE, key, {"key": "f"})
    bad = call(client, "patch", BASE + "f/", key, {"version": 1, "variants": [{"key": "a", "rollout_percentage": 10}]})
    assert bad.status_code == 400 and bad.json()["field"] == "variants"
    assert [e["event"] for e in call(client, "get", BASE + "f/history/", key).json()["results"]] == ["Created"]
    assert call(client, "patch", BASE + "f/", key, {"version": 1, "enabled": True}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "nope/", None),
        ("patch", "nope/", {"version": 1}),
        ("delete", "nope/", None),
        ("get", "nope/history/", None),
    ],
)
def test_an_unknown_flag_is_a_404_on_every_route(client, key, method, path, body):
    response = call(client, method, BASE + path, key, body)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_a_patch_without_a_version_is_refused(client, key):
    call(client, "post", BASE, key, {"key": "f"})
    response = call(client, "patch", BASE + "f/", key, {"enabled": True})
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("missing_field", "version")


def test_a_body_that_is_not_json_is_a_400(client, key):
    response = client.post(BASE, "{nope", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 400 and response.json()["code"] == "invalid_json"


def test_the_list_pages_by_key(client, key):
    for name in ("a", "b", "c"):
        call(client, "post", BASE, key, {"key": name})
    first = call(client, "get", BASE, key, limit=2).json()
    assert [f["key"] for f in first["results"]] == ["a", "b"]
    second = client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert [f["key"] for f in second["results"]] == ["c"] and second["next"] is None


def test_a_project_key_and_no_key_are_refused(client, project):
    assert client.get(BASE).status_code in (401, 403)
    wrong = client.get(BASE, HTTP_AUTHORIZATION=f"Bearer {project.api_key}")
    assert wrong.status_code == 401 and wrong.json()["code"] == "wrong_key_kind"
