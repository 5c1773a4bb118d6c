"""What a projection is: a pure `apply(events) -> changes`, a `write(cursor, changes, tables)`
that upserts the changes as deltas, and the SQL that recomputes its tables for `verify`.

A projection never reads the event store and never touches checkpoints: the runner does both.
"""

from collections.abc import Mapping, Sequence
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


# xid8 as text: psycopg has no loader for it in binary, and projections only pass it back.
EVENT_COLUMNS = ", ".join(
    f"{column.sql}::text" if column.name == "xact_id" else column.sql
    for column in schema.EVENTS.take(*StoredEvent._fields)
)


@dataclass(frozen=True)
class VerifyQuery:
    """Recomputes one read-model table from raw events: `expected` selects exactly the table's
    columns, in order, from `schema.EVENTS AS e` restricted by the placeholder `{upto}`."""

    table: schema.Table
    expected: str


class Projection(Protocol):
    name: str
    tables: Sequence[str]

    def apply(self, events: Sequence[StoredEvent]) -> Any:
        """Fold events into changes. Pure: same events, same changes, no I/O."""
        ...

    def write(self, cursor: Any, changes: Any, tables: Mapping[str, str]) -> None:
        """Add the changes as deltas to `tables[table]` (a live or a shadow table), through
        `cursor`, a psycopg cursor inside the runner's transaction (see upsert.py)."""
        ...

    def verify_queries(self) -> Sequence[VerifyQuery]: ...
