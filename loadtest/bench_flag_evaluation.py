#!/usr/bin/env python
"""Flag evaluation in one process (the HTTP benchmark is bench_flags.py): run by hand
(`.venv/bin/python loadtest/bench_flag_evaluation.py`), prints one figure; not a test. The time to evaluate 50 compiled flags (10 multivariate, 20 with property
conditions: icontains, semver, exact list, regex, relative date) for one user, best of 7 runs of
2,000 distinct users. Most of it is SHA-1: PostHog's bucketing hashes once for the rollout and
once more for the variant.
"""

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flags.definition import Condition, FlagDefinition, PropertyFilter, Variant
from flags.evaluate import CompiledFlag, compile_flag

USERS = 2_000
RUNS = 7


def fifty_flags() -> list[CompiledFlag]:
    flags = []
    for i in range(50):
        variants: tuple[Variant, ...] = ()
        if i < 10:
            variants = (Variant("control", 34), Variant("a", 33), Variant("b", 33, payload={"n": i}))
        conditions: tuple[Condition, ...] = ()
        if 10 <= i < 30:
            conditions = (
                Condition(
                    properties=(
                        PropertyFilter("email", "icontains", "@example.com"),
                        PropertyFilter("app_version", "semver_gte", "1.2.0"),
                    ),
                    rollout_percentage=50,
                ),
                Condition(
                    properties=(
                        PropertyFilter("country", "exact", ["FR", "DE", "GB"]),
                        PropertyFilter("plan", "regex", r"^(pro|team)$"),
                        PropertyFilter("signed_up", "is_date_after", "-30d"),
                    )
                ),
            )
        definition = FlagDefinition(
            key=f"flag-{i}", enabled=True, rollout_percentage=40 + i, variants=variants, conditions=conditions
        )
        flags.append(compile_flag(definition))
    return flags


def main() -> None:
    flags = fifty_flags()
    properties = {
        "email": "ann@example.com",
        "app_version": "1.3.0",
        "country": "fr",
        "plan": "pro",
        "signed_up": (datetime.now(UTC) - timedelta(days=6)).isoformat(),
    }
    distinct_ids = [f"user-{k}" for k in range(USERS)]
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        for distinct_id in distinct_ids:
            for flag in flags:
                flag.evaluate(distinct_id, properties)
        best = min(best, (time.perf_counter() - started) / USERS)
    print(f"50 flags (10 multivariate, 20 with property conditions) for one user: {best * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
