"""The tables the sides share, declared once: the event store (written by the command side, read
by the projections and the query side) and the read models (written by the projections, read by
the query side). Every statement takes its table and column names from here, and a test checks
each declaration against the migrated database. Migrations own the DDL; this never creates.
"""

from dataclasses import dataclass
from typing import Final

# Column names PostgreSQL reads as keywords unless quoted.
_QUOTED = frozenset({"timestamp"})


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    """PostgreSQL's name for the type (pg_type.typname), as psycopg's COPY `set_types` takes it."""

    @property
    def sql(self) -> str:
        return f'"{self.name}"' if self.name in _QUOTED else self.name


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    """The primary key's columns, in index order."""

    def __str__(self) -> str:
        return self.name

    def column_list(self, *, without: tuple[str, ...] = ()) -> str:
        """`a, b, "timestamp"`: the columns in table order, less `without`."""
        return ", ".join(column.sql for column in self.columns if column.name not in without)

    def take(self, *names: str) -> tuple[Column, ...]:
        """These columns in this order; a name the table lacks raises at import time."""
        by_name = {column.name: column for column in self.columns}
        return tuple(by_name[name] for name in names)


def _columns(spec: str) -> tuple[Column, ...]:
    return tuple(Column(*part.split()) for part in spec.split(","))


# --- The event store (command_side/migrations) -------------------------------------------------

EVENTS: Final = Table(
    "tidelog_events",
    _columns(
        "project_id int8, uuid uuid, event_type text, distinct_id text, timestamp timestamptz,"
        " received_at timestamptz, client_timestamp timestamptz, sent_at timestamptz, skew_ms int8,"
        " session_id text, device_id text, app_version text, os_name text, os_version text,"
        " properties jsonb, position int8, xact_id xid8"
    ),
    key=(),  # none: a hypertable's unique keys must hold its time column; see EVENT_IDS
)
EVENT_STORE_OWN: Final = ("position", "xact_id")
"""Filled by the store's defaults, never by an appender: the projections' follow order."""
APPENDED: Final = tuple(column for column in EVENTS.columns if column.name not in EVENT_STORE_OWN)
"""What an appender writes, in table order."""

EVENT_IDS: Final = Table(
    "tidelog_event_ids", _columns("project_id int8, uuid uuid, first_seen_at timestamptz"), key=("project_id", "uuid")
)
"""The dedup ledger: a (project, uuid) is here if and only if its event was stored (pruned after
TIDELOG_DEDUP_WINDOW_DAYS). A person's erasure deletes the event and keeps its uuid here."""

EVENT_RETENTION: Final = Table(
    "tidelog_event_retention",
    _columns("singleton bool, retained_from timestamptz, updated_at timestamptz"),
    key=("singleton",),
)
"""At most one row: every event with a timestamp before `retained_from` may have been dropped by
retention, every one at or after it is stored (command_side/storage.py). No row: nothing dropped."""

BAD_EVENTS: Final = Table(
    "tidelog_bad_events",
    _columns(
        "id int8, project_id int8, received_at timestamptz, error_code text, field text, message text, payload text"
    ),
    key=("id",),
)

# --- Flags and experiments (command_side/models.py) ------------------------------------------

FLAG_DEFINITIONS: Final = Table(
    "tidelog_flag_definitions",
    _columns(
        "aggregate_id uuid, project_id int8, key text, name text, description text, version int8,"
        " definition jsonb, enabled bool, archived bool, created_by text, created_at timestamptz,"
        " updated_by text, updated_at timestamptz"
    ),
    key=("aggregate_id",),
)
"""Each flag aggregate's current state; `definition` is a flags.definition.FlagDefinition."""

EXPERIMENTS: Final = Table(
    "tidelog_experiments",
    _columns(
        "id int8, project_id int8, key text, name text, description text, flag_key text, control text,"
        " tests _text, goal_event text, goal_filter jsonb, start_at timestamptz, end_at timestamptz,"
        " archived bool, created_by text, created_at timestamptz, updated_at timestamptz"
    ),
    key=("id",),
)
"""An experiment: a flag's `control` variant against its `tests`, converting on `goal_event`
(whose properties match `goal_filter`, a flags.definition.PropertyFilter, when set) between
start_at and end_at (open when null)."""

