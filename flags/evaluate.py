"""Evaluating a flag for one user: PostHog's local-evaluation rules on a definition compiled once
(regexes, versions, dates and variant thresholds parsed when the cache loads the flag, not per
request). Pure and fast; it must never do I/O, since the command host calls it per request.

Order of decisions: a disabled or archived flag is off; else an override for the distinct_id
decides; else the conditions, in their order in the definition. (PostHog's SDKs once stable-sorted
conditions with a variant override first; posthog-python 6.7.6 and posthog-node 5.8.7 dropped
that "to match server-side logic", PRs #330 and #2350, September 2025.) The first condition whose filters all
match and whose rollout holds the user decides; one whose filters match but whose rollout does
not is passed over (PostHog without `early_exit`), and the result says so if nothing later
matches.
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

import msgspec

from flags.definition import FlagDefinition
from flags.hashing import bucket, choose_variant, variant_thresholds
from flags.matching import Matcher, compile_filter


class Reason(StrEnum):
    """Why a flag evaluated as it did: public strings, part of the API."""

    OVERRIDE = "override"
    CONDITION_MATCH = "condition_match"
    OUT_OF_ROLLOUT = "out_of_rollout"
    NO_CONDITION_MATCH = "no_condition_match"
    DISABLED = "disabled"


class Evaluation(msgspec.Struct, frozen=True):
    key: str
    enabled: bool
    variant: str | None
    payload: Any
    """Shared with the compiled flag and every other evaluation of it: never mutate it."""
    reason: str
    """A `Reason` value."""
    condition_index: int | None
    """The deciding condition's index in the definition; None when no condition decided, or when
    the flag has no conditions (its own rollout acts as one condition with no filters)."""


class _Condition(msgspec.Struct, frozen=True):
    index: int | None
    matchers: tuple[Matcher, ...]
    rollout: float
    """The share of users in, as a fraction of 1 (the hash is compared with it)."""
    decided: Evaluation | None
    """The answer when this condition holds the user, if it is the same for every user (a boolean
    flag, a forced variant); None when the user's bucketed variant decides it."""


class CompiledFlag:
    """A flag ready to evaluate: build it with `compile_flag`, once per definition version."""

    __slots__ = ("_conditions", "_disabled", "_key", "_overrides", "_thresholds", "_variants")

    def __init__(
        self,
        *,
        key: str,
        disabled: Evaluation | None,
        overrides: dict[str, Evaluation | None],
        conditions: tuple[_Condition, ...],
        variants: tuple[tuple[str, Any], ...],
        thresholds: tuple[float, ...],
    ) -> None:
        self._key = key
        self._disabled = disabled
        self._overrides = overrides
        """None: on, with the user's bucketed variant (a true override on a multivariate flag)."""
        self._conditions = conditions
        self._variants = variants
        self._thresholds = thresholds

    @property
    def key(self) -> str:
        return self._key

    def _bucketed(self, distinct_id: str, reason: Reason, index: int | None) -> Evaluation:
        chosen = choose_variant(self._key, distinct_id, self._thresholds)
        if chosen is None:  # shares summing to a hair under 100: PostHog's `variant or True`
            return Evaluation(self._key, True, None, None, reason, index)
        name, payload = self._variants[chosen]
        return Evaluation(self._key, True, name, payload, reason, index)

    def evaluate(self, distinct_id: str, properties: Mapping[str, Any]) -> Evaluation:
        """This flag for one user. Never raises on the user's properties."""
        if self._disabled is not None:
            return self._disabled
        if distinct_id in self._overrides:
            decided = self._overrides[distinct_id]
            return decided if decided is not None else self._bucketed(distinct_id, Reason.OVERRIDE, None)
        user_bucket = -1.0  # not computed yet: most conditions never need it
        is_out_of_rollout = False
        for condition in self._conditions:
            if not _all_match(condition.matchers, properties):
                continue
            # A rollout of 100% holds every hash (the hash is at most 1.0): skip computing it.
            if condition.rollout < 1.0:
                if user_bucket < 0:
                    user_bucket = bucket(self._key, distinct_id)
                if user_bucket > condition.rollout:
                    is_out_of_rollout = True
                    continue
            if condition.decided is not None:
                return condition.decided
            return self._bucketed(distinct_id, Reason.CONDITION_MATCH, condition.index)
        reason = Reason.OUT_OF_ROLLOUT if is_out_of_rollout else Reason.NO_CONDITION_MATCH
        return Evaluation(self._key, False, None, None, reason, None)


_NO_FILTERS: Final[tuple[Matcher, ...]] = ()


def _all_match(matchers: tuple[Matcher, ...], properties: Mapping[str, Any]) -> bool:
    # A plain loop: all() over a generator costs a third more on the hot path.
    for match in matchers:
        if not match(properties):
            return False
    return True


def compile_flag(definition: FlagDefinition) -> CompiledFlag:
    """Do once what every evaluation of this definition would otherwise repeat. The definition
    should have passed `validate()`; if not, a filter it would refuse never matches, a condition
    forcing an unknown variant gets the bucketed one, and an override naming one is ignored."""
    key = definition.key
    variants = tuple((variant.key, variant.payload) for variant in definition.variants)
    payloads = dict(variants)
    is_multivariate = bool(variants)

    def on(variant: str | None, reason: Reason, index: int | None) -> Evaluation | None:
        if variant is not None and variant in payloads:
            return Evaluation(key, True, variant, payloads[variant], reason, index)
        if is_multivariate:
            return None  # the user's bucketed variant decides
        return Evaluation(key, True, None, definition.payload, reason, index)

    overrides: dict[str, Evaluation | None] = {}
    for distinct_id, value in definition.overrides.items():
        if value is False:
            overrides[distinct_id] = Evaluation(key, False, None, None, Reason.OVERRIDE, None)
        elif value is True:
            overrides[distinct_id] = on(None, Reason.OVERRIDE, None)
        elif value in payloads:
            overrides[distinct_id] = on(value, Reason.OVERRIDE, None)

    if definition.conditions:
        conditions = tuple(
            _Condition(
                index=i,
                matchers=tuple(compile_filter(f) for f in condition.properties),
                rollout=(
                    definition.rollout_percentage
                    if condition.rollout_percentage is None
                    else condition.rollout_percentage
                )
                / 100,
                decided=on(condition.variant, Reason.CONDITION_MATCH, i),
            )
            for i, condition in enumerate(definition.conditions)
        )
    else:
        rollout = definition.rollout_percentage / 100
        conditions = (_Condition(None, _NO_FILTERS, rollout, on(None, Reason.CONDITION_MATCH, None)),)

    is_active = definition.enabled and not definition.archived
    return CompiledFlag(
        key=key,
        disabled=None if is_active else Evaluation(key, False, None, None, Reason.DISABLED, None),
        overrides=overrides,
        conditions=conditions,
        variants=variants,
        thresholds=variant_thresholds([variant.rollout_percentage for variant in definition.variants]),
    )


def evaluate_flag(definition: FlagDefinition, *, distinct_id: str, properties: Mapping[str, Any]) -> Evaluation:
    """One evaluation of an uncompiled definition (tests, previews); the cache holds compiled ones."""
    return compile_flag(definition).evaluate(distinct_id, properties)
