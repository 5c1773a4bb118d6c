"""experiment_conversions against real PostgreSQL: experiments created or edited after their goal
events were projected are backfilled in the runner's transaction; archived ones stop; windows and
projects are kept apart; replay and verify cover it."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from contracts import schema
from projections.registry import projection_get
from projections.replay import replay
from projections.runner import checkpoint_get
from projections.verify import verify
from tests.projection_helpers import insert_events, project, table_rows

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NAME = "experiment_conversions"


def experiment_create(
    *, key="exp", project_id=1, goal_event="purchase", goal_filter=None, start_at=T0, end_at=None, archived=False
) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {schema.EXPERIMENTS} (project_id, key, name, description, flag_key, control, tests,
                    goal_event, goal_filter, start_at, end_at, archived, created_by, created_at, updated_at)
                VALUES (%s, %s, '', '', 'flag', 'control', ARRAY['test'], %s, %s::jsonb, %s, %s, %s, '', now(), now())
                RETURNING id""",
            [project_id, key, goal_event, None if goal_filter is None else json.dumps(goal_filter), start_at, end_at,
             archived],
        )  # fmt: skip
        return cursor.fetchone()[0]


def experiment_update(experiment_id: int, **columns) -> None:
    assignments = ", ".join(f"{name} = %s" for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {schema.EXPERIMENTS} SET {assignments} WHERE id = %s", [*columns.values(), experiment_id]
        )


def goal(minutes, distinct_id="u", *, event_type="purchase", project_id=1, properties=None):
    return {
        "event_type": event_type,
        "timestamp": T0 + timedelta(minutes=minutes),
        "distinct_id": distinct_id,
        "project_id": project_id,
        "properties": properties or {},
    }


