"""people.identity: PostHog's merge rules made deterministic. Pure: no database."""

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from people.identity import (
    ALIAS_KIND,
    IDENTIFY_KIND,
    MERGED,
    REFUSED_BOTH_IDENTIFIED,
    SAME,
    Link,
    Partition,
    link_of,
    merge,
    person_id_of,
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def identify(user, anon, minutes=0):
    return Link(T0 + timedelta(minutes=minutes), IDENTIFY_KIND, user, anon)


def alias(distinct_id, other, minutes=0):
    return Link(T0 + timedelta(minutes=minutes), ALIAS_KIND, distinct_id, other)


def groups(partition: Partition) -> set[frozenset[str]]:
    by_person: dict = {}
    for distinct_id, person_id in partition.person_of.items():
        by_person.setdefault(person_id, set()).add(distinct_id)
    return {frozenset(ids) for ids in by_person.values()}


def test_an_anonymous_id_identified_as_a_user_merges_into_the_users_person():
    partition = merge(1, [identify("user", "anon")])
    assert partition.person_of == {"user": person_id_of(1, "user"), "anon": person_id_of(1, "user")}
    assert partition.identified == {person_id_of(1, "user")}
    assert partition.outcomes == {(IDENTIFY_KIND, "user", "anon"): MERGED}


def test_an_anon_of_identified_a_is_refused_to_user_b_though_b_is_new():
    partition = merge(1, [identify("A", "anon", 0), identify("B", "anon", 5)])
    assert groups(partition) == {frozenset({"A", "anon"}), frozenset({"B"})}
    assert partition.outcomes[(IDENTIFY_KIND, "B", "anon")] == REFUSED_BOTH_IDENTIFIED
    # B's own $identify identified B all the same
    assert partition.identified == {person_id_of(1, "A"), person_id_of(1, "B")}


def test_two_identified_people_are_never_merged_by_an_alias():
    partition = merge(1, [identify("A", "a1", 0), identify("B", "b1", 1), alias("A", "B", 2)])
    assert groups(partition) == {frozenset({"A", "a1"}), frozenset({"B", "b1"})}
    assert partition.outcomes[(ALIAS_KIND, "A", "B")] == REFUSED_BOTH_IDENTIFIED


def test_an_alias_merges_the_other_id_into_the_senders_person_without_identifying_it():
    partition = merge(1, [alias("main", "other")])
    assert groups(partition) == {frozenset({"main", "other"})}
    assert set(partition.person_of.values()) == {person_id_of(1, "main")}
    assert partition.identified == frozenset()
    assert partition.outcomes == {(ALIAS_KIND, "main", "other"): MERGED}


def test_an_alias_to_an_identified_person_keeps_the_senders_person_id_and_is_identified():
    partition = merge(1, [identify("A", "anon", 0), alias("device", "A", 1)])
    assert set(partition.person_of.values()) == {person_id_of(1, "device")}
    assert partition.identified == {person_id_of(1, "device")}


def test_chains_of_devices_end_in_one_person():
    partition = merge(1, [identify("A", "anon1", 0), identify("A", "anon2", 1), identify("A", "A", 2)])
    assert groups(partition) == {frozenset({"A", "anon1", "anon2"})}
    assert partition.outcomes == {
        (IDENTIFY_KIND, "A", "anon1"): MERGED,
        (IDENTIFY_KIND, "A", "anon2"): MERGED,
        (IDENTIFY_KIND, "A", "A"): SAME,
    }


def test_an_identify_without_anon_id_marks_its_sender_identified():
    partition = merge(1, [identify("u", "u")])
    assert partition.identified == {person_id_of(1, "u")}
    assert partition.outcomes == {(IDENTIFY_KIND, "u", "u"): SAME}


def test_links_merge_in_time_order_not_in_the_order_given():
    early_b = [identify("A", "anon", 10), identify("B", "anon", 5)]  # B had anon first
    for links in itertools.permutations(early_b):
        partition = merge(1, links)
        assert groups(partition) == {frozenset({"B", "anon"}), frozenset({"A"})}
        assert partition.outcomes[(IDENTIFY_KIND, "A", "anon")] == REFUSED_BOTH_IDENTIFIED


def test_person_ids_differ_by_project():
    assert person_id_of(1, "u") != person_id_of(2, "u")
    assert person_id_of(1, "u") == person_id_of(1, "u")


def test_link_of_reads_identify_and_alias_and_skips_illegal_or_missing_ids():
    assert link_of("$identify", "u", {"$anon_distinct_id": "a"}) == (IDENTIFY_KIND, "a")
    assert link_of("$identify", "u", {}) == (IDENTIFY_KIND, "u")
    assert link_of("$identify", "u", None) == (IDENTIFY_KIND, "u")
    assert link_of("$create_alias", "u", {"alias": "x"}) == (ALIAS_KIND, "x")
    assert link_of("$create_alias", "u", {}) is None
    assert link_of("$identify", "u", {"$anon_distinct_id": "null"}) is None
    assert link_of("$identify", "undefined", {"$anon_distinct_id": "a"}) is None
    assert link_of("$identify", "u", {"$anon_distinct_id": 7}) is None
    assert link_of("$pageview", "u", {"$anon_distinct_id": "a"}) is None


IDS = st.sampled_from(["A", "B", "C", "a1", "a2", "a3", "a4"])
LINKS = st.lists(
    st.builds(
        Link,
        st.integers(0, 5).map(lambda m: T0 + timedelta(minutes=m)),
        st.sampled_from([IDENTIFY_KIND, ALIAS_KIND]),
        IDS,
        IDS,
    ),
    max_size=10,
)


@settings(max_examples=200, derandomize=True)
@given(LINKS, st.randoms(use_true_random=False))
def test_the_same_links_in_any_order_and_repeated_give_the_same_persons_and_outcomes(links, random):
    expected = merge(1, links)
    shuffled = links + random.sample(links, k=len(links) // 2)  # some delivered twice
    random.shuffle(shuffled)
    assert merge(1, shuffled) == expected


@settings(max_examples=200, derandomize=True)
@given(LINKS)
def test_two_identified_people_never_share_a_person(links):
    partition = merge(1, links)
    sorted_links = sorted(set(links))
    for i, link in enumerate(sorted_links):
        if partition.outcomes[(link.kind, link.distinct_id, link.other_id)] != MERGED:
            continue
        # Before this link, neither side's group held two identify senders of different groups:
        # replaying the prefix shows the two sides were never both identified.
        before = merge(1, sorted_links[:i])
        p = before.person_of.get(link.distinct_id, person_id_of(1, link.distinct_id))
        q = before.person_of.get(link.other_id, person_id_of(1, link.other_id))
        p_identified = p in before.identified or link.kind == IDENTIFY_KIND
        assert not (p_identified and q in before.identified)
