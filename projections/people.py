"""People: every distinct_id seen and the person it belongs to (schema.PERSON_DISTINCT_IDS), the
merges `$identify` / `$create_alias` asked for (IDENTITY_LINKS), person properties per distinct_id
(PERSON_PROPERTIES) and each person merged over its ids (PERSONS). The rules are in people/.

Counters and property rows are commutative upserts. A merge depends on the ORDER of a component's
links, so a batch with links recomputes each component it touches from all of its links, in the
links' own order (people.identity.merge): any delivery order and batching give one read model.
Never recomputes more than the components and persons a batch touched.
"""

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

from contracts import schema
from contracts.events import CREATE_ALIAS, IDENTIFY
from contracts.json_text import compact_json, decode_json
from contracts.limits import MAX_PERSON_PROPERTY_KEY_LENGTH
from people.identity import IDENTIFY_KIND, Link, Partition, link_of, merge, person_id_of
from people.properties import (
    PERSON_PROPERTY_KEYS,
    PropertyRow,
    json_object,
    person_properties,
    property_rows,
)
from projections import person_cohorts
from projections.projection import StoredEvent, VerifyQuery
from projections.upsert import stage_rows, upsert

DistinctIdKey = tuple[int, str]
PropertyKey = tuple[int, str, str]
LinkKey = tuple[int, str, str, str]
PersonKey = tuple[int, uuid.UUID]

PENDING: Final = ""
"""A new link's outcome until its component is recomputed, in the same transaction."""


@dataclass
class Seen:
    first_seen: datetime
    last_seen: datetime
    event_count: int


@dataclass
class Changes:
    distinct_ids: dict[DistinctIdKey, Seen] = field(default_factory=dict)
    properties: dict[PropertyKey, PropertyRow] = field(default_factory=dict)
    links: dict[LinkKey, datetime] = field(default_factory=dict)


def _raw_jsonb(text: str | None) -> Jsonb | None:
    """JSON text passed through as it is (psycopg would dump a str as a JSON string)."""
    return None if text is None else Jsonb(text, dumps=_as_is)


def _as_is(text: Any) -> str:
    return str(text)


