"""Helpers for tests of the ingestion path: post to the command API, drain, count rows."""

import gzip as gzip_lib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.test import Client


def make_event(**fields: Any) -> dict[str, Any]:
    return {
        "event_type": "screen_viewed",
        "distinct_id": "user-1",
        "uuid": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "properties": {"$screen_name": "Home"},
        **fields,
    }


def post(client: Client, path: str, body: Any, *, key: str | None = None, gzip: bool = False,
         method: str = "post", raw: bytes | None = None) -> Any:  # fmt: skip
    data = raw if raw is not None else json.dumps(body).encode()
    headers: dict[str, str] = {}
    if key:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if gzip:
        data = gzip_lib.compress(data)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    send = getattr(client, method)
    return send(f"/api/v1/analytics/{path}", data=data, content_type="application/json", **headers)


def stored_count(project_id: int | None = None, **where: Any) -> int:
    clauses = ["true"]
    params: list[Any] = []
    if project_id is not None:
        clauses.append("project_id = %s")
        params.append(project_id)
    for column, value in where.items():
        clauses.append(f"{column} = %s")
        params.append(value)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM tidelog_events WHERE {' AND '.join(clauses)}", params)
        return int(cursor.fetchone()[0])


def bad_events(project_id: int) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT error_code, field, payload FROM tidelog_bad_events WHERE project_id = %s ORDER BY id",
            [project_id],
        )
        return cursor.fetchall()


def drain_all() -> int:
    from command_side.drain import drain

    return drain("test-drainer", budget_seconds=30, keep_going=True).stored
