"""The event timelines (schema.EVENT_TIMELINES) hold every event of the store, as its number,
its microseconds into the hour and its version and OS, in chunks of at most CHUNK_EVENTS: as the
runner keeps them over many batches, as a replay rebuilds them, after an erasure; verify finds
a chunk that lost an event; and a funnel reads them up to their checkpoint and the store past it."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from contracts import schema
from contracts.timelines import decode
from projections import event_timelines
from projections.erasure import erase_person
from projections.registry import projection_get
from projections.replay import replay
from projections.verify import verify
from query_side import funnels
from tests.projection_helpers import insert_events, project

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


def events(count: int = 120) -> list[dict]:
    """Two projects, three types, users on several versions and OSes, over six hours; some at
    the same microsecond, one at an hour's last microsecond."""
    return [
        {
            "project_id": 1 + i % 2,
            "timestamp": T0 + timedelta(minutes=3 * i, microseconds=i % 4) - (timedelta(microseconds=1) if i == 20 else timedelta()),
            "event_type": ("open", "tap", "buy")[i % 3],
            "distinct_id": f"u{i % 7}",
            "app_version": ("1.0", "1.1", None)[(i // 5) % 3],
            "os_name": ("iOS", "Android", None)[i % 4 % 3],
        }
        for i in range(count)
    ]  # fmt: skip


def chunks() -> list[tuple]:
    """Every row: (project, type, hour, chunk, the events as a sorted list of (number, offset,
    version, os))."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT project_id, event_type, hour, chunk, event_count, app_versions, os_names, events"
            f" FROM {schema.EVENT_TIMELINES} ORDER BY 1, 2, 3, 4"
        )
        found = []
        for project_id, event_type, hour, chunk, count, versions, os_names, blob in cursor.fetchall():
            timeline = decode(blob, versions, os_names)
            assert count == len(timeline) > 0
            items = zip(timeline.numbers.tolist(), timeline.offsets.tolist(), timeline.codes.tolist(), strict=True)
            found.append(
                (project_id, event_type, hour, chunk, sorted((n, o, *timeline.variants[c]) for n, o, c in items))
            )
        return found


def by_hour(rows: list[tuple]) -> dict[tuple, Counter]:
    """The chunks of each hour key together, as a multiset of events."""
    hours: dict[tuple, Counter] = {}
    for project_id, event_type, hour, _chunk, items in rows:
        hours.setdefault((project_id, event_type, hour), Counter()).update(items)
    return hours


def from_store() -> dict[tuple, Counter]:
    """The same multisets, from the raw events and the user directory."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT e.project_id, e.event_type, e."timestamp", n.number, coalesce(e.app_version, ''),
                       coalesce(e.os_name, '')
                FROM {schema.EVENTS} e JOIN {schema.USER_NUMBERS} n USING (project_id, distinct_id)"""
        )
        hours: dict[tuple, Counter] = {}
        for project_id, event_type, at, number, version, os_name in cursor.fetchall():
            hour = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            offset = (at - hour) // timedelta(microseconds=1)
            hours.setdefault((project_id, event_type, hour), Counter())[(number, offset, version, os_name)] += 1
        return hours


def test_the_timelines_hold_every_event_of_the_store_across_batches(settings):
    settings.TIDELOG_PROJECTION_BATCH = 11
    insert_events(events())
    project(["event_timelines"])
    rows = chunks()
    assert by_hour(rows) == from_store()
    assert sum(sum(items.values()) for items in by_hour(rows).values()) == 120
    # The hour's last microsecond stays in its hour, at 3,599,999,999 us.
    assert any(item[1] == 3_599_999_999 for row in rows for item in row[4])
    assert verify(projection_get("event_timelines")).differences == []


def test_a_full_chunk_is_left_as_it_is_and_the_next_one_opens(settings, monkeypatch):
    monkeypatch.setattr(event_timelines, "CHUNK_EVENTS", 4)
    settings.TIDELOG_PROJECTION_BATCH = 7
    insert_events([{**e, "project_id": 1, "event_type": "open", "timestamp": T0 + timedelta(seconds=i)}
                   for i, e in enumerate(events(30))])  # fmt: skip
    project(["event_timelines"])
    rows = chunks()
    assert [row[3] for row in rows] == list(range(8))  # one hour, chunks 0..7: 4 events each, the last 2
    assert [len(row[4]) for row in rows] == [4] * 7 + [2]
    assert by_hour(rows) == from_store()
    assert verify(projection_get("event_timelines")).differences == []


def test_verify_finds_a_chunk_that_lost_an_event_or_moved_one():
    insert_events(events())
    project(["event_timelines"])
    with connection.cursor() as cursor:
        # The first chunk's bytes without its last event (10 bytes an event: three arrays).
        cursor.execute(
            f"""UPDATE {schema.EVENT_TIMELINES} t SET events = substr(events, 1, 4 * (event_count - 1))
                       || substr(events, 4 * event_count + 1, 4 * (event_count - 1))
                       || substr(events, 8 * event_count + 1, 2 * (event_count - 1)),
                    event_count = event_count - 1
                WHERE (project_id, event_type, hour, chunk) = (SELECT project_id, event_type, hour, chunk
                    FROM {schema.EVENT_TIMELINES} WHERE event_count > 1 ORDER BY 1, 2, 3, 4 LIMIT 1)"""
        )
        assert cursor.rowcount == 1
    differences = verify(projection_get("event_timelines")).differences
    assert {d.side for d in differences} == {"missing", "unexpected"}
    assert {d.table for d in differences} == {schema.EVENT_TIMELINES.name}


def test_a_replay_rebuilds_the_same_events_in_its_own_batches(settings):
    settings.TIDELOG_PROJECTION_BATCH = 5
    insert_events(events())
    project(["event_timelines"])
    live = by_hour(chunks())
    settings.TIDELOG_REPLAY_BATCH = 50
    replay(projection_get("event_timelines"))
    assert by_hour(chunks()) == live == from_store()
    assert verify(projection_get("event_timelines")).differences == []


def test_an_erasure_takes_the_ids_events_out_of_every_chunk(settings, monkeypatch):
    monkeypatch.setattr(event_timelines, "CHUNK_EVENTS", 8)
    settings.TIDELOG_PROJECTION_BATCH = 13
    insert_events(events())
    project()  # every projection: an erasure takes the id out of all of them at once
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT number FROM {schema.USER_NUMBERS} WHERE project_id = 1 AND distinct_id = 'u3'")
        (number,) = cursor.fetchone()
    before = by_hour(chunks())
    assert any(item[0] == number for items in before.values() for item in items)

    erased = erase_person(project_id=1, distinct_ids=["u3"])

    assert erased.rows_by_projection["event_timelines"] > 0
    after = by_hour(chunks())
    assert not any(item[0] == number for items in after.values() for item in items)
    # Everyone else's events stay, and an hour left with none of them has no row.
    assert after == {
        key: kept for key, items in before.items()
        if (kept := Counter({item: n for item, n in items.items() if item[0] != number}))
    }  # fmt: skip
    assert verify(projection_get("event_timelines")).differences == []


def test_a_funnel_reads_the_timelines_up_to_their_checkpoint_and_the_store_after_it(settings):
    steps = ["open", "tap"]
    span = {"after": T0 - timedelta(hours=1), "before": T0 + timedelta(days=1), "window": timedelta(days=1)}
    insert_events([{**e, "project_id": 1} for e in events(60)])
    project()
    whole = funnels.funnel_compute(project_id=1, steps=steps, **span)
    # Later events of the same users, past the checkpoint: read from the store.
    insert_events([
        {"project_id": 1, "timestamp": T0 + timedelta(hours=5, minutes=i), "event_type": "tap", "distinct_id": f"u{i}"}
        for i in range(7)
    ])  # fmt: skip
    later = funnels.funnel_compute(project_id=1, steps=steps, **span)
    project(["event_timelines"])
    assert funnels.funnel_compute(project_id=1, steps=steps, **span) == later
    assert [s.count for s in later.steps] == [whole.steps[0].count, whole.steps[0].count]
    # What the checkpoint covers is read from the timelines alone: emptied, only what is past
    # the checkpoint is left (nothing).
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {schema.EVENT_TIMELINES}")
    assert [s.count for s in funnels.funnel_compute(project_id=1, steps=steps, **span).steps] == [0, 0]


def test_past_retention_verify_checks_the_window_and_a_replay_keeps_the_history(settings):
    """Hours before the watermark are history: verify leaves them (compared by whole hours,
    not by chunk: projections/verify.py) and a replay carries them over as they were; the
    funnel still reads them, though the store no longer holds their events."""
    from command_side import storage

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    insert_events([
        {"timestamp": today - timedelta(days=n) + timedelta(hours=1 + i), "distinct_id": f"u{i // 2}",
         "event_type": ("open", "buy")[i % 2]}
        for n in range(5) for i in range(4)
    ])  # fmt: skip
    project()
    storage.retention_run(2)  # days 4 and 3 go from the store
    watermark = today - timedelta(days=2)
    history = [row for row in chunks() if row[2] < watermark]
    assert len(history) == 8  # two days, four hours each
    report = verify(projection_get("event_timelines"))
    assert report.differences == [] and report.retained_from == watermark
    assert report.history_rows == {schema.EVENT_TIMELINES.name: 8}
    with connection.cursor() as cursor:  # drift in the window, which the replay must heal
        cursor.execute(f"DELETE FROM {schema.EVENT_TIMELINES} WHERE hour = %s", [today + timedelta(hours=1)])
    assert [d.side for d in verify(projection_get("event_timelines")).differences] == ["missing"]

    replay(projection_get("event_timelines"))

    assert [row for row in chunks() if row[2] < watermark] == history
    assert verify(projection_get("event_timelines")).differences == []
    # Only the dropped days: the history rows alone answer (u0 and u1 each open, then buy an
    # hour later).
    answer = funnels.funnel_compute(
        project_id=1, steps=["open", "buy"], after=today - timedelta(days=5), before=watermark,
        window=timedelta(hours=2),
    )  # fmt: skip
    assert [s.count for s in answer.steps] == [2, 2]
