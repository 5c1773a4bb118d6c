"""A person's erasure (GDPR): their events, their bad events and every read-model row derived
from them, in ONE transaction under every projection runner's lock. With retention, the only
code that deletes events; it never writes a distinct_id or an event anywhere.
"""

import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from contracts import schema
from projections.projection import ReadModelDrift as ReadModelDrift  # a projection's erase() may raise it
from projections.registry import PROJECTIONS
from projections.replay import replay_lock_key, shadow_checkpoint, shadow_tables
from projections.runner import lock_key, raw_cursor

log = logging.getLogger("tidelog.erasure")

# Bad events whose payload may hold an id, read (and parsed) per round trip.
BAD_EVENTS_FETCH = 1_000


class ErasureRefused(Exception):
    """Nothing was erased: the reason is the message."""


class ReplayInProgress(ErasureRefused):
    """A replay of some projection is running: its shadow tables, read from events the erasure
    would delete, would bring the person back at its swap. Retry when it is done."""


class PersonNotFound(ErasureRefused):
    """No distinct_id of the people read model belongs to this person."""


@dataclass(frozen=True)
class Erasure:
    """What one erasure removed. `distinct_ids` stays in memory: never log nor store it."""

    project_id: int
    person_ids: tuple[uuid.UUID, ...]
    """The people read model's persons of the ids (none for ids it never saw)."""
    distinct_ids: tuple[str, ...] = field(repr=False)
    events: int
    bad_events: int
    read_model_rows: int
    """Read-model rows deleted or changed (a counter lowered), over every projection."""
    rows_by_projection: dict[str, int]


@dataclass(frozen=True)
class ErasurePreview:
    project_id: int
    person_ids: tuple[uuid.UUID, ...]
    distinct_ids: tuple[str, ...] = field(repr=False)
    events: int
    bad_events: int
    rows_by_table: dict[str, int]
    """Rows of each read-model table with a distinct_id column that hold one of the ids."""


Progress = Callable[[str], None]


def _ignore(message: str) -> None:
    pass


def person_resolve(
    cursor: Any, *, project_id: int, person_id: uuid.UUID | None, distinct_ids: Sequence[str]
) -> tuple[tuple[uuid.UUID, ...], tuple[str, ...]]:
    """The persons of the ids given (and `person_id`) and all their distinct_ids, from the people
    read model (as of its checkpoint), plus the ids given, which need not be known to it. Ids the
    people read model never merged (no `$identify` joined them) are several persons: all go."""
    cursor.execute(
        f"SELECT DISTINCT person_id FROM {schema.PERSON_DISTINCT_IDS} WHERE project_id = %s AND distinct_id = ANY(%s)",
        [project_id, list(distinct_ids)],
    )
    people = {row[0] for row in cursor.fetchall()}
    if person_id is not None:
        people.add(person_id)
    cursor.execute(
        f"""SELECT person_id, distinct_id FROM {schema.PERSON_DISTINCT_IDS}
            WHERE project_id = %s AND person_id = ANY(%s)""",
        [project_id, list(people)],
    )
    found = cursor.fetchall()
    if person_id is not None and not distinct_ids and not found:
        raise PersonNotFound(f"no person {person_id} in project {project_id}")
    ids = set(distinct_ids) | {distinct_id for _, distinct_id in found}
    return tuple(sorted({person for person, _ in found})), tuple(sorted(ids))


def _personal_tables() -> list[schema.Table]:
    """The registered projections' tables with a distinct_id column, in name order."""
    names = {table for projection in PROJECTIONS.values() for table in projection.tables}
    return sorted(
        (t for t in schema.SHARED if t.name in names and any(c.name == "distinct_id" for c in t.columns)),
        key=lambda t: t.name,
    )


def erasure_preview(*, project_id: int, person_id: uuid.UUID | None, distinct_ids: Sequence[str]) -> ErasurePreview:
    """What `erase_person` would remove now (reads only; the counts may move before it runs)."""
    with transaction.atomic(), raw_cursor() as cursor:
        people, ids = person_resolve(cursor, project_id=project_id, person_id=person_id, distinct_ids=distinct_ids)
        cursor.execute(
            f"SELECT count(*) FROM {schema.EVENTS} WHERE project_id = %s AND distinct_id = ANY(%s)",
            [project_id, list(ids)],
        )
        (events,) = cursor.fetchone() or (0,)
        bad_events = sum(1 for _ in _bad_events_holding(cursor, project_id, ids))
        rows: dict[str, int] = {}
        for table in _personal_tables():
            cursor.execute(
                f"SELECT count(*) FROM {table} WHERE project_id = %s AND distinct_id = ANY(%s)", [project_id, list(ids)]
            )
            (rows[table.name],) = cursor.fetchone() or (0,)
    return ErasurePreview(project_id, people, ids, events, bad_events, rows)


