"""The event properties projection (projections/event_properties.py) and the pickers that read it
(admin/event-types/, admin/event-properties/, admin/event-property-values/): keys and bounded
values equal to the raw events' (verify), whatever the order and batching of the events, and
exactly what is left after a person's erasure."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from contracts import schema
from projections import event_properties
from projections.erasure import erase_person
from projections.registry import projection_get
from projections.replay import replay
from projections.verify import verify
from tests.integration.test_query_api import get
from tests.projection_helpers import insert_events, table_rows
from tests.projection_helpers import project as run_projections

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
TABLES = (schema.EVENT_PROPERTY_KEYS.name, schema.EVENT_PROPERTY_VALUES.name)


def load(project_id, events):
    insert_events([{"timestamp": T0, "project_id": project_id, **e} for e in events])
    run_projections(["event_properties", "event_aggregates"])


def assert_verified():
    report = verify(projection_get("event_properties"))
    assert report.differences == []
    return report


def keys(client, project, event_type, **query):
    response = get(client, "event-properties/", project.personal_api_key, event_type=event_type, **query)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def values(client, project, event_type, key, **query):
    response = get(client, "event-property-values/", project.personal_api_key, event_type=event_type, key=key, **query)
    assert response.status_code == 200, response.content
    return response.json()


def test_keys_and_scalar_values_are_counted_as_the_raw_events_hold_them(client, project):
    long_key, long_text = "k" * 201, "x" * 201
    load(project.project_id, [
        {"event_type": "bought", "properties": {"plan": "pro", "price": 1.0, "vip": True, "tags": ["a"]}},
        {"event_type": "bought", "properties": {"plan": "pro", "price": 1, "vip": False, "meta": {"a": 1}}},
        # Numbers spelled as PostgreSQL keeps them: 1.50 and 1.5 are one value, "1.5" another.
        {"event_type": "bought", "properties": '{"plan": "free", "price": 1.50, "note": null}'},
        {"event_type": "bought", "properties": {"plan": long_text, "price": "1.5", long_key: 1}},
        {"event_type": "opened", "properties": {"plan": "team"}},
        {"event_type": "opened", "properties": {}},
    ])  # fmt: skip
    assert_verified()
    assert keys(client, project, "bought") == [
        {"key": "plan", "count": 4, "high_cardinality": False},
        {"key": "price", "count": 4, "high_cardinality": False},
        {"key": "vip", "count": 2, "high_cardinality": False},
        {"key": "meta", "count": 1, "high_cardinality": False},
        {"key": "note", "count": 1, "high_cardinality": False},
        {"key": "tags", "count": 1, "high_cardinality": False},
    ]
    assert values(client, project, "bought", "plan") == {
        "results": [{"value": "pro", "count": 2}, {"value": "free", "count": 1}], "high_cardinality": False,
    }  # fmt: skip
    price = values(client, project, "bought", "price")["results"]
    assert sorted((type(v["value"]).__name__, v["value"], v["count"]) for v in price) == [
        ("float", 1.5, 1), ("int", 1, 2), ("str", "1.5", 1),
    ]  # fmt: skip
    assert values(client, project, "bought", "vip")["results"] == [
        {"value": False, "count": 1}, {"value": True, "count": 1},
    ]  # fmt: skip
    assert values(client, project, "bought", "tags") == {"results": [], "high_cardinality": False}
    assert values(client, project, "bought", "nope") == {"results": [], "high_cardinality": None}
    assert keys(client, project, "opened") == [{"key": "plan", "count": 1, "high_cardinality": False}]
    assert keys(client, project, "opened", limit=1) == keys(client, project, "opened")


def test_a_key_past_the_cap_keeps_no_values_whatever_the_batches(project, monkeypatch, settings):
    monkeypatch.setattr(event_properties, "VALUE_CAP", 3)
    settings.TIDELOG_PROJECTION_BATCH = 2
    load(project.project_id, [{"properties": {"n": i % 4, "plan": "pro"}} for i in range(8)])
    assert_verified()
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, event_count, high_cardinality FROM rm_event_property_keys ORDER BY key")
        assert cursor.fetchall() == [("n", 8, True), ("plan", 8, False)]
        cursor.execute("SELECT key, value::text, event_count FROM rm_event_property_values")
        assert cursor.fetchall() == [("plan", '"pro"', 8)]
    live = [table_rows(table) for table in TABLES]
    settings.TIDELOG_PROJECTION_BATCH = 1000  # one batch: the key crowds within it
    replay(projection_get("event_properties"))
    assert [table_rows(table) for table in TABLES] == live


def test_any_order_and_batching_of_the_same_events_gives_the_same_read_model(
    project, other_project, monkeypatch, settings
):
    monkeypatch.setattr(event_properties, "VALUE_CAP", 5)
    rng = random.Random(3)
    # k1 has 9 values (past the cap of 5), k2 and k3 three each.
    kinds = {"k1": lambda: rng.randint(0, 8), "k2": lambda: rng.choice(["x", "y", True]),
             "k3": lambda: rng.choice([1, 2, "2"])}  # fmt: skip
    events = [
        {"event_type": rng.choice(["a", "b"]),
         "properties": {key: kinds[key]() for key in rng.sample(sorted(kinds), rng.randint(0, 3))}}
        for _ in range(120)
    ]  # fmt: skip
    settings.TIDELOG_PROJECTION_BATCH = 7
    insert_events([{"timestamp": T0, "project_id": project.project_id, **e} for e in events])
    shuffled = events[:]
    rng.shuffle(shuffled)
    for n in range(0, len(shuffled), 40):  # another order, in three transactions
        insert_events([{"timestamp": T0, "project_id": other_project.project_id, **e} for e in shuffled[n : n + 40]])
    run_projections(["event_properties"])
    assert_verified()

    def of(project_id):
        return [[row[1:] for row in table_rows(table) if row[0] == project_id] for table in TABLES]

    assert of(project.project_id) == of(other_project.project_id)
    assert any(row[-1] for row in of(project.project_id)[0]), "some key should be past the cap"
    assert of(project.project_id)[1], "some key should keep its values"


def test_erasure_leaves_exactly_the_others_contribution_and_may_bring_values_back(project, monkeypatch):
    monkeypatch.setattr(event_properties, "VALUE_CAP", 3)
    load(project.project_id, [
        {"distinct_id": "keep", "properties": {"n": 1, "plan": "pro"}},
        {"distinct_id": "keep", "properties": {"n": 2, "plan": "pro"}},
        {"distinct_id": "gone", "properties": {"n": 3, "plan": "pro", "only_gone": "x"}},
        {"distinct_id": "gone", "properties": {"n": 4, "plan": "free"}},
    ])  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT high_cardinality FROM rm_event_property_keys WHERE key = 'n'")
        assert cursor.fetchone() == (True,)
    erasure = erase_person(project_id=project.project_id, distinct_ids=["gone"])
    assert erasure.rows_by_projection["event_properties"] > 0
    assert_verified()
    erased = [table_rows(table) for table in TABLES]
    # Exactly what the remaining events alone give.
    replay(projection_get("event_properties"))
    assert [table_rows(table) for table in TABLES] == erased
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, event_count, high_cardinality FROM rm_event_property_keys ORDER BY key")
        assert cursor.fetchall() == [("n", 2, False), ("plan", 2, False)]
        cursor.execute("SELECT key, value::text, event_count FROM rm_event_property_values ORDER BY 1, 2")
        assert cursor.fetchall() == [("n", "1", 1), ("n", "2", 1), ("plan", '"pro"', 2)]


def test_a_drifted_count_refuses_the_erasure(project):
    load(project.project_id, [{"distinct_id": "gone", "properties": {"plan": "pro"}}])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rm_event_property_values SET event_count = 0")
    with pytest.raises(event_properties.ReadModelDrift):
        erase_person(project_id=project.project_id, distinct_ids=["gone"])


# --- the pickers' endpoints ----------------------------------------------------------------


def test_top_event_types_are_the_event_counts_most_first(client, project):
    load(project.project_id, [{"event_type": name} for name in ["a", "b", "b", "c", "c", "c"]])
    body = get(client, "event-types/", project.personal_api_key, limit=2).json()
    assert body["results"] == [{"event_type": "c", "count": 3}, {"event_type": "b", "count": 2}]
    everything = get(client, "event-types/", project.personal_api_key).json()["results"]
    assert everything == get(client, "events/event_counts/", project.personal_api_key).json()["results"]


def test_another_projects_properties_are_not_listed(client, project, other_project):
    load(other_project.project_id, [{"event_type": "e", "properties": {"plan": "pro"}}])
    assert keys(client, project, "e") == []
    assert values(client, project, "e", "plan") == {"results": [], "high_cardinality": None}
    assert keys(client, other_project, "e") == [{"key": "plan", "count": 1, "high_cardinality": False}]


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("event-properties/", {}, "event_type"),
        ("event-properties/", {"event_type": "e\x00"}, "event_type"),
        ("event-properties/", {"event_type": "e", "limit": "0"}, "limit"),
        ("event-property-values/", {"key": "plan"}, "event_type"),
        ("event-property-values/", {"event_type": "e"}, "key"),
        ("event-property-values/", {"event_type": "e", "key": "k" * 201}, "key"),
        ("event-types/", {"limit": "1001"}, "limit"),
        ("event-types/", {"after": "2026-05-02", "before": "2026-05-01"}, "after"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(client, project, path, query, field):
    response = get(client, path, project.personal_api_key, **query)
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400, "invalid_parameter", field,
    )  # fmt: skip
