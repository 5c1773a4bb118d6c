"""The query process's cache (query_side/row_cache.py) of decoded read-model rows and of
buckets' answers: a row rewritten, by another transaction or by the reader's own, is read anew;
a row rewritten between the cache's two reads is read again; a bucket is computed again only when
its rows changed, is answered in one snapshot, and is never shared by ranges cutting it
differently; xmin widens to 64 bits across a wraparound; the budget bounds what is kept; hits,
misses and evictions are counted; an answer too large is refused before its sets are read; and
the answers equal those read with the cache off."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection, transaction
from prometheus_client import REGISTRY

from contracts import schema
from contracts.user_sets import BitMap, encode
from query_side import funnels, row_cache, selectors, user_sets
from query_side.row_cache import RowCache
from tests.projection_helpers import conninfo, insert_events, project

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
RANGE = {"after": T0 - timedelta(days=1), "before": T0 + timedelta(days=1)}


def aggregates(**range_) -> list[dict]:
    """Through row_cache.fetch_groups: a bucket's answer kept by its rows' digest."""
    return selectors.event_aggregate_list(project_id=1, interval="day", **(range_ or RANGE))


def type_users() -> dict[str, int]:
    """Through row_cache.fetch_cached: each per-type rollup row's set kept by the row's version."""
    rows = user_sets.bucket_sets(user_sets.Buckets(1, RANGE["after"], RANGE["before"], "day"))
    return {event_type: len(users) for _, _, event_type, _, users in rows}


def funnel(**range_) -> list[int]:
    found = funnels.funnel_compute(project_id=1, steps=["open", "buy"], window=timedelta(days=1), **(range_ or RANGE))
    return [step.count for step in found.steps]


def uncached(read, settings):
    """`read()` with the query cache off. A new budget is a new cache (row_cache.cache): what
    was kept is gone after this, so compute expected answers before the cached ones."""
    budget, settings.TIDELOG_QUERY_CACHE_MB = settings.TIDELOG_QUERY_CACHE_MB, 0
    try:
        return read()
    finally:
        settings.TIDELOG_QUERY_CACHE_MB = budget


def load(users: range, types=("open", "buy")) -> None:
    insert_events([
        {"timestamp": T0 + timedelta(minutes=n, seconds=30 * k), "event_type": kind, "distinct_id": f"u{n}"}
        for n in users for k, kind in enumerate(types)
    ])  # fmt: skip
    project(["event_aggregates", "event_timelines"])


def counted(result: str, of: str = "rows") -> float:
    return REGISTRY.get_sample_value(f"tidelog_query_cache_{of}_total", {"result": result}) or 0.0


def test_rows_rewritten_by_later_batches_are_read_anew_and_answers_equal_the_uncached(settings):
    load(range(5))
    row_cache.cache().clear()
    hits, misses = counted("hit"), counted("miss")
    first = type_users()
    assert first == {"open": 5, "buy": 5}
    assert (counted("hit") - hits, counted("miss") - misses) == (0, 2)  # the day rows of two types
    assert type_users() == first
    assert (counted("hit") - hits, counted("miss") - misses) == (2, 2)
    assert funnel() == [5, 5]
    assert len(row_cache.cache()) > 0
    load(range(5, 8), types=("open",))  # the same day's rows and the same hour's chunk, rewritten
    assert type_users() == {"open": 8, "buy": 5}
    assert funnel() == [8, 5]
    assert type_users() == uncached(type_users, settings)
    assert funnel() == uncached(funnel, settings)


def test_a_bucket_whose_rows_are_unchanged_is_not_computed_again(settings):
    """Two days; one of them gets events: its answer is computed anew, the other's is kept."""
    load(range(3))
    insert_events([{"timestamp": T0 - timedelta(days=1), "event_type": "open", "distinct_id": "u9"}])
    project(["event_aggregates"])
    row_cache.cache().clear()
    hits, misses = counted("hit", "groups"), counted("miss", "groups")
    first = aggregates()
    assert [(row["bucket"], row["unique_users"]) for row in first] == [
        (T0.replace(hour=0) - timedelta(days=1), 1), (T0.replace(hour=0), 3), (T0.replace(hour=0), 3),
    ]  # fmt: skip
    assert (counted("hit", "groups") - hits, counted("miss", "groups") - misses) == (0, 2)
    assert aggregates() == first
    assert (counted("hit", "groups") - hits, counted("miss", "groups") - misses) == (2, 2)
    load(range(10, 12), types=("buy",))  # T0's day: its buy row rewritten
    assert [row["unique_users"] for row in aggregates()] == [1, 5, 3]
    assert (counted("hit", "groups") - hits, counted("miss", "groups") - misses) == (3, 3)
    assert aggregates() == uncached(aggregates, settings)


