"""flag_exposures' apply(): which events are exposures, their variant's text, and a fold that
any batching and order of the same events leaves unchanged."""

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.json_text import compact_json, decode_json
from projections.flag_exposures import Exposure, FlagExposures, exposure_of
from projections.projection import StoredEvent

T0 = datetime(2026, 5, 1, 23, 30, tzinfo=UTC)


def called(flag="f", response="a", *, minutes=0, distinct_id="u", project_id=1, event_type="$feature_flag_called"):
    properties = json.dumps({"$feature_flag": flag, "$feature_flag_response": response})
    return StoredEvent(
        "1",
        0,
        project_id,
        event_type,
        distinct_id,
        T0 + timedelta(minutes=minutes),
        None,
        None,
        None,
        None,
        None,
        properties,
    )


def test_the_variant_is_the_response_as_text():
    def variant(text):
        return exposure_of(decode_json(text))

    assert variant('{"$feature_flag": "f", "$feature_flag_response": "blue"}') == ("f", "blue")
    assert variant('{"$feature_flag": "f", "$feature_flag_response": true}') == ("f", "true")
    assert variant('{"$feature_flag": "f", "$feature_flag_response": false}') == ("f", "false")
    assert variant('{"$feature_flag": "f", "$feature_flag_response": null}') == ("f", "false")
    assert variant('{"$feature_flag": "f"}') == ("f", "false")
    assert variant('{"$feature_flag": "f", "$feature_flag_response": 1.50}') == ("f", "1.50")
    assert variant('{"$feature_flag": "f", "$feature_flag_response": [1, {"a": "\\"q\\""}]}') == (
        "f",
        '[1,{"a":"\\"q\\""}]',
    )


def test_without_a_non_empty_string_flag_key_there_is_no_exposure():
    for text in ('{"$feature_flag": ""}', '{"$feature_flag": 3}', '{"$feature_flag": null}', "{}", "[1]", None):
        assert exposure_of(decode_json(text)) is None, text


def test_compact_json_escapes_as_postgresql_does_and_keeps_numbers_exact():
    assert compact_json(decode_json('{"k": "a\\u0001\\tb/é", "n": 1e-7}')) == '{"k":"a\\u0001\\tb/é","n":0.0000001}'


def test_apply_keeps_the_earliest_exposure_every_variant_and_daily_counts():
    changes = FlagExposures().apply(
        [
            called(response="test", minutes=60),  # 2026-05-02 00:30 UTC
            called(response="control", minutes=0),
            called(response="b", minutes=0, distinct_id="v"),
            called(response="a", minutes=0, distinct_id="v"),
            called(event_type="$pageview"),
        ]
    )
    assert changes.exposures == {
        (1, "f", "u"): Exposure("control", T0, {"control", "test"}, 2),
        (1, "f", "v"): Exposure("a", T0, {"a", "b"}, 2),
    }
    assert changes.days == Counter(
        {
            (1, "f", date(2026, 5, 2), "test"): 1,
            (1, "f", date(2026, 5, 1), "control"): 1,
            (1, "f", date(2026, 5, 1), "a"): 1,
            (1, "f", date(2026, 5, 1), "b"): 1,
        }
    )


def fold(batches):
    """What the upserts do across batches: earliest (time, variant), union, sums."""
    rows: dict = {}
    days: Counter = Counter()
    for batch in batches:
        changes = FlagExposures().apply(batch)
        days.update(changes.days)
        for key, new in changes.exposures.items():
            old = rows.get(key)
            if old is None:
                rows[key] = (new.first_at, new.first_variant, frozenset(new.variants), new.exposure_count)
            else:
                first = min((old[0], old[1]), (new.first_at, new.first_variant))
                rows[key] = (*first, old[2] | new.variants, old[3] + new.exposure_count)
    return rows, days


@settings(max_examples=60)
@given(
    events=st.lists(
        st.builds(
            called,
            flag=st.sampled_from(["f", "g", ""]),
            response=st.sampled_from(["a", "b", True, False, None, 2]),
            minutes=st.integers(min_value=-60, max_value=120),
            distinct_id=st.sampled_from(["u1", "u2"]),
            project_id=st.sampled_from([1, 2]),
        ),
        max_size=40,
    ),
    data=st.data(),
)
def test_any_delivery_order_and_batching_gives_the_same_exposures(events, data):
    shuffled = data.draw(st.permutations(events))
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(events)), max_size=5)))
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    assert fold([events]) == fold(batches)
