"""Names of the read-model tables: the one module of projections/ the query side may import.

Plain constants, no Django models: the tables are owned by projections/migrations.
"""

from typing import Final

CHECKPOINTS: Final = "projection_checkpoints"

EVENT_COUNTS: Final = "rm_event_counts"
"""(project_id, event_type, bucket = UTC hour, app_version, os_name) -> event_count.
Unknown app_version / os_name are stored as ''."""

EVENT_USERS: Final = "rm_event_users"
"""(project_id, event_type, bucket = UTC hour, distinct_id, app_version, os_name) -> event_count.
Unique users over any range of hours = count(DISTINCT distinct_id)."""

USER_DAYS: Final = "rm_user_days"
"""(project_id, day = UTC date, distinct_id) -> event_count, first_seen, last_seen: DAU/WAU/MAU."""
