"""Event property keys and values, for the query side's pickers: per project and event type,
every top-level property key with how many events carry it, and each key's scalar values with
theirs, bounded. Never keeps more than VALUE_CAP values of a key: past it, none at all.

The bound is a rule on the whole set of events, so no delivery order or batching changes the
result: a key is high-cardinality exactly when its events hold more than VALUE_CAP distinct
eligible values (a set only grows as events come in); then it keeps no values, else all of them.
Changing VALUE_CAP or MAX_TEXT_LENGTH needs a replay of this projection.
"""

import json
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from psycopg.types.json import Jsonb

from contracts import schema
from projections.projection import ReadModelDrift, StoredEvent, VerifyQuery
from projections.upsert import stage_rows

VALUE_CAP: Final = 500
"""Distinct values a key may have and keep them; one more and it is high-cardinality."""
MAX_TEXT_LENGTH: Final = 200
"""Characters of a key, of a string value, and of a number as PostgreSQL spells it: longer
keys are not listed, longer values not kept (a primary key's btree entry holds ~2.7 kB)."""

KeyId = tuple[int, str, str]
"""(project_id, event_type, key)"""
Scalar = tuple[str, Any]
"""A value as compared: ('s', text), ('n', Decimal) or ('b', bool). Tagged, so that true and 1,
equal in Python, stay apart as they are in jsonb; Decimal, so that 1.0 and 1 are one value as
jsonb's numeric equality has them, and 0.1 and 0.10000000000000001 two."""

_TOO_LONG: Final = object()


def _number(token: str) -> Any:
    # The token as PostgreSQL's jsonb text spells it (the runner reads properties::text).
    return Decimal(token) if len(token) <= MAX_TEXT_LENGTH else _TOO_LONG


def _scalar(value: Any) -> Scalar | None:
    """The value's identity if the projection keeps values like it, else None."""
    if isinstance(value, str):
        return ("s", value) if len(value) <= MAX_TEXT_LENGTH else None
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, Decimal):
        return ("n", value)
    return None  # null, an object, an array, a number too long


def _json_text(scalar: Scalar) -> str:
    kind, value = scalar
    if kind == "s":
        return json.dumps(value)
    if kind == "b":
        return "true" if value else "false"
    # Normalized: one spelling per number (1.50 and 1.5 are one value; whichever came first
    # must not decide how it is stored).
    return str(value.normalize())


# _json_text's spelling of a number, in SQL: trim_scale drops the trailing zeros normalize() does.
_NORMALIZED: Final = "CASE WHEN jsonb_typeof(v) = 'number' THEN to_jsonb(trim_scale((v #>> '{}')::numeric)) ELSE v END"


def _identity(text: str) -> str:
    return text


_decode = json.JSONDecoder(parse_float=_number, parse_int=_number).decode


def _kept(v: str) -> str:
    """Whether the jsonb `v` is a value the projection keeps: verify's and erasure's _scalar."""
    return f"""(jsonb_typeof({v}) = 'boolean'
        OR (jsonb_typeof({v}) = 'string' AND length({v} #>> '{{}}') <= {MAX_TEXT_LENGTH})
        OR (jsonb_typeof({v}) = 'number' AND length({v}::text) <= {MAX_TEXT_LENGTH}))"""


def _pairs_sql(where: str) -> str:
    """(project_id, event_type, key, v, kept) of every top-level property of the events `e`
    matching `where`, keys of at most MAX_TEXT_LENGTH characters."""
    return f"""SELECT e.project_id, e.event_type, p.key, p.value AS v, {_kept("p.value")} AS kept
        FROM {schema.EVENTS} e
        CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(e.properties) = 'object' THEN e.properties END) p
        WHERE {where} AND length(p.key) <= {MAX_TEXT_LENGTH}"""


@dataclass
class Changes:
    keys: Counter[KeyId] = field(default_factory=Counter)
    values: Counter[tuple[KeyId, Scalar]] = field(default_factory=Counter)
    crowded: set[KeyId] = field(default_factory=set)
    """Keys with more than VALUE_CAP distinct values in this batch alone (their values dropped)."""


