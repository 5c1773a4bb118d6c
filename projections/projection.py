"""What a projection is: a pure `apply(events, inputs) -> changes`, a `write(cursor, changes,
tables)` that upserts the changes as deltas, and the SQL that recomputes its tables for `verify`.
A projection may `load` inputs besides the events (experiment definitions) at the start of
each batch, in the runner's transaction.

A projection never reads events past its checkpoint itself and never touches checkpoints: the
runner does both.
"""

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from contracts import schema


class StoredEvent(NamedTuple):
    """The columns of schema.EVENTS that projections read, in the runner's SELECT order."""

    xact_id: str
    position: int
    project_id: int
    event_type: str
    distinct_id: str
    timestamp: datetime
    session_id: str | None
    app_version: str | None
    os_name: str | None
    device_id: str | None
    os_version: str | None
    properties: str | None = None
    """The event's properties as JSON text (PostgreSQL's jsonb text: numbers exactly as stored),
    for the event types the projection named in `property_types`; None for every other event.
    The projection decodes them as it needs."""


# xid8 as text: psycopg has no loader for it in binary, and projections only pass it back.
EVENT_COLUMNS = ", ".join(
    f"{column.sql}::text" if column.name == "xact_id" else column.sql
    for column in schema.EVENTS.take(*StoredEvent._fields[:-1])
)
"""Every column of StoredEvent but properties: what a projection that asks for none reads."""

# TRICKY: properties only for the event types a projection asks for (the %s, a text[]): the
# other rows never detoast nor send a byte of them. Measured on 5,000-row reads: even the NULL
# of this column for every row cost 2-4% (noisy), so a projection asking for none reads EVENT_COLUMNS.
EVENT_COLUMNS_WITH_PROPERTIES = (
    f"{EVENT_COLUMNS}, CASE WHEN event_type = ANY(%s) THEN {schema.EVENTS.take('properties')[0].sql}::text END"
)

EVENT_COLUMNS_WITH_PROPERTIES_OR_KEYS = (
    f"{EVENT_COLUMNS}, CASE WHEN event_type = ANY(%s) OR {schema.EVENTS.take('properties')[0].sql} ?| %s"
    f" THEN {schema.EVENTS.take('properties')[0].sql}::text END"
)
"""As EVENT_COLUMNS_WITH_PROPERTIES, and the properties of any event that has one of the
top-level keys of the second %s (a text[]): for a projection with `property_keys`. Only it pays
for looking into every row's properties."""


EVENT_COLUMNS_WITH_ALL_PROPERTIES = f"{EVENT_COLUMNS}, {schema.EVENTS.take('properties')[0].sql}::text"
"""Every column of StoredEvent, properties of every event: for a projection that says
`reads_every_property = True` (see reads_every_property)."""


def reads_every_property(projection: "Projection") -> bool:
    """Whether the runner must read every event's properties for `projection` (its optional
    `reads_every_property` attribute): the event property pickers look at all of them."""
    return bool(getattr(projection, "reads_every_property", False))


def property_keys_of(projection: "Projection", inputs: Any) -> Collection[str]:
    """The top-level property keys whose presence makes the runner read an event's properties
    whatever its type: a projection's optional `property_keys(inputs)`, else none."""
    property_keys = getattr(projection, "property_keys", None)
    return () if property_keys is None else property_keys(inputs)


@dataclass(frozen=True)
class VerifyQuery:
    """Recomputes one read-model table from raw events: `expected` selects exactly the table's
    columns, in order, from `schema.EVENTS AS e` restricted by the placeholder `{upto}`."""

    table: schema.Table
    expected: str
    params: Callable[[Any, Mapping[str, Any]], Mapping[str, Any]] | None = None
    """For what SQL cannot recompute alone (a goal filter's Python matching): called with the
    verify's cursor (its snapshot) and the checkpoint's parameters ({xact_id, position}), it
    returns more named parameters for `expected`."""
    actual: str | None = None
    """What the table holds as `expected` selects it, when not its columns as stored (a set of
    users, which SQL cannot read, compared by its size and fingerprint); may use `params`."""
    columns: Sequence[str] | None = None
    """The names of `expected`'s (and `actual`'s) columns when not the table's: the retained
    window's predicate (projections/retention.py) reads the rows by them."""


class ReadModelDrift(Exception):
    """A read model does not hold what its events gave it (an erasure found a counter smaller
    than the share it must subtract): refuse and roll back; `verify` names it, `replay` heals it."""


class Projection(Protocol):
    name: str
    tables: Sequence[str]
    # Optional: `deferred_indexes: Sequence[str]`, the live names of indexes of `tables` that the
    # projection's own writes never read (only the query side does): a replay drops them from its
    # shadow tables and builds them once the shadow has caught up (projections/replay.py).

    def load(self, cursor: Any, tables: Mapping[str, str], checkpoint: tuple[str, int]) -> Any:
        """Return the inputs `apply` needs besides events (None: none), read through `cursor`
        in the runner's transaction, under the projection's lock, before the events are read.
        It may bring `tables` up to those inputs for every event at or before `checkpoint`."""
        ...

    def property_types(self, inputs: Any) -> Collection[str]:
        """The event types whose properties `apply` reads (StoredEvent.properties). A projection
        may also define `property_keys(inputs) -> Collection[str]` (see property_keys_of): the
        properties of any event carrying one of those top-level keys are read too."""
        ...

    def apply(self, events: Sequence[StoredEvent], inputs: Any) -> Any:
        """Fold events into changes. Pure: same events and inputs, same changes, no I/O."""
        ...

    def write(self, cursor: Any, changes: Any, tables: Mapping[str, str]) -> None:
        """Add the changes as deltas to `tables[table]` (a live or a shadow table), through
        `cursor`, a psycopg cursor inside the runner's transaction (see upsert.py)."""
        ...

    def verify_queries(self) -> Sequence[VerifyQuery]: ...

    # Optional (see Erasable): `erase`, the removal of some distinct_ids' contribution.


class Erasable(Projection, Protocol):
    """A projection that can forget people (GDPR erasure, projections/erasure.py). Every
    projection whose tables hold anything derived from a distinct_id's events implements it;
    a test checks that every registered one does."""

    def erase(
        self,
        cursor: Any,
        tables: Mapping[str, str],
        project_id: int,
        distinct_ids: Sequence[str],
        upto: tuple[str, int],
    ) -> int | None:
        """Remove from `tables` (the live tables) everything the events of `distinct_ids` in
        `project_id` at or before `upto` (the checkpoint, (xact_id text, position)) contributed,
        so that the read model is exactly what it would be had those events never been stored.
        Rows keyed by a distinct_id are deleted; counters summed over users are decremented by
        exactly those events' share (computed in SQL, from the raw events or the per-user
        rows), and a counter row that reaches zero is deleted (as a projection never writes a
        zero row, `verify` stays clean). Return how many rows were deleted or changed (None: not counted).

        Called through `cursor` in the erasure's one transaction, under the runner's lock of
        this projection and every other, BEFORE the events are deleted (they are still readable),
        and never while a replay of any projection runs. Events after `upto` are deleted
        unapplied: nothing of them is in the tables. Never commits."""
        ...


class EventsOnly:
    """For projections that read nothing but the events' own columns: no inputs, no properties."""

    def load(self, cursor: Any, tables: Mapping[str, str], checkpoint: tuple[str, int]) -> None:
        return None

    def property_types(self, inputs: Any) -> Collection[str]:
        return ()
