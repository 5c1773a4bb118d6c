"""The funnel's walk (query_side/funnels.py): each person's entry as the definition has it, by
one chain per person where that settles it and by every step-1 event's chain where not; and the
keys of the second way, (person, time) packed into one int64 bit by bit where both fit in 62
bits and by the time's rank where not, give the same entries both ways; and a step's median
time is PostgreSQL's percentile_cont(0.5), by a partial sort."""

import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from query_side.funnels import NEVER, _Events, _every_entry, _Keys, _percentile_cont_half, _walk

TYPES = ["a", "b", "c"]
STEPS = ["a", "b", "c"]
HOUR_US = 3_600_000_000


def events_of(rows: list[tuple[int, int, int, int]], who_scale: int, values: tuple[str, ...] = ("", "x")) -> _Events:
    """Events (person, time in µs, type 1-3, value) with each person's code multiplied, ordered
    by type as _unpack leaves them."""
    rows = sorted(rows, key=lambda row: row[2])
    return _Events(
        who=np.array([row[0] * who_scale for row in rows], np.int64),
        ts=np.array([row[1] for row in rows], np.int64),
        value=np.array([row[3] for row in rows], np.int64),
        starts=[sum(1 for row in rows if row[2] <= n) for n in range(len(TYPES) + 1)],
        values=list(values),
    )


rows = st.lists(
    st.tuples(
        st.integers(-3, 20),  # negative: ids no projection numbered yet
        st.integers(0, 48 * HOUR_US).map(lambda t: t - t % 1_000_000 * (t % 2)),  # some instants equal
        st.integers(1, 3),
        st.integers(0, 1),
    ),
    max_size=60,
)


@given(rows)
def test_the_packed_and_the_ranked_keys_walk_to_the_same_entries(found):
    found = [*found, (-4, 0, 1, 0), (21, 48 * HOUR_US, 3, 1)]  # the persons' and times' spans
    packed = events_of(found, 1)  # 5 bits of persons, 38 of time: packed
    ranked = events_of(found, 1 << 40)  # 45 bits of persons: past 62, so ranked
    assert _Keys(packed).times is None and _Keys(ranked).times is not None
    window = np.timedelta64(6 * HOUR_US, "us").astype(object)
    first, second = _every_entry(packed, STEPS, TYPES, window), _every_entry(ranked, STEPS, TYPES, window)
    for name in ("reached", "start", "value", "chain"):
        assert np.array_equal(first[name], second[name]), name


def test_a_key_gives_back_its_person_and_time_both_ways():
    found = [(5, 7 * HOUR_US + 3, 1, 0), (-2, 11, 2, 1), (0, 0, 3, 0)]
    for scale in (1, 1 << 40):
        keys = _Keys(events_of(found, scale))
        assert keys.time_of(keys.key).tolist() == [row[1] for row in found]
        persons = keys.person_of(keys.key).tolist()
        assert persons[2] - persons[1] == 2 * scale and persons[0] - persons[2] == 5 * scale


def test_a_month_of_times_since_2000_and_200k_persons_pack_without_ranks():
    """Times are µs since 2000-01-01 (8.5e14 in 2026): the key packs their offsets from the
    earliest (42 bits for 30 days), not the times themselves (50 bits), beside 18 bits of
    persons; so a month's funnel needs no np.unique of its times."""
    start = 849_000_000_000_000
    found = [(1, start, 1, 0), (200_000, start + 30 * 24 * HOUR_US, 2, 0), (7, start + 5, 3, 1)]
    keys = _Keys(events_of(found, 1))
    assert keys.times is None and keys.bits == 42
    assert keys.time_of(keys.key).tolist() == [row[1] for row in found]


