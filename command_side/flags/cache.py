"""Flag definitions where evaluation finds them without touching PostgreSQL.

Three levels:
- PostgreSQL: FlagRow (tidelog_flag_definitions), kept beside the aggregates by service.py.
- Redis: one snapshot per project (`{prefix}:flags:project:{id}`, the project's live flags as
  JSON) and one generation counter (`{prefix}:flags:generation`) that every publish increments.
- Each process: compiled flags per project (FlagCache), trusted until the generation changes.
  A process reads the generation at most once every TIDELOG_FLAG_CACHE_CHECK_SECONDS (0.5 s),
  so a change reaches every evaluator within that plus one Redis read; between checks a request
  does no I/O at all.

A process that has never seen a project reads its snapshot from Redis; only when Redis has none
(a Redis that restarted without its data) is the snapshot rebuilt from PostgreSQL and published.
When Redis is down, evaluators keep serving what they hold.
"""

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import redis
from django.conf import settings
from django.db import connection, transaction

from command_side import buffer
from command_side.models import FlagRow
from flags.definition import FlagDefinition
from flags.evaluate import CompiledFlag, compile_flag

log = logging.getLogger("tidelog.flags")

# pg_advisory_xact_lock(namespace, project): publishers of one project run one at a time, so
# the snapshot in Redis is always the newest one read (no older read can overwrite it).
_PUBLISH_LOCK = 0x7D20


class Snapshot(msgspec.Struct, frozen=True):
    project_id: int
    flags: tuple[FlagDefinition, ...]


_encode = msgspec.json.Encoder().encode
decode_snapshot = msgspec.json.Decoder(Snapshot).decode


def generation_key() -> str:
    return f"{settings.REDIS_PREFIX}:flags:generation"


def snapshot_key(project_id: int) -> str:
    return f"{settings.REDIS_PREFIX}:flags:project:{project_id}"


def live_definitions(project_id: int) -> tuple[FlagDefinition, ...]:
    """The project's flags that are not archived, from PostgreSQL, in key order."""
    rows = FlagRow.objects.filter(project_id=project_id, archived=False).order_by("key").values_list("definition")
    return tuple(msgspec.convert(definition, FlagDefinition) for (definition,) in rows)


def publish(project_id: int) -> Snapshot:
    """Put the project's current definitions in Redis, bump the generation, and return what was
    put. Raises redis.RedisError when Redis is unreachable (the caller decides what that means)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_PUBLISH_LOCK, project_id])
        snapshot = Snapshot(project_id, live_definitions(project_id))
        pipe = buffer.client().pipeline(transaction=True)
        pipe.set(snapshot_key(project_id), _encode(snapshot))
        pipe.incr(generation_key())
        pipe.execute()
    return snapshot


@dataclass(frozen=True, slots=True)
class ProjectFlags:
    project_id: int
    compiled: tuple[CompiledFlag, ...]
    active: bytes
    """The body of GET public/feature-flags/: the enabled flags, encoded once."""
    definitions: tuple[FlagDefinition, ...] = ()
    """The live definitions `compiled` was compiled from, in the same order."""


class ActiveFlag(msgspec.Struct, frozen=True):
    key: str
    version: int
    variants: tuple[str, ...]
    has_payload: bool


def _project_flags(snapshot: Snapshot) -> ProjectFlags:
    active = [
        ActiveFlag(
            key=flag.key,
            version=flag.version,
            variants=tuple(variant.key for variant in flag.variants),
            has_payload=flag.payload is not None or any(v.payload is not None for v in flag.variants),
        )
        for flag in snapshot.flags
        if flag.enabled
    ]
    return ProjectFlags(
        project_id=snapshot.project_id,
        compiled=tuple(compile_flag(flag) for flag in snapshot.flags),
        active=_encode({"flags": active}),
        definitions=snapshot.flags,
    )


class FlagCache:
    """One per process (`flag_cache()`). Thread-safe: its state is replaced, never mutated in
    place, and two threads loading the same project load the same thing."""

    def __init__(self, *, check_every: float) -> None:
        self.check_every = check_every
        self._projects: dict[int, ProjectFlags] = {}
        self._generation: bytes | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def project(self, project_id: int) -> ProjectFlags:
        now = time.monotonic()
        if now - self._checked_at >= self.check_every:
            self._check(now)
        found = self._projects.get(project_id)
        if found is None:
            generation = self._generation
            found = self._load(project_id)
            # Kept only if no newer generation arrived while loading: else it may be older.
            if generation == self._generation:
                self._projects = {**self._projects, project_id: found}
        return found

    def _check(self, now: float) -> None:
        with self._lock:
            if now - self._checked_at < self.check_every:
                return  # another thread just did
            self._checked_at = now
            try:
                generation: Any = buffer.client().get(generation_key())
            except redis.RedisError as exc:
                log.warning("flag cache: Redis unavailable (%s); serving the definitions held", exc)
                return
            if generation != self._generation:
                self._generation = generation
                self._projects = {}

    def _load(self, project_id: int) -> ProjectFlags:
        try:
            blob: Any = buffer.client().get(snapshot_key(project_id))
        except redis.RedisError as exc:
            log.warning("flag cache: Redis unavailable (%s); reading project %d from PostgreSQL", exc, project_id)
            return _project_flags(Snapshot(project_id, live_definitions(project_id)))
        if blob is not None:
            return _project_flags(decode_snapshot(blob))
        # Redis has never had this project, or lost it: rebuild it from PostgreSQL, once.
        try:
            return _project_flags(publish(project_id))
        except redis.RedisError:
            return _project_flags(Snapshot(project_id, live_definitions(project_id)))


_cache: FlagCache | None = None


def flag_cache() -> FlagCache:
    global _cache
    if _cache is None:
        _cache = FlagCache(check_every=settings.TIDELOG_FLAG_CACHE_CHECK_SECONDS)
    return _cache
