"""PostHog's bucketing, bit for bit: a user lands in the same rollout bucket and variant here as in
PostHog's SDKs. Never change the formula: every running experiment's assignment depends on it.
"""

import hashlib
from collections.abc import Sequence
from typing import Final

LONG_SCALE: Final = float(0xFFFFFFFFFFFFFFF)
"""15 hex digits of SHA-1, scaled into [0, 1] (posthog-python `feature_flags.py`, `__LONG_SCALE__`)."""

VARIANT_SALT: Final = "variant"


def bucket(flag_key: str, distinct_id: str, salt: str = "") -> float:
    """A uniform, deterministic number in [0, 1] for this flag and user; `salt` picks an
    independent draw (the variant uses "variant", the rollout none)."""
    # The first 15 hex digits are the first 60 bits: read them from the bytes, not the hex text
    # (the same number, a sixth faster on the evaluation hot path).
    digest = hashlib.sha1(f"{flag_key}.{distinct_id}{salt}".encode()).digest()
    return (int.from_bytes(digest[:8]) >> 4) / LONG_SCALE


def variant_thresholds(rollout_percentages: Sequence[float]) -> tuple[float, ...]:
    """The cumulative upper bounds of each variant's range, as PostHog's `variant_lookup_table`
    adds them (`value_min + rollout_percentage / 100`, in order, in floating point)."""
    bounds: list[float] = []
    upper = 0.0
    for percentage in rollout_percentages:
        upper = upper + percentage / 100
        bounds.append(upper)
    return tuple(bounds)


def choose_variant(flag_key: str, distinct_id: str, thresholds: Sequence[float]) -> int | None:
    """The index of the variant whose range [previous bound, bound) holds the user's variant hash;
    None when no range does (shares summing to less than 100, or the hash at exactly 1.0)."""
    value = bucket(flag_key, distinct_id, VARIANT_SALT)
    lower = 0.0
    for index, upper in enumerate(thresholds):
        if lower <= value < upper:
            return index
        lower = upper
    return None
