"""Synthetic mobile-app traffic for demos and benchmarks (`manage.py generate_events`), realistic
enough to exercise every read model and the same for the same seed, made fast enough to load
10M events in about a minute. Never writes: it hands encoded batches to the event store.

The model, day by day over the `days` before `end`:
- a user base: 40% existed before the range, the rest sign up over it (more later: growth);
  each user has an engagement and a decaying chance to come back each day after signing up,
  so the daily actives are a realistic share of the base, mostly returning users;
- each active user has a session or a few that day, at hours of a daily curve; a day's events
  (the total spread over days by their daily actives) are shared among its sessions;
- event types by a Zipf law (a few very common, a long tail), with properties pickers can
  offer (`$screen_name`, `button`, `plan`, `price`, ...); 85% of sessions carry an SDK
  `session_id` between `$session_start` and (mostly) `$session_end`, the rest none (inferred);
- one device per user (iOS or Android with an OS version), app versions released over the range
  and adopted with a per-user lag (a rollout);
- 30% of users are anonymous (their device id) until they log in with `$identify`
  (`$anon_distinct_id`, a `$set` of person properties), so people merge.

TRICKY: speed. Rows leave here as binary COPY tuples, built by joining pre-encoded fields:
every text column but the uuid and times comes from a small pool (an event type with its
properties, a user's ids and versions for the day, a session's id), so a row costs one
struct.pack and a few list appends, not a dozen adaptations.
"""

import json
import random
import struct
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from hashlib import blake2b
from itertools import accumulate
from math import log
from typing import Final

from contracts.schema import EVENTS, Column

CORE_TYPES: Final = (
    "$screen", "button_tapped", "app_opened", "product_viewed", "search_performed", "app_backgrounded",
    "product_added_to_cart", "checkout_started", "purchase_completed", "share_tapped", "subscription_started",
    "notification_opened",
)  # fmt: skip
SESSION_START: Final = "$session_start"
SESSION_END: Final = "$session_end"
IDENTIFY: Final = "$identify"
SCREENS: Final = (
    "Home", "Home", "Home", "Search", "Search", "ProductDetail", "ProductDetail", "Cart", "Checkout", "Profile",
    "Settings", "Onboarding", "Notifications", "Wishlist",
)  # fmt: skip
"""Repeats weigh the draw: Home is seen more than Settings."""
BUTTONS: Final = ("buy", "add_to_cart", "add_to_cart", "share", "like", "like", "like", "filter", "close", "next")
PLANS: Final = ("free", "free", "free", "free", "free", "free", "free", "pro", "pro", "team")
PRICES: Final = (0.99, 4.99, 4.99, 9.99, 9.99, 19.99, 49.99)
CATEGORIES: Final = ("shoes", "shirts", "bags", "watches", "toys")
OS_VERSIONS: Final = {
    "iOS": ("17.5", "18.0", "18.1", "18.1", "18.1"),
    "Android": ("13", "14", "14", "15", "15"),
}
IOS_SHARE: Final = 0.55
VERSIONS: Final = ("3.4.0", "3.4.1", "3.5.0", "3.5.1", "3.6.0")
RELEASED_AT: Final = (0.12, 0.35, 0.45, 0.75)
"""When VERSIONS[1:] come out, as a share of the range; VERSIONS[0] is out before it starts."""
ADOPTION_LAG_DAYS: Final = 3.0
"""Mean days before a user's app updates to a release (exponential)."""
ZIPF_EXPONENT: Final = 1.1
IDENTIFYING_SHARE: Final = 0.3
PREEXISTING_SHARE: Final = 0.4
SESSION_ID_SHARE: Final = 0.85
SESSION_END_SHARE: Final = 0.8
GAP_SECONDS: Final = 25.0
"""Mean seconds between two events of a session (plus one)."""
RETURN_RATE: Final = 0.45
"""Scales the chance to come back: ~12% of a 200k base active a day (DAU), ~60% in 30 days."""
HOURS: Final = (
    0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.0, 1.0, 1.05,
    1.1, 1.05, 1.0, 1.0, 1.05, 1.15, 1.3, 1.45, 1.55, 1.5, 1.1, 0.6,
)  # fmt: skip
"""Relative activity per hour of the day (UTC): a quiet night, an evening peak."""

