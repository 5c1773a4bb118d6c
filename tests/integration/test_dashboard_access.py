"""Who may open the dashboard's pages and read a project through the query API with a login:
staff users, for the projects they are members of (superusers: every project). The pages and
the API answer the same rule (tenancy.access.projects_readable_by); a key is bound to its own."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from contracts.schema import FLAG_DEFINITIONS
from tenancy.models import Project
from tests.integration.test_query_api import seed_experiment, seed_flag

pytestmark = pytest.mark.django_db
PAGES = ["overview", "trends", "retention", "funnels", "sessions", "flags", "experiments", "sessions/s-1"]
API = "/api/v1/analytics/admin/events/event_counts/"


def login(*, is_staff: bool = True, is_superuser: bool = False, member_of: tuple[int, ...] = ()) -> Client:
    user = get_user_model().objects.create_user(
        f"user{get_user_model().objects.count()}", password="x", is_staff=is_staff, is_superuser=is_superuser
    )
    for project_id in member_of:
        Project.objects.get(pk=project_id).members.add(user)
    client = Client()
    client.force_login(user)
    return client


def test_it_sends_a_visitor_to_the_login_page_and_the_root_to_the_overview(client, project):
    assert client.get("/").headers["Location"] == "/overview/"
    response = client.get(f"/overview/?project_id={project.project_id}")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login/?next=/overview/")
    assert b'name="password"' in client.get("/login/").content
    assert client.get(API, {"project_id": project.project_id}).status_code in (401, 403)


def test_the_login_form_logs_a_staff_user_in_and_out(client, project):
    get_user_model().objects.create_user("ada", password="s3cret-pass", is_staff=True, is_superuser=True)
    response = client.post("/login/", {"username": "ada", "password": "s3cret-pass"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get(f"/overview/?project_id={project.project_id}").status_code == 200
    client.post("/logout/")
    assert client.get(f"/overview/?project_id={project.project_id}").status_code == 302


@pytest.mark.parametrize("page", PAGES)
def test_a_user_who_is_not_staff_is_refused_every_page(project, page):
    client = login(is_staff=False)
    response = client.get(f"/{page}/?project_id={project.project_id}")
    assert response.status_code == 403
    assert b"not a staff user" in response.content


@pytest.mark.parametrize("page", PAGES)
def test_a_member_opens_their_project_and_is_refused_another(project, other_project, page):
    client = login(member_of=(project.project_id,))
    assert client.get(f"/{page}/?project_id={project.project_id}").status_code == 200
    refused = client.get(f"/{page}/?project_id={other_project.project_id}")
    assert refused.status_code == 403 and b"may not read project" in refused.content


def test_the_query_api_refuses_a_staff_user_another_projects_data(project, other_project):
    client = login(member_of=(project.project_id,))
    assert client.get(API, {"project_id": project.project_id}).status_code == 200
    refused = client.get(API, {"project_id": other_project.project_id})
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert client.get(API, {"project_id": 999_999}).status_code == 404  # as before: unknown is a 404


def test_a_superuser_reads_every_project(project, other_project):
    client = login(is_superuser=True)
    for project_id in (project.project_id, other_project.project_id):
        assert client.get(f"/overview/?project_id={project_id}").status_code == 200
        assert client.get(API, {"project_id": project_id}).status_code == 200


def test_a_page_without_a_project_opens_the_first_readable_one_keeping_the_query(project, other_project):
    client = login(member_of=(other_project.project_id,))
    response = client.get("/trends/?interval=week")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/trends/?interval=week&project_id={other_project.project_id}"


def test_a_staff_user_of_no_project_is_told_how_to_get_one(project):
    response = login().get("/overview/")
    assert response.status_code == 200 and b"create_project" in response.content


def test_the_project_picker_lists_only_the_readable_projects(project, other_project):
    page = login(member_of=(project.project_id,)).get(f"/overview/?project_id={project.project_id}").content.decode()
    assert f'<option value="{project.project_id}" selected>' in page
    assert f'value="{other_project.project_id}"' not in page


def test_the_pages_static_files_are_served_and_chart_js_is_vendored_with_its_license(client):
    script = b"".join(client.get("/static/dashboard/vendor/chart.umd.min.js").streaming_content)
    assert script.startswith(b"/*!\n * Chart.js v4.")
    assert b"MIT" in b"".join(client.get("/static/dashboard/vendor/chart.js-LICENSE.md").streaming_content)
    assert client.get("/static/dashboard/common.js").status_code == 200


# --- The pickers' lists of flags and experiments (query host, read-only) -------------------


def test_flag_definitions_lists_a_projects_live_flags_by_key_in_pages(project, other_project):
    seed_flag(project.project_id, "b-flag")
    seed_flag(project.project_id, "a-flag", variants=(), rollout_percentage=40.0)
    seed_flag(project.project_id, "gone")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {FLAG_DEFINITIONS} SET archived = true WHERE key = 'gone'")
    seed_flag(other_project.project_id, "theirs")
    client = login(member_of=(project.project_id,))
    url = "/api/v1/analytics/admin/flag-definitions/"
    first = client.get(url, {"project_id": project.project_id, "limit": 1}).json()
    assert [row["key"] for row in first["results"]] == ["a-flag"]
    assert first["results"][0]["variants"] == [] and first["results"][0]["rollout_percentage"] == 40.0
    second = client.get(first["next"]).json()
    assert [(row["key"], row["variants"], row["version"]) for row in second["results"]] == [
        ("b-flag", ["control", "test"], 1)
    ]
    assert second["next"] is None
    assert client.get(url, {"project_id": other_project.project_id}).status_code == 403


def test_experiment_definitions_lists_a_projects_experiments(project, other_project):
    seed_experiment(project.project_id, datetime.now(UTC), key="checkout")
    seed_experiment(other_project.project_id, datetime.now(UTC), key="theirs")
    client = login(member_of=(project.project_id,))
    answer = client.get("/api/v1/analytics/admin/experiment-definitions/", {"project_id": project.project_id}).json()
    assert [(row["key"], row["tests"], row["goal_event"]) for row in answer["results"]] == [
        ("checkout", ["test"], "purchase")
    ]
    assert client.post("/api/v1/analytics/admin/experiment-definitions/", {"project_id": 1}).status_code == 405
