"""Experiment statistics for conversion goals: pure Python (math only, no numpy or scipy at run
time), exact where an exact answer is cheap. Never divides by zero: a number that does not exist
(a rate with no one exposed) is None.

Methods, for a variant with n users exposed of whom x converted (rate p = x / n):
- Interval: the Wilson score interval at 95% (z = 1.959963984540054): centre
  (p + z²/2n) / (1 + z²/n), half-width z / (1 + z²/n) · sqrt(p(1 - p)/n + z²/4n²). Unlike the
  normal interval it stays inside [0, 1] and is sensible at x = 0 and x = n.
- Uplift: (p_test - p_control) / p_control; None when p_control is 0 (or undefined).
- p-value: the two-sided two-proportion z-test with the pooled rate P = (x_c + x_t) / (n_c + n_t):
  z = (p_t - p_c) / sqrt(P(1 - P)(1/n_c + 1/n_t)), p = erfc(|z| / √2). When P is 0 or 1 both
  rates are equal and the test has nothing to reject: p = 1.
- Probability to beat control: P(p_t > p_c) with independent Beta(1 + x, 1 + n - x) posteriors
  (uniform Beta(1, 1) priors), exactly, by Evan Miller's closed form
  ("Formulas for Bayesian A/B Testing", evanmiller.org):
      P = Σ_{i=0}^{a_t-1} B(a_c + i, b_c + b_t) / ((b_t + i) · B(1 + i, b_t) · B(a_c, b_c)).
  with a = 1 + x and b = 1 + n - x, the posteriors' parameters (_c control, _t test).
  Of the formula's four symmetric forms (sum over a_t, a_c, b_t or b_c terms) the one with the
  fewest terms is used. Its terms are a beta-negative-binomial mass, which rises and then falls
  (consecutive terms have the ratio (a_c+i)(b_t+i) / ((a_c+b_c+b_t+i)(1+i)), which crosses 1
  once), so the sum starts at the largest term (its logarithm from lgamma), walks outward with
  that ratio, and stops where a term is below 1e-17 of the sum: at a million users a few
  thousand terms, not a million.
- Sample ratio mismatch: Pearson's chi-square of the exposure counts against the expected weights
  (normalised over the variants given), df = variants - 1, p-value the regularised upper
  incomplete gamma Q(df/2, χ²/2) (series below a + 1, Lentz's continued fraction above, as in
  Numerical Recipes §6.2). `srm_suspected` at p < 0.001, the threshold in common use for SRM
  alarms: a mismatch that strong means assignment or exposure logging is broken and the
  experiment's other numbers cannot be trusted.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from flags.definition import FlagDefinition

Z_95: Final = 1.959963984540054
"""The two-sided 95% quantile of the standard normal distribution."""

SRM_THRESHOLD: Final = 0.001

METHODS: Final = {
    "interval": "Wilson score interval, 95%",
    "p_value": "two-sided pooled two-proportion z-test against control",
    "probability_to_beat_control": "Beta(1, 1) prior, exact posterior probability P(p_test > p_control)",
    "srm": f"Pearson chi-square of exposures against the flag's variant weights, suspected at p < {SRM_THRESHOLD}",
}
"""What the numbers of experiment_results are, by name, for an answer to show beside them."""

_TINY: Final = 1e-300
_EPSILON: Final = 1e-15
_MAX_ITERATIONS: Final = 10_000
_NEGLIGIBLE: Final = 1e-17


class VariantCounts(msgspec.Struct, frozen=True):
    key: str
    exposed: int
    converted: int

    def __post_init__(self) -> None:
        # Impossible counts are a bug upstream (a projection double-counting): say so, loudly.
        if not 0 <= self.converted <= self.exposed:
            raise ValueError(
                f"variant {self.key!r}: need 0 <= converted <= exposed, got {self.converted} of {self.exposed}"
            )


class VariantResult(msgspec.Struct, frozen=True):
    key: str
    exposed: int
    converted: int
    rate: float | None
    interval_low: float | None
    interval_high: float | None
    uplift: float | None
    """Relative to control; None for control itself."""
    p_value: float | None
    """Against control; None for control itself."""
    probability_to_beat_control: float | None
    """None for control itself."""


class SampleRatio(msgspec.Struct, frozen=True):
    chi2: float | None
    df: int
    p_value: float | None
    srm_suspected: bool


class ExperimentResults(msgspec.Struct, frozen=True):
    control: VariantResult
    tests: tuple[VariantResult, ...]
    srm: SampleRatio


def conversion_rate(converted: int, exposed: int) -> float | None:
    return converted / exposed if exposed > 0 else None


def wilson_interval(converted: int, exposed: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of the conversion rate; None when no one was exposed."""
    if exposed <= 0:
        return None
    n = exposed
    p = converted / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    # Exact at the edges (0 and 1 are the true bounds there; rounding would leave 1 - 1e-16).
    low = 0.0 if converted == 0 else max(0.0, centre - half)
    high = 1.0 if converted == n else min(1.0, centre + half)
    return low, high


