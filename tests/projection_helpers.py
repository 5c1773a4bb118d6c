"""Helpers for projection tests: write events straight into the event store, read tables back."""

import uuid
from datetime import datetime
from typing import Any

from django.db import connection


def insert_events(rows: list[dict[str, Any]], cursor: Any = None) -> None:
    """Insert events as the drainer would (defaults for what a test does not care about)."""
    own = cursor is None
    cursor = cursor or connection.cursor()
    try:
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
    finally:
        if own:
            cursor.close()


def table_rows(table: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4")
        return cursor.fetchall()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)
