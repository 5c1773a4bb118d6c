"""The query API over HTTP: results, filters, pagination, validation, authentication, and that a
project's data is never visible to another project's key."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from tests.projection_helpers import insert_events

pytestmark = pytest.mark.django_db
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
BASE = "/api/v1/analytics/admin/"
ENDPOINTS = ["events/", "events/event_counts/", "event-aggregates/", "active-users/", "bad-events/"]


def get(client, path, key=None, **query):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.get(BASE + path, query, **headers)


def seed(project_id, event_type="app_opened", users=("u1", "u2"), hours=(0,), app_version="1.0"):
    with connection.cursor() as cursor:
        for hour in hours:
            for user in users:
                cursor.execute(
                    "INSERT INTO rm_event_counts VALUES (%s, %s, %s, %s, 'iOS', 2)"
                    " ON CONFLICT (project_id, event_type, bucket, app_version, os_name)"
                    " DO UPDATE SET event_count = rm_event_counts.event_count + 2",
                    [project_id, event_type, HOUR + timedelta(hours=hour), app_version],
                )
                cursor.execute(
                    "INSERT INTO rm_event_users VALUES (%s, %s, %s, %s, %s, 'iOS', 2)",
                    [project_id, event_type, HOUR + timedelta(hours=hour), user, app_version],
                )
                cursor.execute(
                    "INSERT INTO rm_user_days VALUES (%s, %s, %s, 2, %s, %s) ON CONFLICT DO NOTHING",
                    [project_id, HOUR.date(), user, HOUR, HOUR],
                )


def seed_bad(project_id, count):
    with connection.cursor() as cursor:
        for i in range(count):
            cursor.execute(
                "INSERT INTO tidelog_bad_events (project_id, received_at, error_code, field, message, payload)"
                " VALUES (%s, %s, 'missing_field', 'distinct_id', 'm', %s)",
                [project_id, HOUR, f'{{"n": {i}}}'],
            )


def test_event_counts_sum_per_type(client, project):
    seed(project.project_id, "app_opened")
    seed(project.project_id, "purchase", users=("u1",))
    response = get(client, "events/event_counts/", project.personal_api_key)
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"event_type": "app_opened", "count": 4},
        {"event_type": "purchase", "count": 2},
    ]


def test_event_counts_respect_the_range(client, project):
    seed(project.project_id, hours=(0, 3))
    response = get(client, "events/event_counts/", project.personal_api_key,
                   after=(HOUR + timedelta(hours=1)).isoformat(), before=(HOUR + timedelta(hours=4)).isoformat())  # fmt: skip
    assert response.json()["results"] == [{"event_type": "app_opened", "count": 4}]


def test_aggregates_give_counts_and_unique_users_per_hour_and_day(client, project):
    seed(project.project_id, hours=(0, 1))
    hourly = get(client, "event-aggregates/", project.personal_api_key, interval="hour").json()
    assert [(r["count"], r["unique_users"]) for r in hourly["results"]] == [(4, 2), (4, 2)]
    daily = get(client, "event-aggregates/", project.personal_api_key, interval="day").json()
    # The same two users in both hours: still two unique users over the day (if both hours fall on one day).
    days = {r["bucket"][:10] for r in daily["results"]}
    assert sum(r["count"] for r in daily["results"]) == 8
    if len(days) == 1:
        assert daily["results"][0]["unique_users"] == 2


def test_aggregates_break_down_by_app_version(client, project):
    seed(project.project_id, users=("u1",), app_version="1.0")
    seed(project.project_id, users=("u1", "u2"), app_version="2.0")
    rows = get(client, "event-aggregates/", project.personal_api_key, interval="hour", breakdown="app_version").json()[
        "results"
    ]
    assert {(r["app_version"], r["count"], r["unique_users"]) for r in rows} == {("1.0", 2, 1), ("2.0", 4, 2)}


def test_active_users_count_distinct_users_per_day(client, project):
    seed(project.project_id, users=("u1", "u2", "u3"))
    rows = get(client, "active-users/", project.personal_api_key, interval="day").json()["results"]
    assert [r["active_users"] for r in rows] == [3]


def test_the_event_list_filters_and_walks_every_event_once_across_pages(client, project):
    same_time = HOUR + timedelta(minutes=5)
    insert_events(
        [{"project_id": project.project_id, "timestamp": same_time, "distinct_id": f"u{i % 2}"} for i in range(7)]
        + [{"project_id": project.project_id, "timestamp": HOUR, "event_type": "other"}]
    )
    seen, url, pages = [], BASE + "events/?limit=3", 0
    while url:
        body = client.get(url, HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}").json()
        seen += [row["uuid"] for row in body["results"]]
        url, pages = body["next"], pages + 1
    assert len(seen) == len(set(seen)) == 8
    assert pages == 3
    only_u1 = get(client, "events/", project.personal_api_key, distinct_id="u1", event_type="e").json()["results"]
    assert len(only_u1) == 3 and {r["distinct_id"] for r in only_u1} == {"u1"}
    ranged = get(client, "events/", project.personal_api_key, before=(HOUR + timedelta(minutes=1)).isoformat()).json()
    assert [r["event_type"] for r in ranged["results"]] == ["other"]


def test_the_event_list_is_one_query_after_authentication(client, project, django_assert_num_queries):
    insert_events([{"project_id": project.project_id, "timestamp": HOUR}])
    get(client, "events/", project.personal_api_key)  # first use writes last_used_at
    with django_assert_num_queries(2):  # the key lookup, then the events
        assert get(client, "events/", project.personal_api_key).status_code == 200


def test_bad_events_are_listed_with_their_error_and_paginated(client, project):
    seed_bad(project.project_id, 5)
    first = get(client, "bad-events/", project.personal_api_key, limit=3).json()
    assert [r["error_code"] for r in first["results"]] == ["missing_field"] * 3
    second = client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}").json()
    assert len(second["results"]) == 2 and second["next"] is None
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(set(ids)) == 5


@pytest.mark.parametrize("path", ENDPOINTS)
def test_no_key_is_a_401(client, path):
    response = get(client, path)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_wrong_key_is_a_401(client, path, project):
    assert get(client, path, "tls_not_a_key").status_code == 401


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_project_key_never_sees_another_projects_data(client, path, project, other_project):
    seed(other_project.project_id)
    seed_bad(other_project.project_id, 2)
    insert_events([{"project_id": other_project.project_id, "timestamp": HOUR}])
    response = get(client, path, project.personal_api_key)
    assert response.status_code == 200
    assert response.json()["results"] == []
    # ... while the other project's own key does see it.
    assert get(client, path, other_project.personal_api_key).json()["results"] != []


@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_project_id_parameter_does_not_widen_a_keys_reach(client, path, project, other_project):
    seed(other_project.project_id)
    seed_bad(other_project.project_id, 1)
    insert_events([{"project_id": other_project.project_id, "timestamp": HOUR}])
    response = get(client, path, project.personal_api_key, project_id=other_project.project_id)
    assert response.json()["results"] == []


def test_a_staff_user_reads_the_project_they_name(client, project, other_project):
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    seed(other_project.project_id)
    assert get(client, "events/event_counts/", project_id=other_project.project_id).json()["results"] != []
    assert get(client, "events/event_counts/", project_id=project.project_id).json()["results"] == []
    missing = get(client, "events/event_counts/")
    assert (missing.status_code, missing.json()["field"]) == (400, "project_id")
    assert get(client, "events/event_counts/", project_id=999_999).status_code == 404


def test_a_logged_in_non_staff_user_is_refused(client, project):
    client.force_login(get_user_model().objects.create_user("someone", password="x"))
    assert get(client, "events/", project_id=project.project_id).status_code == 403


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("event-aggregates/", {"interval": "minute"}, "interval"),
        ("event-aggregates/", {"breakdown": "country"}, "breakdown"),
        ("active-users/", {"interval": "year"}, "interval"),
        ("events/event_counts/", {"after": "yesterday"}, "after"),
        ("events/event_counts/", {"after": "2026-05-02T00:00:00Z", "before": "2026-05-01T00:00:00Z"}, "after"),
        ("events/", {"limit": "0"}, "limit"),
        ("events/", {"limit": "5000"}, "limit"),
        ("events/", {"cursor": "!!!"}, "cursor"),
        ("events/", {"cursor": base64.urlsafe_b64encode(b"a|b").decode()}, "cursor"),
        ("bad-events/", {"cursor": base64.urlsafe_b64encode(b"x").decode()}, "cursor"),
        ("events/", {"distinct_id": "x" * 201}, "distinct_id"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(client, project, path, query, field):
    response = get(client, path, project.personal_api_key, **query)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_parameter"
    assert response.json()["field"] == field
