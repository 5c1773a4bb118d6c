"""The funnel's walk (query_side/funnels.py) packs each event's (person, time) into one int64,
bit by bit where both fit in 62 bits and by the time's rank among the distinct times where not:
both ways give the same entries for the same events."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from query_side.funnels import _Events, _Keys, _walk

TYPES = ["a", "b", "c"]
STEPS = ["a", "b", "c"]
HOUR_US = 3_600_000_000


def events_of(rows: list[tuple[int, int, int, int]], who_scale: int) -> _Events:
    """Events (person, time in µs, type 1-3, value) with each person's code multiplied."""
    who = np.array([row[0] * who_scale for row in rows], np.int64)
    return _Events(
        who=who,
        ts=np.array([row[1] for row in rows], np.int64),
        type=np.array([row[2] for row in rows], np.int64),
        value=np.array([row[3] for row in rows], np.int64),
        values=["", "x"],
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
    first, second = _walk(packed, STEPS, TYPES, window), _walk(ranked, STEPS, TYPES, window)
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
