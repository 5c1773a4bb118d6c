"""A person's erasure (projections/erasure.py): their events, bad events and read-model rows go,
counters summed over users are lowered by exactly their share, every projection's `verify` is
clean afterwards, whether their events were applied or not yet, with runners going meanwhile;
the dedup ledger stays; later events for the ids re-create the person; a replay holds it off."""

import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection

from command_side.models import Experiment
from contracts import schema
from projections.erasure import (
    PersonNotFound,
    ReadModelDrift,
    ReplayInProgress,
    erase_person,
    erasure_preview,
)
from projections.registry import PROJECTIONS, projection_get
from projections.replay import replay_lock_key, shadow_checkpoint, shadow_tables
from projections.runner import checkpoint_ensure, checkpoint_get, run_batch, run_forever
from projections.verify import verify
from tests.erasure_helpers import person_of, same_person
from tests.projection_helpers import (
    conninfo,
    days_of,
    event_counts,
    has_passed,
    insert_events,
    last_written,
    rows_holding,
)
from tests.projection_helpers import project as run_projections

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
SET_TABLES = [schema.EVENT_ROLLUPS.name, schema.EVENT_TYPE_ROLLUPS.name, schema.ACTIVE_DAYS.name]
PERSONAL_TABLES = [*SET_TABLES, schema.FLAG_EXPOSURES.name, schema.EXPERIMENT_CONVERSIONS.name]


def events_of(distinct_id: str, count: int, *, project_id: int, start: int = 0) -> list[dict[str, Any]]:
    """A user's mixed events: screens, goal events and flag exposures, over several hours,
    days and app versions, so that they share every counter row with the other users."""
    rows = []
    for i in range(start, start + count):
        kind = i % 3
        row: dict[str, Any] = {
            "project_id": project_id,
            "distinct_id": distinct_id,
            "timestamp": T0 + timedelta(minutes=7 * i),
            "app_version": f"1.{i % 2}",
            "os_name": "iOS",
            "event_type": ("screen", "buy", "$feature_flag_called")[kind],
        }
        if kind == 2:
            row["properties"] = {"$feature_flag": "checkout", "$feature_flag_response": "true" if i % 4 else "false"}
        rows.append(row)
    return rows


def both(count: int, *, project_id: int, start: int = 0) -> list[dict[str, Any]]:
    """Alice's and Bob's events, alternating in position order: any batch holds both."""
    pairs = zip(events_of("alice", count, project_id=project_id, start=start),
                events_of("bob", count, project_id=project_id, start=start), strict=True)  # fmt: skip
    return [event for pair in pairs for event in pair]


@pytest.fixture
def experiment(project):
    return Experiment.objects.create(
        project_id=project.project_id, key="exp", flag_key="checkout", control="false", tests=["true"],
        goal_event="buy", start_at=T0 - timedelta(days=1),
    )  # fmt: skip


def rows_of(distinct_id: str, project_id: int) -> dict[str, int]:
    """Rows holding the id: rows keyed by it, and rows whose set of users holds it."""
    counts = {table: rows_holding(table, project_id, distinct_id) for table in SET_TABLES}
    with connection.cursor() as cursor:
        for table in PERSONAL_TABLES[len(SET_TABLES) :]:
            cursor.execute(
                f"SELECT count(*) FROM {table} WHERE project_id = %s AND distinct_id = %s", [project_id, distinct_id]
            )
            counts[table] = cursor.fetchone()[0]
    return counts


def stored(distinct_id: str, project_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tidelog_events WHERE project_id = %s AND distinct_id = %s", [project_id, distinct_id]
        )
        return int(cursor.fetchone()[0])


def assert_verify_clean() -> None:
    for name in PROJECTIONS:
        report = verify(projection_get(name))
        assert report.differences == [], (name, report.differences[:5])


def assert_no_zero_counters() -> None:
    with connection.cursor() as cursor:
        for table in (schema.EVENT_ROLLUPS, schema.EVENT_TYPE_ROLLUPS):
            cursor.execute(f"SELECT count(*) FROM {table} WHERE event_count <= 0 OR user_count <= 0")
            assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM rm_flag_exposure_days WHERE exposure_count <= 0")
        assert cursor.fetchone()[0] == 0


def test_every_registered_projection_can_erase():
    # A projection without erase() would keep what it derived from erased events: verify
    # would find the difference, and the person would not be forgotten.
    assert [name for name, p in PROJECTIONS.items() if not callable(getattr(p, "erase", None))] == []


