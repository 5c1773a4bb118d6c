"""admin/funnels/: ordered funnels per person, equal to a naive Python reference over the raw
events (every step-1 event tried, every later event looked at), and pinned by hand on the edges:
merged people, the window's edge, repeated steps, events at the same instant, the breakdown."""

import random
import statistics
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from tests.integration.test_query_api import get
from tests.projection_helpers import conninfo, insert_events
from tests.projection_helpers import project as run_projections

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
AFTER, BEFORE = T0 - timedelta(hours=1), T0 + timedelta(days=2)
US = timedelta(microseconds=1)


def event(distinct_id, event_type, at, **columns):
    return {"distinct_id": distinct_id, "event_type": event_type, "timestamp": at, **columns}


def identify(distinct_id, anonymous, at):
    return event(distinct_id, "$identify", at, properties={"$anon_distinct_id": anonymous})


def load(project_id, events):
    insert_events([{**e, "project_id": project_id} for e in events])
    run_projections(["people", "event_aggregates", "event_timelines"])


def funnel(client, project, steps, **query):
    query = {"after": AFTER.isoformat(), "before": BEFORE.isoformat(), **query}
    response = get(client, "funnels/", project.personal_api_key, steps=steps, **query)
    assert response.status_code == 200, response.content
    return response.json()


def counts(body):
    return [step["count"] for step in body["steps"]]


# --- the reference -------------------------------------------------------------------------


def reference(project_id, steps, window, after, before, breakdown=None, breakdown_limit=10):
    """The funnel, naively: each person's events (their distinct_ids by the people read model),
    every step-1 event in range tried, each next step the earliest event of its type strictly
    after the previous step and within the window; the furthest step wins, then the earliest
    step-1 event, then the smallest breakdown value."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT coalesce(pd.person_id::text, 'id:' || e.distinct_id), e.event_type, e."timestamp",
                       coalesce(e.{breakdown or "app_version"}, '')
                FROM tidelog_events e LEFT JOIN rm_person_distinct_ids pd
                  ON pd.project_id = e.project_id AND pd.distinct_id = e.distinct_id
                WHERE e.project_id = %s AND e."timestamp" >= %s AND e."timestamp" < %s""",
            [project_id, after, before],
        )
        rows = cursor.fetchall()
    people = {}
    for who, event_type, at, value in rows:
        people.setdefault(who, []).append((at, event_type, value))
    best = {}
    for who, events in people.items():
        tries = []
        for at, event_type, value in events:
            if event_type != steps[0]:
                continue
            times = [at]
            for step in steps[1:]:
                later = [t for t, e, _ in events if e == step and t > times[-1] and t <= at + window]
                if not later:
                    break
                times.append(min(later))
            tries.append((-len(times), at, value, times))
        if tries:
            best[who] = min(tries)
    whole = _reference_steps(steps, best.values())
    if breakdown is None:
        return whole, None
    by_value = {}
    for entry in best.values():
        by_value.setdefault(entry[2], []).append(entry)
    ranked = sorted(by_value, key=lambda value: (-len(by_value[value]), value))
    groups = [(value or None, by_value[value]) for value in ranked[:breakdown_limit]]
    rest = [entry for value in ranked[breakdown_limit:] for entry in by_value[value]]
    if rest:
        groups.append(("$other", rest))
    return whole, [{"breakdown_value": value, "steps": _reference_steps(steps, entries)} for value, entries in groups]


def _reference_steps(steps, entries):
    entries = list(entries)
    found = []
    for k, event_type in enumerate(steps):
        reached = [times for _, _, _, times in entries if len(times) > k]
        first = len(entries)
        previous = found[-1]["count"] if found else len(reached)
        found.append({
            "event_type": event_type,
            "count": len(reached),
            "conversion": len(reached) / first if first else None,
            "conversion_from_previous": len(reached) / previous if previous else None,
            "drop_off": previous - len(reached),
            "median_seconds_to_convert": (
                statistics.median((times[k] - times[0]).total_seconds() for times in reached) if k and reached else None
            ),
        })  # fmt: skip
    return found


