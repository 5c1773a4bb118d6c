"""Reads of the tenancy context: which project a key belongs to.

The command API calls `project_id_for_api_key` on every request, so it is cached in-process
for a few seconds: the hot path must not query PostgreSQL per event. While PostgreSQL cannot be
reached a known key is served from the cache past its TTL (stale-if-error), so ingestion into the
Redis buffer goes on; a failure is never cached as "unknown".
"""

import logging
import re
import threading
import time

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection

from tenancy.database import DatabaseUnavailable, is_unavailable
from tenancy.key_cache import KeyCache, key_digest
from tenancy.models import API_KEY_MAX_LENGTH, PersonalAPIKey, Project, hash_secret

log = logging.getLogger(__name__)

# Keys are `tlp_` + URL-safe base64 (models.new_project_api_key) in a 64-character column: anything
# else cannot be a key, and is refused before it is hashed, cached or looked up.
_KEY_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{1,{API_KEY_MAX_LENGTH}}}")

_cache = KeyCache(ttl_seconds=settings.TIDELOG_KEY_CACHE_SECONDS, max_entries=settings.TIDELOG_KEY_CACHE_MAX_ENTRIES)
# After a failed lookup, known keys are served stale without asking PostgreSQL again for as long
# as SDKs are told to wait (Retry-After): a down database, or an unreachable one that makes each
# attempt wait TIDELOG_DATABASE_CONNECT_TIMEOUT_SECONDS, must not cost every request an attempt.
_RETRY_DATABASE_AFTER_SECONDS = float(settings.TIDELOG_RETRY_AFTER_SECONDS)
_database_failed_at = -_RETRY_DATABASE_AFTER_SECONDS
_failure_lock = threading.Lock()


def is_well_formed_api_key(api_key: str) -> bool:
    return _KEY_SHAPE.fullmatch(api_key) is not None


def _project_id_from_database(api_key: str) -> int | None:
    try:
        return Project.objects.filter(api_key=api_key).values_list("id", flat=True).first()
    except DatabaseError as exc:
        if not is_unavailable(exc):
            raise
    # The fast path serves requests outside Django's request cycle, which would otherwise
    # recycle a connection PostgreSQL closed (restart, idle timeout): reconnect once.
    connection.close()
    return Project.objects.filter(api_key=api_key).values_list("id", flat=True).first()


def project_id_for_api_key(api_key: str) -> int | None:
    """The project of a public API key, None for an unknown key. Raises DatabaseUnavailable when
    PostgreSQL cannot be asked and the cache knows nothing fresh or stale of the key."""
    global _database_failed_at
    if not is_well_formed_api_key(api_key):
        return None
    digest = key_digest(api_key)
    now = time.monotonic()
    cached = _cache.get(digest, now)
    if cached is not None and cached.is_fresh:
        return cached.project_id
    if cached is not None and now - _database_failed_at < _RETRY_DATABASE_AFTER_SECONDS:
        return cached.project_id
    try:
        project_id = _project_id_from_database(api_key)
    except DatabaseError as exc:
        if not is_unavailable(exc):
            raise
        with _failure_lock:
            _database_failed_at = now
        if cached is not None:
            log.warning("PostgreSQL unavailable (%s); serving project %s from the cache", exc, cached.project_id)
            return cached.project_id
        raise DatabaseUnavailable(str(exc)) from exc
    _cache.put(digest, project_id, now)
    return project_id


def key_cache_size() -> int:
    """Entries in this process's key cache (tests and diagnostics)."""
    return len(_cache)


def personal_api_key_find(secret: str) -> PersonalAPIKey | None:
    return (
        PersonalAPIKey.objects.select_related("project")
        .filter(secret_hash=hash_secret(secret), is_revoked=False)
        .first()
    )