def test_erasure_removes_events_and_read_model_rows_and_leaves_the_others_exact(project, other_project, experiment):
    p, q = project.project_id, other_project.project_id
    insert_events(both(45, project_id=p) + events_of("alice", 15, project_id=p, start=45))
    insert_events(events_of("alice", 30, project_id=q))  # the same id in another project: not her
    insert_events([{"project_id": p, "distinct_id": "alice", "event_type": "only_alice", "timestamp": T0}])
    applied = run_projections()
    assert set(applied.values()) == {136}
    bob_counts = event_counts(p)
    assert rows_of("alice", p)[schema.FLAG_EXPOSURES.name] == 1
    hers_elsewhere = rows_of("alice", q)
    person_of_alice = person_of(p, "alice")  # None without a people projection

    erased = erase_person(project_id=p, distinct_ids=["alice"])

    assert (erased.events, erased.bad_events, erased.distinct_ids) == (61, 0, ("alice",))
    assert erased.person_ids == tuple(filter(None, [person_of_alice]))
    assert stored("alice", p) == 0 and stored("bob", p) == 45 and stored("alice", q) == 30
    assert rows_of("alice", p) == dict.fromkeys(PERSONAL_TABLES, 0)
    assert rows_of("alice", q) == hers_elsewhere and hers_elsewhere[schema.ACTIVE_DAYS.name] > 0
    # Counters lowered by exactly her share; a counter that was hers alone is gone, not zero.
    expected = {name: n for name, n in bob_counts.items() if name != "only_alice"}
    for event_type, n in {"screen": 20, "buy": 20, "$feature_flag_called": 20}.items():
        expected[event_type] = bob_counts[event_type] - n
    assert event_counts(p) == expected
    assert "only_alice" not in event_counts(p)
    # Each projection says what it removed: her user days, her sessions, her people rows.
    for name in ("user_activity", "sessions", "people"):
        assert erased.rows_by_projection[name] > 0, name
    assert erased.read_model_rows == sum(erased.rows_by_projection.values())
    assert_no_zero_counters()
    assert_verify_clean()
    # Nothing is waiting to be applied that could bring her back.
    run_projections()
    assert rows_of("alice", p) == dict.fromkeys(PERSONAL_TABLES, 0)
    assert_verify_clean()


def test_events_before_and_after_each_checkpoint_are_all_erased(project, experiment, settings):
    p = project.project_id
    insert_events(both(90, project_id=p))
    # Each runner half-way through: some of her events applied, some not yet read.
    for name in PROJECTIONS:
        checkpoint_ensure(name)
        assert run_batch(projection_get(name), limit=70) == 70
    insert_events(events_of("alice", 20, project_id=p, start=90))  # a later transaction too
    assert rows_of("alice", p)[schema.ACTIVE_DAYS.name] > 0

    erased = erase_person(project_id=p, distinct_ids=["alice"])

    assert erased.events == 110
    assert_verify_clean()  # at the checkpoints the erasure found
    applied = run_projections()
    assert set(applied.values()) == {90 - 35}, applied  # the rest of his; none of hers
    assert rows_of("alice", p) == dict.fromkeys(PERSONAL_TABLES, 0)
    assert sum(event_counts(p).values()) == 90
    assert_no_zero_counters()
    assert_verify_clean()


