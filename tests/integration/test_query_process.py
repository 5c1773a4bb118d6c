"""The query API's process entry (core/wsgi_query.py), loaded in a real process as granian
loads it: every view module imported before the first request and the loaded heap frozen, so
the cyclic collector's full passes do not walk it during requests."""

import json
import subprocess
import sys
from pathlib import Path

from tests.process_helpers import process_env

REPO = Path(__file__).resolve().parents[2]


def test_the_loaded_process_is_frozen_with_every_view_imported_and_young_collections_fewer():
    code = (
        "import gc, json, sys; import core.wsgi_query;"
        " print(json.dumps([gc.get_freeze_count(), gc.get_threshold(), 'query_side.funnels' in sys.modules]))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], env=process_env(DJANGO_SETTINGS_MODULE="core.settings"), cwd=REPO,
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    frozen, threshold, views_loaded = json.loads(found.stdout.strip().splitlines()[-1])
    assert frozen > 50_000  # Django, DRF, numpy and the views: ~118,000 objects
    assert threshold == [10_000, 20, 20]
    assert views_loaded