def assert_same(answered, expected):
    assert [{**s, "median_seconds_to_convert": None} for s in answered] == [
        {**s, "median_seconds_to_convert": None} for s in expected
    ]
    for got, want in zip(answered, expected, strict=True):
        want_median = want["median_seconds_to_convert"]
        assert got["median_seconds_to_convert"] == (want_median and pytest.approx(want_median, rel=1e-9))


def assert_as_reference(
    client, project, steps, window_hours=24 * 14, breakdown=None, breakdown_limit=10, after=AFTER, before=BEFORE
):
    query = {"window_hours": window_hours, "breakdown_limit": breakdown_limit}
    if breakdown:
        query["breakdown"] = breakdown
    body = funnel(client, project, steps, after=after.isoformat(), before=before.isoformat(), **query)
    whole, groups = reference(
        project.project_id, steps, timedelta(hours=window_hours), after, before, breakdown, breakdown_limit
    )
    assert_same(body["steps"], whole)
    if breakdown:
        assert [g["breakdown_value"] for g in body["breakdown"]] == [g["breakdown_value"] for g in groups]
        for got, want in zip(body["breakdown"], groups, strict=True):
            assert_same(got["steps"], want["steps"])
    else:
        assert body["breakdown"] is None
    return body


# --- pinned cases --------------------------------------------------------------------------


def test_a_merged_persons_ids_are_one_person_whose_events_interleave(client, project):
    load(project.project_id, [
        event("anon-1", "opened", T0),
        identify("user-1", "anon-1", T0 + timedelta(minutes=1)),
        event("user-1", "viewed", T0 + timedelta(minutes=2)),
        event("anon-1", "bought", T0 + timedelta(minutes=3)),  # the anonymous id again, after the login
        event("anon-2", "opened", T0),  # never logs in: a person of its own
    ])  # fmt: skip
    body = assert_as_reference(client, project, ["opened", "viewed", "bought"])
    assert counts(body) == [2, 1, 1]
    assert [s["median_seconds_to_convert"] for s in body["steps"]] == [None, 120.0, 180.0]
    assert [s["drop_off"] for s in body["steps"]] == [0, 1, 0]
    assert [s["conversion"] for s in body["steps"]] == [1.0, 0.5, 0.5]
    assert [s["conversion_from_previous"] for s in body["steps"]] == [1.0, 0.5, 1.0]


def test_ids_no_projection_has_numbered_yet_count_as_persons_of_their_own(client, project):
    """The newest ids (within the projection lag) have no number yet: each is a person by its
    distinct_id, as the reference has them, whatever its characters."""
    load(project.project_id, [event("u1", "opened", T0), event("u1", "bought", T0 + US)])
    insert_events([
        {"project_id": project.project_id, **e}
        for e in (event("né-ü", "opened", T0), event("né-ü", "bought", T0 + 2 * US), event("z", "opened", T0))
    ])  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT distinct_id FROM tidelog_user_numbers WHERE project_id = %s", [project.project_id])
        assert cursor.fetchall() == [("u1",)]
    body = assert_as_reference(client, project, ["opened", "bought"])
    assert counts(body) == [3, 2]
    assert_as_reference(client, project, ["opened", "bought"], breakdown="os_name")


def test_the_window_includes_its_last_instant_and_no_more(client, project):
    window = timedelta(hours=1)
    load(project.project_id, [
        event("a", "opened", T0), event("a", "bought", T0 + window),
        event("b", "opened", T0), event("b", "bought", T0 + window + US),
    ])  # fmt: skip
    assert counts(assert_as_reference(client, project, ["opened", "bought"], window_hours=1)) == [2, 1]


def test_a_next_step_at_the_same_instant_does_not_convert(client, project):
    load(project.project_id, [
        event("a", "opened", T0), event("a", "bought", T0),
        event("b", "opened", T0), event("b", "bought", T0 + US),
    ])  # fmt: skip
    body = assert_as_reference(client, project, ["opened", "bought"])
    assert counts(body) == [2, 1]
    assert body["steps"][1]["median_seconds_to_convert"] == pytest.approx(1e-6)


