"""Helpers for erasure tests: one person with several distinct_ids, made the way the people
projection makes one (an `$identify` naming its `$anon_distinct_id`) when it is registered, and
written straight into its table otherwise; a distinct_id's person."""

import uuid
from datetime import datetime

from django.db import connection

from projections.registry import PROJECTIONS
from tests.projection_helpers import insert_events
from tests.projection_helpers import project as run_projections


def same_person(project_id: int, identified: str, anonymous: str, *, at: datetime) -> uuid.UUID:
    """Make `identified` and `anonymous` one person of the people read model; return its id."""
    if "people" in PROJECTIONS:
        insert_events([{"project_id": project_id, "distinct_id": identified, "event_type": "$identify",
                        "timestamp": at, "properties": {"$anon_distinct_id": anonymous}}])  # fmt: skip
        run_projections()
        person = person_of(project_id, identified)
        assert person is not None and person == person_of(project_id, anonymous)
        return person
    person = uuid.uuid4()
    with connection.cursor() as cursor:
        for distinct_id in (identified, anonymous):
            cursor.execute(
                "INSERT INTO rm_person_distinct_ids (project_id, distinct_id, person_id, first_seen, last_seen,"
                " event_count) VALUES (%s, %s, %s, %s, %s, 1)",
                [project_id, distinct_id, person, at, at],
            )
    return person


def person_of(project_id: int, distinct_id: str) -> uuid.UUID | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT person_id FROM rm_person_distinct_ids WHERE project_id = %s AND distinct_id = %s",
            [project_id, distinct_id],
        )
        row = cursor.fetchone()
    return row[0] if row else None
