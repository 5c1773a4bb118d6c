"""The projections' apply(): pure folds of events into changes, tested without I/O."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.event_aggregates import EventAggregates
from projections.projection import StoredEvent
from projections.user_activity import UserActivity

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def event(minutes=0, event_type="e", distinct_id="u", app_version=None, os_name=None, project_id=1, position=0):
    return StoredEvent(
        "1", position, project_id, event_type, distinct_id, T0 + timedelta(minutes=minutes), None, app_version, os_name, None, None, None
    )  # fmt: skip


def test_counts_and_users_are_bucketed_by_utc_hour_and_breakdown():
    changes = EventAggregates().apply(
        [event(1), event(59), event(61), event(2, distinct_id="v", app_version="2.0", os_name="iOS")]
    )
    hour = T0
    assert changes == Counter(
        {
            (1, "e", hour, "u", "", ""): 2,
            (1, "e", hour + timedelta(hours=1), "u", "", ""): 1,
            (1, "e", hour, "v", "2.0", "iOS"): 1,
        }
    )


def test_buckets_are_utc_hours_and_days_whatever_offset_the_timestamp_carries():
    india = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2026, 5, 2, 4, 10, tzinfo=india)  # 2026-05-01 22:40 UTC
    [key] = EventAggregates().apply([event()._replace(timestamp=moment)])
    assert key[2] == datetime(2026, 5, 1, 22, 0, tzinfo=UTC) and key[2].utcoffset() == timedelta(0)
    [day_key] = UserActivity().apply([event()._replace(timestamp=moment)])
    assert day_key[1] == date(2026, 5, 1)


def test_active_days_count_each_users_events_per_utc_day():
    days = UserActivity().apply([event(30), event(-30), event(5, distinct_id="v"), event(24 * 60)])
    assert days == Counter(
        {(1, T0.date(), "u"): 2, (1, T0.date(), "v"): 1, (1, (T0 + timedelta(days=1)).date(), "u"): 1}
    )


def fold(projection, batches):
    """What the runner does across batches: apply each, add the deltas."""
    total: Counter = Counter()
    for batch in batches:
        total.update(projection.apply(batch))
    return total


events_strategy = st.lists(
    st.builds(
        event,
        minutes=st.integers(min_value=-3000, max_value=3000),
        event_type=st.sampled_from(["a", "b"]),
        distinct_id=st.sampled_from(["u1", "u2", "u3"]),
        app_version=st.sampled_from([None, "1.0", "2.0"]),
        os_name=st.sampled_from([None, "iOS"]),
        project_id=st.sampled_from([1, 2]),
    ),
    max_size=60,
)


@settings(max_examples=60)
@given(events=events_strategy, data=st.data())
def test_any_delivery_order_and_batching_gives_the_same_read_model(events, data):
    shuffled = data.draw(st.permutations(events))
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(events)), max_size=5)))
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    for projection in (EventAggregates(), UserActivity()):
        assert fold(projection, [events]) == fold(projection, batches)
