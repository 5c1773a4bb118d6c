"""Where each projection stands: checkpoint, events applied, lag behind the event store."""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection

from contracts.follow import APPENDERS
from observability import health
from observability.health import ProjectionLag
from projections.registry import PROJECTIONS


def projection_status_list() -> list[ProjectionLag]:
    """Every registered projection's checkpoint and lag (those not started yet included)."""
    return health.projection_lags(PROJECTIONS)


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
