"""`manage.py generate_events`: N synthetic events stored exactly once through the event
store's append (ledger included), Zipf-distributed event types over the days asked, the same
events for the same seed, and every projection follows them and verifies clean."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from command_side.synthetic import synthetic_events
from projections.registry import PROJECTIONS
from projections.runner import run_until_caught_up
from projections.verify import verify

pytestmark = pytest.mark.django_db(transaction=True)


def generate(project_id: int, **options) -> str:
    out = StringIO()
    call_command("generate_events", project=project_id, stdout=out, **options)
    return out.getvalue()


def scalar(sql: str, *params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def test_it_stores_exactly_n_events_and_the_same_seed_adds_none(project):
    printed = generate(project.project_id, events=3_000, days=7, seed=3)
    assert "stored 3,000 events" in printed and "3,000 of 3,000" in printed
    pid = project.project_id
    assert scalar("SELECT count(*) FROM tidelog_events WHERE project_id = %s", pid) == 3_000
    assert scalar("SELECT count(*) FROM tidelog_event_ids WHERE project_id = %s", pid) == 3_000
    oldest = scalar('SELECT min("timestamp") FROM tidelog_events WHERE project_id = %s', pid)
    assert oldest >= datetime.now(UTC) - timedelta(days=7, minutes=5)
    again = generate(project.project_id, events=3_000, days=7, seed=3)
    assert "3,000 were already stored" in again
    assert scalar("SELECT count(*) FROM tidelog_events WHERE project_id = %s", pid) == 3_000


def test_event_types_follow_a_zipf_law_and_users_log_in():
    events = list(synthetic_events(total=20_000, days=30, users=200, types=50, seed=1))
    assert len(events) == 20_000
    counts = Counter(e.event_type for e in events if not e.event_type.startswith("$session"))
    ranked = [n for _, n in counts.most_common()]
    assert ranked[0] > 2 * ranked[4] > 0 and len(counts) > 30  # a head and a long tail
    assert counts["$identify"] > 0
    anonymous = {e.distinct_id for e in events if e.distinct_id.startswith("anon-")}
    assert anonymous and {e.distinct_id for e in events} >= {"user-0", "user-199"}
    assert 0.5 < sum(e.session_id is not None for e in events) / len(events) < 0.95


def test_every_projection_follows_the_generated_events_and_verifies_clean(project):
    generate(project.project_id, events=2_000, seed=5)
    run_until_caught_up()
    assert scalar("SELECT count(*) FROM rm_sessions WHERE project_id = %s", project.project_id) > 0
    assert scalar("SELECT count(*) FROM rm_persons WHERE project_id = %s AND is_identified", project.project_id) > 0
    for name, projection in PROJECTIONS.items():
        assert verify(projection).differences == [], name


def test_bad_arguments_are_refused(project):
    with pytest.raises(CommandError, match="no project"):
        generate(project.project_id + 1000, events=10)
    with pytest.raises(CommandError, match="at least 1"):
        generate(project.project_id, events=0)
