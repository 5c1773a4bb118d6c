"""The command API's in-process cache of project key lookups: bounded, and never holding a key.

Pure (no Django, no I/O; the clock is a parameter) so its bounds are tested directly. Entries are
keyed by a digest of the key, so a 1 MiB junk key costs 16 bytes here, not 1 MiB.
"""

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass


def key_digest(api_key: str) -> bytes:
    # A cache key, not a secret's protection: project keys are public. 128 bits cannot collide
    # by accident among any number of keys a process will ever see.
    return hashlib.blake2b(api_key.encode(), digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class Lookup:
    project_id: int | None
    is_fresh: bool


class KeyCache:
    """Known keys in one LRU (kept past their TTL: served stale while PostgreSQL is unreachable);
    unknown keys in another, dropped once expired and never served stale. Both capped."""

    def __init__(self, *, ttl_seconds: float, max_entries: int) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._known: OrderedDict[bytes, tuple[float, int]] = OrderedDict()
        # TRICKY: every entry gets the same TTL and a refresh moves it to the end, so this dict is
        # in expiry order: expired entries are always at the front, and eviction pops from there.
        self._unknown: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)

    def get(self, digest: bytes, now: float) -> Lookup | None:
        """A fresh answer, or a stale known project (is_fresh False), or None: ask the database."""
        with self._lock:
            self._expire_unknown(now)
            if digest in self._unknown:
                return Lookup(None, True)
            known = self._known.get(digest)
            if known is None:
                return None
            self._known.move_to_end(digest)
            return Lookup(known[1], known[0] > now)

    def put(self, digest: bytes, project_id: int | None, now: float) -> None:
        expires = now + self.ttl_seconds
        with self._lock:
            if project_id is None:
                self._known.pop(digest, None)
                self._unknown[digest] = expires
                self._unknown.move_to_end(digest)
            else:
                self._unknown.pop(digest, None)
                self._known[digest] = (expires, project_id)
                self._known.move_to_end(digest)
            self._expire_unknown(now)
            # Unknown keys are evicted first: a flood of junk must not push out the real keys.
            while len(self) > self.max_entries and self._unknown:
                self._unknown.popitem(last=False)
            while len(self) > self.max_entries:
                self._known.popitem(last=False)

    def _expire_unknown(self, now: float) -> None:
        while self._unknown:
            digest, expires = next(iter(self._unknown.items()))
            if expires > now:
                return
            del self._unknown[digest]