class People:
    name: str = "people"
    tables: Sequence[str] = (
        schema.PERSON_DISTINCT_IDS.name,
        schema.PERSONS.name,
        schema.PERSON_PROPERTIES.name,
        schema.PERSON_ALIASES.name,
        schema.PERSON_ALIAS_VERSIONS.name,
        schema.IDENTITY_LINKS.name,
        schema.PERSON_COHORTS.name,
    )
    deferred_indexes: Sequence[str] = ("rm_persons_list", "rm_persons_properties")
    """Read by the query side only (the people list, property filters): a replay builds them
    once it has caught up (projections/replay.py)."""

    def load(self, cursor: Any, tables: Mapping[str, str], checkpoint: tuple[str, int]) -> None:
        return None

    def property_types(self, inputs: Any) -> Collection[str]:
        return (IDENTIFY, CREATE_ALIAS)

    def property_keys(self, inputs: Any) -> Collection[str]:
        return PERSON_PROPERTY_KEYS

    def apply(self, events: Sequence[StoredEvent], inputs: None = None) -> Changes:
        changes = Changes()
        seen_ids = changes.distinct_ids
        for event in events:
            key = (event.project_id, event.distinct_id)
            moment = event.timestamp
            seen = seen_ids.get(key)
            if seen is None:
                seen_ids[key] = Seen(moment, moment, 1)
            else:
                seen.event_count += 1
                if moment < seen.first_seen:
                    seen.first_seen = moment
                if moment > seen.last_seen:
                    seen.last_seen = moment
            if event.properties is None:
                continue
            properties = decode_json(event.properties)
            for property_key, row in property_rows(properties, moment):
                stored = changes.properties.setdefault((event.project_id, event.distinct_id, property_key), row)
                if stored is not row:
                    stored.add(row)
            link = link_of(event.event_type, event.distinct_id, properties)
            if link is not None:
                link_key = (event.project_id, link[0], event.distinct_id, link[1])
                first_at = changes.links.get(link_key)
                if first_at is None or moment < first_at:
                    changes.links[link_key] = moment
        return changes

    def write(self, cursor: Any, changes: Changes, tables: Mapping[str, str]) -> None:
        seeds: dict[int, set[str]] = defaultdict(set)
        if changes.links:
            upsert(
                cursor,
                table=schema.IDENTITY_LINKS,
                into=tables[schema.IDENTITY_LINKS.name],
                update="first_at = least(t.first_at, EXCLUDED.first_at)",
                rows=((*key, first_at, PENDING) for key, first_at in changes.links.items()),
            )
            for project_id, _kind, distinct_id, other_id in changes.links:
                seeds[project_id].update((distinct_id, other_id))
        if changes.properties:
            upsert(
                cursor,
                table=schema.PERSON_PROPERTIES,
                into=tables[schema.PERSON_PROPERTIES.name],
                # Each a commutative merge: latest $set (ties: the greater JSON text), earliest
                # $set_once (ties: the smaller), latest $unset. As PropertyRow.add.
                update="""
                    set_value = CASE WHEN t.set_at IS NULL OR (EXCLUDED.set_at IS NOT NULL
                            AND (EXCLUDED.set_at, projection_json_compact(EXCLUDED.set_value) COLLATE "C")
                              > (t.set_at, projection_json_compact(t.set_value) COLLATE "C"))
                        THEN EXCLUDED.set_value ELSE t.set_value END,
                    set_at = greatest(t.set_at, EXCLUDED.set_at),
                    once_value = CASE WHEN t.once_at IS NULL OR (EXCLUDED.once_at IS NOT NULL
                            AND (EXCLUDED.once_at, projection_json_compact(EXCLUDED.once_value) COLLATE "C")
                              < (t.once_at, projection_json_compact(t.once_value) COLLATE "C"))
                        THEN EXCLUDED.once_value ELSE t.once_value END,
                    once_at = least(t.once_at, EXCLUDED.once_at),
                    unset_at = greatest(t.unset_at, EXCLUDED.unset_at)""",
                rows=(
                    (
                        *key,
                        _raw_jsonb(row.set_value),
                        row.set_at,
                        _raw_jsonb(row.once_value),
                        row.once_at,
                        row.unset_at,
                    )
                    for key, row in changes.properties.items()
                ),
            )
        touched: set[PersonKey] = set()
        if changes.distinct_ids:
            for project_id, person_id, new_linked_ids in self._upsert_distinct_ids(
                cursor, changes.distinct_ids, tables
            ):
                touched.add((project_id, person_id))
                # TRICKY: an id first named as another's $anon_distinct_id or alias, sending its
                # first event only now: its new row has its own person, but its component says
                # otherwise. Recompute that component too.
                seeds[project_id].update(new_linked_ids)
        remapped: set[PersonKey] = set()
        for project_id, distinct_ids in seeds.items():
            # The persons the components' ids had before and have now (a batch id whose person
            # changed here is among them).
            remapped |= recompute_components(cursor, tables, project_id, distinct_ids)
        # Only a person that lost ids can be left with none.
        recompute_persons(cursor, tables, touched | remapped, emptied=remapped)

    def _upsert_distinct_ids(
        self, cursor: psycopg.Cursor, seen: Mapping[DistinctIdKey, Seen], tables: Mapping[str, str]
    ) -> list[tuple[int, uuid.UUID, list[str]]]:
        """Upsert the ids' counters (a new id: its own person). Return each of their persons,
        with the new ids among them that some link names as its other id."""
        into = tables[schema.PERSON_DISTINCT_IDS.name]
        stage = stage_rows(
            cursor,
            table=schema.PERSON_DISTINCT_IDS,
            into=into,
            rows=(
                (
                    project_id,
                    distinct_id,
                    person_id_of(project_id, distinct_id),
                    ids.first_seen,
                    ids.last_seen,
                    ids.event_count,
                )
                for (project_id, distinct_id), ids in seen.items()
            ),
        )
        names = schema.PERSON_DISTINCT_IDS.column_list()
        links = tables[schema.IDENTITY_LINKS.name]
        # TRICKY: xmax = 0 only on the rows this statement inserted (an updated row carries its
        # updater's transaction id): PostgreSQL's one way to tell them apart in an upsert.
        cursor.execute(
            f"""WITH upserted AS (
                    INSERT INTO {into} AS t ({names}) SELECT {names} FROM {stage}
                    ON CONFLICT (project_id, distinct_id) DO UPDATE SET
                        first_seen = least(t.first_seen, EXCLUDED.first_seen),
                        last_seen = greatest(t.last_seen, EXCLUDED.last_seen),
                        event_count = t.event_count + EXCLUDED.event_count
                    RETURNING t.project_id, t.distinct_id, t.person_id, t.xmax = 0 AS is_new)
                SELECT u.project_id, u.person_id,
                       coalesce(array_agg(u.distinct_id) FILTER (WHERE u.is_new AND EXISTS (
                           SELECT 1 FROM {links} l WHERE l.project_id = u.project_id AND l.other_id = u.distinct_id)),
                           '{{}}')
                FROM upserted u GROUP BY u.project_id, u.person_id"""
        )
        return cursor.fetchall()

    def erase(
        self, cursor: Any, tables: Mapping[str, str], project_id: int, distinct_ids: Collection[str], upto: Any = None
    ) -> int:
        """Delete the rows of these distinct_ids: theirs in PERSON_DISTINCT_IDS and
        PERSON_PROPERTIES, the links they asked for, their persons once empty; recompute the
        components and persons that lose a link or an id. Call it under the runner's lock, in
        the transaction that deletes their events (every one up to the checkpoint, `upto`).

        A link another id asked for, naming an erased id as its $anon_distinct_id or alias,
        stays: its event is not the erased ids' and stays too, and the read model must remain
        what the remaining events give (verify). Its component is recomputed without the
        erased ids' links. Returns the rows deleted (recomputed rows of others not counted)."""
        erased = sorted(set(distinct_ids))
        if not erased:
            return 0
        ids = tables[schema.PERSON_DISTINCT_IDS.name]
        links = tables[schema.IDENTITY_LINKS.name]
        cursor.execute(
            f"SELECT DISTINCT person_id FROM {ids} WHERE project_id = %s AND distinct_id = ANY(%s)",
            [project_id, erased],
        )
        touched: set[PersonKey] = {(project_id, person_id) for (person_id,) in cursor.fetchall()}
        cursor.execute(
            f"""DELETE FROM {links} WHERE project_id = %s AND kind IN ('identify', 'alias')
                AND distinct_id = ANY(%s) RETURNING other_id""",
            [project_id, erased],
        )
        deleted: int = cursor.rowcount
        neighbours = {other_id for (other_id,) in cursor.fetchall()}
        cursor.execute(
            f"SELECT distinct_id FROM {links} WHERE project_id = %s AND other_id = ANY(%s)", [project_id, erased]
        )
        neighbours.update(distinct_id for (distinct_id,) in cursor.fetchall())
        cursor.execute(f"DELETE FROM {ids} WHERE project_id = %s AND distinct_id = ANY(%s)", [project_id, erased])
        deleted += cursor.rowcount
        cursor.execute(
            f"DELETE FROM {tables[schema.PERSON_PROPERTIES.name]} WHERE project_id = %s AND distinct_id = ANY(%s)",
            [project_id, erased],
        )
        deleted += cursor.rowcount
        cursor.execute(
            f"""WITH unaliased AS (
                    DELETE FROM {tables[schema.PERSON_ALIASES.name]} a USING {schema.USER_NUMBERS} n
                    WHERE a.project_id = %s AND n.project_id = a.project_id AND n.number = a.number
                      AND n.distinct_id = ANY(%s)
                    RETURNING a.project_id),
                bumped AS ({bump_alias_versions(tables, "SELECT DISTINCT project_id FROM unaliased")})
                SELECT count(*) FROM unaliased""",
            [project_id, erased],
        )
        deleted += cursor.fetchone()[0]
        neighbours.difference_update(erased)
        if neighbours:
            touched |= recompute_components(cursor, tables, project_id, neighbours)
        recompute_persons(cursor, tables, touched)
        return deleted

    def verify_queries(self) -> list[VerifyQuery]:
        # One verify asks three queries for the same columns: computed once, for its snapshot.
        computed: dict[tuple[Any, ...], dict[str, list[Any]]] = {}

        def verify_identity(cursor: Any, upto: Mapping[str, Any]) -> dict[str, list[Any]]:
            key = (id(cursor), upto["xact_id"], upto["position"])
            if key not in computed:
                computed[key] = identity_columns(cursor, upto)
            return computed[key]

        return [
            VerifyQuery(
                schema.PERSON_DISTINCT_IDS, f"SELECT * FROM ({_EXPECTED_DISTINCT_IDS}) d", params=verify_identity
            ),
            VerifyQuery(schema.PERSON_PROPERTIES, _EXPECTED_PROPERTIES),
            VerifyQuery(
                schema.IDENTITY_LINKS,
                """SELECT * FROM unnest(%(link_project)s::int8[], %(link_kind)s::text[], %(link_distinct_id)s::text[],
                                        %(link_other_id)s::text[], %(link_first_at)s::timestamptz[],
                                        %(link_outcome)s::text[])""",
                params=verify_identity,
            ),
            VerifyQuery(schema.PERSONS, _EXPECTED_PERSONS, params=verify_identity),
            VerifyQuery(schema.PERSON_ALIASES, _EXPECTED_ALIASES, params=verify_identity),
            person_cohorts.verify_query(_EXPECTED_PERSONS, verify_identity),
        ]