def conversions(experiment_id=None) -> list[tuple]:
    """(distinct_id, minutes after T0) of each conversion (of one experiment, or all)."""
    return [
        (row[2], int((row[3] - T0).total_seconds() // 60))
        for row in table_rows(schema.EXPERIMENT_CONVERSIONS)
        if experiment_id is None or row[1] == experiment_id
    ]


def test_an_experiment_created_after_its_goal_events_were_projected_still_gets_them(settings):
    insert_events([goal(1, "early"), goal(2, "early"), goal(3, "other", event_type="signup")])
    project([NAME])
    assert checkpoint_get(NAME).events_applied == 3 and conversions() == []

    experiment_id = experiment_create()
    settings.TIDELOG_PROJECTION_BATCH = 1  # the later ones one batch each, after the backfill
    insert_events([goal(4, "late")])
    insert_events([goal(5, "late")])
    project([NAME])
    assert conversions(experiment_id) == [("early", 1), ("early", 2), ("late", 4), ("late", 5)]
    assert verify(projection_get(NAME)).differences == []


def test_an_experiment_is_backfilled_even_when_no_new_event_arrives():
    insert_events([goal(1)])
    project([NAME])
    experiment_id = experiment_create()
    from projections.runner import run_batch

    assert run_batch(projection_get(NAME)) == 0  # nothing new to read, yet the backfill committed
    assert conversions(experiment_id) == [("u", 1)]


def test_the_window_is_inclusive_and_nothing_outside_it_is_kept():
    experiment_id = experiment_create(start_at=T0 + timedelta(minutes=10), end_at=T0 + timedelta(minutes=20))
    insert_events([goal(minutes) for minutes in (9, 10, 15, 20, 21)])
    project([NAME])
    assert conversions(experiment_id) == [("u", 10), ("u", 15), ("u", 20)]
    # The same through the backfill: a second experiment with the same window, made later.
    later = experiment_create(key="later", start_at=T0 + timedelta(minutes=10), end_at=T0 + timedelta(minutes=20))
    insert_events([goal(0)])  # make project() run a batch
    project([NAME])
    assert conversions(later) == [("u", 10), ("u", 15), ("u", 20)]


def test_an_edited_goal_recomputes_the_experiments_conversions():
    experiment_id = experiment_create()
    insert_events([goal(1, "buyer"), goal(2, "member", event_type="signup")])
    project([NAME])
    assert conversions(experiment_id) == [("buyer", 1)]

    experiment_update(experiment_id, goal_event="signup")
    insert_events([goal(3, "member", event_type="signup"), goal(4, "buyer")])
    project([NAME])
    assert conversions(experiment_id) == [("member", 2), ("member", 3)]

    experiment_update(experiment_id, start_at=T0 + timedelta(minutes=3))
    insert_events([goal(5, "x", event_type="noise")])
    project([NAME])
    assert conversions(experiment_id) == [("member", 3)]
    assert verify(projection_get(NAME)).differences == []


def test_an_archived_experiment_stops_collecting_and_its_rows_go():
    archived = experiment_create(key="archived")
    kept = experiment_create(key="kept")
    insert_events([goal(1)])
    project([NAME])
    assert conversions(archived) == [("u", 1)] == conversions(kept)

    experiment_update(archived, archived=True)
    insert_events([goal(2)])
    project([NAME])
    assert conversions(archived) == []
    assert conversions(kept) == [("u", 1), ("u", 2)]
    assert verify(projection_get(NAME)).differences == []

    experiment_update(archived, archived=False)  # unarchived: backfilled again
    insert_events([goal(3, event_type="noise")])
    project([NAME])
    assert conversions(archived) == [("u", 1), ("u", 2)]


def test_a_deleted_experiment_loses_its_conversions():
    experiment_id = experiment_create()
    insert_events([goal(1)])
    project([NAME])
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {schema.EXPERIMENTS} WHERE id = %s", [experiment_id])
    insert_events([goal(2)])
    project([NAME])
    assert conversions() == []
    assert table_rows(schema.EXPERIMENT_BACKFILLS) == []


def test_another_projects_goal_events_never_count():
    mine = experiment_create(project_id=1)
    insert_events([goal(1, "theirs", project_id=2)])
    project([NAME])
    theirs = experiment_create(project_id=2, key="theirs")  # backfilled: only project 2's event
    insert_events([goal(2, "mine", project_id=1), goal(3, "theirs", project_id=2)])
    project([NAME])
    assert conversions(mine) == [("mine", 2)]
    assert conversions(theirs) == [("theirs", 1), ("theirs", 3)]
    assert {row[0] for row in table_rows(schema.EXPERIMENT_CONVERSIONS) if row[1] == mine} == {1}


def test_the_same_goal_event_twice_is_one_conversion():
    experiment_id = experiment_create()
    insert_events([goal(1), goal(1)])
    project([NAME])
    assert conversions(experiment_id) == [("u", 1)]


def test_replay_rebuilds_the_conversions_and_verify_finds_a_tampered_row():
    first = experiment_create(key="first", end_at=T0 + timedelta(minutes=30))
    insert_events([goal(i, f"u{i % 4}") for i in range(0, 60, 3)])
    project([NAME])
    second = experiment_create(key="second", start_at=T0 + timedelta(minutes=20))
    insert_events([goal(61, "u9")])
    project([NAME])
    live = table_rows(schema.EXPERIMENT_CONVERSIONS)
    assert {row[1] for row in live} == {first, second}
    assert verify(projection_get(NAME)).differences == []

    assert replay(projection_get(NAME)) == 21
    assert table_rows(schema.EXPERIMENT_CONVERSIONS) == live
    assert verify(projection_get(NAME)).differences == []

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM rm_experiment_conversions WHERE distinct_id = 'u9'")
        cursor.execute(
            "INSERT INTO rm_experiment_conversions VALUES (1, %s, 'ghost', %s)", [first, T0 + timedelta(minutes=45)]
        )
    report = verify(projection_get(NAME))
    assert {(d.side, d.row[2]) for d in report.differences} == {("missing", "u9"), ("unexpected", "ghost")}


PRO = {"key": "plan", "operator": "exact", "value": "pro"}


def test_a_goal_filter_keeps_only_matching_events_live_in_the_backfill_and_in_verify(settings):
    plans = [goal(1, "a", properties={"plan": "pro"}), goal(2, "b", properties={"plan": "free"}), goal(3, "c")]
    insert_events(plans)
    project([NAME])
    backfilled = experiment_create(key="backfilled", goal_filter=PRO)  # made after its events
    live = experiment_create(key="live", goal_filter=PRO, start_at=T0 + timedelta(minutes=4))
    settings.TIDELOG_PROJECTION_BATCH = 2
    insert_events([goal(4, "d", properties={"plan": "PRO"}), goal(5, "e", properties={"plan": "free"})])
    insert_events([goal(6, "f", properties={"plan": "pro", "n": 1.5})])
    project([NAME])
    # exact ignores case (flags.matching, as PostHog): "PRO" converts.
    assert conversions(backfilled) == [("a", 1), ("d", 4), ("f", 6)]
    assert conversions(live) == [("d", 4), ("f", 6)]
    assert verify(projection_get(NAME)).differences == []

    with connection.cursor() as cursor:  # verify recomputes filtered goals too
        cursor.execute("DELETE FROM rm_experiment_conversions WHERE experiment_id = %s AND distinct_id = 'f'", [live])
    assert [(d.side, d.row[1], d.row[2]) for d in verify(projection_get(NAME)).differences] == [("missing", live, "f")]


def test_an_edited_goal_filter_recomputes():
    experiment_id = experiment_create(goal_filter=PRO)
    insert_events([goal(1, "a", properties={"plan": "pro"}), goal(2, "b", properties={"plan": "free"})])
    project([NAME])
    assert conversions(experiment_id) == [("a", 1)]
    experiment_update(experiment_id, goal_filter=json.dumps({"key": "plan", "operator": "exact", "value": "free"}))
    insert_events([goal(3, "c", properties={"plan": "free"})])
    project([NAME])
    assert conversions(experiment_id) == [("b", 2), ("c", 3)]
    experiment_update(experiment_id, goal_filter=None)
    insert_events([goal(4, "d", event_type="noise")])
    project([NAME])
    assert conversions(experiment_id) == [("a", 1), ("b", 2), ("c", 3)]
    assert verify(projection_get(NAME)).differences == []
