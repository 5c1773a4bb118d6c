"""flag_exposures against real PostgreSQL: first variant by event time whatever order the events
come in, every variant a user was seen with, daily counts, replay and verify."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from contracts import schema
from projections.flag_exposures import FlagExposures
from projections.projection import EventsOnly
from projections.registry import projection_get
from projections.replay import replay
from projections.runner import checkpoint_ensure, run_batch
from projections.verify import verify
from tests.projection_helpers import insert_events, project, table_rows

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)
CALLED = "$feature_flag_called"


def exposure(flag, response, *, minutes=0, distinct_id="u", project_id=1, omit_response=False):
    properties = {"$feature_flag": flag}
    if not omit_response:
        properties["$feature_flag_response"] = response
    return {
        "event_type": CALLED,
        "timestamp": T0 + timedelta(minutes=minutes),
        "distinct_id": distinct_id,
        "project_id": project_id,
        "properties": properties,
    }


def exposures() -> dict[tuple, tuple]:
    return {row[:3]: row[3:] for row in table_rows(schema.FLAG_EXPOSURES)}


def test_the_first_variant_is_the_earliest_by_event_time_though_it_arrives_last(settings):
    settings.TIDELOG_PROJECTION_BATCH = 1  # one event a batch: each merge goes through the upsert
    insert_events([exposure("checkout", "test", minutes=30)])
    project(["flag_exposures"])
    insert_events([exposure("checkout", "control", minutes=5)])  # an old event, sent late
    insert_events([exposure("checkout", "test", minutes=60)])
    project(["flag_exposures"])
    assert exposures() == {(1, "checkout", "u"): ("control", T0 + timedelta(minutes=5), ["control", "test"], 3)}


def test_at_one_instant_the_smallest_variant_is_first_in_one_batch_or_across_batches(settings):
    insert_events([exposure("f", "b", distinct_id="one"), exposure("f", "a", distinct_id="one")])
    settings.TIDELOG_PROJECTION_BATCH = 1
    insert_events([exposure("f", "b", distinct_id="two")])
    insert_events([exposure("f", "a", distinct_id="two")])
    project(["flag_exposures"])
    assert {key[2]: row[0] for key, row in exposures().items()} == {"one": "a", "two": "a"}


def test_a_user_seen_with_two_variants_has_both_and_each_exposure_counts_per_day():
    insert_events(
        [
            exposure("f", "control", minutes=0, distinct_id="flip"),
            exposure("f", "test", minutes=90, distinct_id="flip"),  # the next UTC day
            exposure("f", "test", minutes=91, distinct_id="flip"),
            exposure("f", "test", minutes=10, distinct_id="steady"),
        ]
    )
    project(["flag_exposures"])
    assert exposures() == {
        (1, "f", "flip"): ("control", T0, ["control", "test"], 3),
        (1, "f", "steady"): ("test", T0 + timedelta(minutes=10), ["test"], 1),
    }
    assert table_rows(schema.FLAG_EXPOSURE_DAYS) == [
        (1, "f", date(2026, 5, 1), "control", 1),
        (1, "f", date(2026, 5, 1), "test", 1),
        (1, "f", date(2026, 5, 2), "test", 2),
    ]


def test_boolean_and_other_json_responses_become_their_text():
    insert_events(
        [
            exposure("on", True, distinct_id="t"),
            exposure("on", False, distinct_id="f"),
            exposure("on", None, distinct_id="null"),
            exposure("on", None, distinct_id="absent", omit_response=True),
            exposure("on", "true", distinct_id="string"),
            {"event_type": CALLED, "timestamp": T0, "distinct_id": "n",
             "properties": '{"$feature_flag": "on", "$feature_flag_response": 1.50}'},
            exposure("on", {"b": [1, "x y"], "a": "é\n\u0001"}, distinct_id="obj"),
        ]
    )  # fmt: skip
    project(["flag_exposures"])
    assert {key[2]: row[0] for key, row in exposures().items()} == {
        "t": "true",
        "f": "false",
        "null": "false",
        "absent": "false",
        "string": "true",
        "n": "1.50",  # the number as stored, not a float's 1.5
        "obj": '{"a":"é\\n\\u0001","b":[1,"x y"]}',  # jsonb orders keys: shorter first, then bytes
    }
    assert verify(projection_get("flag_exposures")).differences == []


def test_an_event_without_a_flag_key_is_no_exposure_and_other_events_are_ignored():
    insert_events(
        [
            {"event_type": CALLED, "timestamp": T0, "properties": {"$feature_flag_response": "x"}},
            {"event_type": CALLED, "timestamp": T0, "properties": {"$feature_flag": ""}},
            {"event_type": CALLED, "timestamp": T0, "properties": {"$feature_flag": 7}},
            {"event_type": CALLED, "timestamp": T0, "properties": '["not", "an", "object"]'},
            {"event_type": "$pageview", "timestamp": T0, "properties": {"$feature_flag": "f"}},
            exposure("f", "a", distinct_id="counted"),
        ]
    )
    assert project(["flag_exposures"]) == {"flag_exposures": 6}
    assert list(exposures()) == [(1, "f", "counted")]
    assert [row[4] for row in table_rows(schema.FLAG_EXPOSURE_DAYS)] == [1]
    assert verify(projection_get("flag_exposures")).differences == []


def test_projects_are_counted_apart():
    insert_events([exposure("f", "a", project_id=1), exposure("f", "b", project_id=2, minutes=-5)])
    project(["flag_exposures"])
    assert exposures() == {
        (1, "f", "u"): ("a", T0, ["a"], 1),
        (2, "f", "u"): ("b", T0 - timedelta(minutes=5), ["b"], 1),
    }


def test_properties_reach_only_the_projections_and_event_types_that_ask_for_them():
    seen: dict[str, list] = {}

    class Spy(EventsOnly):
        tables = ()

        def __init__(self, name, inner=None):
            self.name = name
            self.inner = inner

        def property_types(self, inputs):
            return self.inner.property_types(inputs) if self.inner else ()

        def apply(self, events, inputs=None):
            seen[self.name] = [(e.event_type, e.properties) for e in events]

        def write(self, cursor, changes, tables):
            pass

        def verify_queries(self):
            return []

    insert_events([exposure("f", "a"), {"event_type": "other", "timestamp": T0, "properties": {"k": 1}}])
    for spy in (Spy("spy_exposures", FlagExposures()), Spy("spy_none")):
        checkpoint_ensure(spy.name)
        assert run_batch(spy) == 2
    assert seen["spy_exposures"] == [
        (CALLED, '{"$feature_flag": "f", "$feature_flag_response": "a"}'),
        ("other", None),
    ]
    assert seen["spy_none"] == [(CALLED, None), ("other", None)]


def test_replay_rebuilds_exposures_row_for_row_and_verify_finds_a_tampered_row():
    insert_events(
        [exposure("f", ["a", "b", "c"][i % 3], minutes=(i * 37) % 200, distinct_id=f"u{i % 5}") for i in range(60)]
    )
    project(["flag_exposures"])
    live = (table_rows(schema.FLAG_EXPOSURES), table_rows(schema.FLAG_EXPOSURE_DAYS))
    assert verify(projection_get("flag_exposures")).differences == []
    assert replay(projection_get("flag_exposures")) == 60
    assert (table_rows(schema.FLAG_EXPOSURES), table_rows(schema.FLAG_EXPOSURE_DAYS)) == live
    assert verify(projection_get("flag_exposures")).differences == []

    with connection.cursor() as cursor:
        cursor.execute("UPDATE rm_flag_exposures SET first_variant = 'zzz' WHERE distinct_id = 'u1'")
        cursor.execute("DELETE FROM rm_flag_exposure_days WHERE variant = 'b'")
    report = verify(projection_get("flag_exposures"))
    assert {(d.table, d.side, d.row[3]) for d in report.differences if d.table == "rm_flag_exposures"} == {
        ("rm_flag_exposures", "missing", live[0][1][3]),
        ("rm_flag_exposures", "unexpected", "zzz"),
    }
    assert {(d.side, d.row[3]) for d in report.differences if d.table == "rm_flag_exposure_days"} == {("missing", "b")}