# --- Components and persons, recomputed where a batch or an erasure touched them ----------------


def component_of(cursor: Any, tables: Mapping[str, str], project_id: int, seeds: Iterable[str]) -> list[Link]:
    """Every link of the components (closure over the links by either id) holding the seeds."""
    links = tables[schema.IDENTITY_LINKS.name]
    # Both directions, each by its index: the primary key (project_id, kind, distinct_id, …) and
    # (project_id, other_id).
    cursor.execute(
        f"""WITH RECURSIVE component(distinct_id) AS (
                SELECT unnest(%(seeds)s::text[])
                UNION
                SELECT n.distinct_id FROM component c CROSS JOIN LATERAL (
                    SELECT l.other_id FROM {links} l
                    WHERE l.project_id = %(project_id)s AND l.kind IN ('identify', 'alias')
                      AND l.distinct_id = c.distinct_id
                    UNION ALL
                    SELECT l.distinct_id FROM {links} l
                    WHERE l.project_id = %(project_id)s AND l.other_id = c.distinct_id) n(distinct_id)
            )
            -- An array, not a join: the planner cannot guess the component's size and would
            -- hash the whole table (measured: 20 ms over 100,000 links, against 0.1 ms).
            SELECT l.first_at, l.kind, l.distinct_id, l.other_id FROM {links} l
            WHERE l.project_id = %(project_id)s AND l.kind IN ('identify', 'alias')
              AND l.distinct_id = ANY(ARRAY(SELECT distinct_id FROM component))""",
        {"project_id": project_id, "seeds": sorted(seeds)},
    )
    return [Link(*row) for row in cursor.fetchall()]


