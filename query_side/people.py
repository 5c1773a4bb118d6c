"""The query side's reads of people (rm_persons, rm_person_distinct_ids, rm_identity_links, filled
by projections/people.py). Each selector filters by project first and never writes.
"""

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from contracts.schema import IDENTITY_LINKS, PERSON_DISTINCT_IDS, PERSONS
from query_side.selectors import _json, _rows
from query_side.sessions import FROM_SESSIONS, RECENT_SESSIONS, SESSION_FIELDS, active_params

LISTED_DISTINCT_IDS = 10
"""How many of a person's distinct_ids the list shows (the first seen); the detail shows all."""
DETAIL_DISTINCT_IDS = 1_000
"""A bound all the same: a person with more (a bot aliasing ids) shows the first seen."""
DETAIL_IDENTITY_LINKS = 100
LINK_KINDS = ("identify", "alias")
"""rm_identity_links.kind's values (its CHECK constraint)."""

_PERSON_FIELDS = (
    "p.person_id, p.is_identified, p.properties, p.first_seen, p.last_seen, p.event_count, p.distinct_id_count"
)


def _distinct_ids_sql(bound: int) -> str:
    # Along rm_person_distinct_ids_person (project_id, person_id), then a sort of one person's ids.
    return f"""ARRAY(SELECT d.distinct_id FROM {PERSON_DISTINCT_IDS} d
                     WHERE d.project_id = p.project_id AND d.person_id = p.person_id
                     ORDER BY d.first_seen, d.distinct_id LIMIT {bound:d}) AS distinct_ids"""


def _person(row: dict[str, Any]) -> dict[str, Any]:
    row["properties"] = _json(row["properties"])
    return row


def person_list(
    *,
    project_id: int,
    limit: int,
    distinct_id: str | None = None,
    properties: tuple[dict[str, Any], ...] = (),
    cursor: tuple[datetime, UUID] | None = None,
) -> list[dict[str, Any]]:
    """People last seen first, keyset-paginated on (last_seen, person_id) along rm_persons_list;
    reads limit + 1. `distinct_id`: the one person who has it (any of their ids). `properties`:
    each a one-key object the person's merged properties contain (`@>`, on the GIN index)."""
    clauses = ["p.project_id = %(project_id)s"]
    params: dict[str, Any] = {"project_id": project_id, "limit": limit + 1}
    if distinct_id is not None:
        clauses.append(
            f"p.person_id = (SELECT person_id FROM {PERSON_DISTINCT_IDS}"
            " WHERE project_id = %(project_id)s AND distinct_id = %(distinct_id)s)"
        )
        params["distinct_id"] = distinct_id
    for index, wanted in enumerate(properties):
        clauses.append(f"p.properties @> %(property_{index})s::jsonb")
        params[f"property_{index}"] = json.dumps(wanted)
    if cursor is not None:
        clauses.append(
            "p.last_seen <= %(cursor_time)s AND (p.last_seen, p.person_id) < (%(cursor_time)s, %(cursor_id)s)"
        )
        params["cursor_time"], params["cursor_id"] = cursor
    rows = _rows(
        f"""SELECT {_PERSON_FIELDS}, {_distinct_ids_sql(LISTED_DISTINCT_IDS)}
            FROM {PERSONS} p WHERE {" AND ".join(clauses)}
            ORDER BY p.last_seen DESC, p.person_id DESC LIMIT %(limit)s""",
        params,
    )
    return [_person(row) for row in rows]


def person_get(*, project_id: int, person_id: UUID, now: datetime) -> dict[str, Any] | None:
    """A person with their distinct_ids, the identity links that name any of them (newest first,
    bounded) and their newest sessions; None when the project has no such person."""
    found = _rows(
        f"""SELECT {_PERSON_FIELDS}, {_distinct_ids_sql(DETAIL_DISTINCT_IDS)}
            FROM {PERSONS} p WHERE p.project_id = %s AND p.person_id = %s""",
        [project_id, person_id],
    )
    if not found:
        return None
    person = _person(found[0])
    ids = person["distinct_ids"]
    # TRICKY: two halves, each on an index: the primary key (project_id, kind, distinct_id, …)
    # needs its kinds named to reach distinct_id (no skip scans in PostgreSQL 15); other_id has
    # its own index. An OR of both would read every link of the project.
    links = (
        f"SELECT kind, distinct_id, other_id, first_at, outcome FROM {IDENTITY_LINKS} WHERE project_id = %(project_id)s"
    )
    person["identity_links"] = _rows(
        f"""{links} AND kind = ANY(%(kinds)s) AND distinct_id = ANY(%(ids)s)
            UNION {links} AND other_id = ANY(%(ids)s)
            ORDER BY first_at DESC, kind, distinct_id, other_id LIMIT {DETAIL_IDENTITY_LINKS:d}""",
        {"project_id": project_id, "ids": ids, "kinds": list(LINK_KINDS)},
    )
    person["sessions"] = _rows(
        f"""SELECT {SESSION_FIELDS} FROM {FROM_SESSIONS}
            WHERE s.project_id = %(project_id)s AND s.distinct_id = ANY(%(ids)s)
            ORDER BY s.start_at DESC, s.session_id DESC LIMIT {RECENT_SESSIONS:d}""",
        {"project_id": project_id, "ids": ids, **active_params(now)},
    )
    return person
