"""The Django admin's flags: listed from their rows, created and edited through the flag service
(so each change is an event recorded as the staff user), a stale form refused, the history page
showing the aggregate's events; experiments checked by the API's rules."""

import pytest
from django.contrib.auth import get_user_model

from command_side.flags.application import flag_app
from command_side.models import Experiment, FlagRow

pytestmark = pytest.mark.django_db
ADMIN = "/admin/command_side/flagrow/"


@pytest.fixture
def staff(client):
    client.force_login(get_user_model().objects.create_user("grace", password="x", is_staff=True, is_superuser=True))
    return client


def form(project_id, **fields):
    data = {"project": project_id, "name": "", "description": "", "rollout_percentage": 100, "variants": "[]",
            "conditions": "[]", "overrides": "{}", "payload": "null", "flag_key": "", "opened_at_version": ""}  # fmt: skip
    data.update(fields)
    return data


def test_a_flag_added_in_the_admin_is_an_aggregate_created_by_the_staff_user(staff, project):
    response = staff.post(ADMIN + "add/", form(project.project_id, flag_key="from-admin", enabled="on"))
    assert response.status_code == 302, response.content.decode()[:2000]
    row = FlagRow.objects.get(key="from-admin")
    assert row.enabled and row.created_by == "user:grace"
    events = list(flag_app().events.get(row.aggregate_id))
    assert [type(e).__name__ for e in events] == ["Created"]
    assert staff.get(ADMIN).content.decode().count("from-admin") >= 1


def test_an_edit_in_the_admin_emits_events_and_a_stale_form_is_refused(staff, project):
    staff.post(ADMIN + "add/", form(project.project_id, flag_key="f"))
    row = FlagRow.objects.get(key="f")
    edited = staff.post(
        f"{ADMIN}{row.pk}/change/", form(project.project_id, rollout_percentage=25, opened_at_version=1)
    )
    assert edited.status_code == 302
    stale = staff.post(f"{ADMIN}{row.pk}/change/", form(project.project_id, rollout_percentage=75, opened_at_version=1))
    assert stale.status_code == 200 and "is at version 2, not 1" in stale.content.decode()
    row.refresh_from_db()
    assert row.version == 2 and row.definition["rollout_percentage"] == 25


def test_a_bad_definition_in_the_admin_is_a_form_error_naming_the_field(staff, project):
    variants = '[{"key": "a", "rollout_percentage": 60}]'
    response = staff.post(ADMIN + "add/", form(project.project_id, flag_key="f", variants=variants))
    assert (
        response.status_code == 200
        and "variants: variant rollout percentages must sum to 100" in response.content.decode()
    )
    assert not FlagRow.objects.exists()


def test_the_history_page_lists_the_events_with_who(staff, project):
    staff.post(ADMIN + "add/", form(project.project_id, flag_key="f"))
    row = FlagRow.objects.get(key="f")
    staff.post(f"{ADMIN}{row.pk}/change/", form(project.project_id, enabled="on", opened_at_version=1))
    page = staff.get(f"{ADMIN}{row.pk}/history/").content.decode()
    assert "Created" in page and "Enabled" in page and page.count("user:grace") == 2


def test_the_admin_archives_and_never_deletes(staff, project):
    staff.post(ADMIN + "add/", form(project.project_id, flag_key="f"))
    row = FlagRow.objects.get(key="f")
    staff.post(ADMIN, {"action": "archive", "_selected_action": [str(row.pk)]})
    row.refresh_from_db()
    assert row.archived
    assert staff.get(f"{ADMIN}{row.pk}/delete/").status_code == 403


def test_an_experiment_in_the_admin_keeps_the_apis_rules(staff, project):
    staff.post(ADMIN + "add/", form(project.project_id, flag_key="f"))
    data = {"project": project.project_id, "key": "e", "name": "", "description": "", "flag_key": "f", "control": "false",
            "tests": "nope", "goal_event": "purchase", "goal_filter": "null", "start_at_0": "2026-11-01",
            "start_at_1": "00:00:00", "end_at_0": "", "end_at_1": ""}  # fmt: skip
    refused = staff.post("/admin/command_side/experiment/add/", data)
    assert refused.status_code == 200 and "tests.0" in refused.content.decode()
    data["tests"] = "true"
    assert staff.post("/admin/command_side/experiment/add/", data).status_code == 302
    assert Experiment.objects.get(key="e").tests == ["true"]
