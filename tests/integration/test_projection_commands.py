"""`manage.py projections …`: the operator's view of the runner, replay and verify."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from projections.registry import PROJECTIONS
from tests.projection_helpers import event_counts, insert_events

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def projections(*args: str) -> str:
    out = StringIO()
    call_command("projections", *args, stdout=out)
    return out.getvalue()


def test_run_once_takes_its_projection_names_after_the_flag():
    insert_events([{"timestamp": T0}, {"timestamp": T0}])
    assert projections("run", "--once", "event_aggregates") == "event_aggregates: applied 2 events\n"
    assert event_counts() == {"e": 2}
    assert "user_activity: applied 2 events" in projections("run", "user_activity", "--once")


def test_status_shows_checkpoint_applied_and_lag():
    insert_events([{"timestamp": T0}])
    projections("run", "--once", "user_activity")
    lines = projections("status").splitlines()
    assert lines[0].split()[:4] == ["projection", "xact_id", "position", "applied"]
    rows = {line.split()[0]: line.split() for line in lines[1:3]}
    assert rows["user_activity"][3:5] == ["1", "0"]  # applied 1, lag 0
    assert rows["event_aggregates"][1:5] == ["0", "0", "0", "1"]  # never ran: lag 1


def test_replay_reports_its_progress_and_the_swap():
    insert_events([{"timestamp": T0}])
    assert "user_activity: rebuilt 1 events" in projections("replay", "user_activity")


def test_verify_exits_non_zero_and_lists_the_rows_that_differ():
    insert_events([{"timestamp": T0}])
    projections("run", "--once")
    assert "event_aggregates: OK" in projections("verify")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rm_event_rollups SET event_count = 5")
    out = StringIO()
    with pytest.raises(CommandError, match="event_aggregates"):
        call_command("projections", "verify", stdout=out)
    assert "rm_event_rollups unexpected" in out.getvalue() and "user_activity: OK" in out.getvalue()


@pytest.mark.parametrize("action", [["run", "--once"], ["replay"], ["verify"]])
def test_an_unknown_projection_is_named_in_the_error(action):
    with pytest.raises(
        CommandError,
        match=f"no projection 'nope'; known: {', '.join(sorted(PROJECTIONS))}$",
    ):
        projections(*action, "nope")


def test_status_names_an_open_appender_and_how_long_it_has_held_the_horizon():
    from tests.projection_helpers import conninfo

    assert "open appenders (runners wait for these): none" in projections("status")
    with psycopg.connect(conninfo()) as appender:
        insert_events([{"timestamp": T0}], cursor=appender.cursor())
        xid = appender.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        out = projections("status")
        assert "open appenders (runners wait for these): 1" in out
        assert f"pid {appender.info.backend_pid} xid {xid} open " in out
