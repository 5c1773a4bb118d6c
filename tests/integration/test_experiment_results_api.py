"""GET admin/experiments/{key}/results/ over HTTP: who counts as exposed and converted, pinned on
a case counted by hand; the statistics are flags.stats' on those counts; SRM; a boolean flag;
no one exposed; 404; tenant isolation. (Rows go straight into the read models.)"""

import math
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from flags.stats import METHODS, VariantCounts, VariantResult, experiment_results
from tests.integration.test_query_api import BASE, seed_conversion, seed_experiment, seed_exposure, seed_flag

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=7)
HOUR = timedelta(hours=1)


def results(client, key, experiment_key="checkout-test"):
    return client.get(f"{BASE}experiments/{experiment_key}/results/", HTTP_AUTHORIZATION=f"Bearer {key}")


def variant_body(result: VariantResult) -> dict:
    return {
        "key": result.key, "exposed": result.exposed, "converted": result.converted, "rate": result.rate,
        "interval": {"low": result.interval_low, "high": result.interval_high}, "uplift": result.uplift,
        "p_value": result.p_value, "probability_to_beat_control": result.probability_to_beat_control,
    }  # fmt: skip


def seed_case(pid, flag_key="checkout", key="checkout-test"):
    """The hand-counted case: control 5 exposed, 2 converted; test 3 exposed, 2 converted."""
    seed_flag(pid, flag_key)
    experiment = seed_experiment(pid, START, END, key=key, flag_key=flag_key)
    other_experiment = seed_experiment(pid, START, END, key=f"{key}-other", flag_key=flag_key)

    def user(name, variant, first_at, converted_at=(), variants=None):
        seed_exposure(pid, name, variant, first_at, variants=variants, flag_key=flag_key)
        for at in converted_at:
            seed_conversion(pid, experiment, name, at)

    # Control: five exposed in the window.
    user("c1", "control", START + HOUR, [START + 2 * HOUR])  # converted
    user("c2", "control", START + 24 * HOUR, [START + HOUR])  # its goal event came before exposure
    user("c3", "control", START + 48 * HOUR, [END + HOUR])  # its goal event came after the end
    user("c4", "control", START + 72 * HOUR)
    seed_conversion(pid, other_experiment, "c4", START + 73 * HOUR)  # another experiment's
    user("c5", "control", END, [END])  # the window is closed: exposed and converted at its end
    # Test: three exposed.
    user("t1", "test", START + HOUR, [START + 3 * HOUR, START + 4 * HOUR])  # converted (twice: one user)
    user("t2", "test", START + HOUR, [START + HOUR])  # converted the instant of exposure
    user("t3", "test", START + HOUR)
    # Left out.
    user("early", "control", START - HOUR, [START + HOUR])  # first exposed before the window
    user("late", "test", END + timedelta(microseconds=1), [END + HOUR])  # after it
    user("both", "control", START + HOUR, [START + 2 * HOUR], variants=["control", "test"])  # two variants
    user("third", "other", START + HOUR, [START + 2 * HOUR])  # a variant the experiment does not name
    seed_exposure(pid, "elsewhere", "test", START + HOUR, flag_key="another-flag")
    return experiment


def test_it_counts_exposed_and_converted_users_as_counted_by_hand(client, project):
    seed_case(project.project_id)
    response = results(client, project.personal_api_key)
    assert response.status_code == 200
    body = response.json()
    assert (body["control"]["exposed"], body["control"]["converted"]) == (5, 2)
    assert [(t["key"], t["exposed"], t["converted"]) for t in body["tests"]] == [("test", 3, 2)]
    assert body["users_with_several_variants"] == 1
    assert (body["key"], body["flag_key"], body["archived"]) == ("checkout-test", "checkout", False)
    assert body["window"] == {
        "start_at": "2026-03-02T00:00:00Z", "end_at": "2026-03-09T00:00:00Z", "counted_until": "2026-03-09T00:00:00Z",
    }  # fmt: skip