COPY_COLUMNS: Final[tuple[Column, ...]] = EVENTS.take(
    "project_id", "sent_at", "skew_ms", "uuid", "timestamp", "received_at", "client_timestamp", "session_id",
    "distinct_id", "device_id", "app_version", "os_name", "os_version", "event_type", "properties",
)  # fmt: skip
"""The order of the encoded tuples' fields: constants first, then per-row values, then the
pooled fields grouped by what they depend on (session, user and day, event type)."""

_DAY_US: Final = 86_400_000_000
_PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_NULL: Final = b"\xff\xff\xff\xff"
_ROW_TIMES: Final = struct.Struct(">Qiqiqiq")  # the uuid's low half, then three times with their lengths


def event_types(count: int) -> list[str]:
    """`count` event type names, most common first: the core ones, then a tail."""
    names = list(CORE_TYPES[:count])
    names += [f"feature_{n:03d}_used" for n in range(count - len(names))]
    return names


def zipf_weights(count: int) -> list[float]:
    return [1 / rank**ZIPF_EXPONENT for rank in range(1, count + 1)]


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in proportion to `weights`, in whole numbers that sum to `total` exactly
    (largest remainder)."""
    scale = total / sum(weights)
    shares = [w * scale for w in weights]
    counts = [int(s) for s in shares]
    short = total - sum(counts)
    for i in sorted(range(len(shares)), key=lambda i: counts[i] - shares[i])[:short]:
        counts[i] += 1
    return counts


@dataclass(frozen=True, slots=True)
class Batch:
    """Events encoded for the event store: `rows` are binary COPY tuples of COPY_COLUMNS and
    `ledger` the (project_id, uuid) tuples of the dedup ledger, both without header or trailer."""

    rows: bytes
    ledger: bytes
    count: int
    days: frozenset[date]


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">i", len(raw)) + raw


def _jsonb(value: dict[str, object]) -> bytes:
    raw = b"\x01" + json.dumps(value, separators=(",", ":")).encode()  # jsonb binary: version 1, then text
    return struct.pack(">i", len(raw)) + raw


def _properties(event_type: str) -> list[dict[str, object]]:
    """The property sets an event of this type may carry (repeats weigh the draw)."""
    if event_type == "$screen":
        return [{"$screen_name": s} for s in SCREENS]
    if event_type == "button_tapped":
        return [{"button": b, "screen_name": s} for b in BUTTONS for s in SCREENS[:8]]
    if event_type in ("purchase_completed", "subscription_started"):
        return [{"plan": p, "price": x, "currency": "EUR"} for p in PLANS if p != "free" for x in PRICES]
    if event_type == "product_viewed":
        return [
            {"product_id": f"sku-{n:03d}", "category": CATEGORIES[n % 5], "price": PRICES[n % 7]} for n in range(60)
        ]
    if event_type == "search_performed":
        return [{"query_length": n, "screen_name": "Search"} for n in (1, 2, 3, 3, 4, 4, 5, 6, 8, 12)]
    if event_type in (SESSION_START, SESSION_END):
        return [{}]
    return [{"screen_name": s} for s in SCREENS]


def _uuid4_text(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62) | (0x4 << 76) | (0x2 << 62):032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class _Users:
    """The user base: who signs up when, how engaged, on which device; and who is active when."""

    def __init__(self, rng: random.Random, count: int, days: int) -> None:
        self.signup: list[int] = []
        self.age: list[int] = []  # days since signup at the range's start, for users from before it
        self.engagement: list[float] = []
        self.lag: list[float] = []
        self.device: list[str] = []
        self.platform: list[tuple[str, str]] = []
        self.identifies_after: list[int | None] = []
        self.plan: list[str] = []
        random_ = rng.random
        for _ in range(count):
            before = random_() < PREEXISTING_SHARE
            signup = -1 if before else min(days - 1, int(days * random_() ** 0.8))
            self.signup.append(signup)
            self.age.append(1 + int(180 * random_()) if before else 0)
            self.engagement.append(rng.lognormvariate(0, 0.9))
            self.lag.append(rng.expovariate(1 / ADOPTION_LAG_DAYS))
            self.device.append(_uuid4_text(rng).upper())
            os_name = "iOS" if random_() < IOS_SHARE else "Android"
            versions = OS_VERSIONS[os_name]
            self.platform.append((os_name, versions[int(random_() * len(versions))]))
            logs_in = random_() < IDENTIFYING_SHARE
            self.identifies_after.append(max(0, signup) + int(4 * random_()) if logs_in else None)
            self.plan.append(PLANS[int(random_() * len(PLANS))])

    def active_by_day(self, rng: random.Random, days: int) -> list[list[int]]:
        """Each day's active users: everyone on their signup day, then each day with a chance
        that falls with the days since signup (a retention curve, (days since signup)^-0.5),
        scaled by engagement."""
        active: list[list[int]] = [[] for _ in range(days)]
        random_ = rng.random
        for u, signup in enumerate(self.signup):
            first = max(0, signup)
            if signup >= 0:
                active[signup].append(u)
                first += 1
            scale = RETURN_RATE * self.engagement[u]
            offset = self.age[u] - signup
            if first >= days:
                continue
            # TRICKY: thinning, for speed: candidate days come at the first day's (highest)
            # chance, skipped geometrically; each is kept with its own chance over that one.
            top = min(0.95, scale * (first + offset) ** -0.5)
            if top <= 0:
                continue
            log_miss = log(1 - top)
            d = first - 1
            while True:
                d += 1 + int(log(1 - random_()) / log_miss)
                if d >= days:
                    break
                if random_() * top < min(0.95, scale * (d + offset) ** -0.5):
                    active[d].append(u)
        for users in active:
            if not users:  # a tiny base: someone is always there
                users.append(rng.randrange(len(self.signup)))
        return active


def synthetic_batches(
    *,
    project_id: int,
    total: int,
    days: int,
    users: int,
    types: int = 50,
    seed: int = 0,
    end: datetime | None = None,
    batch_size: int = 50_000,
) -> Iterator[Batch]:
    """Exactly `total` events over the `days` before `end` (default: now), day after day,
    in batches of `batch_size`.

    The same arguments (but `end` and `project_id`) give the same events, uuids included: the
    uuids are a hash of the arguments followed by the event's ordinal, so a second run finds
    them all in the dedup ledger, and they grow, so the ledger's index is appended to rather
    than written at random pages.
    """
    rng = random.Random(seed)
    random_ = rng.random
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    end_us = (end - _PG_EPOCH) // timedelta(microseconds=1)
    run = blake2b(f"{total}:{days}:{users}:{types}:{seed}".encode(), digest_size=8).digest()
    uuid_high = run[:6] + bytes([0x80 | (run[6] & 0x0F), run[7]])  # UUIDv8: version 8 ...
    low_base = 0x8000_0000_0000_0000  # ... and variant 10 (the low half's top bits)
    fixed = struct.pack(">hiqiii", len(COPY_COLUMNS), 8, project_id, -1, -1, 16) + uuid_high
    ledger_fixed = struct.pack(">hiqi", 2, 8, project_id, 16) + uuid_high

    # One population of (event type, properties) pieces, each weighted by its type's Zipf
    # weight over the type's property sets: one draw picks both.
    pieces: list[bytes] = []
    weights: list[float] = []
    for name, weight in zip(event_types(types), zipf_weights(types), strict=True):
        sets = _properties(name)
        pieces += (_text(name) + _jsonb(p) for p in sets)
        weights += [weight / len(sets)] * len(sets)
    piece_cum = list(accumulate(weights))
    start_piece = _text(SESSION_START) + _jsonb({})
    end_piece = _text(SESSION_END) + _jsonb({})

    base = _Users(rng, users, days)
    active = base.active_by_day(rng, days)
    per_day = apportion(total, [len(a) for a in active])
    pending = [after is not None for after in base.identifies_after]
    releases = [float("-inf"), *(r * days for r in RELEASED_AT)]
    people: dict[int, tuple[str, bytes, bytes]] = {}  # user -> (app version, as the user, anonymous)

    rows: list[bytes] = []
    batch_days: set[date] = set()
    first_ordinal = ordinal = 0
    for d in range(days):
        window_us = end_us - (days - d) * _DAY_US
        window_end = window_us + _DAY_US - 1
        first_hour = (window_us // 3_600_000_000) % 24
        hour_cum = list(accumulate(HOURS[(first_hour + h) % 24] for h in range(24)))
        # A day's window may straddle two UTC days: the batch names both (their partitions).
        window_days = {(_PG_EPOCH + timedelta(microseconds=t)).date() for t in (window_us, window_end)}
        batch_days |= window_days
        for u in active[d]:
            version = VERSIONS[bisect(releases, d - base.lag[u]) - 1]
            if u not in people or people[u][0] != version:
                os_name, os_version = base.platform[u]
                rest = _text(base.device[u]) + _text(version) + _text(os_name) + _text(os_version)
                people[u] = (version, _text(f"user-{u}") + rest, _text(base.device[u]) + rest)
        # Sessions: owner and size; the sizes share the day's events exactly.
        owners = [u for u in active[d] for _ in range(1 + (random_() < 0.45) + (random_() < 0.15))]
        sizes = apportion(per_day[d], [rng.lognormvariate(2.0, 0.75) * base.engagement[u] ** 0.5 for u in owners])
        sessions = []
        for u, size in zip(owners, sizes, strict=True):
            if size:
                hour = bisect(hour_cum, random_() * hour_cum[-1])
                sessions.append((window_us + int((hour + random_()) * 3_600_000_000), u, size))
        sessions.sort()  # a user's sessions in time order: an anonymous user logs in once
        logged_in_at: dict[int, int] = {}  # today's logins: user -> time
        for at, u, size in sessions:
            version, user_piece, anon_piece = people[u]
            explicit = random_() < SESSION_ID_SHARE
            session_piece = _text(_uuid4_text(rng)) if explicit else _NULL
            kinds = rng.choices(pieces, cum_weights=piece_cum, k=size)
            if explicit:
                kinds[0] = start_piece
                if size > 1 and random_() < SESSION_END_SHARE:
                    kinds[-1] = end_piece
            who = user_piece
            logs_in_at = -1
            # TRICKY: a later session of a user who logged in today may start before that login
            # (sessions overlap): its events before the login's time are still anonymous.
            switch_time = logged_in_at.get(u, -1)
            if at < switch_time:
                who = anon_piece
            if pending[u]:
                who = anon_piece
                if d >= (base.identifies_after[u] or 0) and size > 1:  # never instead of a session's start
                    pending[u] = False
                    logs_in_at = (size + 1) // 2
                    kinds[logs_in_at] = _text(IDENTIFY) + _jsonb(
                        {"$anon_distinct_id": base.device[u],
                         "$set": {"plan": base.plan[u], "email": f"user-{u}@example.com"},
                         "$set_once": {"first_app_version": version}}
                    )  # fmt: skip
            for i, kind in enumerate(kinds):
                if i == logs_in_at:
                    who = user_piece  # from the `$identify` on: the user's own id
                    logged_in_at[u] = at
                elif 0 <= switch_time <= at and who is anon_piece:
                    who = user_piece
                received = min(end_us, at + 50_000 + int(random_() * 4_000_000))
                rows += (
                    fixed,
                    _ROW_TIMES.pack(low_base | ordinal, 8, at, 8, received, 8, at),
                    session_piece,
                    who,
                    kind,
                )
                ordinal += 1
                # The next event 1 s + an exponential gap later, kept inside the day's window.
                at = min(window_end, at + 1_000_000 - int(GAP_SECONDS * 1e6 * log(1 - random_())))
                if ordinal - first_ordinal == batch_size:
                    yield _batch(rows, ledger_fixed, low_base, first_ordinal, ordinal, batch_days)
                    rows, batch_days, first_ordinal = [], set(window_days), ordinal
    if rows:
        yield _batch(rows, ledger_fixed, low_base, first_ordinal, ordinal, batch_days)


def _batch(rows: list[bytes], ledger_fixed: bytes, low_base: int, first: int, end: int, days: set[date]) -> Batch:
    """The batch of rows `first` to `end` (ordinals); the ledger's tuples are all alike but for
    the uuid's low half, so they are laid out column by column (strided slices run in C)."""
    count = end - first
    width = len(ledger_fixed) + 8
    ledger = bytearray(width * count)
    for offset, byte in enumerate(ledger_fixed):
        ledger[offset::width] = bytes([byte]) * count
    lows = struct.pack(f">{count}Q", *range(low_base | first, low_base | end))
    for offset in range(8):
        ledger[len(ledger_fixed) + offset :: width] = lows[offset::8]
    return Batch(b"".join(rows), bytes(ledger), count, frozenset(days))
