"""JSON, gzip, UTC time stamps in milliseconds, and a small JSON file for the client's state."""

import gzip
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def to_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def from_json(data: bytes | str) -> Any:
    return json.loads(data)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC with milliseconds: `2026-11-25T10:00:00.123Z`."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_atomically(path: Path, data: bytes) -> None:
    """Whole or not at all: written to a temporary name, then renamed over `path`."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class JsonFile:
    """A JSON object kept in memory and, when `path` is set, on disk (read once, written whole)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.values: dict[str, Any] = {}
        if path is not None and path.exists():
            try:
                loaded = from_json(path.read_bytes())
            except ValueError:
                loaded = {}  # unreadable: start afresh rather than fail the app
            self.values = loaded if isinstance(loaded, dict) else {}

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def update(self, **values: Any) -> None:
        self.values.update(values)
        if self.path is not None:
            write_atomically(self.path, to_json(self.values))
