"""Reads of the tenancy context: which project a key belongs to.

The command API calls `project_id_for_api_key` on every request, so it is cached in-process
for a few seconds: the hot path must not query PostgreSQL per event.
"""

import threading
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from tenancy.models import PersonalAPIKey, Project, hash_secret

_cache: dict[str, tuple[float, int | None]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 10_000


def project_id_for_api_key(api_key: str) -> int | None:
    now = time.monotonic()
    hit = _cache.get(api_key)
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        project_id = Project.objects.filter(api_key=api_key).values_list("id", flat=True).first()
    except (InterfaceError, OperationalError):
        # The fast path serves requests outside Django's request cycle, which would otherwise
        # recycle a connection PostgreSQL closed (restart, idle timeout): reconnect once.
        connection.close()
        project_id = Project.objects.filter(api_key=api_key).values_list("id", flat=True).first()
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            # Unknown keys are cached too (as None), so a flood of bad keys cannot grow this
            # without bound: start over rather than track recency.
            _cache.clear()
        _cache[api_key] = (now + settings.TIDELOG_KEY_CACHE_SECONDS, project_id)
    return project_id


def personal_api_key_find(secret: str) -> PersonalAPIKey | None:
    return (
        PersonalAPIKey.objects.select_related("project")
        .filter(secret_hash=hash_secret(secret), is_revoked=False)
        .first()
    )