def funnel_by_os(**range_) -> list[tuple[str | None, list[int]]]:
    found = funnels.funnel_compute(project_id=1, steps=["open", "buy"], window=timedelta(days=1), breakdown="os_name",
                                   **(range_ or RANGE))  # fmt: skip
    return [(group.breakdown_value, [step.count for step in group.steps]) for group in found.breakdown]


@pytest.mark.parametrize("read", ["aggregates", "funnel", "funnel_by_os"])
def test_ranges_cutting_a_day_at_different_hours_never_share_its_answer(settings, read):
    """The first day of a range starting mid-day is read from hour rows (rollups; timelines
    chunks): rows one statement wrote (one xmin and cmin) but different ones, told apart by
    their tuple ids. A funnel's day with and without a breakdown is kept apart too."""
    midnight = T0.replace(hour=0)
    insert_events([
        {"timestamp": midnight + timedelta(hours=hour, minutes=n, seconds=k), "event_type": kind,
         "distinct_id": f"u{hour}-{n}", "os_name": "iOS" if n % 2 else "Android"}
        for hour in (10, 11, 12) for n in range(hour - 9) for k, kind in enumerate(("open", "buy"))
    ])  # fmt: skip
    project(["event_aggregates", "event_timelines"])
    row_cache.cache().clear()
    answer = {"aggregates": aggregates, "funnel": funnel, "funnel_by_os": funnel_by_os}[read]
    # Hours 10-11 and 11-12: as many rows of one statement each, so only their tuple ids differ.
    cuts = [
        {"after": midnight + timedelta(hours=start), "before": midnight + timedelta(hours=end)}
        for start, end in [(10, 12), (11, 13), (10, 12), (10, 24)]
    ]
    expected = [uncached(lambda cut=cut: answer(**cut), settings) for cut in cuts]  # (this empties the cache)
    assert expected[0] != expected[1] and expected[0] == expected[2]
    other = {"funnel": funnel_by_os, "funnel_by_os": funnel}.get(read)
    if other is not None:  # the same days, kept with their values or without: not this one's
        other(**cuts[0])
    assert [answer(**cut) for cut in cuts] == expected


def test_a_bucket_rewritten_after_its_digest_was_listed_is_answered_as_listed(monkeypatch):
    """The digests and the rows are read in one snapshot: a batch committed between the two
    reads is in neither, and the next answer has it."""
    load(range(4), types=("open",))
    row_cache.cache().clear()
    real = row_cache.fetch_binary
    listed = []

    def rewriting(sql, params):
        found = real(sql, params)
        if "sha256(" in sql and not listed:
            listed.append(sql)
            rewrite_open(6)
        return found

    monkeypatch.setattr(row_cache, "fetch_binary", rewriting)
    assert [row["unique_users"] for row in aggregates()] == [4]
    assert [row["unique_users"] for row in aggregates()] == [6]


def test_a_row_its_own_transaction_rewrote_is_read_anew():
    """One transaction writes a row twice: both versions have its xmin, not its command (cmin)."""
    load(range(3))
    key = "project_id = 1 AND grain = 'day' AND event_type = 'open'"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {schema.EVENT_TYPE_ROLLUPS} SET users = %s, event_count = 4 WHERE {key}",
                       [encode(BitMap(range(1, 5)))])  # fmt: skip
        assert {row["event_type"]: row["unique_users"] for row in aggregates()}["open"] == 4
        cursor.execute(f"UPDATE {schema.EVENT_TYPE_ROLLUPS} SET users = %s, event_count = 9 WHERE {key}",
                       [encode(BitMap(range(1, 10)))])  # fmt: skip
        assert {row["event_type"]: row["unique_users"] for row in aggregates()}["open"] == 9


def rewrite_open(size: int) -> None:
    """Another session commits a new version of the day row of 'open', with `size` users."""
    with psycopg.connect(conninfo(), autocommit=True) as other:
        other.execute(
            f"UPDATE {schema.EVENT_TYPE_ROLLUPS} SET users = %s, event_count = %s"
            " WHERE project_id = 1 AND grain = 'day' AND event_type = 'open'",
            [encode(BitMap(range(1, size + 1))), size],
        )


