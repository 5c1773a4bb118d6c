"""Experiment conversions: every goal event of an experiment (not archived) whose time is inside
its window, one row per (experiment, user, time) in schema.EXPERIMENT_CONVERSIONS.

Experiments are created and edited after their goal events were projected. So at the start of
each batch, in the runner's transaction and under its lock, `load` reads the experiments and
backfills any whose goal (event, filter, window, archived) differs from the one its rows were
made for (schema.EXPERIMENT_BACKFILLS): its rows are deleted and recomputed from the events at
or below the checkpoint; the batch's `apply` then adds the events after it. Never partial: the
backfill commits with the batch and its checkpoint, or not at all.
"""

import hashlib
import itertools
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
import psycopg

from contracts import schema
from flags.definition import PropertyFilter
from flags.matching import Matcher, compile_filter
from projections.projection import StoredEvent, VerifyQuery
from projections.upsert import upsert

ConversionRow = tuple[int, int, str, datetime]

# Goal events a backfill with a filter reads (and matches in Python) per round trip.
BACKFILL_FETCH = 5_000


@dataclass(frozen=True)
class Experiment:
    """What conversions depend on, of one row of schema.EXPERIMENTS."""

    id: int
    project_id: int
    goal_event: str
    goal_filter_json: str | None
    """The filter as jsonb text (canonical: the fingerprint depends on it), None when unset."""
    start_at: datetime
    end_at: datetime | None
    archived: bool
    goal_filter: PropertyFilter | None = field(default=None, compare=False)
    goal_matches: Matcher | None = field(default=None, compare=False, repr=False)
    """flags.matching.matches for goal_filter, compiled once (compile_filter) rather than per event."""

    @classmethod
    def of_row(
        cls,
        id: int,
        project_id: int,
        goal_event: str,
        goal_filter_json: str | None,
        start_at: datetime,
        end_at: datetime | None,
        archived: bool,
    ) -> "Experiment":
        if goal_filter_json == "null":  # a JSON null is no filter, as SQL NULL
            goal_filter_json = None
        # A filter the command side let through but that does not decode raises here, loudly:
        # conversions computed without it would be silently wrong.
        goal_filter = None if goal_filter_json is None else msgspec.json.decode(goal_filter_json, type=PropertyFilter)
        goal_matches = None if goal_filter is None else compile_filter(goal_filter)
        return cls(id, project_id, goal_event, goal_filter_json, start_at, end_at, archived, goal_filter, goal_matches)

    def fingerprint(self) -> str:
        """Changes exactly when the experiment's set of conversions may change."""
        end = self.end_at.astimezone(UTC).isoformat() if self.end_at else ""
        text = "\x1f".join(
            (
                str(self.project_id),
                self.goal_event,
                self.goal_filter_json or "",
                self.start_at.astimezone(UTC).isoformat(),
                end,
                "archived" if self.archived else "",
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def is_in_window(self, moment: datetime) -> bool:
        return self.start_at <= moment and (self.end_at is None or moment <= self.end_at)

    def converts(self, moment: datetime, properties: Any) -> bool:
        """Whether a goal event of this experiment's project at `moment` with these decoded
        properties is a conversion."""
        if not self.is_in_window(moment):
            return False
        if self.goal_matches is None:
            return True
        return isinstance(properties, dict) and self.goal_matches(properties)


@dataclass(frozen=True)
class Goals:
    """apply's input: the experiments collecting now, by (project, goal event)."""

    by_event: Mapping[tuple[int, str], tuple[Experiment, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, experiments: Iterable[Experiment]) -> "Goals":
        by_event: dict[tuple[int, str], list[Experiment]] = {}
        for experiment in experiments:
            if not experiment.archived:
                by_event.setdefault((experiment.project_id, experiment.goal_event), []).append(experiment)
        return cls({key: tuple(found) for key, found in by_event.items()})

    def filtered_event_types(self) -> set[str]:
        return {
            experiment.goal_event
            for experiments in self.by_event.values()
            for experiment in experiments
            if experiment.goal_filter is not None
        }


_EXPERIMENTS_SQL: Final = (
    f"SELECT id, project_id, goal_event, goal_filter::text, start_at, end_at, archived FROM {schema.EXPERIMENTS}"
)

# The goal events of one experiment at or below a checkpoint (%(xact_id)s, %(position)s).
_CANDIDATES_WHERE: Final = """
    e.project_id = %(project_id)s AND e.event_type = %(goal_event)s
    AND e."timestamp" >= %(start_at)s AND (%(end_at)s::timestamptz IS NULL OR e."timestamp" <= %(end_at)s)
    AND (e.xact_id, e.position) <= (%(xact_id)s::xid8, %(position)s)
"""


def _candidate_params(experiment: Experiment, checkpoint: tuple[str, int]) -> dict[str, Any]:
    return {
        "project_id": experiment.project_id,
        "goal_event": experiment.goal_event,
        "start_at": experiment.start_at,
        "end_at": experiment.end_at,
        "xact_id": checkpoint[0],
        "position": checkpoint[1],
    }


def filtered_conversions(cursor: Any, experiment: Experiment, checkpoint: tuple[str, int]) -> Iterator[ConversionRow]:
    """The conversions of an experiment with a goal filter among the events at or below the
    checkpoint: candidates read in SQL, matched in Python (flags.matching has the operators)."""
    assert experiment.goal_filter is not None
    cursor.execute(
        f"""SELECT e.distinct_id, e."timestamp", e.properties::text FROM {schema.EVENTS} e
            WHERE {_CANDIDATES_WHERE}""",
        _candidate_params(experiment, checkpoint),
    )
    while rows := cursor.fetchmany(BACKFILL_FETCH):
        for distinct_id, moment, properties in rows:
            if experiment.converts(moment, json.loads(properties)):
                yield (experiment.project_id, experiment.id, distinct_id, moment)


@contextmanager
def _no_statement_timeout(cursor: Any) -> Iterator[None]:
    # TRICKY: a backfill reads a goal event's whole history, which may take longer than the
    # runner's statement timeout (meant for one batch): the rollback and its retry would time
    # out again, forever. Lifted for the backfills, then put back for the rest of the batch.
    # Only this projection waits (on its own lock) meanwhile.
    cursor.execute("SELECT current_setting('statement_timeout')")
    (batch_timeout,) = cursor.fetchone()
    cursor.execute("SELECT set_config('statement_timeout', '0', true)")
    yield
    cursor.execute("SELECT set_config('statement_timeout', %s, true)", [batch_timeout])


class ExperimentConversions:
    name: str = "experiment_conversions"
    tables: Sequence[str] = (schema.EXPERIMENT_CONVERSIONS.name, schema.EXPERIMENT_BACKFILLS.name)
    # Past retention (projections/retention.py): a goal event at or after the watermark. The
    # backfills (which goal the rows were computed for) are a replay's own, always rebuilt. A goal
    # changed past retention is recomputed from the retained events: earlier conversions go.
    retained_windows: Mapping[str, str] = {
        schema.EXPERIMENT_CONVERSIONS.name: '{t}."timestamp" >= %(retained_from)s',
        schema.EXPERIMENT_BACKFILLS.name: "true",
    }

    def load(self, cursor: Any, tables: Mapping[str, str], checkpoint: tuple[str, int]) -> Goals:
        cursor.execute(_EXPERIMENTS_SQL)
        experiments = [Experiment.of_row(*row) for row in cursor.fetchall()]
        backfills = tables[schema.EXPERIMENT_BACKFILLS.name]
        cursor.execute(f"SELECT experiment_id, fingerprint FROM {backfills}")
        done: dict[int, str] = dict(cursor.fetchall())
        stale = [experiment for experiment in experiments if done.get(experiment.id) != experiment.fingerprint()]
        if stale:
            with _no_statement_timeout(cursor):
                for experiment in stale:
                    self._backfill(cursor, tables, experiment, checkpoint)
            cursor.executemany(
                f"""INSERT INTO {backfills} (experiment_id, project_id, fingerprint, backfilled_at)
                    VALUES (%s, %s, %s, now())
                    ON CONFLICT (experiment_id) DO UPDATE SET project_id = EXCLUDED.project_id,
                        fingerprint = EXCLUDED.fingerprint, backfilled_at = EXCLUDED.backfilled_at""",
                [(experiment.id, experiment.project_id, experiment.fingerprint()) for experiment in stale],
            )
        gone = set(done) - {experiment.id for experiment in experiments}
        if gone:  # deleted experiments: their conversions go with them
            conversions = tables[schema.EXPERIMENT_CONVERSIONS.name]
            cursor.execute(f"DELETE FROM {conversions} WHERE experiment_id = ANY(%s)", [list(gone)])
            cursor.execute(f"DELETE FROM {backfills} WHERE experiment_id = ANY(%s)", [list(gone)])
        return Goals.of(experiments)

    def _backfill(
        self, cursor: psycopg.Cursor, tables: Mapping[str, str], experiment: Experiment, checkpoint: tuple[str, int]
    ) -> None:
        """Make the experiment's rows what its goal gives over the events at or below the
        checkpoint: the rows of an older goal deleted, the current goal's inserted."""
        conversions = tables[schema.EXPERIMENT_CONVERSIONS.name]
        cursor.execute(
            f"DELETE FROM {conversions} WHERE project_id = %s AND experiment_id = %s",
            [experiment.project_id, experiment.id],
        )
        if experiment.archived:
            return
        if experiment.goal_filter is None:
            cursor.execute(
                f"""INSERT INTO {conversions} ({schema.EXPERIMENT_CONVERSIONS.column_list()})
                    SELECT e.project_id, %(experiment_id)s::int8, e.distinct_id, e."timestamp"
                    FROM {schema.EVENTS} e WHERE {_CANDIDATES_WHERE}
                    ON CONFLICT DO NOTHING""",  # duplicates (one user, one time): one row
                {"experiment_id": experiment.id, **_candidate_params(experiment, checkpoint)},
            )
            return
        # A server-side cursor: a popular goal event's history need not fit in memory.
        with psycopg.ServerCursor(cursor.connection, "experiment_backfill") as candidates:
            # TRICKY: in chunks, each a list: the connection is busy with the COPY while upsert
            # consumes its rows, so fetching more candidates from inside it would wait forever.
            for chunk in itertools.batched(filtered_conversions(candidates, experiment, checkpoint), BACKFILL_FETCH):
                upsert(cursor, table=schema.EXPERIMENT_CONVERSIONS, into=conversions, update=None, rows=chunk)

    def property_types(self, inputs: Goals) -> Collection[str]:
        return inputs.filtered_event_types()

    def apply(self, events: Sequence[StoredEvent], inputs: Goals) -> set[ConversionRow]:
        rows: set[ConversionRow] = set()
        by_event = inputs.by_event
        for event in events:
            experiments = by_event.get((event.project_id, event.event_type))
            if not experiments:
                continue
            properties = json.loads(event.properties) if event.properties is not None else None
            for experiment in experiments:
                if experiment.converts(event.timestamp, properties):
                    rows.add((event.project_id, experiment.id, event.distinct_id, event.timestamp))
        return rows

    def write(self, cursor: Any, changes: set[ConversionRow], tables: Mapping[str, str]) -> None:
        if changes:
            upsert(
                cursor,
                table=schema.EXPERIMENT_CONVERSIONS,
                into=tables[schema.EXPERIMENT_CONVERSIONS.name],
                update=None,  # a set: the same goal event delivered twice is one row
                rows=changes,
            )

    def erase(
        self,
        cursor: Any,
        tables: Mapping[str, str],
        project_id: int,
        distinct_ids: Sequence[str],
        upto: tuple[str, int],
    ) -> int:
        """Every conversion is one user's: delete the ids' rows. The backfill fingerprints stay:
        a later backfill reads the events, where the ids are gone too."""
        cursor.execute(
            f"DELETE FROM {tables[schema.EXPERIMENT_CONVERSIONS.name]} WHERE project_id = %s AND distinct_id = ANY(%s)",
            [project_id, list(distinct_ids)],
        )
        return int(cursor.rowcount)

    def verify_queries(self) -> list[VerifyQuery]:
        return [
            VerifyQuery(
                schema.EXPERIMENT_CONVERSIONS,
                # Goals without a filter recomputed in SQL alone; those with one, from the
                # events SQL reads and flags.matching matches (verify_filtered).
                f"""SELECT DISTINCT e.project_id, x.id, e.distinct_id, e."timestamp"
                    FROM {schema.EXPERIMENTS} x
                    JOIN {schema.EVENTS} e ON e.project_id = x.project_id AND e.event_type = x.goal_event
                     AND e."timestamp" >= x.start_at AND (x.end_at IS NULL OR e."timestamp" <= x.end_at)
                    WHERE {{upto}} AND NOT x.archived AND (x.goal_filter IS NULL OR x.goal_filter = 'null'::jsonb)
                    UNION
                    SELECT * FROM unnest(%(filtered_project)s::int8[], %(filtered_experiment)s::int8[],
                                         %(filtered_distinct_id)s::text[], %(filtered_timestamp)s::timestamptz[])""",
                params=verify_filtered,
            )
        ]


def verify_filtered(cursor: Any, upto: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The conversions of the experiments with a goal filter, as columns for verify's SQL."""
    cursor.execute(_EXPERIMENTS_SQL)
    experiments = [Experiment.of_row(*row) for row in cursor.fetchall()]
    columns: tuple[list[Any], ...] = ([], [], [], [])
    checkpoint = (str(upto["xact_id"]), int(upto["position"]))
    for experiment in experiments:
        if experiment.archived or experiment.goal_filter is None:
            continue
        for row in filtered_conversions(cursor, experiment, checkpoint):
            for column, value in zip(columns, row, strict=True):
                column.append(value)
    return dict(
        zip(
            ("filtered_project", "filtered_experiment", "filtered_distinct_id", "filtered_timestamp"),
            columns,
            strict=True,
        )
    )
