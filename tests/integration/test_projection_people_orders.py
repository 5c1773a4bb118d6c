"""The same events delivered in any order, some twice, through the real event store, with the
runner's small batches in between: always the same rows in the people tables, and verify
clean. Identity merges depend on order, so this is the property that matters most."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from command_side import event_store
from contracts import schema
from contracts.captured import BufferEntry, EventCaptured
from contracts.user_sets import decode
from projections.registry import projection_get
from projections.verify import verify
from tests.projection_helpers import project, table_rows

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TABLES = (
    schema.PERSON_DISTINCT_IDS, schema.PERSONS, schema.PERSON_PROPERTIES, schema.IDENTITY_LINKS, schema.PERSON_COHORTS,
)  # fmt: skip


def event(distinct_id, minutes, event_type="e", project_id=1, **properties):
    return (project_id, EventCaptured(
        uuid=uuid.uuid4(), event_type=event_type, distinct_id=distinct_id, timestamp=T0 + timedelta(minutes=minutes),
        received_at=T0, client_timestamp=None, sent_at=None, skew_ms=None, session_id=None, device_id=None,
        app_version=None, os_name=None, os_version=None, properties_json=json.dumps(properties).encode(),
    ))  # fmt: skip


def identify(user, anon, minutes, **properties):
    return event(user, minutes, "$identify", **{"$anon_distinct_id": anon}, **properties)


EVENTS = [
    event("anon1", 0, **{"$set": {"plan": "free"}, "$set_once": {"source": "ad"}}),
    event("anon1", 1),
    identify("A", "anon1", 5, **{"$set": {"email": "a@x"}}),
    identify("B", "anon1", 6),  # refused: anon1 is A's by then
    identify("B", "anon1", 4),  # ... unless this one, earlier, sorts first: it does
    event("anon2", 2, **{"$set": {"plan": "pro"}}),
    identify("A", "anon2", 7),
    event("A", 8, "$create_alias", alias="a-mail"),
    event("a-mail", 9, **{"$unset": ["plan"]}),
    event("B", 10, "$create_alias", alias="A"),  # both identified: refused
    identify("C", "anon3", 3),
    identify("D", "anon3", 3),  # the same instant: (kind, distinct_id, other_id) orders them
    event("anon3", 3, **{"$set": {"n": 1}}),
    event("anon3", 3, **{"$set": {"n": 2}}),  # the same instant: the greater JSON text wins
    event("C", 11, "$identify"),
    event("lonely", 12, **{"$set_once": {"x": [1, {"y": None}]}}),
    identify("A", "anon1", 5, project_id=2),
    event("anon1", 0, project_id=2, **{"$set": {"plan": "other project"}}),
]
REFERENCE: dict[str, dict] = {}


def people_rows() -> dict[str, list]:
    """Every row; a cohort's set as its numbers (one set may serialize two ways: Roaring keeps
    a container as an array or a run where both take the same bytes)."""
    rows = {table.name: table_rows(table.name) for table in TABLES}
    rows[schema.PERSON_COHORTS.name] = [(*row[:3], list(decode(row[3]))) for row in rows[schema.PERSON_COHORTS.name]]
    return rows


def reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE tidelog_events, tidelog_event_ids, projection_checkpoints, "
            + ", ".join(table.name for table in TABLES)
        )


def deliver(indexes: list[int]) -> None:
    event_store.append([BufferEntry(project_id=EVENTS[i][0], events=[EVENTS[i][1]]) for i in indexes])


def reference() -> dict[str, list]:
    if not REFERENCE:
        reset()
        deliver(list(range(len(EVENTS))))
        project(["people"])
        REFERENCE.update(people_rows())
    return REFERENCE


@seed(8)
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    order=st.permutations(range(len(EVENTS))),
    twice=st.lists(st.integers(0, len(EVENTS) - 1), max_size=6),
    cuts=st.lists(st.integers(1, 6), min_size=1, max_size=8),
    batch=st.integers(1, 4),
)
def test_any_delivery_order_and_duplicates_give_the_same_people(settings_fixture, order, twice, cuts, batch):
    expected = reference()
    reset()
    settings_fixture.TIDELOG_PROJECTION_BATCH = batch
    deliveries = list(order) + twice
    start = 0
    for cut in cuts:
        deliver(deliveries[start : start + cut])
        project(["people"])  # batches of `batch` events in between deliveries
        start += cut
    deliver(deliveries[start:])
    project(["people"])
    assert people_rows() == expected
    assert verify(projection_get("people")).differences == []


@pytest.fixture
def settings_fixture(settings):
    return settings


def test_the_reference_holds_merges_refusals_and_both_projects():
    REFERENCE.clear()  # computed afresh: verify below reads this test's database
    rows = reference()
    outcomes = {(row[0], row[2], row[3]): row[5] for row in rows[schema.IDENTITY_LINKS.name]}
    assert outcomes == {
        (1, "A", "anon1"): "refused_both_identified",
        (1, "B", "anon1"): "merged",
        (1, "A", "anon2"): "merged",
        (1, "A", "a-mail"): "merged",
        (1, "B", "A"): "refused_both_identified",
        (1, "C", "anon3"): "merged",
        (1, "D", "anon3"): "refused_both_identified",
        (1, "C", "C"): "same",
        (2, "A", "anon1"): "merged",
    }
    assert verify(projection_get("people")).differences == []


def erase(distinct_ids_by_project: dict[int, list[str]]) -> None:
    """As the erasure does: under the runner's lock, the read model's rows, then the events."""
    from django.db import transaction

    from projections.runner import lock_key, raw_cursor

    people = projection_get("people")
    with transaction.atomic(), raw_cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", lock_key("people"))
        cursor.execute(f"SELECT xact_id::text, position FROM {schema.CHECKPOINTS} WHERE name = 'people'")
        upto = cursor.fetchone()
        for project_id, distinct_ids in distinct_ids_by_project.items():
            people.erase(cursor, {t: t for t in people.tables}, project_id, distinct_ids, upto)
            cursor.execute(
                "DELETE FROM tidelog_events WHERE project_id = %s AND distinct_id = ANY(%s)", [project_id, distinct_ids]
            )


ALL_IDS = sorted({(project_id, e.distinct_id) for project_id, e in EVENTS} | {(1, "anon3"), (1, "a-mail")})


@seed(8)
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(erased=st.sets(st.sampled_from(ALL_IDS), min_size=1, max_size=5), first=st.integers(0, len(EVENTS)))
def test_after_an_erasure_the_people_are_what_the_remaining_events_alone_give(settings_fixture, erased, first):
    reset()
    settings_fixture.TIDELOG_PROJECTION_BATCH = 3
    deliver(list(range(first)))
    project(["people"])
    by_project: dict[int, list[str]] = {}
    for project_id, distinct_id in sorted(erased):
        by_project.setdefault(project_id, []).append(distinct_id)
    erase(by_project)
    deliver(list(range(first, len(EVENTS))))  # later events, erased ids' among them
    project(["people"])
    assert verify(projection_get("people")).differences == []
    after = people_rows()
    remaining = [
        i for i, (project_id, e) in enumerate(EVENTS) if i >= first or (project_id, e.distinct_id) not in erased
    ]
    reset()
    deliver(remaining)
    project(["people"])
    assert people_rows() == after
