"""GET admin/feature-flags/{key}/exposures/ over HTTP: exposures per UTC day and variant, users
per variant with those seen in several counted apart, the range, 404 and tenant isolation.
(Rows are written straight into the read models, as the projection writes them.)"""

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.integration.test_query_api import BASE, seed_exposure, seed_exposure_day, seed_flag

pytestmark = pytest.mark.django_db
MARCH_2 = datetime(2026, 3, 2, tzinfo=UTC)
RANGE = {"after": "2026-03-02", "before": "2026-03-05"}


def exposures(client, key, flag_key="checkout", **query):
    url = f"{BASE}feature-flags/{flag_key}/exposures/"
    return client.get(url, query, HTTP_AUTHORIZATION=f"Bearer {key}")


def test_it_gives_exposures_per_day_and_variant_in_the_range(client, project):
    pid = project.project_id
    seed_flag(pid, "checkout")
    seed_exposure_day(pid, date(2026, 3, 2), "control", 3, flag_key="checkout")
    seed_exposure_day(pid, date(2026, 3, 2), "test", 5, flag_key="checkout")
    seed_exposure_day(pid, date(2026, 3, 4), "control", 2, flag_key="checkout")
    seed_exposure_day(pid, date(2026, 3, 1), "control", 7, flag_key="checkout")  # before the range
    seed_exposure_day(pid, date(2026, 3, 5), "control", 11, flag_key="checkout")  # starts at `before`
    seed_exposure_day(pid, date(2026, 3, 3), "control", 13, flag_key="another-flag")
    response = exposures(client, project.personal_api_key, **RANGE)
    assert response.status_code == 200
    body = response.json()
    assert (body["flag_key"], body["after"], body["before"]) == (
        "checkout",
        "2026-03-02T00:00:00Z",
        "2026-03-05T00:00:00Z",
    )
    assert body["days"] == [
        {"day": "2026-03-02", "variant": "control", "exposures": 3},
        {"day": "2026-03-02", "variant": "test", "exposures": 5},
        {"day": "2026-03-04", "variant": "control", "exposures": 2},
    ]


def test_it_counts_users_in_their_one_variant_and_those_with_several_apart(client, project):
    pid = project.project_id
    seed_flag(pid, "checkout")
    at = MARCH_2 + timedelta(hours=1)
    seed_exposure(pid, "u1", "control", at, flag_key="checkout", exposures=4)
    seed_exposure(pid, "u2", "control", at, flag_key="checkout")
    seed_exposure(pid, "u3", "test", at, flag_key="checkout")
    seed_exposure(pid, "u4", "control", at, variants=["control", "test"], flag_key="checkout")
    seed_exposure(pid, "u5", "test", at, variants=["control", "test"], flag_key="checkout")
    seed_exposure(pid, "u6", "test", at, flag_key="another-flag")
    body = exposures(client, project.personal_api_key, **RANGE).json()
    assert body["users"] == [{"variant": "control", "users": 2}, {"variant": "test", "users": 1}]
    assert body["users_with_several_variants"] == 2


def test_users_are_counted_by_the_time_of_their_first_exposure(client, project):
    pid = project.project_id
    seed_flag(pid, "checkout")
    after, before = MARCH_2, MARCH_2 + timedelta(days=3)
    seed_exposure(pid, "at-after", "control", after, flag_key="checkout")
    seed_exposure(pid, "just-before-before", "control", before - timedelta(microseconds=1), flag_key="checkout")
    seed_exposure(pid, "too-early", "control", after - timedelta(microseconds=1), flag_key="checkout")
    seed_exposure(pid, "at-before", "control", before, flag_key="checkout")
    seed_exposure(pid, "several-too-early", "control", after - timedelta(days=1), ["a", "control"], "checkout")
    body = exposures(client, project.personal_api_key, after=after.isoformat(), before=before.isoformat()).json()
    assert body["users"] == [{"variant": "control", "users": 2}]
    assert body["users_with_several_variants"] == 0


def test_the_range_defaults_to_the_last_thirty_days(client, project):
    pid = project.project_id
    seed_flag(pid, "checkout")
    now = datetime.now(UTC)
    seed_exposure(pid, "recent", "control", now - timedelta(days=10), flag_key="checkout")
    seed_exposure(pid, "old", "test", now - timedelta(days=40), flag_key="checkout")
    seed_exposure_day(pid, (now - timedelta(days=10)).date(), "control", 1, flag_key="checkout")
    seed_exposure_day(pid, (now - timedelta(days=40)).date(), "test", 1, flag_key="checkout")
    body = exposures(client, project.personal_api_key).json()
    after, before = datetime.fromisoformat(body["after"]), datetime.fromisoformat(body["before"])
    assert before - after == timedelta(days=30) and abs(before - now) < timedelta(minutes=1)
    assert body["users"] == [{"variant": "control", "users": 1}]
    assert [row["variant"] for row in body["days"]] == ["control"]


def test_a_flag_with_no_exposures_answers_empty_lists(client, project):
    seed_flag(project.project_id, "checkout")
    body = exposures(client, project.personal_api_key).json()
    assert (body["days"], body["users"], body["users_with_several_variants"]) == ([], [], 0)


@pytest.mark.parametrize("flag_key", ["no-such-flag", "a%00b", "x" * 201, ".."])
def test_a_flag_the_project_lacks_is_a_404(client, project, flag_key):
    seed_flag(project.project_id, "checkout")
    response = exposures(client, project.personal_api_key, flag_key=flag_key)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_a_project_sees_only_its_own_exposures_of_a_flag_key_both_have(client, project, other_project):
    for pid in (project.project_id, other_project.project_id):
        seed_flag(pid, "checkout")
    at = MARCH_2 + timedelta(hours=1)
    seed_exposure(project.project_id, "mine", "control", at, flag_key="checkout")
    seed_exposure_day(project.project_id, MARCH_2.date(), "control", 1, flag_key="checkout")
    seed_exposure(other_project.project_id, "theirs", "test", at, ["control", "test"], "checkout")
    seed_exposure(other_project.project_id, "theirs-too", "test", at, flag_key="checkout")
    seed_exposure_day(other_project.project_id, MARCH_2.date(), "test", 9, flag_key="checkout")
    mine = exposures(client, project.personal_api_key, **RANGE).json()
    assert mine["days"] == [{"day": "2026-03-02", "variant": "control", "exposures": 1}]
    assert (mine["users"], mine["users_with_several_variants"]) == ([{"variant": "control", "users": 1}], 0)
    theirs = exposures(client, other_project.personal_api_key, **RANGE).json()
    assert theirs["days"] == [{"day": "2026-03-02", "variant": "test", "exposures": 9}]
    assert (theirs["users"], theirs["users_with_several_variants"]) == ([{"variant": "test", "users": 1}], 1)


def test_a_flag_of_another_project_only_is_a_404(client, project, other_project):
    seed_flag(other_project.project_id, "checkout")
    response = exposures(client, project.personal_api_key)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_it_is_three_queries_after_authentication(client, project, django_assert_num_queries):
    seed_flag(project.project_id, "checkout")
    exposures(client, project.personal_api_key)  # the key's first use writes last_used_at
    with django_assert_num_queries(4):  # the key lookup; the flag; its days; its users
        assert exposures(client, project.personal_api_key).status_code == 200


def test_a_bad_range_is_a_400_naming_the_field(client, project):
    seed_flag(project.project_id, "checkout")
    response = exposures(client, project.personal_api_key, after="2026-03-05", before="2026-03-02")
    assert (response.status_code, response.json()["field"]) == (400, "after")
