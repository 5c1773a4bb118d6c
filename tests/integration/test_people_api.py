"""The people endpoints of the query API over HTTP: admin/people/ (search by any distinct_id of a
person or by a property, pagination) and admin/people/{person_id}/ (ids, identity links, recent
sessions). Rows are written straight into the people read models: the people projection is
tested on its own."""

from datetime import timedelta

import pytest
from django.db import connection

from query_side.people import LISTED_DISTINCT_IDS
from query_side.sessions import RECENT_SESSIONS
from tests.integration.test_query_api import BASE, FIXED, get, seed_person, seed_session, staff_client

pytestmark = pytest.mark.django_db
P1 = "00000000-0000-4000-8000-000000000001"
P2 = "00000000-0000-4000-8000-000000000002"
P3 = "00000000-0000-4000-8000-000000000003"


def people(client, project, **query):
    response = get(client, "people/", project.personal_api_key, **query)
    assert response.status_code == 200, response.content
    return response.json()


def person_ids(body):
    return [row["person_id"] for row in body["results"]]


def seed_link(project_id, kind, distinct_id, other_id, outcome, first_at=FIXED):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rm_identity_links VALUES (%s, %s, %s, %s, %s, %s)",
            [project_id, kind, distinct_id, other_id, first_at, outcome],
        )


# --- admin/people/ -------------------------------------------------------------------------


def test_a_person_is_listed_with_every_field(client, project):
    seed_person(
        project.project_id, P1, distinct_ids=("anon", "user@example.com"), properties={"plan": "pro", "age": 30},
        last_seen=FIXED, is_identified=True, event_count=12,
    )  # fmt: skip
    [row] = people(client, project)["results"]
    assert row == {
        "person_id": P1, "distinct_ids": ["anon", "user@example.com"], "distinct_id_count": 2, "is_identified": True,
        "properties": {"plan": "pro", "age": 30}, "first_seen": "2026-03-01T00:00:00Z",
        "last_seen": "2026-03-02T00:00:00Z", "event_count": 12,
    }  # fmt: skip


def test_the_list_caps_each_persons_distinct_ids_and_says_how_many_there_are(client, project):
    many = tuple(f"id-{i:02}" for i in range(LISTED_DISTINCT_IDS + 5))
    seed_person(project.project_id, P1, distinct_ids=many)
    [row] = people(client, project)["results"]
    assert row["distinct_ids"] == list(many[:LISTED_DISTINCT_IDS])  # the first seen
    assert row["distinct_id_count"] == LISTED_DISTINCT_IDS + 5


def test_people_are_last_seen_first_and_walked_once_across_pages(client, project):
    seed_person(project.project_id, P1, distinct_ids=("a",), last_seen=FIXED)
    seed_person(project.project_id, P2, distinct_ids=("b",), last_seen=FIXED + timedelta(hours=1))
    seed_person(project.project_id, P3, distinct_ids=("c",), last_seen=FIXED + timedelta(hours=1))
    first = people(client, project, limit=2)
    second = client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}").json()
    assert person_ids(first) + person_ids(second) == [P3, P2, P1]
    assert second["next"] is None


def test_any_distinct_id_of_a_person_finds_that_person_only(client, project):
    seed_person(project.project_id, P1, distinct_ids=("anon", "user"))
    seed_person(project.project_id, P2, distinct_ids=("other",))
    assert person_ids(people(client, project, distinct_id="anon")) == [P1]
    assert person_ids(people(client, project, distinct_id="user")) == [P1]
    assert person_ids(people(client, project, distinct_id="nobody")) == []


@pytest.mark.parametrize(
    ("property", "expected"),
    [
        ("plan:pro", [P1]),  # not JSON: the text
        ('plan:"pro"', [P1]),  # a JSON string
        ("age:30", [P2]),  # a JSON number: not the string "30"
        ('age:"30"', [P3]),  # the string "30"
        ("vip:true", [P1]),
        ("city:São Paulo", [P2]),
        ('tags:["beta"]', [P3]),  # containment: the list holds "beta"
        ("plan:free", []),
        ("nokey:x", []),
        ("note:a:b", [P3]),  # the key ends at the first colon
    ],
)
def test_a_property_search_matches_the_json_value_or_else_the_text(client, project, property, expected):
    seed_person(project.project_id, P1, distinct_ids=("a",), properties={"plan": "pro", "vip": True})
    seed_person(project.project_id, P2, distinct_ids=("b",), properties={"age": 30, "city": "São Paulo"})
    seed_person(
        project.project_id, P3, distinct_ids=("c",), properties={"age": "30", "tags": ["beta", "x"], "note": "a:b"}
    )
    assert person_ids(people(client, project, property=property)) == expected


