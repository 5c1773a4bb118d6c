"""Evaluating a compiled flag: every reason, overrides, conditions and payloads; and the rules
`validate()` keeps, each refusal naming its field."""

import pickle

import msgspec
import pytest

from flags.definition import Condition, DefinitionError, FlagDefinition, PropertyFilter, Variant, validate
from flags.evaluate import Evaluation, Reason, compile_flag, evaluate_flag
from flags.hashing import bucket

VARIANTS = (
    Variant("control", 50, payload={"color": "grey"}),
    Variant("test", 50, payload={"color": "green"}),
)
PRO = PropertyFilter(key="plan", operator="exact", value="pro")


def ids_with_bucket(key: str, *, below: float | None = None, above: float | None = None) -> list[str]:
    """Distinct ids whose rollout hash for `key` is below / above a fraction (found, not assumed)."""
    found = []
    for i in range(10_000):
        value = bucket(key, f"user-{i}")
        if (below is None or value <= below) and (above is None or value > above):
            found.append(f"user-{i}")
        if len(found) == 20:
            return found
    raise AssertionError("no such ids in 10,000")


def test_reasons_are_the_public_strings():
    assert {r.value for r in Reason} == {
        "override",
        "condition_match",
        "out_of_rollout",
        "no_condition_match",
        "disabled",
    }


@pytest.mark.parametrize("definition", [FlagDefinition(key="f"), FlagDefinition(key="f", enabled=True, archived=True)])
def test_a_disabled_or_archived_flag_is_off_whatever_else(definition):
    definition = msgspec.structs.replace(definition, overrides={"u": True}, payload={"a": 1})
    result = compile_flag(definition).evaluate("u", {"plan": "pro"})
    assert result == Evaluation("f", False, None, None, Reason.DISABLED, None)


def test_an_override_decides_before_conditions():
    definition = FlagDefinition(
        key="f",
        enabled=True,
        conditions=(Condition(properties=(PRO,)),),
        overrides={"vip": True, "banned": False},
        payload="on",
    )
    flag = compile_flag(definition)
    assert flag.evaluate("vip", {"plan": "free"}) == Evaluation("f", True, None, "on", "override", None)
    assert flag.evaluate("banned", {"plan": "pro"}) == Evaluation("f", False, None, None, "override", None)
    assert flag.evaluate("someone", {"plan": "pro"}).reason == Reason.CONDITION_MATCH


def test_an_override_naming_a_variant_gives_that_variant_and_its_payload():
    flag = compile_flag(FlagDefinition(key="f", enabled=True, variants=VARIANTS, overrides={"u": "test"}))
    assert flag.evaluate("u", {}) == Evaluation("f", True, "test", {"color": "green"}, "override", None)


def test_a_true_override_on_a_multivariate_flag_keeps_the_users_bucketed_variant():
    definition = FlagDefinition(key="f", enabled=True, rollout_percentage=0, variants=VARIANTS)
    with_override = msgspec.structs.replace(definition, overrides={"u": True})
    full = msgspec.structs.replace(definition, rollout_percentage=100)
    result = compile_flag(with_override).evaluate("u", {})
    assert result.enabled and result.reason == Reason.OVERRIDE
    assert result.variant == compile_flag(full).evaluate("u", {}).variant


def test_a_flag_without_conditions_rolls_out_to_its_percentage():
    inside = ids_with_bucket("f", below=0.3)
    outside = ids_with_bucket("f", above=0.3)
    flag = compile_flag(FlagDefinition(key="f", enabled=True, rollout_percentage=30, payload=[1]))
    for distinct_id in inside:
        assert flag.evaluate(distinct_id, {}) == Evaluation("f", True, None, [1], "condition_match", None)
    for distinct_id in outside:
        assert flag.evaluate(distinct_id, {}) == Evaluation("f", False, None, None, "out_of_rollout", None)


def test_no_matching_condition():
    flag = compile_flag(FlagDefinition(key="f", enabled=True, conditions=(Condition(properties=(PRO,)),)))
    assert flag.evaluate("u", {"plan": "free"}) == Evaluation("f", False, None, None, "no_condition_match", None)
    assert flag.evaluate("u", {}).reason == Reason.NO_CONDITION_MATCH


def test_the_first_matching_condition_decides_and_reports_its_index():
    conditions = (
        Condition(properties=(PropertyFilter(key="country", value="FR"),)),
        Condition(properties=(PRO,)),
    )
    flag = compile_flag(FlagDefinition(key="f", enabled=True, conditions=conditions))
    assert flag.evaluate("u", {"plan": "pro", "country": "DE"}).condition_index == 1
    assert flag.evaluate("u", {"plan": "pro", "country": "FR"}).condition_index == 0


def test_out_of_a_conditions_rollout_a_later_condition_still_decides():
    outside = ids_with_bucket("f", above=0.1)
    conditions = (Condition(rollout_percentage=10), Condition(properties=(PRO,)))
    flag = compile_flag(FlagDefinition(key="f", enabled=True, conditions=conditions))
    for distinct_id in outside:
        assert flag.evaluate(distinct_id, {"plan": "pro"}).condition_index == 1
        assert flag.evaluate(distinct_id, {"plan": "free"}) == Evaluation(
            "f", False, None, None, "out_of_rollout", None
        )


