"""What the UI's pickers list: an event type's property keys and a key's values, from the event
properties read model (projections/event_properties.py), which is bounded: a key with more
distinct values than its cap keeps none and says so (high_cardinality)."""

import json
from typing import Any

from django.conf import settings
from django.db import connections

from contracts import schema


def _rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connections[settings.QUERY_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def event_property_list(*, project_id: int, event_type: str, limit: int) -> list[dict[str, Any]]:
    """The event type's top-level property keys, most carried first (then by key), with how
    many events carry each and whether it is high-cardinality. All time, as of the projection."""
    rows = _rows(
        f"""SELECT key, event_count, high_cardinality FROM {schema.EVENT_PROPERTY_KEYS}
            WHERE project_id = %s AND event_type = %s ORDER BY event_count DESC, key COLLATE "C" LIMIT %s""",
        [project_id, event_type, limit],
    )
    return [{"key": key, "count": count, "high_cardinality": high} for key, count, high in rows]


def event_property_value_list(*, project_id: int, event_type: str, key: str, limit: int) -> dict[str, Any]:
    """A key's values for the event type, most frequent first (then by their JSON text), as
    JSON values (the string "30" and the number 30 are two); none for a high-cardinality key
    (`high_cardinality`: true) or a key never seen (`high_cardinality`: null)."""
    found = _rows(
        f"""SELECT high_cardinality FROM {schema.EVENT_PROPERTY_KEYS}
            WHERE project_id = %s AND event_type = %s AND key = %s""",
        [project_id, event_type, key],
    )
    rows = _rows(
        f"""SELECT value::text, event_count FROM {schema.EVENT_PROPERTY_VALUES}
            WHERE project_id = %s AND event_type = %s AND key = %s
            ORDER BY event_count DESC, value::text COLLATE "C" LIMIT %s""",
        [project_id, event_type, key, limit],
    )
    return {
        "results": [{"value": json.loads(value), "count": count} for value, count in rows],
        "high_cardinality": found[0][0] if found else None,
    }
