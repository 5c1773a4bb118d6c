"""people against real PostgreSQL: identity merges, person properties and counters through the
real event store and runner; live == verify == replay; erasure leaves what the remaining events give."""

import importlib
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import connection, transaction

from contracts import schema
from contracts.user_sets import decode
from people.identity import MERGED, REFUSED_BOTH_IDENTIFIED, SAME, person_id_of
from projections.registry import projection_get
from projections.replay import replay
from projections.runner import lock_key, raw_cursor
from projections.verify import verify
from tests.projection_helpers import insert_events, project, table_rows

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PEOPLE = "people"


def event(distinct_id, minutes=0, event_type="app_opened", project_id=1, **properties):
    return {
        "event_type": event_type,
        "distinct_id": distinct_id,
        "timestamp": T0 + timedelta(minutes=minutes),
        "project_id": project_id,
        "properties": properties,
    }


def identify(user, anon=None, minutes=0, **properties):
    if anon is not None:
        properties["$anon_distinct_id"] = anon
    return event(user, minutes, "$identify", **properties)


def alias(distinct_id, other, minutes=0):
    return event(distinct_id, minutes, "$create_alias", alias=other)


def people_rows():
    rows = {table.name: table_rows(table.name) for table in (
        schema.PERSON_DISTINCT_IDS, schema.PERSONS, schema.PERSON_PROPERTIES, schema.IDENTITY_LINKS)}  # fmt: skip
    rows[schema.PERSON_COHORTS.name] = cohorts()
    return rows


def cohorts() -> dict[tuple[int, date], list[int]]:
    """(project, day) -> the numbers of the persons first seen that day, as stored (the count
    checked against the set)."""
    found = {}
    for project_id, day, count, blob in table_rows(schema.PERSON_COHORTS.name):
        numbers = list(decode(blob))
        assert count == len(numbers)
        found[(project_id, day)] = numbers
    return found


def cohorts_of_persons() -> dict[tuple[int, date], list[int]]:
    """The same, grouped from rm_persons."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT project_id, (first_seen AT TIME ZONE 'UTC')::date, array_agg(number ORDER BY number)
               FROM rm_persons GROUP BY 1, 2"""
        )
        return {(project_id, day): numbers for project_id, day, numbers in cursor.fetchall()}


def person_of() -> dict[str, uuid.UUID]:
    return {row[1]: row[2] for row in table_rows(schema.PERSON_DISTINCT_IDS.name)}


def persons() -> dict[uuid.UUID, tuple]:
    """person_id -> (is_identified, properties decoded, first_seen, last_seen, events, ids); its
    number in sets of users is numbers()'s."""
    return {row[1]: (row[2], json.loads(row[3]), *row[4:-1]) for row in table_rows(schema.PERSONS.name)}


