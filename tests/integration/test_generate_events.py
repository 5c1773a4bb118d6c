"""`manage.py generate_events`: exactly N synthetic events stored by COPY with their ledger rows,
in day partitions made for them, the same events (uuids) for the same seed and options so a
rerun or a resumed run stores only what is missing, a realistic shape (Zipf types, daily users
who come back, sessions, a version rollout, logins), and every projection follows them."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from command_side import event_store, storage
from command_side.synthetic import COPY_COLUMNS, synthetic_batches
from projections.registry import PROJECTIONS
from projections.runner import run_until_caught_up
from projections.verify import verify

pytestmark = pytest.mark.django_db(transaction=True)


def generate(project_id: int, **options) -> str:
    out = StringIO()
    call_command("generate_events", project=project_id, stdout=out, no_analyze=True, **options)
    return out.getvalue()


def scalar(sql: str, *params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def rows(sql: str, *params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_it_stores_exactly_n_events_each_with_its_ledger_row_in_its_day_partition(project):
    pid = project.project_id
    started = datetime.now(UTC)
    printed = generate(pid, events=3_000, days=7, users=300, seed=3)
    assert "stored 3,000 events" in printed
    assert scalar("SELECT count(*) FROM tidelog_events WHERE project_id = %s", pid) == 3_000
    assert scalar("SELECT count(DISTINCT uuid) FROM tidelog_events WHERE project_id = %s", pid) == 3_000
    assert scalar("SELECT count(*) FROM tidelog_event_ids WHERE project_id = %s", pid) == 3_000
    assert (
        scalar("SELECT count(*) FROM tidelog_events e JOIN tidelog_event_ids i USING (project_id, uuid) WHERE project_id = %s", pid)
        == 3_000
    )  # fmt: skip
    oldest, newest = rows('SELECT min("timestamp"), max(received_at) FROM tidelog_events WHERE project_id = %s', pid)[0]
    assert started - timedelta(days=7, seconds=2) <= oldest and newest <= datetime.now(UTC)
    # Every UTC day of the range has its own partition (or chunk) and no row fell into the
    # default partition.
    first = (started - timedelta(days=7)).date()
    days = [first + timedelta(days=n) for n in range((started.date() - first).days + 1)]
    if event_store.engine() == "timescaledb":
        made = {part.start.date() for part in storage.parts() if part.start is not None}
        assert set(days) <= made
    else:
        for day in days:
            assert scalar("SELECT to_regclass(%s) IS NOT NULL", f"tidelog_events_p{day:%Y%m%d}"), day
        assert scalar("SELECT count(*) FROM tidelog_events_default") == 0
    # Positions follow the store's sequence and every row records its transaction.
    assert scalar("SELECT count(DISTINCT position) FROM tidelog_events WHERE project_id = %s", pid) == 3_000
    assert scalar("SELECT count(DISTINCT xact_id) FROM tidelog_events WHERE project_id = %s", pid) == 1


def test_the_same_seed_and_options_store_nothing_more_and_another_seed_adds_n(project):
    pid = project.project_id
    generate(pid, events=2_000, days=5, users=200, seed=3)
    again = generate(pid, events=2_000, days=5, users=200, seed=3, jobs=3)
    assert "stored 0 events" in again and "2,000 were already stored" in again
    assert scalar("SELECT count(*) FROM tidelog_events WHERE project_id = %s", pid) == 2_000
    generate(pid, events=2_000, days=5, users=200, seed=4)
    assert scalar("SELECT count(*) FROM tidelog_events WHERE project_id = %s", pid) == 4_000
    assert scalar("SELECT count(*) FROM tidelog_event_ids WHERE project_id = %s", pid) == 4_000


def test_a_run_resumed_after_part_was_stored_stores_only_the_rest(project):
    pid = project.project_id
    middle = list(synthetic_batches(project_id=pid, total=1_000, days=3, users=100, seed=7, batch_size=400))[1]
    stored = event_store.append_encoded(
        columns=COPY_COLUMNS, rows=middle.rows, ledger=middle.ledger, count=middle.count, days=middle.days
    )
    assert (stored.stored, stored.duplicates) == (400, 0)
    printed = generate(pid, events=1_000, days=3, users=100, seed=7)
    assert "stored 600 events" in printed and "400 were already stored" in printed
    assert scalar("SELECT count(*) FROM tidelog_events WHERE project_id = %s", pid) == 1_000
    assert scalar("SELECT count(*) FROM tidelog_event_ids WHERE project_id = %s", pid) == 1_000


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_ones():
    end = datetime(2026, 11, 20, 12, tzinfo=UTC)

    def encoded(seed: int) -> list[tuple[bytes, bytes, int]]:
        return [
            (b.rows, b.ledger, b.count)
            for b in synthetic_batches(
                project_id=1, total=5_000, days=4, users=300, seed=seed, end=end, batch_size=1_500
            )
        ]

    first = encoded(11)
    assert [count for _, _, count in first] == [1_500, 1_500, 1_500, 500]
    assert encoded(11) == first
    assert encoded(12)[0][1] != first[0][1]


def test_the_traffic_looks_like_an_apps(project):
    pid = project.project_id
    users, days = 2_000, 14
    generate(pid, events=40_000, days=days, users=users, seed=1)
    types = [n for _, n in rows("SELECT event_type, count(*) FROM tidelog_events WHERE project_id = %s"
                                " AND event_type NOT LIKE '$session%%' AND event_type <> '$identify'"
                                " GROUP BY 1 ORDER BY 2 DESC", pid)]  # fmt: skip
    assert len(types) >= 40 and types[0] > 2 * types[4] > 4 * types[30] > 0  # a head and a long tail
    # Daily actives: a realistic share of the base, mostly coming back on other days.
    dau = [n for (n,) in rows("SELECT count(DISTINCT device_id) FROM tidelog_events WHERE project_id = %s"
                              " GROUP BY date_trunc('day', \"timestamp\")", pid)]  # fmt: skip
    assert 0.03 * users < sum(dau) / len(dau) < 0.4 * users
    returning = scalar("SELECT count(*) FILTER (WHERE d > 1)::float / count(*) FROM (SELECT count(DISTINCT"
                       " \"timestamp\"::date) AS d FROM tidelog_events WHERE project_id = %s GROUP BY device_id) u", pid)  # fmt: skip
    assert 0.2 < returning < 0.95
    # Sessions: most with an SDK session_id, several events each, started and mostly ended.
    with_id, per_session, started, ended = rows(
        "SELECT avg((session_id IS NOT NULL)::int), count(session_id)::float / count(DISTINCT session_id),"
        " count(*) FILTER (WHERE event_type = '$session_start'), count(*) FILTER (WHERE event_type = '$session_end')"
        " FROM tidelog_events WHERE project_id = %s", pid)[0]  # fmt: skip
    assert 0.7 < with_id < 0.95 and per_session > 3
    assert scalar("SELECT count(DISTINCT session_id) FROM tidelog_events WHERE project_id = %s", pid) == started
    assert 0.5 * started < ended < started
    # Screens carry their name; pickers find plan, price and button properties.
    assert scalar("SELECT count(*) FROM tidelog_events WHERE project_id = %s AND event_type = '$screen'"
                  " AND NOT properties ? '$screen_name'", pid) == 0  # fmt: skip
    keys = {
        k
        for (k,) in rows("SELECT DISTINCT jsonb_object_keys(properties) FROM tidelog_events WHERE project_id = %s", pid)
    }
    assert {"plan", "price", "button", "screen_name", "$screen_name"} <= keys
    # Both platforms with their OS versions; a newer app version rolls out over the range.
    platforms = dict(rows("SELECT os_name, count(*) FROM tidelog_events WHERE project_id = %s GROUP BY 1", pid))
    assert set(platforms) == {"iOS", "Android"} and 0.4 < platforms["iOS"] / sum(platforms.values()) < 0.7
    oldest_share = rows(
        "SELECT avg((app_version = '3.4.0')::int) FILTER (WHERE \"timestamp\" < now() - interval '13 days'),"
        " avg((app_version = '3.4.0')::int) FILTER (WHERE \"timestamp\" > now() - interval '1 day')"
        " FROM tidelog_events WHERE project_id = %s", pid)[0]  # fmt: skip
    assert oldest_share[0] > 0.8 and oldest_share[1] < 0.3
    # ~30% of users log in once: anonymous (their device id) before, their user id after.
    identified = scalar("SELECT count(DISTINCT distinct_id) FROM tidelog_events WHERE project_id = %s"
                        " AND event_type = '$identify'", pid)  # fmt: skip
    assert identified == scalar(
        "SELECT count(*) FROM tidelog_events WHERE project_id = %s AND event_type = '$identify'", pid
    )
    seen = scalar("SELECT count(DISTINCT device_id) FROM tidelog_events WHERE project_id = %s", pid)
    assert 0.15 * seen < identified < 0.4 * seen
    assert scalar("SELECT count(*) FROM tidelog_events WHERE project_id = %s AND event_type = '$identify'"
                  " AND properties ->> '$anon_distinct_id' <> device_id", pid) == 0  # fmt: skip
    anonymous_after_login = scalar(
        "SELECT count(*) FROM tidelog_events e JOIN tidelog_events i ON i.project_id = e.project_id"
        " AND i.event_type = '$identify' AND i.device_id = e.device_id"
        " WHERE e.project_id = %s AND e.distinct_id = e.device_id AND e.\"timestamp\" > i.\"timestamp\"", pid)  # fmt: skip
    assert anonymous_after_login == 0
    anonymous_before_login = scalar(
        "SELECT count(*) FROM tidelog_events e JOIN tidelog_events i ON i.project_id = e.project_id"
        " AND i.event_type = '$identify' AND i.device_id = e.device_id"
        " WHERE e.project_id = %s AND e.distinct_id = e.device_id AND e.\"timestamp\" < i.\"timestamp\"", pid)  # fmt: skip
    user_before_login = scalar(
        "SELECT count(*) FROM tidelog_events e JOIN tidelog_events i ON i.project_id = e.project_id"
        " AND i.event_type = '$identify' AND i.device_id = e.device_id"
        " WHERE e.project_id = %s AND e.distinct_id <> e.device_id AND e.\"timestamp\" < i.\"timestamp\"", pid)  # fmt: skip
    assert anonymous_before_login > identified and user_before_login == 0


def test_every_projection_follows_the_generated_events_and_verifies_clean(project):
    pid = project.project_id
    generate(pid, events=2_000, days=7, users=150, seed=5)
    run_until_caught_up()
    raw = scalar("SELECT count(*) FROM tidelog_events WHERE project_id = %s", pid)
    assert scalar("SELECT sum(event_count) FROM rm_event_rollups WHERE project_id = %s AND grain = 'hour'", pid) == raw
    assert raw == 2_000
    assert scalar("SELECT sum(event_count) FROM rm_active_days WHERE project_id = %s", pid) == raw
    assert scalar("SELECT count(*) FROM rm_sessions WHERE project_id = %s", pid) > 0
    assert scalar("SELECT count(*) FROM rm_persons WHERE project_id = %s AND is_identified", pid) > 0
    for name, projection in PROJECTIONS.items():
        assert verify(projection).differences == [], name


def test_bad_arguments_are_refused(project):
    with pytest.raises(CommandError, match="no project"):
        generate(project.project_id + 1000, events=10)
    with pytest.raises(CommandError, match="at least 1"):
        generate(project.project_id, events=0)
    with pytest.raises(CommandError, match="at least 1"):
        generate(project.project_id, events=10, jobs=0)
