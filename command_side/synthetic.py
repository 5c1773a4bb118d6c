"""Synthetic mobile-app traffic for demos and benchmarks (`manage.py generate_events`): realistic
enough to exercise every read model, and the same for the same seed.

- event types by a Zipf law (a few very common, a long tail), as real apps' are;
- users active on some days of the range, a session or two each of those days, on one or two
  devices with their app version and OS; 70% of sessions carry an SDK session_id between a
  `$session_start` and (mostly) a `$session_end`, the rest none (inferred sessions);
- 40% of users start anonymous and log in on one of their sessions (`$identify` with
  `$anon_distinct_id` and a `$set` of person properties); screens (`$screen`) and taps carry
  properties; a few events carry a `$set`.
"""

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Final

from contracts.captured import EventCaptured

CORE_TYPES: Final = (
    "$screen", "button_tapped", "search_performed", "product_viewed", "product_added_to_cart",
    "app_backgrounded", "app_foregrounded", "checkout_started", "purchase_completed", "share_tapped",
)  # fmt: skip
SCREENS: Final = ("Home", "Search", "ProductDetail", "Cart", "Checkout", "Profile", "Settings")
PLATFORMS: Final = (("iOS", "18.1"), ("iOS", "17.5"), ("Android", "14"), ("Android", "15"))
VERSIONS: Final = ("3.4.0", "3.4.1", "3.5.0", "3.6.0")
PLANS: Final = ("free", "pro", "team")
ZIPF_EXPONENT: Final = 1.1


def event_types(count: int) -> list[str]:
    """`count` event type names, most common first: the core ones, then a tail."""
    names = list(CORE_TYPES[:count])
    names += [f"feature_{n:03d}_used" for n in range(count - len(names))]
    return names


def zipf_weights(count: int) -> list[float]:
    return [1 / rank**ZIPF_EXPONENT for rank in range(1, count + 1)]


def synthetic_events(
    *, total: int, days: int, users: int, types: int = 50, seed: int = 0, end: datetime | None = None
) -> Iterator[EventCaptured]:
    """About `total` events over the `days` before `end` (default: now), user by user, each
    user's in time order. Stops at exactly `total`."""
    rng = random.Random(seed)
    end = end or datetime.now(UTC)
    start = end - timedelta(days=days)
    names = event_types(types)
    weights = zipf_weights(types)
    per_user = max(1, total // max(1, users))
    produced = 0
    for u in range(users):
        if produced >= total:
            return
        budget = per_user if u < users - 1 else total - produced
        yield from _user(rng, u, budget, start, days, names, weights)
        produced += budget


def _user(
    rng: random.Random, u: int, budget: int, start: datetime, days: int, names: list[str], weights: list[float]
) -> Iterator[EventCaptured]:
    user = f"user-{u}"
    anonymous = f"anon-{rng.getrandbits(64):016x}" if rng.random() < 0.4 else None
    device_count = 2 if rng.random() < 0.3 else 1
    devices = [(f"device-{u}-{d}", rng.choice(VERSIONS), *rng.choice(PLATFORMS)) for d in range(device_count)]
    active_days = sorted(rng.sample(range(days), k=min(days, max(1, rng.randint(1, 8)))))
    sessions = max(1, budget // 25)
    per_session = [budget // sessions + (1 if n < budget % sessions else 0) for n in range(sessions)]
    login_at = rng.randrange(sessions) if anonymous else -1
    for n, count in enumerate(per_session):
        day = active_days[n % len(active_days)]
        moment = start + timedelta(days=day, seconds=rng.uniform(0, max(0, 86_000 - count * 30)))
        device_id, version, os_name, os_version = rng.choice(devices)
        who = anonymous if anonymous is not None and n <= login_at else user
        session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4)) if rng.random() < 0.7 else None
        for i in range(count):
            event_type, properties = _event(rng, i, count, session_id, names, weights)
            if n == login_at and i == count // 2:
                who = user  # logs in half-way through this session
                event_type = "$identify"
                properties = {"$anon_distinct_id": anonymous, "$set": {"plan": rng.choice(PLANS)},
                              "$set_once": {"first_app_version": version}}  # fmt: skip
            yield EventCaptured(
                uuid=uuid.UUID(int=rng.getrandbits(128), version=4), event_type=event_type, distinct_id=who or user,
                timestamp=moment, received_at=moment, client_timestamp=moment, sent_at=None, skew_ms=None,
                session_id=session_id, device_id=device_id, app_version=version, os_name=os_name,
                os_version=os_version, properties_json=json.dumps(properties).encode(),
            )  # fmt: skip
            moment += timedelta(seconds=rng.uniform(2, 60))


def _event(
    rng: random.Random, i: int, count: int, session_id: str | None, names: list[str], weights: list[float]
) -> tuple[str, dict[str, object]]:
    if session_id is not None and i == 0:
        return "$session_start", {}
    if session_id is not None and i == count - 1 and count > 1 and rng.random() < 0.8:
        return "$session_end", {}
    event_type = rng.choices(names, weights)[0]
    properties: dict[str, object] = {"$screen_name": rng.choice(SCREENS)}
    if event_type == "purchase_completed":
        properties.update(revenue=round(rng.uniform(5, 400), 2), currency="EUR")
    if rng.random() < 0.01:
        properties["$set"] = {"last_screen": properties["$screen_name"]}
    return event_type, properties
