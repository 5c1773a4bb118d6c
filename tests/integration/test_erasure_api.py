"""The staff-only erasure API on the command host: a staff user erases a person of the project
they name and gets the log entry; anyone else (a non-staff user, a personal API key) is a 403 in
the error shape; the log lists the project's erasures only and never holds a distinct_id;
through the ingestion path, events still buffered at the erasure and later ones re-create the
person, and an erased event sent again is a duplicate (the ledger keeps its uuid)."""

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from command_side.models import ErasureLog
from contracts import schema
from projections.registry import PROJECTIONS, projection_get
from projections.replay import replay_lock_key
from projections.verify import verify
from tests.command_helpers import drain_all, make_event, post
from tests.erasure_helpers import person_of, same_person
from tests.projection_helpers import conninfo, days_of, insert_events, rows_holding
from tests.projection_helpers import project as run_projections

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db(transaction=True)]
BASE = "/api/v1/analytics/admin/erasures/"
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def user_client(username: str, *, is_staff: bool) -> Client:
    client = Client()
    client.force_login(
        get_user_model().objects.create_user(username, password="x", is_staff=is_staff, is_superuser=is_staff)
    )
    return client


@pytest.fixture
def staff() -> Client:
    return user_client("grace", is_staff=True)


def stored(project_id: int, distinct_id: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tidelog_events WHERE project_id = %s AND distinct_id = %s", [project_id, distinct_id]
        )
        return int(cursor.fetchone()[0])


def erase(client: Client, project_id: int, body: object) -> object:
    return client.post(f"{BASE}?project_id={project_id}", json.dumps(body), content_type="application/json")


@pytest.fixture
def people(project, other_project):
    """alice and bob in `project`; an alice in `other_project` too (not the same person)."""
    for p in (project.project_id, other_project.project_id):
        insert_events([{"project_id": p, "distinct_id": "alice", "timestamp": T0 + timedelta(minutes=i)}
                       for i in range(5)])  # fmt: skip
    insert_events([{"project_id": project.project_id, "distinct_id": "bob", "timestamp": T0}])
    run_projections()