def test_its_statistics_are_flags_stats_on_those_counts(client, project):
    seed_case(project.project_id)
    body = results(client, project.personal_api_key).json()
    expected = experiment_results(
        VariantCounts("control", 5, 2), [VariantCounts("test", 3, 2)], {"control": 50.0, "test": 50.0}
    )
    assert body["control"] == variant_body(expected.control)
    assert body["tests"] == [variant_body(expected.tests[0])]
    assert body["srm"] == {
        "chi2": expected.srm.chi2, "df": 1, "p_value": expected.srm.p_value, "srm_suspected": False,
        "weights": {"control": 50.0, "test": 50.0},
    }  # fmt: skip
    assert body["control"]["rate"] == 0.4 and body["tests"][0]["uplift"] == pytest.approx((2 / 3 - 0.4) / 0.4)
    assert body["control"]["p_value"] is None and body["tests"][0]["p_value"] is not None
    assert body["methods"] == METHODS
    assert "Wilson" in body["methods"]["interval"] and "chi-square" in body["methods"]["srm"]


def test_srm_is_suspected_when_exposures_are_far_from_the_weights(client, project):
    pid = project.project_id
    seed_flag(pid, "checkout", variants=(("control", 50), ("test", 50)))
    seed_experiment(pid, START, END, key="checkout-test", flag_key="checkout")
    for i in range(100):
        seed_exposure(pid, f"c{i}", "control", START + HOUR, flag_key="checkout")
    for i in range(40):
        seed_exposure(pid, f"t{i}", "test", START + HOUR, flag_key="checkout")
    srm = results(client, project.personal_api_key).json()["srm"]
    assert srm["chi2"] == pytest.approx((100 - 70) ** 2 / 70 * 2)
    assert srm["p_value"] < 0.001 and srm["srm_suspected"] is True


def test_only_the_experiments_variants_are_weighed(client, project):
    pid = project.project_id
    seed_flag(pid, "checkout", variants=(("control", 20), ("a", 20), ("b", 60)))
    seed_experiment(pid, START, END, key="checkout-test", flag_key="checkout", tests=("a",))
    for i in range(10):
        seed_exposure(pid, f"c{i}", "control", START + HOUR, flag_key="checkout")
        seed_exposure(pid, f"a{i}", "a", START + HOUR, flag_key="checkout")
        seed_exposure(pid, f"b{i}", "b", START + HOUR, flag_key="checkout")
    body = results(client, project.personal_api_key).json()
    assert body["srm"]["weights"] == {"control": 20.0, "a": 20.0}
    assert (body["srm"]["chi2"], body["srm"]["srm_suspected"]) == (0.0, False)
    assert [t["key"] for t in body["tests"]] == ["a"]


def test_a_boolean_flags_experiment_weighs_true_at_the_rollout(client, project):
    pid = project.project_id
    seed_flag(pid, "dark-mode", variants=(), rollout_percentage=30)
    experiment = seed_experiment(pid, START, END, key="dark", flag_key="dark-mode", control="false", tests=("true",))
    for i in range(7):
        seed_exposure(pid, f"f{i}", "false", START + HOUR, flag_key="dark-mode")
    for i in range(3):
        seed_exposure(pid, f"t{i}", "true", START + HOUR, flag_key="dark-mode")
    seed_conversion(pid, experiment, "t0", START + 2 * HOUR)
    body = results(client, project.personal_api_key, "dark").json()
    assert (body["control"]["key"], body["control"]["exposed"], body["control"]["converted"]) == ("false", 7, 0)
    assert [(t["key"], t["exposed"], t["converted"]) for t in body["tests"]] == [("true", 3, 1)]
    assert body["srm"]["weights"] == {"true": 30.0, "false": 70.0}
    assert body["srm"]["chi2"] == pytest.approx(0.0) and body["srm"]["srm_suspected"] is False


def test_no_one_exposed_gives_nulls_not_an_error(client, project):
    seed_flag(project.project_id, "checkout")
    seed_experiment(project.project_id, START, END, key="checkout-test", flag_key="checkout")
    response = results(client, project.personal_api_key)
    assert response.status_code == 200
    body = response.json()
    for variant in (body["control"], *body["tests"]):
        assert (variant["exposed"], variant["converted"], variant["rate"]) == (0, 0, None)
        assert variant["interval"] == {"low": None, "high": None}
        assert (variant["uplift"], variant["p_value"], variant["probability_to_beat_control"]) == (None, None, None)
    assert body["srm"] == {
        "chi2": None,
        "df": 1,
        "p_value": None,
        "srm_suspected": False,
        "weights": {"control": 50.0, "test": 50.0},
    }