def recompute_components(
    cursor: Any, tables: Mapping[str, str], project_id: int, seeds: Iterable[str]
) -> set[PersonKey]:
    """Recompute the components holding the seeds from all their links: each id's person (an id
    in no link: its own) and each link's outcome. Return the persons their ids belonged to
    before and belong to now (PERSONS must be recomputed for them)."""
    seed_ids = set(seeds)
    links = component_of(cursor, tables, project_id, seed_ids)
    partition: Partition = merge(project_id, links)
    person_of = dict(partition.person_of)
    for distinct_id in seed_ids - person_of.keys():
        person_of[distinct_id] = person_id_of(project_id, distinct_id)
    ids = sorted(person_of)
    persons = tables[schema.PERSON_DISTINCT_IDS.name]
    cursor.execute(
        f"""UPDATE {persons} d SET person_id = v.person_id
            FROM unnest(%s::text[], %s::uuid[]) v(distinct_id, person_id)
            WHERE d.project_id = %s AND d.distinct_id = v.distinct_id AND d.person_id <> v.person_id
            RETURNING (SELECT person_id FROM {persons} o
                       WHERE o.project_id = d.project_id AND o.distinct_id = d.distinct_id), d.person_id""",
        [ids, [person_of[i] for i in ids], project_id],
    )
    touched: set[PersonKey] = set()
    for old, new in cursor.fetchall():
        touched.add((project_id, old))
        touched.add((project_id, new))
    if partition.outcomes:
        keys = sorted(partition.outcomes)
        cursor.execute(
            f"""UPDATE {tables[schema.IDENTITY_LINKS.name]} l SET outcome = v.outcome
                FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) v(kind, distinct_id, other_id, outcome)
                WHERE l.project_id = %s AND l.kind = v.kind AND l.distinct_id = v.distinct_id
                  AND l.other_id = v.other_id AND l.outcome <> v.outcome""",
            [
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [partition.outcomes[k] for k in keys],
                project_id,
            ],
        )
    return touched


