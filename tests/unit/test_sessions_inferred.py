"""Inferred sessions (sessions/inferred.py), pure: the walk's gap and cap boundaries, late
events, and the incremental step equal to the plain walk whatever the batches and their order."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.inferred import Key, Rewalk, Step, advance, near_since, rewalk, sessionize
from sessions.session import CAP, INACTIVITY, Event, Session, inferred_session_id

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
GAP = timedelta(minutes=30)
CAP_AFTER = timedelta(hours=24)
KEY: Key = (1, "u", "d")


def ev(minutes: float, event_type: str = "e", app_version: str = "", key: Key = KEY) -> Event:
    return Event(T0 + timedelta(minutes=minutes), event_type, key[1], key[2], app_version, "", "")


def walk(events, gap=GAP, cap=CAP_AFTER) -> list[Session]:
    return sessionize(KEY, events, gap=gap, cap=cap)


def spans(sessions: list[Session]) -> list[tuple[float, float, int, str]]:
    return [
        ((s.start_at - T0) / timedelta(minutes=1), (s.end_at - T0) / timedelta(minutes=1), s.event_count, s.ended_by)
        for s in sessions
    ]


def apply_batches(batches: list[list[Event]], gap=GAP, cap=CAP_AFTER) -> dict[str, Session]:
    """What projections/sessions.py does batch after batch, with an in-memory read model and
    event store: load the near sessions, advance, rewalk from the stored events if asked."""
    rows: dict[str, Session] = {}
    stored: list[Event] = []
    for batch in batches:
        by_key: dict[Key, list[Event]] = {}
        for event in batch:
            by_key.setdefault((1, event.distinct_id, event.device_id), []).append(event)
        outcomes: list[Step] = []
        for key, new in by_key.items():
            new.sort()
            since = near_since(new[0].timestamp, gap)
            near = sorted(
                (s for s in rows.values() if (s.project_id, s.distinct_id, s.device_id) == key and s.end_at >= since),
                key=lambda s: s.start_at,
            )
            step = advance(key, near, new, gap=gap, cap=cap)
            if isinstance(step, Rewalk):
                seen = [
                    e for e in [*stored, *new]
                    if (1, e.distinct_id, e.device_id) == key
                    and step.since <= e.timestamp and (step.until is None or e.timestamp < step.until)
                ]  # fmt: skip
                step = rewalk(key, step, seen, gap=gap, cap=cap)
            outcomes.append(step)
        for step in outcomes:
            for session_id in step.deletes:
                del rows[session_id]
            for session in step.upserts:
                rows[session.session_id] = session
        stored.extend(batch)
    return rows


def reference(events: list[Event], gap=GAP, cap=CAP_AFTER) -> dict[str, Session]:
    by_key: dict[Key, list[Event]] = {}
    for event in events:
        by_key.setdefault((1, event.distinct_id, event.device_id), []).append(event)
    return {s.session_id: s for key, same in by_key.items() for s in sessionize(key, same, gap=gap, cap=cap)}


def test_an_event_exactly_the_gap_after_the_previous_one_stays_in_its_session():
    assert spans(walk([ev(0), ev(30)])) == [(0, 30, 2, INACTIVITY)]


def test_an_event_a_microsecond_past_the_gap_opens_a_new_session_ended_by_inactivity():
    late = Event(T0 + GAP + timedelta(microseconds=1), "e", "u", "d", "", "", "")
    assert [s.ended_by for s in walk([ev(0), late])] == [INACTIVITY, INACTIVITY]
    assert len(walk([ev(0), late])) == 2


def test_an_event_exactly_at_start_plus_cap_opens_a_new_session_and_the_old_one_ended_by_cap():
    events = [ev(minutes) for minutes in range(0, 24 * 60 + 1, 20)]  # every 20 minutes for 24 h
    assert spans(walk(events)) == [(0, 24 * 60 - 20, 72, CAP), (24 * 60, 24 * 60, 1, INACTIVITY)]


def test_an_event_a_microsecond_before_the_cap_stays_in_its_session():
    events = [ev(minutes) for minutes in range(0, 24 * 60, 20)]
    events.append(Event(T0 + CAP_AFTER - timedelta(microseconds=1), "e", "u", "d", "", "", ""))
    [session] = walk(events)
    assert session.event_count == 73 and session.ended_by == INACTIVITY


def test_inactivity_wins_when_the_gap_and_the_cap_both_end_a_session():
    assert [s.ended_by for s in walk([ev(0), ev(25 * 60)])] == [INACTIVITY, INACTIVITY]


def test_the_session_keeps_its_first_events_attributes_and_first_and_last_types():
    [session] = walk([ev(5, "b", "2.0"), ev(0, "$screen", "1.0"), ev(9, "screen_view"), ev(9, "z")])
    assert (session.first_event, session.last_event, session.app_version) == ("$screen", "z", "1.0")
    assert (session.event_count, session.screen_count) == (4, 2)
    # Integers, not booleans: they are written to int8 columns.
    assert {type(s.screen_count) for s in walk([ev(0, "e"), ev(90, "$screen")])} == {int}
    assert session.session_id == inferred_session_id(1, "u", "d", T0)
    assert session.session_id.startswith("inferred-") and len(session.session_id) == len("inferred-") + 32


def test_ties_at_one_time_are_broken_by_the_events_values_not_their_order():
    a, b = ev(0, "b", "1.0"), ev(0, "a", "2.0")
    assert walk([a, b]) == walk([b, a])
    assert walk([a, b])[0].first_event == "a" and walk([a, b])[0].app_version == "2.0"


def test_an_event_inside_a_session_adds_to_it_without_reading_events():
    sessions = walk([ev(0), ev(20)])
    step = advance(KEY, sessions, [ev(10, "$screen")], gap=GAP, cap=CAP_AFTER)
    assert isinstance(step, Step) and step.deletes == []
    assert step.upserts == walk([ev(0), ev(10, "$screen"), ev(20)])


def test_events_after_the_last_session_extend_it_or_open_new_ones_without_reading_events():
    sessions = walk([ev(0), ev(20)])
    step = advance(KEY, sessions, [ev(45), ev(120), ev(130)], gap=GAP, cap=CAP_AFTER)
    assert isinstance(step, Step)
    assert sorted(step.upserts) == sorted(walk([ev(0), ev(20), ev(45), ev(120), ev(130)]))


def test_an_offline_queue_flushed_hours_late_lands_after_the_last_session():
    # A device offline for a flight: its events reach the server 9 hours after they happened,
    # after everything else it sent; they still form the sessions of their own times.
    before = walk([ev(0), ev(10)])
    flushed = [ev(60 + m) for m in range(0, 200, 10)]
    rows = apply_batches([[ev(0), ev(10)], flushed])
    assert rows == reference([ev(0), ev(10), *flushed])
    assert before[0].session_id in rows and len(rows) == 2


def test_a_late_event_bridging_two_sessions_merges_them_into_one():
    sessions = walk([ev(0), ev(20), ev(70), ev(80)])
    assert len(sessions) == 2
    step = advance(KEY, sessions, [ev(45)], gap=GAP, cap=CAP_AFTER)
    assert isinstance(step, Rewalk) and step.since == T0 and step.until is None
    merged = rewalk(KEY, step, [ev(0), ev(20), ev(45), ev(70), ev(80)], gap=GAP, cap=CAP_AFTER)
    assert spans(merged.upserts) == [(0, 80, 5, INACTIVITY)]
    assert merged.deletes == [sessions[1].session_id]


def test_a_late_event_before_the_start_moves_the_start_and_the_cap_split_with_it():
    every_20_minutes = [ev(minutes) for minutes in range(0, 25 * 60, 20)]
    assert spans(walk(every_20_minutes))[0][:2] == (0, 24 * 60 - 20)
    late = ev(-30)  # exactly the gap before the first: joins it
    rows = apply_batches([every_20_minutes, [late]])
    assert rows == reference([*every_20_minutes, late])
    first, second = sorted(rows.values(), key=lambda s: s.start_at)
    # The start moved 30 minutes back, so the cap now cuts before 23:30 instead of 24:00, and
    # both sessions were renamed (an inferred session's id is derived from its start).
    assert spans([first, second]) == [(-30, 24 * 60 - 40, 72, CAP), (24 * 60 - 20, 25 * 60 - 20, 4, INACTIVITY)]
    assert first.session_id == inferred_session_id(1, "u", "d", T0 - timedelta(minutes=30))


def test_a_rewalk_stops_at_the_first_session_no_late_event_can_reach():
    sessions = walk([ev(0), ev(70), ev(200), ev(210)])
    step = advance(KEY, sessions, [ev(40)], gap=GAP, cap=CAP_AFTER)
    assert isinstance(step, Rewalk)
    assert (step.since, step.until) == (T0, T0 + timedelta(minutes=200))
    assert [s.start_at for s in step.replaced] == [T0, T0 + timedelta(minutes=70)]


# Small gap and cap, and times on a coarse grid: ties, gaps, caps and late events are common.
events_st = st.lists(
    st.builds(
        Event,
        st.integers(0, 400).map(lambda m: T0 + timedelta(minutes=m)),
        st.sampled_from(["e", "$screen", "a"]),
        st.sampled_from(["u", "v"]),
        st.sampled_from(["", "d"]),
        st.sampled_from(["", "1.0", "2.0"]),
        st.just("iOS"),
        st.just(""),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events=events_st, data=st.data())
def test_the_incremental_step_equals_the_walk_over_all_events_in_any_batches_and_order(events, data):
    shuffled = data.draw(st.permutations(events))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=6)))
    bounds = [0, *cuts, len(events)]
    batches = [shuffled[a:b] for a, b in pairwise(bounds) if a < b]
    gap, cap = timedelta(minutes=30), timedelta(minutes=data.draw(st.sampled_from([45, 90, 180])))
    assert apply_batches(batches, gap, cap) == reference(events, gap, cap)
