"""Fuzzing the flag and experiment endpoints of the command host: hostile JSON in every field of
a flag, an edit, an experiment and a for_user body, hostile query strings for evaluation.
Whatever comes in: never a 500, every 4xx in the documented shape {"code", "field", "message"},
and a refused definition leaves no flag behind. Seeded (derandomize) and bounded."""

import itertools

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from command_side.flags.service import FlagCreate, flag_create
from command_side.models import FlagRow
from flags.matching import OPERATORS
from tests.fuzz_helpers import rolled_back

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db]
SHAPE = {"code", "field", "message"}
FUZZ = fuzz_settings(max_examples=150, derandomize=True, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
percentages = st.one_of(st.floats(-10, 110, allow_nan=False), st.integers(-5, 105), json_values)
filters = st.fixed_dictionaries(
    {"key": st.text(max_size=12) | json_values},
    optional={
        "operator": st.sampled_from(sorted(OPERATORS)) | st.text(max_size=10),
        "value": json_values | st.text(max_size=20),
    },
)
conditions = st.fixed_dictionaries(
    {}, optional={"properties": st.lists(filters, max_size=3) | json_values, "rollout_percentage": percentages,
                  "variant": st.text(max_size=6) | json_values},
)  # fmt: skip
variants = st.fixed_dictionaries(
    {"key": st.text(max_size=10) | json_values, "rollout_percentage": percentages}, optional={"payload": json_values}
)
flag_bodies = st.fixed_dictionaries(
    {"key": st.text(min_size=1, max_size=20) | json_values},
    optional={"name": json_values, "rollout_percentage": percentages, "variants": st.lists(variants, max_size=3) | json_values,
              "conditions": st.lists(conditions, max_size=3) | json_values,
              "overrides": st.dictionaries(st.text(max_size=8), st.text(max_size=6) | st.booleans() | json_values, max_size=3) | json_values,
              "payload": json_values, "enabled": json_values, "surprise": json_values},
)  # fmt: skip


def refused_in_shape(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        assert set(response.json()) >= SHAPE, response.json()


@pytest.fixture
def admin(project, redis_client):
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {project.personal_api_key}"
    return client


EXAMPLES = itertools.count()


@pytest.fixture
def target(project, redis_client):
    return flag_create(project_id=project.project_id, fields=FlagCreate(key="target"), actor="t")


@FUZZ
@given(body=flag_bodies)
def test_creating_a_flag_from_any_json_is_never_a_500(admin, project, body):
    with rolled_back():
        response = admin.post("/api/v1/analytics/admin/feature-flags/", body, content_type="application/json")
        refused_in_shape(response)
        # (A key holding NUL cannot be stored at all: PostgreSQL's text has no NUL to look for.)
        if response.status_code == 400 and "\x00" not in str(body["key"]):
            assert not FlagRow.objects.filter(project_id=project.project_id, key=str(body["key"])).exists()


@FUZZ
@given(body=flag_bodies.map(lambda b: {**{k: v for k, v in b.items() if k != "key"}, "version": 1}))
def test_editing_a_flag_with_any_json_is_never_a_500(admin, project, body):
    # A fresh flag an example: the aggregate's events outlive the savepoint (their own connection).
    key = f"target-{next(EXAMPLES)}"
    with rolled_back():
        flag_create(project_id=project.project_id, fields=FlagCreate(key=key), actor="t")
        response = admin.patch(f"/api/v1/analytics/admin/feature-flags/{key}/", body, content_type="application/json")
        refused_in_shape(response)


@FUZZ
@given(body=st.fixed_dictionaries(
    {"key": st.text(max_size=10) | json_values, "flag_key": st.sampled_from(["target", "nope"]) | json_values},
    optional={"control": json_values, "tests": st.lists(st.sampled_from(["true", "false", "x"]), max_size=3) | json_values,
              "goal_event": json_values, "goal_filter": filters | json_values, "start_at": st.text(max_size=25) | json_values,
              "end_at": st.text(max_size=25) | json_values},
))  # fmt: skip
def test_creating_an_experiment_from_any_json_is_never_a_500(admin, target, body):
    with rolled_back():
        response = admin.post("/api/v1/analytics/admin/experiments/", body, content_type="application/json")
        refused_in_shape(response)


@FUZZ
@given(
    query=st.dictionaries(st.sampled_from(["distinct_id", "person_properties", "api_key", "x"]), st.text(max_size=40), max_size=4),
    body=st.fixed_dictionaries({}, optional={"distinct_id": json_values, "person_properties": json_values}),
)  # fmt: skip
def test_evaluating_with_any_query_or_body_is_never_a_500(client, project, redis_client, query, body):
    with rolled_back():
        path = "/api/v1/analytics/public/feature-flags/for_user/"
        auth = {"HTTP_AUTHORIZATION": f"Bearer {project.api_key}"}
        refused_in_shape(client.get(path, query, **auth))
        refused_in_shape(client.post(path, body, content_type="application/json", **auth))