def test_erasure_while_runners_and_writers_go_on_leaves_every_projection_verifiable(project, experiment, settings):
    settings.TIDELOG_PROJECTION_BATCH = 40
    settings.TIDELOG_PROJECTION_POLL_SECONDS = 0.01
    p = project.project_id
    insert_events(both(150, project_id=p))
    done = threading.Event()
    errors: list[BaseException] = []
    written_after: list[int] = []

    def runner() -> None:
        try:
            assert run_forever(should_stop=done.is_set) == []
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def writer() -> None:
        # Her events and his keep arriving, before, during and after the erasure.
        try:
            with psycopg.connect(conninfo()) as conn:
                i = 150
                while not done.is_set():
                    insert_events(both(3, project_id=p, start=i), conn.cursor())
                    conn.commit()
                    i += 3
                    written_after.append(i)
        except BaseException as exc:
            errors.append(exc)

    for name in PROJECTIONS:
        checkpoint_ensure(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT xact_id::text, position FROM tidelog_events ORDER BY position LIMIT 1 OFFSET 100")
        target = cursor.fetchone()
    threads = [threading.Thread(target=runner), threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    try:
        # Wait on the fact needed: every runner is part-way through her events.
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while not all(has_passed(name, target) for name in PROJECTIONS):
            assert datetime.now(UTC) < deadline, "the runners never got going"
            assert not errors, errors
            time.sleep(0.01)
        erased = erase_person(project_id=p, distinct_ids=["alice"])
        assert erased.events >= 150
        count_after_erasure = len(written_after)
        while len(written_after) < count_after_erasure + 3:  # some of hers written after it
            assert not errors, errors
            time.sleep(0.01)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert errors == []
    run_projections()
    assert_no_zero_counters()
    assert_verify_clean()
    # What is left of her is exactly what came after: the read model agrees with her events.
    assert stored("alice", p) > 0
    assert rows_of("alice", p)[schema.ACTIVE_DAYS.name] == days_of("alice", p)


def test_later_events_for_the_ids_re_create_the_person(project, experiment):
    p = project.project_id
    insert_events(events_of("alice", 30, project_id=p))
    run_projections()
    erase_person(project_id=p, distinct_ids=["alice"])
    insert_events([{"project_id": p, "distinct_id": "alice", "event_type": "back", "timestamp": T0}])
    run_projections()
    assert rows_of("alice", p)[schema.ACTIVE_DAYS.name] == 1
    assert event_counts(p) == {"back": 1}
    assert_verify_clean()


def test_the_dedup_ledger_keeps_the_erased_uuids(project):
    p = project.project_id
    ids = [uuid.uuid4() for _ in range(3)]
    insert_events([{"project_id": p, "distinct_id": "alice", "uuid": u, "timestamp": T0} for u in ids])
    with connection.cursor() as cursor:  # as the drainer's single statement does
        cursor.execute("INSERT INTO tidelog_event_ids (project_id, uuid) SELECT %s, unnest(%s::uuid[])", [p, ids])
    erase_person(project_id=p, distinct_ids=["alice"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tidelog_event_ids WHERE project_id = %s AND uuid = ANY(%s)", [p, ids])
        assert cursor.fetchone()[0] == 3


def insert_bad(project_id: int, payload: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tidelog_bad_events (project_id, received_at, error_code, message, payload)"
            " VALUES (%s, now(), 'invalid_value', 'm', %s) RETURNING id",
            [project_id, payload],
        )
        return int(cursor.fetchone()[0])


def test_bad_events_holding_an_id_as_a_json_string_go_best_effort(project, other_project):
    p = project.project_id
    theirs = {
        insert_bad(p, '{"distinct_id": "alice", "timestamp": "soon"}'),
        insert_bad(p, '{"event_type": "x", "properties": {"friends": ["bob", "alice"]}}'),
        insert_bad(p, '{"distinct_id": "al\\u00efce"}'),  # escaped as some SDKs send it
        insert_bad(p, '{"distinct_id": "alice", "properties": {"note": "cut off by the 64 KiB li'),  # truncated
    }
    kept = {
        insert_bad(p, '{"distinct_id": "bob", "alice": 1}'),  # a key, not a value
        insert_bad(p, '{"distinct_id": "alice2"}'),
        insert_bad(other_project.project_id, '{"distinct_id": "alice"}'),
    }
    preview = erasure_preview(project_id=p, person_id=None, distinct_ids=["alice", "alïce"])
    assert preview.bad_events == 4
    erased = erase_person(project_id=p, distinct_ids=["alice", "alïce"])
    assert erased.bad_events == 4
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tidelog_bad_events")
        assert {row[0] for row in cursor.fetchall()} == kept
    assert not theirs & kept


def test_a_persons_other_distinct_ids_are_found_in_the_people_read_model(project):
    p = project.project_id
    insert_events(
        [{"project_id": p, "distinct_id": d, "timestamp": T0} for d in ("device-anon", "alice@login", "carol", "dave")]
    )
    person = same_person(p, "alice@login", "device-anon", at=T0)
    theirs = stored("alice@login", p) + stored("device-anon", p)
    erased = erase_person(project_id=p, distinct_ids=["alice@login"])
    assert (erased.person_ids, erased.distinct_ids, erased.events) == (
        (person,),
        ("alice@login", "device-anon"),
        theirs,
    )
    assert stored("carol", p) == 1 and stored("dave", p) == 1
    assert_verify_clean()

    with pytest.raises(PersonNotFound):
        erase_person(project_id=p, person_id=uuid.uuid4())
    # Ids the people read model never merged are several persons (or none): all of them go.
    theirs_people = {person_of(p, "carol"), person_of(p, "dave")} - {None}  # 2 with a people projection
    several = erase_person(project_id=p, distinct_ids=["carol", "dave"])
    assert several.events == 2 and set(several.person_ids) == theirs_people
    assert_verify_clean()


def test_a_person_is_erased_by_person_id(project):
    p = project.project_id
    insert_events(
        [{"project_id": p, "distinct_id": d, "timestamp": T0} for d in ("device-anon", "alice@login", "carol")]
    )
    person = same_person(p, "alice@login", "device-anon", at=T0)
    erased = erase_person(project_id=p, person_id=person)
    assert (erased.person_ids, erased.distinct_ids) == ((person,), ("alice@login", "device-anon"))
    assert stored("alice@login", p) == stored("device-anon", p) == 0 and stored("carol", p) == 1
    assert_verify_clean()


def test_erasure_is_refused_while_a_replay_runs_and_erases_nothing(project):
    p = project.project_id
    insert_events(events_of("alice", 6, project_id=p))
    with psycopg.connect(conninfo(), autocommit=True) as replaying:
        replaying.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", replay_lock_key("user_activity"))
        with pytest.raises(ReplayInProgress, match="user_activity"):
            erase_person(project_id=p, distinct_ids=["alice"])
    assert stored("alice", p) == 6
    assert erase_person(project_id=p, distinct_ids=["alice"]).events == 6


def test_an_interrupted_replays_shadow_tables_are_dropped(project):
    p = project.project_id
    insert_events(events_of("alice", 6, project_id=p))
    run_projections()
    aggregates = projection_get("event_aggregates")
    shadows = shadow_tables(aggregates)
    with connection.cursor() as cursor:  # as a replay that died half-way leaves them
        for live, shadow in shadows.items():
            cursor.execute(f"CREATE TABLE {shadow} (LIKE {live} INCLUDING ALL)")
            cursor.execute(f"INSERT INTO {shadow} SELECT * FROM {live}")
        cursor.execute("INSERT INTO projection_checkpoints (name) VALUES (%s)", [shadow_checkpoint(aggregates)])
    erase_person(project_id=p, distinct_ids=["alice"])
    with connection.cursor() as cursor:
        for shadow in shadows.values():
            cursor.execute("SELECT to_regclass(%s)", [shadow])
            assert cursor.fetchone()[0] is None
    assert checkpoint_get(shadow_checkpoint(aggregates)) is None
    assert last_written() is not None


def test_erasure_is_the_only_code_that_deletes_events():
    # docs/operations.md says so: keep it true (retention, when it comes, is the other).
    repo = Path(__file__).resolve().parents[2]
    deletes = re.compile(
        r"(DELETE\s+FROM|TRUNCATE(\s+TABLE)?)\s+(\{(schema\.)?EVENTS\}|tidelog_events\b)", re.IGNORECASE
    )
    ours = [top for top in repo.iterdir() if top.is_dir() and not top.name.startswith(".") and top.name != "tests"]
    found = sorted(
        str(path.relative_to(repo)) for top in ours for path in top.rglob("*.py") if deletes.search(path.read_text())
    )
    assert found == ["projections/erasure.py"]


def test_a_drifted_counter_refuses_the_erasure_and_nothing_is_erased(project):
    p = project.project_id
    insert_events(both(6, project_id=p))
    run_projections()
    with connection.cursor() as cursor:  # a read model that no longer matches its events
        cursor.execute("UPDATE rm_event_rollups SET event_count = 0 WHERE project_id = %s", [p])
    with pytest.raises(ReadModelDrift, match="rm_event_rollups"):
        erase_person(project_id=p, distinct_ids=["alice"])
    assert stored("alice", p) == 6 and rows_of("alice", p)[schema.ACTIVE_DAYS.name] > 0


def test_two_erasures_at_once_both_erase_one_after_the_other(project):
    import threading
    import time

    from django.db import connection

    p = project.project_id
    insert_events(events_of("alice", 5, project_id=p) + events_of("bob", 5, project_id=p))
    run_projections()
    inside = threading.Event()
    outcome: list[object] = []

    def slow(message: str) -> None:
        if message.endswith("bad events deleted"):
            inside.set()
            time.sleep(1.5)  # still inside the first erasure's transaction, holding every lock

    def first() -> None:
        try:
            outcome.append(erase_person(project_id=p, distinct_ids=["alice"], progress=slow))
        except Exception as exc:
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert inside.wait(10)
        second = erase_person(project_id=p, distinct_ids=["bob"])  # waits for the first, never refused
    finally:
        thread.join()
    assert second.events == 5 and outcome[0].events == 5
    assert stored("alice", p) == 0 and stored("bob", p) == 0
    assert_verify_clean()
