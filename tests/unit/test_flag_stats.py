"""Experiment statistics against scipy, computed independently here, plus the edge cases."""

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from flags.stats import (
    VariantCounts,
    chi_square_sf,
    experiment_results,
    probability_to_beat,
    regularized_upper_gamma,
    sample_ratio,
    two_proportion_p_value,
    uplift,
    wilson_interval,
)


def scipy_wilson(x, n, level=0.95):
    z = stats.norm.ppf(1 - (1 - level) / 2)
    p = x / n
    centre = (x + z * z / 2) / (n + z * z)
    half = z * math.sqrt(n) / (n + z * z) * math.sqrt(p * (1 - p) + z * z / (4 * n))
    return centre - half, centre + half


def scipy_z_test(x1, n1, x2, n2):
    pooled = (x1 + x2) / (n1 + n2)
    z = (x2 / n2 - x1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 2 * stats.norm.sf(abs(z))


def scipy_beats(control, test):
    """P(p_t > p_c) by numerical integration of f_t(x) · F_c(x)."""
    c = stats.beta(1 + control.converted, 1 + control.exposed - control.converted)
    t = stats.beta(1 + test.converted, 1 + test.exposed - test.converted)
    lo = min(c.ppf(1e-13), t.ppf(1e-13))
    hi = max(c.isf(1e-13), t.isf(1e-13))
    value, _ = integrate.quad(lambda x: t.pdf(x) * c.cdf(x), lo, hi, points=[c.mean(), t.mean()], limit=500)
    return value


@pytest.mark.parametrize(("x", "n"), [(0, 10), (10, 10), (1, 3), (45, 1000), (500_000, 1_000_000), (7, 1_000_000)])
def test_wilson_interval_matches_the_formula_with_scipys_quantile(x, n):
    low, high = wilson_interval(x, n)
    expected_low, expected_high = scipy_wilson(x, n)
    assert low == pytest.approx(max(0.0, expected_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, expected_high), abs=1e-12)
    assert 0.0 <= low <= x / n <= high <= 1.0


def test_wilson_interval_at_the_edges():
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.1 < high < 0.2  # 0/20 is not "certainly 0%"
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and 0.8 < low < 0.9


def test_uplift():
    assert uplift(0.12, 0.10) == pytest.approx(0.2)
    assert uplift(0.05, 0.10) == pytest.approx(-0.5)
    assert uplift(0.1, 0.0) is None
    assert uplift(None, 0.1) is None
    assert uplift(0.1, None) is None


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"),
    [(100, 1000, 120, 1000), (10, 100, 25, 110), (5000, 100_000, 5150, 100_000), (1, 10, 9, 10), (30, 31, 0, 40)],
)
def test_z_test_p_value_matches_scipy(x1, n1, x2, n2):
    p = two_proportion_p_value(VariantCounts("c", n1, x1), VariantCounts("t", n2, x2))
    assert p == pytest.approx(scipy_z_test(x1, n1, x2, n2), rel=1e-9, abs=1e-15)


def test_z_test_edges():
    assert two_proportion_p_value(VariantCounts("c", 0, 0), VariantCounts("t", 10, 1)) is None
    assert two_proportion_p_value(VariantCounts("c", 10, 0), VariantCounts("t", 10, 0)) == 1.0
    assert two_proportion_p_value(VariantCounts("c", 10, 10), VariantCounts("t", 7, 7)) == 1.0
    assert two_proportion_p_value(VariantCounts("c", 100, 10), VariantCounts("t", 100, 10)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("control", "test"),
    [
        ((100, 10), (100, 15)),
        ((10, 3), (12, 3)),
        ((50, 50), (60, 59)),
        ((5, 0), (7, 7)),
        ((1000, 0), (1000, 0)),
        ((100_000, 5000), (100_000, 5150)),
        ((1_000_000, 500_000), (1_000_000, 501_000)),
        ((1_000_000, 3), (1_000_000, 10)),
        ((1_000_000, 999_990), (1_000_000, 999_995)),
        ((200, 150), (30, 3)),
    ],
)
def test_probability_to_beat_matches_numerical_integration(control, test):
    c, t = VariantCounts("c", *control), VariantCounts("t", *test)
    assert probability_to_beat(c, t) == pytest.approx(scipy_beats(c, t), abs=1e-7)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
    st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
)
def test_probability_to_beat_is_a_probability_and_complements_itself(control, test):
    c, t = VariantCounts("c", *control), VariantCounts("t", *test)
    forward = probability_to_beat(c, t)
    assert 0.0 <= forward <= 1.0
    assert forward + probability_to_beat(t, c) == pytest.approx(1.0, abs=1e-9)
    assert forward == pytest.approx(scipy_beats(c, t), abs=1e-6)


