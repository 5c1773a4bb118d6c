"""Where each projection stands: checkpoint, events applied, lag behind the event store."""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from projections import read_models
from projections.registry import PROJECTIONS


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    xact_id: str
    position: int
    events_applied: int
    updated_at: datetime | None
    lag_events: int
    """Estimate: the newest position minus the checkpoint's. Positions are drawn in roughly
    commit order, so this is close; it is exact when writers do not overlap."""


def projection_status_list() -> list[ProjectionStatus]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(position), 0) FROM tidelog_events")
        newest = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT name, xact_id::text, position, events_applied, updated_at FROM {read_models.CHECKPOINTS}"
        )
        rows = {row[0]: row for row in cursor.fetchall()}
    result = []
    for name in PROJECTIONS:
        _, xact_id, position, applied, updated_at = rows.get(name, (name, "0", 0, 0, None))
        result.append(ProjectionStatus(name, xact_id, position, applied, updated_at, max(newest - position, 0)))
    return result