def uplift(test_rate: float | None, control_rate: float | None) -> float | None:
    if test_rate is None or control_rate is None or control_rate == 0:
        return None
    return (test_rate - control_rate) / control_rate


def two_proportion_p_value(control: VariantCounts, test: VariantCounts) -> float | None:
    """Two-sided pooled two-proportion z-test; None when either side has no one exposed."""
    if control.exposed <= 0 or test.exposed <= 0:
        return None
    pooled = (control.converted + test.converted) / (control.exposed + test.exposed)
    variance = pooled * (1 - pooled) * (1 / control.exposed + 1 / test.exposed)
    if variance <= 0:
        return 1.0
    z = (test.converted / test.exposed - control.converted / control.exposed) / math.sqrt(variance)
    return min(1.0, math.erfc(abs(z) / math.sqrt(2)))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _evan_miller_sum(alpha_a: int, beta_a: int, alpha_b: int, beta_b: int) -> float:
    """P(X_b > X_a) for X ~ Beta(alpha, beta), summed over alpha_b terms, from the largest out."""
    s = alpha_a + beta_a + beta_b
    constant = math.lgamma(beta_a + beta_b) - math.lgamma(beta_b) - _log_beta(alpha_a, beta_a)

    def log_term(i: int) -> float:
        return (
            math.lgamma(alpha_a + i) + math.lgamma(beta_b + i) - math.lgamma(s + i) - math.lgamma(1 + i) + constant
        )

    def ratio(i: int) -> float:  # term(i + 1) / term(i)
        return (alpha_a + i) * (beta_b + i) / ((s + i) * (1 + i))

    last = alpha_b - 1
    # The terms rise while ratio(i) > 1, i.e. while i < (alpha_a·beta_b - s) / (beta_a + 1).
    mode = min(max(math.ceil((alpha_a * beta_b - s) / (beta_a + 1)), 0), last)
    total = 1.0
    relative = 1.0
    for i in range(mode - 1, -1, -1):
        relative /= ratio(i)
        total += relative
        if relative < _NEGLIGIBLE * total:
            break
    relative = 1.0
    for i in range(mode, last):
        relative *= ratio(i)
        total += relative
        if relative < _NEGLIGIBLE * total:
            break
    return math.exp(log_term(mode) + math.log(total))


def probability_to_beat(control: VariantCounts, test: VariantCounts) -> float | None:
    """P(test's rate > control's) under Beta(1, 1) priors; None when either has no one exposed."""
    if control.exposed <= 0 or test.exposed <= 0:
        return None
    a_c, b_c = 1 + control.converted, 1 + control.exposed - control.converted
    a_t, b_t = 1 + test.converted, 1 + test.exposed - test.converted
    # P(p_t > p_c) four ways (swap the variants: 1 - P(p_c > p_t); mirror p -> 1 - p): sum the
    # shortest. Each form sums over its third argument.
    smallest = min(a_t, a_c, b_t, b_c)
    if smallest == a_t:
        probability = _evan_miller_sum(a_c, b_c, a_t, b_t)
    elif smallest == a_c:
        probability = 1 - _evan_miller_sum(a_t, b_t, a_c, b_c)
    elif smallest == b_c:
        probability = _evan_miller_sum(b_t, a_t, b_c, a_c)
    else:
        probability = 1 - _evan_miller_sum(b_c, a_c, b_t, a_t)
    return min(1.0, max(0.0, probability))