def test_probability_to_beat_at_a_million_users_is_fast():
    c = VariantCounts("c", 1_000_000, 400_000)
    t = VariantCounts("t", 1_000_000, 401_000)
    started = time.perf_counter()
    result = probability_to_beat(c, t)
    elapsed = time.perf_counter() - started
    assert result == pytest.approx(scipy_beats(c, t), abs=1e-7)
    assert elapsed < 0.05


def test_probability_to_beat_with_no_one_exposed_is_none():
    assert probability_to_beat(VariantCounts("c", 0, 0), VariantCounts("t", 5, 1)) is None


@pytest.mark.parametrize(("a", "x"), [(0.5, 0.2), (0.5, 3.0), (1.0, 1.0), (2.5, 10.0), (10.0, 3.0), (50.0, 60.0)])
def test_regularized_upper_gamma_matches_scipy(a, x):
    assert regularized_upper_gamma(a, x) == pytest.approx(stats.gamma.sf(x, a), rel=1e-10, abs=1e-300)


@pytest.mark.parametrize(
    ("statistic", "df"), [(0.0, 1), (1e-6, 1), (3.841458820694124, 1), (10.0, 3), (100.0, 2), (60.0, 49)]
)
def test_chi_square_sf_matches_scipy(statistic, df):
    assert chi_square_sf(statistic, df) == pytest.approx(stats.chi2.sf(statistic, df), rel=1e-10)


def test_sample_ratio_matches_scipys_chisquare():
    counts = [VariantCounts("control", 5_100, 0), VariantCounts("a", 4_800, 0), VariantCounts("b", 10_100, 0)]
    srm = sample_ratio(counts, {"control": 25, "a": 25, "b": 50})
    expected = stats.chisquare([5_100, 4_800, 10_100], [5_000, 5_000, 10_000])
    assert srm.chi2 == pytest.approx(expected.statistic)
    assert srm.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert srm.df == 2
    assert srm.srm_suspected is False


def test_a_strong_mismatch_is_suspected():
    srm = sample_ratio(
        [VariantCounts("control", 5_300, 0), VariantCounts("test", 4_700, 0)], {"control": 0.5, "test": 0.5}
    )
    assert srm.p_value < 0.001
    assert srm.srm_suspected is True


def test_sample_ratio_edges():
    nobody = sample_ratio([VariantCounts("control", 0, 0), VariantCounts("test", 0, 0)], {"control": 1, "test": 1})
    assert (nobody.chi2, nobody.p_value, nobody.srm_suspected) == (None, None, False)
    alone = sample_ratio([VariantCounts("control", 10, 1)], {"control": 1})
    assert (alone.chi2, alone.df, alone.p_value) == (None, 0, None)
    unweighted = sample_ratio([VariantCounts("control", 10, 0), VariantCounts("test", 3, 0)], {"control": 1})
    assert (unweighted.p_value, unweighted.srm_suspected) == (0.0, True)


def test_experiment_results_puts_it_together():
    control = VariantCounts("control", 1000, 100)
    test = VariantCounts("test", 1000, 130)
    results = experiment_results(control, [test], {"control": 50, "test": 50})
    assert results.control.rate == pytest.approx(0.1)
    assert (results.control.uplift, results.control.p_value, results.control.probability_to_beat_control) == (
        None,
        None,
        None,
    )
    [t] = results.tests
    assert t.key == "test" and t.rate == pytest.approx(0.13)
    assert t.uplift == pytest.approx(0.3)
    assert t.p_value == pytest.approx(scipy_z_test(100, 1000, 130, 1000))
    assert t.probability_to_beat_control == pytest.approx(scipy_beats(control, test), abs=1e-7)
    assert (t.interval_low, t.interval_high) == pytest.approx(scipy_wilson(130, 1000))
    assert results.srm.chi2 == 0.0 and results.srm.p_value == 1.0


def test_experiment_results_with_no_one_exposed_is_all_none_not_an_error():
    results = experiment_results(
        VariantCounts("control", 0, 0), [VariantCounts("test", 0, 0)], {"control": 1, "test": 1}
    )
    t = results.tests[0]
    assert (t.rate, t.interval_low, t.interval_high, t.uplift, t.p_value, t.probability_to_beat_control) == (None,) * 6
    assert results.srm.p_value is None


def test_experiment_results_with_zero_control_conversions_has_no_uplift():
    results = experiment_results(
        VariantCounts("control", 100, 0), [VariantCounts("test", 100, 5)], {"control": 1, "test": 1}
    )
    t = results.tests[0]
    assert t.uplift is None
    assert t.p_value is not None and t.p_value < 0.05
    assert t.probability_to_beat_control > 0.95


@pytest.mark.parametrize(("exposed", "converted"), [(10, 11), (10, -1), (-1, 0)])
def test_impossible_counts_are_refused(exposed, converted):
    with pytest.raises(ValueError, match="converted"):
        VariantCounts("v", exposed, converted)
