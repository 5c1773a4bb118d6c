"""Unique users are persons, resolved at query time (docs/api.md, "Unique users and merged
people"): once the people projection maps two distinct_ids to one person, every endpoint that
counts users counts them once, in the past too; a distinct_id no person has counts as itself."""

import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.test_query_api import FIXED, get, seed, seed_person

pytestmark = pytest.mark.django_db
P1 = "00000000-0000-4000-8000-000000000001"
WINDOW = {"after": "2026-03-01", "before": "2026-03-10"}
# Every endpoint that counts users, and how to read its count(s) from the answer.
USER_COUNTS = {
    "event-aggregates/?interval=day": lambda body: [row["unique_users"] for row in body["results"]],
    "event-aggregates/?interval=hour&breakdown=app_version": lambda body: [r["unique_users"] for r in body["results"]],
    "active-users/?interval=day": lambda body: [row["active_users"] for row in body["results"]],
    "active-users/?interval=week": lambda body: [row["active_users"] for row in body["results"]],
    "active-users/?interval=month": lambda body: [row["active_users"] for row in body["results"]],
}


def counts(client, project, endpoint):
    path, _, query = endpoint.partition("?")
    response = get(
        client, path, project.personal_api_key, **dict(part.split("=") for part in query.split("&")), **WINDOW
    )
    assert response.status_code == 200, response.content
    return USER_COUNTS[endpoint](response.json())


@pytest.mark.parametrize("endpoint", USER_COUNTS)
def test_two_ids_merged_into_one_person_count_once_retroactively(client, project, endpoint):
    seed(project.project_id, users=("anon-a", "user-b"), start=FIXED + timedelta(hours=10))
    assert counts(client, project, endpoint) == [2]
    # Identified later: the past is recounted, not only the days from the merge on.
    seed_person(project.project_id, P1, distinct_ids=("anon-a", "user-b"), last_seen=FIXED + timedelta(days=5))
    assert counts(client, project, endpoint) == [1]


@pytest.mark.parametrize("endpoint", USER_COUNTS)
def test_an_id_no_person_has_yet_counts_as_itself(client, project, endpoint):
    seed(project.project_id, users=("anon-a", "user-b", "not-yet-projected"), start=FIXED + timedelta(hours=10))
    seed_person(project.project_id, P1, distinct_ids=("anon-a", "user-b"))
    assert counts(client, project, endpoint) == [2]


@pytest.mark.parametrize("endpoint", USER_COUNTS)
def test_another_projects_merge_merges_nothing_here(client, project, other_project, endpoint):
    seed(project.project_id, users=("anon-a", "user-b"), start=FIXED + timedelta(hours=10))
    seed_person(other_project.project_id, P1, distinct_ids=("anon-a", "user-b"))
    assert counts(client, project, endpoint) == [2]


def test_yesterdays_anonymous_user_and_todays_identified_one_are_one_weekly_user(client, project):
    seed(project.project_id, users=("anon-a",), start=FIXED + timedelta(hours=10))  # Monday
    seed(project.project_id, users=("user-b",), start=FIXED + timedelta(days=1, hours=10))  # Tuesday
    assert counts(client, project, "active-users/?interval=week") == [2]
    seed_person(project.project_id, P1, distinct_ids=("anon-a", "user-b"))
    assert counts(client, project, "active-users/?interval=week") == [1]
    assert counts(client, project, "active-users/?interval=day") == [1, 1]  # one user each day


def test_no_query_of_the_query_side_counts_distinct_ids_as_users():
    # A new selector that counts users must count persons too (query_side/user_sets.py).
    for module in (Path(__file__).resolve().parents[2] / "query_side").glob("*.py"):
        assert not re.search(r"count\(\s*DISTINCT\s+(\w+\.)?distinct_id\s*\)", module.read_text(), re.I), module
