"""Feature-flag exposures: each `$feature_flag_called` event is one exposure of a user to a flag's
variant. Per (project, flag, user) the first variant, when, every variant seen and how many
(schema.FLAG_EXPOSURES); per flag, UTC day and variant the exposures (schema.FLAG_EXPOSURE_DAYS).

Events arrive in position order, not time order (mobile SDKs send old events late): every
upsert is a commutative merge (least, union, sum), so any batching and order give one read model.
"""

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

from contracts import schema
from contracts.json_text import compact_json, decode_json
from projections.projection import ReadModelDrift, StoredEvent, VerifyQuery
from projections.upsert import upsert

EXPOSURE_EVENT: Final = "$feature_flag_called"
FLAG_PROPERTY: Final = "$feature_flag"
RESPONSE_PROPERTY: Final = "$feature_flag_response"

ExposureKey = tuple[int, str, str]
DayKey = tuple[int, str, date, str]


@dataclass
class Exposure:
    first_variant: str
    first_at: datetime
    variants: set[str]
    exposure_count: int


@dataclass
class Changes:
    exposures: dict[ExposureKey, Exposure] = field(default_factory=dict)
    days: Counter[DayKey] = field(default_factory=Counter)


def exposure_of(properties: Any) -> tuple[str, str] | None:
    """(flag key, variant) of a `$feature_flag_called` event's decoded properties, or None when
    `$feature_flag` is not a non-empty string (then the event is not an exposure). The variant:
    a string response as is; true 'true'; false, null or none 'false'; other JSON its compact text."""
    if not isinstance(properties, dict):
        return None
    flag_key = properties.get(FLAG_PROPERTY)
    if not isinstance(flag_key, str) or not flag_key:
        return None
    response = properties.get(RESPONSE_PROPERTY)
    if isinstance(response, str):
        variant = response
    elif response is True:
        variant = "true"
    elif response is None or response is False:
        variant = "false"
    else:
        variant = compact_json(response)
    return flag_key, variant


