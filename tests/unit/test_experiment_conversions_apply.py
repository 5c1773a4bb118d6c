"""experiment_conversions' apply(): pure, given the events and the experiments collecting."""

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from projections.experiment_conversions import Experiment, ExperimentConversions, Goals
from projections.projection import StoredEvent

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def experiment(id=1, *, project_id=1, goal_event="purchase", goal_filter=None, start=0, end=None, archived=False):
    return Experiment.of_row(
        id, project_id, goal_event, None if goal_filter is None else json.dumps(goal_filter),
        T0 + timedelta(minutes=start), None if end is None else T0 + timedelta(minutes=end), archived,
    )  # fmt: skip


def event(minutes, distinct_id="u", *, event_type="purchase", project_id=1, properties=None):
    return StoredEvent(
        "1", 0, project_id, event_type, distinct_id, T0 + timedelta(minutes=minutes), None, None, None, None, None,
        None if properties is None else json.dumps(properties),
    )  # fmt: skip


def converted(experiments, events):
    return sorted(
        (experiment_id, distinct_id, int((moment - T0).total_seconds() // 60))
        for _, experiment_id, distinct_id, moment in ExperimentConversions().apply(events, Goals.of(experiments))
    )


def test_goal_events_inside_the_window_convert_both_ends_included():
    events = [event(m) for m in (-1, 0, 5, 10, 11)] + [event(5, event_type="signup")]
    assert converted([experiment(start=0, end=10)], events) == [(1, "u", 0), (1, "u", 5), (1, "u", 10)]
    assert converted([experiment(start=0)], events)[-1] == (1, "u", 11)  # no end: open


def test_archived_experiments_and_other_projects_collect_nothing():
    events = [event(1), event(2, project_id=2)]
    assert converted([experiment(1, archived=True), experiment(2, project_id=2)], events) == [(2, "u", 2)]


def test_a_goal_filter_is_matched_on_the_events_properties():
    pro = {"key": "plan", "operator": "exact", "value": "pro"}
    events = [event(1, "a", properties={"plan": "pro"}), event(2, "b", properties={"plan": "free"}), event(3, "c")]
    assert converted([experiment(goal_filter=pro), experiment(2)], events) == [
        (1, "a", 1), (2, "a", 1), (2, "b", 2), (2, "c", 3),
    ]  # fmt: skip
    assert Goals.of([experiment(goal_filter=pro), experiment(2, goal_event="other")]).filtered_event_types() == {
        "purchase"
    }


def test_the_fingerprint_moves_with_the_goal_and_only_with_it():
    base = experiment()
    assert experiment().fingerprint() == base.fingerprint()
    for changed in (
        experiment(goal_event="signup"),
        experiment(goal_filter={"key": "plan", "value": "pro"}),
        experiment(start=1),
        experiment(end=60),
        experiment(archived=True),
        experiment(project_id=2),
    ):
        assert changed.fingerprint() != base.fingerprint(), changed


def test_a_filter_that_does_not_decode_is_an_error_not_an_empty_goal():
    with pytest.raises(msgspec.ValidationError, match="unknown"):
        Experiment.of_row(1, 1, "purchase", '{"nope": 1, "key": "k"}', T0, None, False)