class EventProperties:
    name: str = "event_properties"
    tables: Sequence[str] = (schema.EVENT_PROPERTY_KEYS.name, schema.EVENT_PROPERTY_VALUES.name)
    reads_every_property: bool = True

    def load(self, cursor: Any, tables: Mapping[str, str], checkpoint: tuple[str, int]) -> frozenset[KeyId]:
        """The keys already high-cardinality: their values need not be looked at."""
        cursor.execute(
            f"SELECT project_id, event_type, key FROM {tables[schema.EVENT_PROPERTY_KEYS.name]} WHERE high_cardinality"
        )
        return frozenset((row[0], row[1], row[2]) for row in cursor.fetchall())

    def property_types(self, inputs: Any) -> Collection[str]:
        return ()  # every event's, by reads_every_property

    def apply(self, events: Sequence[StoredEvent], inputs: frozenset[KeyId] = frozenset()) -> Changes:
        changes = Changes()
        keys, values = changes.keys, changes.values
        # Events of one type often carry the very same properties (a screen name, a button):
        # each distinct text is decoded once and counted as many times as it occurs.
        texts = Counter((e.project_id, e.event_type, e.properties) for e in events if e.properties not in (None, "{}"))
        for (project_id, event_type, text), n in texts.items():
            properties = _decode(text)
            if not isinstance(properties, dict):
                continue
            for key, value in properties.items():
                if len(key) > MAX_TEXT_LENGTH:
                    continue
                key_id = (project_id, event_type, key)
                keys[key_id] += n
                if key_id in inputs:
                    continue
                scalar = _scalar(value)
                if scalar is not None:
                    values[(key_id, scalar)] += n
        distinct = Counter(key_id for key_id, _ in values)
        changes.crowded = {key_id for key_id, n in distinct.items() if n > VALUE_CAP}
        if changes.crowded:
            changes.values = Counter({pair: n for pair, n in values.items() if pair[0] not in changes.crowded})
        return changes

    def write(self, cursor: Any, changes: Changes, tables: Mapping[str, str]) -> None:
        if not changes.keys:
            return
        keys_table, values_table = tables[schema.EVENT_PROPERTY_KEYS.name], tables[schema.EVENT_PROPERTY_VALUES.name]
        names = schema.EVENT_PROPERTY_KEYS.column_list()
        staged_keys = stage_rows(
            cursor,
            table=schema.EVENT_PROPERTY_KEYS,
            into=keys_table,
            rows=((*key_id, n, key_id in changes.crowded) for key_id, n in changes.keys.items()),
        )
        cursor.execute(
            f"""INSERT INTO {keys_table} AS t ({names}) SELECT {names} FROM {staged_keys}
                ON CONFLICT (project_id, event_type, key) DO UPDATE
                SET event_count = t.event_count + EXCLUDED.event_count,
                    high_cardinality = t.high_cardinality OR EXCLUDED.high_cardinality"""
        )
        if changes.values:
            value_names = schema.EVENT_PROPERTY_VALUES.column_list()
            staged_values = stage_rows(
                cursor,
                table=schema.EVENT_PROPERTY_VALUES,
                into=values_table,
                rows=(
                    (*key_id, Jsonb(_json_text(scalar), dumps=_identity), n)
                    for (key_id, scalar), n in changes.values.items()
                ),
            )
            # Values of keys not high-cardinality only (those marked above included).
            cursor.execute(
                f"""INSERT INTO {values_table} AS t ({value_names})
                    SELECT {", ".join(f"s.{c}" for c in value_names.split(", "))} FROM {staged_values} s
                    JOIN {keys_table} k USING (project_id, event_type, key) WHERE NOT k.high_cardinality
                    ON CONFLICT (project_id, event_type, key, value) DO UPDATE
                    SET event_count = t.event_count + EXCLUDED.event_count"""
            )
            # The keys this batch took past the cap: marked...
            cursor.execute(
                f"""UPDATE {keys_table} k SET high_cardinality = true FROM (
                        SELECT v.project_id, v.event_type, v.key FROM {values_table} v
                        JOIN (SELECT DISTINCT project_id, event_type, key FROM {staged_values}) touched
                          USING (project_id, event_type, key)
                        GROUP BY 1, 2, 3 HAVING count(*) > {VALUE_CAP}) crowded
                    WHERE (k.project_id, k.event_type, k.key) = (crowded.project_id, crowded.event_type, crowded.key)"""
            )
        # ...and every key of the batch that is high-cardinality keeps no values.
        cursor.execute(
            f"""DELETE FROM {values_table} v USING {staged_keys} s, {keys_table} k
                WHERE (v.project_id, v.event_type, v.key) = (s.project_id, s.event_type, s.key)
                  AND (k.project_id, k.event_type, k.key) = (s.project_id, s.event_type, s.key)
                  AND k.high_cardinality"""
        )

    def erase(
        self,
        cursor: Any,
        tables: Mapping[str, str],
        project_id: int,
        distinct_ids: Sequence[str],
        upto: tuple[str, int],
    ) -> int:
        """Subtract the ids' events (at or before `upto`, recomputed from the raw events) from
        every count; a row reaching zero is deleted. A high-cardinality key they touched may
        fall back within the cap without them: its remaining events are counted again and,
        if so, its values recomputed from them (so the read model is as if they never were)."""
        keys_table, values_table = tables[schema.EVENT_PROPERTY_KEYS.name], tables[schema.EVENT_PROPERTY_VALUES.name]
        params = {"project_id": project_id, "distinct_ids": list(distinct_ids), "xact_id": upto[0], "position": upto[1]}
        theirs = (
            "e.project_id = %(project_id)s AND e.distinct_id = ANY(%(distinct_ids)s)"
            " AND (e.xact_id, e.position) <= (%(xact_id)s::xid8, %(position)s)"
        )
        # TRICKY: one statement, so every part sees the same snapshot (as event_aggregates' erase).
        cursor.execute(
            f"""WITH pairs AS ({_pairs_sql(theirs)}),
                key_share AS (SELECT event_type, key, count(*) AS n FROM pairs GROUP BY 1, 2),
                value_share AS (
                    SELECT p.event_type, p.key, p.v, count(*) AS n FROM pairs p
                    JOIN {keys_table} k
                      ON k.project_id = %(project_id)s AND (k.event_type, k.key) = (p.event_type, p.key)
                    WHERE p.kept AND NOT k.high_cardinality GROUP BY 1, 2, 3),
                keys_gone AS (
                    DELETE FROM {keys_table} k USING key_share s
                    WHERE k.project_id = %(project_id)s AND (k.event_type, k.key) = (s.event_type, s.key)
                      AND k.event_count = s.n RETURNING 1),
                keys_lowered AS (
                    UPDATE {keys_table} k SET event_count = k.event_count - s.n FROM key_share s
                    WHERE k.project_id = %(project_id)s AND (k.event_type, k.key) = (s.event_type, s.key)
                      AND k.event_count <> s.n RETURNING k.event_count),
                values_gone AS (
                    DELETE FROM {values_table} t USING value_share s
                    WHERE t.project_id = %(project_id)s AND (t.event_type, t.key, t.value) = (s.event_type, s.key, s.v)
                      AND t.event_count = s.n RETURNING 1),
                values_lowered AS (
                    UPDATE {values_table} t SET event_count = t.event_count - s.n FROM value_share s
                    WHERE t.project_id = %(project_id)s AND (t.event_type, t.key, t.value) = (s.event_type, s.key, s.v)
                      AND t.event_count <> s.n RETURNING t.event_count)
                SELECT (SELECT count(*) FROM key_share), (SELECT count(*) FROM keys_gone),
                       (SELECT count(*) FROM keys_lowered), (SELECT count(*) FROM keys_lowered WHERE event_count < 0),
                       (SELECT count(*) FROM value_share), (SELECT count(*) FROM values_gone),
                       (SELECT count(*) FROM values_lowered),
                       (SELECT count(*) FROM values_lowered WHERE event_count < 0)""",
            params,
        )
        key_shares, keys_gone, keys_lowered, keys_below, value_shares, values_gone, values_lowered, values_below = (
            cursor.fetchone()
        )
        if (
            keys_gone + keys_lowered != key_shares
            or values_gone + values_lowered != value_shares
            or (keys_below or values_below)
        ):
            raise ReadModelDrift(
                f"{keys_table} / {values_table}: counts missing or smaller than the events that make them up;"
                f" verify and replay {self.name}"
            )
        return int(keys_gone + keys_lowered + values_gone + values_lowered) + self._recount_crowded(
            cursor, keys_table, values_table, params, theirs
        )

    def _recount_crowded(
        self, cursor: Any, keys_table: str, values_table: str, params: dict[str, Any], theirs: str
    ) -> int:
        """For each high-cardinality key the erased events carried: if the other events at or
        before the checkpoint hold at most VALUE_CAP distinct kept values, unmark it and write
        them. Reads that key's events (every event of its type); erasure is rare."""
        cursor.execute(
            f"""SELECT DISTINCT p.event_type, p.key FROM ({_pairs_sql(theirs)}) p
                JOIN {keys_table} k ON k.project_id = p.project_id AND (k.event_type, k.key) = (p.event_type, p.key)
                WHERE k.high_cardinality""",
            params,
        )
        changed = 0
        others = (
            "e.project_id = %(project_id)s AND e.event_type = %(event_type)s"
            " AND NOT e.distinct_id = ANY(%(distinct_ids)s)"
            " AND (e.xact_id, e.position) <= (%(xact_id)s::xid8, %(position)s)"
        )
        for event_type, key in cursor.fetchall():
            found = {**params, "event_type": event_type, "key": key}
            cursor.execute(
                f"""SELECT count(*) FROM (
                        SELECT DISTINCT v FROM ({_pairs_sql(others)}) p WHERE p.key = %(key)s AND p.kept
                        LIMIT {VALUE_CAP + 1}) d""",
                found,
            )
            if cursor.fetchone()[0] > VALUE_CAP:
                continue
            cursor.execute(
                f"""INSERT INTO {values_table} ({schema.EVENT_PROPERTY_VALUES.column_list()})
                    SELECT project_id, event_type, key, {_NORMALIZED}, count(*) FROM ({_pairs_sql(others)}) p
                    WHERE p.key = %(key)s AND p.kept GROUP BY 1, 2, 3, 4""",
                found,
            )
            changed += cursor.rowcount
            cursor.execute(
                f"""UPDATE {keys_table} SET high_cardinality = false
                    WHERE project_id = %(project_id)s AND event_type = %(event_type)s AND key = %(key)s""",
                found,
            )
            changed += cursor.rowcount
        return changed

    def verify_queries(self) -> list[VerifyQuery]:
        per_key = f"""SELECT project_id, event_type, key, count(*) AS n,
                             count(DISTINCT v) FILTER (WHERE kept) > {VALUE_CAP} AS high_cardinality
                      FROM pairs GROUP BY 1, 2, 3"""
        pairs = f"WITH pairs AS ({_pairs_sql('{upto}')})"
        return [
            VerifyQuery(schema.EVENT_PROPERTY_KEYS, f"{pairs} SELECT * FROM ({per_key}) k"),
            VerifyQuery(
                schema.EVENT_PROPERTY_VALUES,
                f"""{pairs}, per_key AS ({per_key})
                    SELECT p.project_id, p.event_type, p.key, p.v, count(*) FROM pairs p
                    JOIN per_key k USING (project_id, event_type, key)
                    WHERE p.kept AND NOT k.high_cardinality GROUP BY 1, 2, 3, 4""",
            ),
        ]
