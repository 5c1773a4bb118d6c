"""Persons over sets of users (query_side/user_sets.Persons): counting the persons of a set
without building it gives what building it and counting gives."""

from array import array

import numpy as np
import pytest

from contracts.user_sets import BitMap
from query_side.user_sets import Persons


def _persons(pairs: dict[int, int]) -> Persons:
    aliases = np.array(sorted(pairs), dtype=np.uint32)
    canonical = np.array([pairs[a] for a in sorted(pairs)], dtype=np.uint32)
    return Persons(BitMap(array("I", aliases.tobytes())), aliases, canonical)


@pytest.mark.parametrize("seed", range(20))
def test_count_equals_the_size_of_the_persons_set(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Persons are numbers 0..999; each of the aliases 1000..2999 belongs to one of them, often
    # the same few, so a set can hold a person and several of their aliases at once.
    pairs = {alias: int(rng.integers(0, 40 if seed % 2 else 1000)) for alias in range(1000, 3000) if rng.random() < 0.5}
    persons = _persons(pairs)
    users = BitMap(rng.choice(3000, size=int(rng.integers(0, 1500)), replace=False).tolist())
    expected = {pairs.get(user, user) for user in users}
    assert persons.of(users) == BitMap(expected)
    assert persons.count(users) == len(expected)


def test_a_set_without_aliases_counts_its_users() -> None:
    persons = _persons({10: 1, 11: 1})
    assert persons.count(BitMap([1, 2, 3])) == 3
    assert persons.count(BitMap([10, 11])) == 1
    assert persons.count(BitMap([1, 10, 11])) == 1
    assert persons.count(BitMap()) == 0


@pytest.mark.parametrize("seed", range(20))
def test_a_set_holding_no_changed_number_counts_the_same_persons_under_both_aliases(seed: int) -> None:
    """changed_since names every number whose person differs between two versions of the
    aliases (merged, moved to another person, no longer an alias, past either one's largest
    alias), and no other: a set holding none of them has the same persons under both."""
    rng = np.random.default_rng(seed)
    old = {alias: int(rng.integers(0, 50)) for alias in range(1000, 2000 + 500 * (seed % 3)) if rng.random() < 0.4}
    new = {alias: person for alias, person in old.items() if rng.random() < 0.9}  # some no longer aliases
    for alias in rng.choice(3000, size=30, replace=False).tolist():  # some merged or moved anew
        if alias >= 50:
            new[alias] = int(rng.integers(0, 50))
    before, after = _persons(old), _persons(new)
    changed = after.changed_since(before)
    assert set(changed) == {n for n in range(3000) if old.get(n, n) != new.get(n, n)}
    assert after.changed_since(before) is changed  # asked again for the same aliases: kept
    for _ in range(20):
        users = BitMap(rng.choice(3000, size=int(rng.integers(0, 300)), replace=False).tolist())
        if not users.intersect(changed):
            assert after.count(users) == before.count(users)
