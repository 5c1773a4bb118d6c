"""Unknown API keys cannot fill a command API process's memory: keys that cannot be valid are
refused before any lookup, and the ones that could be are cached as digests, capped and expired."""

import pytest

from tenancy import selectors
from tests.command_helpers import make_event, post

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db]


def test_thousands_of_distinct_unknown_keys_keep_the_cache_bounded(client, monkeypatch):
    monkeypatch.setattr(selectors._cache, "max_entries", 500)
    for n in range(3_000):
        response = post(client, "capture/", make_event(), key=f"tlp_junk{n:06d}")
        assert response.json()["code"] == "invalid_api_key"
    assert selectors.key_cache_size() <= 500


def test_keys_too_long_to_be_valid_are_refused_without_being_cached(client):
    # (Memory is not measured here: the test client and pytest's log capture keep every request.)
    before = selectors.key_cache_size()
    for n in range(300):
        response = post(client, "capture/", make_event(), key=f"tlp_{n}" + "x" * (1 << 20))
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_api_key"
    assert selectors.key_cache_size() == before


def test_a_key_of_the_wrong_shape_is_never_looked_up(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = post(client, "capture/", make_event(), key="tlp_not a key; DROP TABLE")
    assert response.json()["code"] == "invalid_api_key"