def regularized_upper_gamma(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a), for a > 0 and x >= 0."""
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        # The series for P(a, x); Q = 1 - P.
        term = total = 1 / a
        denominator = a
        for _ in range(_MAX_ITERATIONS):
            denominator += 1
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * _EPSILON:
                break
        return min(1.0, max(0.0, 1 - total * math.exp(log_prefix)))
    # Lentz's continued fraction for Q(a, x).
    b = x + 1 - a
    c = 1 / _TINY
    d = 1 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < _EPSILON:
            break
    return min(1.0, max(0.0, math.exp(log_prefix) * h))


def chi_square_sf(statistic: float, df: int) -> float:
    """P(χ²_df >= statistic)."""
    return regularized_upper_gamma(df / 2, statistic / 2)


def sample_ratio(counts: Sequence[VariantCounts], weights: Mapping[str, float]) -> SampleRatio:
    """Pearson's chi-square of exposures against the weights (any scale; missing means 0).
    Nothing to test (fewer than two weighted variants, no one exposed): chi2 and p None. Users
    exposed to a variant weighted 0 are a mismatch by definition: p 0, chi2 None (infinite)."""
    total_weight = sum(max(weights.get(c.key, 0.0), 0.0) for c in counts)
    exposed = sum(c.exposed for c in counts)
    weighted = [c for c in counts if weights.get(c.key, 0.0) > 0]
    df = len(weighted) - 1
    if exposed == 0 or total_weight <= 0:
        return SampleRatio(chi2=None, df=max(df, 0), p_value=None, srm_suspected=False)
    if any(c.exposed > 0 and weights.get(c.key, 0.0) <= 0 for c in counts):
        return SampleRatio(chi2=None, df=max(df, 0), p_value=0.0, srm_suspected=True)
    if df < 1:
        return SampleRatio(chi2=None, df=0, p_value=None, srm_suspected=False)
    chi2 = 0.0
    for c in weighted:
        expected = exposed * weights[c.key] / total_weight
        chi2 += (c.exposed - expected) ** 2 / expected
    p_value = chi_square_sf(chi2, df)
    return SampleRatio(chi2=chi2, df=df, p_value=p_value, srm_suspected=p_value < SRM_THRESHOLD)


def _variant_result(counts: VariantCounts, control: VariantCounts | None) -> VariantResult:
    rate = conversion_rate(counts.converted, counts.exposed)
    interval = wilson_interval(counts.converted, counts.exposed)
    return VariantResult(
        key=counts.key,
        exposed=counts.exposed,
        converted=counts.converted,
        rate=rate,
        interval_low=interval[0] if interval else None,
        interval_high=interval[1] if interval else None,
        uplift=None if control is None else uplift(rate, conversion_rate(control.converted, control.exposed)),
        p_value=None if control is None else two_proportion_p_value(control, counts),
        probability_to_beat_control=None if control is None else probability_to_beat(control, counts),
    )


def experiment_results(
    control: VariantCounts, tests: Sequence[VariantCounts], weights: Mapping[str, float]
) -> ExperimentResults:
    """Every number the experiment page shows, each test variant against control. `weights` maps
    a variant key to its share of assignment (the flag's variant rollout percentages)."""
    return ExperimentResults(
        control=_variant_result(control, None),
        tests=tuple(_variant_result(test, control) for test in tests),
        srm=sample_ratio([control, *tests], weights),
    )


def assignment_weights(definition: FlagDefinition) -> dict[str, float]:
    """The share of users each variant is assigned, the weights `sample_ratio` expects: a
    multivariate flag's variant rollout percentages (exact: conditions decide who is in, the
    variant split among them is always these shares, unless a condition or override forces a
    variant). A boolean flag's "true" at its rollout_percentage and "false" at the rest.

    TRICKY: for a boolean flag that is an approximation. It holds for a flag without conditions
    and overrides; a condition with its own rollout, users matching no condition (all "false"),
    overrides and a disabled flag move the true split away from it, and a SRM alarm on such an
    experiment may come from the definition rather than from broken exposure logging."""
    if definition.variants:
        return {variant.key: variant.rollout_percentage for variant in definition.variants}
    on = min(max(definition.rollout_percentage, 0.0), 100.0)
    return {"true": on, "false": 100.0 - on}
