"""The user directory (schema.USER_NUMBERS): a dense number per (project, distinct_id), drawn
the first time any projection meets the id and never changed. Every projection that stores sets
of users (contracts/user_sets.py) numbers them here, so their sets mean the same users.
"""

from collections.abc import Iterable
from typing import Any

from contracts import schema

Numbers = dict[tuple[int, str], int]


def numbers_of(cursor: Any, ids: Iterable[tuple[int, str]]) -> Numbers:
    """The number of each (project_id, distinct_id), drawing one for each id new to the
    directory, in the caller's transaction."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    projects = [project_id for project_id, _ in wanted]
    distinct_ids = [distinct_id for _, distinct_id in wanted]
    # TRICKY: only the ids not there yet reach the INSERT: ON CONFLICT DO NOTHING would draw
    # (and waste) a number from the identity's sequence for every id already numbered, and the
    # sets stay compact only while the numbers stay dense. Sorted, so two runners inserting
    # the same new ids queue on each other's unique-index entries in one order, never deadlock;
    # the one that waited finds the row committed and skips it.
    cursor.execute(
        f"""INSERT INTO {schema.USER_NUMBERS} AS n (project_id, distinct_id)
            SELECT w.project_id, w.distinct_id FROM unnest(%s::int8[], %s::text[]) w(project_id, distinct_id)
            WHERE NOT EXISTS (SELECT 1 FROM {schema.USER_NUMBERS} o
                              WHERE o.project_id = w.project_id AND o.distinct_id = w.distinct_id)
            ORDER BY 1, 2
            ON CONFLICT DO NOTHING""",
        [projects, distinct_ids],
    )
    cursor.execute(
        f"""SELECT n.project_id, n.distinct_id, n.number
            FROM unnest(%s::int8[], %s::text[]) w(project_id, distinct_id)
            JOIN {schema.USER_NUMBERS} n ON n.project_id = w.project_id AND n.distinct_id = w.distinct_id""",
        [projects, distinct_ids],
    )
    return {(project_id, distinct_id): number for project_id, distinct_id, number in cursor.fetchall()}


def numbers_known(cursor: Any, project_id: int, distinct_ids: Iterable[str]) -> list[int]:
    """The numbers these ids have in the directory (none drawn): an erasure's."""
    cursor.execute(
        f"SELECT number FROM {schema.USER_NUMBERS} WHERE project_id = %s AND distinct_id = ANY(%s)",
        [project_id, sorted(set(distinct_ids))],
    )
    return [number for (number,) in cursor.fetchall()]
