#!/usr/bin/env python
"""Funnels: how long `query_side.funnels.funnel_compute` takes on a project filled by
`manage.py generate_events` (the figures of docs/api.md, "Funnels"). Run by hand, prints
figures; not a test. Reads the database of DATABASE_URL (settings as `manage.py` has them); the
funnel reads the raw events and the people and event-counts read models, so run the `people`
and `event_aggregates` projections first:

    .venv/bin/python manage.py generate_events --project 1 --events 1000000
    .venv/bin/python manage.py projections run --once people event_aggregates
    .venv/bin/python loadtest/bench_funnels.py --project 1 [--runs 5]
"""

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

PURCHASE = ["$session_start", "product_viewed", "product_added_to_cart", "purchase_completed"]
TOP_TEN = [
    "$session_start", "$screen", "button_tapped", "search_performed", "product_viewed",
    "product_added_to_cart", "checkout_started", "purchase_completed", "share_tapped", "$session_end",
]  # fmt: skip
CASES = [  # (steps, days, breakdown)
    (PURCHASE, 7, None),
    (PURCHASE, 7, "app_version"),
    (PURCHASE, 30, None),
    (["checkout_started", "purchase_completed"], 30, None),
    (["$screen", "button_tapped"], 30, None),
    (TOP_TEN, 7, None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=int, required=True)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    import django

    django.setup()
    from django.test.utils import override_settings

    from query_side.funnels import funnel_compute

    now = datetime.now(UTC)
    print(f"{'steps':<40} {'days':>4} {'breakdown':<12} {'events read':>12}  fastest-slowest of {options.runs}")
    for steps, days, breakdown in CASES:
        timings = []
        with override_settings(TIDELOG_FUNNEL_MAX_EVENTS=10**9, TIDELOG_FUNNEL_TIMEOUT_SECONDS=600):
            for _ in range(options.runs):
                started = time.perf_counter()
                funnel = funnel_compute(
                    project_id=options.project, steps=steps, window=timedelta(days=14),
                    after=now - timedelta(days=days), before=now, breakdown=breakdown,
                )  # fmt: skip
                timings.append((time.perf_counter() - started) * 1000)
        name = " > ".join(steps) if len(steps) < 5 else f"{len(steps)} steps"
        print(
            f"{name[:40]:<40} {days:>4} {breakdown or '-':<12} {funnel.events_read_at_most:>12,}"
            f"  {min(timings):,.0f}-{max(timings):,.0f} ms"
        )


if __name__ == "__main__":
    main()