def recompute_persons(
    cursor: Any,
    tables: Mapping[str, str],
    touched: Collection[PersonKey],
    *,
    emptied: Collection[PersonKey] | None = None,
) -> None:
    """Make the PERSONS rows of these persons what their distinct_ids give now: counters and
    seen times summed, properties merged (people.properties), identified if any of their ids
    asked for an `$identify`. A person left with no id is deleted (looked for among `emptied`,
    default all)."""
    if not touched:
        return
    ordered = sorted(touched)
    keys = [[project_id for project_id, _ in ordered], [person_id for _, person_id in ordered]]
    ids = tables[schema.PERSON_DISTINCT_IDS.name]
    cursor.execute(
        f"""SELECT d.project_id, d.person_id, p.key, p.set_value::text, p.set_at, p.once_value::text, p.once_at,
                   p.unset_at
            FROM unnest(%s::int8[], %s::uuid[]) k(project_id, person_id)
            JOIN {ids} d ON d.project_id = k.project_id AND d.person_id = k.person_id
            JOIN {tables[schema.PERSON_PROPERTIES.name]} p
              ON p.project_id = d.project_id AND p.distinct_id = d.distinct_id""",
        keys,
    )
    rows: dict[PersonKey, list[tuple[str, PropertyRow]]] = defaultdict(list)
    for project_id, person_id, key, set_value, set_at, once_value, once_at, unset_at in cursor.fetchall():
        rows[(project_id, person_id)].append(
            (key, PropertyRow(_compact(set_value), set_at, _compact(once_value), once_at, unset_at))
        )
    merged = {person: json_object(person_properties(person_rows)) for person, person_rows in rows.items()}
    with_properties = sorted(merged)
    numbers = schema.USER_NUMBERS
    # Every id of these persons numbered in the user directory (projections/user_numbers.py: only
    # ids new to it reach the INSERT, in one order), so each person has its number, the smallest.
    cursor.execute(
        f"""INSERT INTO {numbers} (project_id, distinct_id)
            SELECT d.project_id, d.distinct_id
            FROM unnest(%s::int8[], %s::uuid[]) k(project_id, person_id)
            JOIN {ids} d ON d.project_id = k.project_id AND d.person_id = k.person_id
            WHERE NOT EXISTS (SELECT 1 FROM {numbers} o
                              WHERE o.project_id = d.project_id AND o.distinct_id = d.distinct_id)
            ORDER BY 1, 2
            ON CONFLICT DO NOTHING""",
        keys,
    )
    persons = tables[schema.PERSONS.name]
    # TRICKY: the outer SELECT reads PERSONS in the statement's snapshot, before the upsert: each
    # person's old row beside its new one. Only the persons whose cohort (day first seen, number)
    # changed come back (person_cohorts.move).
    cursor.execute(
        f"""WITH upserted AS (
            INSERT INTO {persons} AS t ({schema.PERSONS.column_list()})
            SELECT d.project_id, d.person_id,
                   bool_or(x.identified),
                   coalesce(min(v.properties::text)::jsonb, '{{}}'::jsonb),
                   min(d.first_seen), max(d.last_seen), sum(d.event_count)::int8, count(*),
                   (array_agg(n.number ORDER BY x.identified DESC, n.number))[1]
            FROM unnest(%s::int8[], %s::uuid[]) k(project_id, person_id)
            JOIN {ids} d ON d.project_id = k.project_id AND d.person_id = k.person_id
            JOIN {numbers} n ON n.project_id = d.project_id AND n.distinct_id = d.distinct_id
            CROSS JOIN LATERAL (SELECT EXISTS (
                SELECT 1 FROM {tables[schema.IDENTITY_LINKS.name]} l
                WHERE l.project_id = d.project_id AND l.kind = '{IDENTIFY_KIND}' AND l.distinct_id = d.distinct_id
            ) AS identified) x
            LEFT JOIN unnest(%s::int8[], %s::uuid[], %s::text[]) v(project_id, person_id, properties)
              ON v.project_id = d.project_id AND v.person_id = d.person_id
            GROUP BY d.project_id, d.person_id
            ON CONFLICT (project_id, person_id) DO UPDATE SET
                is_identified = EXCLUDED.is_identified, properties = EXCLUDED.properties,
                first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen,
                event_count = EXCLUDED.event_count, distinct_id_count = EXCLUDED.distinct_id_count,
                number = EXCLUDED.number
            RETURNING t.project_id, t.person_id, {_UTC_DAY.format("t")} AS day, t.number)
            SELECT u.project_id, {_UTC_DAY.format("o")}, o.number, u.day, u.number
            FROM upserted u LEFT JOIN {persons} o ON o.project_id = u.project_id AND o.person_id = u.person_id
            WHERE o.person_id IS NULL OR o.number IS DISTINCT FROM u.number OR {_UTC_DAY.format("o")} <> u.day""",
        [
            *keys,
            [project_id for project_id, _ in with_properties],
            [person_id for _, person_id in with_properties],
            [merged[person] for person in with_properties],
        ],
    )
    left: list[person_cohorts.Place] = []
    taken: list[person_cohorts.Place] = []
    for project_id, old_day, old_number, day, number in cursor.fetchall():
        if old_number is not None:
            left.append((project_id, old_day, old_number))
        taken.append((project_id, day, number))
    # The aliases of these persons' ids: each id but the person's own number maps to it. A
    # project whose aliases changed gets a new version (bump_alias_versions), in this statement.
    aliases = tables[schema.PERSON_ALIASES.name]
    cursor.execute(
        f"""WITH members AS (
                SELECT d.project_id, n.number, p.number AS canonical
                FROM unnest(%s::int8[], %s::uuid[]) k(project_id, person_id)
                JOIN {ids} d ON d.project_id = k.project_id AND d.person_id = k.person_id
                JOIN {numbers} n ON n.project_id = d.project_id AND n.distinct_id = d.distinct_id
                JOIN {persons} p ON p.project_id = d.project_id AND p.person_id = d.person_id),
            unaliased AS (
                DELETE FROM {aliases} a USING members m
                WHERE a.project_id = m.project_id AND a.number = m.number AND m.number = m.canonical
                RETURNING a.project_id),
            aliased AS (
                INSERT INTO {aliases} AS a (project_id, number, canonical)
                SELECT project_id, number, canonical FROM members WHERE number <> canonical
                ON CONFLICT (project_id, number) DO UPDATE SET canonical = EXCLUDED.canonical
                WHERE a.canonical <> EXCLUDED.canonical
                RETURNING a.project_id)
            {bump_alias_versions(tables, "SELECT project_id FROM unaliased UNION SELECT project_id FROM aliased")}""",
        keys,
    )
    gone = sorted(touched if emptied is None else emptied)
    if gone:
        cursor.execute(
            f"""DELETE FROM {persons} p
                USING unnest(%s::int8[], %s::uuid[]) k(project_id, person_id)
                WHERE p.project_id = k.project_id AND p.person_id = k.person_id
                  AND NOT EXISTS (SELECT 1 FROM {ids} d
                                  WHERE d.project_id = p.project_id AND d.person_id = p.person_id)
                RETURNING p.project_id, {_UTC_DAY.format("p")}, p.number""",
            [[project_id for project_id, _ in gone], [person_id for _, person_id in gone]],
        )
        left.extend((project_id, day, number) for project_id, day, number in cursor.fetchall() if number is not None)
    person_cohorts.move(cursor, tables[schema.PERSON_COHORTS.name], left=left, taken=taken)


