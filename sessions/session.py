"""The two shapes the rules work on: an event reduced to what a session keeps of it, and a
session row (the columns of contracts.schema.SESSIONS, in order). Never reads a clock.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from contracts.events import INFERRED_SESSION_PREFIX, SESSION_END

SCREEN_TYPES: Final = frozenset({"$screen", "screen_view"})
"""What screen_count counts: PostHog's mobile SDKs send `$screen`, Firebase-style ones `screen_view`."""

EXPLICIT: Final = "explicit"
INACTIVITY: Final = "inactivity"
CAP: Final = "cap"

INFERRED_PREFIX: Final = INFERRED_SESSION_PREFIX
"""Every inferred session's id is this prefix and 32 hex digits. Ingestion refuses a session_id
that starts with it (contracts.events.check_event); one stored before that rule is treated as
having none (so no client id can ever collide with, or merge into, an inferred session)."""

_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://tidelog.invalid/sessions/inferred")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


class Event(NamedTuple):
    """An event as sessions see it; '' for what the SDK did not send.

    TRICKY: the field order IS the total order that breaks ties between events at the same
    timestamp (tuples compare field by field, strings by code point: PostgreSQL's COLLATE "C"
    on UTF-8). Never the order of arrival: the same set of events must give the same sessions
    whatever order they were delivered in. Two events equal in every field are interchangeable."""

    timestamp: datetime
    event_type: str
    distinct_id: str
    device_id: str
    app_version: str
    os_name: str
    os_version: str


class Session(NamedTuple):
    """One row of rm_sessions, in column order."""

    project_id: int
    session_id: str
    inferred: bool
    distinct_id: str
    device_id: str
    app_version: str
    os_name: str
    os_version: str
    start_at: datetime
    end_at: datetime
    event_count: int
    screen_count: int
    first_event: str
    last_event: str
    ended_by: str

    @property
    def first(self) -> Event:
        """The session's first event (its smallest in the total order), as far as a row keeps it."""
        return Event(
            self.start_at, self.first_event, self.distinct_id, self.device_id, self.app_version, self.os_name,
            self.os_version,
        )  # fmt: skip

    @property
    def last(self) -> tuple[datetime, str]:
        """(end_at, last_event): all of the last event's place in the total order that matters."""
        return self.end_at, self.last_event


def is_explicit_session_id(session_id: str | None) -> bool:
    """Whether an event's session_id makes it part of an explicit session."""
    return session_id is not None and not session_id.startswith(INFERRED_PREFIX)


def inferred_session_id(project_id: int, distinct_id: str, device_id: str, start_at: datetime) -> str:
    """Deterministic: the same (project, distinct_id, device_id, start) always gives the same id.
    JSON, so no choice of ids can make two different keys spell the same name."""
    micros = (start_at - _EPOCH) // _MICROSECOND
    return INFERRED_PREFIX + uuid.uuid5(_NAMESPACE, json.dumps([project_id, distinct_id, device_id, micros])).hex


def fold_explicit(project_id: int, session_id: str, events: list[Event]) -> Session:
    """One explicit session's partial summary of some of its events (any order, at least one)."""
    first = min(events)
    last = max(events)
    screens = 0
    ended = False
    for event in events:
        if event.event_type in SCREEN_TYPES:
            screens += 1
        elif event.event_type == SESSION_END:
            ended = True
    return Session(
        project_id, session_id, False, first.distinct_id, first.device_id, first.app_version, first.os_name,
        first.os_version, first.timestamp, last.timestamp, len(events), screens, first.event_type, last.event_type,
        EXPLICIT if ended else INACTIVITY,
    )  # fmt: skip


def merge_explicit(old: Session, new: Session) -> Session:
    """Two partial summaries of one explicit session as one. Commutative and associative: the
    SQL merge of projections/sessions.py does exactly this, and tests hold it to it."""
    first = min(old.first, new.first)
    last = max(old.last, new.last)
    return Session(
        old.project_id, old.session_id, False, first.distinct_id, first.device_id, first.app_version, first.os_name,
        first.os_version, first.timestamp, last[0], old.event_count + new.event_count,
        old.screen_count + new.screen_count, first.event_type, last[1],
        EXPLICIT if EXPLICIT in (old.ended_by, new.ended_by) else INACTIVITY,
    )  # fmt: skip