# --- The Redis buffer (command_side/buffer.py) --------------------------------------------------

BUFFER_STREAM: Final = "events"
"""The buffer's stream, under the deployment's Redis prefix: `<prefix>:events`."""
DEAD_LETTER_SUFFIX: Final = "dead"
"""Entries the store could not take: `<prefix>:events:dead`, each with why."""

# --- Read models and checkpoints (projections/migrations) --------------------------------------

CHECKPOINTS: Final = Table(
    "projection_checkpoints",
    _columns("name text, xact_id xid8, position int8, events_applied int8, updated_at timestamptz"),
    key=("name",),
)
SHADOW_SUFFIX: Final = "__shadow"
"""A replay's shadow tables and checkpoint are named as the live ones with this suffix
(projections/replay.py): a checkpoint so named is a rebuild under way, not a live read model."""

USER_NUMBERS: Final = Table(
    "tidelog_user_numbers",
    _columns("project_id int8, distinct_id text, number int4"),
    key=("project_id", "distinct_id"),
)
"""The user directory: a dense number for each distinct_id ever projected, drawn once from one
sequence and never changed (projections/user_numbers.py), so that sets of users are compressed
bitmaps of numbers (contracts/user_sets.py). Not a read model: no replay rebuilds it (a rebuilt
read model must keep the numbers the others use); only an erasure deletes rows of it."""

EVENT_ROLLUPS: Final = Table(
    "rm_event_rollups",
    _columns(
        "project_id int8, grain text, bucket timestamptz, event_type text, app_version text, os_name text,"
        " event_count int8, user_count int4, users bytea"
    ),
    key=("project_id", "grain", "bucket", "event_type", "app_version", "os_name"),
)
"""(project, grain 'hour' or 'day', bucket = the UTC hour or day, event type, app_version,
os_name) -> the events and the set of their users (USER_NUMBERS, a contracts.user_sets bitmap;
user_count is its size). Unknown app_version / os_name are stored as ''. Ranges read whole days
where they can and hours at their edges; unique users of any range, week, breakdown or filter
are the union of the sets, exact."""

EVENT_TYPE_ROLLUPS: Final = Table(
    "rm_event_type_rollups",
    _columns(
        "project_id int8, grain text, bucket timestamptz, event_type text, event_count int8, user_count int4,"
        " users bytea"
    ),
    key=("project_id", "grain", "bucket", "event_type"),
)
"""EVENT_ROLLUPS summed over app_version and os_name: (project, grain, bucket, event type) -> the
events and the set of their users. Kept beside it by the same projection, so the questions with
no app_version / os_name filter or breakdown read one row a bucket and type, not one for every
version and OS (which hold the same users split, so the bytes are the same, but a month at 10M
was 14,311 rows to fetch, decode and union instead of 1,643)."""

EVENT_TIMELINES: Final = Table(
    "rm_event_timelines",
    _columns(
        "project_id int8, event_type text, hour timestamptz, chunk int4, event_count int4, app_versions _text,"
        " os_names _text, events bytea"
    ),
    key=("project_id", "event_type", "hour", "chunk"),
)
"""(project, event type, UTC hour, chunk) -> every event of that type in that hour as columns
(contracts/timelines.py): its user's number (USER_NUMBERS), its microseconds into the hour and
its (app_version, os_name) as an index into the row's two arrays ('' where unknown). What a
funnel reads instead of the event store (query_side/funnels.py): the steps' events per person,
in order, without a join per event. An hour's events of a type fill chunks 0, 1, ... of at most
projections.event_timelines.CHUNK_EVENTS events each (a batch rewrites only its hours' last
chunks, so a busy hour is never rewritten whole); the events within a chunk are in no order."""

ACTIVE_DAYS: Final = Table(
    "rm_active_days",
    _columns("project_id int8, day date, event_count int8, user_count int4, users bytea"),
    key=("project_id", "day"),
)
"""(project, UTC day) -> its events and the set of users active that day (a contracts.user_sets
bitmap): DAU/WAU/MAU, stickiness and retention's returns."""