def bump_alias_versions(tables: Mapping[str, str], changed: str) -> str:
    """The statement giving each project of `changed` (a query of distinct project ids whose
    PERSON_ALIASES rows changed) a new alias version: this transaction's id, which no other
    transaction has, so a version seen twice means the same aliases (schema.PERSON_ALIAS_VERSIONS)."""
    return f"""INSERT INTO {tables[schema.PERSON_ALIAS_VERSIONS.name]} AS v (project_id, version)
            SELECT project_id, pg_current_xact_id() FROM ({changed}) c
            ON CONFLICT (project_id) DO UPDATE SET version = EXCLUDED.version"""


_UTC_DAY: Final = "({0}.first_seen AT TIME ZONE 'UTC')::date"
"""The UTC day the PERSONS row named {0} in a query was first seen: its cohort (PERSON_COHORTS)."""


def _compact(text: str | None) -> str | None:
    """jsonb's text (with spaces) as compact JSON: the spelling values are ordered by."""
    return None if text is None else compact_json(decode_json(text))


# --- Verify: the four tables recomputed from raw events -------------------------------------


def identity_columns(cursor: Any, upto: Mapping[str, Any]) -> dict[str, list[Any]]:
    """What SQL cannot compute alone: the links' outcomes and every id's person (people.identity
    over all the links the events up to the checkpoint ask for), as columns for verify's SQL."""
    cursor.execute(
        f"""SELECT e.project_id, e.event_type, e.distinct_id, e."timestamp",
                   jsonb_build_object('$anon_distinct_id', e.properties -> '$anon_distinct_id',
                                      'alias', e.properties -> 'alias')::text
            FROM {schema.EVENTS} e
            WHERE {_UPTO} AND e.event_type IN ('{IDENTIFY}', '{CREATE_ALIAS}')""",
        upto,
    )
    first_at: dict[LinkKey, datetime] = {}
    for project_id, event_type, distinct_id, moment, properties in cursor.fetchall():
        decoded = {k: v for k, v in decode_json(properties).items() if v is not None}
        link = link_of(event_type, distinct_id, decoded)
        if link is not None:
            key = (project_id, link[0], distinct_id, link[1])
            first_at[key] = min(moment, first_at.get(key, moment))
    by_project: dict[int, list[Link]] = defaultdict(list)
    for (project_id, kind, distinct_id, other_id), moment in first_at.items():
        by_project[project_id].append(Link(moment, kind, distinct_id, other_id))
    partitions = {project_id: merge(project_id, links) for project_id, links in by_project.items()}
    cursor.execute(f"SELECT DISTINCT e.project_id, e.distinct_id FROM {schema.EVENTS} e WHERE {_UPTO}", upto)
    columns: dict[str, list[Any]] = defaultdict(list)
    for project_id, distinct_id in cursor.fetchall():
        partition = partitions.get(project_id)
        person_id = partition.person_of.get(distinct_id) if partition else None
        columns["id_project"].append(project_id)
        columns["id_distinct_id"].append(distinct_id)
        columns["id_person"].append(person_id or person_id_of(project_id, distinct_id))
    for (project_id, kind, distinct_id, other_id), moment in sorted(first_at.items()):
        columns["link_project"].append(project_id)
        columns["link_kind"].append(kind)
        columns["link_distinct_id"].append(distinct_id)
        columns["link_other_id"].append(other_id)
        columns["link_first_at"].append(moment)
        columns["link_outcome"].append(partitions[project_id].outcomes[(kind, distinct_id, other_id)])
    for project_id, partition in sorted(partitions.items()):
        for person_id in sorted(partition.identified):
            columns["identified_project"].append(project_id)
            columns["identified_person"].append(person_id)
    names = ("id_project", "id_distinct_id", "id_person", *(f"link_{c}" for c in ("project", "kind", "distinct_id",
             "other_id", "first_at", "outcome")), "identified_project", "identified_person")  # fmt: skip
    return {name: columns[name] for name in names}