def test_a_repeated_step_needs_another_event_strictly_later(client, project):
    load(project.project_id, [
        event("once", "opened", T0),
        event("twice", "opened", T0), event("twice", "opened", T0 + timedelta(minutes=5)),
        event("same-instant", "opened", T0), event("same-instant", "opened", T0),
        event("aba", "opened", T0), event("aba", "bought", T0 + US), event("aba", "opened", T0 + 2 * US),
    ])  # fmt: skip
    assert counts(assert_as_reference(client, project, ["opened", "opened"])) == [4, 2]
    assert counts(assert_as_reference(client, project, ["opened", "bought", "opened"])) == [4, 1, 1]


def test_steps_out_of_order_do_not_convert(client, project):
    load(project.project_id, [event("a", "bought", T0), event("a", "opened", T0 + timedelta(minutes=1))])
    assert counts(assert_as_reference(client, project, ["opened", "bought"])) == [1, 0]


def test_the_furthest_step_over_every_entry_counts_and_the_earliest_entry_reaching_it_times_it(client, project):
    load(project.project_id, [
        # First entry reaches step 2 only (step 3 is past its window); the second reaches step 3.
        event("a", "opened", T0), event("a", "viewed", T0 + timedelta(hours=1)),
        event("a", "opened", T0 + timedelta(hours=2)), event("a", "viewed", T0 + timedelta(hours=3)),
        event("a", "bought", T0 + timedelta(hours=4)),
        # Two entries both reaching step 2: the earlier one times it.
        event("b", "opened", T0), event("b", "opened", T0 + timedelta(minutes=50)),
        event("b", "viewed", T0 + timedelta(hours=1)),
    ])  # fmt: skip
    body = assert_as_reference(client, project, ["opened", "viewed", "bought"], window_hours=3)
    assert counts(body) == [2, 2, 1]
    # a: from its second entry, 1 h and 2 h; b: 1 h from its first.
    assert [s["median_seconds_to_convert"] for s in body["steps"]] == [None, 3600.0, 7200.0]


def test_events_outside_the_range_are_not_read(client, project):
    load(project.project_id, [
        event("early", "opened", AFTER - US), event("early", "bought", AFTER + timedelta(minutes=1)),
        event("late", "opened", BEFORE - timedelta(minutes=1)), event("late", "bought", BEFORE),
    ])  # fmt: skip
    assert counts(assert_as_reference(client, project, ["opened", "bought"])) == [1, 0]


def test_the_breakdown_is_the_entrys_value_and_its_groups_sum_to_the_whole(client, project):
    load(project.project_id, [
        # The value at the step-1 event that counts (the one reaching furthest), not the first.
        event("a", "opened", T0, app_version="1.0"), event("a", "opened", T0 + timedelta(hours=1), app_version="2.0"),
        event("a", "bought", T0 + timedelta(hours=2), app_version="2.0"),
        event("b", "opened", T0, app_version="2.0"),
        event("c", "opened", T0),  # unknown version: null
        event("d", "opened", T0, app_version="3.0"), event("d", "bought", T0 + US, app_version="1.0"),
        event("e", "opened", T0, app_version="4.0"),
    ])  # fmt: skip
    body = assert_as_reference(client, project, ["opened", "bought"], window_hours=1, breakdown="app_version")
    assert counts(body) == [5, 2]
    assert {g["breakdown_value"]: counts(g) for g in body["breakdown"]} == {
        "2.0": [2, 1], None: [1, 0], "3.0": [1, 1], "4.0": [1, 0],
    }  # fmt: skip
    limited = assert_as_reference(
        client, project, ["opened", "bought"], window_hours=1, breakdown="app_version", breakdown_limit=2
    )
    assert [(g["breakdown_value"], counts(g)) for g in limited["breakdown"]] == [
        ("2.0", [2, 1]), (None, [1, 0]), ("$other", [2, 1]),
    ]  # fmt: skip


