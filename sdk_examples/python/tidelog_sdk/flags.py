"""Feature flags: for_user's answer, fetched on start, identify and reset (never queued), cached
in flags.json and served from there; bootstrap_flags before any answer; one `$feature_flag_called`
per user, flag and value, remembered in exposures.txt."""

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import TidelogConfig
from .transport import Transport
from .wire import JsonFile, to_json

log = logging.getLogger("tidelog")

FlagValue = bool | str


class Flags:
    def __init__(
        self,
        config: TidelogConfig,
        transport: Transport,
        track: Callable[[str, dict[str, Any]], Any],
    ) -> None:
        self.config, self.transport, self.track = config, transport, track
        storage = config.storage_dir
        self.cache = JsonFile(storage / "flags.json" if storage else None)  # {"distinct_id", "flags"}
        self.exposures_path: Path | None = storage / "exposures.txt" if storage else None
        self.exposures: set[str] = set()
        if self.exposures_path is not None and self.exposures_path.exists():
            self.exposures = set(self.exposures_path.read_text().splitlines())

    def fetch(self, distinct_id: str) -> bool:
        """Asks for_user; on any failure the cache stays as it was. Says whether it succeeded."""
        body = to_json({"distinct_id": distinct_id, "person_properties": self.config.person_properties})
        headers = {"Authorization": f"Bearer {self.config.api_key}", "Content-Type": "application/json"}
        try:
            answer = self.transport.send("POST", self.config.url("public/feature-flags/for_user/"), body, headers)
            flags = answer.json()["flags"] if answer.status == 200 else None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.info("tidelog: flags not fetched (%r), keeping the cached ones", error)
            return False
        if not isinstance(flags, dict):
            log.info("tidelog: flags not fetched (%d), keeping the cached ones", answer.status)
            return False
        self.cache.update(distinct_id=distinct_id, flags=flags)
        return True

    def keys(self) -> list[str]:
        return sorted(self.cache.get("flags") or self.config.bootstrap_flags)

    def value(self, key: str) -> FlagValue | None:
        """The variant's name, or True / False; None for a flag nobody has answered for."""
        flags = self.cache.get("flags")
        if flags is None:
            return self.config.bootstrap_flags.get(key)
        answer = flags.get(key)
        if not isinstance(answer, dict):
            return None
        variant = answer.get("variant")
        return variant if isinstance(variant, str) else bool(answer.get("enabled"))

    def payload(self, key: str) -> Any:
        answer = (self.cache.get("flags") or {}).get(key)
        return answer.get("payload") if isinstance(answer, dict) else None

    def read(self, key: str, distinct_id: str) -> FlagValue | None:
        """The flag's value, reporting its exposure the first time this user sees this value."""
        value = self.value(key)
        if value is None:
            return None
        exposure = json.dumps([distinct_id, key, value])
        if exposure not in self.exposures:
            self.exposures.add(exposure)
            if self.exposures_path is not None:
                with self.exposures_path.open("a") as file:
                    file.write(exposure + "\n")
            self.track("$feature_flag_called", {"$feature_flag": key, "$feature_flag_response": value})
        return value

    def forget(self) -> None:
        """Log out: no cached answer (bootstrap_flags again until the next fetch), no exposures."""
        self.cache.values.clear()
        self.cache.update()
        self.exposures.clear()
        if self.exposures_path is not None:
            self.exposures_path.unlink(missing_ok=True)
