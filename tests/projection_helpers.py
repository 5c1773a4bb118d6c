"""Helpers for projection tests: write events straight into the event store, read tables back."""

import json
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pytest
from django.db import connection, transaction
from psycopg.conninfo import make_conninfo

from contracts import schema
from contracts.follow import ANNOUNCE_APPENDER
from contracts.user_sets import decode
from projections.projection import StoredEvent
from projections.registry import PROJECTIONS, projection_get
from projections.runner import checkpoint_ensure, raw_cursor, run_batch
from projections.status import open_appenders


def insert_events(rows: list[dict[str, Any]], cursor: Any = None) -> None:
    """Insert events as the drainer would (defaults for what a test does not care about)."""
    if cursor is None:
        # One transaction, as the drainer's: the announcement holds until the inserts commit.
        with transaction.atomic(), connection.cursor() as own:
            insert_events(rows, own)
        return
    # As every appender does, first: the runners' horizon counts announced appenders only.
    cursor.execute(ANNOUNCE_APPENDER)
    cursor.execute("SELECT to_regprocedure('tidelog_ensure_event_partition(date)') IS NOT NULL")
    if cursor.fetchone()[0]:  # plain PostgreSQL; TimescaleDB makes chunks by itself
        for day in {row["timestamp"].date() for row in rows}:
            cursor.execute("SELECT tidelog_ensure_event_partition(%s)", [day])
    for row in rows:
        # properties: a dict, or JSON text as is (to pin how numbers are spelled).
        properties = row.get("properties", {})
        cursor.execute(
            'INSERT INTO tidelog_events (project_id, uuid, event_type, distinct_id, "timestamp", received_at, app_version, os_name, session_id, properties)'
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            [
                row.get("project_id", 1), row.get("uuid", uuid.uuid4()), row.get("event_type", "e"),
                row.get("distinct_id", "u"), row["timestamp"], row["timestamp"],
                row.get("app_version"), row.get("os_name"), row.get("session_id"),
                properties if isinstance(properties, str) else json.dumps(properties),
            ],
        )  # fmt: skip


def table_rows(table: str) -> list[tuple[Any, ...]]:
    """Every row, in an order fixed by all its columns (never by where rows happen to lie)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return sorted(cursor.fetchall(), key=lambda row: [(value is not None, value) for value in row])


def event_counts(project_id: int = 1) -> dict[str, int]:
    """The hour rollups' events summed per event type."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_type, sum(event_count) FROM rm_event_rollups WHERE project_id = %s AND grain = 'hour'"
            " GROUP BY 1",
            [project_id],
        )
        return {name: int(total) for name, total in cursor.fetchall()}


def members(users: bytes) -> list[str]:
    """The distinct_ids of a stored set of users (contracts.user_sets), sorted."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT distinct_id FROM {schema.USER_NUMBERS} WHERE number = ANY(%s) ORDER BY 1",
            [list(decode(users))],
        )
        return [distinct_id for (distinct_id,) in cursor.fetchall()]


def set_rows(table: str) -> list[tuple[Any, ...]]:
    """table_rows of a table of sets (projections/user_sets.py), each set as its distinct_ids and
    without its size (the number of those)."""
    rows = []
    for row in table_rows(table):
        *rest, user_count, users = row
        assert user_count == len(members(users))
        rows.append((*rest, members(users)))
    return sorted(rows)


def rows_holding(table: str, project_id: int, distinct_id: str) -> int:
    """Rows of a table of sets whose set holds the id's user (0 where the directory has no
    number for it, as after its erasure)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT number FROM {schema.USER_NUMBERS} WHERE project_id = %s AND distinct_id = %s",
            [project_id, distinct_id],
        )
        found = cursor.fetchone()
        if found is None:
            return 0
        cursor.execute(f"SELECT users FROM {table} WHERE project_id = %s", [project_id])
        return sum(1 for (users,) in cursor.fetchall() if found[0] in decode(users))


def days_of(distinct_id: str, project_id: int = 1) -> int:
    """The UTC days on which the event store holds events of the id."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(DISTINCT ("timestamp" AT TIME ZONE 'UTC')::date) FROM tidelog_events
               WHERE project_id = %s AND distinct_id = %s""",
            [project_id, distinct_id],
        )
        return int(cursor.fetchone()[0])


def write_as_projected(rows: list[dict[str, Any]]) -> None:
    """What the event_aggregates and user_activity projections write for these events (keys as
    insert_events takes them), without storing the events: for tests of the readers."""
    events = [
        StoredEvent(
            "0", 0, row.get("project_id", 1), row.get("event_type", "e"), row.get("distinct_id", "u"),
            row["timestamp"], row.get("session_id"), row.get("app_version"), row.get("os_name"), None, None,
        )
        for row in rows
    ]  # fmt: skip
    with transaction.atomic(), raw_cursor() as cursor:
        for name in ("event_aggregates", "user_activity"):
            projection = PROJECTIONS[name]
            projection.write(cursor, projection.apply(events, None), {t: t for t in projection.tables})


def conninfo(dbname: str | None = None) -> str:
    """A libpq conninfo for a second, independent connection to the test database (or another
    database of the same server)."""
    db = connection.settings_dict
    parts = {
        "host": db["HOST"],
        "port": db["PORT"],
        "user": db["USER"],
        "password": db["PASSWORD"],
        "dbname": dbname or db["NAME"],
    }
    return make_conninfo(**{key: value for key, value in parts.items() if value})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def last_written() -> tuple[str, int]:
    """The (xact_id, position) of the newest event committed so far: what a runner must pass."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_id::text, position FROM tidelog_events ORDER BY xact_id DESC, position DESC LIMIT 1"
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else ("0", 0)


def project(names: Iterable[str] | None = None, *, timeout: float = 10.0) -> dict[str, int]:
    """Run the named projections (default: all) until each checkpoint has passed the last event
    written before the call; return the events each applied. Waits on that fact, never on an
    empty batch, and fails naming what holds the horizon if the deadline passes first."""
    target = last_written()
    deadline = time.monotonic() + timeout
    applied: dict[str, int] = {}
    for name in names or PROJECTIONS:
        checkpoint_ensure(name)
        applied[name] = 0
        while not has_passed(name, target):
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not reach {target} in {timeout} s: {_held_back_by(name)}")
            batch = run_batch(projection_get(name))
            applied[name] += batch
            if not batch:
                time.sleep(0.02)
    return applied


def has_passed(name: str, target: tuple[str, int]) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (xact_id, position) >= (%s::xid8, %s) FROM {schema.CHECKPOINTS} WHERE name = %s",
            [*target, name],
        )
        return bool(cursor.fetchone()[0])


def _held_back_by(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT xact_id::text, position FROM {schema.CHECKPOINTS} WHERE name = %s", [name])
        checkpoint = cursor.fetchone()
    held = "; ".join(appender.describe() for appender in open_appenders())
    return f"checkpoint at {checkpoint}; appenders holding the horizon: {held or 'none'}"
