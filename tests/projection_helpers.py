"""Helpers for projection tests: write events straight into the event store, read tables back."""

import uuid
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from psycopg.conninfo import make_conninfo

from contracts.follow import ANNOUNCE_APPENDER


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
        cursor.execute(
            'INSERT INTO tidelog_events (project_id, uuid, event_type, distinct_id, "timestamp", received_at, app_version, os_name, session_id)'
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                row.get("project_id", 1), row.get("uuid", uuid.uuid4()), row.get("event_type", "e"),
                row.get("distinct_id", "u"), row["timestamp"], row["timestamp"],
                row.get("app_version"), row.get("os_name"), row.get("session_id"),
            ],
        )  # fmt: skip


def table_rows(table: str) -> list[tuple[Any, ...]]:
    """Every row, in an order fixed by all its columns (never by where rows happen to lie)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return sorted(cursor.fetchall(), key=lambda row: [(value is not None, value) for value in row])


def event_counts(project_id: int = 1) -> dict[str, int]:
    """rm_event_counts summed per event type."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_type, sum(event_count) FROM rm_event_counts WHERE project_id = %s GROUP BY 1", [project_id]
        )
        return {name: int(total) for name, total in cursor.fetchall()}


def conninfo() -> str:
    """A libpq conninfo for a second, independent connection to the test database."""
    db = connection.settings_dict
    parts = {
        "host": db["HOST"],
        "port": db["PORT"],
        "user": db["USER"],
        "password": db["PASSWORD"],
        "dbname": db["NAME"],
    }
    return make_conninfo(**{key: value for key, value in parts.items() if value})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)
