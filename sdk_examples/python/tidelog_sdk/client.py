"""The facade an app calls: track, screen, identify, reset, flags, flush, and the app's
foreground and background. Without start() it is driven by the caller (flush() sends in the
caller's thread); start() adds a thread that flushes on flush_at, every flush_interval_seconds,
on background and on flush(), and fetches the flags."""

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from .config import TidelogConfig
from .event_queue import EVENT, EventQueue, FileQueue, MemoryQueue
from .flags import Flags, FlagValue
from .sender import Sender
from .sessions import Sessions
from .transport import Transport, UrllibTransport
from .wire import JsonFile, timestamp

log = logging.getLogger("tidelog")


class Tidelog:
    def __init__(
        self,
        config: TidelogConfig,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config, self.clock = config, clock
        self.transport = transport or UrllibTransport()
        storage = config.storage_dir
        self.queue: EventQueue
        if storage is None:
            self.queue = MemoryQueue(config.max_queue_size)
        else:
            storage.mkdir(parents=True, exist_ok=True)
            self.queue = FileQueue(storage / "queue", config.max_queue_size, clock)
        self.state = JsonFile(storage / "state.json" if storage else None)
        if self.state.get("distinct_id") is None:  # a fresh install
            self.state.update(distinct_id=str(uuid.uuid4()), device_id=str(uuid.uuid4()))
        self.sessions = Sessions(config, self.queue, self.state, self.common)
        self.flags = Flags(config, self.transport, self.track)
        self.sender = Sender(config, self.queue, self.transport, clock, rng)
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()
        self.stopping = False
        self.flush_wanted = False
        self.flags_wanted = True  # fetched when the thread starts, or by the caller's fetch_flags()

    @property
    def distinct_id(self) -> str:
        return str(self.state.get("distinct_id"))

    @property
    def device_id(self) -> str:
        return str(self.state.get("device_id"))

    def common(self) -> dict[str, Any]:
        """The fields every event and session request carries."""
        fields = {"distinct_id": self.distinct_id, "device_id": self.device_id, "app_version": self.config.app_version,
                  "os_name": self.config.os_name, "os_version": self.config.os_version}  # fmt: skip
        return {key: value for key, value in fields.items() if value is not None}

    # --- what an app calls ---------------------------------------------------------------------

    def track(self, event_type: str, properties: dict[str, Any] | None = None) -> str:
        """Queues the event, its uuid and time stamped now; returns the uuid."""
        now = self.clock()
        event = {**self.common(), "event_type": event_type, "uuid": str(uuid.uuid4()), "timestamp": timestamp(now),
                 "properties": properties or {}}  # fmt: skip
        if self.sessions.session_id is not None:
            event["session_id"] = self.sessions.session_id
        self.queue.add(EVENT, event)
        self.sessions.touch(now)
        if len(self.queue) >= self.config.flush_at and self.thread is not None:
            self.wake.set()
        return str(event["uuid"])

    def screen(self, name: str, properties: dict[str, Any] | None = None) -> str:
        return self.track("$screen", {**(properties or {}), "$screen_name": name})

    def identify(self, user_id: str, set: dict[str, Any] | None = None, set_once: dict[str, Any] | None = None) -> None:
        """The anonymous id becomes `user_id` from now on; the flags are fetched again for it."""
        properties: dict[str, Any] = {"$anon_distinct_id": self.distinct_id}
        if set:
            properties["$set"] = set
        if set_once:
            properties["$set_once"] = set_once
        self.state.update(distinct_id=user_id)
        self.track("$identify", properties)
        self.fetch_flags()

    def reset(self) -> None:
        """Log out: the session ends now; a new anonymous id, a new session, no flags or exposures."""
        now = self.clock()
        had_session = self.sessions.session_id is not None
        self.sessions.end(now)
        self.state.update(distinct_id=str(uuid.uuid4()))
        self.flags.forget()
        if had_session:
            self.sessions.start(now)
        self.fetch_flags()

    def is_enabled(self, key: str) -> bool:
        return bool(self.flags.read(key, self.distinct_id))

    def get_variant(self, key: str) -> FlagValue | None:
        """The variant's name for a multivariate flag, True / False for a boolean one."""
        return self.flags.read(key, self.distinct_id)

    def get_payload(self, key: str) -> Any:
        self.flags.read(key, self.distinct_id)
        return self.flags.payload(key)

    def fetch_flags(self) -> None:
        """for_user again: by the thread when started, else now in this thread."""
        if self.thread is None:
            self.flags_wanted = False
            self.flags.fetch(self.distinct_id)
        else:
            self.flags_wanted = True
            self.wake.set()

    def on_foreground(self) -> None:
        self.sessions.on_foreground(self.clock())

    def on_background(self) -> None:
        self.sessions.on_background(self.clock())
        self.flush()

    def flush(self) -> None:
        """Sends what is queued: by the thread when started, else now in this thread, until the
        queue is empty or a failure makes it wait."""
        if self.thread is None:
            self.sender.flush()
        else:
            self.flush_wanted = True
            self.wake.set()

    # --- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self.run, name="tidelog", daemon=True)
            self.thread.start()

    def shutdown(self, timeout_seconds: float = 10) -> None:
        """Stops the thread, then sends what it can (unless backing off): nothing queued is lost,
        it waits on disk for the next start."""
        thread, self.thread = self.thread, None
        if thread is not None:
            self.stopping = True
            self.wake.set()
            thread.join(timeout_seconds)
        self.sender.flush()

    def run(self) -> None:
        next_flush = self.clock() + self.config.flush_interval_seconds
        while not self.stopping:
            self.wake.clear()
            try:
                if self.flags_wanted:
                    self.flags_wanted = False
                    self.flags.fetch(self.distinct_id)
                now = self.clock()
                if self.flush_wanted or now >= next_flush or len(self.queue) >= self.config.flush_at:
                    next_flush = now + self.config.flush_interval_seconds
                    self.sender.flush()
                    self.flush_wanted = self.sender.backing_off() and len(self.queue) > 0
            except Exception:  # a bug must not stop the thread: what is queued stays queued
                log.exception("tidelog: the sending thread failed; going on")
            wake_at = min(next_flush, self.sender.retry_at) if self.flush_wanted else next_flush
            self.wake.wait(max(0.0, wake_at - self.clock()))
