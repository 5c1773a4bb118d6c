"""Tenant isolation of every flag and experiment route of the command host, generated from its
URL configuration (a route added later is in these tests without anyone listing it): another
project's personal key never reads, changes or archives this project's flags and experiments
(nor erases: that is for staff users only), and a public key never administers."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from command_side.flags.service import FlagCreate, flag_create
from command_side.models import Experiment, FlagRow

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db]
SAMPLES = {"key": {"flag": "shared-key", "experiment": "shared-key"}}


def admin_routes() -> list[tuple[str, str]]:
    """(name, path) of every administration route of the command root, with sample values."""
    routes = []

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
                continue
            assert isinstance(entry, URLPattern)
            route = prefix + str(entry.pattern)
            if "/admin/" not in "/" + route:
                continue
            kind = "experiment" if "experiments" in route else "flag"
            for name, samples in SAMPLES.items():
                route = route.replace(f"<str:{name}>", samples[kind])
            assert "<" not in route, f"{route}: give this test a sample value for its parameters"
            routes.append((entry.name, "/" + route))

    walk(get_resolver("core.urls_command").url_patterns, "")
    return routes


ROUTES = admin_routes()


def test_the_routes_are_found():
    names = {name for name, _ in ROUTES}
    assert {"flag-list", "flag-detail", "flag-history", "experiment-list", "experiment-detail"} <= names


@pytest.fixture
def owned(project, other_project, redis_client):
    """A flag and an experiment in `project`; `other_project` has a flag of the same key but
    different state, so a leak would show its values rather than a 404."""
    flag_create(project_id=project.project_id, fields=FlagCreate(key="shared-key", enabled=True, rollout_percentage=7),
                actor="t")  # fmt: skip
    flag_create(project_id=other_project.project_id, fields=FlagCreate(key="other-only"), actor="t")
    Experiment.objects.create(project_id=project.project_id, key="shared-key", flag_key="shared-key", control="false",
                              tests=["true"], goal_event="buy", start_at="2026-01-01T00:00:00Z")  # fmt: skip
    return project


METHODS = ("get", "patch", "delete")


@pytest.mark.parametrize(("name", "path"), ROUTES, ids=[name for name, _ in ROUTES])
@pytest.mark.parametrize("method", METHODS)
def test_another_projects_key_never_touches_this_projects_objects(client, owned, other_project, name, path, method):
    before = list(FlagRow.objects.order_by("key").values_list("key", "version", "archived"))
    experiments_before = list(Experiment.objects.values_list("key", "archived", "name"))
    response = getattr(client, method)(
        path, {"version": 1, "name": "stolen"} if method == "patch" else None, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {other_project.personal_api_key}",
    )  # fmt: skip
    if "/erasures/" in path:  # staff only: no personal key of any project
        assert response.status_code in (403, 405), response.json()
    elif path.endswith(("feature-flags/", "experiments/")):  # a list: the other project's own only
        if method == "get":
            keys = [item["key"] for item in response.json()["results"]]
            assert "shared-key" not in keys
        else:
            assert response.status_code == 405
    else:
        assert response.status_code in (404, 405), response.json()
    assert list(FlagRow.objects.order_by("key").values_list("key", "version", "archived")) == before
    assert list(Experiment.objects.values_list("key", "archived", "name")) == experiments_before


@pytest.mark.parametrize(("name", "path"), ROUTES, ids=[name for name, _ in ROUTES])
def test_a_public_key_or_none_cannot_administer(client, owned, name, path):
    assert client.get(path).status_code in (401, 403)
    wrong = client.get(path, HTTP_AUTHORIZATION=f"Bearer {owned.api_key}")
    assert wrong.status_code == 401 and wrong.json()["code"] == "wrong_key_kind"
