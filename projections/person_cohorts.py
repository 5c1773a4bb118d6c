"""Persons by the UTC day they were first seen (schema.PERSON_COHORTS), kept by the people
projection beside PERSONS: retention's cohorts read a set a day, not every person (a month at
10M events: 177k persons grouped in SQL, 60-80 ms of retention's ~110).

A person's row in the cohorts changes only when its first-seen day or its number does (a new
person, a merge, a split, an erasure), so recompute_persons passes only those moves here: each
as the (day, number) it leaves and the one it takes. Numbers are unique among a project's
persons (a person's is one of its own ids'), so a day's set is exactly its persons' numbers.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from contracts import schema
from contracts.user_sets import BitMap, decode, encode, fingerprint
from projections.projection import VerifyQuery
from projections.upsert import delete_keys, upsert

TABLE = schema.PERSON_COHORTS
Place = tuple[int, date, int]
"""(project_id, UTC day of first_seen, number): where a person stands in the cohorts."""


def move(cursor: Any, into: str, *, left: Iterable[Place], taken: Iterable[Place]) -> None:
    """Take each `left` number out of its day and put each `taken` one into its day, in that
    order (a number may leave a day and come back in the same call: a merged person keeping
    the smaller number). Under the people runner's lock, as every write of its tables."""
    removed: dict[tuple[int, date], BitMap] = defaultdict(BitMap)
    added: dict[tuple[int, date], BitMap] = defaultdict(BitMap)
    for project_id, day, number in left:
        removed[(project_id, day)].add(number)
    for project_id, day, number in taken:
        added[(project_id, day)].add(number)
    keys = sorted(removed.keys() | added.keys())
    if not keys:
        return
    cursor.execute(
        f"""SELECT t.project_id, t.day, t.persons FROM {into} t
            JOIN unnest(%s::int8[], %s::date[]) k(project_id, day) USING (project_id, day)""",
        [[project_id for project_id, _ in keys], [day for _, day in keys]],
    )
    stored = {(project_id, day): decode(blob) for project_id, day, blob in cursor.fetchall()}
    rows, gone = [], []
    for key in keys:
        persons = (stored.get(key, BitMap()) - removed.get(key, BitMap())) | added.get(key, BitMap())
        if persons:
            rows.append((*key, len(persons), encode(persons)))
        elif key in stored:
            gone.append(key)
    if rows:
        upsert(
            cursor, table=TABLE, into=into, update="person_count = EXCLUDED.person_count, persons = EXCLUDED.persons",
            rows=rows,
        )  # fmt: skip
    delete_keys(cursor, table=TABLE, into=into, keys=gone)


def verify_query(expected_persons: str, identity: Callable[[Any, Mapping[str, Any]], Mapping[str, Any]]) -> VerifyQuery:
    """The cohorts recomputed from the persons the raw events give (`expected_persons`: PERSONS'
    columns, with `identity`'s parameters), compared by each day's size and fingerprint."""
    names = ", ".join(column.name for column in schema.PERSONS.columns)
    expected = f"""
        SELECT project_id, (first_seen AT TIME ZONE 'UTC')::date, count(*)::int4,
               md5(string_agg(number::text, ',' ORDER BY number))
        FROM ({expected_persons}) p({names})
        GROUP BY 1, 2"""

    def params(cursor: Any, upto: Mapping[str, Any]) -> dict[str, Any]:
        cursor.execute(f"SELECT project_id, day, person_count, persons FROM {TABLE}")
        stored: dict[str, list[Any]] = {"cohort_project": [], "cohort_day": [], "cohort_count": [], "cohort_set": []}
        for project_id, day, count, blob in cursor.fetchall():
            stored["cohort_project"].append(project_id)
            stored["cohort_day"].append(day)
            stored["cohort_count"].append(count)
            stored["cohort_set"].append(fingerprint(decode(blob)))
        return {**identity(cursor, upto), **stored}

    actual = """SELECT * FROM unnest(%(cohort_project)s::int8[], %(cohort_day)s::date[], %(cohort_count)s::int4[],
                                      %(cohort_set)s::text[])"""
    return VerifyQuery(
        TABLE, expected, params=params, actual=actual, columns=["project_id", "day", "person_count", "persons"]
    )