def test_entries_at_the_same_instant_take_the_smallest_breakdown_value(client, project):
    """Two step-1 events of a person at one instant are one chain: the person's value is the
    smaller (code points), whichever event was stored first."""
    load(project.project_id, [
        event("a", "opened", T0, os_name="iOS"), event("a", "opened", T0, os_name="Android"),
        event("b", "opened", T0, os_name="Android"), event("b", "opened", T0, os_name="iOS"),
        event("a", "bought", T0 + US), event("b", "bought", T0 + US),
        event("c", "opened", T0, os_name="iOS"),
    ])  # fmt: skip
    body = assert_as_reference(client, project, ["opened", "bought"], breakdown="os_name")
    assert {g["breakdown_value"]: counts(g) for g in body["breakdown"]} == {"Android": [2, 2], "iOS": [1, 0]}


def test_an_empty_funnel_answers_zeros(client, project):
    body = funnel(client, project, ["opened", "bought"], breakdown="os_name")
    assert body["steps"] == [
        {"event_type": name, "count": 0, "conversion": None, "conversion_from_previous": None, "drop_off": 0,
         "median_seconds_to_convert": None} for name in ("opened", "bought")
    ]  # fmt: skip
    assert body["breakdown"] == []


def test_another_projects_events_are_not_counted(client, project, other_project):
    load(other_project.project_id, [event("a", "opened", T0), event("a", "bought", T0 + US)])
    assert counts(funnel(client, project, ["opened", "bought"])) == [0, 0]
    assert counts(funnel(client, other_project, ["opened", "bought"])) == [1, 1]


def test_random_funnels_equal_the_reference(client, project):
    """Few people, few types and coarse times: ties, repeats, merges and window edges abound."""
    rng = random.Random(9)
    types = ["a", "b", "c", "d"]
    events = []
    for n in range(30):
        ids = [f"u{n}", f"anon{n}"] if n % 3 == 0 else [f"u{n}"]
        for _ in range(rng.randint(1, 12)):
            at = T0 + timedelta(minutes=10 * rng.randint(0, 30))
            events.append(event(rng.choice(ids), rng.choice(types), at, os_name=rng.choice(["iOS", "Android", None])))
        if len(ids) == 2:
            events.append(identify(ids[0], ids[1], T0 + timedelta(minutes=10 * rng.randint(0, 30))))
    load(project.project_id, events)
    for _ in range(12):
        steps = [rng.choice(types) for _ in range(rng.randint(2, 5))]
        window_hours = rng.choice([1, 2, 3, 24])
        assert_as_reference(client, project, steps, window_hours=window_hours, breakdown=rng.choice([None, "os_name"]))


@pytest.mark.parametrize("days", [0, 2], ids=["hours", "days"])
def test_random_funnels_over_the_timelines_and_the_stores_tail_cut_mid_hour_equal_the_reference(client, project, days):
    """Half the events reach the timelines, the other half only the store (past the timelines'
    checkpoint: people and the directory have them), in every type; the range starts and ends
    inside an hour, so its edge hours hold events on both sides of it. Over days: the timelines
    come a day at a time, each with its own app versions, and the edges are in different days."""
    rng = random.Random(11)
    types = ["a", "b", "c"]
    after, before = T0 + timedelta(minutes=25), T0 + timedelta(days=days, hours=4, minutes=35)
    halves: list[list[dict]] = [[], []]
    for n in range(40, 50):  # persons with every type's events in the edge hours, on both sides
        for kind in types:
            for moment in (after - timedelta(minutes=rng.randint(1, 25)), after + timedelta(minutes=rng.randint(0, 30)),
                           before - timedelta(minutes=rng.randint(1, 30)), before + timedelta(minutes=rng.randint(0, 20))):  # fmt: skip
                halves[0].append(event(f"u{n}", kind, moment, app_version=rng.choice(["1.0", "2.0"])))
    for n in range(40):
        ids = [f"u{n}", f"anon{n}"] if n % 4 == 0 else [f"u{n}"]
        for _ in range(rng.randint(1, 14)):
            at = T0 + timedelta(minutes=5 * rng.randint(0, 60 * (1 + 12 * days)), microseconds=rng.choice([0, 1]))
            version = rng.choice(["1.0", "2.0", None, f"3.{at.day}"])
            halves[rng.randint(0, 1)].append(event(rng.choice(ids), rng.choice(types), at, app_version=version))
        if len(ids) == 2:
            halves[0].append(identify(ids[0], ids[1], T0))
    load(project.project_id, halves[0])
    insert_events([{**e, "project_id": project.project_id} for e in halves[1]])
    run_projections(["people", "event_aggregates"])
    for _ in range(10):
        steps = [rng.choice(types) for _ in range(rng.randint(2, 4))]
        assert_as_reference(
            client, project, steps, window_hours=rng.choice([1, 2, 24]), breakdown=rng.choice([None, "app_version"]),
            after=after, before=before,
        )  # fmt: skip


