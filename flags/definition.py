"""What a feature flag is: its definition as the evaluator reads it, and the rules a definition
must keep. Plain data (msgspec structs) so both hosts, the cache and the event store share one
shape. Validation names the field at fault with a dotted path (`variants.1.rollout_percentage`).
"""

import re
from typing import Any, Final

import msgspec

KEY_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
"""A flag or variant key: what SDKs put in code. Letters, digits, `_`, `.`, `-`; at most 200."""

MAX_VARIANTS: Final = 20
MAX_CONDITIONS: Final = 50
MAX_FILTERS_PER_CONDITION: Final = 50
MAX_OVERRIDES: Final = 10_000
MAX_PAYLOAD_BYTES: Final = 64 * 1024


class PropertyFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: str
    operator: str = "exact"
    value: Any = None


class Condition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A release condition: every filter must match (AND); then `rollout_percentage` of the
    matching users are in (None: the flag's own rollout). `variant` forces that variant."""

    properties: tuple[PropertyFilter, ...] = ()
    rollout_percentage: float | None = None
    variant: str | None = None


class Variant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: str
    rollout_percentage: float
    """Its share of the users the flag is on for, in percent; the shares sum to 100."""
    name: str = ""
    payload: Any = None


class FlagDefinition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything evaluation needs about one flag. A flag without conditions is on for
    `rollout_percentage` of all users; with conditions, the first that matches decides."""

    key: str
    enabled: bool = False
    rollout_percentage: float = 100.0
    variants: tuple[Variant, ...] = ()
    conditions: tuple[Condition, ...] = ()
    overrides: dict[str, str | bool] = {}
    """distinct_id -> variant key (multivariate) or true/false: decides before anything else."""
    payload: Any = None
    """The payload of a boolean flag when it is on (a multivariate flag's are on its variants)."""
    archived: bool = False
    version: int = 0


class DefinitionError(ValueError):
    """A definition breaks a rule. `field` is the dotted path at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type["DefinitionError"], tuple[str, str]]:
        # The default rebuilds from self.args (the message alone) and fails: keep it picklable.
        return (type(self), (self.field, self.message))


def _check_percentage(value: float, field: str) -> None:
    if not 0 <= value <= 100:
        raise DefinitionError(field, f"must be between 0 and 100, not {value}")


def _check_payload(value: Any, field: str) -> None:
    if value is not None and len(msgspec.json.encode(value)) > MAX_PAYLOAD_BYTES:
        raise DefinitionError(field, f"a payload is at most {MAX_PAYLOAD_BYTES} bytes of JSON")


def check_key(key: str, field: str = "key") -> None:
    if not KEY_PATTERN.fullmatch(key):  # match() would let a trailing newline through `$`
        raise DefinitionError(
            field, "a key is 1 to 200 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )


def validate(definition: FlagDefinition) -> None:
    """Raise DefinitionError at the first broken rule. A bad operator, a value of the wrong
    type or a regex that does not compile is refused here, when the flag is saved, never at
    evaluation."""
    from flags.matching import check_filter  # the operators live beside their evaluation

    check_key(definition.key)
    _check_percentage(definition.rollout_percentage, "rollout_percentage")
    _check_payload(definition.payload, "payload")
    if len(definition.variants) > MAX_VARIANTS:
        raise DefinitionError("variants", f"at most {MAX_VARIANTS} variants")
    seen: set[str] = set()
    for i, variant in enumerate(definition.variants):
        check_key(variant.key, f"variants.{i}.key")
        if variant.key in seen:
            raise DefinitionError(f"variants.{i}.key", f"variant {variant.key!r} appears twice")
        seen.add(variant.key)
        _check_percentage(variant.rollout_percentage, f"variants.{i}.rollout_percentage")
        _check_payload(variant.payload, f"variants.{i}.payload")
    if definition.variants:
        total = sum(v.rollout_percentage for v in definition.variants)
        if abs(total - 100) > 1e-9:
            raise DefinitionError("variants", f"variant rollout percentages must sum to 100, not {total:g}")
    if len(definition.conditions) > MAX_CONDITIONS:
        raise DefinitionError("conditions", f"at most {MAX_CONDITIONS} conditions")
    for i, condition in enumerate(definition.conditions):
        if condition.rollout_percentage is not None:
            _check_percentage(condition.rollout_percentage, f"conditions.{i}.rollout_percentage")
        if condition.variant is not None and condition.variant not in seen:
            raise DefinitionError(f"conditions.{i}.variant", f"no variant {condition.variant!r} on this flag")
        if len(condition.properties) > MAX_FILTERS_PER_CONDITION:
            raise DefinitionError(f"conditions.{i}.properties", f"at most {MAX_FILTERS_PER_CONDITION} filters")
        for j, prop in enumerate(condition.properties):
            problem = check_filter(prop)
            if problem is not None:
                field, message = problem
                raise DefinitionError(f"conditions.{i}.properties.{j}.{field}", message)
    if len(definition.overrides) > MAX_OVERRIDES:
        raise DefinitionError("overrides", f"at most {MAX_OVERRIDES} overrides")
    for distinct_id, value in definition.overrides.items():
        field = f"overrides.{distinct_id}"
        if not distinct_id:
            raise DefinitionError("overrides", "an override names a non-empty distinct_id")
        if isinstance(value, bool):
            continue
        if value not in seen:
            raise DefinitionError(field, f"no variant {value!r} on this flag")
