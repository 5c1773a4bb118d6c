"""Inferred sessions: the walk over one (project, distinct_id, device_id)'s events without a
session_id, and the incremental step that keeps its sessions up to date batch by batch without
reading old events unless a late event reshapes them. Pure: the caller reads and writes.

The walk: sort the events by the total order of `Event`; the first event opens a session; each
next event opens a new one if it comes more than `gap` after the previous event (the session it
ends is ended by 'inactivity') or at or after the session's start + `cap` ('cap'). When both
hold, inactivity wins: the session had already gone quiet. A key's last session is 'inactivity'.
"""

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sessions.session import CAP, INACTIVITY, SCREEN_TYPES, Event, Session, inferred_session_id

Key = tuple[int, str, str]
"""(project_id, distinct_id, device_id or '')."""


class Step(NamedTuple):
    """What a batch does to one key's sessions: rows to write whole, and ids to delete."""

    upserts: list[Session]
    deletes: list[str]


class Rewalk(NamedTuple):
    """A batch that reshapes sessions: the caller reads the key's events with
    since <= timestamp < until (until None: no bound), all of them, old and new, and calls
    `rewalk`. `replaced` are the existing sessions of that range."""

    since: datetime
    until: datetime | None
    replaced: list[Session]


class _Open:
    """A session being walked."""

    __slots__ = ("count", "first", "last", "screens", "session_id")

    def __init__(
        self, first: Event, last: tuple[datetime, str], count: int, screens: int, session_id: str | None = None
    ) -> None:
        self.first = first
        self.last = last
        self.count = count
        self.screens = screens
        self.session_id = session_id
        """Known when resumed: nothing here moves a start's time, so nothing renames it."""

    @classmethod
    def opened_by(cls, event: Event) -> "_Open":
        return cls(event, (event.timestamp, event.event_type), 1, 1 if event.event_type in SCREEN_TYPES else 0)

    @classmethod
    def resumed(cls, session: Session) -> "_Open":
        return cls(session.first, session.last, session.event_count, session.screen_count, session.session_id)

    def add(self, event: Event) -> None:
        """Any event inside the session, in any order."""
        self.count += 1
        self.screens += event.event_type in SCREEN_TYPES
        if event < self.first:
            self.first = event
        last = (event.timestamp, event.event_type)
        if last > self.last:
            self.last = last

    def close(self, key: Key, ended_by: str) -> Session:
        first = self.first
        project_id, distinct_id, device_id = key
        session_id = self.session_id or inferred_session_id(project_id, distinct_id, device_id, first.timestamp)
        return Session(
            project_id, session_id, True, distinct_id,
            device_id, first.app_version, first.os_name, first.os_version, first.timestamp, self.last[0],
            self.count, self.screens, first.event_type, self.last[1], ended_by,
        )  # fmt: skip


def _walk(
    key: Key, events: Iterable[Event], current: _Open | None, gap: timedelta, cap: timedelta, out: list[Session]
) -> _Open | None:
    """Walk `events` (sorted, all after `current`'s last) on from `current`; append every session
    they close to `out`; return the one still open."""
    for event in events:
        if current is None:
            current = _Open.opened_by(event)
            continue
        moment = event.timestamp
        if moment - current.last[0] > gap:
            out.append(current.close(key, INACTIVITY))
        elif moment - current.first.timestamp >= cap:
            out.append(current.close(key, CAP))
        else:
            current.count += 1
            current.screens += event.event_type in SCREEN_TYPES
            current.last = (moment, event.event_type)  # sorted: never behind the last
            continue
        current = _Open.opened_by(event)
    return current


def sessionize(key: Key, events: Iterable[Event], *, gap: timedelta, cap: timedelta) -> list[Session]:
    """The reference: every session of one key from all its events, in any order."""
    sessions: list[Session] = []
    current = _walk(key, sorted(events), None, gap, cap, sessions)
    if current is not None:
        sessions.append(current.close(key, INACTIVITY))
    return sessions


def near_since(first_new: datetime, gap: timedelta) -> datetime:
    """`advance` needs every existing session of the key with end_at at or after this (the
    first new event's time less the gap). Since a session lasts less than the cap, they all
    start after near_since - cap."""
    return first_new - gap


def advance(
    key: Key, near: Sequence[Session], new: Sequence[Event], *, gap: timedelta, cap: timedelta
) -> Step | Rewalk:
    """One batch's new events of `key` (sorted) against `near`: the key's existing sessions with
    end_at >= near_since(new[0].timestamp), sorted by start_at.

    Without reading events: an event inside an existing session's [start_at, end_at] only adds to
    it (no boundary moves: the gaps around it only shrink and the start's time stays); events
    after the key's last session extend it or open new ones, as the walk would. Anything else (an
    event before a session or between two) may merge, split or rename sessions: Rewalk."""
    starts = [session.start_at for session in near]
    touched: dict[int, _Open] = {}
    last_end = near[-1].end_at if near else None
    tail = len(new)
    for index, event in enumerate(new):
        if last_end is None or event.timestamp > last_end:
            tail = index
            break
        at = bisect_right(starts, event.timestamp) - 1
        if at < 0 or event.timestamp > near[at].end_at:
            return _rewalk_plan(near, new, gap)
        current = touched.get(at)
        if current is None:
            current = touched[at] = _Open.resumed(near[at])
        current.add(event)
    upserts: list[Session] = []
    if tail < len(new):
        last = touched.pop(len(near) - 1, None) or (_Open.resumed(near[-1]) if near else None)
        still_open = _walk(key, new[tail:], last, gap, cap, upserts)
        assert still_open is not None  # the tail holds at least one event
        upserts.append(still_open.close(key, INACTIVITY))
    # Their start's time, hence their id, and how they ended are unchanged.
    upserts.extend(current.close(key, near[at].ended_by) for at, current in touched.items())
    return Step(upserts, [])


def _rewalk_plan(near: Sequence[Session], new: Sequence[Event], gap: timedelta) -> Rewalk:
    first, last = new[0].timestamp, new[-1].timestamp
    # From the start of the session the first new event falls in or after: every boundary
    # before it stands (the walk decides a boundary from earlier events only). With no such
    # session in `near`, the key's previous event is more than the gap before it: it opens one.
    since = first
    for session in near:
        if session.start_at <= first:
            since = session.start_at
    # Up to the first session that must still open where it does: more than the gap after
    # every new event and after the session before it. From there on nothing changes.
    until = None
    for index, session in enumerate(near):
        if session.start_at - last > gap and (index == 0 or session.start_at - near[index - 1].end_at > gap):
            until = session.start_at
            break
    replaced = [s for s in near if s.start_at >= since and (until is None or s.start_at < until)]
    return Rewalk(since, until, replaced)


def rewalk(key: Key, plan: Rewalk, events: Iterable[Event], *, gap: timedelta, cap: timedelta) -> Step:
    """The Rewalk's outcome, from every event of the key in [plan.since, plan.until)."""
    sessions = sessionize(key, events, gap=gap, cap=cap)
    kept = {session.session_id for session in sessions}
    return Step(sessions, [s.session_id for s in plan.replaced if s.session_id not in kept])
