"""A drainer killed mid-batch (a real process, killed as kill -9 would) loses and duplicates nothing."""

import subprocess
import sys
from pathlib import Path

import pytest

from command_side import buffer
from command_side.drain import drain
from tests.command_helpers import make_event, post, stored_count
from tests.process_helpers import process_env

pytestmark = [pytest.mark.urls("core.urls_command"), pytest.mark.django_db(transaction=True)]
REPO = Path(__file__).resolve().parents[2]


def run_drainer_that_dies(fault: str) -> int:
    env = process_env(DJANGO_SETTINGS_MODULE="core.settings", TIDELOG_FAULT=fault)
    code = "import django; django.setup(); from command_side.drain import drain_batch; drain_batch('victim')"
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, timeout=60).returncode


def fill_buffer(client, project, batches=4, per_batch=50) -> set[str]:
    uuids = set()
    for _ in range(batches):
        events = [make_event() for _ in range(per_batch)]
        uuids.update(e["uuid"] for e in events)
        assert post(client, "batch/", {"events": events}, key=project.api_key).status_code == 200
    return uuids


def test_a_drainer_killed_before_commit_loses_nothing(client, project, redis_client):
    uuids = fill_buffer(client, project)
    assert run_drainer_that_dies("before_commit") == 17
    assert stored_count(project.project_id) == 0
    assert buffer.pending() == 4  # read by the dead drainer, never acknowledged

    # Another drainer reclaims the dead one's entries (idle threshold 0 here, 5 s in production).
    stats = drain("survivor", reclaim_idle_ms=0, keep_going=True)
    assert stats.stored == len(uuids)
    assert stored_count(project.project_id) == len(uuids)
    assert buffer.backlog() == 0


def test_a_drainer_killed_after_commit_but_before_ack_duplicates_nothing(client, project, redis_client):
    uuids = fill_buffer(client, project)
    assert run_drainer_that_dies("after_commit") == 17
    assert stored_count(project.project_id) == len(uuids)
    assert buffer.pending() == 4

    stats = drain("survivor", reclaim_idle_ms=0, keep_going=True)
    assert (stats.stored, stats.duplicates) == (0, len(uuids))
    assert stored_count(project.project_id) == len(uuids)
    assert buffer.backlog() == 0


def test_entries_of_a_live_drainer_are_not_stolen_before_the_idle_threshold(client, project, redis_client):
    fill_buffer(client, project, batches=1)
    assert buffer.read("slow-but-alive", 10)  # read, not yet acknowledged
    assert drain("other", reclaim_idle_ms=60_000).entries == 0
    assert buffer.pending() == 1


def test_a_drainer_killed_after_dead_lettering_leaves_one_copy_and_loses_nothing(project, redis_client):
    from tests.integration.test_drain_poison import entry

    for distinct_id in ["good-1", "bad\x00", "good-2"]:
        buffer.append(entry(distinct_id, project.project_id))
    # Dies after the batch is stored and the poison entry dead-lettered, before the final ack.
    assert run_drainer_that_dies("after_commit") == 17
    assert stored_count(project.project_id) == 2

    stats = drain("survivor", reclaim_idle_ms=0, keep_going=True)
    assert (stats.stored, stats.duplicates) == (0, 2)
    assert stored_count(project.project_id) == 2
    assert len(redis_client.xrange(f"{buffer.stream_key()}:dead")) == 1
    assert buffer.backlog() == 0
