"""The project key cache stays bounded whatever keys arrive, never holds a key itself, and keeps
known keys (only) past their TTL for when PostgreSQL cannot be asked."""

import sys

from tenancy.key_cache import KeyCache, key_digest


def test_thousands_of_distinct_junk_keys_keep_the_cache_bounded():
    cache = KeyCache(ttl_seconds=30, max_entries=1_000)
    for n in range(20_000):
        cache.put(key_digest(f"junk-{n}" * 1000), None, now=float(n) / 1000)
    assert len(cache) == 1_000


def test_an_entry_holds_a_digest_not_the_key():
    cache = KeyCache(ttl_seconds=30, max_entries=10)
    huge = "x" * (1 << 20)
    cache.put(key_digest(huge), None, now=0.0)
    (digest,) = cache._unknown
    assert sys.getsizeof(digest) < 100


def test_unknown_keys_are_dropped_once_expired():
    cache = KeyCache(ttl_seconds=30, max_entries=1_000)
    for n in range(500):
        cache.put(key_digest(f"junk-{n}"), None, now=0.0)
    assert cache.get(key_digest("junk-1"), now=29.0) is not None
    assert cache.get(key_digest("junk-1"), now=31.0) is None
    assert len(cache) == 0


def test_a_flood_of_unknown_keys_does_not_push_out_known_ones():
    cache = KeyCache(ttl_seconds=30, max_entries=100)
    cache.put(key_digest("tlp_real"), 7, now=0.0)
    for n in range(10_000):
        cache.put(key_digest(f"junk-{n}"), None, now=1.0)
    hit = cache.get(key_digest("tlp_real"), now=2.0)
    assert hit is not None and (hit.project_id, hit.is_fresh) == (7, True)


def test_a_known_key_is_kept_stale_past_its_ttl():
    cache = KeyCache(ttl_seconds=30, max_entries=100)
    cache.put(key_digest("tlp_real"), 7, now=0.0)
    hit = cache.get(key_digest("tlp_real"), now=3_600.0)
    assert hit is not None and (hit.project_id, hit.is_fresh) == (7, False)


def test_known_keys_are_evicted_least_recently_used_first():
    cache = KeyCache(ttl_seconds=30, max_entries=2)
    cache.put(key_digest("tlp_a"), 1, now=0.0)
    cache.put(key_digest("tlp_b"), 2, now=0.0)
    cache.get(key_digest("tlp_a"), now=1.0)
    cache.put(key_digest("tlp_c"), 3, now=1.0)
    assert cache.get(key_digest("tlp_b"), now=1.0) is None
    assert cache.get(key_digest("tlp_a"), now=1.0) is not None


def test_a_key_that_becomes_known_leaves_the_unknown_side():
    cache = KeyCache(ttl_seconds=30, max_entries=10)
    cache.put(key_digest("tlp_new"), None, now=0.0)
    cache.put(key_digest("tlp_new"), 5, now=1.0)
    hit = cache.get(key_digest("tlp_new"), now=1.0)
    assert hit is not None and hit.project_id == 5 and len(cache) == 1