# --- parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"steps": ["a"]}, "steps"),
        ({"steps": []}, "steps"),
        ({"steps": ["a"] * 11}, "steps"),
        ({"steps": ["a", ""]}, "steps"),
        ({"steps": ["a", "b\x00"]}, "steps"),
        ({"steps": ["a", "b" * 201]}, "steps"),
        ({"steps": ["a", "b"], "window_hours": "0"}, "window_hours"),
        ({"steps": ["a", "b"], "window_hours": "8761"}, "window_hours"),
        ({"steps": ["a", "b"], "window_hours": "1.5"}, "window_hours"),
        ({"steps": ["a", "b"], "window_hours": "²"}, "window_hours"),
        ({"steps": ["a", "b"], "breakdown": "distinct_id"}, "breakdown"),
        ({"steps": ["a", "b"], "breakdown_limit": "0"}, "breakdown_limit"),
        ({"steps": ["a", "b"], "breakdown_limit": "101"}, "breakdown_limit"),
        ({"steps": ["a", "b"], "after": "2026-05-02", "before": "2026-05-01"}, "after"),
        ({"steps": ["a", "b"], "before": "never"}, "before"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(client, project, query, field):
    response = get(client, "funnels/", project.personal_api_key, **query)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_parameter"
    assert response.json()["field"] == field


def test_a_funnel_reading_more_events_than_the_limit_is_refused_before_reading_them(client, project, settings):
    load(project.project_id, [event("a", "opened", T0), event("a", "bought", T0 + US), event("a", "other", T0)])
    settings.TIDELOG_FUNNEL_MAX_EVENTS = 2
    at_the_limit = funnel(client, project, ["opened", "bought"])
    assert (counts(at_the_limit), at_the_limit["events_read_at_most"]) == ([1, 1], 2)
    settings.TIDELOG_FUNNEL_MAX_EVENTS = 1
    response = get(client, "funnels/", project.personal_api_key, steps=["opened", "bought"],
                   after=AFTER.isoformat(), before=BEFORE.isoformat())  # fmt: skip
    assert response.status_code == 400
    assert response.json()["code"] == "range_too_large"
    assert response.json()["field"] == "after"
    assert "2 events" in response.json()["message"]
    # A range without those events reads none.
    assert counts(funnel(client, project, ["opened", "bought"], before=T0.isoformat())) == [0, 0]


def test_a_funnel_running_past_its_timeout_is_refused_the_same_way(client, project, settings):
    # The counts can trail the store (a stopped projection): the timeout is the second guard.
    # The scan is made to outlast the timeout, never assumed to: another session holds the
    # events table, so the statement waits (a wait counts toward statement_timeout).
    load(project.project_id, [event(f"u{n}", "opened", T0 + n * US) for n in range(50)])
    settings.TIDELOG_FUNNEL_TIMEOUT_SECONDS = 0.2
    with psycopg.connect(conninfo()) as blocker:
        # Were the timeout not applied, the server ends this session after 10 s and the funnel
        # answers 200: the test fails rather than hangs.
        blocker.execute("SET idle_in_transaction_session_timeout = '10s'")
        blocker.execute("LOCK TABLE tidelog_events IN ACCESS EXCLUSIVE MODE")
        response = get(client, "funnels/", project.personal_api_key, steps=["opened", "bought"],
                       after=AFTER.isoformat(), before=BEFORE.isoformat())  # fmt: skip
        blocker.rollback()
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400,
        "range_too_large",
        "after",
    )
    settings.TIDELOG_FUNNEL_TIMEOUT_SECONDS = 30
    assert counts(funnel(client, project, ["opened", "bought"])) == [50, 0]