FLAG_EXPOSURES: Final = Table(
    "rm_flag_exposures",
    _columns(
        "project_id int8, flag_key text, distinct_id text, first_variant text, first_at timestamptz,"
        " variants _text, exposure_count int8"
    ),
    key=("project_id", "flag_key", "distinct_id"),
)
"""One row per (flag, user) exposed: the variant of their earliest `$feature_flag_called`
(ties: the smallest variant), every distinct variant they were seen with (sorted), and how many
exposures. A user whose `variants` holds more than one is counted apart, never in two variants.
A boolean flag's responses are the variants 'true' and 'false'."""

FLAG_EXPOSURE_DAYS: Final = Table(
    "rm_flag_exposure_days",
    _columns("project_id int8, flag_key text, day date, variant text, exposure_count int8"),
    key=("project_id", "flag_key", "day", "variant"),
)
"""Exposures per flag, UTC day and variant."""

EXPERIMENT_CONVERSIONS: Final = Table(
    "rm_experiment_conversions",
    _columns("project_id int8, experiment_id int8, distinct_id text, timestamp timestamptz"),
    key=("project_id", "experiment_id", "distinct_id", "timestamp"),
)
"""Every goal event of an experiment inside its window, one row per (user, time). Experiments not
archived only: archiving one removes its rows (they come back if it is unarchived)."""

EXPERIMENT_BACKFILLS: Final = Table(
    "rm_experiment_backfills",
    _columns("experiment_id int8, project_id int8, fingerprint text, backfilled_at timestamptz"),
    key=("experiment_id",),
)
"""The experiment_conversions projection's own: for each experiment, the fingerprint of the goal
(event, filter, window, archived) its rows in EXPERIMENT_CONVERSIONS were computed for."""

SESSIONS: Final = Table(
    "rm_sessions",
    _columns(
        "project_id int8, session_id text, inferred bool, distinct_id text, device_id text, app_version text,"
        " os_name text, os_version text, start_at timestamptz, end_at timestamptz, event_count int8,"
        " screen_count int8, first_event text, last_event text, ended_by text"
    ),
    key=("project_id", "session_id"),
)
"""One row per session (projections/sessions.py). Explicit sessions are keyed by the SDK's
session_id; inferred ones (events without a session_id) by an id derived from their
(distinct_id, device_id) and start. distinct_id, device_id, app_version, os_name and os_version
are the first event's ('' when unknown); first_event / last_event are the event types at
start_at / end_at. ended_by: 'explicit' (a $session_end was seen), 'cap' (cut at
TIDELOG_SESSION_MAX_HOURS) or 'inactivity' (no end seen: closed by the gap, or still open)."""

SESSION_DURATIONS: Final = Table(
    "rm_session_durations",
    _columns(
        "project_id int8, grain text, bucket timestamptz, app_version text, os_name text, sessions int4,"
        " events int8, bins _int4, counts _int4"
    ),
    key=("project_id", "grain", "bucket", "app_version", "os_name"),
)
"""(project, grain 'hour' or 'day', bucket = the UTC hour or day of start_at, app_version,
os_name) -> the sessions (SESSIONS) that started there, their events, and the histogram of their
durations: `counts[i]` sessions in duration bin `bins[i]` (contracts/session_durations.py),
bins ascending, no zero counts. session-metrics' counts and events per session are exact, its
percentiles within the bins' relative error. Kept by the sessions projection in the same
transaction as the sessions; a row left with no session is deleted."""

PERSON_DISTINCT_IDS: Final = Table(
    "rm_person_distinct_ids",
    _columns(
        "project_id int8, distinct_id text, person_id uuid, first_seen timestamptz, last_seen timestamptz,"
        " event_count int8"
    ),
    key=("project_id", "distinct_id"),
)
"""Every distinct_id seen (projections/people.py): the person it belongs to, when it was first and
last seen and its events."""

PERSONS: Final = Table(
    "rm_persons",
    _columns(
        "project_id int8, person_id uuid, is_identified bool, properties jsonb, first_seen timestamptz,"
        " last_seen timestamptz, event_count int8, distinct_id_count int8, number int4"
    ),
    key=("project_id", "person_id"),
)
"""One row per person: merged properties, and first/last seen and events over its distinct_ids;
`number` is the person's in sets of users: the smallest USER_NUMBERS number of its ids."""

