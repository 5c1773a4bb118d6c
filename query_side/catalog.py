"""What a project has defined, for the dashboard's pickers: its feature flags and experiments, read
from the tables the command side keeps of them (contracts.schema). Read-only, as all of query_side."""

from typing import Any

from contracts.schema import EXPERIMENTS, FLAG_DEFINITIONS
from query_side.selectors import _rows


def flag_definition_list(*, project_id: int, limit: int, cursor: str | None = None) -> list[dict[str, Any]]:
    """The project's flags that are not archived, by key; `limit + 1` rows (one more tells the
    caller a next page exists). `variants` are the variant keys; empty for a boolean flag."""
    return _rows(
        f"""SELECT key, name, description, enabled, version,
                   (definition->>'rollout_percentage')::float8 AS rollout_percentage,
                   coalesce(ARRAY(SELECT v->>'key' FROM jsonb_array_elements(definition->'variants') v),
                            '{{}}') AS variants,
                   updated_at
            FROM {FLAG_DEFINITIONS}
            WHERE project_id = %(project_id)s AND NOT archived
              AND (%(cursor)s::text IS NULL OR key > %(cursor)s)
            ORDER BY key LIMIT %(limit)s""",
        {"project_id": project_id, "cursor": cursor, "limit": limit + 1},
    )


def experiment_definition_list(*, project_id: int, limit: int, cursor: str | None = None) -> list[dict[str, Any]]:
    """The project's experiments, archived ones included (their results stay readable), by key;
    `limit + 1` rows."""
    return _rows(
        f"""SELECT key, name, description, flag_key, control, tests, goal_event, start_at, end_at, archived
            FROM {EXPERIMENTS}
            WHERE project_id = %(project_id)s AND (%(cursor)s::text IS NULL OR key > %(cursor)s)
            ORDER BY key LIMIT %(limit)s""",
        {"project_id": project_id, "cursor": cursor, "limit": limit + 1},
    )