def erase_person(
    *,
    project_id: int,
    person_id: uuid.UUID | None = None,
    distinct_ids: Sequence[str] = (),
    progress: Progress = _ignore,
) -> Erasure:
    """Erase a person of `project_id`, named by `person_id` or by some of their distinct_ids,
    or both (with every distinct_id the people read model gives each of them): their events,
    their bad events (best effort: a payload holding one of the ids as a JSON string) and their
    share of every read model, as if their events had never been stored. The dedup ledger
    (uuids only) is kept. Refuses while any projection is replaying.

    Inside a caller's transaction (to commit a log row with it), the locks are held until that
    transaction ends. Events appended after its delete statement began are not erased."""
    if person_id is None and not distinct_ids:
        raise ErasureRefused("name a person_id or at least one distinct_id")
    names = sorted(PROJECTIONS)
    with transaction.atomic(), raw_cursor() as cursor:
        # TRICKY: a replay's shadow runner follows its own checkpoint, under its own lock: an
        # erasure could not keep the person out of shadow tables being filled. So no replay may
        # run, nor start, until this transaction ends: hold each replay's lock (try, never wait,
        # so no lock order with the replay's own locks matters). Shared: a replay takes it
        # exclusively, so either excludes the other, while two erasures both hold it and then
        # queue on the runners' locks below instead of one calling the other a replay.
        for name in names:
            cursor.execute("SELECT pg_try_advisory_xact_lock_shared(%s, hashtext(%s))", replay_lock_key(name))
            if cursor.fetchone() != (True,):
                raise ReplayInProgress(f"a replay of {name!r} is running; erase when it has swapped in")
        # Every runner's lock, in one fixed (name) order so two erasures cannot deadlock; a runner
        # holds one lock at a time. Once held, no batch is in flight and no checkpoint moves.
        for name in names:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", lock_key(name))
        progress(f"holding the locks of {len(names)} projections")
        people, ids = person_resolve(cursor, project_id=project_id, person_id=person_id, distinct_ids=distinct_ids)
        progress(f"{len(ids)} distinct_ids of {len(people)} person(s) in the people read model to erase")
        _drop_abandoned_shadows(cursor, names, progress)
        rows_by_projection: dict[str, int] = {}
        for name in names:
            projection = PROJECTIONS[name]
            erase = getattr(projection, "erase", None)
            if erase is None:
                log.warning("%s has no erase(): its tables keep whatever they derived from erased events", name)
                continue
            cursor.execute(f"SELECT xact_id::text, position FROM {schema.CHECKPOINTS} WHERE name = %s", [name])
            row = cursor.fetchone()
            upto = (row[0], row[1]) if row else ("0", 0)
            # Before the events are deleted: a projection may recompute its share from them.
            changed = erase(cursor, {table: table for table in projection.tables}, project_id, ids, upto)
            rows_by_projection[name] = int(changed or 0)
            progress(f"{name}: {rows_by_projection[name]} read-model rows deleted or lowered")
        # Last: every projection's erase() above found the ids' numbers in the directory. An id
        # seen again later draws a new number (its old one is in no set any more).
        cursor.execute(
            f"DELETE FROM {schema.USER_NUMBERS} WHERE project_id = %s AND distinct_id = ANY(%s)",
            [project_id, list(ids)],
        )
        cursor.execute(
            f"DELETE FROM {schema.EVENTS} WHERE project_id = %s AND distinct_id = ANY(%s)", [project_id, list(ids)]
        )
        events = cursor.rowcount
        progress(f"{events} events deleted")
        bad = list(_bad_events_holding(cursor, project_id, ids))
        if bad:
            cursor.execute(f"DELETE FROM {schema.BAD_EVENTS} WHERE id = ANY(%s)", [bad])
        progress(f"{len(bad)} bad events deleted")
    return Erasure(project_id, people, ids, events, len(bad), sum(rows_by_projection.values()), rows_by_projection)


def _drop_abandoned_shadows(cursor: Any, names: Sequence[str], progress: Progress) -> None:
    """An interrupted replay leaves shadow tables (copies of the read model) behind; no replay
    runs now (we hold every replay's lock) and the next one recreates them from zero anyway."""
    for name in names:
        projection = PROJECTIONS[name]
        for shadow in shadow_tables(projection).values():
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [shadow])
            if cursor.fetchone()[0]:
                cursor.execute(f"DROP TABLE {shadow}")
                progress(f"dropped {shadow}, left by an interrupted replay")
        cursor.execute(f"DELETE FROM {schema.CHECKPOINTS} WHERE name = %s", [shadow_checkpoint(projection)])


def _bad_events_holding(cursor: Any, project_id: int, ids: Sequence[str]) -> Iterator[int]:
    """Ids of the project's bad events whose payload holds one of `ids` as a JSON string value.
    Best effort: candidates by substring (an id as JSON spells it, escaped or not), then a
    payload that parses must hold it as a value (not a key); one that does not parse (it is a
    bad event) goes on the substring alone."""
    if not ids:
        return
    wanted = set(ids)
    needles = sorted({json.dumps(i) for i in ids} | {json.dumps(i, ensure_ascii=False) for i in ids})
    cursor.execute(
        f"""SELECT id, payload FROM {schema.BAD_EVENTS}
            WHERE project_id = %s AND EXISTS (SELECT FROM unnest(%s::text[]) n WHERE strpos(payload, n) > 0)""",
        [project_id, needles],
    )
    while rows := cursor.fetchmany(BAD_EVENTS_FETCH):
        for bad_id, payload in rows:
            try:
                decoded = json.loads(payload)
            except (ValueError, RecursionError):
                yield bad_id
                continue
            if any(value in wanted for value in _string_values(decoded)):
                yield bad_id


def _string_values(value: Any) -> Iterator[str]:
    """Every string value (not key) of a decoded JSON document, however deep (no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