_UPTO: Final = "(e.xact_id, e.position) <= (%(xact_id)s::xid8, %(position)s)"

# The ids that asked for an `$identify`, from verify's link columns (identity_columns).
_IDENTIFIED_IDS: Final = f"""
    SELECT DISTINCT project_id, distinct_id
    FROM unnest(%(link_project)s::int8[], %(link_kind)s::text[], %(link_distinct_id)s::text[])
         l(project_id, kind, distinct_id)
    WHERE kind = '{IDENTIFY_KIND}'
"""

_EXPECTED_DISTINCT_IDS: Final = f"""
    SELECT e.project_id, e.distinct_id, m.person_id, min(e."timestamp"), max(e."timestamp"), count(*)
    FROM {schema.EVENTS} e
    JOIN unnest(%(id_project)s::int8[], %(id_distinct_id)s::text[], %(id_person)s::uuid[])
         m(project_id, distinct_id, person_id) ON m.project_id = e.project_id AND m.distinct_id = e.distinct_id
    WHERE {{upto}}
    GROUP BY e.project_id, e.distinct_id, m.person_id
"""

# Per (distinct_id, key): each $set, $set_once and $unset of the events up to {upto}, written in
# SQL a second time on purpose (verify checks one against the other).
_PROPERTY_ROWS: Final = f"""
    SELECT project_id, distinct_id, key,
           (array_agg(value ORDER BY ts DESC, projection_json_compact(value) COLLATE "C" DESC)
                FILTER (WHERE op = 's'))[1] AS set_value,
           max(ts) FILTER (WHERE op = 's') AS set_at,
           (array_agg(value ORDER BY ts, projection_json_compact(value) COLLATE "C")
                FILTER (WHERE op = 'o'))[1] AS once_value,
           min(ts) FILTER (WHERE op = 'o') AS once_at,
           max(ts) FILTER (WHERE op = 'u') AS unset_at
    FROM (
        SELECT e.project_id, e.distinct_id, s.key, s.value, e."timestamp" AS ts, 's' AS op
        FROM {schema.EVENTS} e, jsonb_each(e.properties -> '$set') s
        WHERE {{upto}} AND jsonb_typeof(e.properties -> '$set') = 'object'
        UNION ALL
        SELECT e.project_id, e.distinct_id, s.key, s.value, e."timestamp", 'o'
        FROM {schema.EVENTS} e, jsonb_each(e.properties -> '$set_once') s
        WHERE {{upto}} AND jsonb_typeof(e.properties -> '$set_once') = 'object'
        UNION ALL
        SELECT e.project_id, e.distinct_id, u.value #>> '{{}}', NULL, e."timestamp", 'u'
        FROM {schema.EVENTS} e, jsonb_array_elements(e.properties -> '$unset') u
        WHERE {{upto}} AND jsonb_typeof(e.properties -> '$unset') = 'array' AND jsonb_typeof(u.value) = 'string'
    ) x
    WHERE length(key) <= {MAX_PERSON_PROPERTY_KEY_LENGTH}
    GROUP BY project_id, distinct_id, key
"""
_EXPECTED_PROPERTIES: Final = f"SELECT * FROM ({_PROPERTY_ROWS}) p"