def test_a_condition_without_rollout_uses_the_flags():
    outside = ids_with_bucket("f", above=0.2)
    inside = ids_with_bucket("f", below=0.2)
    flag = compile_flag(
        FlagDefinition(key="f", enabled=True, rollout_percentage=20, conditions=(Condition(properties=(PRO,)),))
    )
    assert all(flag.evaluate(d, {"plan": "pro"}).reason == Reason.OUT_OF_ROLLOUT for d in outside)
    assert all(flag.evaluate(d, {"plan": "pro"}).reason == Reason.CONDITION_MATCH for d in inside)


def test_a_conditions_variant_override_forces_the_variant_and_its_payload():
    conditions = (Condition(properties=(PRO,), variant="test"), Condition())
    flag = compile_flag(FlagDefinition(key="f", enabled=True, variants=VARIANTS, conditions=conditions))
    for i in range(50):
        assert flag.evaluate(f"user-{i}", {"plan": "pro"}) == Evaluation(
            "f", True, "test", {"color": "green"}, "condition_match", 0
        )
    bucketed = {flag.evaluate(f"user-{i}", {"plan": "free"}).variant for i in range(50)}
    assert bucketed == {"control", "test"}


def test_conditions_are_evaluated_in_definition_order_as_posthog_now_does():
    # posthog-python 6.7.6 / posthog-node 5.8.7 ("don't sort condition sets with variant overrides
    # to the top"): a catch-all first condition wins over a later one forcing a variant.
    conditions = (Condition(), Condition(properties=(PRO,), variant="test"))
    definition = FlagDefinition(
        key="f", enabled=True, variants=(Variant("control", 100), Variant("test", 0)), conditions=conditions
    )
    result = compile_flag(definition).evaluate("u", {"plan": "pro"})
    assert (result.variant, result.condition_index) == ("control", 0)


def test_a_multivariate_flag_gives_the_bucketed_variants_payload():
    flag = compile_flag(FlagDefinition(key="f", enabled=True, variants=VARIANTS, payload="ignored"))
    payloads = {"control": {"color": "grey"}, "test": {"color": "green"}}
    for i in range(50):
        result = flag.evaluate(f"user-{i}", {})
        assert result.variant is not None
        assert result.payload == payloads[result.variant]


def test_evaluation_never_raises_on_odd_properties():
    filters = (
        PropertyFilter(key="v", operator="semver_gt", value="1.0.0"),
        PropertyFilter(key="d", operator="is_date_after", value="-7d"),
        PropertyFilter(key="n", operator="gt", value=3),
    )
    flag = compile_flag(FlagDefinition(key="f", enabled=True, conditions=(Condition(properties=filters),)))
    odd = {"v": {"x": [1]}, "d": 10**400, "n": float("nan")}
    assert flag.evaluate("u", odd).reason == Reason.NO_CONDITION_MATCH


def test_evaluate_flag_is_compile_then_evaluate():
    definition = FlagDefinition(key="f", enabled=True, variants=VARIANTS)
    assert evaluate_flag(definition, distinct_id="u", properties={}) == compile_flag(definition).evaluate("u", {})


def test_an_evaluation_encodes_as_plain_json():
    encoded = msgspec.json.decode(msgspec.json.encode(Evaluation("f", True, "test", {"a": 1}, Reason.OVERRIDE, None)))
    assert encoded == {
        "key": "f",
        "enabled": True,
        "variant": "test",
        "payload": {"a": 1},
        "reason": "override",
        "condition_index": None,
    }


# --- validate() ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        (FlagDefinition(key="f", variants=(Variant("a", 50), Variant("b", 40))), "variants"),
        (FlagDefinition(key="f", variants=(Variant("a", 50), Variant("a", 50))), "variants.1.key"),
        (
            FlagDefinition(
                key="f",
                conditions=(Condition(properties=(PropertyFilter(key="p", operator="regex", value="(bad"),)),),
            ),
            "conditions.0.properties.0.value",
        ),
        (
            FlagDefinition(
                key="f",
                conditions=(Condition(), Condition(properties=(PRO, PropertyFilter(key="p", operator="nope")))),
            ),
            "conditions.1.properties.1.operator",
        ),
        (
            FlagDefinition(key="f", conditions=(Condition(properties=(PropertyFilter(key="", value="x"),)),)),
            "conditions.0.properties.0.key",
        ),
        (FlagDefinition(key="f", variants=VARIANTS, conditions=(Condition(variant="nope"),)), "conditions.0.variant"),
        (FlagDefinition(key="f", variants=VARIANTS, overrides={"u": "nope"}), "overrides.u"),
        (FlagDefinition(key="f", rollout_percentage=101), "rollout_percentage"),
        (FlagDefinition(key="f", conditions=(Condition(rollout_percentage=-1),)), "conditions.0.rollout_percentage"),
        (FlagDefinition(key="f\n"), "key"),  # `$` alone would let the newline through
        (FlagDefinition(key="f", variants=(Variant("a\n", 100),)), "variants.0.key"),
    ],
)
def test_validate_refuses_with_the_field_path(definition, field):
    with pytest.raises(DefinitionError) as refused:
        validate(definition)
    assert refused.value.field == field


def test_a_valid_definition_passes():
    validate(
        FlagDefinition(
            key="checkout.v2",
            enabled=True,
            variants=VARIANTS,
            conditions=(Condition(properties=(PRO,), rollout_percentage=50, variant="test"),),
            overrides={"u": "control", "v": False},
        )
    )


def test_a_definition_error_survives_pickling():
    error = pickle.loads(pickle.dumps(DefinitionError("variants.1.key", "variant 'a' appears twice")))
    assert (error.field, error.message) == ("variants.1.key", "variant 'a' appears twice")