def test_a_control_that_never_converts_gives_a_null_uplift(client, project):
    pid = project.project_id
    experiment = seed_experiment(pid, START, END, key="checkout-test", flag_key="checkout")
    seed_flag(pid, "checkout")
    seed_exposure(pid, "c", "control", START + HOUR, flag_key="checkout")
    seed_exposure(pid, "t", "test", START + HOUR, flag_key="checkout")
    seed_conversion(pid, experiment, "t", START + 2 * HOUR)
    [test] = results(client, project.personal_api_key).json()["tests"]
    assert test["uplift"] is None and test["rate"] == 1.0 and not math.isnan(test["p_value"])


def test_an_open_experiment_counts_up_to_now(client, project):
    pid = project.project_id
    now = datetime.now(UTC)
    seed_flag(pid, "checkout")
    experiment = seed_experiment(pid, now - timedelta(days=2), key="checkout-test", flag_key="checkout")
    seed_exposure(pid, "c", "control", now - HOUR, flag_key="checkout")
    seed_conversion(pid, experiment, "c", now - HOUR / 2)
    seed_exposure(pid, "future", "control", now + timedelta(days=1), flag_key="checkout")  # a skewed clock
    body = results(client, project.personal_api_key).json()
    assert (body["control"]["exposed"], body["control"]["converted"]) == (1, 1)
    assert body["window"]["end_at"] is None
    assert abs(datetime.fromisoformat(body["window"]["counted_until"]) - now) < timedelta(minutes=1)


def test_an_experiment_whose_flag_is_gone_has_no_srm(client, project):
    pid = project.project_id
    seed_experiment(pid, START, END, key="checkout-test", flag_key="checkout")
    seed_exposure(pid, "c", "control", START + HOUR, flag_key="checkout")
    body = results(client, project.personal_api_key).json()
    assert body["control"]["exposed"] == 1
    assert body["srm"] == {"chi2": None, "df": 0, "p_value": None, "srm_suspected": False, "weights": {}}


@pytest.mark.parametrize("experiment_key", ["no-such-experiment", "a%00b", "x" * 201])
def test_an_experiment_the_project_lacks_is_a_404(client, project, experiment_key):
    seed_case(project.project_id)
    response = results(client, project.personal_api_key, experiment_key)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_a_project_sees_only_its_own_experiment_of_a_key_both_have(client, project, other_project):
    seed_case(other_project.project_id)
    seed_flag(project.project_id, "checkout")
    mine = seed_experiment(project.project_id, START, END, key="checkout-test", flag_key="checkout")
    seed_exposure(project.project_id, "c1", "test", START + HOUR, flag_key="checkout")  # their c1's name
    seed_conversion(project.project_id, mine, "c1", START + 2 * HOUR)
    body = results(client, project.personal_api_key).json()
    assert (body["control"]["exposed"], body["users_with_several_variants"]) == (0, 0)
    assert [(t["exposed"], t["converted"]) for t in body["tests"]] == [(1, 1)]
    theirs = results(client, other_project.personal_api_key).json()
    assert (theirs["control"]["exposed"], theirs["control"]["converted"]) == (5, 2)


def test_an_experiment_of_another_project_only_is_a_404(client, project, other_project):
    seed_case(other_project.project_id)
    response = results(client, project.personal_api_key)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_it_is_two_queries_after_authentication(client, project, django_assert_num_queries):
    seed_case(project.project_id)
    results(client, project.personal_api_key)  # the key's first use writes last_used_at
    with django_assert_num_queries(3):  # the key lookup; the experiment and its flag; the counts
        assert results(client, project.personal_api_key).status_code == 200


def test_a_nan_or_infinite_statistic_is_answered_as_null(client, project, monkeypatch):
    # flags.stats answers None where a number does not exist; should it ever give NaN or an
    # infinity, the answer is still JSON (strict JSON has neither), not a 500.
    seed_case(project.project_id)
    real = experiment_results

    def broken(control, tests, weights):
        results = real(control, tests, weights)
        test = msgspec.structs.replace(results.tests[0], uplift=math.nan, p_value=math.inf)
        srm = msgspec.structs.replace(results.srm, chi2=math.inf, p_value=math.nan)
        return msgspec.structs.replace(results, tests=(test,), srm=srm)

    monkeypatch.setattr("flags.stats.experiment_results", broken)
    response = results(client, project.personal_api_key)
    assert response.status_code == 200
    [test] = response.json()["tests"]
    assert (test["uplift"], test["p_value"], test["rate"]) == (None, None, 2 / 3)
    assert (response.json()["srm"]["chi2"], response.json()["srm"]["p_value"]) == (None, None)
