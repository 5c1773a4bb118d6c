"""Explicit sessions (sessions/session.py), pure: the disorder mobile traffic has, and a fold of
any batches merged in any order equal to the fold of all the events."""

from datetime import UTC, datetime, timedelta
from functools import reduce
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.projection import StoredEvent
from projections.sessions import Sessions
from sessions.session import EXPLICIT, INACTIVITY, Event, Session, fold_explicit, merge_explicit

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
START, END = "$session_start", "$session_end"


def ev(minutes: float, event_type: str = "e", distinct_id: str = "u", app_version: str = "") -> Event:
    return Event(T0 + timedelta(minutes=minutes), event_type, distinct_id, "d", app_version, "iOS", "")


def fold(events: list[Event]) -> Session:
    return fold_explicit(1, "s1", events)


def in_batches(*batches: list[Event]) -> Session:
    """Each batch folded on its own, the partial summaries merged as the SQL upsert does."""
    return reduce(merge_explicit, [fold(batch) for batch in batches])


def test_events_hours_late_from_an_offline_queue_join_their_session():
    on_time = [ev(0, START), ev(5, "$screen")]
    flushed_9_hours_later = [ev(6, "$screen"), ev(8, END)]
    session = in_batches(on_time, flushed_9_hours_later)
    assert session == fold(on_time + flushed_9_hours_later)
    assert (session.end_at, session.event_count, session.screen_count, session.ended_by) == (
        T0 + timedelta(minutes=8), 4, 2, EXPLICIT,
    )  # fmt: skip


def test_an_end_before_its_start_gives_a_session_spanning_both():
    # A device clock corrected between the two calls: the end is filed before the start.
    session = in_batches([ev(10, START)], [ev(3, END)])
    assert (session.start_at, session.end_at) == (T0 + timedelta(minutes=3), T0 + timedelta(minutes=10))
    assert (session.first_event, session.last_event, session.ended_by) == (END, START, EXPLICIT)


def test_a_duplicate_end_counts_as_an_event_and_ends_the_session_once():
    session = in_batches([ev(0, START), ev(5, END)], [ev(5, END)])
    assert (session.event_count, session.end_at, session.ended_by) == (3, T0 + timedelta(minutes=5), EXPLICIT)


def test_events_after_the_end_extend_the_session():
    session = in_batches([ev(0, START), ev(5, END)], [ev(7, "late")])
    assert (session.end_at, session.last_event, session.ended_by) == (T0 + timedelta(minutes=7), "late", EXPLICIT)


def test_a_start_never_ended_is_closed_by_inactivity():
    session = in_batches([ev(0, START)], [ev(4, "$screen")])
    assert session.ended_by == INACTIVITY and session.inferred is False


def test_the_first_events_attributes_win_whatever_batch_brings_it():
    session = in_batches([ev(5, "e", "later-user", "2.0")], [ev(1, START, "first-user", "1.0")])
    assert (session.distinct_id, session.app_version, session.first_event) == ("first-user", "1.0", START)


def test_apply_groups_by_session_and_leaves_events_without_one_to_the_walk():
    def stored(session_id: str | None, minutes: int, device_id: str | None = None) -> StoredEvent:
        return StoredEvent(
            "7", minutes, 1, "e", "u", T0 + timedelta(minutes=minutes), session_id, None, None, device_id, None
        )

    changes = Sessions().apply([stored("s1", 1), stored(None, 2), stored("s1", 3), stored("inferred-x", 4, "d")])
    assert [(s.session_id, s.event_count) for s in changes.explicit] == [("s1", 2)]
    # The reserved prefix is the server's: a client's "inferred-…" id counts as none.
    assert {key: len(events) for key, events in changes.inferred.items()} == {(1, "u", ""): 1, (1, "u", "d"): 1}
    assert changes.upto == ("7", 4)


events_st = st.lists(
    st.builds(
        Event,
        st.integers(0, 30).map(lambda m: T0 + timedelta(minutes=m)),
        st.sampled_from([START, END, "$screen", "screen_view", "e"]),
        st.sampled_from(["u", "v"]),
        st.sampled_from(["", "d"]),
        st.sampled_from(["", "1.0", "2.0"]),
        st.just("iOS"),
        st.sampled_from(["", "17"]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(events=events_st, data=st.data())
def test_partial_summaries_merged_in_any_order_equal_the_fold_of_all_events(events, data):
    shuffled = data.draw(st.permutations(events))
    cuts = sorted(data.draw(st.lists(st.integers(1, len(events)), max_size=5)))
    bounds = [0, *cuts, len(events)]
    batches = [shuffled[a:b] for a, b in pairwise(bounds) if a < b]
    partials = data.draw(st.permutations([fold(batch) for batch in batches]))
    assert reduce(merge_explicit, partials) == fold(events)
