"""The user directory (schema.USER_NUMBERS): a dense number per (project, distinct_id), drawn
the first time any projection meets the id and never changed. Every projection that stores sets
of users (contracts/user_sets.py) numbers them here, so their sets mean the same users.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from contracts import schema

Numbers = dict[tuple[int, str], int]

_BATCH: ContextVar[Numbers | None] = ContextVar("tidelog_batch_numbers", default=None)
"""The numbers found so far in the runner's current batch (see batch_numbers), else None."""


@contextmanager
def batch_numbers() -> Iterator[None]:
    """Within it, numbers_of remembers what it found: the projections of one batch (one
    transaction) number the same ids once, not once each. The runner opens it around a batch's
    writes and nowhere else, so what it remembers never outlives the transaction it was read in."""
    token = _BATCH.set({})
    try:
        yield
    finally:
        _BATCH.reset(token)


def numbers_of(cursor: Any, ids: Iterable[tuple[int, str]]) -> Numbers:
    """The number of each (project_id, distinct_id), drawing one for each id new to the
    directory, in the caller's transaction."""
    memo = _BATCH.get()
    if memo is not None:
        asked = set(ids)
        found = _numbers_of(cursor, sorted(asked.difference(memo)))
        memo.update(found)
        return {key: memo[key] for key in asked}
    return _numbers_of(cursor, sorted(set(ids)))


def _numbers_of(cursor: Any, wanted: list[tuple[int, str]]) -> Numbers:
    if not wanted:
        return {}
    # The ids by binary COPY into a temp table, then one index probe each (LATERAL ... LIMIT 1
    # cannot be turned into a join: the temp table has no statistics, and as a plain join the
    # planner sorted and merged the whole directory). As two text[] parameters, quoted element
    # by element in Python by the client-side binding, twice, this took 38 ms for 4,000 known
    # ids; so it takes ~10 ms, and every projection with sets calls it each batch.
    stage = "stage_wanted_numbers"
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (project_id int8, distinct_id text) ON COMMIT DELETE ROWS")
    cursor.execute(f"DELETE FROM {stage}")  # a transaction may number twice (an erasure, a test)
    with cursor.copy(f"COPY {stage} (project_id, distinct_id) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "text"])
        for row in wanted:
            copy.write_row(row)
    cursor.execute(
        f"""SELECT w.project_id, w.distinct_id, n.number FROM {stage} w
            CROSS JOIN LATERAL (SELECT number FROM {schema.USER_NUMBERS} n
                                WHERE n.project_id = w.project_id AND n.distinct_id = w.distinct_id LIMIT 1) n"""
    )
    found: Numbers = {(project_id, distinct_id): number for project_id, distinct_id, number in cursor.fetchall()}
    missing = [key for key in wanted if key not in found]
    if not missing:
        return found
    params = [[project_id for project_id, _ in missing], [distinct_id for _, distinct_id in missing]]
    # TRICKY: only the ids not there yet reach the INSERT: ON CONFLICT DO NOTHING would draw
    # (and waste) a number from the identity's sequence for every id already numbered (here:
    # by another runner since the SELECT above), and the sets stay compact only while the
    # numbers stay dense. Sorted, so two runners inserting the same new ids queue on each
    # other's unique-index entries in one order, never deadlock; the one that waited finds the
    # row committed and skips it, and the SELECT after it (a later snapshot) finds it.
    cursor.execute(
        f"""INSERT INTO {schema.USER_NUMBERS} AS n (project_id, distinct_id)
            SELECT w.project_id, w.distinct_id FROM unnest(%s::int8[], %s::text[]) w(project_id, distinct_id)
            WHERE NOT EXISTS (SELECT 1 FROM {schema.USER_NUMBERS} o
                              WHERE o.project_id = w.project_id AND o.distinct_id = w.distinct_id)
            ORDER BY 1, 2
            ON CONFLICT DO NOTHING""",
        params,
    )
    cursor.execute(
        f"""SELECT n.project_id, n.distinct_id, n.number
            FROM unnest(%s::int8[], %s::text[]) w(project_id, distinct_id)
            JOIN {schema.USER_NUMBERS} n ON n.project_id = w.project_id AND n.distinct_id = w.distinct_id""",
        params,
    )
    found.update(((project_id, distinct_id), number) for project_id, distinct_id, number in cursor.fetchall())
    return found


def numbers_known(cursor: Any, project_id: int, distinct_ids: Iterable[str]) -> list[int]:
    """The numbers these ids have in the directory (none drawn): an erasure's."""
    cursor.execute(
        f"SELECT number FROM {schema.USER_NUMBERS} WHERE project_id = %s AND distinct_id = ANY(%s)",
        [project_id, sorted(set(distinct_ids))],
    )
    return [number for (number,) in cursor.fetchall()]