def reference_entries(found: list[tuple[int, int, int, int]], window_us: int) -> list[tuple[int, int, int, tuple]]:
    """Each person's entry by the definition, one chain per step-1 event in plain Python: the
    furthest step within the window, then the earliest step-1 event, then the smallest value."""
    by_person: dict[int, list[tuple[int, int, int]]] = {}
    for who, ts, kind, value in found:
        by_person.setdefault(who, []).append((ts, kind, value))
    entries = []
    for events in by_person.values():
        options = []
        for ts, kind, value in events:
            if kind != 1:
                continue
            chain, reached, at = [ts], 1, ts
            for step in (2, 3):
                later = [t for t, k, _ in events if k == step and t > at]
                if not later:
                    break
                at = min(later)
                chain.append(at)
                if at - ts <= window_us:
                    reached = step
            options.append((-reached, ts, value, reached, tuple(chain[:reached])))
        if options:
            _, ts, value, reached, chain = min(options)
            entries.append((reached, ts, value, chain))
    return sorted(entries)


# Few persons and instants: chains the window cuts, later entries reaching further, ties; some
# persons negative (ids not numbered yet: _walk indexes them by offset, not by number).
dense = st.lists(
    st.tuples(st.integers(-2, 4), st.integers(0, 12).map(lambda t: t * HOUR_US), st.integers(1, 3), st.integers(0, 1)),
    max_size=40,
)


def entries_of(walked: dict) -> list[tuple[int, int, int, tuple[int, ...]]]:
    return sorted(
        (int(reached), int(start), int(value), tuple(int(t) for t in walked["chain"][: int(reached), n]))
        for n, (reached, start, value) in enumerate(
            zip(walked["reached"], walked["start"], walked["value"], strict=True)
        )
    )


@settings(max_examples=400)
@given(
    dense,
    st.sampled_from([0, 1, 2, 3, 5, 12]).map(lambda hours: hours * HOUR_US),
    st.sampled_from([1, 1 << 40]),
    st.booleans(),
)
def test_the_walk_finds_each_persons_entry_as_the_definition_does(found, window_us, scale, breakdown):
    """Both walks give the definition's entries (tried on every step-1 event, in plain Python):
    _walk's one chain per person (persons indexed by their numbers, by their offsets where some
    are negative, or with `scale` spreading them, by their rank) with every entry walked for those whose first chain the
    window cut, and _every_entry's chain of every step-1 event; with a breakdown's two values
    and without one."""
    if not breakdown:
        found = [(who, ts, kind, 0) for who, ts, kind, _ in found]
    window = np.timedelta64(window_us, "us").astype(object)
    events = events_of(found, scale, ("", "x") if breakdown else ("",))
    for walk in (_walk, _every_entry):
        assert entries_of(walk(events, STEPS, TYPES, window)) == reference_entries(found, window_us), walk.__name__


@settings(max_examples=200)
@given(dense, dense, st.booleans())
def test_events_outside_the_range_marked_never_change_no_entry(found, outside, breakdown):
    """_unpack marks the events of the range's edge hours outside it NEVER instead of dropping
    them: _walk must pass them over, whatever their type, person or value, and so must the
    every-entry walk it hands persons to (_Events.take drops them on the way)."""
    if not breakdown:
        found = [(who, ts, kind, 0) for who, ts, kind, _ in found]
    window = np.timedelta64(5 * HOUR_US, "us").astype(object)
    marked = [*found, *((who, int(NEVER), kind, value) for who, _, kind, value in outside)]
    events = events_of(marked, 1, ("", "x") if breakdown else ("",))
    expected = reference_entries(found, 5 * HOUR_US)
    assert entries_of(_walk(events, STEPS, TYPES, window)) == expected
    every = events.take(np.ones(len(events.who), bool))
    assert entries_of(_every_entry(every, STEPS, TYPES, window)) == expected


@given(st.lists(st.integers(-(10**12), 10**12), max_size=30))
def test_the_median_by_partial_sort_is_the_middle_or_the_two_middle_values_halved(durations):
    got = _percentile_cont_half(np.array(durations, np.int64))
    seconds = [duration / 1_000_000 for duration in durations]
    assert got == (None if not durations else pytest.approx(statistics.median(seconds), rel=1e-12, abs=1e-9))