@pytest.mark.parametrize("held", [False, True], ids=["first-read-by-where", "few-missing-by-tid"])
def test_a_row_rewritten_between_the_two_reads_is_listed_and_read_again(monkeypatch, held):
    """The rows the cache lacks are read by the same WHERE (most missing) or by tuple id (few);
    either way a row rewritten after it was listed is found so, and the list is read again."""
    load(range(4), types=("open", "buy", "tap", "view"))
    row_cache.cache().clear()
    if held:
        type_users()  # every row held...
        rewrite_open(5)  # ...but this one, rewritten: one of four missing
    reads = []
    real = row_cache.fetch_binary

    def rewriting(sql, params):
        reads.append(sql)
        if sql.startswith("SELECT ROW(") and sum(read.startswith("SELECT ROW(") for read in reads) == 1:
            rewrite_open(6)  # between the list and the read of what it lacks
        return real(sql, params)

    monkeypatch.setattr(row_cache, "fetch_binary", rewriting)
    assert type_users() == {"open": 6, "buy": 4, "tap": 4, "view": 4}
    second = [read for read in reads if read.startswith("SELECT ROW(")]
    assert ("ctid = ANY" in second[0]) == held
    assert len(reads) - len(second) == 2  # the versions listed twice: the first list's row was gone


def test_the_budget_bounds_the_bytes_kept_least_recently_used_first():
    evicted = counted("evicted")
    kept = RowCache(budget=10)
    kept.put(("a",), "A", 4)
    kept.put(("b",), "B", 4)
    assert kept.get(("a",)) == "A"  # a is now the most recently used
    kept.put(("c",), "C", 4)
    assert (kept.get(("a",)), kept.get(("b",)), kept.get(("c",))) == ("A", None, "C")
    assert kept.size == 8 and counted("evicted") - evicted == 1
    kept.put(("d",), "D", 11)  # larger than the whole budget: not kept, nothing dropped
    assert kept.get(("d",)) is None and len(kept) == 2


def test_with_the_cache_off_nothing_is_kept(settings):
    settings.TIDELOG_QUERY_CACHE_MB = 0
    load(range(3))
    assert [row["unique_users"] for row in aggregates()] == [3, 3]
    assert funnel() == [3, 3]
    assert len(row_cache.cache()) == 0


@pytest.mark.parametrize(
    ("raw", "snapshot", "full"),
    [
        (1055, 27083, 1055),  # epoch 0, before the snapshot's xmin
        (27090, 27083, 27090),  # after it (committed before the snapshot was taken)
        (4294967290, (1 << 32) + 5, 4294967290),  # the epoch before, across the wraparound
        (3, (1 << 32) + 5, (1 << 32) + 3),
        (10, (1 << 32) + 5, (1 << 32) + 10),
        (5, (1 << 32) + 4294967290, (2 << 32) + 5),  # the next epoch, just past the snapshot
    ],
)
def test_a_rows_xmin_widens_to_its_64_bit_transaction_id_across_a_wraparound(raw, snapshot, full):
    """xmin is 32 bits: the version key widens it to the 64-bit id nearest the snapshot's."""
    expression = row_cache._XMIN_64.replace("t.xmin::text::int8", "%s::int8").replace("snapshot", "%s::int8")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {expression}", [snapshot, raw, snapshot])
        assert cursor.fetchone()[0] == full


@pytest.mark.parametrize("breakdown", [None, "os_name"], ids=["per-type-rollups", "per-version-and-os-rollups"])
def test_an_answer_past_max_points_is_refused_before_any_set_is_decoded(monkeypatch, breakdown):
    """The per-type rollups list their rows first: refused, no set of theirs is even read."""
    from query_side import user_sets
    from tenancy.api_errors import RangeTooLarge

    load(range(3))  # two types in one day: two rows of the answer
    row_cache.cache().clear()
    monkeypatch.setattr(user_sets, "MAX_POINTS", 1)
    decoded = []
    monkeypatch.setattr(user_sets, "_frozen_set", lambda blob: decoded.append(blob))
    monkeypatch.setattr(user_sets, "decode", lambda blob: decoded.append(blob))
    with pytest.raises(RangeTooLarge, match="2 rows"):
        selectors.event_aggregate_list(project_id=1, interval="day", breakdown=breakdown, **RANGE)
    assert decoded == []
    monkeypatch.setattr(user_sets, "MAX_POINTS", 2)
    with pytest.raises(TypeError):  # now past the check: the sets are read (and this decode fails)
        selectors.event_aggregate_list(project_id=1, interval="day", breakdown=breakdown, **RANGE)
    assert decoded
