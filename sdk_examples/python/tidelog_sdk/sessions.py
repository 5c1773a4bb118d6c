"""Sessions: one starts when the app comes to the foreground with no session, or with one that
has been in the background for session_timeout_seconds or more. The old one's end is queued
then, stamped with the time the app went to the background (a phone runs no timer there)."""

import uuid
from collections.abc import Callable
from typing import Any

from .config import TidelogConfig
from .event_queue import SESSION_END, SESSION_START, EventQueue
from .wire import JsonFile, timestamp

# How stale the stored `active_at` may get: a process that dies in the foreground (a crash, a
# kill) has no background time, and its session's end is stamped with this instead.
ACTIVE_AT_EVERY_SECONDS = 60


class Sessions:
    def __init__(
        self, config: TidelogConfig, queue: EventQueue, state: JsonFile, common: Callable[[], dict[str, Any]]
    ) -> None:
        """`state` holds session_id, backgrounded_at and active_at (state.json); `common` gives
        the fields every request carries (distinct_id, device_id, app_version, os_name, os_version)."""
        self.timeout = config.session_timeout_seconds
        self.queue, self.state, self.common = queue, state, common
        if self.session_id is not None and state.get("backgrounded_at") is None:
            # A cold start after the process died in the foreground: it was last seen active then.
            state.update(backgrounded_at=state.get("active_at") or 0.0)

    @property
    def session_id(self) -> str | None:
        session_id: str | None = self.state.get("session_id")
        return session_id

    def on_foreground(self, now: float) -> None:
        backgrounded_at: float | None = self.state.get("backgrounded_at")
        if self.session_id is not None and (backgrounded_at is None or now - backgrounded_at < self.timeout):
            if backgrounded_at is not None:
                self.state.update(backgrounded_at=None, active_at=now)  # resumed
            return
        if self.session_id is not None:
            self.end(backgrounded_at if backgrounded_at is not None else now)
        self.start(now)

    def on_background(self, now: float) -> None:
        if self.session_id is not None:
            self.state.update(backgrounded_at=now, active_at=now)

    def touch(self, now: float) -> None:
        """An event was tracked: remember, now and then, that the app was in use."""
        if self.session_id is not None and now - (self.state.get("active_at") or 0.0) >= ACTIVE_AT_EVERY_SECONDS:
            self.state.update(active_at=now)

    def start(self, now: float) -> None:
        session_id = str(uuid.uuid4())
        self.queue.add(SESSION_START, {**self.common(), "session_id": session_id, "timestamp": timestamp(now)})
        self.state.update(session_id=session_id, backgrounded_at=None, active_at=now)

    def end(self, at: float) -> None:
        """Queues the end of the current session, if any, stamped `at`, and forgets it."""
        if self.session_id is None:
            return
        self.queue.add(f"{SESSION_END} {self.session_id}", {**self.common(), "timestamp": timestamp(at)})
        self.state.update(session_id=None, backgrounded_at=None)