PERSON_ALIASES: Final = Table(
    "rm_person_aliases",
    _columns("project_id int8, number int4, canonical int4"),
    key=("project_id", "number"),
)
"""For each distinct_id whose person has another id with a smaller number: its number and the
person's (PERSONS.number). A set of users' numbers maps to its set of persons through these
rows alone (query_side/user_sets.py): a merge recounts every past set at once."""

PERSON_ALIAS_VERSIONS: Final = Table(
    "rm_person_alias_versions",
    _columns("project_id int8, version xid8"),
    key=("project_id",),
)
"""Per project, the transaction (its 64-bit id) that last changed its PERSON_ALIASES rows,
written in that transaction: a version that never repeats, so a query process keeps a project's
aliases decoded while it is unchanged (query_side/user_sets.py). Not derived from events: a
replay's shadow gets its own versions, new ones."""

PERSON_COHORTS: Final = Table(
    "rm_person_cohorts",
    _columns("project_id int8, day date, person_count int4, persons bytea"),
    key=("project_id", "day"),
)
"""(project, UTC day) -> the persons (their PERSONS.number) first seen that day, as a
contracts.user_sets bitmap (person_count is its size): retention's cohorts by first seen, a set a
day instead of a scan of every person. Kept by the people projection in the statements that
change PERSONS, so it is always PERSONS grouped by the day of first_seen; a day left with no
person is deleted."""

PERSON_PROPERTIES: Final = Table(
    "rm_person_properties",
    _columns(
        "project_id int8, distinct_id text, key text, set_value jsonb, set_at timestamptz, once_value jsonb,"
        " once_at timestamptz, unset_at timestamptz"
    ),
    key=("project_id", "distinct_id", "key"),
)
"""Per distinct_id and property key: the latest $set, the earliest $set_once and the latest
$unset with their event times; a person's properties are merged from its distinct_ids' rows."""

IDENTITY_LINKS: Final = Table(
    "rm_identity_links",
    _columns("project_id int8, kind text, distinct_id text, other_id text, first_at timestamptz, outcome text"),
    key=("project_id", "kind", "distinct_id", "other_id"),
)
"""Each distinct pair an `$identify` ($anon_distinct_id) or `$create_alias` (alias) asked to merge,
when first asked, and what came of it ('merged', 'same', 'refused_both_identified')."""

EVENT_PROPERTY_KEYS: Final = Table(
    "rm_event_property_keys",
    _columns("project_id int8, event_type text, key text, event_count int8, high_cardinality bool"),
    key=("project_id", "event_type", "key"),
)
"""Per event type, each top-level property key (of at most 200 characters) and how many events
carry it (projections/event_properties.py); high_cardinality: it has had more distinct values
than the cap, so EVENT_PROPERTY_VALUES keeps none of them."""

EVENT_PROPERTY_VALUES: Final = Table(
    "rm_event_property_values",
    _columns("project_id int8, event_type text, key text, value jsonb, event_count int8"),
    key=("project_id", "event_type", "key", "value"),
)
"""Per event type and key that is not high-cardinality, each scalar value (a string of at most
200 characters, a number, a boolean) and how many events carry it."""

SHARED: Final = (
    EVENTS,
    EVENT_IDS,
    EVENT_RETENTION,
    BAD_EVENTS,
    FLAG_DEFINITIONS,
    EXPERIMENTS,
    CHECKPOINTS,
    USER_NUMBERS,
    EVENT_ROLLUPS,
    EVENT_TYPE_ROLLUPS,
    EVENT_TIMELINES,
    ACTIVE_DAYS,
    FLAG_EXPOSURES,
    FLAG_EXPOSURE_DAYS,
    EXPERIMENT_CONVERSIONS,
    EXPERIMENT_BACKFILLS,
    SESSIONS,
    SESSION_DURATIONS,
    PERSON_DISTINCT_IDS,
    PERSONS,
    PERSON_PROPERTIES,
    IDENTITY_LINKS,
    PERSON_ALIASES,
    PERSON_ALIAS_VERSIONS,
    PERSON_COHORTS,
    EVENT_PROPERTY_KEYS,
    EVENT_PROPERTY_VALUES,
)
