"""The experiment endpoints over what the projections really write: `$feature_flag_called` and
goal events through flag_exposures and experiment_conversions, then read over HTTP. Pins the
read side to the writers' meaning of a row (first variant, variants seen, a conversion)."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.test_query_api import BASE, seed_experiment, seed_flag
from tests.projection_helpers import insert_events
from tests.projection_helpers import project as run_projections

pytestmark = pytest.mark.django_db(transaction=True)
START = datetime(2026, 3, 2, tzinfo=UTC)


def exposure(pid, user, variant, minutes):
    properties = {"$feature_flag": "checkout", "$feature_flag_response": variant}
    return {"project_id": pid, "event_type": "$feature_flag_called", "distinct_id": user,
            "timestamp": START + timedelta(minutes=minutes), "properties": properties}  # fmt: skip


def purchase(pid, user, minutes):
    return {"project_id": pid, "event_type": "purchase", "distinct_id": user,
            "timestamp": START + timedelta(minutes=minutes)}  # fmt: skip


def test_projected_exposures_and_conversions_are_counted_as_documented(client, project):
    pid = project.project_id
    seed_flag(pid, "checkout")
    seed_experiment(pid, START, START + timedelta(days=1), key="checkout-test", flag_key="checkout")
    insert_events(
        [
            exposure(pid, "c1", "control", 10), purchase(pid, "c1", 20),  # converted
            purchase(pid, "c2", 5), exposure(pid, "c2", "control", 10),  # bought before exposure
            exposure(pid, "c3", "control", 10), exposure(pid, "c3", "control", 30),
            exposure(pid, "t1", "test", 60), purchase(pid, "t1", 61),  # converted
            exposure(pid, "flip", "test", 10), exposure(pid, "flip", "control", 20), purchase(pid, "flip", 30),
            exposure(pid, "early", "test", -10), purchase(pid, "early", 30),  # exposed before the start
        ]
    )  # fmt: skip
    run_projections(["flag_exposures", "experiment_conversions"])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {project.personal_api_key}"}
    body = client.get(f"{BASE}experiments/checkout-test/results/", **headers).json()
    assert (body["control"]["exposed"], body["control"]["converted"]) == (3, 1)
    assert [(t["key"], t["exposed"], t["converted"]) for t in body["tests"]] == [("test", 1, 1)]
    assert body["users_with_several_variants"] == 1
    window = {"after": "2026-03-01", "before": "2026-03-03"}
    exposures = client.get(f"{BASE}feature-flags/checkout/exposures/", window, **headers).json()
    assert exposures["days"] == [
        {"day": "2026-03-01", "variant": "test", "exposures": 1},
        {"day": "2026-03-02", "variant": "control", "exposures": 5},
        {"day": "2026-03-02", "variant": "test", "exposures": 2},
    ]
    # "early" counts here: this range starts the day before, the experiment's window did not.
    assert exposures["users"] == [{"variant": "control", "users": 3}, {"variant": "test", "users": 2}]
    assert exposures["users_with_several_variants"] == 1
