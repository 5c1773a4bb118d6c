"""WSGI entry of the query API (and admin) process."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
application = get_wsgi_application()

# What the process keeps for life (Django, DRF, numpy, the URL conf and the views it imports,
# loaded here rather than by the first request) is never garbage: frozen, the cyclic
# collector's full passes stop walking it at every few requests. Those passes were the query
# API's slowest requests: at 10M events, trends by app_version per hour p95 99.5 to 46-53 ms and
# a funnel 149 to 92-105 ms (in-process, 25 requests each; docs/performance.md). Fewer young
# collections too (gen0 at 10,000 allocations, not 700): a request allocates its rows by the
# hundred thousand and frees them by reference counting.
get_resolver().url_patterns  # noqa: B018  (imports every view module now)
gc.collect()
gc.freeze()
gc.set_threshold(10_000, 20, 20)
