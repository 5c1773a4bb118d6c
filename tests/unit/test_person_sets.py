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