# A person's properties in SQL (people.properties.person_properties in Python): per key over its
# ids, the latest $set if after the latest $unset, else the earliest $set_once if after it.
_EXPECTED_PERSONS: Final = f"""
    WITH ids AS ({_EXPECTED_DISTINCT_IDS}),
    identified_ids AS ({_IDENTIFIED_IDS}),
    rows AS ({_PROPERTY_ROWS}),
    keys AS (
        SELECT i.project_id, i.person_id, r.key,
               (array_agg(r.set_value ORDER BY r.set_at DESC, projection_json_compact(r.set_value) COLLATE "C" DESC)
                    FILTER (WHERE r.set_at IS NOT NULL))[1] AS set_value,
               max(r.set_at) AS set_at,
               (array_agg(r.once_value ORDER BY r.once_at, projection_json_compact(r.once_value) COLLATE "C")
                    FILTER (WHERE r.once_at IS NOT NULL))[1] AS once_value,
               min(r.once_at) AS once_at, max(r.unset_at) AS unset_at
        FROM ids i(project_id, distinct_id, person_id)
        JOIN rows r ON r.project_id = i.project_id AND r.distinct_id = i.distinct_id
        GROUP BY 1, 2, 3
    ),
    properties AS (
        SELECT project_id, person_id, jsonb_object_agg(key, value) AS properties
        FROM (SELECT project_id, person_id, key,
                     CASE WHEN set_at > unset_at OR (set_at IS NOT NULL AND unset_at IS NULL) THEN set_value
                          WHEN once_at > unset_at OR (once_at IS NOT NULL AND unset_at IS NULL) THEN once_value
                     END AS value
              FROM keys) k
        WHERE value IS NOT NULL
        GROUP BY 1, 2
    )
    SELECT i.project_id, i.person_id,
           coalesce(bool_or(x.person_id IS NOT NULL), false),
           coalesce(min(p.properties::text)::jsonb, '{{}}'::jsonb),
           min(i.first_seen), max(i.last_seen), sum(i.event_count)::int8, count(*),
           (array_agg(n.number ORDER BY (i.project_id, i.distinct_id) IN (SELECT * FROM identified_ids) DESC,
                                        n.number))[1]
    FROM ids i(project_id, distinct_id, person_id, first_seen, last_seen, event_count)
    JOIN {schema.USER_NUMBERS} n ON n.project_id = i.project_id AND n.distinct_id = i.distinct_id
    LEFT JOIN unnest(%(identified_project)s::int8[], %(identified_person)s::uuid[]) x(project_id, person_id)
      ON x.project_id = i.project_id AND x.person_id = i.person_id
    LEFT JOIN properties p ON p.project_id = i.project_id AND p.person_id = i.person_id
    GROUP BY i.project_id, i.person_id
"""

_EXPECTED_ALIASES: Final = f"""
    WITH identified_ids AS ({_IDENTIFIED_IDS})
    SELECT project_id, number, canonical FROM (
        SELECT i.project_id, n.number,
               first_value(n.number) OVER (
                   PARTITION BY i.project_id, i.person_id
                   ORDER BY (i.project_id, i.distinct_id) IN (SELECT * FROM identified_ids) DESC, n.number
               ) AS canonical
        FROM ({_EXPECTED_DISTINCT_IDS}) i(project_id, distinct_id, person_id)
        JOIN {schema.USER_NUMBERS} n ON n.project_id = i.project_id AND n.distinct_id = i.distinct_id) m
    WHERE number <> canonical
"""
