"""The client's settings: the host, the project's public key and the defaults of the README."""

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TidelogConfig:
    host: str
    """The command API's base URL, e.g. `https://tidelog.example.com` (no `/api/v1/...`)."""
    api_key: str
    """The project's public key, `tlp_...`."""
    storage_dir: Path | None = None
    """Where the queue, state.json, flags.json and exposures.txt live; None keeps them in memory."""
    flush_at: int = 100
    flush_interval_seconds: float = 30
    max_queue_size: int = 10_000
    max_backoff_seconds: float = 300
    base_backoff_seconds: float = 1
    session_timeout_seconds: float = 1800
    bootstrap_flags: dict[str, bool | str] = field(default_factory=dict)
    app_version: str | None = None
    os_name: str = field(default_factory=platform.system)
    os_version: str = field(default_factory=platform.release)
    person_properties: dict[str, Any] = field(default_factory=dict)
    """Sent with every for_user request, for flags whose conditions name them."""

    def url(self, path: str) -> str:
        return f"{self.host.rstrip('/')}/api/v1/analytics/{path}"
