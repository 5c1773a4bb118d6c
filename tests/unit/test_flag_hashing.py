"""PostHog's bucketing, bit for bit, and the properties a bucketing must have."""

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from flags.definition import Condition, FlagDefinition, Variant
from flags.evaluate import compile_flag
from flags.hashing import bucket, choose_variant, variant_thresholds

# Parity vectors: what PostHog's own client asserts for `distinct_id_{i}`, i = 0..999.
# Source: github.com/PostHog/posthog-python, posthog/test/test_feature_flags.py (commit c55c9b22),
# `test_simple_flag_consistency` (flag "simple-flag", one group at rollout 45%: "1" = enabled)
# and `test_multivariate_flag_consistency` (flag "multivariate-flag", rollout 55%, variants below:
# "0" = disabled, "n" = the n-th variant). The same 2 x 1,000 results are asserted by
# github.com/PostHog/posthog-js, packages/node/src/__tests__/feature-flags.spec.ts (commit 9b2a1b18),
# describe('consistency tests'): checked equal when these were copied.
SIMPLE_FLAG_RESULTS = (
    "0110100101011010001101001011000111100000011011000110000101010110101011001001010010001101101111101100"
    "1111001011100000100111001010010000000011001001100101011100010000110110101101011101001101011001111011"
    "0010100110101000000010110010100010100010010110000100000000000001101011010100011110000011100110000010"
    "1111011100101001110100011010101111100101011101011011111000001010011000101111000011001101111011100110"
    "0100100000000001100100101001000000100000000011100010100010000000100000000101011100011101011000100001"
    "0101101000100110100000011001001110001000010100010110101010010010101010011110100000100100110000111001"
    "0011110001000100111100110101001101111001001101010010000111010010010000101011001011100001101000100001"
    "1100011110110111010010111101010100110010100001010001110001011000001010011011110010010101100010110001"
    "0101101001000111000001001111100000000111001101101010001001001111001011001001101001110000010100000110"
    "1110000111101101010100001111001011000000101011001111001011001110100110001001000111101010101001001011"
)
MULTIVARIATE_FLAG_RESULTS = (
    "2210021000130121004103000111111303210300120112010011121022321012401110120300000015021203300003001103"
    "3032300210010000111000110110000000001111211120212102201000310010000100000001131100100520201315300400"
    "0030030122201311000001112000200101001111313112330210210100151000011202330130010310311012210002001103"
    "0103032100131250010003021000030030013001004432135015011100025211200302503100400200141200013301110101"
    "3300100221110510002314130110311304511000111011210121012011010101000331002311000210130100013300003441"
    "2010213030113000421001401310030101132401000021201011011231110003011131121541204000400300013321210100"
    "0001102001021113200530010001233001031000041000300210023110110023230010010200001030100232411101020000"
    "0100000102000020103001303002012100000200130100000120001150001030020000042120202010110201050110001013"
    "0011005003031133010000010000212105100411004102331100011103330011020020312511015000311241210002300100"
    "0000110301033110202100020301511001000141115000200011001121111131020032301321300110001321110323003101"
)
MULTIVARIATE_VARIANTS = (
    ("first-variant", 50),
    ("second-variant", 20),
    ("third-variant", 20),
    ("fourth-variant", 5),
    ("fifth-variant", 5),
)


def test_bucket_is_posthogs_formula():
    digest = hashlib.sha1(b"my-flag.user-1variant").hexdigest()
    assert bucket("my-flag", "user-1", "variant") == int(digest[:15], 16) / 0xFFFFFFFFFFFFFFF


def test_it_matches_posthogs_simple_flag_consistency_vectors():
    flag = compile_flag(FlagDefinition(key="simple-flag", enabled=True, conditions=(Condition(rollout_percentage=45),)))
    results = "".join("1" if flag.evaluate(f"distinct_id_{i}", {}).enabled else "0" for i in range(1000))
    assert len(SIMPLE_FLAG_RESULTS) == 1000
    assert results == SIMPLE_FLAG_RESULTS


def test_it_matches_posthogs_multivariate_flag_consistency_vectors():
    flag = compile_flag(
        FlagDefinition(
            key="multivariate-flag",
            enabled=True,
            variants=tuple(Variant(key, share) for key, share in MULTIVARIATE_VARIANTS),
            conditions=(Condition(rollout_percentage=55),),
        )
    )
    names = [key for key, _ in MULTIVARIATE_VARIANTS]
    results = []
    for i in range(1000):
        evaluation = flag.evaluate(f"distinct_id_{i}", {})
        results.append(str(names.index(evaluation.variant) + 1) if evaluation.enabled else "0")
        assert evaluation.enabled == (evaluation.variant is not None)
    assert len(MULTIVARIATE_FLAG_RESULTS) == 1000
    assert "".join(results) == MULTIVARIATE_FLAG_RESULTS


@given(st.text(max_size=50), st.text(max_size=80), st.text(max_size=10))
def test_the_same_input_gives_the_same_bucket_in_0_1(flag_key, distinct_id, salt):
    value = bucket(flag_key, distinct_id, salt)
    assert 0.0 <= value <= 1.0
    assert bucket(flag_key, distinct_id, salt) == value


@given(
    st.text(min_size=1, max_size=30),
    st.lists(st.text(max_size=30), min_size=1, max_size=50),
    st.floats(0, 100),
    st.floats(0, 100),
)
def test_raising_the_rollout_never_removes_anyone(flag_key, distinct_ids, first, second):
    low, high = sorted((first, second))

    def users_in(rollout):
        flag = compile_flag(FlagDefinition(key=flag_key, enabled=True, rollout_percentage=rollout))
        return {d for d in distinct_ids if flag.evaluate(d, {}).enabled}

    assert users_in(low) <= users_in(high)


@settings(max_examples=5, deadline=None)
@given(
    st.lists(st.integers(1, 10), min_size=2, max_size=5).map(lambda parts: [100 * p / sum(parts) for p in parts]),
    st.text(min_size=1, max_size=10),
)
def test_variant_shares_are_within_one_point_of_their_weights(shares, flag_key):
    thresholds = variant_thresholds(shares)
    counts = [0] * len(shares)
    n = 100_000
    for i in range(n):
        chosen = choose_variant(flag_key, f"user-{i}", thresholds)
        assert chosen is not None
        counts[chosen] += 1
    for count, share in zip(counts, shares, strict=True):
        assert abs(100 * count / n - share) < 1.0


def test_thresholds_add_the_shares_in_order():
    assert variant_thresholds([50, 20, 30]) == (0.5, 0.7, 1.0)
    assert variant_thresholds([]) == ()


def test_a_variant_range_includes_its_lower_bound_and_excludes_its_upper():
    # A hash of exactly 0.5 falls in the second variant's [0.5, 1.0), as in PostHog's lookup table.
    value = bucket("f", "u", "variant")
    assert choose_variant("f", "u", (value, 1.0)) == 1
    assert choose_variant("f", "u", (value + 1e-12, 1.0)) == 0
    assert choose_variant("f", "u", (0.0, 0.0)) is None