def test_several_property_searches_must_all_match(client, project):
    seed_person(project.project_id, P1, distinct_ids=("a",), properties={"plan": "pro", "vip": True})
    seed_person(project.project_id, P2, distinct_ids=("b",), properties={"plan": "pro", "vip": False})
    response = client.get(
        BASE + "people/?property=plan:pro&property=vip:true", HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}"
    )
    assert person_ids(response.json()) == [P1]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"property": "plan"}, "property"),
        ({"property": ":pro"}, "property"),
        ({"property": 'plan:"a\\u0000b"'}, "property"),
        ({"property": 'plan:"\\ud800"'}, "property"),
        ({"property": "p:" + "x" * 300}, "property"),
        ({"distinct_id": "x" * 201}, "distinct_id"),
        ({"cursor": "abc"}, "cursor"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_list_parameters_are_a_400_naming_the_field(client, project, query, field):
    response = get(client, "people/", project.personal_api_key, **query)
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400, "invalid_parameter", field,
    )  # fmt: skip


@pytest.mark.parametrize("value", ["NaN", "1e999", "-Infinity"])
def test_a_number_jsonb_cannot_hold_is_searched_as_text(client, project, value):
    seed_person(project.project_id, P1, distinct_ids=("a",), properties={"n": value})
    assert person_ids(people(client, project, property=f"n:{value}")) == [P1]


def test_another_projects_people_are_never_listed(client, project, other_project):
    seed_person(other_project.project_id, P1, distinct_ids=("anon",), properties={"plan": "pro"})
    assert people(client, project)["results"] == []
    assert people(client, project, distinct_id="anon")["results"] == []
    assert people(client, project, property="plan:pro")["results"] == []


# --- admin/people/{person_id}/ -------------------------------------------------------------


def person(client, project, person_id):
    return client.get(f"{BASE}people/{person_id}/", HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}")


def test_a_person_has_all_their_ids_their_identity_links_and_their_newest_sessions(client, project):
    seed_person(project.project_id, P1, distinct_ids=("anon", "user", "alias"), properties={"plan": "pro"})
    seed_person(project.project_id, P2, distinct_ids=("stranger",))
    seed_link(project.project_id, "identify", "user", "anon", "merged", FIXED)
    seed_link(project.project_id, "alias", "alias", "user", "merged", FIXED + timedelta(hours=1))
    # Named by the other id only: found through other_id's index.
    seed_link(project.project_id, "identify", "stranger", "user", "refused_both_identified", FIXED + timedelta(hours=2))
    seed_link(project.project_id, "identify", "x", "y", "merged", FIXED + timedelta(hours=3))  # not theirs
    for i in range(RECENT_SESSIONS + 2):
        seed_session(project.project_id, f"s{i:02}", ("anon", "user")[i % 2], start=FIXED + timedelta(hours=i))
    seed_session(project.project_id, "strangers", "stranger", start=FIXED + timedelta(days=5))
    body = person(client, project, P1).json()
    assert body["person_id"] == P1 and body["properties"] == {"plan": "pro"}
    assert body["distinct_ids"] == ["anon", "user", "alias"] and body["distinct_id_count"] == 3
    assert [
        (link["kind"], link["distinct_id"], link["other_id"], link["outcome"]) for link in body["identity_links"]
    ] == [
        ("identify", "stranger", "user", "refused_both_identified"),
        ("alias", "alias", "user", "merged"),
        ("identify", "user", "anon", "merged"),
    ]
    assert [session["session_id"] for session in body["sessions"]] == [
        f"s{i:02}" for i in reversed(range(2, RECENT_SESSIONS + 2))
    ]
    assert {session["person_id"] for session in body["sessions"]} == {P1}


@pytest.mark.parametrize("person_id", [P2, "not-a-uuid", "%00", "1" * 300])
def test_an_unknown_person_is_a_404_in_the_error_shape(client, project, other_project, person_id):
    seed_person(other_project.project_id, P2, distinct_ids=("a",))  # another project's
    response = person(client, project, person_id)
    assert response.status_code == 404
    assert set(response.json()) == {"code", "field", "message"} and response.json()["code"] == "not_found"


def test_the_detail_is_four_queries_after_authentication(client, project, django_assert_num_queries):
    seed_person(project.project_id, P1, distinct_ids=("a",))
    person(client, project, P1)
    with django_assert_num_queries(4):  # the key, the person with their ids, the links, the sessions
        assert person(client, project, P1).status_code == 200


def test_a_staff_users_next_link_stays_on_the_named_project(client, project, other_project):
    staff_client(client)
    for i, person_id in enumerate((P1, P2, P3)):
        seed_person(other_project.project_id, person_id, distinct_ids=(f"u{i}",), last_seen=FIXED + timedelta(hours=i))
    seed_person(project.project_id, P1, distinct_ids=("u0",))
    first = client.get(BASE + "people/", {"project_id": other_project.project_id, "limit": 2}).json()
    second = client.get(first["next"]).json()
    assert person_ids(first) + person_ids(second) == [P3, P2, P1]
