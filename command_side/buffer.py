"""The Redis buffer between the command API and the event store: one stream, one consumer group.

Knows Redis and nothing else. Never drops an entry: an entry leaves the stream only when a
drainer acknowledges it after its transaction committed.
"""

import threading
from dataclasses import dataclass
from typing import cast

import redis
from django.conf import settings

from contracts import schema

GROUP = "drainers"

# TRICKY: the length check and the append must be one atomic step, or two API processes could
# both see room for one entry and overfill the buffer. A Lua script is atomic in Redis and is
# still one round trip (EVALSHA).
_APPEND = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then
    return 0
end
redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
return 1
"""


class BufferFull(Exception):
    """The buffer holds TIDELOG_BUFFER_MAX_ENTRIES entries: drainers are behind."""


class BufferUnavailable(Exception):
    """Redis did not answer."""


class BufferRefusing(Exception):
    """Redis answered but refuses writes for now: a failing disk (MISCONF), a replica after a
    failover (READONLY), too few replicas (NOREPLICAS), a script or cluster busy."""


# Redis types its error replies by their first word (RESP: `-READONLY You can't write…`). That
# word is a protocol field, stable across versions, not an English message. redis-py turns some
# of them into classes (and then strips the word from the message); for the others we read it.
_REFUSING_CLASSES: tuple[type[redis.exceptions.ResponseError], ...] = (
    redis.exceptions.ReadOnlyError,  # READONLY
    redis.exceptions.ClusterDownError,  # CLUSTERDOWN, MASTERDOWN
    redis.exceptions.TryAgainError,  # TRYAGAIN
)
_REFUSING_PREFIXES = frozenset({"MISCONF", "NOREPLICAS", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY"})


def error_prefix(exc: redis.exceptions.ResponseError) -> str:
    """The error reply's type word: redis-py keeps it in `status_code` when it maps the reply to a
    class of its own, else the reply is the message as sent, type word first."""
    return exc.status_code or str(exc).partition(" ")[0]


def write_refusal(exc: redis.exceptions.ResponseError) -> type[Exception] | None:
    """BufferFull or BufferRefusing for a reply that refuses a write for now, None for a bug."""
    # Redis at maxmemory with noeviction refuses writes: that is "full", not "down".
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or error_prefix(exc) == "OOM":
        return BufferFull
    if isinstance(exc, _REFUSING_CLASSES) or error_prefix(exc) in _REFUSING_PREFIXES:
        return BufferRefusing
    return None


@dataclass(frozen=True, slots=True)
class Entry:
    entry_id: bytes
    data: bytes


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def client() -> redis.Redis:
    url = settings.REDIS_URL
    found = _clients.get(url)
    if found is None:
        with _clients_lock:
            found = _clients.get(url)
            if found is None:
                found = redis.Redis.from_url(
                    url, socket_timeout=2.0, socket_connect_timeout=1.0, health_check_interval=30
                )
                _clients[url] = found
    return found


def stream_key() -> str:
    return f"{settings.REDIS_PREFIX}:{schema.BUFFER_STREAM}"


_scripts: dict[int, object] = {}


def append(data: bytes) -> None:
    """Append one encoded BufferEntry. Raises BufferFull or BufferUnavailable; never blocks long."""
    redis_client = client()
    script = _scripts.get(id(redis_client))
    if script is None:
        script = redis_client.register_script(_APPEND)
        _scripts[id(redis_client)] = script
    try:
        added = script(keys=[stream_key()], args=[settings.TIDELOG_BUFFER_MAX_ENTRIES, data])  # type: ignore[operator]
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        # LOADING (a restarted Redis reading its AOF) is a ConnectionError in redis-py: down too.
        raise BufferUnavailable(str(exc)) from exc
    except redis.ResponseError as exc:
        refusal = write_refusal(exc)
        if refusal is None:
            raise
        raise refusal(str(exc)) from exc
    if not added:
        raise BufferFull(f"buffer holds {settings.TIDELOG_BUFFER_MAX_ENTRIES} entries")


def _ensure_group(redis_client: redis.Redis) -> None:
    try:
        # "0": a group made after entries arrived must still deliver them.
        redis_client.xgroup_create(stream_key(), GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def read(consumer: str, count: int, *, reclaim_idle_ms: int | None = None) -> list[Entry]:
    """Entries for this consumer: first any another consumer left unacknowledged for longer than
    `reclaim_idle_ms` (it crashed mid-batch), else new ones."""
    redis_client = client()
    idle = settings.TIDELOG_RECLAIM_IDLE_MS if reclaim_idle_ms is None else reclaim_idle_ms
    for attempt in range(2):
        try:
            _, claimed, _ = redis_client.xautoclaim(
                stream_key(), GROUP, consumer, min_idle_time=idle, start_id="0-0", count=count
            )
            entries = [Entry(entry_id, fields[b"e"]) for entry_id, fields in claimed if fields]
            if entries:
                return entries
            # Without decode_responses (client()), the reply is [[stream, [(id, {field: value})]]] of
            # bytes; redis-py's annotation covers the RESP3 and decoded shapes too.
            response = cast(
                list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]],
                redis_client.xreadgroup(GROUP, consumer, {stream_key(): ">"}, count=count),
            )
            return [Entry(entry_id, fields[b"e"]) for _, messages in response for entry_id, fields in messages]
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc) or attempt:
                raise
            _ensure_group(redis_client)
    return []


def ack(entry_ids: list[bytes]) -> None:
    """Acknowledge and delete entries whose events are committed. Call only after commit."""
    if not entry_ids:
        return
    pipe = client().pipeline(transaction=True)
    pipe.xack(stream_key(), GROUP, *entry_ids)
    pipe.xdel(stream_key(), *entry_ids)
    pipe.execute()


def dead_letter(entry: Entry, reason: str) -> None:
    """Move an entry the store cannot take to the dead-letter stream, with why, and acknowledge
    it, in one MULTI: a crash can come before or after, never between (no loss, no second
    copy in the dead-letter stream when the entry is delivered again)."""
    pipe = client().pipeline(transaction=True)
    pipe.xadd(f"{stream_key()}:{schema.DEAD_LETTER_SUFFIX}", {"e": entry.data, "id": entry.entry_id, "why": reason})
    pipe.xack(stream_key(), GROUP, entry.entry_id)
    pipe.xdel(stream_key(), entry.entry_id)
    pipe.execute()


def backlog() -> int:
    """Entries not yet stored: unread plus read-but-unacknowledged."""
    return int(client().xlen(stream_key()))


def pending() -> int:
    try:
        info = client().xpending(stream_key(), GROUP)
    except redis.ResponseError:
        return 0
    return int(info["pending"])


def consumers_prune(idle_ms: int = 3_600_000) -> int:
    """Forget consumers idle for an hour with nothing pending (dead worker processes)."""
    redis_client = client()
    removed = 0
    try:
        consumers = redis_client.xinfo_consumers(stream_key(), GROUP)
    except redis.ResponseError:
        return 0
    for consumer in consumers:
        if consumer["pending"] == 0 and consumer["idle"] > idle_ms:
            redis_client.xgroup_delconsumer(stream_key(), GROUP, consumer["name"])
            removed += 1
    return removed
