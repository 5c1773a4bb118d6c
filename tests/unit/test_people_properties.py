"""people.properties: $set / $set_once / $unset by event time, per distinct_id and merged over a
person's ids. Pure: no database."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.json_text import compact_json, decode_json
from people.properties import PropertyRow, person_properties, property_rows

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def fold(*events):
    """(minutes, properties) events of one distinct_id -> {key: PropertyRow}."""
    rows: dict[str, PropertyRow] = {}
    for minutes, properties in events:
        for key, row in property_rows(properties, at(minutes)):
            rows.setdefault(key, PropertyRow()).add(row)
    return rows


def values(*events):
    return person_properties(fold(*events).items())


def test_the_latest_set_wins_whatever_the_order():
    assert values((5, {"$set": {"a": 1}}), (1, {"$set": {"a": 2}})) == {"a": "1"}
    assert values((1, {"$set": {"a": 2}}), (5, {"$set": {"a": 1}})) == {"a": "1"}


def test_the_earliest_set_once_wins_and_a_set_after_it_overrides_it():
    assert values((5, {"$set_once": {"a": "late"}}), (1, {"$set_once": {"a": "early"}})) == {"a": '"early"'}
    assert values((1, {"$set_once": {"a": "once"}}), (3, {"$set": {"a": "set"}})) == {"a": '"set"'}
    # A $set_once after a $set does not override it.
    assert values((1, {"$set": {"a": "set"}}), (3, {"$set_once": {"a": "once"}})) == {"a": '"set"'}


def test_an_unset_removes_what_came_before_it_and_not_what_came_after():
    assert values((1, {"$set": {"a": 1}}), (2, {"$unset": ["a"]})) == {}
    assert values((2, {"$set": {"a": 1}}), (1, {"$unset": ["a"]})) == {"a": "1"}
    assert values((1, {"$set": {"a": 1}}), (2, {"$unset": ["a"]}), (3, {"$set_once": {"a": 2}})) == {"a": "2"}


def test_at_one_instant_an_unset_wins_over_a_set_as_postHog_applies_an_events_unset_last():
    assert values((1, {"$set": {"a": 1}, "$unset": ["a"]})) == {}


def test_the_one_difference_from_posthog_a_set_once_after_an_unset_after_a_set_once():
    # PostHog, in time order: once "x", unset, once "y" -> "y". Here the earliest $set_once ("x")
    # is before the latest $unset, so the key is absent: order-free folds keep one $set_once.
    assert values((1, {"$set_once": {"a": "x"}}), (2, {"$unset": ["a"]}), (3, {"$set_once": {"a": "y"}})) == {}


def test_ties_at_one_instant_are_broken_by_the_values_json_text():
    assert values((1, {"$set": {"a": "b"}}), (1, {"$set": {"a": "a"}})) == {"a": '"b"'}
    assert values((1, {"$set_once": {"a": "b"}}), (1, {"$set_once": {"a": "a"}})) == {"a": '"a"'}


def test_a_merged_persons_properties_take_each_key_from_whichever_id_set_it_last():
    device = fold((1, {"$set": {"plan": "free", "os": "ios"}}), (2, {"$set_once": {"source": "ad"}}))
    user = fold((5, {"$set": {"plan": "pro"}}), (0, {"$set_once": {"source": "organic"}}), (3, {"$unset": ["os"]}))
    assert person_properties([*device.items(), *user.items()]) == {"plan": '"pro"', "source": '"organic"'}


def test_malformed_person_properties_are_ignored():
    assert list(property_rows({"$set": ["a"], "$set_once": "x", "$unset": {"a": 1}}, at(0))) == []
    assert [key for key, _ in property_rows({"$unset": ["a", 3, None]}, at(0))] == ["a"]
    assert list(property_rows(None, at(0))) == []


def test_values_keep_numbers_exact_as_stored():
    assert values((1, decode_json('{"$set": {"n": 1.50, "m": 10}}'))) == {"m": "10", "n": "1.50"}
    assert compact_json(decode_json('{"k": [1, {"q": "\\"x\\""}]}')) == '{"k":[1,{"q":"\\"x\\""}]}'


OPS = st.lists(
    st.tuples(
        st.integers(0, 4),
        st.sampled_from(["$set", "$set_once", "$unset"]),
        st.sampled_from(["a", "b"]),
        st.sampled_from(["x", "y", 1]),
    ),
    max_size=12,
)


def as_event(op):
    minutes, kind, key, value = op
    return minutes, ({kind: [key]} if kind == "$unset" else {kind: {key: value}})


@settings(max_examples=200, derandomize=True)
@given(OPS, st.randoms(use_true_random=False), st.integers(0, 12))
def test_any_order_and_any_split_over_two_ids_give_the_same_properties(ops, random, split):
    expected = values(*map(as_event, ops))
    shuffled = list(ops)
    random.shuffle(shuffled)
    one, two = fold(*map(as_event, shuffled[:split])), fold(*map(as_event, shuffled[split:]))
    assert person_properties([*one.items(), *two.items()]) == expected
