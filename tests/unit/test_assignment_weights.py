"""The weights an experiment's sample-ratio test compares exposures against (flags.stats)."""

from flags.definition import FlagDefinition, Variant
from flags.stats import VariantCounts, assignment_weights, sample_ratio


def test_a_multivariate_flag_weighs_its_variants_by_their_rollout_percentages():
    definition = FlagDefinition(
        key="f", rollout_percentage=40, variants=(Variant("control", 25), Variant("a", 25), Variant("b", 50))
    )
    assert assignment_weights(definition) == {"control": 25, "a": 25, "b": 50}


def test_a_boolean_flag_weighs_true_at_its_rollout_and_false_at_the_rest():
    assert assignment_weights(FlagDefinition(key="f", rollout_percentage=30)) == {"true": 30, "false": 70}
    assert assignment_weights(FlagDefinition(key="f")) == {"true": 100, "false": 0}


def test_a_boolean_flags_weights_are_what_sample_ratio_takes():
    counts = [VariantCounts("false", 70, 0), VariantCounts("true", 30, 0)]
    srm = sample_ratio(counts, assignment_weights(FlagDefinition(key="f", rollout_percentage=30)))
    assert (srm.chi2, srm.df, srm.p_value, srm.srm_suspected) == (0.0, 1, 1.0, False)
