"""Validation limits of the ingestion API, documented in docs/api.md.

Chosen beside the peers: PostHog caps a request at 20 MB and an event's properties at
about 1 MB; Amplitude at 1 MB and 2,000 events a request; Aptabase at 25 events. Ours are
sized for mobile SDK flushes (PostHog's iOS/Android SDKs flush 50 events at a time by default).
"""

from typing import Final

MAX_BODY_BYTES: Final = 5 * 1024 * 1024
"""A request body, after gzip decompression."""

MAX_BATCH_EVENTS: Final = 1_000
"""Events in one batch request."""

MAX_EVENT_BYTES: Final = 64 * 1024
"""One event's JSON encoding (properties included)."""

MAX_EVENT_TYPE_LENGTH: Final = 200
MAX_ID_LENGTH: Final = 200
"""distinct_id, session_id and device_id."""

MAX_SHORT_TEXT_LENGTH: Final = 100
"""app_version, os_name and os_version."""

MAX_PERSON_PROPERTY_KEY_LENGTH: Final = 200
"""Characters in a key of `$set` / `$set_once` / `$unset`: a person property's key is part of a
read model's primary key, and a btree entry holds at most ~2.7 kB."""
MAX_PROPERTY_DEPTH: Final = 10
"""Nesting of objects and arrays inside `properties` (a flat object is depth 1)."""

MAX_JSON_DEPTH: Final = 64
"""Nesting of a whole body, measured before it is decoded (contracts/nesting.py): decoding
recurses, and ~1,500 levels exhaust it. A valid batch needs 13 (batch, events, event, then
properties 10 deep); deeper, within properties, is properties_too_deep, elsewhere invalid_json."""

MAX_PROPERTY_KEYS: Final = 1_000
"""Keys at the top level of `properties`."""

MAX_FUTURE_SECONDS: Final = 23 * 3600
"""An event timed further ahead than this (after skew correction) is clamped to now."""
