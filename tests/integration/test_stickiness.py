"""admin/stickiness/: users (persons) by how many UTC days of the range they were active, equal
to the same question asked of the raw events; a login merges two ids' days into one person's."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.integration.test_query_api import get
from tests.projection_helpers import insert_events
from tests.projection_helpers import project as run_projections

pytestmark = pytest.mark.django_db(transaction=True)
DAY0 = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=5)


def active(distinct_id, *days, event_type="e", properties=None):
    return [{"distinct_id": distinct_id, "timestamp": DAY0 + timedelta(days=day, minutes=n), "event_type": event_type,
             "properties": properties or {}} for n, day in enumerate(days)]  # fmt: skip


def from_raw_events(project_id, after, before):
    """The same question of the raw events: distinct UTC days per person (the people read
    model's mapping; an unmapped id is its own person), then users per number of days."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT coalesce(pd.person_id::text, e.distinct_id), count(DISTINCT (e."timestamp" AT TIME ZONE 'UTC')::date)
               FROM tidelog_events e LEFT JOIN rm_person_distinct_ids pd
                 ON pd.project_id = e.project_id AND pd.distinct_id = e.distinct_id
               WHERE e.project_id = %s AND e."timestamp" >= %s AND e."timestamp" < %s GROUP BY 1""",
            [project_id, after, before],
        )
        per_person = Counter(days for _, days in cursor.fetchall())
    return [{"active_days": days, "users": users} for days, users in sorted(per_person.items())]


def test_stickiness_counts_persons_by_active_days_as_the_raw_events_do(client, project):
    pid = project.project_id
    insert_events([{**event, "project_id": pid} for event in [
        *active("a", 0, 1, 2, 2),  # three days
        *active("b", 3),  # one day
        *active("anon-c", 0),  # anonymous on day 0, then logs in as c on days 1 and 4: one person, three days
        *active("c", 1, event_type="$identify", properties={"$anon_distinct_id": "anon-c"}),
        *active("c", 4),
    ]])  # fmt: skip
    run_projections(["user_activity", "people"])
    after, before = DAY0.replace(hour=0), DAY0.replace(hour=0) + timedelta(days=5)
    body = get(client, "stickiness/", project.personal_api_key, after=after.isoformat(), before=before.isoformat())
    assert body.status_code == 200
    assert body.json()["results"] == [{"active_days": 1, "users": 1}, {"active_days": 3, "users": 2}]
    assert body.json()["results"] == from_raw_events(pid, after, before)
    # The range is day-granular: without day 4, c has two days.
    narrower = get(client, "stickiness/", project.personal_api_key, after=after.isoformat(),
                   before=(before - timedelta(days=1)).isoformat()).json()["results"]  # fmt: skip
    assert narrower == [{"active_days": 1, "users": 1}, {"active_days": 2, "users": 1}, {"active_days": 3, "users": 1}]
    assert narrower == from_raw_events(pid, after, before - timedelta(days=1))


def test_stickiness_of_another_project_is_empty(client, project, other_project):
    insert_events([{**event, "project_id": project.project_id} for event in active("a", 0, 1)])
    run_projections(["user_activity", "people"])
    assert get(client, "stickiness/", other_project.personal_api_key).json()["results"] == []
    assert get(client, "stickiness/", project.personal_api_key).json()["results"] == [{"active_days": 2, "users": 1}]
