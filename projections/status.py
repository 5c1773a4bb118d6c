"""Where each projection stands: checkpoint, events applied, lag behind the event store."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from contracts import schema
from contracts.follow import APPENDERS
from projections.registry import PROJECTIONS


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    xact_id: str
    position: int
    events_applied: int
    updated_at: datetime | None
    lag_events: int
    """Events stored but not yet applied: exact up to LAG_CAP, LAG_CAP + 1 meaning "more"."""


LAG_CAP = 1_000_000


def projection_status_list() -> list[ProjectionStatus]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name, xact_id::text, position, events_applied, updated_at FROM {schema.CHECKPOINTS}")
        rows = {row[0]: row for row in cursor.fetchall()}
        result = []
        for name in PROJECTIONS:
            _, xact_id, position, applied, updated_at = rows.get(name, (name, "0", 0, 0, None))
            # Counted along the (xact_id, position) index, and bounded: a status call must stay
            # cheap when a projection is millions of events behind.
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {schema.EVENTS}"
                " WHERE (xact_id, position) > (%s::xid8, %s) LIMIT %s) behind",
                [xact_id, position, LAG_CAP + 1],
            )
            lag = cursor.fetchone()[0]
            result.append(ProjectionStatus(name, xact_id, position, applied, updated_at, lag))
    return result


@dataclass(frozen=True)
class OpenAppender:
    """A transaction appending events right now: runners read no event of a transaction at or
    above its xid until it ends (contracts/follow.py). Normally milliseconds old."""

    pid: int
    xact_id: str
    running_for: timedelta | None
    state: str | None
    query: str | None

    def describe(self) -> str:
        age = f"{self.running_for.total_seconds():.1f}s" if self.running_for is not None else "?"
        return f"pid {self.pid} xid {self.xact_id} open {age} ({self.state}: {self.query})"


def open_appenders() -> list[OpenAppender]:
    with connection.cursor() as cursor:
        cursor.execute(APPENDERS)
        return [OpenAppender(*row) for row in cursor.fetchall()]
