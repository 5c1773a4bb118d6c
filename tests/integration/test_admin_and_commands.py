"""The Django admin for projects and keys, and the management commands people type."""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tenancy.models import PersonalAPIKey, hash_secret
from tenancy.selectors import personal_api_key_find, project_id_for_api_key

pytestmark = pytest.mark.django_db


def test_create_project_prints_the_ids_and_keys_as_json():
    out = StringIO()
    call_command("create_project", "My app", "--json", stdout=out)
    issued = json.loads(out.getvalue())
    assert set(issued) == {"project_id", "api_key", "personal_api_key"}
    assert project_id_for_api_key(issued["api_key"]) == issued["project_id"]
    assert personal_api_key_find(issued["personal_api_key"]).project_id == issued["project_id"]


def test_personal_keys_are_stored_hashed_only(project):
    stored = PersonalAPIKey.objects.get(project_id=project.project_id)
    assert stored.secret_hash == hash_secret(project.personal_api_key)
    assert project.personal_api_key not in {stored.secret_hash, stored.prefix, stored.label}


def test_a_superuser_made_by_createsuperuser_can_use_the_admin(client, project):
    call_command("createsuperuser", "--noinput", "--username", "root", "--email", "r@example.com")
    user = get_user_model().objects.get(username="root")
    client.force_login(user)
    assert client.get("/admin/tenancy/project/").status_code == 200
    assert client.get("/admin/tenancy/personalapikey/").status_code == 200
    response = client.post(
        "/admin/tenancy/project/",
        {"action": "issue_personal_api_key", "_selected_action": [project.project_id]},
        follow=True,
    )
    assert response.status_code == 200
    assert PersonalAPIKey.objects.filter(project_id=project.project_id).count() == 2
    assert "tls_" in response.content.decode()


def test_projections_status_and_verify_commands_run(project):
    out = StringIO()
    call_command("projections", "status", stdout=out)
    assert "event_aggregates" in out.getvalue() and "user_activity" in out.getvalue()
    out = StringIO()
    call_command("projections", "verify", stdout=out)
    assert "event_aggregates: OK" in out.getvalue()


def test_event_store_info_names_the_engine_in_use():
    from command_side.event_store import engine

    out = StringIO()
    call_command("event_store", stdout=out)
    assert out.getvalue().split()[1] == engine()


def test_the_admin_links_each_project_to_its_dashboard_and_the_site_to_the_dashboard(admin_client, project):
    from tenancy.admin import ANALYTICS_URL

    change = admin_client.get(f"/admin/tenancy/project/{project.project_id}/change/").content.decode()
    url = ANALYTICS_URL.format(project.project_id)
    assert f'href="{url}"' in change
    assert admin_client.get(url).status_code == 200  # the staff session opens it
    assert 'href="/">View site' in admin_client.get("/admin/").content.decode()
