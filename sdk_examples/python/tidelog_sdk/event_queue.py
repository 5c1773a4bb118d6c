"""The queue of requests waiting to be sent: one file per request (FileQueue), or a list in
memory with the same interface (MemoryQueue, for the load test)."""

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .wire import from_json, to_json

log = logging.getLogger("tidelog")

EVENT = "event"
SESSION_START = "session_start"
SESSION_END = "session_end"  # the kind is "session_end <session_id>"


@dataclass(frozen=True)
class Item:
    id: str
    kind: str
    body: dict[str, Any]


class EventQueue(Protocol):
    dropped: int

    def add(self, kind: str, body: dict[str, Any]) -> None: ...
    def peek(self, n: int) -> list[Item]: ...
    def remove(self, items: list[Item]) -> None: ...
    def __len__(self) -> int: ...


class FileQueue:
    """`<directory>/<millis:013d>-<counter:06d>.req`: the first line the kind, then the JSON body.
    Written to a `.tmp` name and renamed, so a killed process leaves the whole request or none."""

    def __init__(self, directory: Path, max_size: int, clock: Callable[[], float] = time.time) -> None:
        self.directory, self.max_size, self.clock = directory, max_size, clock
        self.dropped = 0
        self.lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.tmp"):  # a write the process did not finish
            leftover.unlink(missing_ok=True)
        self.names = deque(sorted(path.name for path in directory.glob("*.req")))
        newest = self.names[-1] if self.names else "0000000000000-000000"
        self.last_millis, self.counter = int(newest[:13]), int(newest[14:20])

    def add(self, kind: str, body: dict[str, Any]) -> None:
        with self.lock:
            # Never before the newest name, even when the clock went back: the name is the order.
            millis = max(int(self.clock() * 1000), self.last_millis)
            self.counter = self.counter + 1 if millis == self.last_millis else 0
            if self.counter > 999_999:
                millis, self.counter = millis + 1, 0
            self.last_millis = millis
            name = f"{millis:013d}-{self.counter:06d}.req"
            while len(self.names) >= self.max_size:
                (self.directory / self.names.popleft()).unlink(missing_ok=True)
                self.dropped += 1
                log.warning("tidelog: queue full, dropped the oldest request (%d so far)", self.dropped)
            temporary = self.directory / (name + ".tmp")
            temporary.write_bytes(kind.encode() + b"\n" + to_json(body))
            os.replace(temporary, self.directory / name)
            self.names.append(name)

    def peek(self, n: int) -> list[Item]:
        with self.lock:
            items = []
            for name in list(itertools.islice(self.names, n)):
                try:
                    kind, _, body = (self.directory / name).read_bytes().partition(b"\n")
                    items.append(Item(name, kind.decode(), from_json(body)))
                except (OSError, ValueError):  # gone or damaged: nothing could ever send it
                    log.warning("tidelog: unreadable queue file %s deleted", name)
                    (self.directory / name).unlink(missing_ok=True)
                    self.names.remove(name)
            return items

    def remove(self, items: list[Item]) -> None:
        with self.lock:
            for item in items:
                (self.directory / item.id).unlink(missing_ok=True)
            gone = {item.id for item in items}
            self.names = deque(name for name in self.names if name not in gone)

    def __len__(self) -> int:
        return len(self.names)


class MemoryQueue:
    """The same queue in memory: lost with the process."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.dropped = 0
        self.lock = threading.Lock()
        self.items: deque[Item] = deque()
        self.ids = itertools.count()

    def add(self, kind: str, body: dict[str, Any]) -> None:
        with self.lock:
            while len(self.items) >= self.max_size:
                self.items.popleft()
                self.dropped += 1
                log.warning("tidelog: queue full, dropped the oldest request (%d so far)", self.dropped)
            self.items.append(Item(f"{next(self.ids):06d}", kind, body))

    def peek(self, n: int) -> list[Item]:
        with self.lock:
            return list(itertools.islice(self.items, n))

    def remove(self, items: list[Item]) -> None:
        with self.lock:
            gone = {item.id for item in items}
            self.items = deque(item for item in self.items if item.id not in gone)

    def __len__(self) -> int:
        return len(self.items)