def numbers() -> tuple[dict[str, int], dict[uuid.UUID, int], dict[int, int]]:
    """Each id's number in the user directory, each person's, and the aliases (number -> person's)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT distinct_id, number FROM tidelog_user_numbers")
        directory = dict(cursor.fetchall())
        cursor.execute("SELECT person_id, number FROM rm_persons")
        person_numbers = dict(cursor.fetchall())
        cursor.execute("SELECT number, canonical FROM rm_person_aliases")
        return directory, person_numbers, dict(cursor.fetchall())


def assert_verified():
    report = verify(projection_get(PEOPLE))
    assert report.differences == []


def test_an_anonymous_device_that_identifies_becomes_one_identified_person_with_both_ids():
    insert_events([
        event("anon", 0, **{"$set": {"plan": "free"}}),
        event("anon", 5),
        identify("user-1", "anon", 10, **{"$set": {"email": "a@example.com"}}),
        event("user-1", 20, **{"$set": {"plan": "pro"}}),
        event("stranger", 3),
    ])  # fmt: skip
    project([PEOPLE])
    ids = person_of()
    assert ids["anon"] == ids["user-1"] == person_id_of(1, "user-1")
    assert ids["stranger"] == person_id_of(1, "stranger")
    merged = persons()[ids["user-1"]]
    assert merged == (True, {"plan": "pro", "email": "a@example.com"}, T0, T0 + timedelta(minutes=20), 4, 2)
    assert persons()[ids["stranger"]][0] is False
    assert [row[1:] for row in table_rows(schema.IDENTITY_LINKS.name)] == [
        ("identify", "user-1", "anon", T0 + timedelta(minutes=10), MERGED)
    ]
    # In sets of users the person is the identified id's number, though "anon" was numbered
    # first: only the anonymous days' sets hold an alias to swap (query_side/user_sets.py).
    directory, person_numbers, aliases = numbers()
    assert directory["anon"] < directory["user-1"]
    assert person_numbers[ids["user-1"]] == directory["user-1"]
    assert person_numbers[ids["stranger"]] == directory["stranger"]
    assert aliases == {directory["anon"]: directory["user-1"]}
    assert_verified()


def test_an_anon_already_identified_as_a_is_refused_to_user_b_and_the_refusal_is_recorded():
    insert_events([event("anon", 0), identify("A", "anon", 1), event("B", 2), identify("B", "anon", 3)])
    project([PEOPLE])
    ids = person_of()
    assert ids["anon"] == ids["A"] != ids["B"]
    outcomes = {row[2:4]: row[5] for row in table_rows(schema.IDENTITY_LINKS.name)}
    assert outcomes == {("A", "anon"): MERGED, ("B", "anon"): REFUSED_BOTH_IDENTIFIED}
    assert persons()[ids["B"]][0] is True
    assert_verified()


def test_a_late_link_that_sorts_first_reorders_the_merges_of_its_component(settings):
    settings.TIDELOG_PROJECTION_BATCH = 1
    insert_events([event("anon", 0), identify("B", "anon", 30)])
    project([PEOPLE])
    assert person_of()["anon"] == person_of()["B"]
    insert_events([identify("A", "anon", 10)])  # earlier, sent late: A had anon first
    project([PEOPLE])
    ids = person_of()
    assert ids["anon"] == ids["A"] != ids["B"]
    outcomes = {row[2:4]: row[5] for row in table_rows(schema.IDENTITY_LINKS.name)}
    assert outcomes == {("A", "anon"): MERGED, ("B", "anon"): REFUSED_BOTH_IDENTIFIED}
    assert set(persons()) == {ids["A"], ids["B"]}
    assert_verified()


def test_an_id_first_named_as_an_alias_that_sends_events_later_joins_its_person(settings):
    settings.TIDELOG_PROJECTION_BATCH = 1
    insert_events([alias("main", "other", 0)])
    project([PEOPLE])
    assert set(person_of()) == {"main"}  # "other" has sent nothing yet
    insert_events([event("other", 5, **{"$set_once": {"source": "ad"}})])
    project([PEOPLE])
    ids = person_of()
    assert ids["other"] == ids["main"]
    assert persons() == {ids["main"]: (False, {"source": "ad"}, T0, T0 + timedelta(minutes=5), 2, 2)}
    assert_verified()


def test_identify_without_an_anon_id_marks_the_sender_identified():
    insert_events([event("u", 0), identify("u", None, 1)])
    project([PEOPLE])
    assert persons()[person_id_of(1, "u")][0] is True
    assert [row[5] for row in table_rows(schema.IDENTITY_LINKS.name)] == [SAME]
    assert_verified()


def test_properties_set_set_once_and_unset_by_event_time_whatever_the_arrival(settings):
    settings.TIDELOG_PROJECTION_BATCH = 1
    insert_events([
        event("u", 30, **{"$set": {"a": 1}}),
        event("u", 10, **{"$set": {"a": 2}, "$set_once": {"b": "late"}}),  # older: loses "a"
        event("u", 5, **{"$set_once": {"b": "first"}}),
        event("u", 20, **{"$set": {"c": True}}),
        event("u", 25, **{"$unset": ["c"]}),
        event("u", 1, **{"$unset": ["b"]}),  # before the $set_once: b stays
    ])  # fmt: skip
    project([PEOPLE])
    assert persons()[person_id_of(1, "u")][1] == {"a": 1, "b": "first"}
    assert_verified()


def test_projects_are_apart():
    insert_events([identify("u", "anon", 0, project_id=1), event("anon", 1, project_id=2)])
    project([PEOPLE])
    assert {(row[0], row[1]): row[2] for row in table_rows(schema.PERSON_DISTINCT_IDS.name)} == {
        (1, "u"): person_id_of(1, "u"),
        (2, "anon"): person_id_of(2, "anon"),
    }
    assert_verified()


def test_replay_rebuilds_the_same_rows_and_verify_finds_a_tampered_person():
    insert_events(
        [event(f"anon{i % 7}", i, **{"$set": {"n": i}, "$set_once": {"first": i}}) for i in range(40)]
        + [identify(f"user{i % 3}", f"anon{i}", 50 + i) for i in range(7)]
        + [alias("user0", "user1", 70), alias("user2", "mail", 71)]
    )
    project([PEOPLE])
    live = people_rows()
    assert_verified()
    assert replay(projection_get(PEOPLE)) == 49
    assert people_rows() == live
    assert_verified()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rm_persons SET properties = '{}' WHERE distinct_id_count > 1")
        cursor.execute("UPDATE rm_identity_links SET outcome = 'merged' WHERE kind = 'alias'")
        cursor.execute("UPDATE rm_person_cohorts SET person_count = person_count + 1")
    tables = {d.table for d in verify(projection_get(PEOPLE)).differences}
    assert tables == {schema.PERSONS.name, schema.IDENTITY_LINKS.name, schema.PERSON_COHORTS.name}


def erase(project_id, distinct_ids):
    people = projection_get(PEOPLE)
    with connection.cursor() as django_cursor:
        django_cursor.execute("BEGIN")
    cursor = raw_cursor()
    try:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", lock_key(PEOPLE))
        people.erase(cursor, {t: t for t in people.tables}, project_id, distinct_ids, None)
        cursor.execute(
            "DELETE FROM tidelog_events WHERE project_id = %s AND distinct_id = ANY(%s)",
            [project_id, list(distinct_ids)],
        )
        cursor.execute("COMMIT")
    except BaseException:
        cursor.execute("ROLLBACK")
        raise


def test_erasing_a_person_leaves_what_the_remaining_events_give():
    insert_events([
        event("anon", 0, **{"$set": {"name": "Ann"}}),
        identify("A", "anon", 1),
        identify("B", "anon", 2),  # refused: anon is A's
        event("B", 3, **{"$set": {"name": "Bob"}}),
        alias("B", "b-mail", 4),
        event("C", 5),
    ])  # fmt: skip
    project([PEOPLE])
    assert_verified()
    erase(1, ["A", "anon"])
    # B's $identify still names "anon": with A gone nothing refuses it any more.
    assert {row[2:4]: row[5] for row in table_rows(schema.IDENTITY_LINKS.name)} == {
        ("B", "anon"): MERGED,
        ("B", "b-mail"): MERGED,
    }
    assert set(person_of()) == {"B", "C"}
    assert persons()[person_id_of(1, "B")][1] == {"name": "Bob"}
    assert_verified()
    erase(1, ["B"])
    assert set(person_of()) == {"C"} and set(persons()) == {person_id_of(1, "C")}
    assert table_rows(schema.IDENTITY_LINKS.name) == [] and table_rows(schema.PERSON_PROPERTIES.name) == []
    assert_verified()


def test_a_persons_cohort_follows_its_first_seen_day_through_merges_late_events_and_erasure():
    day = timedelta(days=1)
    insert_events([event("U", 0), event("anon", 2 * 24 * 60), event("other", 24 * 60)])
    project([PEOPLE])
    directory, _, _ = numbers()
    u, anon, other = directory["U"], directory["anon"], directory["other"]
    assert cohorts() == cohorts_of_persons() == {
        (1, T0.date()): [u], (1, (T0 + day).date()): [other], (1, (T0 + 2 * day).date()): [anon]}  # fmt: skip
    # anon logs in as U: one person, first seen on U's day, numbered U's (identified); anon's day
    # is left with nobody and goes.
    insert_events([identify("U", "anon", 3 * 24 * 60)])
    project([PEOPLE])
    assert cohorts() == cohorts_of_persons() == {(1, T0.date()): [u], (1, (T0 + day).date()): [other]}
    assert_verified()
    # A late event of anon's, a day before U's first: the whole person moves to that day.
    insert_events([event("anon", -24 * 60)])
    project([PEOPLE])
    assert cohorts() == cohorts_of_persons() == {(1, (T0 - day).date()): [u], (1, (T0 + day).date()): [other]}
    assert_verified()
    erase(1, ["U"])  # anon stays, alone: its own number again, on its own first day
    assert cohorts() == cohorts_of_persons() == {(1, (T0 - day).date()): [anon], (1, (T0 + day).date()): [other]}
    assert_verified()
    erase(1, ["anon", "other"])
    assert cohorts() == {}
    assert_verified()


def test_the_migration_fills_the_cohorts_from_the_persons_that_exist():
    fill = importlib.import_module("projections.migrations.0009_person_cohorts").fill
    insert_events([event(f"anon{i}", i * 600) for i in range(12)] + [identify("A", "anon3", 7000)])
    insert_events([event("x", 60, project_id=2)])
    project([PEOPLE])
    kept = cohorts()
    assert len(kept) > 2
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM rm_person_cohorts")
    with transaction.atomic():  # as migrate runs it
        fill(None, SimpleNamespace(connection=connection))
    assert cohorts() == kept == cohorts_of_persons()
    assert_verified()


def test_the_runner_reads_properties_of_identity_events_and_of_events_with_person_keys_only():
    from projections.people import People
    from projections.runner import checkpoint_ensure, run_batch

    seen: list[tuple[str, str | None]] = []

    class Spy(People):
        name = "spy_people"

        def apply(self, events, inputs=None):
            seen.extend((e.distinct_id, e.properties) for e in events)
            return super().apply(events, inputs)

    insert_events([
        event("plain", 0, k=1),
        event("sets", 1, **{"$set": {"a": 1}}),
        event("unsets", 2, **{"$unset": ["a"]}),
        event("nested", 3, k={"$set": {"a": 1}}),  # not top-level: not read
        identify("ident", None, 4),
        alias("aliaser", "x", 5),
    ])  # fmt: skip
    checkpoint_ensure("spy_people")
    assert run_batch(Spy()) == 6
    assert {distinct_id: properties is not None for distinct_id, properties in seen} == {
        "plain": False, "sets": True, "unsets": True, "nested": False, "ident": True, "aliaser": True,
    }  # fmt: skip