def test_a_staff_user_erases_a_distinct_id_and_gets_the_log_entry(staff, project, other_project, people, caplog):
    person = person_of(project.project_id, "alice")  # None without a people projection
    with caplog.at_level(logging.INFO, logger="tidelog.erasure"):
        response = erase(staff, project.project_id, {"distinct_id": "alice"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["project_id"] == project.project_id and body["erased_by"] == "user:grace" and body["via"] == "api"
    assert (body["distinct_id_count"], body["event_count"], body["bad_event_count"]) == (1, 5, 0)
    assert body["read_model_row_count"] > 0
    assert (body["person_id"], body["person_count"]) == ((str(person), 1) if person else (None, 0))
    assert "alice" not in json.dumps(body)
    assert stored(project.project_id, "alice") == 0
    assert stored(project.project_id, "bob") == 1 and stored(other_project.project_id, "alice") == 5
    entry = ErasureLog.objects.get()
    assert "alice" not in " ".join(str(getattr(entry, f.attname)) for f in ErasureLog._meta.fields)
    lines = [r.getMessage() for r in caplog.records if r.name == "tidelog.erasure"]
    assert any(f"erasure {entry.pk}: project {project.project_id}" in line for line in lines)
    assert not any("alice" in line for line in lines)
    for name in PROJECTIONS:
        assert verify(projection_get(name)).differences == [], name


def test_a_person_is_erased_by_person_id_with_all_their_distinct_ids(staff, project):
    p = project.project_id
    insert_events([{"project_id": p, "distinct_id": d, "timestamp": T0} for d in ("anon-device", "alice")])
    person = same_person(p, "alice", "anon-device", at=T0)
    theirs = stored(p, "alice") + stored(p, "anon-device")
    response = erase(staff, p, {"person_id": str(person)})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["person_id"], body["person_count"], body["distinct_id_count"]) == (str(person), 1, 2)
    assert body["event_count"] == theirs and stored(p, "alice") == 0
    unknown = erase(staff, p, {"person_id": str(uuid.uuid4())})
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


def test_staff_naming_the_other_project_erases_there_only(staff, project, other_project, people):
    response = erase(staff, other_project.project_id, {"distinct_id": "alice"})
    assert response.status_code == 200
    assert stored(other_project.project_id, "alice") == 0 and stored(project.project_id, "alice") == 5
    listed = staff.get(BASE, {"project_id": project.project_id}).json()["results"]
    assert listed == []
    assert [e["project_id"] for e in staff.get(BASE, {"project_id": other_project.project_id}).json()["results"]] == [
        other_project.project_id
    ]


@pytest.mark.parametrize("who", ["non-staff user", "personal API key"])
def test_anyone_but_staff_is_refused_in_the_error_shape_and_nothing_is_erased(who, project, people):
    if who == "non-staff user":
        client, headers = user_client("mallory", is_staff=False), {}
    else:
        client, headers = Client(), {"HTTP_AUTHORIZATION": f"Bearer {project.personal_api_key}"}
    for response in (
        client.post(
            f"{BASE}?project_id={project.project_id}",
            {"distinct_id": "alice"},
            content_type="application/json",
            **headers,
        ),
        client.get(BASE, {"project_id": project.project_id}, **headers),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied" and set(response.json()) == {"code", "field", "message"}
    assert stored(project.project_id, "alice") == 5
    assert not ErasureLog.objects.exists()


def test_nobody_logged_in_is_refused(project, people):
    response = Client().post(f"{BASE}?project_id={project.project_id}", {"distinct_id": "alice"},
                             content_type="application/json")  # fmt: skip
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    assert stored(project.project_id, "alice") == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "distinct_id"), ({"distinct_id": "a", "person_id": str(uuid.uuid4())}, "distinct_id"),
     ({"distinct_id": " "}, "distinct_id"), ({"person_id": "nope"}, "person_id"), ({"email": "a@b"}, None)],
)  # fmt: skip
def test_a_body_naming_not_exactly_one_person_is_a_400_naming_the_field(staff, project, body, field):
    response = erase(staff, project.project_id, body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    if field is None:  # an unknown field: the shared decoder names it in the message
        assert "email" in response.json()["message"]
    assert not ErasureLog.objects.exists()


def test_a_replay_running_is_a_409_and_nothing_is_erased(staff, project, people):
    import psycopg

    with psycopg.connect(conninfo(), autocommit=True) as replaying:
        replaying.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", replay_lock_key("event_aggregates"))
        response = erase(staff, project.project_id, {"distinct_id": "alice"})
    assert response.status_code == 409 and response.json()["code"] == "replay_running"
    assert stored(project.project_id, "alice") == 5
    assert not ErasureLog.objects.exists()


def test_the_log_is_listed_newest_first_with_a_cursor(staff, project, people):
    for distinct_id in ("alice", "bob", "nobody"):
        assert erase(staff, project.project_id, {"distinct_id": distinct_id}).status_code == 200
    first = staff.get(BASE, {"project_id": project.project_id, "limit": 2}).json()
    assert [e["event_count"] for e in first["results"]] == [0, 1]
    second = staff.get(first["next"]).json()
    assert [e["event_count"] for e in second["results"]] == [5] and second["next"] is None


def test_buffered_and_later_events_re_create_the_person_and_a_resent_erased_event_is_a_duplicate(
    staff, project, redis_client
):
    client = Client()
    first = [make_event(distinct_id="alice", event_type="old") for _ in range(3)]
    assert post(client, "batch/", {"events": first}, key=project.api_key).status_code == 200
    drain_all()
    run_projections()
    # In the Redis buffer at the time of the erasure: stored after it.
    buffered = make_event(distinct_id="alice", event_type="buffered")
    assert post(client, "capture/", buffered, key=project.api_key).status_code == 200

    assert erase(staff, project.project_id, {"distinct_id": "alice"}).json()["event_count"] == 3

    drain_all()
    later = make_event(distinct_id="alice", event_type="later")
    assert post(client, "batch/", {"events": [*first, later]}, key=project.api_key).status_code == 200
    drain_all()
    with connection.cursor() as cursor:
        cursor.execute("SELECT event_type FROM tidelog_events WHERE distinct_id = 'alice' ORDER BY event_type")
        assert [row[0] for row in cursor.fetchall()] == ["buffered", "later"]  # the resent three: duplicates
    run_projections()
    # Her two events since: her days' sets hold her again, and only those days.
    assert rows_holding(schema.ACTIVE_DAYS.name, project.project_id, "alice") == days_of("alice", project.project_id)
    for name in PROJECTIONS:
        assert verify(projection_get(name)).differences == [], name
