"""A project's aliases kept decoded in the query process (query_side/user_sets.persons_of) by
their version (schema.PERSON_ALIAS_VERSIONS): read once while unchanged; a merge, an erasure or
a replay's swap makes the next answer read them anew; a kept bucket is recounted with the new
aliases without reading its rows; and every answer equals the uncached one."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from prometheus_client import REGISTRY

from contracts import schema
from projections.erasure import erase_person
from projections.registry import projection_get
from projections.replay import replay
from query_side import row_cache, selectors, user_sets
from tests.integration.test_row_cache import uncached
from tests.projection_helpers import insert_events, project

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
RANGE = {"after": T0 - timedelta(days=1), "before": T0 + timedelta(days=1)}
PROJECTIONS = ["people", "event_aggregates"]


def events(*rows: tuple[str, str, dict], day: int = 0) -> None:
    insert_events([
        {"timestamp": T0 + timedelta(days=day, minutes=n), "event_type": kind, "distinct_id": who,
         "properties": properties}
        for n, (who, kind, properties) in enumerate(rows)
    ])  # fmt: skip
    project(PROJECTIONS)


def opened_by() -> int:
    [row] = [row for row in selectors.event_aggregate_list(project_id=1, interval="day", **RANGE)
             if row["event_type"] == "opened"]  # fmt: skip
    return row["unique_users"]


def groups(result: str) -> float:
    return REGISTRY.get_sample_value("tidelog_query_cache_groups_total", {"result": result}) or 0.0


def test_a_merge_recounts_a_kept_buckets_cells_holding_a_merged_id_and_no_others(monkeypatch, settings):
    """A system whose users log in has its aliases change every batch: a past day's bucket, its
    rows unchanged, keeps its cells' sets and counts the persons again only in the cells that
    hold an id whose person changed."""
    events(("a", "opened", {}), ("b", "opened", {}), ("c", "opened", {}), ("a", "tapped", {}), day=-1)
    events(("a", "opened", {}))
    row_cache.cache().clear()
    found = selectors.event_aggregate_list(project_id=1, interval="day", **RANGE)
    assert [(row["event_type"], row["unique_users"]) for row in found] == [("opened", 3), ("tapped", 1), ("opened", 1)]
    hits, misses = groups("hit"), groups("miss")
    events(("b", "$identify", {"$anon_distinct_id": "c"}))  # today's bucket changes; yesterday's not
    counted = []
    real = user_sets.Persons.count
    monkeypatch.setattr(user_sets.Persons, "count", lambda self, users: counted.append(len(users)) or real(self, users))
    found = selectors.event_aggregate_list(project_id=1, interval="day", **RANGE)
    assert [(row["event_type"], row["unique_users"]) for row in found] == [
        ("opened", 2), ("tapped", 1), ("$identify", 1), ("opened", 1),
    ]  # fmt: skip
    assert (groups("hit") - hits, groups("miss") - misses) == (1, 1)
    # Yesterday: "opened" (holds c), not "tapped" (a alone); today, anew: "$identify", "opened".
    assert sorted(counted) == [1, 1, 3]
    assert found == uncached(lambda: selectors.event_aggregate_list(project_id=1, interval="day", **RANGE), settings)


def version() -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT version::text::int8 FROM {schema.PERSON_ALIAS_VERSIONS} WHERE project_id = 1")
        found = cursor.fetchone()
    return found[0] if found else None


def reads_of_aliases(monkeypatch) -> list[str]:
    """The statements persons_of sends that read the aliases themselves."""
    sent: list[str] = []
    real = user_sets.fetch_binary

    def counting(sql, params):
        if "string_agg" in sql:
            sent.append(sql)
        return real(sql, params)

    monkeypatch.setattr(user_sets, "fetch_binary", counting)
    return sent


def test_aliases_unchanged_are_read_once_and_a_merge_is_read_anew(monkeypatch, settings):
    events(
        ("a", "opened", {}), ("b", "opened", {}), ("c", "opened", {}), ("a", "$identify", {"$anon_distinct_id": "z"})
    )
    row_cache.cache().clear()
    reads = reads_of_aliases(monkeypatch)
    assert opened_by() == 3
    first = user_sets.persons_of(1)
    assert user_sets.persons_of(1) is first  # held: the version alone was read again
    assert len(reads) == 1
    events(("b", "$identify", {"$anon_distinct_id": "c"}))  # b and c: one person now
    assert opened_by() == 2
    assert len(reads) == 2
    assert opened_by() == uncached(opened_by, settings)


def test_the_version_changes_with_the_aliases_and_only_then():
    events(("a", "opened", {}), ("b", "opened", {}))
    assert version() is None  # no alias yet
    events(("a", "$identify", {"$anon_distinct_id": "b"}))
    merged = version()
    assert merged is not None
    events(("a", "opened", {}), ("b", "opened", {}), ("d", "opened", {}))  # counters only
    assert version() == merged
    events(("a", "$identify", {"$anon_distinct_id": "d"}))  # d: a's person's too
    assert version() not in (None, merged)


def test_an_erasure_of_an_aliased_id_gives_a_new_version_and_a_new_answer(settings):
    events(
        ("a", "opened", {}), ("b", "opened", {}), ("c", "opened", {}), ("a", "$identify", {"$anon_distinct_id": "b"})
    )
    row_cache.cache().clear()
    assert opened_by() == 2
    before = version()
    erase_person(project_id=1, distinct_ids=["b"])
    assert version() != before
    assert opened_by() == uncached(opened_by, settings) == 1  # c: b's person, a and b, is gone


def test_a_replay_swaps_in_aliases_read_anew(monkeypatch, settings):
    events(("a", "opened", {}), ("b", "opened", {}), ("a", "$identify", {"$anon_distinct_id": "b"}))
    row_cache.cache().clear()
    reads = reads_of_aliases(monkeypatch)
    assert opened_by() == 1
    before = version()
    replay(projection_get("people"))
    assert version() not in (None, before)  # the shadow's own
    assert opened_by() == 1
    assert len(reads) == 2  # another table: its aliases read, not the old table's held
    assert opened_by() == uncached(opened_by, settings)