class FlagExposures:
    name: str = "flag_exposures"
    tables: Sequence[str] = (schema.FLAG_EXPOSURES.name, schema.FLAG_EXPOSURE_DAYS.name)
    # Past retention (projections/retention.py): a user first exposed at or after the watermark
    # (first_at is their earliest exposure: every one of theirs is retained); a day after it.
    retained_windows: Mapping[str, str] = {
        schema.FLAG_EXPOSURES.name: "{t}.first_at >= %(retained_from)s",
        schema.FLAG_EXPOSURE_DAYS.name: "({t}.day::timestamp AT TIME ZONE 'UTC') >= %(retained_from)s",
    }

    def load(self, cursor: Any, tables: Mapping[str, str], checkpoint: tuple[str, int]) -> None:
        return None

    def property_types(self, inputs: Any) -> Collection[str]:
        return (EXPOSURE_EVENT,)

    def apply(self, events: Sequence[StoredEvent], inputs: None = None) -> Changes:
        changes = Changes()
        exposures = changes.exposures
        for event in events:
            if event.event_type != EXPOSURE_EVENT:
                continue
            exposure = exposure_of(decode_json(event.properties))
            if exposure is None:
                continue
            flag_key, variant = exposure
            moment = event.timestamp
            changes.days[(event.project_id, flag_key, moment.astimezone(UTC).date(), variant)] += 1
            key = (event.project_id, flag_key, event.distinct_id)
            seen = exposures.get(key)
            if seen is None:
                exposures[key] = Exposure(variant, moment, {variant}, 1)
                continue
            seen.exposure_count += 1
            seen.variants.add(variant)
            # The earliest exposure; at one instant, the smallest variant (code point order,
            # as the SQL side's COLLATE "C").
            if (moment, variant) < (seen.first_at, seen.first_variant):
                seen.first_at, seen.first_variant = moment, variant
        return changes

    def write(self, cursor: Any, changes: Changes, tables: Mapping[str, str]) -> None:
        if changes.exposures:
            upsert(
                cursor,
                table=schema.FLAG_EXPOSURES,
                into=tables[schema.FLAG_EXPOSURES.name],
                # Each a commutative merge, so batches may come in any time order.
                update="""first_variant = CASE
                        WHEN (EXCLUDED.first_at, EXCLUDED.first_variant COLLATE "C")
                             < (t.first_at, t.first_variant COLLATE "C")
                        THEN EXCLUDED.first_variant ELSE t.first_variant END,
                    first_at = least(t.first_at, EXCLUDED.first_at),
                    variants = CASE WHEN EXCLUDED.variants <@ t.variants THEN t.variants ELSE
                        (SELECT array_agg(DISTINCT v COLLATE "C" ORDER BY v COLLATE "C")
                         FROM unnest(t.variants || EXCLUDED.variants) v) END,
                    exposure_count = t.exposure_count + EXCLUDED.exposure_count""",
                rows=(
                    (*key, seen.first_variant, seen.first_at, sorted(seen.variants), seen.exposure_count)
                    for key, seen in changes.exposures.items()
                ),
            )
        if changes.days:
            upsert(
                cursor,
                table=schema.FLAG_EXPOSURE_DAYS,
                into=tables[schema.FLAG_EXPOSURE_DAYS.name],
                update="exposure_count = t.exposure_count + EXCLUDED.exposure_count",
                rows=((*key, n) for key, n in changes.days.items()),
            )

    def erase(
        self,
        cursor: Any,
        tables: Mapping[str, str],
        project_id: int,
        distinct_ids: Sequence[str],
        upto: tuple[str, int],
    ) -> int:
        """Delete the ids' exposure rows; subtract their exposures at or before `upto`, recomputed
        from their raw events (still there), from the day counts, deleting those that reach zero."""
        exposures, days = tables[schema.FLAG_EXPOSURES.name], tables[schema.FLAG_EXPOSURE_DAYS.name]
        theirs = EXPOSURES_SQL.replace(
            "{upto}",
            "(e.xact_id, e.position) <= (%(xact_id)s::xid8, %(position)s)"
            " AND e.project_id = %(project_id)s AND e.distinct_id = ANY(%(distinct_ids)s)",
        )
        same_key = "(d.flag_key, d.day, d.variant) = (s.flag_key, s.day, s.variant)"
        # TRICKY: one statement, so every part sees the same snapshot; a day row is either
        # deleted (all its exposures were these ids') or lowered, never both.
        cursor.execute(
            f"""WITH share AS (
                    SELECT flag_key, ("timestamp" AT TIME ZONE 'UTC')::date AS day, variant, count(*) AS n
                    FROM ({theirs}) x GROUP BY 1, 2, 3),
                emptied AS (
                    DELETE FROM {days} d USING share s
                    WHERE d.project_id = %(project_id)s AND {same_key} AND d.exposure_count = s.n
                    RETURNING 1),
                lowered AS (
                    UPDATE {days} d SET exposure_count = d.exposure_count - s.n FROM share s
                    WHERE d.project_id = %(project_id)s AND {same_key} AND d.exposure_count <> s.n
                    RETURNING d.exposure_count),
                gone AS (
                    DELETE FROM {exposures} WHERE project_id = %(project_id)s AND distinct_id = ANY(%(distinct_ids)s)
                    RETURNING 1)
                SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM share), (SELECT count(*) FROM emptied),
                       (SELECT count(*) FROM lowered), (SELECT count(*) FROM lowered WHERE exposure_count < 0)""",
            {"project_id": project_id, "distinct_ids": list(distinct_ids), "xact_id": upto[0], "position": upto[1]},
        )
        gone, shares, emptied, lowered, negative = cursor.fetchone()
        if emptied + lowered != shares or negative:
            raise ReadModelDrift(
                f"{days}: {shares - emptied - lowered} day counts missing and {negative} smaller than the"
                f" exposures of the erased ids; verify and replay {self.name}"
            )
        return int(gone + emptied + lowered)

    def verify_queries(self) -> list[VerifyQuery]:
        return [
            VerifyQuery(
                schema.FLAG_EXPOSURES,
                f"""SELECT project_id, flag_key, distinct_id,
                           (array_agg(variant ORDER BY "timestamp", variant COLLATE "C"))[1],
                           min("timestamp"),
                           array_agg(DISTINCT variant COLLATE "C" ORDER BY variant COLLATE "C"),
                           count(*)
                    FROM ({EXPOSURES_SQL}) x GROUP BY 1, 2, 3""",
            ),
            VerifyQuery(
                schema.FLAG_EXPOSURE_DAYS,
                f"""SELECT project_id, flag_key, ("timestamp" AT TIME ZONE 'UTC')::date, variant, count(*)
                    FROM ({EXPOSURES_SQL}) x GROUP BY 1, 2, 3, 4""",
            ),
        ]


# The exposures among the events up to {upto}, recomputed in SQL from the raw properties: the
# same rules as exposure_of, written a second time on purpose (verify checks one against the other).
EXPOSURES_SQL: Final = f"""
    SELECT e.project_id, e.properties ->> '{FLAG_PROPERTY}' AS flag_key, e.distinct_id, e."timestamp",
           CASE WHEN r IS NULL OR r = 'null'::jsonb OR r = 'false'::jsonb THEN 'false'
                WHEN r = 'true'::jsonb THEN 'true'
                WHEN jsonb_typeof(r) = 'string' THEN r #>> '{{}}'
                ELSE projection_json_compact(r) END AS variant
    FROM {schema.EVENTS} e, LATERAL (SELECT e.properties -> '{RESPONSE_PROPERTY}' AS r) response
    WHERE {{upto}} AND e.event_type = '{EXPOSURE_EVENT}'
      AND jsonb_typeof(e.properties -> '{FLAG_PROPERTY}') = 'string' AND e.properties ->> '{FLAG_PROPERTY}' <> ''
"""
